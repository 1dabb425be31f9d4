"""The emulated microcontrollers (ffkit.board.qemu): the firmware on Cortex-M3 and Cortex-M0.

MicroPython built for QEMU's mps2-an385 (Cortex-M3, viper) and microbit (nRF51, Cortex-M0,
pure kernels) with ffrt frozen, on a pseudo-terminal as `ffkit sim --machine` runs it:
every protocol verb, the board's littlefs on a flash image that survives power cuts, the
HAPT stream bit-identical with the host, a log recorded on the board that replays on the
host. Skipped with one line where QEMU is missing, except under CI=true (conftest.qemu).
"""

import contextlib
import io
import json
import os
import random
import signal
import threading
import time

import pytest

from ffrt import ffw_ram

from ffkit import cli
from ffkit.board.client import Board, connect
from ffkit.board.link import open_link


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _samples(n, cfg, seed=3):
    rnd = random.Random(seed)
    return [([rnd.randrange(cfg.in_max + 1) for _ in range(cfg.n_features)],
             rnd.randrange(cfg.n_classes)) for _ in range(n)]


@pytest.fixture
def m3(qemu, tmp_path):
    with qemu.QemuBoard(tmp_path / "board", "cortex-m3", heap="192K") as b:
        yield b


def test_the_cortex_m3_board_serves_every_verb_and_keeps_its_flash(m3, repo_root):
    digits = (repo_root / "models" / "digits.ffw").read_bytes()
    with connect(m3.port, timeout=5.0, hello_timeout=20.0) as b:
        info = b.info()
        assert (info["board"], info["boot"]) == ("cortex-m3", "fresh")
        b.import_weights(digits)
        assert b.export() == digits               # export right after import: same bytes
        net = ffw_ram.load(digits)
        for x, y in _samples(5, net.cfg):
            b.learn(x, y)
            net.learn_one(x, y)
        assert b.predict(x)[0] == net.predict_one(x)
        assert b.checkpoint()[0] >= 2
        want = b.export()
        assert want == bytes(ffw_ram.encode(net))     # the board's 32-bit bits are the host's
    assert (m3.dir / "flash.bin").stat().st_size == 1048576
    m3.power_cut()                                # SIGKILL to QEMU, then boot again
    m3.start()
    with connect(m3.port, timeout=5.0, hello_timeout=20.0) as b:
        assert b.info()["boot"] == "checkpoint"
        assert b.export() == want                 # littlefs kept the checkpoint


def test_power_cuts_during_imports_leave_the_old_or_the_new_weights(m3, repo_root):
    """SIGKILL to QEMU at random moments of an import: littlefs on the flash image and the
    A/B checkpoints leave exactly the old or the new weights after a reboot."""
    a = (repo_root / "models" / "digits.ffw").read_bytes()
    net = ffw_ram.load(a)
    for x, y in _samples(10, net.cfg, seed=5):
        net.learn_one(x, y)
    b_ = bytes(ffw_ram.encode(net))
    link = open_link(m3.port, timeout=5.0)
    try:
        board = Board(link, hello_timeout=20.0)
        board.import_weights(a)
        t0 = time.monotonic()
        board.import_weights(b_)
        duration = time.monotonic() - t0
        state = board.export()
        rnd = random.Random(7)
        outcomes = []
        for i in range(6):
            new = a if state == b_ else b_
            offset = (i + rnd.random()) * duration / 6
            pid = m3.pid
            timer = threading.Timer(offset, lambda: os.kill(pid, signal.SIGKILL))
            timer.start()
            try:
                board.import_weights(new)
            except Exception:  # the cut: no reply, or a reply cut short
                pass
            timer.join()
            m3.power_cut()
            m3.start()
            board = Board(link, hello_timeout=20.0)
            got = board.export()
            assert got in (state, new), "neither old nor new after a cut at %.2f s" % offset
            outcomes.append(got == new)
            state = got
        assert len(outcomes) == 6
    finally:
        link.close()


def test_hapt_stream_log_and_replay_on_the_cortex_m3(qemu, tmp_path, repo_root):
    """`ffkit stream` to the emulated board: bit-identical with the host twin; the log it
    recorded on the board (littlefs) replays identically on the host."""
    d = tmp_path / "board"
    d.mkdir()
    (d / "model.ffw").write_bytes((repo_root / "models" / "hapt.ffw").read_bytes())
    log = tmp_path / "s.ffl"
    with qemu.QemuBoard(d, "cortex-m3", heap="192K") as vb:
        code, out, err = _cli("stream", "--dataset", "hapt", "--weights",
                              str(repo_root / "models" / "hapt.ffw"), "--port", vb.port,
                              "--subjects", "21", "--limit", "8", "--no-plots", "--json",
                              "--log", str(log), "--timeout", "10")
        assert code == 0, err
        r = json.loads(out)
        assert r["bit_identical"] is True and r["windows"] == 24
        code, out, err = _cli("monitor", "--port", vb.port, "--count", "1", "--json")
        assert code == 0, err
        assert json.loads(out.splitlines()[0])["step"] == r["board_step"]
    code, out, err = _cli("replay", str(log), "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["identical"] is True and rep["final_weights_crc32"] is not None


def test_the_cortex_m0_board_runs_the_pure_kernels_and_streams(qemu, tmp_path, repo_root):
    d = tmp_path / "board"
    d.mkdir()
    (d / "model.ffw").write_bytes((repo_root / "models" / "hapt.ffw").read_bytes())
    with qemu.QemuBoard(d, "cortex-m0", heap="128K") as vb:
        with connect(vb.port, timeout=10.0, hello_timeout=30.0) as b:
            info = b.info()
            assert (info["board"], info["boot"]) == ("cortex-m0", "model.ffw")
        code, out, err = _cli("stream", "--dataset", "hapt", "--weights",
                              str(repo_root / "models" / "hapt.ffw"), "--port", vb.port,
                              "--subjects", "21", "--limit", "3", "--no-plots", "--json",
                              "--timeout", "30")
        assert code == 0, err
        assert json.loads(out)["bit_identical"] is True


# The tiny model (models/hapt-tiny, issue 16) on the Cortex-M0 today: the whole firmware
# (every request, littlefs, the live learner) streams it in TINY_STREAM_HEAP; `ffkit bench
# --machine cortex-m0` bisects the least heap (min_heap_kb_stream_tiny). The issue's
# target is a 10 KB heap; tools/heap_budget.py shows where the heap goes.
TINY_STREAM_HEAP = "36K"


def test_the_cortex_m0_streams_the_tiny_model_and_reports_its_headroom(qemu, tmp_path,
                                                                       repo_root):
    d = tmp_path / "board"
    d.mkdir()
    w = repo_root / "models" / "hapt-tiny.ffw"
    (d / "model.ffw").write_bytes(w.read_bytes())
    with qemu.QemuBoard(d, "cortex-m0", heap=TINY_STREAM_HEAP) as vb:
        code, out, err = _cli("stream", "--dataset", "hapt", "--weights", str(w),
                              "--port", vb.port, "--subjects", "16", "--limit", "16",
                              "--no-plots", "--json", "--timeout", "30")
        assert code == 0, err
        r = json.loads(out)
        assert r["bit_identical"] is True
        assert 0 < r["min_free_heap_bytes"] < int(TINY_STREAM_HEAP[:-1]) * 1024
        assert r["frozen_accuracy"] is not None and r["adapted_accuracy"] is not None
        assert not vb.console(), vb.console()


def test_the_heap_budget_counts_what_the_tiny_model_holds(qemu, repo_root):
    """tools/heap_budget.py on the Cortex-M0: each part costs at least the bytes of the
    buffers it holds (the net's tensors, the windower's 2 KB ring, the rehearsal buffer)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(repo_root / "tools" / "heap_budget.py")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    parts = dict(b["parts"])
    assert parts["net"] >= b["net_ram_bytes"] > 78 * 16
    assert parts["live learner (windower)"] >= 2 * 8 * 128
    assert parts["rehearsal buffer"] >= 6 * b["per_class"] * 72
    assert all(n > 0 for n in parts.values()), parts


def test_sim_machine_prints_the_port_and_refuses_a_heap_too_large(qemu, tmp_path):
    code, out, err = _cli("sim", "--machine", "cortex-m0", "--dir", str(tmp_path / "b"),
                          "--heap", "1M")
    assert code == 1 and "more than the cortex-m0 image's 192 KB" in err
    r = qemu.run_json("cortex-m3", "import json, sys\nfrom ffrt import boards\n"
                      "print(json.dumps([boards.detect(), sys.implementation._machine]))\n")
    assert r[0] == "cortex-m3" and "Cortex-M3" in r[1]


def test_a_sim_url_boots_an_emulated_board_for_one_command(qemu, tmp_path):
    code, out, err = _cli("info", "--port", "sim://%s?machine=cortex-m3&heap=96K"
                          % (tmp_path / "b"), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["board"] == "cortex-m3" and info["mem_free"] < 96 * 1024
    assert (tmp_path / "b" / "flash.bin").is_file()
