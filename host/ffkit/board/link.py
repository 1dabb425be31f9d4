"""Links to boards: one factory for serial devices, virtual boards and tests.

In the spirit of pyserial's ``serial_for_url``, `open_link` takes what the user typed after
``--port`` and returns a `Link`, a byte pipe with two methods that the protocol client
needs and nothing else:

    write(data)          send all of data
    read(n, timeout)     1..n bytes, or b"" when nothing arrived within timeout seconds

Accepted ports:

- a device path: ``/dev/ttyACM0``, ``/dev/ttyUSB0``, or ``/dev/pts/N`` of a virtual board
  (``ffkit sim``). Opened with pyserial at 115200 baud and ``exclusive=True`` (an advisory
  ``flock``), so two ffkit commands never interleave frames on one board; a port held by
  another program raises LinkError "... may be in use by another program". DTR and RTS
  are handled as mpremote handles them, so that an ESP32 board's auto-reset circuit (EN
  low, i.e. reset, while RTS is asserted and DTR is not) sees no reset pulse: on close RTS
  is released before DTR; on Windows a CP210x bridge opens with both released, then DTR,
  then RTS asserted (its driver otherwise asserts them apart after a power-on). Elsewhere
  the port opens with pyserial's default (both asserted, as Linux raised them on open;
  clearing them there would release DTR first: a reset), which native USB boards need
  (MicroPython's USB CDC sends nothing while DTR is released).
- ``sim://DIR`` (``sim://DIR?heap=96K``, ``&machine=cortex-m3``: an emulated
  microcontroller, ffkit.board.qemu): a virtual board (ffkit.board.sim) booted from the
  folder DIR for this link alone and stopped when it closes, e.g. ``ffkit info --port
  sim://board1``. One virtual board per folder at a time: a folder that a running
  ``ffkit sim`` serves is refused (talk to its /dev/pts/N instead).
- ``loop://``: pyserial's loopback (what is written is read back), for tests.
- any other ``scheme://`` that pyserial knows (``socket://host:port``, ``rfc2217://``).

    >>> link = open_link("loop://")
    >>> link.write(b"\\x00ping\\x00")
    >>> link.read(64, timeout=1.0)
    b'\\x00ping\\x00'
    >>> link.read(64, timeout=0.01)
    b''
    >>> link.close()

Finding boards: `list_ports` returns the serial devices pyserial sees plus the running
virtual boards (each ``ffkit sim`` writes a small JSON file into `registry_dir` and removes
it on exit; files whose process is gone are ignored). `choose_port` is ``--port``'s
auto-detect: one candidate is used, none or several are errors that say what to do.
"""

import errno
import json
import os
from pathlib import Path
import select
import tempfile

from ffkit import FFKitError, UsageError

BAUD = 115200
VID_SILICON_LABS = 0x10C4   # CP210x USB-UART bridges (most ESP32 dev boards)
_NO_LINES = (errno.ENOTTY, errno.EINVAL)   # a pty or socket has no DTR/RTS lines
SIM_SCHEME = "sim://"
REGISTRY_ENV = "FFKIT_SIM_REGISTRY"  # overrides registry_dir (tests use a private one)


class LinkError(FFKitError):
    """The link failed: a port that cannot be opened, is busy, or went away."""


class Link:
    """A byte pipe to a board. Subclasses implement write, read and close."""

    name = "?"

    def write(self, data):
        raise NotImplementedError

    def read(self, n, timeout):
        """Return 1..n bytes as soon as any are available, b"" after timeout seconds."""
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.name)


def _reason(e, what):
    """str(e) without the "write failed: " (what) pyserial's posix port already puts in
    front of the OS error: the LinkError says it once."""
    msg = str(e)
    while msg.startswith(what):
        msg = msg[len(what):].lstrip(": ")
    return msg or type(e).__name__


class SerialLink(Link):
    """A Link over a pyserial object (a device, ``loop://``, ``socket://`` ...).

    The wait for the first byte uses select() on the file descriptor when there is one,
    otherwise pyserial's own timeout (changed only when the caller's timeout changes).
    """

    def __init__(self, ser, name=None, lines=False):
        self._ser = ser
        self._lines = lines   # a serial device with DTR/RTS: released RTS first on close
        self.name = name or getattr(ser, "port", None) or getattr(ser, "portstr", "?")
        try:
            self._fd = ser.fileno()
        except (AttributeError, NotImplementedError, OSError, ValueError):
            self._fd = None
        except Exception:  # pyserial raises its own SerialException for unsupported fileno
            self._fd = None

    @property
    def serial(self):
        """The underlying pyserial object."""
        return self._ser

    def write(self, data):
        import serial
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as e:
            why = _reason(e, "write failed")
            raise LinkError("%s: write failed: %s" % (self.name, why)) from None

    def read(self, n, timeout):
        import serial
        ser = self._ser
        try:
            avail = ser.in_waiting
            if avail:
                return ser.read(min(n, avail))
            if self._fd is None:
                t = max(0.0, timeout)
                if ser.timeout != t:
                    ser.timeout = t
                first = ser.read(1)
                if not first or n == 1:
                    return first
                return first + ser.read(min(n - 1, ser.in_waiting))
            ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
            if not ready:
                return b""
            avail = ser.in_waiting
            if not avail:
                # readable but nothing to read: the other end hung up
                raise LinkError("%s: the device disconnected or the port was closed"
                                % self.name)
            return ser.read(min(n, avail))
        except (serial.SerialException, OSError) as e:
            why = _reason(e, "read failed")
            raise LinkError("%s: read failed: %s" % (self.name, why)) from None

    def close(self):
        try:
            if self._lines and self._ser.is_open:
                # as mpremote: RTS released before DTR, never RTS alone (an ESP32's reset)
                set_lines(self._ser, rts=False)
                set_lines(self._ser, dtr=False)
            self._ser.close()
        except Exception:  # closing a port that vanished must not hide the real error
            pass


def set_lines(ser, dtr=None, rts=None):
    """Set DTR and/or RTS (DTR first) on an open pyserial port; a port without the lines
    (a pty: ENOTTY) or one that vanished is not an error here (pyserial's open tolerates
    the same)."""
    import serial
    for name, value in (("dtr", dtr), ("rts", rts)):
        if value is None:
            continue
        try:
            setattr(ser, name, value)
        except (serial.SerialException, OSError) as e:
            if getattr(e, "errno", None) not in _NO_LINES and ser.is_open:
                raise LinkError("%s: cannot set %s: %s" % (ser.port, name.upper(), e)) \
                    from None


def release_lines_first(url, os_name=None):
    """Whether url opens with DTR and RTS released first (mpremote's rule: a Silicon Labs
    CP210x on Windows, whose driver asserts them at different times after power-on)."""
    if (os_name or os.name) != "nt":
        return False
    try:
        from serial.tools import list_ports
        info = list(list_ports.grep(url))
    except Exception:  # pragma: no cover - enumeration unavailable
        return False
    return bool(info) and getattr(info[0], "vid", None) == VID_SILICON_LABS


def _open_device(url, timeout, os_name=None):
    """A serial device opened as mpremote opens it (the module docstring: DTR and RTS)."""
    import serial
    ser = serial.Serial(None, BAUD, timeout=timeout, exclusive=True)   # not open yet
    ser.port = url
    if release_lines_first(url, os_name):
        ser.dtr = False   # applied as it opens: EN and GPIO0 high, a normal run
        ser.rts = False
        ser.open()
        set_lines(ser, dtr=True)   # DTR, then RTS: never RTS alone
        set_lines(ser, rts=True)
    else:
        ser.open()
    return ser


def open_link(url, timeout=1.0, os_name=None):
    """Open a port (device path or pyserial URL) and return a `SerialLink`.

    timeout: pyserial's read timeout for the port (seconds); `Link.read` takes its own.
    os_name: os.name unless given (which DTR/RTS rule applies, see the module docstring).
    Raises LinkError with a hint when the port does not exist or is busy.
    """
    import serial

    if not url:
        raise UsageError("no port given")
    if url.startswith(SIM_SCHEME):   # a board to boot first: a layer above this one
        raise UsageError("%s: sim:// ports are opened by ffkit.board.sim_port.open_port" % url)
    try:
        if "://" in url:
            ser = serial.serial_for_url(url, timeout=timeout)
        else:
            ser = _open_device(url, timeout, os_name)
    except serial.SerialException as e:
        raise LinkError(_open_error(url, e)) from None
    except OSError as e:  # pragma: no cover - pyserial wraps most of these
        raise LinkError("%s: %s" % (url, e.strerror or e)) from None
    except ValueError as e:  # a pyserial URL it cannot parse
        raise UsageError("%s: %s" % (url, e)) from None
    return SerialLink(ser, name=url, lines="://" not in url)


def _open_error(url, e):
    code = getattr(e, "errno", None)
    text = str(e)
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) or "exclusively lock" in text:
        return "%s may be in use by another program (close it, e.g. another ffkit, " \
               "mpremote or a terminal, and retry)" % url
    if code == errno.ENOENT or "No such file" in text:
        return "%s: no such port (is the board plugged in? try ffkit ports)" % url
    if code == errno.EACCES or "Permission denied" in text:
        return ("%s: permission denied (on Linux, add yourself to the 'dialout' group "
                "and log in again)" % url)
    return "%s: cannot open: %s" % (url, text)


# ---- finding boards -------------------------------------------------------------------------

def registry_dir(override=True):
    """Where running virtual boards register: $FFKIT_SIM_REGISTRY (unless override is
    False), else $XDG_RUNTIME_DIR/ffkit-sims, else <tmp>/ffkit-sims-<uid>."""
    env = os.environ.get(REGISTRY_ENV)
    if env and override:
        return Path(env)
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run and os.path.isdir(run):
        return Path(run) / "ffkit-sims"
    return Path(tempfile.gettempdir()) / ("ffkit-sims-%d" % os.getuid())


def pid_alive(pid):
    """True when a process with this id exists (signal 0 probes without sending)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _owner(entry):
    """The process that holds a virtual board's pty: the sim (its firmware may reboot)."""
    return int(entry.get("sim_pid", entry["pid"]))


def register_sim(entry):
    """Record a running virtual board ({"port", "pid", "sim_pid", ...}), one file per sim
    process (rewritten when its firmware reboots); returns the file written."""
    d = registry_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / ("%d.json" % _owner(entry))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)
    return path


def running_sims():
    """The registered virtual boards whose sim process is alive and whose port exists."""
    d = registry_dir()
    out = []
    if not d.is_dir():
        return out
    for f in sorted(d.glob("*.json")):
        try:
            entry = json.loads(f.read_text())
            pid, port = _owner(entry), str(entry["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or foreign: ignore
        if pid_alive(pid) and os.path.exists(port):
            out.append(entry)
    return out


def list_ports():
    """Every port that may hold a board: dicts with port, kind ("serial" or "sim"),
    description and auto (whether auto-detect considers it: USB serial devices, which is
    what boards with native USB or a USB-UART bridge are, and virtual boards; like
    mpremote's auto-connect, a legacy UART such as /dev/ttyS0 is used only by name)."""
    out = []
    try:
        from serial.tools import list_ports as lp
        infos = sorted(lp.comports(), key=lambda p: p.device)
    except Exception:  # pragma: no cover - platform without enumeration
        infos = []
    for p in infos:
        usb = p.vid is not None and p.pid is not None
        d = {"port": p.device, "kind": "serial", "auto": usb,
             "description": p.description or ""}
        if usb:
            d["usb"] = "%04x:%04x" % (p.vid, p.pid)
        if p.serial_number:
            d["serial_number"] = p.serial_number
        out.append(d)
    for s in running_sims():
        out.append({"port": s["port"], "kind": "sim", "auto": True,
                    "description": "ffkit virtual board (dir %s, pid %s)"
                    % (s.get("dir", "?"), s["pid"]),
                    "pid": s["pid"], "dir": s.get("dir")})
    return out


def choose_port(port=None, candidates=None):
    """The port to use: the one given, else the only candidate (auto-detect).

    No candidate raises FFKitError (exit 1); several raise UsageError (exit 2) that lists
    them, since guessing could send weights to the wrong board.

    >>> choose_port(candidates=[{"port": "/dev/ttyACM0", "description": "rp2"}])
    '/dev/ttyACM0'
    >>> choose_port(candidates=[])
    Traceback (most recent call last):
    ...
    ffkit.FFKitError: no board found (is it plugged in? try ffkit ports)
    """
    if port:
        return port
    if candidates is None:
        candidates = list_ports()
    candidates = [c for c in candidates if c.get("auto", True)]
    if len(candidates) == 1:
        return candidates[0]["port"]
    if not candidates:
        raise FFKitError("no board found (is it plugged in? try ffkit ports)")
    listing = "; ".join("%s (%s)" % (c["port"], c.get("description") or c.get("kind", ""))
                        for c in candidates)
    raise UsageError("%d boards found, choose one with --port: %s" % (len(candidates), listing))
