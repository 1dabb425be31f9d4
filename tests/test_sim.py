"""The virtual board (ffkit.board.sim): pty wiring, bundles in its folder, `ffkit sim` and its CLI.

The firmware side of the pty is exercised with ffrt.port.StdioPort itself (the echo bundle
below), since that is where a wrongly wired pty shows: StdioPort relies on VMIN=0 reads,
which only a pty slave gives it.
"""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ffkit import FFKitError, cli
from ffkit.board.client import connect
from ffkit.board.link import REGISTRY_ENV
from ffkit.board.sim import VirtualBoard
from ffrt import ffw_ram
from ffrt.model import Config
from ffrt.net import FFNet

pytestmark = pytest.mark.device

ECHO_MAIN = """
from ffrt.port import StdioPort
p = StdioPort()
buf = bytearray(256)
while True:
    n = p.readinto(buf)
    if not n:
        p.wait(50)
        continue
    if buf[n - 1] == 0x71 and n >= 2 and buf[n - 2] == 0x71:  # "qq": leave
        break
    p.write(buf[:n])
p.close()
"""


def run_main(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def read_exactly(link, n, timeout=5.0):
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += link.read(n - len(got), deadline - time.monotonic())
    return got


def read_until(link, marker, timeout=5.0):
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got and time.monotonic() < deadline:
        got += link.read(4096, deadline - time.monotonic())
    return got


def test_every_byte_passes_both_ways_and_repl_follows(tmp_path):
    d = tmp_path / "echo"
    d.mkdir()
    (d / "main.py").write_text(ECHO_MAIN)   # a bundle in DIR wins over the repo firmware
    from ffkit.board.link import open_link
    with VirtualBoard(d) as vb, open_link(vb.port) as link:
        data = bytes(range(256)) * 4
        link.write(data)
        assert read_exactly(link, len(data)) == data
        small = b"\x03\x0d\x0a\x11\x13"      # Ctrl-C, CR, LF, XON, XOFF: data, not control
        link.write(small)
        assert read_exactly(link, len(small)) == small
        link.write(b"qq")                    # main.py returns: the REPL (-i) takes the port
        assert b">>> " in read_until(link, b">>> ")
        link.write(b"print(6 * 7)\r")
        assert b"42" in read_until(link, b"42\n>>> ")


def test_fake_bundle_and_power_cut_keep_the_port(tmp_path):
    d = tmp_path / "fake"
    d.mkdir()
    src = os.path.join(os.path.dirname(__file__), "fake_board.py")
    (d / "fake_board.py").write_text(open(src).read())
    (d / "main.py").write_text("import fake_board\nfake_board.serve_stdio()\n")
    with VirtualBoard(d) as vb:
        port, pid = vb.port, vb.pid
        with connect(vb.port) as board:
            assert board.firmware == "fake-0"
            board.learn([1, 2, 3, 4], 1)
            vb.power_cut()
            assert not vb.running and vb.returncode == -signal.SIGKILL
            vb.start()
            assert vb.port == port and vb.pid != pid and vb.boots == 2
            board.hello(timeout=2.0)          # the same open port, a rebooted board
            assert board.info()["step"] == 0  # the fake keeps nothing across a power cut


def test_heap_option_limits_the_firmware(tmp_path):
    with VirtualBoard(tmp_path / "small", heap="192K") as vb, connect(vb.port) as board:
        info = board.info()
    assert info["mem_free"] + info["mem_alloc"] <= 192 * 1024
    assert run_main("sim", "--dir", str(tmp_path), "--heap", "lots")[0] == 2


def test_boot_failure_is_visible_on_the_console(tmp_path):
    # ffrt compiled from source does not fit in 64 KB next to the digits net
    with VirtualBoard(tmp_path / "tiny", heap="64K") as vb:
        deadline = time.monotonic() + 10
        while "MemoryError" not in vb.console() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "MemoryError" in vb.console() and vb.running   # in the REPL (-i)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    reg = tmp_path / "registry"
    monkeypatch.setenv(REGISTRY_ENV, str(reg))
    import serial.tools.list_ports as lp
    monkeypatch.setattr(lp, "comports", lambda *a, **k: [])   # only the sims count here
    return reg


def start_sim(tmp_path, *extra):
    p = subprocess.Popen([sys.executable, "-m", "ffkit.cli", "sim", "--dir",
                          str(tmp_path / "board"), "--json", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ))
    first = json.loads(p.stdout.readline())
    return p, first


def test_ffkit_sim_json_and_board_verbs(tmp_path, registry):
    p, first = start_sim(tmp_path)
    try:
        assert set(first) >= {"port", "pid"} and first["port"].startswith("/dev/pts/")
        with connect(first["port"]) as board:       # the port answers HELLO
            assert board.info()["boot"] == "fresh"
        code, out, err = run_main("ports", "--json")
        assert code == 0 and [q["port"] for q in json.loads(out)["ports"]] == [first["port"]]

        code, out, err = run_main("info", "--json")   # auto-detect: the one sim
        assert code == 0, err
        info = json.loads(out)
        assert info["port"] == first["port"] and info["model"]["layers"] == [128, 128]

        out_file = tmp_path / "a.ffw"
        code, out, err = run_main("export", "-o", str(out_file), "--json", "--no-progress")
        assert code == 0, err
        exported = json.loads(out)
        assert out_file.read_bytes() == bytes(ffw_ram.encode(FFNet(Config())))
        assert exported["file_bytes"] == 32138 and exported["step"] == 0

        donor = FFNet(Config(seed=5))
        donor_file = tmp_path / "donor.ffw"
        donor_file.write_bytes(bytes(ffw_ram.encode(donor)))
        code, out, err = run_main("import", str(donor_file), "--port", first["port"],
                                  "--no-progress")
        assert code == 0, err
        assert "imported" in out and "step 0" in out

        small = tmp_path / "small.ffw"
        small.write_bytes(bytes(ffw_ram.encode(FFNet(Config(layers=(32, 32))))))
        code, out, err = run_main("import", str(small), "--no-progress")
        assert code == 1
        assert "model signature differs: layers is (32, 32) in the file, (128, 128) on " \
               "the board" in err

        bad = tmp_path / "bad.ffw"
        bad.write_bytes(donor_file.read_bytes()[:1000])
        code, out, err = run_main("import", str(bad))
        assert code == 1 and "refused: truncated" in err

        code, out, err = run_main("monitor", "--count", "2", "--interval", "0.05", "--json")
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == 2 and {"step", "mem_free", "margin", "time"} <= set(lines[0])
        code, out, err = run_main("monitor", "--count", "1")
        assert code == 0 and "step 0" in out and "heap free" in out

        with connect(first["port"]):                  # busy: one program at a time
            code, out, err = run_main("info", "--port", first["port"])
        assert code == 1 and "may be in use by another program" in err
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    assert list(registry.glob("*.json")) == []        # unregistered on exit
    code, out, err = run_main("info")
    assert code == 1 and "no board found" in err


def test_ffkit_sim_restart_boots_from_checkpoint(tmp_path, registry):
    p, first = start_sim(tmp_path, "--restart")
    try:
        with connect(first["port"], timeout=0.3) as board:
            board.stream([([1] * 64, 3)] * 5)
            board.checkpoint()
            saved = board.export()
            board.stream([([2] * 64, 4)] * 5)
            os.kill(first["pid"], signal.SIGKILL)     # a power cut
            event = json.loads(p.stdout.readline())
            assert event["event"] == "restarted" and event["pid"] != first["pid"]
            assert event["after"] == -signal.SIGKILL
            board.hello(timeout=2.0)
            info = board.info()
            assert info["boot"] == "checkpoint" and info["step"] == 5
            assert board.export() == saved
        entries = [json.loads(f.read_text()) for f in registry.glob("*.json")]
        assert [e["pid"] for e in entries] == [event["pid"]]   # the registry follows
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0


def test_ffkit_sim_without_restart_exits_1(tmp_path, registry):
    p, first = start_sim(tmp_path)
    os.kill(first["pid"], signal.SIGKILL)
    assert p.wait(10) == 1
    event = json.loads(p.stdout.readline())
    assert event == {"event": "exited", "returncode": -signal.SIGKILL}


def test_ffkit_sim_reports_a_boot_traceback(tmp_path, registry):
    p, first = start_sim(tmp_path, "--heap", "64K")
    try:
        event = json.loads(p.stdout.readline())
        assert event["event"] == "traceback" and "MemoryError" in event["text"]
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0


def test_sim_url_boots_a_board_per_link_and_one_board_per_folder(tmp_path):
    d = tmp_path / "board"
    with connect("sim://%s" % d) as board:
        board.stream([([1] * 64, 3)] * 3)
        board.checkpoint()
        with pytest.raises(FFKitError, match="in use by another virtual board"):
            VirtualBoard(d).start()        # two boards must not share one filesystem
    with connect("sim://%s" % d) as board:  # the same folder boots from its checkpoint
        assert board.info()["step"] == 3 and board.info()["boot"] == "checkpoint"
    code, out, err = run_main("info", "--port", "sim://%s?heap=1M" % d, "--json")
    assert code == 0 and json.loads(out)["mem_free"] < 1 << 20
