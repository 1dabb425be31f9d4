"""The .ffw weight file: one codec for board and host (MicroPython 1.22+ and CPython 3.10+).

Layout, little-endian throughout (L = number of layers):

    offset  size        type      content
    0       4           bytes     magic b"FFKW"
    4       2           u16       format version (1)
    6       4           u32       file length N in bytes, this header and the CRC included
    10      3           ascii     tensor dtypes b"bHh": int8 weights, u16 PRNG, int16 head
    13      1           u8        number of signature fields F (len(model.FIELDS): 23)
    14      ...                   signature: the first F model.FIELDS entries, in order
              2L+1        layers:    u8 count L, then L x u16 widths
              4L+1        act_shift, theta, gshift: u8 count L, then L x i32
              4           any other field: i32
    S       4           u32       step (learn_one calls so far)
    S+4     4           2 x u16   rng      (xorshift32 state: hi, lo)
    S+8     4           2 x u16   head_rng (hi, lo)
    S+12    ...                   tensors, for each layer l in order:
              n_out*n_in  int8       weights, row-major: unit i's inputs at i*n_in
              4*n_out     n_out x 2 x u16  per-unit PRNG states (hi, lo)
            then
              2*C*H       int16      head, row-major [n_classes][head_inputs]
    N-4     4           u32       CRC-32 (IEEE, = zlib.crc32) of bytes 0 .. N-4

Weights are plain int8 (two's complement) in the file; RAM keeps them offset-binary
(byte = weight + 128), so each byte is flipped with ^ 0x80 on the way. The digits model
(74-128-128, 10 classes) gives S = 122 and N = 32138 bytes, 32000 of them tensors.

Fields are only ever appended to model.FIELDS, and a reader takes a file with fewer of
them than it knows (at least the 21 of the first release): the missing ones keep their
defaults, which are the behaviour of the files that lack them (``recurrent`` 0,
``label_repeat`` 1). A file with more fields than the reader knows is refused (a newer
ffkit wrote it). Writers always write every field.

Readers check, in this order and before touching a net: magic, version, length (truncation),
CRC, signature (a valid Config; equal to the target net's), sizes and value ranges (no int8
-128, head within +-4095, no all-zero PRNG state). Each refusal is an FFWError naming it.

This module is the format (its layout and constants, here alone) and its streaming
reader; nothing the file's size is held. `check_stream` runs every check over a
file-like object in 256-byte chunks, and `load_stream` checks (pass 1), seeks back and
copies (pass 2). `load_stream` asks only that the file fit the net (_SHAPE: the buffers
and the input pipeline); the file's hyperparameters come with its weights.

Two modules build on it, each imported by name where it is used: ffrt.ffw_write, the
streaming writer (`write`
streams a net's file through a 256-byte scratch, `encode_range` encodes any byte range
of it on demand and `stream_crc` its CRC, for checkpoints and chunked exports), and
ffrt.ffw_ram, the host's whole-file helpers (`encode`, `encode_into`, `load`,
`load_into`, `weights_crc32`, `decode_config`, `BytesReader`). A board loads the writer
only to write (a checkpoint, an export) and never the whole-file helpers, so booting and
importing hold the reader alone. Measured in the
unix port: a 74-128-128 net holds 35 KB, its file 32 KB. On a 32-bit board the CRC and a
large step are long ints (above 2**30); each is formed once per file or per 256-byte
chunk, never per byte.

>>> import io
>>> from ffrt import ffw_write
>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)))
>>> f = io.BytesIO()
>>> ffw_write.write(net, f) == file_size(net.cfg) == len(f.getvalue())
True
>>> _ = f.seek(0); check_stream(f, net.cfg) == (net.cfg, 260)
True
>>> load_stream(net, io.BytesIO(f.getvalue()[:40]))
Traceback (most recent call last):
...
ffrt.ffw.FFWError: truncated: 40 bytes, header says 260
"""

import struct

from ffrt.crc32 import crc32
from ffrt.model import FIELDS, Config

try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int  # type: ignore[assignment]

MAGIC = b"FFKW"
VERSION = 1
DTYPES = b"bHh"
FIXED = const(14)      # magic, version, length, dtypes, field count
STATE = const(12)      # step, rng, head_rng
_HEAD_W_MAX = const(4095)  # = kernels_ref.HEAD_W_MAX (tests hold them equal)
_SCRATCH = const(256)
# fields a file must share with the net it goes into: its buffers and its input pipeline
_SHAPE = ("n_features", "n_classes", "layers", "goodness_from", "pipeline", "recurrent",
          "label_repeat")
_FIELDS_MIN = const(21)  # the first release's fields; later ones default when absent


class FFWError(ValueError):
    """A .ffw file was refused; the message names the fault."""


def _per_layer(name, default):
    return name != "layers" and (default is None or isinstance(default, tuple))


def _sig_size(n_layers, n_fields=None):
    """Bytes of the signature of a model with n_layers layers (its first n_fields fields;
    all by default)."""
    n = 0
    for name, default in FIELDS[:n_fields]:
        n += 1 + 2 * n_layers if name == "layers" else \
            1 + 4 * n_layers if _per_layer(name, default) else 4
    return n


def _tensor_size(cfg):
    n = 2 * cfg.n_classes * cfg.head_inputs()
    for n_in, n_out in zip(cfg.layer_inputs(), cfg.layers):
        n += n_out * n_in + 4 * n_out
    return n


def file_size(cfg, n_fields=None):
    """Length in bytes of the .ffw file of a net with Config cfg (as written: every field;
    n_fields: a file with that many signature fields)."""
    return FIXED + _sig_size(len(cfg.layers), n_fields) + STATE + _tensor_size(cfg) + 4


def _fields_fault(k):
    """The FFWError for a file with k signature fields, or None when k is readable."""
    if _FIELDS_MIN <= k <= len(FIELDS):
        return None
    return FFWError("model signature differs: the file has %d fields, this reader knows %d%s"
                    % (k, len(FIELDS), " (a newer ffkit wrote it)" if k > len(FIELDS) else ""))


# ---- reading: every check in one pass of 256-byte chunks, then the copy ------------------

def _prefix(data):
    """Check magic and version; return the file length the header gives."""
    n = len(data)
    if n == 0:
        raise FFWError("empty file")
    if bytes(data[:4]) != MAGIC[:min(n, 4)]:
        raise FFWError("bad magic")
    if n < 6:
        raise FFWError("truncated: %d bytes, the fixed header alone is %d" % (n, FIXED))
    v = struct.unpack_from("<H", data, 4)[0]
    if v != VERSION:
        raise FFWError("unsupported format version %d (this reader knows %d)" % (v, VERSION))
    if n < 10:
        raise FFWError("truncated: %d bytes, the fixed header alone is %d" % (n, FIXED))
    return struct.unpack_from("<I", data, 6)[0]


def _truncated(n, m):
    return FFWError("truncated: %d bytes, header says %d" % (n, m))


def _parse(data):
    """Parse the fixed header and signature; return (Config, offset of the state)."""
    m = _prefix(data)
    n = len(data)
    if n < FIXED:
        raise _truncated(n, m)
    if bytes(data[10:13]) != DTYPES:
        raise FFWError("model signature differs: dtypes is %r in the file, %r in this reader"
                       % (bytes(data[10:13]), DTYPES))
    fault = _fields_fault(data[13])
    if fault is not None:
        raise fault
    kw = {}
    off = FIXED
    for name, default in FIELDS[:data[13]]:
        if name == "layers" or _per_layer(name, default):
            if off >= n:
                raise _truncated(n, m)
            k = data[off]
            fmt = "<%dH" % k if name == "layers" else "<%di" % k
            size = struct.calcsize(fmt)
            if off + 1 + size > n:
                raise _truncated(n, m)
            kw[name] = struct.unpack_from(fmt, data, off + 1)
            off += 1 + size
        else:
            if off + 4 > n:
                raise _truncated(n, m)
            kw[name] = struct.unpack_from("<i", data, off)[0]
            off += 4
    try:
        cfg = Config(**kw)
    except ValueError as e:
        raise FFWError("bad model signature: %s" % e) from None
    return cfg, off


def signature_config(sig):
    """The Config of a signature block (its field count, then the fields: what a .ffl log
    header holds); FFWError when it is not a valid one. A block with fewer fields than
    this reader knows gives the missing ones their defaults, as a .ffw file would."""
    return _parse(MAGIC + struct.pack("<HI", VERSION, 0) + DTYPES + bytes(sig))[0]


def _u16(data, o):
    return data[o] | (data[o + 1] << 8)


class _In:
    """Reads the bytes asked for, chaining the CRC; a short read is a truncation."""

    def __init__(self, f, m):
        self.f = f
        self.m = m
        self.n = 0
        self.crc = 0

    def take(self, mv, crc=True, short=False):
        """Fill mv (short=True: up to the end of the file); return the bytes read."""
        k = 0
        while k < len(mv):
            r = self.f.readinto(mv[k:])
            if not r:
                break
            k += r
        self.n += k
        if k < len(mv):
            if not short:
                raise _truncated(self.n, self.m)
            mv = mv[:k]
        if crc:
            self.crc = crc32(mv, self.crc)
        return k


def _sections(cfg):
    """(kind, bytes, layer) of each tensor section: 0 weights, 1 PRNG states, 2 head."""
    for l, (n_in, n_out) in enumerate(zip(cfg.layer_inputs(), cfg.layers)):
        yield 0, n_in * n_out, l
        yield 1, 4 * n_out, l
    yield 2, 2 * cfg.n_classes * cfg.head_inputs(), 0


def _frame_size(n, m):
    if n < m:
        raise _truncated(n, m)
    if n > m:
        raise FFWError("size mismatch: %d bytes, header says %d" % (n, m))
    if m < FIXED + STATE + 4:
        raise FFWError("size mismatch: header says %d bytes, too few for any model" % m)


def check_stream(f, cfg=None, size=None, same=_SHAPE):
    """Every check of a .ffw file, read in 256-byte chunks; return (Config, length).

    f needs readinto and is left just after the file's last byte (a container may follow).
    cfg: the file must share its `same` fields with it, by default _SHAPE (the net's
    buffers and input pipeline), so hyperparameters (theta, shifts, lr...) may differ;
    ffw_ram.load_into asks for every field. size: the bytes the caller holds, when known
    (a file longer or shorter than its header says is refused). The first fault is
    raised as an FFWError; a CRC mismatch is named before any fault in the content.
    """
    buf = bytearray(_SCRATCH)
    mv = memoryview(buf)
    src = _In(f, 0)
    k = src.take(mv[:FIXED], True, True)
    src.m = m = _prefix(mv[:k])
    if size is not None:
        _frame_size(size, m)
    if k < FIXED or m < FIXED + STATE + 4:
        _frame_size(k, m)
    # the signature's length follows from its layer count (every scalar field comes first)
    lc = FIXED
    for name, _ in FIELDS:
        if name == "layers":
            break
        lc += 4
    hb = bytearray(min(lc + 1, m - 4))
    hb[:FIXED] = mv[:FIXED]
    src.take(memoryview(hb)[FIXED:])
    if len(hb) > lc:
        nfield = min(max(hb[13], _FIELDS_MIN), len(FIELDS))  # a bad count: _parse names it
        big = min(FIXED + _sig_size(hb[lc], nfield) + STATE, m - 4)
        hb2 = bytearray(big)
        hb2[:len(hb)] = hb
        src.take(memoryview(hb2)[len(hb):])
        hb = hb2
    fault = None
    fcfg = None
    try:
        o = FIXED
        for name, default in FIELDS[:hb[13]]:  # a wrong count would shift later fields
            if name == "layers":
                o += 1 + 2 * hb[lc]
            elif _per_layer(name, default):
                if o < len(hb) and hb[o] != hb[lc]:
                    raise FFWError("bad model signature: %s needs one value per layer" % name)
                o += 1 + 4 * hb[lc]
            else:
                o += 4
        fcfg, off = _parse(hb)
        if cfg is not None:
            for name in same:
                a, b = getattr(fcfg, name), getattr(cfg, name)
                if a != b:
                    raise FFWError("model signature differs: %s is %r in the file, %r in"
                                   " the model" % (name, a, b))
        if file_size(fcfg, hb[13]) != m:
            raise FFWError("size mismatch: the signature needs %d bytes, header says %d"
                           % (file_size(fcfg, hb[13]), m))
        for o, what in ((off + 4, "rng"), (off + 8, "head_rng")):
            if _u16(hb, o) | _u16(hb, o + 2) == 0:
                raise FFWError("value out of range: %s state is zero" % what)
    except FFWError as e:
        fault = e
    if fault is None:
        for kind, length, l in _sections(fcfg):
            for a in range(0, length, _SCRATCH):
                c = min(_SCRATCH, length - a)
                src.take(mv[:c])
                if fault is not None:
                    continue
                if kind == 0:  # the range fault in this chunk of the section, if any
                    i = buf.find(b"\x80", 0, c)
                    if i >= 0:
                        fault = FFWError("value out of range: layer %d weight %d is -128"
                                         " (kept in -127..127)" % (l, a + i))
                    continue
                for i in range(0, c, 4 if kind == 1 else 2):
                    v = _u16(buf, i)
                    if kind == 1 and v | _u16(buf, i + 2) == 0:
                        fault = FFWError("value out of range: layer %d unit %d PRNG state"
                                         " is zero" % (l, (a + i) >> 2))
                        break
                    if kind == 2 and _HEAD_W_MAX < v < 0x10000 - _HEAD_W_MAX:
                        fault = FFWError("value out of range: head weight %d is %d (kept"
                                         " in +-%d)" % ((a + i) >> 1, v - 0x10000 if v &
                                                        0x8000 else v, _HEAD_W_MAX))
                        break
    while src.n < m - 4:  # the content could not be parsed: the CRC still decides first
        src.take(mv[:min(_SCRATCH, m - 4 - src.n)])
    src.take(mv[:4], False)
    want = struct.unpack_from("<I", buf, 0)[0]
    if want != src.crc:
        raise FFWError("CRC mismatch (file says 0x%08x, data gives 0x%08x)" % (want, src.crc))
    if fault is not None:
        raise fault
    return fcfg, m


def load_stream(net, f, size=None):
    """Check the file at f's position (check_stream), then seek back and copy it into net.

    Two passes over the file with 256 bytes of scratch; on any refusal net is untouched.
    The file must fit the net's shape; its hyperparameters come with it (net.cfg becomes
    the file's Config), as they do in a checkpoint written after a change of settings.
    f needs readinto, seek and tell; it is left after the file. Returns the file's length.
    """
    start = f.tell()
    cfg, m = check_stream(f, net.cfg, size)
    f.seek(start)
    _copy(net, f, cfg, m)
    return m


def _copy(net, f, cfg, m):
    """Copy a checked file of Config cfg and m bytes, at f's position, into net."""
    buf = bytearray(_SCRATCH)
    mv = memoryview(buf)
    src = _In(f, m)
    hb = bytearray(m - _tensor_size(cfg) - 4)
    src.take(memoryview(hb), False)
    for kind, length, l in _sections(cfg):
        arr = net.weights[l] if kind == 0 else net.rngs[l] if kind == 1 else net.head
        for a in range(0, length, _SCRATCH):
            c = min(_SCRATCH, length - a)
            if kind == 0:
                src.take(memoryview(arr)[a:a + c], False)
                for i in range(a, a + c):
                    arr[i] ^= 0x80  # int8 -> offset-binary
                continue
            src.take(mv[:c], False)
            o = a >> 1
            for i in range(0, c, 2):
                v = buf[i] | (buf[i + 1] << 8)
                arr[o] = v - 0x10000 if kind == 2 and v & 0x8000 else v
                o += 1
    src.take(mv[:4], False)
    step, r0, r1, h0, h1 = struct.unpack_from("<I4H", hb, len(hb) - STATE)
    net.rng[0], net.rng[1], net.head_rng[0], net.head_rng[1] = r0, r1, h0, h1
    net.step = step
    net.forget_outputs()  # the last prediction's goodness was the old weights'
    if cfg != net.cfg:  # the same settings: the net keeps its Config object
        net.cfg = cfg
