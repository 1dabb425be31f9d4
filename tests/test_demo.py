"""ffkit demo: a flashed virtual board learns digits and its export equals the host's replay.

The verdict is computed, not printed: `run_board_demo` compares the board's exported .ffw
with ``ffw_ram.encode`` of the host's own net, and a host that computes anything else (here:
one streamed digit learned with a wrong label) must get False.
"""

import contextlib
import io
import json

import pytest

from ffkit import cli
from ffkit.demo import run_board_demo

@pytest.mark.device
def test_board_demo_matches_the_host_bit_for_bit():
    lines = []
    res = run_board_demo(n_stream=40, n_eval=30, say=lines.append)
    assert res["identical"] is True and res["first_difference"] is None
    assert res["predictions_identical"] is True
    assert res["steps"] == 40 and res["board_step"] == res["host_step"] == 21552 + 40
    assert res["board_weights_crc32"] == res["host_weights_crc32"]
    assert 0.0 <= res["accuracy_frozen"] <= 1.0 and 0.0 <= res["accuracy_learned"] <= 1.0
    text = "\n".join(lines)
    for n in range(1, 8):
        assert "[%d/7]" % n in text
    assert "IDENTICAL: all %d bytes equal" % res["export_bytes"] in text


@pytest.mark.device
def test_a_different_host_computation_is_caught():
    calls = []

    def learn_one_label_off(net, x, y):
        calls.append(y)
        if len(calls) == 7:   # one digit of twenty learned with a wrong label
            y = (y + 1) % 10
        net.learn_one(x, y)

    lines = []
    res = run_board_demo(n_stream=20, n_eval=10, say=lines.append,
                         host_learn=learn_one_label_off)
    assert len(calls) == 20
    assert res["identical"] is False
    assert res["board_step"] == res["host_step"]   # same number of steps, other weights
    assert res["first_difference"] is not None
    assert res["board_weights_crc32"] != res["host_weights_crc32"]
    assert "DIFFERENT: first differing byte at offset %d" % res["first_difference"] \
        in "\n".join(lines)


@pytest.mark.device
def test_ffkit_demo_cli_json_and_exit_code():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["demo", "--digits", "--stream", "15", "--eval", "10", "--heap", "160K",
                         "--json"])
    assert code == 0, err.getvalue()
    res = json.loads(out.getvalue())
    assert res["identical"] is True and res["n_stream"] == 15 and res["heap"] == "160K"
    assert res["seconds"] > 0


def test_demo_refuses_sizes_it_cannot_split():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["demo", "--digits", "--stream", "450"])
    assert code == 2 and "--stream must be in 1..449" in err.getvalue()


def test_hapt_demo_personalises_a_flashed_board_and_shows_table_and_plots(tmp_path):
    """`ffkit demo` (the HAPT main job), shortened: one subject, 12 windows per session,
    the committed weights. The table's figures are the board's predictions, the verdict is
    computed by ffkit.sessions.stream, and the plots and the export are real files."""
    from ffkit import demo_hapt

    lines = []
    res = demo_hapt.run_hapt_demo(subjects=(19,), limit=12, bootstrap_model=False,
                                  plots_dir=tmp_path / "plots", say=lines.append,
                                  progress=False)
    text = "\n".join(lines)
    assert res["bit_identical"] is True and res["export_equals_host"] is True
    assert [ln[:5] for ln in lines if ln.startswith("[")] == \
        ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    row = res["per_subject"]["19"]
    assert "%7s  %6.3f  %7.3f" % ("19", row["frozen"], row["adapted"]) in text
    assert res["frozen_accuracy"] == row["frozen"] and res["adapted_accuracy"] == row["adapted"]
    for p in res["plots"]:
        assert "plot: " + p in text
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    from ffrt import ffw_ram
    exported = open(res["export"], "rb").read()
    assert "%08x" % ffw_ram.weights_crc32(ffw_ram.load(exported)) == res["host_weights_crc32"]
