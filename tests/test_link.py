"""Links: loop:// round trip, the busy-port hint on a real pty, port listing and auto-detect."""

import json
import os
import subprocess
import sys
import time
import tty

import pytest

from ffkit import FFKitError, UsageError
from ffkit.board import link as L
from ffrt import proto
from ffrt import proto_host


def test_loop_round_trip_frames():
    frame = proto_host.encode_frame(proto.HELLO, 9, b"\x00abc\x00")
    with L.open_link("loop://") as link:
        link.write(b"\x00" + frame)
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < len(frame) + 1 and time.monotonic() < deadline:
            got += link.read(1024, 0.5)
        assert got == b"\x00" + frame
        assert link.read(10, 0.05) == b""      # nothing more: empty after the timeout


def test_loop_read_returns_at_most_n():
    with L.open_link("loop://") as link:
        link.write(bytes(range(1, 11)))
        assert link.read(4, 1.0) == bytes([1, 2, 3, 4])
        assert link.read(100, 1.0) == bytes(range(5, 11))


@pytest.fixture
def pty_pair():
    m, s = os.openpty()
    tty.setraw(s)
    yield m, os.ttyname(s)
    os.close(m)
    os.close(s)


def test_pty_link_reads_and_writes_every_byte(pty_pair):
    master, port = pty_pair
    data = bytes(range(256))
    with L.open_link(port) as link:
        link.write(data)
        got = b""
        while len(got) < 256:
            chunk = os.read(master, 4096)
            got += chunk
        assert got == data
        os.write(master, data)
        got = b""
        while len(got) < 256:
            got += link.read(4096, 1.0)
        assert got == data


def test_busy_port_says_in_use(pty_pair):
    _, port = pty_pair
    with L.open_link(port):
        with pytest.raises(L.LinkError, match="may be in use by another program"):
            L.open_link(port)
    L.open_link(port).close()        # free again once the first one closed


def test_busy_port_across_processes(pty_pair):
    _, port = pty_pair
    code = ("import serial,sys,time; s=serial.Serial(sys.argv[1],115200,exclusive=True); "
            "print('open',flush=True); time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", code, port], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "open"
        with pytest.raises(L.LinkError, match="may be in use"):
            L.open_link(port)
    finally:
        p.kill()
        p.wait()


def test_missing_port_hint():
    with pytest.raises(L.LinkError, match="no such port .*ffkit ports"):
        L.open_link("/dev/ffkit-no-such-port")


def test_choose_port_auto_detect():
    one = [{"port": "/dev/ttyACM0", "kind": "serial", "description": "Pico"}]
    two = one + [{"port": "/dev/pts/7", "kind": "sim", "description": "ffkit virtual board"}]
    assert L.choose_port("/dev/ttyUSB3", candidates=two) == "/dev/ttyUSB3"
    assert L.choose_port(None, candidates=one) == "/dev/ttyACM0"
    with pytest.raises(FFKitError, match="no board found") as e:
        L.choose_port(None, candidates=[])
    assert not isinstance(e.value, UsageError)          # exit 1
    with pytest.raises(UsageError, match="2 boards found.*--port.*/dev/ttyACM0 "
                                         r"\(Pico\).*/dev/pts/7"):
        L.choose_port(None, candidates=two)              # exit 2


def test_registry_lists_live_sims_only(tmp_path, monkeypatch, pty_pair):
    monkeypatch.setenv(L.REGISTRY_ENV, str(tmp_path))
    _, port = pty_pair
    assert L.running_sims() == []
    live = L.register_sim({"port": port, "pid": os.getpid(), "dir": "/x"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ("%d.json" % dead.pid)).write_text(json.dumps({"port": port, "pid": dead.pid}))
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "1.json").write_text(json.dumps({"port": "/dev/nope", "pid": 1}))
    sims = L.running_sims()
    assert [s["pid"] for s in sims] == [os.getpid()]
    ports = L.list_ports()
    assert {"port": port, "kind": "sim"}.items() <= [p for p in ports if p["kind"] == "sim"][0].items()
    live.unlink()
    assert L.running_sims() == []


def test_cli_several_boards_exit_2_none_exit_1(tmp_path, monkeypatch):
    import contextlib
    import io

    import serial.tools.list_ports as lp

    from ffkit import cli

    monkeypatch.setenv(L.REGISTRY_ENV, str(tmp_path))
    monkeypatch.setattr(lp, "comports", lambda *a, **k: [])

    def run(*argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return cli.main(list(argv)), err.getvalue()

    code, err = run("info")
    assert code == 1 and "ffkit: no board found (is it plugged in? try ffkit ports)" in err
    fds = [os.openpty() for _ in range(2)]
    try:
        ports = [os.ttyname(s) for _, s in fds]
        for pid, port in zip((os.getpid(), os.getppid()), ports):
            L.register_sim({"port": port, "pid": pid, "sim_pid": pid, "dir": "/b"})
        code, err = run("export", "-o", str(tmp_path / "x.ffw"))
        assert code == 2 and "2 boards found, choose one with --port" in err
        assert ports[0] in err and ports[1] in err
    finally:
        for m, s in fds:
            os.close(m)
            os.close(s)


class _FailingSerial:
    """A pyserial stand-in whose write and read raise as pyserial's posix port does on an
    unplugged device: SerialException('write failed: [Errno 5] ...')."""
    port = "/dev/ttyFAKE"
    in_waiting = 0
    timeout = 0

    def fileno(self):
        raise NotImplementedError

    def write(self, data):
        import serial
        raise serial.SerialException("write failed: [Errno 5] Input/output error")

    def read(self, n):
        import serial
        raise serial.SerialException("read failed: [Errno 5] Input/output error")

    def close(self):
        pass


def test_write_and_read_failures_say_so_once():
    # issue 12 item 5: "write failed: write failed: ..." repeated pyserial's own prefix
    link = L.SerialLink(_FailingSerial())
    with pytest.raises(L.LinkError) as e:
        link.write(b"x")
    assert str(e.value) == "/dev/ttyFAKE: write failed: [Errno 5] Input/output error"
    with pytest.raises(L.LinkError) as e:
        link.read(10, 0.01)
    assert str(e.value) == "/dev/ttyFAKE: read failed: [Errno 5] Input/output error"


def test_write_failure_of_a_pty_whose_other_end_closed():
    m, s = os.openpty()
    tty.setraw(s)
    port = os.ttyname(s)
    try:
        with L.open_link(port) as link:
            os.close(m)
            m = None
            with pytest.raises(L.LinkError) as e:
                for _ in range(1000):   # until the kernel refuses it
                    link.write(b"\x00" * 4096)
            msg = str(e.value)
            assert msg.count("failed") == 1 and msg.startswith(port + ": write failed: "), msg
    finally:
        if m is not None:
            os.close(m)
        os.close(s)


# ---- DTR and RTS (ESP32 boards reset while RTS is asserted and DTR is not) ----------------


@pytest.fixture
def line_changes(monkeypatch):
    """Every DTR/RTS change pyserial makes on a port, as ("dtr"|"rts", state), recorded
    on the way to the real ioctl. A pty has no such lines and refuses it (ENOTTY), which
    would stop pyserial's open after DTR; the spy takes that refusal as a device's
    acceptance, so the record is what a port with lines gets."""
    import errno
    import serial

    seen = []
    for line in ("dtr", "rts"):
        real = getattr(serial.Serial, "_update_%s_state" % line)

        def spy(self, real=real, line=line):
            seen.append((line, getattr(self, "_%s_state" % line)))
            try:
                return real(self)
            except OSError as e:
                if e.errno != errno.ENOTTY:
                    raise
        monkeypatch.setattr(serial.Serial, "_update_%s_state" % line, spy)
    return seen


def _never_rts_alone(changes, dtr=True, rts=True):
    """Replay the changes from a state (Linux's after open: both asserted): True unless
    RTS was ever asserted while DTR was not (an ESP32's EN low: a reset)."""
    for line, state in changes:
        if line == "dtr":
            dtr = state
        else:
            rts = state
        if rts and not dtr:
            return False
    return True


def test_a_device_opens_and_closes_without_an_esp32_reset_pulse(pty_pair, line_changes):
    _, port = pty_pair
    link = L.open_link(port)
    ser = link.serial
    # pyserial's default (both asserted, as Linux raised them on open): no line moves
    assert (ser.dtr, ser.rts) == (True, True)
    assert line_changes == [("dtr", True), ("rts", True)]
    del line_changes[:]
    link.close()
    assert line_changes == [("rts", False), ("dtr", False)]   # RTS released first
    assert _never_rts_alone(line_changes) and not ser.is_open


def test_closing_a_pty_that_refuses_the_lines_is_no_error(pty_pair):
    _, port = pty_pair
    link = L.open_link(port)
    link.close()                      # both ioctls refused (ENOTTY): closed all the same
    assert not link.serial.is_open


def test_a_cp210x_on_windows_opens_with_both_lines_released_first(pty_pair, line_changes,
                                                                   monkeypatch):
    """mpremote's Windows rule for Silicon Labs bridges, on this pty as if it were one (the
    enumeration and the ioctls' success are what is stood in for: pyserial's own port)."""
    from types import SimpleNamespace
    from serial.tools import list_ports

    _, port = pty_pair
    monkeypatch.setattr(list_ports, "grep", lambda url: [SimpleNamespace(
        device=url, vid=L.VID_SILICON_LABS if url == port else None)])
    assert L.release_lines_first(port, "nt") and not L.release_lines_first(port, "posix")
    with L.open_link(port, os_name="nt") as link:
        assert line_changes == [("dtr", False), ("rts", False),   # applied as it opens
                                ("dtr", True), ("rts", True)]     # then DTR, then RTS
        assert (link.serial.dtr, link.serial.rts) == (True, True)
    assert line_changes[4:] == [("rts", False), ("dtr", False)]
    assert _never_rts_alone(line_changes, dtr=False, rts=False)
