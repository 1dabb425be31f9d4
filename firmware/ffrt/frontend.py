"""A frozen front end ahead of the FF layers: a TFLite int8 model of FULLY_CONNECTED and
RELU ops (converted by ``ffkit tflite import-frontend``), run on the board in integers.

A front end maps int8 inputs to int8 outputs exactly as TFLite Micro does; both are kept
offset-binary (u = q + 128, 0..255) in bytearrays, so its outputs are FF input features
0..255 as they are (a net behind it has in_max 255 and in_scale 1). It never learns: FF
learns behind a stage it cannot differentiate, and needs nothing from it but features.

    from ffrt import ffw_ram, frontend
    fe = frontend.load(open("front.ffe", "rb").read())   # checks magic, version, CRC, shapes
    net = ffw_ram.load(open("model.ffw", "rb").read())   # trained with --frontend front.ffe
    label = net.predict_one(fe.run(x))                   # x: fe.n_in bytes, q + 128

run() allocates nothing: every stage's output buffer is made by load(). The kernels are
ffrt.frontend_viper on MicroPython, else ffrt.frontend_ref (ffkit passes its numpy twin).

The file `.ffe`, little-endian::

    0   magic b"FFFE", u16 version, u32 total length, u32 CRC32 of the source .tflite,
        u16 n_in, f32 input scale, i8 input zero point, f32 output scale, i8 output zero
        point (the TFLite tensors' quantisation: how the host maps real values to inputs
        and back; the board does not use them and keeps the scales as their raw 32 bits,
        so it never makes a float), u8 number of stages
    per stage, u8 kind:
      1 FULLY_CONNECTED: u16 n_in, u16 n_out, u8 zo, lo, hi (offset-binary), weights
        n_out*n_in bytes (int8 + 128), i32 bias[n_out] (input zero point folded in, see
        ffrt.frontend_ref), u16 (m1, m0)[n_out], i8 shift[n_out]
      2 RELU (requantising): u16 n, u8 off, zo, lo, hi, u16 m1, m0, i8 shift
    u32 CRC32 of everything before it

>>> st = fc_stage(2, 1, [[3, -1]], [10], 0, [(0, 0)], [-1], 0, -128, 127)  # m 0.5, shift -1
>>> fe = load(encode([st], n_in=2))
>>> list(fe.run(bytes([128 + 4, 128 + 2])))   # (3*4 - 2 + 10) * 0.5 / 2 = 5: q 5, u 133
[133]
"""

import struct
from array import array

from ffrt.crc32 import crc32

MAGIC = b"FFFE"
VERSION = 1
KIND_FC = 1
KIND_RELU = 2
_HEAD = 27          # bytes before the first stage
_ACC_MAX = 1 << 28  # |accumulator << left shift| stays below this (frontend_ref.mbqm)
_N_IN_MAX = 4096    # 255 * 255 * n_in < 2**28 in the viper kernel's offset-binary sum


class FrontendError(ValueError):
    """A .ffe file was refused; the message names the fault."""


def default_kernels():
    """The viper twins on MicroPython (where the emitter exists), else the reference.

    As ffrt.net.default_kernels, not shared with it: a parameterised one in net.py, which
    every board imports at boot, cost the small-heap firmware the bytes it has no spare
    of (tests/test_server.py -k small_heap)."""
    import sys
    if sys.implementation.name == "micropython":
        try:
            from ffrt import frontend_viper
            return frontend_viper
        except (ImportError, SyntaxError, NotImplementedError):  # port built without viper
            pass
    from ffrt import frontend_ref
    return frontend_ref


class Frontend:
    """The stages of a front end with their preallocated outputs; see the module doc."""

    def __init__(self, stages, n_in, meta, kernels=None):
        self.stages = stages
        self.n_in = n_in
        self.n_out = stages[-1][2]
        # (tflite crc32, in scale bits, in zp, out scale bits, out zp): f32 bit patterns,
        # which the host reads as floats (ffkit.interop.frontend_import); the board never does
        self.meta = meta
        self.k = kernels if kernels is not None else default_kernels()

    def run(self, x):
        """The front end's outputs (offset-binary bytes) for inputs x (n_in bytes, q + 128).

        Returns the last stage's own buffer: it holds until the next run."""
        if len(x) != self.n_in:
            raise ValueError("x has %d values, the front end takes %d" % (len(x), self.n_in))
        k = self.k
        for st in self.stages:
            if st[0] == KIND_FC:
                _, n_in, n_out, zo, lo, hi, w, bias, mq, sh, out = st
                k.fc(w, x, out, n_in, n_out, bias, mq, sh, zo, lo, hi)
            else:
                _, n, _n, zo, lo, hi, off, m1, m0, shift, out = st
                k.requant(x, out, n, off, m1, m0, shift, zo, lo, hi)
            x = out
        return x


# ---- reading ------------------------------------------------------------------------------

def _bad(msg):
    return FrontendError(msg)


def load(data, kernels=None):
    """A Frontend from .ffe bytes; raises FrontendError naming the fault before any use."""
    n = len(data)
    if n < 4 or bytes(data[:4]) != MAGIC:
        raise _bad("bad magic: not a front-end file (.ffe)")
    if n < _HEAD + 4:
        raise _bad("truncated: %d bytes, the header alone is %d" % (n, _HEAD))
    ver, length = struct.unpack_from("<HI", data, 4)
    if ver != VERSION:
        raise _bad("unsupported format version %d (this reader knows %d)" % (ver, VERSION))
    if length != n:
        raise _bad("truncated or padded: %d bytes, header says %d" % (n, length))
    stored = struct.unpack_from("<I", data, n - 4)[0]
    if crc32(memoryview(data)[:n - 4]) != stored:
        raise _bad("CRC mismatch: the file is damaged")
    src_crc, n_in, s_in, zp_in, s_out, zp_out, count = struct.unpack_from("<IHIbIbB", data, 10)
    if count < 1:
        raise _bad("no stages")
    pos = _HEAD
    width = n_in
    stages = []
    for i in range(count):
        if pos + 1 > n - 4:
            raise _bad("stage %d: truncated" % i)
        kind = data[pos]
        if kind == KIND_FC:
            if pos + 8 > n - 4:
                raise _bad("stage %d: truncated" % i)
            si, so, zo, lo, hi = struct.unpack_from("<HHBBB", data, pos + 1)
            pos += 8
            end = pos + so * si + 4 * so + 4 * so + so
            if end > n - 4:
                raise _bad("stage %d: truncated (%d x %d weights)" % (i, so, si))
            w = bytearray(data[pos:pos + so * si])
            pos += so * si
            # from a bytearray, MicroPython's array() copies raw bytes (from bytes, it
            # would take each byte as one element)
            bias = array("i", bytearray(data[pos:pos + 4 * so]))
            pos += 4 * so
            mq = array("H", bytearray(data[pos:pos + 4 * so]))
            pos += 4 * so
            sh = array("b", bytearray(data[pos:pos + so]))
            pos += so
            _check_fc(i, si, so, lo, hi, w, bias, mq, sh)
            stages.append((KIND_FC, si, so, zo, lo, hi, w, bias, mq, sh, bytearray(so)))
        elif kind == KIND_RELU:
            if pos + 12 > n - 4:
                raise _bad("stage %d: truncated" % i)
            si, off, zo, lo, hi, m1, m0, shift = struct.unpack_from("<HBBBBHHb", data, pos + 1)
            pos += 12
            so = si
            # |x - off| <= 255, so 255 << shift must stay below 2**28
            if m1 > 0x7FFF or m0 > 0x7FFF or not -29 <= shift <= 19 or lo > hi:
                raise _bad("stage %d: requantisation out of range" % i)
            stages.append((KIND_RELU, si, so, zo, lo, hi, off, m1, m0, shift, bytearray(so)))
        else:
            raise _bad("stage %d: unknown kind %d" % (i, kind))
        if si != width:
            raise _bad("stage %d takes %d inputs, the one before gives %d" % (i, si, width))
        width = so
    if pos != n - 4:
        raise _bad("%d bytes after the last stage" % (n - 4 - pos))
    return Frontend(stages, n_in, (src_crc, s_in, zp_in, s_out, zp_out), kernels)


def _check_fc(i, n_in, n_out, lo, hi, w, bias, mq, sh):
    if not 1 <= n_in <= _N_IN_MAX or n_out < 1:
        raise _bad("stage %d: %d x %d weights (inputs 1..%d)" % (i, n_out, n_in, _N_IN_MAX))
    if lo > hi:
        raise _bad("stage %d: clamp %d..%d is empty" % (i, lo, hi))
    base = 0
    for r in range(n_out):
        s = sh[r]
        m1 = mq[2 * r]
        m0 = mq[2 * r + 1]
        if m1 > 0x7FFF or m0 > 0x7FFF or not -29 <= s <= 20:
            raise _bad("stage %d, output %d: requantisation out of range" % (i, r))
        # the accumulator's bound (frontend_ref.fc): 255 * 2 * sum|w| + |bias|, shifted
        t = 0
        for j in range(n_in):
            v = w[base + j] - 128
            t += v if v >= 0 else -v
        base += n_in
        b = bias[r]
        t = 510 * t + (b if b >= 0 else -b)
        if s > 0:
            t <<= s
        if t >= _ACC_MAX:
            raise _bad("stage %d, output %d: accumulator bound %d reaches 2**28" % (i, r, t))


# ---- writing (the host's importer) ----------------------------------------------------------

def fc_stage(n_in, n_out, weights, bias, in_zp, mq, shifts, zo, lo, hi):
    """A FULLY_CONNECTED stage for encode: int8 weights [n_out][n_in], the model's int32
    bias, the input's zero point (folded into the stored bias: bias - (128 + in_zp) *
    row sum), (m1, m0) and shift per output, and zo/lo/hi as int8 (q)."""
    folded = [int(b) - (128 + in_zp) * sum(int(v) for v in row)
              for b, row in zip(bias, weights)]
    return (KIND_FC, n_in, n_out, zo, lo, hi, weights, folded, mq, shifts)


def relu_stage(n, in_zp, m1, m0, shift, zo, lo, hi):
    """A requantising RELU stage for encode; in_zp, zo, lo, hi as int8 (q)."""
    return (KIND_RELU, n, in_zp, zo, lo, hi, m1, m0, shift)


F32_ONE = 0x3F800000  # the bits of the f32 1.0


def encode(stages, n_in, src_crc=0, in_q=(F32_ONE, 0), out_q=(F32_ONE, 0)):
    """The .ffe bytes of stages (fc_stage / relu_stage tuples); in_q, out_q: (the f32 bit
    pattern of the scale, the zero point) of the input and output tensors."""
    b = bytearray(MAGIC)
    b += struct.pack("<HI", VERSION, 0)
    b += struct.pack("<IHIbIbB", src_crc, n_in, in_q[0], in_q[1], out_q[0], out_q[1],
                     len(stages))
    for st in stages:
        if st[0] == KIND_FC:
            _, si, so, zo, lo, hi, weights, bias, mq, shifts = st
            b += struct.pack("<BHHBBB", KIND_FC, si, so, zo + 128, lo + 128, hi + 128)
            for row in weights:
                b += bytes((v + 128) & 0xFF for v in row)
            b += struct.pack("<%di" % so, *bias)
            for m1, m0 in mq:
                b += struct.pack("<HH", m1, m0)
            b += struct.pack("<%db" % so, *shifts)
        else:
            _, n, in_zp, zo, lo, hi, m1, m0, shift = st
            b += struct.pack("<BHBBBBHHb", KIND_RELU, n, in_zp + 128, zo + 128, lo + 128,
                             hi + 128, m1, m0, shift)
    struct.pack_into("<I", b, 6, len(b) + 4)
    b += struct.pack("<I", crc32(b))
    return bytes(b)
