"""ffkit repl: a serving virtual board stops serving and hands its port to the REPL, where
the real mpremote (``connect PORT resume``) answers within seconds; a board that learnt is
checkpointed first; a board already at the REPL is left there; a silent port fails fast."""

import json
import os
import pty
import subprocess
import time

import pytest

from ffkit.board.client import connect
from ffkit.board.flash import find_mpremote
from ffkit.board.sim import VirtualBoard
from test_cli import run_main


def mpremote_exec(port, code, timeout=20):
    return subprocess.run([find_mpremote(), "connect", port, "resume", "exec", code],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.device
def test_repl_hands_a_serving_board_to_mpremote(tmp_path):
    with VirtualBoard(tmp_path / "board") as vb:
        with connect(vb.port, hello_timeout=10) as board:
            assert board.info()["boot"] == "fresh"   # serving: the REPL is not there
        code, out, err = run_main("repl", "--port", vb.port)
        assert code == 0, err
        assert "stopped serving and handed the port back to the REPL" in out
        assert "next:  mpremote connect %s resume" % vb.port in out
        assert "saved" not in out                 # a fresh board that never learnt
        t0 = time.monotonic()
        r = mpremote_exec(vb.port, "print(1+1)")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "2"
        assert time.monotonic() - t0 < 10
        assert vb.running
        # at the REPL already: left there, and mpremote still answers
        code, out, err = run_main("repl", "--port", vb.port, "--json")
        assert code == 0, err
        res = json.loads(out)
        assert res["was"] is None and res["next"] == "mpremote connect %s resume" % vb.port
        r = mpremote_exec(vb.port, "print(2+3)")
        assert r.returncode == 0 and r.stdout.strip() == "5", r.stderr


@pytest.mark.device
def test_repl_checkpoints_a_board_that_learnt(tmp_path):
    d = tmp_path / "board"
    with VirtualBoard(d) as vb:
        with connect(vb.port, hello_timeout=10) as board:
            for y in (1, 2, 3):
                step, _, _ = board.learn([y] * 64, y)
        code, out, err = run_main("repl", "--port", vb.port, "--json")
        assert code == 0, err
        res = json.loads(out)
        assert res["was"]["step"] == step == 3
        assert res["saved"]["step"] == 3 and res["prompt"]
        assert list(d.glob("ckpt_*.bin"))
        vb.restart()                               # what a reset does: boots the checkpoint
        with connect(vb.port, hello_timeout=10) as board:
            info = board.info()
        assert (info["boot"], info["step"]) == ("checkpoint", 3)


def test_repl_on_a_silent_port_fails_within_5_s():
    master, slave = pty.openpty()                 # nothing ever answers on the other end
    try:
        t0 = time.monotonic()
        code, out, err = run_main("repl", "--port", os.ttyname(slave))
        assert time.monotonic() - t0 < 5
        assert code == 1
        assert "says nothing" in err and "no MicroPython REPL answered" in err
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.device
def test_mpremote_mip_installs_ffrt_from_the_package_index_after_ffkit_repl(tmp_path,
                                                                            repo_root):
    """firmware/package.json as mip reads it, onto a (virtual) board: ffkit repl, then the
    real `mpremote mip install`; the board then holds every ffrt module, byte for byte."""
    firmware = repo_root / "firmware"
    with VirtualBoard(tmp_path / "board") as vb:
        code, out, err = run_main("repl", "--port", vb.port)
        assert code == 0, err
        r = subprocess.run([find_mpremote(), "connect", vb.port, "resume", "mip", "install",
                            "--target", "lib", "package.json"],  # the board's own lib/
                           cwd=firmware, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-1000:] + r.stderr[-1000:]
    installed = sorted((tmp_path / "board" / "lib" / "ffrt").glob("*.py"))
    shipped = sorted((firmware / "ffrt").glob("*.py"))
    assert [p.name for p in installed] == [p.name for p in shipped]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(installed, shipped))


@pytest.mark.device
def test_repl_takes_the_port_as_mpremote_does(tmp_path):
    """`ffkit repl PORT`, mpremote's habit, as well as `--port PORT`; two ports are refused."""
    code, out, err = run_main("repl", "/dev/pts/a", "--port", "/dev/pts/b")
    assert code == 2 and "two ports: /dev/pts/a and --port /dev/pts/b" in err
    with VirtualBoard(tmp_path / "board") as vb:
        code, out, err = run_main("repl", vb.port, "--json")
        assert code == 0, err
        assert json.loads(out)["was"] is not None       # it was serving, and now is not
        r = mpremote_exec(vb.port, "print(3*3)")
        assert r.returncode == 0 and r.stdout.strip() == "9", r.stderr
