"""numpy twins of ffrt.frontend_ref: same signatures, same buffers, same bits.

Where the reference splits TFLite's 62-bit product into 15-bit halves to stay within
MicroPython's small ints, this twin forms it whole in int64, as TFLite Micro's C++ does:
two independent statements of the same arithmetic, held equal by tests/test_frontend.py.
`mbqm` also takes whole arrays (any shape), which ffkit.interop.frontend_import uses to run a
front end over a data set at once.

>>> int(mbqm(np.array([1000, -1000]), 0, 0, -3)[1])
-63
"""

import numpy as np


def mbqm(a, m1, m0, shift):
    """TFLite's MultiplyByQuantizedMultiplier(a, 2**30 + m1 * 2**15 + m0, shift), int64.

    m1, m0 and shift may be arrays that broadcast against a (per output channel)."""
    a = np.asarray(a, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    m = (1 << 30) + np.asarray(m1, dtype=np.int64) * (1 << 15) + np.asarray(m0, dtype=np.int64)
    a = a << np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    ab = a * m
    # SaturatingRoundingDoublingHighMul: C++ division truncates toward zero
    num = np.where(ab >= 0, ab + (1 << 30), ab + 1 - (1 << 30))
    x = np.where(num >= 0, num >> 31, -((-num) >> 31))
    # RoundingDivideByPOT
    mask = (np.int64(1) << rs) - 1
    thr = (mask >> 1) + (x < 0)
    return (x >> rs) + ((x & mask) > thr)


def _u8(buf, n=None):
    a = np.frombuffer(buf, dtype=np.uint8)
    return a if n is None else a[:n]


def fc(w, x, out, n_in, n_out, bias, mq, sh, zo, lo, hi):
    W = _u8(w, n_in * n_out).reshape(n_out, n_in).astype(np.int64) - 128
    acc = W @ _u8(x, n_in).astype(np.int64) + np.frombuffer(bias, dtype=np.int32)[:n_out]
    q = np.frombuffer(mq, dtype=np.uint16)[:2 * n_out].astype(np.int64)
    s = np.frombuffer(sh, dtype=np.int8)[:n_out]
    _u8(out)[:n_out] = np.clip(zo + mbqm(acc, q[0::2], q[1::2], s), lo, hi)


def requant(x, out, n, off, m1, m0, shift, zo, lo, hi):
    v = _u8(x, n).astype(np.int64) - off
    _u8(out)[:n] = np.clip(zo + mbqm(v, m1, m0, shift), lo, hi)
