"""A/B checkpoints on the board's filesystem (LittleFS, FAT or a unix folder alike).

Two slot files, ckpt_a.bin (slot 0) and ckpt_b.bin (slot 1), each:

    offset  size  content
    0       4     magic b"FFCK"
    4       4     u32 sequence number (1, 2, 3, ... across both slots)
    8       N     a .ffw file (ffrt.ffw)
    8+N     4     u32 CRC-32 of bytes 0 .. 8+N

`save` writes the slot that does not hold the newest valid checkpoint, so a power cut at
any byte of a write loses at most the checkpoint being written: the other slot still holds
the one before it. `newest` and `load_newest` check both slots fully (both CRCs and every
.ffw check) before touching a net, and take the valid one with the highest sequence
number. Files are streamed in 256-byte chunks both ways: never a second 32 KB copy.

An import is staged in import.tmp chunk by chunk (`stage_open`, `stage_write`), then
`commit_stage` checks it, writes it as the next checkpoint (the atomic step: after a power
cut, boot finds either the old or the new weights) and only then loads it into the net.

>>> import tempfile
>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> st = Storage(tempfile.mkdtemp())
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)))
>>> st.save(net), st.save(net), st.newest()[:2], st.load_newest(net)
((1, 0), (2, 1), (2, 1), 2)
"""

import os
import struct

from ffrt import ffw
from ffrt.crc32 import crc32

MAGIC = b"FFCK"
SLOTS = ("ckpt_a.bin", "ckpt_b.bin")
STAGE = "import.tmp"
_HEAD = 8
_COPY = 256


class _CrcIO:
    """A file seen through its CRC: every byte read or written is chained into crc."""

    def __init__(self, f, crc=0):
        self.f = f
        self.crc = crc

    def readinto(self, mv):
        n = self.f.readinto(mv)
        if n:
            self.crc = crc32(mv[:n], self.crc)
        return n

    def write(self, b):
        self.f.write(b)
        self.crc = crc32(b, self.crc)


def _sync(f):
    """Push a written file to the medium before it counts as a checkpoint."""
    f.flush()
    fsync = getattr(os, "fsync", None)
    if fsync:  # CPython
        fsync(f.fileno())
    f.close()
    if not fsync and hasattr(os, "sync"):  # MicroPython ports that have it
        os.sync()


class Storage:
    """Checkpoints and the import stage in one folder ("" is the current one)."""

    def __init__(self, folder=""):
        self.folder = folder
        self.seq = None   # newest valid checkpoint, once known
        self.slot = None
        self._stage = None

    def path(self, name):
        return self.folder + "/" + name if self.folder else name

    def check_slot(self, slot, cfg=None):
        """(seq, Config) of a slot that passes every check (cfg: the net's shape), or None."""
        try:
            f = open(self.path(SLOTS[slot]), "rb")
        except OSError:
            return None
        try:
            h = bytearray(_HEAD)
            if f.readinto(h) != _HEAD or h[:4] != MAGIC:
                return None
            seq = struct.unpack_from("<I", h, 4)[0]
            src = _CrcIO(f, crc32(h))
            fcfg = ffw.check_stream(src, cfg)[0]
            # exactly the CRC is left: bytes after it mean a file this module did not write
            if f.readinto(h) != 4 or struct.unpack_from("<I", h, 0)[0] != src.crc:
                return None
            return seq, fcfg
        except (ffw.FFWError, OSError):
            return None
        finally:
            f.close()

    def newest(self, cfg=None):
        """(seq, slot, Config) of the newest valid checkpoint (cfg: of this shape), or None."""
        best = None
        for slot in (0, 1):
            r = self.check_slot(slot, cfg)
            if r is not None and (best is None or r[0] > best[0]):
                best = (r[0], slot, r[1])
        if cfg is None:
            self.seq, self.slot = best[:2] if best else (None, None)
        return best

    def load_newest(self, net):
        """Load the newest checkpoint that fits net; return its seq, or None (net untouched)."""
        best = self.newest(net.cfg)
        if best is None:
            return None
        self.load(net, best[1])
        return best[0]

    def load(self, net, slot):
        """Load one slot into net (ffw.load_stream: checked first; FFWError: untouched)."""
        with open(self.path(SLOTS[slot]), "rb") as f:
            f.seek(_HEAD)
            ffw.load_stream(net, f)

    def _write_slot(self, fill):
        """Write the next checkpoint with fill(out) writing its .ffw; return (seq, slot)."""
        if self.seq is None:
            self.newest()
        seq = (self.seq or 0) + 1
        slot = 0 if self.slot is None else 1 - self.slot
        f = open(self.path(SLOTS[slot]), "wb")
        try:
            h = bytearray(_HEAD)
            h[:4] = MAGIC
            struct.pack_into("<I", h, 4, seq)
            out = _CrcIO(f)
            out.write(h)
            fill(out)
            f.write(struct.pack("<I", out.crc))
        finally:
            _sync(f)
        self.seq, self.slot = seq, slot
        return seq, slot

    def save(self, net):
        """Checkpoint net (streamed through ffw_write.write); return (seq, slot)."""
        from ffrt import ffw_write  # the writer: loaded when a checkpoint is written
        return self._write_slot(lambda out: ffw_write.write(net, out))

    # ---- the import stage ----------------------------------------------------------------

    def stage_open(self):
        self.stage_close()
        self._stage = open(self.path(STAGE), "wb")

    def stage_write(self, data):
        f = self._stage
        if f is None:
            raise OSError("no import staged (stage_open first)")
        f.write(data)

    def stage_close(self, remove=False):
        """Close import.tmp; remove=True: delete it too (a refused or abandoned import)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        if remove:
            try:
                os.remove(self.path(STAGE))
            except OSError:  # never written
                pass

    def commit_stage(self, net, size):
        """Check import.tmp (size bytes), checkpoint it, load it into net; return seq.

        Raises FFWError (net and checkpoints untouched) when the staged file is refused.
        The net is loaded from the staged file it has just checked (the same bytes the
        checkpoint now holds), so the file is checked once, not twice: an import's peak of
        heap is what sets the smallest heap the firmware runs in.
        """
        self.stage_close()
        name = self.path(STAGE)
        with open(name, "rb") as f:
            try:
                cfg, m = ffw.check_stream(f, net.cfg, size)
            except ffw.FFWError:
                f.close()
                self.stage_close(True)
                raise
            f.seek(0)
            buf = bytearray(_COPY)

            def copy(out):
                n = f.readinto(buf)
                while n:
                    out.write(memoryview(buf)[:n])
                    n = f.readinto(buf)
            seq, slot = self._write_slot(copy)
            del copy, buf
            f.seek(0)
            ffw._copy(net, f, cfg, m)
        os.remove(name)
        return seq
