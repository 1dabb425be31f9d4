"""Viper twins of ffrt.frontend_ref: same signatures, same bits, no allocation.

The requantisation (frontend_ref.mbqm) is written out in each kernel, since a viper
function cannot call a helper without a Python call's cost; every value stays below
2**30 as in the reference (see its bounds). Weights are offset-binary bytes, so the inner
loop sums ws * x and takes 128 * sum(x) off once per row (as kernels_viper.fc_relu);
255 * 255 * n_in stays below 2**28 for n_in <= 4096 (ffkit.frontend_import's limit).
Buffers are little-endian, as on every board ffrt targets.
"""

import micropython


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
        a = acc - off + (((bias[2 * i + 1] ^ 0x8000) - 0x8000) << 16) + bias[2 * i]
        m1 = mq[2 * i]
        m0 = mq[2 * i + 1]
        shift = (sh[i] ^ 0x80) - 0x80  # sign-extend int8
        # ---- mbqm(a, m1, m0, shift), as frontend_ref
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
        lo15 = t & 0x7FFF
        u = nh * m0
        v = nl * m1
        s = (u & 0x7FFF) + (v & 0x7FFF) + (t >> 15)
        mid = s & 0x7FFF
        top = n + nh * m1 + (u >> 15) + (v >> 15) + (s >> 15)
        r = (top + 1) >> 1
        if a < 0:
            if mid == 0 and lo15 == 0 and (top & 1):
                r -= 1
            r = 0 - r
        if rs:
            mask = (1 << rs) - 1
            thr = mask >> 1
            if r < 0:
                thr += 1
            if (r & mask) > thr:
                r = (r >> rs) + 1
            else:
                r = r >> rs
        # ----
        y = zo + r
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
        a = x[i] - off
        # ---- mbqm(a, m1, m0, shift), as frontend_ref
        rs = 0
        if shift > 0:
            a = a << shift
        else:
            rs = 0 - shift
        na = a
        if a < 0:
            na = 0 - a
        nh = na >> 15
        nl = na & 0x7FFF
        t = nl * m0
        lo15 = t & 0x7FFF
        u = nh * m0
        v = nl * m1
        s = (u & 0x7FFF) + (v & 0x7FFF) + (t >> 15)
        mid = s & 0x7FFF
        top = na + nh * m1 + (u >> 15) + (v >> 15) + (s >> 15)
        r = (top + 1) >> 1
        if a < 0:
            if mid == 0 and lo15 == 0 and (top & 1):
                r -= 1
            r = 0 - r
        if rs:
            mask = (1 << rs) - 1
            thr = mask >> 1
            if r < 0:
                thr += 1
            if (r & mask) > thr:
                r = (r >> rs) + 1
            else:
                r = r >> rs
        # ----
        y = zo + r
        if y < lo:
            y = lo
        elif y > hi:
            y = hi
        out[i] = y
        i += 1
