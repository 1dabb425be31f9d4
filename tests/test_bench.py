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


def test_heap_traffic_counts_what_is_freed_at_once(report):
    """gc.mem_alloc sees what stays allocated; micropython.mem_total (the unix port counts
    it) every byte allocated. The control's list stays, so both see it; the engine's
    call frames over MicroPython's stack limit are freed on return, so only the traffic
    figure sees them (issue 14: to bring to 0)."""
    assert report["heap_traffic_bytes_per_probe_step"] == report["alloc_probe_bytes_per_step"]
    for step in ("learn", "predict", "predict_head"):
        t = report["heap_traffic_bytes_per_%s_step" % step]
        assert t is not None and t >= report["alloc_bytes_per_%s_step" % step]


def test_speedups_and_times_are_positive_numbers(report):
    for key in ("learn_speedup_viper", "predict_speedup_viper", "learn_us_viper",
                "predict_us_viper", "predict_head_us_viper", "learn_us_pure", "predict_us_pure",
                # the native kernels: make test builds them for x64, so they are measured
                "learn_speedup_native", "learn_native_vs_viper", "predict_native_vs_viper",
                "learn_us_native", "predict_us_native"):
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
    # the native kernels (C) and the plain C loops built alike: counted, not timed
    assert 0 < cg["instr_per_mac_native"] < cg["instructions_per_mac_forward"]
    assert 0 < cg["instr_per_weight_update_native"] < cg["instructions_per_weight_update"]
    assert cg["instr_per_mac_c_loop"] > 0 and cg["instr_per_weight_update_c_loop"] > 0


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


def test_awake_window_figure(report, repo_root):
    """Sleep (ffrt.sleep): the awake / interleaved work of a HAPT window is a positive
    ratio (timed: its size is the README's business), and the passes counted alongside
    are the rule's. In units of one full forward pass: a prediction is the first layer's
    shared sums and, per label, its label columns and the layers above (the shared label
    pass); an awake window that and one positive pass with its update; a sleep step the
    hardest negative's label passes (all labels but the true one) and one update pass;
    an interleaved window with replay 2 three learn_one's of two update passes each (and
    the head's small update)."""
    from ffrt import ffw_ram

    v = report["awake_window_work_ratio"]
    assert isinstance(v, float) and v > 0
    aw = report["awake_window"]
    assert aw["model"].startswith("78-192-64") and aw["adapt"] == "per_class 16, replay 2"
    cfg = ffw_ram.decode_config((repo_root / "models" / "hapt.ffw").read_bytes())
    n_in, n = cfg.layer_inputs(), cfg.layers
    one = sum(a * b for a, b in zip(n_in, n))
    assert aw["forward_pass_macs"] == one
    shared = n_in[0] * n[0]
    per_label = one - shared + n[0] * cfg.label_repeat
    nc = cfg.n_classes
    predict = round((shared + nc * per_label) / one, 2)
    assert aw["predict"] == dict(aw["predict"], forward_passes=predict, update_passes=0.0)
    assert predict < 0.6 * nc   # the shared label pass: under 0.6 of a full pass a label
    assert aw["awake"]["forward_passes"] == round(predict + 1, 2)
    assert aw["awake"]["update_passes"] == 1.0
    assert aw["sleep_step"]["forward_passes"] == round(
        (shared + (nc - 1) * per_label + one) / one, 2)
    assert aw["sleep_step"]["update_passes"] == 1.0
    assert 6.0 < aw["interleaved"]["update_passes"] < 6.1
    assert 0 < aw["mac_ratio"] < 1
    assert "awake" in report["seconds"]


# ---- emulated boards (ffkit bench --machine) ---------------------------------------------

_QUICK_COUNTS = {"fc": 4, "update": 4, "fc_pure": 1, "update_pure": 1, "learn_warm": 2,
                 "learn": 3, "predict": 3, "alloc": 5, "hapt_warm": 8, "hapt": 2,
                 "hapt_alloc": 2}


@pytest.fixture(scope="module")
def m3_report(qemu):
    """`ffkit bench --machine cortex-m3 --json --no-heap` with small counts, the counts
    taken on two fresh boots of the emulated board."""
    import contextlib
    import io

    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = p.parse_args(["--machine", "cortex-m3", "--json", "--no-heap", "--repeat", "2"])
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(bench.QEMU_COUNTS, "cortex-m3", _QUICK_COUNTS)
        with contextlib.redirect_stdout(out):
            assert bench.run_cli(args) == 0
    return json.loads(out.getvalue())


def test_emulated_board_counts_are_positive_and_repeat_exactly(m3_report):
    """Instruction counts under -icount shift=0 on the Cortex-M3: every figure positive,
    and the raw counts of two boots equal (no wall-clock figure is asserted)."""
    r = m3_report
    assert r["machine"] == "cortex-m3" and r["kernels"] == "ffrt.kernels_viper"
    assert r["instr_per_tick_us"] == 1000.0
    for key in ("instr_per_mac_forward", "instr_per_weight_update",
                "instr_per_mac_forward_pure", "instr_per_weight_update_pure",
                "instr_per_learn_step", "instr_per_predict_step", "instr_per_hapt_window"):
        v = r[key]
        assert isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, (key, v)
    assert r["instr_repeatable"] is True and r["instr_counts"]["runs"] == 2
    # viper against the pure kernels on the same board: far fewer instructions per MAC
    assert r["instr_per_mac_forward"] * 10 < r["instr_per_mac_forward_pure"]
    # a learn step makes more passes than a prediction, a learnt window more than either
    assert r["instr_per_predict_step"] < r["instr_per_learn_step"] < r["instr_per_hapt_window"]
    assert r["instr_counts"]["calls"] == _QUICK_COUNTS
    # the native kernels (C for armv7m; make test installs arm-none-eabi-gcc), counted in
    # the same boots on the same steps (their weights checked equal to viper's)
    assert r["kernels_native"] == "kernels_native"
    for key in ("instr_per_mac_native", "instr_per_weight_update_native",
                "instr_per_mac_c_loop", "instr_per_weight_update_c_loop",
                "instr_per_learn_step_native", "instr_per_hapt_window_native"):
        assert r[key] > 0, key
    assert r["instr_per_mac_native"] < r["instr_per_mac_forward"]
    assert r["instr_per_weight_update_native"] < r["instr_per_weight_update"]
    assert r["instr_per_learn_step_native"] < r["instr_per_learn_step"]
    assert r["learn_step_native_vs_viper"] > 1 and r["hapt_window_native_vs_viper"] > 1
    (clock,) = r["at_clock"]
    assert clock["mhz"] == 64
    assert clock["learn_steps_per_s"] == round(64e6 / r["instr_per_learn_step"], 2)
    assert "one instruction per cycle" in r["clock_caveat"]
    assert r["min_heap"] == "skipped (--no-heap)" and "min_heap_kb_stream" not in r


def test_emulated_board_hot_loops_allocate_nothing(m3_report):
    """32-bit words and 31-bit small ints: a value of 2**30 or more in a hot loop would be
    a heap long int; learn, predict and a HAPT window allocate nothing on the Cortex-M3."""
    assert m3_report["alloc_bytes_per_learn_step"] == 0
    assert m3_report["alloc_bytes_per_predict_step"] == 0
    assert m3_report["alloc_bytes_per_hapt_window"] == 0
    for step in ("learn_step", "predict_step", "hapt_window"):
        assert m3_report["alloc_bytes_per_%s_native" % step] == 0
    assert m3_report["alloc_bytes_per_probe_step"] > 0  # the measurement sees allocation


def test_emulated_board_table_names_every_figure(m3_report):
    text = bench.format_qemu_table(m3_report)
    for key, _, meaning in bench.QEMU_FIGURES:
        assert key in text and meaning in text
    assert "64 MHz" in text and "heap: skipped" in text


def test_heap_bisection_finds_the_smallest_heap_and_widens_its_bracket(monkeypatch):
    """min_heap_k against a fake board that serves from 77 KB up: 1 KB resolution, the
    bracket widened upwards and downwards when its ends are wrong, the reason kept."""
    calls = []

    def probe(machine, k, kind, mpy_dir, rec=None):
        calls.append(k)
        return None if k >= 77 else "MemoryError at %d" % k

    monkeypatch.setattr(bench, "_heap_probe", probe)
    assert bench.min_heap_k("cortex-m3", "firmware", bracket=(24, 96)) == \
        (77, "MemoryError at 76", len(calls))
    calls.clear()
    k, why, n = bench.min_heap_k("cortex-m3", "firmware", bracket=(24, 40))  # hi too low
    assert (k, why, n) == (77, "MemoryError at 76", len(calls)) and calls[0] == 40
    calls.clear()
    assert bench.min_heap_k("cortex-m3", "firmware", bracket=(80, 96))[0] == 77  # lo too high


def test_machine_usage_errors(quick, capsys):
    args = argparse.Namespace(**dict(vars(quick), machine="cortex-m3", windows=0))
    assert bench.run_cli(args) == 2
    assert "--windows" in capsys.readouterr().err
