"""Viper twins of ffrt.frontend_ref: same signatures, same bits, no allocation.

`mbqm` is frontend_ref.mbqm as a viper function, called once per output (not per
multiply-accumulate): its arguments and result are below 2**30, so the call passes small
ints and allocates nothing. Weights are offset-binary bytes, so the inner loop sums
ws * x and takes 128 * sum(x) off once per row (as kernels_viper.fc_relu); 255 * 255 *
n_in stays below 2**28 for n_in <= 4096 (ffkit.interop.frontend_import's limit). Buffers are
little-endian, as on every board ffrt targets.
"""

import micropython


@micropython.viper
def mbqm(a: int, m1: int, m0: int, shift: int) -> int:
    rs = 0
    if shift > 0:
        a = a << shift
    else:
        rs = 0 - shift
    n = a
    if a < 0:
        n = 0 - a
    nh = n >> 15
    nl = n & 0x7FFF
    t = nl * m0
    lo = t & 0x7FFF
    u = nh * m0
    v = nl * m1
    s = (u & 0x7FFF) + (v & 0x7FFF) + (t >> 15)
    mid = s & 0x7FFF
    hi = n + nh * m1 + (u >> 15) + (v >> 15) + (s >> 15)
    r = (hi + 1) >> 1
    if a < 0:
        if mid == 0 and lo == 0 and (hi & 1):
            r -= 1
        r = 0 - r
    if rs == 0:
        return r
    mask = (1 << rs) - 1
    thr = mask >> 1
    if r < 0:
        thr += 1
    if (r & mask) > thr:
        return (r >> rs) + 1
    return r >> rs


@micropython.viper
def fc(w: ptr8, x: ptr8, out: ptr8, n_in: int, n_out: int, bias: ptr16, mq: ptr16,
       sh: ptr8, zo: int, lo: int, hi: int):
    xsum = 0
    j = 0
    while j < n_in:
        xsum += x[j]
        j += 1
    off = xsum << 7
    base = 0
    i = 0
    while i < n_out:
        acc = 0
        wp = ptr8(uint(w) + uint(base))
        j = 0
        while j < n_in:
            acc += wp[j] * x[j]
            j += 1
        # bias is array('i'): read as two 16-bit halves, so a negative one is negative on
        # 64-bit ports too (a 32-bit load does not sign-extend there); |bias| < 2**28
        b = (((bias[2 * i + 1] ^ 0x8000) - 0x8000) << 16) + bias[2 * i]
        shift = (sh[i] ^ 0x80) - 0x80  # sign-extend int8
        y = zo + int(mbqm(acc - off + b, mq[2 * i], mq[2 * i + 1], shift))
        if y < lo:
            y = lo
        elif y > hi:
            y = hi
        out[i] = y
        base += n_in
        i += 1


@micropython.viper
def requant(x: ptr8, out: ptr8, n: int, off: int, m1: int, m0: int, shift: int, zo: int,
            lo: int, hi: int):
    i = 0
    while i < n:
        y = zo + int(mbqm(x[i] - off, m1, m0, shift))
        if y < lo:
            y = lo
        elif y > hi:
            y = hi
        out[i] = y
        i += 1
