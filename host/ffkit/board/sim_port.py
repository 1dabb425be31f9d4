"""sim:// ports: boards booted for a link, and the one way to open any port a user names.

    open_port(url)      a link to url: sim://DIR[?heap=96K&machine=cortex-m3] boots DIR's
                        firmware on a private pty first (stopped when the link closes);
                        anything else is ffkit.board.link.open_link's (a device, a pyserial URL)
    make_board(dir, machine)   the unix port's VirtualBoard or an emulated QemuBoard

Above ffkit.board.link, ffkit.board.sim and ffkit.board.qemu, which it joins: the link
layer knows ports, not boards (tests/test_layers.py).
"""

from pathlib import Path

from ffkit import UsageError
from ffkit.board.link import SIM_SCHEME, SerialLink, open_link
from ffkit.board.sim import VirtualBoard


def open_port(url, timeout=1.0):
    """A link to url (module docstring); the errors of ffkit.board.link.open_link."""
    if url and url.startswith(SIM_SCHEME):
        return open_sim(url[len(SIM_SCHEME):], timeout)
    return open_link(url, timeout=timeout)


def make_board(dir, machine="unix", heap=None, register=False, **kw):
    """A VirtualBoard (machine "unix") or an ffkit.board.qemu.QemuBoard, not started."""
    if machine == "unix":
        return VirtualBoard(dir, heap=heap, register=register, **kw)
    from ffkit.board.qemu import QemuBoard
    return QemuBoard(dir, machine, heap=heap, register=register, **kw)


class SimLink(SerialLink):
    """A link to a virtual board started for it (``sim://DIR``), stopped on close."""

    def __init__(self, ser, name, board):
        super().__init__(ser, name)
        self.board = board

    def console(self):
        """What the firmware printed outside frames (ffkit.board.client quotes it when the
        board does not answer)."""
        return self.board.console()

    def close(self):
        try:
            super().close()
        finally:
            self.board.stop()


def open_sim(spec, timeout=1.0):
    """``sim://DIR[?heap=96K]``: boot DIR's firmware on a private pty for this link."""
    path, _, query = spec.partition("?")
    if not path:
        raise UsageError("sim:// needs a folder, e.g. sim://board1 or sim:///tmp/board1")
    opts = {"heap": None, "machine": "unix"}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key not in opts:
            raise UsageError("sim://: unknown option %r (known: heap, machine)" % key)
        opts[key] = value
    if opts["machine"] not in ("unix", "cortex-m3", "cortex-m4", "cortex-m0"):
        raise UsageError("sim://: machine must be unix, cortex-m3, cortex-m4 or cortex-m0")
    # The board's own folder is made if missing (as ffkit sim --dir), but only inside an
    # existing one: a mistyped path should not leave a tree of folders and a booted board.
    parent = Path(path).parent
    if not parent.is_dir():
        raise UsageError("sim://%s: no folder %s (a virtual board's folder is created only "
                         "inside an existing one)" % (path, parent))
    vb = make_board(path, opts["machine"], heap=opts["heap"]).start()
    try:
        inner = open_link(vb.port, timeout=timeout)
    except BaseException:
        vb.stop()
        raise
    return SimLink(inner.serial, SIM_SCHEME + path, vb)
