"""The .ffw writer: any byte range of a net's file, encoded on demand (ffrt.ffw's layout).

    write(net, stream)   stream the whole file to stream.write through 256 bytes of
                         scratch; return its length (a checkpoint)
    encode_range(net, start, out, n)   bytes start .. start+n of the file into out[0:n],
                         with no pass over the file and no buffer of its size (an export)
    stream_crc(net)      (the CRC stored at the file's end, the CRC-32 of the whole file)

The layout, its constants and its checks are ffrt.ffw's; this module only writes them.
A board loads it for a checkpoint or an export (imported by name where used), so
booting and importing, which only read, never hold its code.

>>> import io
>>> from ffrt import ffw
>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)))
>>> f = io.BytesIO()
>>> write(net, f) == ffw.file_size(net.cfg) == len(f.getvalue())
True
>>> out = bytearray(8); _ = encode_range(net, 0, out, 8); bytes(out[:4])
b'FFKW'
"""

import struct

from ffrt import ffw
from ffrt.crc32 import crc32
from ffrt.model import FIELDS


def _header(net, length):
    """Everything before the tensors: fixed header, signature, state."""
    cfg = net.cfg
    if not 0 <= net.step < 1 << 32:
        raise ffw.FFWError("value out of range: step %d does not fit u32" % net.step)
    b = bytearray(ffw.FIXED + ffw._sig_size(len(cfg.layers)) + ffw.STATE)
    struct.pack_into("<4sHI3sB", b, 0, ffw.MAGIC, ffw.VERSION, length, ffw.DTYPES, len(FIELDS))
    off = ffw.FIXED
    for name, default in FIELDS:
        v = getattr(cfg, name)
        if name == "layers" or ffw._per_layer(name, default):
            b[off] = len(v)
            fmt = "<H" if name == "layers" else "<i"
            off += 1
            for e in v:
                struct.pack_into(fmt, b, off, e)
                off += 2 if name == "layers" else 4
        else:
            struct.pack_into("<i", b, off, v)
            off += 4
    struct.pack_into("<I4H", b, off, net.step, net.rng[0], net.rng[1],
                     net.head_rng[0], net.head_rng[1])
    return b


def encode_range(net, start, out, n, head=None, crc=None):
    """Write bytes start .. start+n of net's .ffw file into out[0:n]; return n.

    Random access for a chunked export: no pass over the file, no buffer of its size.
    head (what _header gives: everything before the tensors) and crc (the stored CRC) may
    be kept by the caller for a whole export; else they are computed (the CRC by
    streaming the file once).
    """
    m = ffw.file_size(net.cfg)
    if start < 0 or n < 0 or start + n > m:
        raise ValueError("range %d..%d is outside the file's %d bytes" % (start, start + n, m))
    if head is None:
        head = _header(net, m)
    if crc is None and start + n > m - 4:
        crc = stream_crc(net)[0]
    sec = 0  # file offset of the current section
    k = 0    # bytes written to out
    last = 2 * net.n_layers + 1
    for s in range(last + 1):
        arr = head if s == 0 else net.head if s == last else \
            net.weights[s >> 1] if s & 1 else net.rngs[(s >> 1) - 1]
        size = len(arr) if s == 0 or s & 1 and s != last else 2 * len(arr)
        a = start + k - sec
        e = min(sec + size, start + n) - sec
        if s == 0:
            for i in range(a, e):
                out[k] = arr[i]
                k += 1
        elif s & 1 and s != last:
            for i in range(a, e):
                out[k] = arr[i] ^ 0x80  # offset-binary -> int8
                k += 1
        else:
            for i in range(a, e):
                out[k] = (arr[i >> 1] >> (8 * (i & 1))) & 0xFF  # u16/int16, little-endian
                k += 1
        sec += size
    while k < n:  # the stored CRC, little-endian
        out[k] = (crc >> (8 * (start + k - sec))) & 0xFF
        k += 1
    return n


def _stream(net, out=None):
    """The CRC of net's file before its stored CRC, writing those bytes to out if given."""
    m = ffw.file_size(net.cfg) - 4
    head = _header(net, m + 4)
    buf = bytearray(256)
    mv = memoryview(buf)
    c = 0
    for a in range(0, m, 256):
        k = min(256, m - a)
        encode_range(net, a, buf, k, head)
        ch = mv if k == 256 else mv[:k]
        if out is not None:
            out.write(ch)
        c = crc32(ch, c)
    return c


def write(net, stream):
    """Stream net's .ffw file to stream.write without holding it; return its length."""
    stream.write(struct.pack("<I", _stream(net, stream)))
    return ffw.file_size(net.cfg)


def stream_crc(net):
    """(CRC stored in net's .ffw file, CRC-32 of the whole file), by streaming the encoding."""
    c = _stream(net)
    return c, crc32(struct.pack("<I", c), c)
