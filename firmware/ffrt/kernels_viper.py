"""Viper twins of ffrt.kernels_ref: same signatures, same bits, no allocation.

Viper integers are machine words (32 bits on boards, 64 on the unix port), so the
xorshift32 below masks with `_M32`, built at run time because a literal 0xFFFFFFFF
would not be a viper constant on 32-bit boards. Every value that the reference keeps
below 2**30 is the same here; see kernels_ref for each bound.
"""

import micropython
from array import array


@micropython.viper
def isqrt(n: int) -> int:
    """kernels_ref.isqrt (ffrt.fixedpoint's) for 0 <= n < 2**30."""
    res = 0
    bit = 1 << 28
    while bit > n:
        bit >>= 2
    while bit:
        if n >= res + bit:
            n -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    return res


@micropython.viper
def fc_relu(w: ptr8, x: ptr8, h: ptr8, n_in: int, n_out: int, shift: int) -> int:
    # offset-binary weights: sum((ws - 128) * x) = sum(ws * x) - 128 * sum(x), so the
    # inner loop loads bytes without sign extension. Walking two pointers with constant
    # offsets, 8 MACs per turn, costs about 16 x64 instructions per MAC (callgrind; the
    # indexed form cost 28): `ffkit bench` measures it.
    xsum = 0
    j = 0
    while j < n_in:
        xsum += x[j]
        j += 1
    off = xsum << 7
    x0 = uint(x)
    e8 = x0 + uint(n_in & ~7)
    xe = x0 + uint(n_in)
    g = 0
    wp = w
    i = 0
    while i < n_out:
        acc = 0
        xp = x
        while uint(xp) < e8:
            acc += (wp[0] * xp[0] + wp[1] * xp[1] + wp[2] * xp[2] + wp[3] * xp[3]
                    + wp[4] * xp[4] + wp[5] * xp[5] + wp[6] * xp[6] + wp[7] * xp[7])
            wp = ptr8(uint(wp) + 8)
            xp = ptr8(uint(xp) + 8)
        while uint(xp) < xe:
            acc += wp[0] * xp[0]
            wp = ptr8(uint(wp) + 1)
            xp = ptr8(uint(xp) + 1)
        v = (acc - off) >> shift
        if v < 0:
            v = 0
        elif v > 255:
            v = 255
        h[i] = v
        g += v * v
        i += 1
    return g


@micropython.viper
def fc_acc(w: ptr8, x: ptr8, acc: ptr32, n_in: int, n_out: int):
    xsum = 0
    j = 0
    while j < n_in:
        xsum += x[j]
        j += 1
    off = xsum << 7
    x0 = uint(x)
    e8 = x0 + uint(n_in & ~7)
    xe = x0 + uint(n_in)
    wp = w
    i = 0
    while i < n_out:
        a = 0
        xp = x
        while uint(xp) < e8:
            a += (wp[0] * xp[0] + wp[1] * xp[1] + wp[2] * xp[2] + wp[3] * xp[3]
                  + wp[4] * xp[4] + wp[5] * xp[5] + wp[6] * xp[6] + wp[7] * xp[7])
            wp = ptr8(uint(wp) + 8)
            xp = ptr8(uint(xp) + 8)
        while uint(xp) < xe:
            a += wp[0] * xp[0]
            wp = ptr8(uint(wp) + 1)
            xp = ptr8(uint(xp) + 1)
        acc[i] = a - off
        i += 1


@micropython.viper
def label_relu(w: ptr8, acc: ptr32, h: ptr8, p: ptr32) -> int:
    # a ptr32 load is zero-extended on a 64-bit port and the word itself on a 32-bit
    # board: (v ^ sign) - sign makes both the signed int32 (sign = bit 31 as a machine
    # word, built at run time: 1 << 31 is not a small int on a 32-bit board)
    sign = int(uint(1) << 31)
    n_in = p[0]
    n_out = p[1]
    shift = p[2]
    step = p[4]
    count = p[5]
    value = p[6]
    g = 0
    base = p[3]
    i = 0
    while i < n_out:
        s = 0
        k = base
        r = 0
        while r < count:
            s += w[k]
            k += step
            r += 1
        v = (((int(acc[i]) ^ sign) - sign) + value * (s - (count << 7))) >> shift
        if v < 0:
            v = 0
        elif v > 255:
            v = 255
        h[i] = v
        g += v * v
        base += n_in
        i += 1
    return g


@micropython.viper
def copy(dst: ptr8, src: ptr8, off: int, n: int):
    i = 0
    while i < n:
        dst[i] = src[off + i]
        i += 1


@micropython.viper
def normalize(h: ptr8, out: ptr8, n: int, recip: int):
    i = 0
    while i < n:
        v = (h[i] * recip) >> 16
        if v > 255:
            v = 255
        out[i] = v
        i += 1


# update's row loop runs in its own viper function because viper keeps only its first
# locals in registers (two on x64, three on Thumb), and the arguments come first: there
# they are the PRNG state, the row's weights and the inputs, the three the loop uses
# most. The state crosses the call as its high 16 bits, and goes back through _ROW, so
# no value past 2**30 (a long int on a 32-bit board: an allocation) is ever an object.
# _ROW: n_in, c, shift, state's low half, row offset, 32 - shift, state out (hi, lo).
_ROW = array("i", [0] * 8)


@micropython.viper
def _update_row(s: uint, wp: ptr8, x: ptr8, q: ptr32):
    s = (s << 16) | uint(q[3])
    wp = ptr8(uint(wp) + uint(q[4]))
    end = uint(x) + uint(q[0])
    sign = int(uint(1) << 31)
    c = (int(q[1]) ^ sign) - sign
    shift = q[2]
    rs = q[5]
    m = (uint(0xFFFF) << 16) | uint(0xFFFF)
    while uint(x) < end:
        xj = x[0]
        if xj:
            # xorshift32 (13, 17, 5); the high word's garbage after << 5 is masked off
            # at its next use, one mask fewer per weight
            s = (s ^ (s << 13)) & m
            s ^= s >> 17
            s ^= s << 5
            v = wp[0] + ((c * xj + int((s & m) >> rs)) >> shift)
            if uint(v - 1) > uint(254):  # one test on the common path: v in 1..255
                if v < 1:
                    v = 1
                else:
                    v = 255
            wp[0] = v
        x = ptr8(uint(x) + 1)
        wp = ptr8(uint(wp) + 1)
    s &= m
    q[6] = int(s >> 16)
    q[7] = int(s) & 0xFFFF


@micropython.viper
def update(w, x, h, rng: ptr16, p: ptr32):
    # w and x stay objects: they go on to _update_row as they came
    sign = int(uint(1) << 31)  # coef may be negative: sign-extend it (see label_relu)
    coef = (int(p[2]) ^ sign) - sign
    if coef == 0:
        return
    hp = ptr8(h)
    n_in = p[0]
    n_out = p[1]
    floor = p[4]
    qo = _ROW
    q = ptr32(qo)
    q[0] = n_in
    q[2] = p[3]
    q[5] = 32 - p[3]
    row = _update_row
    i = 0
    while i < n_out:
        hv = hp[i]
        if hv < floor:
            hv = floor
        if hv:
            q[1] = coef * hv
            q[3] = rng[2 * i + 1]
            q[4] = i * n_in
            row(rng[2 * i], w, x, qo)  # type: ignore[arg-type]  # viper takes it as ptr32
            rng[2 * i] = q[6]
            rng[2 * i + 1] = q[7]
        i += 1


@micropython.viper
def head_scores(wh: ptr16, a: ptr8, n_in: int, n_out: int, scores: ptr32):
    base = 0
    c = 0
    while c < n_out:
        s = 0
        k = 0
        while k < n_in:
            s += ((wh[base + k] ^ 0x8000) - 0x8000) * a[k]  # sign-extend int16
            k += 1
        scores[c] = s
        base += n_in
        c += 1


@micropython.viper
def head_update(wh: ptr16, a: ptr8, rng: ptr16, p: ptr32):
    sign = int(uint(1) << 31)
    n_in = p[0]
    row = p[1]
    coef = (int(p[2]) ^ sign) - sign
    shift = p[3]
    m = (uint(0xFFFF) << 16) | uint(0xFFFF)
    rs = 32 - shift
    s = (uint(rng[0]) << 16) | uint(rng[1])
    base = row * n_in
    k = 0
    while k < n_in:
        ak = a[k]
        if ak:
            s ^= (s << 13) & m
            s ^= s >> 17
            s ^= (s << 5) & m
            v = ((wh[base + k] ^ 0x8000) - 0x8000) + ((coef * ak + int(s >> rs)) >> shift)
            if v < -4095:
                v = -4095
            elif v > 4095:
                v = 4095
            wh[base + k] = v
        k += 1
    rng[0] = int(s >> 16)
    rng[1] = int(s) & 0xFFFF
