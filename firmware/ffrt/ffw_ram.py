"""The .ffw file as a whole in RAM: the host's helpers, built on ffrt.ffw's stream codec.

    encode(net)         the file, as a bytearray (allocated once, no second copy)
    encode_into(net, buf)   the file written into a buffer the caller keeps; its length
    load(data)          a new FFNet holding the file's state (every check first)
    load_into(net, data)    net's state replaced by data's; every Config field must match
    decode_config(data) the Config in a file's header (the whole file or its start)
    weights_crc32(net)  CRC-32 of the tensor section alone (what replay and parity compare)
    BytesReader(buf)    a read-only file over a buffer, for ffw.load_stream

Each one is the streaming writer or reader over a buffer (ffw_write.write,
ffw_write.encode_range, ffw.check_stream): the layout and the checks live in ffrt.ffw. They run on a board
too, where RAM allows; the firmware never loads this module (it streams), and the host
imports it by name (`from ffrt import ffw_ram`). A refused file raises
ffw.FFWError and leaves the target net untouched.

>>> from ffrt import ffw, ffw_write
>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)))
>>> data = encode(net)
>>> len(data) == ffw.file_size(net.cfg), load(data).head == net.head
(True, True)
>>> load_into(net, data[:40])
Traceback (most recent call last):
...
ffrt.ffw.FFWError: truncated: 40 bytes, header says 260
"""

from ffrt import ffw, ffw_write
from ffrt.crc32 import crc32
from ffrt.model import FIELDS
from ffrt.net import FFNet

_ALL = tuple(name for name, _ in FIELDS)  # load_into: the whole signature must match


class _Into:
    """A stream whose write() fills buf from its start (for ffw_write.write)."""

    def __init__(self, buf):
        self.buf = buf
        self.n = 0

    def write(self, b):
        k = len(b)
        self.buf[self.n:self.n + k] = b
        self.n += k


def encode_into(net, buf):
    """Write net's .ffw file into buf (at least file_size(net.cfg) bytes); return its length."""
    n = ffw.file_size(net.cfg)
    if len(buf) < n:
        raise ffw.FFWError("size mismatch: the buffer holds %d bytes, the file needs %d"
                           % (len(buf), n))
    return ffw_write.write(net, _Into(buf))


def encode(net):
    """The .ffw file of net, as a bytearray (bytes-like; equal to the bytes)."""
    buf = bytearray(ffw.file_size(net.cfg))
    encode_into(net, buf)
    return buf


def weights_crc32(net):
    """CRC-32 of the encoded tensor section alone (what replay and parity compare)."""
    m = ffw.file_size(net.cfg) - 4
    head = ffw_write._header(net, m + 4)
    buf = bytearray(256)
    crc = 0
    for a in range(len(head), m, 256):
        k = min(256, m - a)
        ffw_write.encode_range(net, a, buf, k, head)
        crc = crc32(memoryview(buf)[:k], crc)
    return crc


def decode_config(data):
    """The Config in a .ffw header (data may be the whole file or just its start)."""
    return ffw._parse(data)[0]


class BytesReader:
    """A read-only file over a buffer, without the copy io.BytesIO makes (for load_stream)."""

    def __init__(self, buf, n=None):
        self._mv = memoryview(buf)[:len(buf) if n is None else n]
        self._pos = 0

    def readinto(self, mv):
        k = min(len(mv), len(self._mv) - self._pos)
        mv[:k] = self._mv[self._pos:self._pos + k]
        self._pos += k
        return k

    def seek(self, pos):
        self._pos = pos

    def tell(self):
        return self._pos


def load(data, kernels=None):
    """A new FFNet holding the state in data (every check first)."""
    f = BytesReader(data)
    cfg, m = ffw.check_stream(f, None, len(data))
    net = FFNet(cfg, kernels, init=False)
    f.seek(0)
    ffw._copy(net, f, cfg, m)
    return net


def load_into(net, data):
    """Replace net's state by data's; on any refusal (FFWError) net is left untouched."""
    f = BytesReader(data)
    cfg, m = ffw.check_stream(f, net.cfg, len(data), _ALL)
    sizes = [(len(w), len(r)) for w, r in zip(net.weights, net.rngs)]
    want = [(a * b, 2 * b) for a, b in zip(cfg.layer_inputs(), cfg.layers)]
    if sizes != want or len(net.head) != cfg.n_classes * cfg.head_inputs():
        raise ffw.FFWError("size mismatch: the net's buffers do not match its Config")
    f.seek(0)
    ffw._copy(net, f, cfg, m)
