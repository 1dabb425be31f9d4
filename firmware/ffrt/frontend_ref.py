"""Reference kernels of a frozen TFLite front end (ffrt.frontend): TFLite Micro's int8
FULLY_CONNECTED and RELU, bit for bit, in small ints.

Buffers (preallocated by ffrt.frontend):
- `x`, `out`: int8 activations stored offset-binary in bytearrays, u = q + 128 (0..255),
  so a front end's outputs are FF input features 0..255 as they are.
- `w`: int8 weights offset-binary, `w[i*n_in + j] = weight + 128` (as kernels_ref).
- `bias`: array('i'), per output: the model's bias minus (128 + input zero point) * the
  row's weight sum, so that acc = sum_j weight[i, j] * x[j] + bias[i] is TFLite's
  accumulator sum_j weight * (q_j - zero point) + bias.
- `mq`: array('H'), per output two 15-bit halves (m1, m0) of TFLite's Q31 multiplier
  m = 2**30 + m1 * 2**15 + m0 (a normalised multiplier is in [2**30, 2**31)).
- `sh`: array('b'), per output TFLite's shift (multiplier = m / 2**31 * 2**shift).
- `zo`, `lo`, `hi`: output zero point and the activation's clamp, offset-binary (+128).

The requantisation is TFLite's MultiplyByQuantizedMultiplier as TFLite Micro computes it
(two roundings: a rounding doubling high multiply, then a rounding right shift), which
needs a 62-bit product there. Here |a| < 2**28 is split into 15-bit halves, so every
partial product stays below 2**30 (ffkit.interop.frontend_import refuses a model whose bound, 2 *
255 * sum|weight| + |bias| shifted by max(shift, 0), reaches 2**28, or whose right
shift exceeds 29), and the product is kept as hi * 2**30 + mid * 2**15 + lo.

These run unchanged on any MicroPython (no memoryview, no f-strings).

>>> mbqm(1000, 0, 0, -3), mbqm(-1000, 0, 0, -3)  # m = 2**30 is 0.5: +-1000 / 16 = +-62.5
(63, -63)
>>> mbqm(1, 0, 0, 0), mbqm(-1, 0, 0, 0)  # the first rounding takes +-0.5 up: 1 and 0
(1, 0)
"""


def mbqm(a, m1, m0, shift):
    """TFLite's MultiplyByQuantizedMultiplier(a, 2**30 + m1 * 2**15 + m0, shift).

    Bounds: |a << max(shift, 0)| < 2**28 and -29 <= shift (checked at import); then
    every value formed is below 2**30: nl * m0 and nl * m1 < 2**30, nh * m0 and nh * m1 <
    2**28, hi < 2**29, and the mask of the final shift < 2**29.
    """
    if shift > 0:
        a <<= shift
        rs = 0
    else:
        rs = -shift
    n = -a if a < 0 else a
    nh = n >> 15
    nl = n & 0x7FFF
    t = nl * m0
    lo = t & 0x7FFF
    u = nh * m0
    v = nl * m1
    s = (u & 0x7FFF) + (v & 0x7FFF) + (t >> 15)
    mid = s & 0x7FFF
    hi = n + nh * m1 + (u >> 15) + (v >> 15) + (s >> 15)  # n * m = hi*2**30 + mid*2**15 + lo
    # SaturatingRoundingDoublingHighMul: (a*m + nudge) / 2**31, truncated toward zero,
    # nudge 2**30 (a >= 0) or 1 - 2**30 (a < 0)
    r = (hi + 1) >> 1
    if a < 0:
        if mid == 0 and lo == 0 and hi & 1:  # an exact half below zero rounds up
            r -= 1
        r = -r
    if rs == 0:
        return r
    # RoundingDivideByPOT: halves away from zero
    mask = (1 << rs) - 1
    thr = mask >> 1
    if r < 0:
        thr += 1
    if (r & mask) > thr:
        return (r >> rs) + 1
    return r >> rs


def fc(w, x, out, n_in, n_out, bias, mq, sh, zo, lo, hi):
    """out[i] = clamp(zo + mbqm(sum_j (w[i,j] - 128) * x[j] + bias[i], m_i, sh[i]), lo, hi).

    Bound: |acc| <= 255 * sum_j |w[i,j] - 128| + |bias[i]| < 2**28 (frontend_import).
    """
    base = 0
    for i in range(n_out):
        acc = bias[i]
        for j in range(n_in):
            acc += (w[base + j] - 128) * x[j]
        base += n_in
        v = zo + mbqm(acc, mq[2 * i], mq[2 * i + 1], sh[i])
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v


def requant(x, out, n, off, m1, m0, shift, zo, lo, hi):
    """out[i] = clamp(zo + mbqm(x[i] - off, m, shift), lo, hi): TFLite's int8 RELU (its
    input and output may be quantised differently); off = 128 + the input zero point."""
    for i in range(n):
        v = zo + mbqm(x[i] - off, m1, m0, shift)
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v
