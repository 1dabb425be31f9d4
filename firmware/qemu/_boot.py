# Frozen into ffkit's emulated boards (firmware/qemu): run at every boot before main.py.
# Mounts littlefs v2 on the flash image, a file in the board's folder on the host
# (ffkit_board: QEMU semihosting), as / and makes it the current folder; the filesystem's
# modules come before the frozen ones, so a flashed ffrt (.mpy) replaces the frozen one.
import sys
import vfs
from micropython import const

import ffkit_board

_BLOCK = const(4096)


class Flash:
    """A block device over the flash image (littlefs's extended protocol: offsets)."""

    def __init__(self, path, size):
        self.blocks = ffkit_board.flash_open(path, size) // _BLOCK

    def readblocks(self, n, buf, off=0):
        ffkit_board.flash_read(n * _BLOCK + off, buf)

    def writeblocks(self, n, buf, off=0):
        ffkit_board.flash_write(n * _BLOCK + off, buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return _BLOCK
        return 0  # init, deinit, sync, erase (a file needs no erase)


def _arg(name, default):
    for word in ffkit_board.cmdline().split():
        if word.startswith(name + "="):
            return word[len(name) + 1:]
    return default


_bdev = Flash(_arg("flash", "flash.bin"), int(_arg("flash_size", "1048576")))
try:
    vfs.mount(vfs.VfsLfs2(_bdev), "/")
except OSError:  # a new (erased) image
    vfs.VfsLfs2.mkfs(_bdev)
    vfs.mount(vfs.VfsLfs2(_bdev), "/")
import os  # noqa: E402
os.chdir("/")
sys.path[:] = ["", ".frozen"]


def _copy_in(name):
    """The host file `name` (beside the image, in the board's folder; one level of folder
    at most, as "ffrt/net.mpy") onto the board, unless the board's copy has the same
    bytes: what a host put in the folder (a model.ffw, a main.py) the board sees, as the
    unix port's virtual board does."""
    n = ffkit_board.host_size(name)
    if n < 0:
        return
    buf = bytearray(512)
    same = True
    try:
        with open(name, "rb") as f:
            off = 0
            while same and off < n:
                k = ffkit_board.host_read(name, off, buf)
                same = f.read(k) == buf[:k]
                off += k
            same = same and f.read(1) == b""
    except OSError:
        same = False
    if same:
        return
    slash = name.rfind("/")
    if slash > 0:  # a file in a folder (ffrt/net.mpy): the folder first
        try:
            os.mkdir(name[:slash])
        except OSError:  # it exists
            pass
    with open(name, "wb") as f:
        off = 0
        while off < n:
            k = ffkit_board.host_read(name, off, buf)
            f.write(buf[:k] if k < len(buf) else buf)
            off += k


for _name in _arg("copy", "").split(","):
    if _name:
        _copy_in(_name)
del os, _arg, _copy_in  # the block device keeps Flash and _BLOCK
