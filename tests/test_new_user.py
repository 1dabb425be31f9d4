"""What a new user ran into (issue 15, item 6): progress bars in CI logs, a late failure to
write an export, a sim:// port that made folders, LiteRT's XNNPACK banner, bootstrap
subjects scored as if held out, and a model mismatch without the way to change a model."""

import io
import os
import re
import shutil

from conftest import REPO_ROOT
from test_cli import run_ffkit, run_main

DIGITS = REPO_ROOT / "models" / "digits.ffw"   # 64 features
HAPT = REPO_ROOT / "models" / "hapt.ffw"       # 72 features


def _board(tmp_path, name, model):
    """A virtual board's folder booting `model` (the repo's firmware, from source)."""
    d = tmp_path / name
    d.mkdir()
    shutil.copy(model, d / "model.ffw")
    return d


class _Stderr(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_a_progress_bar_is_drawn_on_a_terminal_only(monkeypatch):
    from ffkit.progress import progress_bar

    for tty, enabled, drawn in ((True, True, True), (False, True, False),
                                (True, False, False)):
        err = _Stderr(tty)
        monkeypatch.setattr("sys.stderr", err)
        with progress_bar(10, "train", "sample", enabled=enabled) as bar:
            bar.update(10)
        assert ("train" in err.getvalue()) is drawn, (tty, enabled)


def test_a_transfer_writes_no_bar_when_stderr_is_not_a_terminal(micropython, tmp_path):
    board = _board(tmp_path, "digits", DIGITS)
    r = run_ffkit("import", str(DIGITS), "--port", "sim://%s" % board)
    assert r.returncode == 0, r.stderr
    assert "imported" in r.stdout and r.stderr == ""


def test_export_to_a_missing_folder_is_refused_before_connecting(micropython, tmp_path):
    board = tmp_path / "board"    # sim:// would boot a board here if export connected
    out = tmp_path / "missing" / "dir" / "x.ffw"
    code, stdout, err = run_main("export", "--port", "sim://%s" % board, "-o", str(out))
    assert code == 2 and stdout == ""
    assert err.splitlines()[-1] == ("ffkit: -o %s: no folder %s (create it first)"
                                    % (out, out.parent))
    assert not board.exists() and not out.parent.exists()


def test_a_sim_port_in_a_missing_folder_is_refused(tmp_path):
    port = tmp_path / "nonexistent" / "dir" / "x"
    code, stdout, err = run_main("info", "--port", "sim://%s" % port)
    assert code == 2 and stdout == ""
    assert err.splitlines()[-1].startswith("ffkit: sim://%s: no folder %s " % (port, port.parent))
    assert not (tmp_path / "nonexistent").exists()


def test_litert_check_prints_no_xnnpack_banner(tmp_path):
    model = tmp_path / "digits.tflite"
    code, _, err = run_main("tflite", "export", "--weights", str(DIGITS), "-o", str(model))
    assert code == 0, err
    r = run_ffkit("tflite", "check", "--weights", str(DIGITS), "--model", str(model),
                  "--dataset", "digits", "--limit", "10", "--runtime", "litert")
    assert r.returncode == 0, r.stderr
    assert "litert (ai_edge_litert" in r.stdout
    assert "XNNPACK" not in r.stdout + r.stderr


def test_only_the_xnnpack_banner_is_dropped(capfd):
    from ffkit.interop.tflite import _without_delegate_banner

    with _without_delegate_banner():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"ERROR: something else\n")
    assert capfd.readouterr().err == "ERROR: something else\n"


def test_stream_warns_when_a_subject_was_bootstrapped_on(micropython, tmp_path):
    code, stdout, err = run_main("stream", "--weights", str(HAPT), "--subjects", "3,16",
                                 "--limit", "2", "--no-plots", "--no-progress")
    assert code == 0, err
    assert err == ("ffkit: warning: subject 3 is among the bootstrap subjects 1-15 "
                   "(models/hapt.ffw and ffkit train --dataset hapt learn from them): "
                   "accuracy on it is not held-out\n")
    assert "per subject: 3 " in stdout   # and the run went on
    code, stdout, err = run_main("stream", "--weights", str(HAPT), "--subjects", "16",
                                 "--limit", "2", "--no-plots", "--no-progress")
    assert code == 0 and err == ""


def test_another_models_file_is_refused_with_how_to_change_the_model(micropython, tmp_path):
    boards = {"digits": _board(tmp_path, "digits", DIGITS),
              "hapt": _board(tmp_path, "hapt", HAPT)}
    for cmd in (("import", str(HAPT), "--port", "sim://%s" % boards["digits"]),
                ("stream", "--weights", str(HAPT), "--port", "sim://%s" % boards["digits"],
                 "--limit", "2", "--no-plots", "--no-progress")):
        code, _, err = run_main(*cmd)
        assert code == 1
        assert "n_features is 72 in the file, 64 on the board" in err, cmd
        assert "`ffkit flash --model FILE`" in err, cmd
    code, _, err = run_main("import", str(DIGITS), "--port", "sim://%s" % boards["hapt"])
    assert code == 1
    assert "n_features is 64 in the file, 72 on the board" in err
    assert "`ffkit flash --model FILE`" in err


def test_demo_warns_on_a_bootstrap_subject_and_survives_a_session_too_short_to_score(
        micropython, tmp_path):
    """`ffkit demo --subjects 3 --limit 1`: the same warning as stream's, and a table with
    "-" where a session was too short to score (it raised TypeError on None before)."""
    code, stdout, err = run_main("demo", "--subjects", "3", "--limit", "1", "--no-bootstrap",
                                 "--plots", str(tmp_path / "plots"), "--no-progress")
    assert code == 0, err
    assert err.startswith("ffkit: warning: subject 3 is among the bootstrap subjects 1-15")
    assert re.search(r"^\s+3\s+-\s+-\s+-$", stdout, re.M), stdout
    assert "mean accuracy - frozen -> - adapted on the board, which equals" in stdout


def test_a_reader_that_goes_away_gets_no_error_message(micropython, tmp_path):
    """`ffkit info --port P | head -1` printed `ffkit: [Errno 32] Broken pipe` (here the
    reader, `true`, is gone before ffkit writes: the same fault, every time)."""
    import subprocess
    import sys

    r = subprocess.run("%s -m ffkit.cli info --port sim://%s | true"
                       % (sys.executable, tmp_path / "board"),
                       shell=True, capture_output=True, text=True, timeout=60)
    assert r.stderr == "", r.stderr
    assert (tmp_path / "board").is_dir()   # it did run: the virtual board booted there
