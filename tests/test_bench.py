"""ffkit.bench: a quick run inside MicroPython; checks behaviour, never wall-clock figures."""

import argparse
import json

import pytest

from ffkit import bench

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def quick(micropython):
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    return p.parse_args(["--json", "--steps", "50", "--pure-steps", "2", "--no-callgrind"])


@pytest.fixture(scope="module")
def report(quick):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bench.run_cli(quick)
    assert code == 0
    return json.loads(out.getvalue())


def test_json_has_every_figure(report):
    for key, _, _ in bench.FIGURES:
        assert key in report, key
    assert report["model"] == "74-128-128"
    assert report["steps"] == 50 and report["pure_steps"] == 2
    assert report["callgrind"].startswith("skipped")
    assert report["instructions_per_mac_forward"] is None


def test_hot_loops_allocate_nothing(report):
    assert report["alloc_bytes_per_learn_step"] == 0
    assert report["alloc_bytes_per_predict_step"] == 0
    assert report["alloc_bytes_per_predict_head_step"] == 0
    # the measurement itself sees allocation: the control loop makes a list per step
    assert report["alloc_probe_bytes_per_step"] > 0


def test_speedups_and_times_are_positive_numbers(report):
    for key in ("learn_speedup_viper", "predict_speedup_viper", "learn_us_viper",
                "predict_us_viper", "predict_head_us_viper", "learn_us_pure", "predict_us_pure"):
        v = report[key]
        assert isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, (key, v)


def test_memory_figures_are_consistent(report):
    assert report["net_ram_bytes"] > 74 * 128 + 128 * 128  # the weights alone
    lo, hi = bench.HEAP_LO_K * 1024, bench.HEAP_HI_K * 1024
    assert lo < report["min_heap_bytes"] <= hi and report["min_heap_bytes"] % 1024 == 0
    # compiling .py on the board needs more heap than loading .mpy
    assert report["min_heap_bytes_source"] >= report["min_heap_bytes"]
    assert report["live_heap_bytes"] <= report["peak_heap_bytes"] <= report["peak_heap_run_bytes"]
    assert report["peak_heap_bytes"] > report["net_ram_bytes"]


def test_text_table_names_every_figure(quick, capsys):
    rep = {k: 1.5 for k, _, _ in bench.FIGURES}
    rep.update(model="74-128-128", micropython="micropython 1.29.0", steps=50, pure_steps=2,
               ff_active_fraction=[1.0, 1.0], callgrind="measured", seconds={"speed": 1.0})
    text = bench.format_table(rep)
    for key, _, meaning in bench.FIGURES:
        assert key in text and meaning in text


def test_bad_steps_is_usage_error(quick, capsys):
    args = argparse.Namespace(**dict(vars(quick), steps=0))
    assert bench.run_cli(args) == 2
    assert "--steps" in capsys.readouterr().err


@pytest.mark.skipif(bench.find_valgrind() is None, reason="valgrind not installed")
def test_instruction_counts(micropython):
    """callgrind counts per MAC / per weight: positive, and viper far below pure Python."""
    cg = bench.measure_callgrind(k_fc=10, k_update=10, k_pure=1)
    assert 0 < cg["instructions_per_mac_forward"] < cg["instructions_per_mac_forward_pure"]
    assert cg["instructions_per_weight_update"] > 0


def test_link_figures(report):
    """The serial link to a virtual board: a byte ratio (no timing is asserted)."""
    wire = report["link_export_bytes"]
    assert wire["payload"] == 32138
    assert wire["wire"] == wire["host_to_board"] + wire["board_to_host"]
    assert report["wire_efficiency"] == round(wire["payload"] / wire["wire"], 4)
    assert report["wire_efficiency"] >= 0.9
    for key in ("learn_steps_per_s_link", "stream_samples_per_s_link"):
        v = report[key]
        assert isinstance(v, float) and v > 0, (key, v)
    assert "link" in report["seconds"]


def test_replay_figure(report, repo_root):
    """A HAPT session log replayed with the numpy runner: the speed-up over the session's
    real time is a positive ratio (its size is the README's business, not a test's), and
    the log replayed is the golden one's session."""
    v = report["replay_speedup_vs_realtime"]
    assert isinstance(v, float) and v > 0
    log = report["replay_log"]
    golden = (repo_root / "tests" / "replay" / "hapt.ffl").read_bytes()
    assert log["samples"] == bench.log_samples(golden) > 0
    assert log["session_seconds"] == round(log["samples"] / 50, 2)
    assert 0 < log["replay_seconds"] < log["process_seconds"]
    assert log["repeats"] == bench.REPLAY_REPEATS
    assert "replay" in report["seconds"]


def test_awake_window_figure(report):
    """Sleep (ffrt.sleep): the awake / interleaved work of a HAPT window is a positive
    ratio (timed: its size is the README's business), and the passes counted alongside
    are the rule's: an awake window is its prediction (one pass per label) and one
    positive pass with its update, a sleep step the hardest negative's passes and one
    update pass, an interleaved window with replay 2 three learn_one's of two update
    passes each (and the head's small update)."""
    v = report["awake_window_work_ratio"]
    assert isinstance(v, float) and v > 0
    aw = report["awake_window"]
    assert aw["model"].startswith("78-192-64") and aw["adapt"] == "per_class 16, replay 2"
    assert aw["predict"] == dict(aw["predict"], forward_passes=6.0, update_passes=0.0)
    assert aw["awake"]["forward_passes"] == 7.0 and aw["awake"]["update_passes"] == 1.0
    assert aw["sleep_step"]["forward_passes"] == 6.0 and aw["sleep_step"]["update_passes"] == 1.0
    assert 6.0 < aw["interleaved"]["update_passes"] < 6.1
    assert 0 < aw["mac_ratio"] < 1
    assert "awake" in report["seconds"]
