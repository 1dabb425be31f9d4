"""The .ffw weight file: one codec for board and host (MicroPython 1.22+ and CPython 3.10+).

Layout, little-endian throughout (L = number of layers):

    offset  size        type      content
    0       4           bytes     magic b"FFKW"
    4       2           u16       format version (1)
    6       4           u32       file length N in bytes, this header and the CRC included
    10      3           ascii     tensor dtypes b"bHh": int8 weights, u16 PRNG, int16 head
    13      1           u8        number of signature fields (len(model.FIELDS): 21)
    14      ...                   signature: each model.FIELDS entry, in that order
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
(74-128-128, 10 classes) gives S = 114 and N = 32130 bytes, 32000 of them tensors.

Readers check, in this order and before touching a net: magic, version, length (truncation),
CRC, signature (a valid Config; equal to the target net's), sizes and value ranges (no int8
-128, head within +-4095, no all-zero PRNG state). Each refusal is an FFWError naming it.

Memory on a board: `encode` allocates the file once (a bytearray, no second copy);
`encode_into` fills a buffer the caller keeps; `write` streams to a file through a 256-byte
scratch and never holds the file; `load`/`load_into` read the caller's bytes in place (one
copy: the caller's) and copy tensors straight into the net after every check has passed.
For files on a board's filesystem and chunked transfers, nothing the file's size is held:
`check_stream` runs every check over a file-like object in 256-byte chunks, `load_stream`
checks (pass 1), seeks back and copies (pass 2), and `encode_range` encodes any byte range
of a net's file on demand. `load_stream` asks only that the file fit the net (_SHAPE: the
buffers and the input pipeline); the file's hyperparameters come with its weights.
Measured in the unix port: a 74-128-128 net holds 35 KB, its file 32 KB. On a 32-bit board
the CRC and a large step are long ints (above 2**30); each is formed once per file or per
256-byte chunk, never per byte.

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)))
>>> data = encode(net)
>>> len(data) == file_size(net.cfg), load(data).head == net.head
(True, True)
>>> load_into(net, data[:40])
Traceback (most recent call last):
...
ffrt.ffw.FFWError: truncated: 40 bytes, header says 252
"""

import struct

from ffrt.crc32 import crc32
from ffrt.model import FIELDS, Config
from ffrt.net import FFNet

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAGIC = b"FFKW"
VERSION = 1
DTYPES = b"bHh"
_FIXED = const(14)     # magic, version, length, dtypes, field count
_STATE = const(12)     # step, rng, head_rng
_HEAD_W_MAX = const(4095)  # = kernels_ref.HEAD_W_MAX (tests hold them equal)
_SCRATCH = const(256)


class FFWError(ValueError):
    """A .ffw file was refused; the message names the fault."""


def _per_layer(name, default):
    return name != "layers" and (default is None or isinstance(default, tuple))


def _sig_size(cfg):
    n = 0
    for name, default in FIELDS:
        if name == "layers":
            n += 1 + 2 * len(cfg.layers)
        elif _per_layer(name, default):
            n += 1 + 4 * len(getattr(cfg, name))
        else:
            n += 4
    return n


def _head_len(cfg):
    return cfg.n_classes * cfg.head_inputs()


def _tensor_size(cfg):
    n = 2 * _head_len(cfg)
    for n_in, n_out in zip(cfg.layer_inputs(), cfg.layers):
        n += n_out * n_in + 4 * n_out
    return n


def file_size(cfg):
    """Length in bytes of the .ffw file of a net with Config cfg."""
    return _FIXED + _sig_size(cfg) + _STATE + _tensor_size(cfg) + 4


# ---- writing ---------------------------------------------------------------------------

def _header(net, length):
    cfg = net.cfg
    if not 0 <= net.step < 1 << 32:
        raise FFWError("value out of range: step %d does not fit u32" % net.step)
    b = bytearray(_FIXED + _sig_size(cfg) + _STATE)
    struct.pack_into("<4sHI3sB", b, 0, MAGIC, VERSION, length, DTYPES, len(FIELDS))
    off = _FIXED
    for name, default in FIELDS:
        v = getattr(cfg, name)
        if name == "layers":
            b[off] = len(v)
            for i in range(len(v)):
                struct.pack_into("<H", b, off + 1 + 2 * i, v[i])
            off += 1 + 2 * len(v)
        elif _per_layer(name, default):
            b[off] = len(v)
            for i in range(len(v)):
                struct.pack_into("<i", b, off + 1 + 4 * i, v[i])
            off += 1 + 4 * len(v)
        else:
            struct.pack_into("<i", b, off, v)
            off += 4
    struct.pack_into("<I4H", b, off, net.step, net.rng[0], net.rng[1],
                     net.head_rng[0], net.head_rng[1])
    return b


def _u16_chunks(arr, scratch, mv):
    step = len(scratch) >> 1
    for a in range(0, len(arr), step):
        k = min(step, len(arr) - a)
        for i in range(k):
            v = arr[a + i]  # int16 too: & 0xFF of a negative int is its two's complement
            scratch[2 * i] = v & 0xFF
            scratch[2 * i + 1] = (v >> 8) & 0xFF
        yield mv if k == step else mv[:2 * k]


def _tensor_chunks(net, scratch):
    """The encoded tensor section, as successive views of scratch (reused per chunk)."""
    mv = memoryview(scratch)
    step = len(scratch)
    for l in range(len(net.weights)):
        w = net.weights[l]
        for a in range(0, len(w), step):
            k = min(step, len(w) - a)
            for i in range(k):
                scratch[i] = w[a + i] ^ 0x80  # offset-binary -> int8
            yield mv if k == step else mv[:k]
        yield from _u16_chunks(net.rngs[l], scratch, mv)
    yield from _u16_chunks(net.head, scratch, mv)


def encode_into(net, buf):
    """Write net's .ffw file into buf (at least file_size(net.cfg) bytes); return its length."""
    n = file_size(net.cfg)
    if len(buf) < n:
        raise FFWError("size mismatch: the buffer holds %d bytes, the file needs %d"
                       % (len(buf), n))
    h = _header(net, n)
    off = len(h)
    buf[:off] = h
    for c in _tensor_chunks(net, bytearray(_SCRATCH)):
        buf[off:off + len(c)] = c
        off += len(c)
    struct.pack_into("<I", buf, off, crc32(memoryview(buf)[:off]))
    return n


def encode(net):
    """The .ffw file of net, as a bytearray (bytes-like; equal to the bytes)."""
    buf = bytearray(file_size(net.cfg))
    encode_into(net, buf)
    return buf


def write(net, stream):
    """Stream net's .ffw file to stream.write without holding it; return its length."""
    n = file_size(net.cfg)
    h = _header(net, n)
    stream.write(h)
    crc = crc32(h)
    for c in _tensor_chunks(net, bytearray(_SCRATCH)):
        stream.write(c)
        crc = crc32(c, crc)
    stream.write(struct.pack("<I", crc))
    return n


def weights_crc32(net):
    """CRC-32 of the encoded tensor section alone (what replay and parity compare)."""
    crc = 0
    for c in _tensor_chunks(net, bytearray(_SCRATCH)):
        crc = crc32(c, crc)
    return crc


# ---- reading ---------------------------------------------------------------------------

def _prefix(data):
    """Check magic and version; return the file length the header gives."""
    n = len(data)
    if n == 0:
        raise FFWError("empty file")
    if bytes(data[:4]) != MAGIC[:min(n, 4)]:
        raise FFWError("bad magic")
    if n < 6:
        raise FFWError("truncated: %d bytes, the fixed header alone is %d" % (n, _FIXED))
    v = struct.unpack_from("<H", data, 4)[0]
    if v != VERSION:
        raise FFWError("unsupported format version %d (this reader knows %d)" % (v, VERSION))
    if n < 10:
        raise FFWError("truncated: %d bytes, the fixed header alone is %d" % (n, _FIXED))
    return struct.unpack_from("<I", data, 6)[0]


def _frame(data):
    """Check magic, version, length and CRC; return the file length."""
    m = _prefix(data)
    n = len(data)
    if n < m:
        raise FFWError("truncated: %d bytes, header says %d" % (n, m))
    if n > m:
        raise FFWError("size mismatch: %d bytes, header says %d" % (n, m))
    if m < _FIXED + _STATE + 4:
        raise FFWError("size mismatch: header says %d bytes, too few for any model" % m)
    want = struct.unpack_from("<I", data, m - 4)[0]
    got = crc32(memoryview(data)[:m - 4])
    if want != got:
        raise FFWError("CRC mismatch (file says 0x%08x, data gives 0x%08x)" % (want, got))
    return m


def _parse(data):
    """Parse the fixed header and signature; return (Config, offset of the state)."""
    m = _prefix(data)
    n = len(data)
    if n < _FIXED:
        raise FFWError("truncated: %d bytes, header says %d" % (n, m))
    if bytes(data[10:13]) != DTYPES:
        raise FFWError("model signature differs: dtypes is %r in the file, %r in this reader"
                       % (bytes(data[10:13]), DTYPES))
    if data[13] != len(FIELDS):
        raise FFWError("model signature differs: the file has %d fields, this reader knows %d"
                       % (data[13], len(FIELDS)))
    kw = {}
    off = _FIXED
    for name, default in FIELDS:
        if name == "layers" or _per_layer(name, default):
            if off >= n:
                raise FFWError("truncated: %d bytes, header says %d" % (n, m))
            k = data[off]
            fmt = "<%dH" % k if name == "layers" else "<%di" % k
            size = struct.calcsize(fmt)
            if off + 1 + size > n:
                raise FFWError("truncated: %d bytes, header says %d" % (n, m))
            kw[name] = struct.unpack_from(fmt, data, off + 1)
            off += 1 + size
        else:
            if off + 4 > n:
                raise FFWError("truncated: %d bytes, header says %d" % (n, m))
            kw[name] = struct.unpack_from("<i", data, off)[0]
            off += 4
    try:
        cfg = Config(**kw)
    except ValueError as e:
        raise FFWError("bad model signature: %s" % e) from None
    return cfg, off


def decode_config(data):
    """The Config in a .ffw header (data may be the whole file or just its start)."""
    return _parse(data)[0]


def _u16(data, o):
    return data[o] | (data[o + 1] << 8)


def _check(data, cfg=None):
    """Every check, before anything is touched; return (Config, offset of the state)."""
    m = _frame(data)
    fcfg, off = _parse(data)
    if cfg is not None:
        for name, _ in FIELDS:
            a, b = getattr(fcfg, name), getattr(cfg, name)
            if a != b:
                raise FFWError("model signature differs: %s is %r in the file, %r in the model"
                               % (name, a, b))
    if file_size(fcfg) != m:
        raise FFWError("size mismatch: the signature needs %d bytes, header says %d"
                       % (file_size(fcfg), m))
    for o, what in ((off + 4, "rng"), (off + 8, "head_rng")):
        if _u16(data, o) | _u16(data, o + 2) == 0:
            raise FFWError("value out of range: %s state is zero" % what)
    t = off + _STATE
    find = getattr(data, "find", None)
    for l, (n_in, n_out) in enumerate(zip(fcfg.layer_inputs(), fcfg.layers)):
        e = t + n_in * n_out
        i = find(b"\x80", t, e) if find else next((j for j in range(t, e) if data[j] == 0x80), -1)
        if i >= 0:
            raise FFWError("value out of range: layer %d weight %d is -128 (kept in -127..127)"
                           % (l, i - t))
        for u in range(n_out):
            if _u16(data, e + 4 * u) | _u16(data, e + 4 * u + 2) == 0:
                raise FFWError("value out of range: layer %d unit %d PRNG state is zero" % (l, u))
        t = e + 4 * n_out
    for i in range(_head_len(fcfg)):
        v = _u16(data, t + 2 * i)
        if _HEAD_W_MAX < v < 0x10000 - _HEAD_W_MAX:
            raise FFWError("value out of range: head weight %d is %d (kept in +-%d)"
                           % (i, v - 0x10000 if v & 0x8000 else v, _HEAD_W_MAX))
    return fcfg, off


def _get16(arr, data, o, signed):
    for i in range(len(arr)):
        v = data[o] | (data[o + 1] << 8)
        arr[i] = v - 0x10000 if signed and v & 0x8000 else v
        o += 2
    return o


def _copy_in(net, data, off):
    """Copy a checked file into net (sizes already match; allocates nothing large)."""
    mv = memoryview(data)
    step, r0, r1, h0, h1 = struct.unpack_from("<I4H", data, off)
    o = off + _STATE
    for l in range(net.n_layers):
        w = net.weights[l]
        w[:] = mv[o:o + len(w)]
        for i in range(len(w)):
            w[i] ^= 0x80  # int8 -> offset-binary
        o = _get16(net.rngs[l], data, o + len(w), False)
    _get16(net.head, data, o, True)
    net.rng[0], net.rng[1], net.head_rng[0], net.head_rng[1] = r0, r1, h0, h1
    net.step = step


def load(data, kernels=None):
    """A new FFNet holding the state in data (every check first)."""
    cfg, off = _check(data)
    net = FFNet(cfg, kernels)
    _copy_in(net, data, off)
    return net


def load_into(net, data):
    """Replace net's state by data's; on any refusal (FFWError) net is left untouched."""
    cfg, off = _check(data, net.cfg)
    sizes = [(len(w), len(r)) for w, r in zip(net.weights, net.rngs)]
    want = [(a * b, 2 * b) for a, b in zip(cfg.layer_inputs(), cfg.layers)]
    if sizes != want or len(net.head) != _head_len(cfg):
        raise FFWError("size mismatch: the net's buffers do not match its Config")
    _copy_in(net, data, off)



# ---- random access and streaming (a board never holds a second copy of the file) ---------

def stream_crc(net):
    """(CRC stored in net's .ffw file, CRC-32 of the whole file), by streaming the encoding."""
    c = crc32(_header(net, file_size(net.cfg)))
    for ch in _tensor_chunks(net, bytearray(_SCRATCH)):
        c = crc32(ch, c)
    return c, crc32(struct.pack("<I", c), c)


def encode_range(net, start, out, n, head=None, crc=None):
    """Write bytes start .. start+n of net's .ffw file into out[0:n]; return n.

    Random access for a chunked export: no pass over the file, no buffer of its size.
    head (what _header gives: everything before the tensors) and crc (the stored CRC) may
    be kept by the caller for a whole export; else they are computed (the CRC by
    streaming the file once).
    """
    m = file_size(net.cfg)
    if start < 0 or n < 0 or start + n > m:
        raise ValueError("range %d..%d is outside the file's %d bytes" % (start, start + n, m))
    if head is None:
        head = _header(net, m)
    if crc is None and start + n > m - 4:
        crc = stream_crc(net)[0]
    sec = 0  # file offset of the current section
    k = 0    # bytes written to out
    for s in range(2 * net.n_layers + 2):
        if s == 0:
            arr, width = head, 0
        elif s == 2 * net.n_layers + 1:
            arr, width = net.head, 2
        elif s & 1:
            arr, width = net.weights[s >> 1], 1
        else:
            arr, width = net.rngs[(s >> 1) - 1], 2
        size = len(arr) * max(width, 1)
        e = min(sec + size, start + n)
        for i in range(start + k - sec, e - sec):
            if width == 0:
                out[k] = arr[i]
            elif width == 1:
                out[k] = arr[i] ^ 0x80  # offset-binary -> int8
            else:
                out[k] = (arr[i >> 1] >> (8 * (i & 1))) & 0xFF  # u16/int16, little-endian
            k += 1
        sec += size
    while k < n:  # the stored CRC, little-endian
        out[k] = (crc >> (8 * (start + k - sec))) & 0xFF
        k += 1
    return n


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


def _read_upto(f, mv):
    """Fill mv from f; return the bytes read (fewer only at the end of the file)."""
    k = 0
    while k < len(mv):
        r = f.readinto(mv[k:])
        if not r:
            break
        k += r
    return k


class _In:
    """Reads exactly the bytes asked for, chaining the CRC; a short read is a truncation."""

    def __init__(self, f, m, n, crc):
        self.f = f
        self.m = m
        self.n = n
        self.crc = crc

    def take(self, mv, crc=True):
        k = _read_upto(self.f, mv)
        self.n += k
        if k < len(mv):
            raise FFWError("truncated: %d bytes, header says %d" % (self.n, self.m))
        if crc:
            self.crc = crc32(mv, self.crc)


# fields a file must share with the net it goes into: its buffers and its input pipeline
_SHAPE = ("n_features", "n_classes", "layers", "goodness_from", "pipeline")


def _sig_size_for(n_layers):
    n = 0
    for name, default in FIELDS:
        n += 1 + 2 * n_layers if name == "layers" else \
            1 + 4 * n_layers if _per_layer(name, default) else 4
    return n


def _sections(cfg):
    """(kind, bytes, layer) of each tensor section: 0 weights, 1 PRNG states, 2 head."""
    for l, (n_in, n_out) in enumerate(zip(cfg.layer_inputs(), cfg.layers)):
        yield 0, n_in * n_out, l
        yield 1, 4 * n_out, l
    yield 2, 2 * _head_len(cfg), 0


def _frame_size(n, m):
    if n < m:
        raise FFWError("truncated: %d bytes, header says %d" % (n, m))
    if n > m:
        raise FFWError("size mismatch: %d bytes, header says %d" % (n, m))
    if m < _FIXED + _STATE + 4:
        raise FFWError("size mismatch: header says %d bytes, too few for any model" % m)


def _scan(buf, c, kind, a, l):
    """The range fault in one chunk of a tensor section (a: its offset there), or None."""
    if kind == 0:
        i = buf.find(b"\x80", 0, c)
        if i >= 0:
            return FFWError("value out of range: layer %d weight %d is -128 (kept in -127..127)"
                            % (l, a + i))
    elif kind == 1:
        for u in range(0, c, 4):
            if _u16(buf, u) | _u16(buf, u + 2) == 0:
                return FFWError("value out of range: layer %d unit %d PRNG state is zero"
                                % (l, (a + u) >> 2))
    else:
        for i in range(0, c, 2):
            v = _u16(buf, i)
            if _HEAD_W_MAX < v < 0x10000 - _HEAD_W_MAX:
                return FFWError("value out of range: head weight %d is %d (kept in +-%d)"
                                % ((a + i) >> 1, v - 0x10000 if v & 0x8000 else v,
                                   _HEAD_W_MAX))
    return None


def check_stream(f, cfg=None, size=None):
    """Every check of load_into on a file read in 256-byte chunks; return (Config, length).

    f needs readinto and is left just after the file's last byte (a container may follow).
    cfg: the file must share its _SHAPE fields (the net's buffers and input pipeline);
    hyperparameters (theta, shifts, lr...) may differ. size: the bytes the
    caller holds, when known (checked as load_into checks len(data)). The first fault is
    raised as an FFWError with load_into's message; as there, a CRC mismatch is named
    before any fault in the content.
    """
    buf = bytearray(_SCRATCH)
    mv = memoryview(buf)
    k = _read_upto(f, mv[:_FIXED])
    m = _prefix(mv[:k])
    if size is not None:
        _frame_size(size, m)
    if k < _FIXED or m < _FIXED + _STATE + 4:
        _frame_size(k, m)
    src = _In(f, m, k, crc32(mv[:k]))
    # the signature's length follows from its layer count (every scalar field comes first)
    lc = _FIXED + 4 * [name for name, _ in FIELDS].index("layers")
    hb = bytearray(min(lc + 1, m - 4))
    hb[:_FIXED] = mv[:_FIXED]
    src.take(memoryview(hb)[_FIXED:])
    if len(hb) > lc:
        big = min(_FIXED + _sig_size_for(hb[lc]) + _STATE, m - 4)
        hb2 = bytearray(big)
        hb2[:len(hb)] = hb
        src.take(memoryview(hb2)[len(hb):])
        hb = hb2
    fault = None
    fcfg = None
    try:
        o = _FIXED
        for name, default in FIELDS:  # a wrong count would shift every later field
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
            for name in _SHAPE:
                a, b = getattr(fcfg, name), getattr(cfg, name)
                if a != b:
                    raise FFWError("model signature differs: %s is %r in the file, %r in"
                                   " the model" % (name, a, b))
        if file_size(fcfg) != m:
            raise FFWError("size mismatch: the signature needs %d bytes, header says %d"
                           % (file_size(fcfg), m))
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
                if fault is None:
                    fault = _scan(buf, c, kind, a, l)
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
    buf = bytearray(_SCRATCH)
    mv = memoryview(buf)
    src = _In(f, m, 0, 0)
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
    step, r0, r1, h0, h1 = struct.unpack_from("<I4H", hb, len(hb) - _STATE)
    net.rng[0], net.rng[1], net.head_rng[0], net.head_rng[1] = r0, r1, h0, h1
    net.step = step
    if cfg != net.cfg:  # the same settings: the net keeps its Config object
        net.cfg = cfg
    return m
