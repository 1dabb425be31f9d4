"""Viper twins of ffrt.kernels_ref: same signatures, same bits, no allocation.

Viper integers are machine words (32 bits on boards, 64 on the unix port), so the
xorshift32 below masks with `_M32`, built at run time because a literal 0xFFFFFFFF
would not be a viper constant on 32-bit boards. Every value that the reference keeps
below 2**30 is the same here; see kernels_ref for each bound.
"""

import micropython


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
def normalize(h: ptr8, out: ptr8, n: int, recip: int):
    i = 0
    while i < n:
        v = (h[i] * recip) >> 16
        if v > 255:
            v = 255
        out[i] = v
        i += 1


@micropython.viper
def update(w: ptr8, x: ptr8, h: ptr8, rng: ptr16, p: ptr32):
    sign = int(uint(1) << 31)  # coef may be negative: sign-extend it (see label_relu)
    coef = (int(p[2]) ^ sign) - sign
    if coef == 0:
        return
    n_in = p[0]
    n_out = p[1]
    shift = p[3]
    floor = p[4]
    m = (uint(0xFFFF) << 16) | uint(0xFFFF)
    rs = 32 - shift
    base = 0
    i = 0
    while i < n_out:
        hv = h[i]
        if hv < floor:
            hv = floor
        if hv:
            c = coef * hv
            s = (uint(rng[2 * i]) << 16) | uint(rng[2 * i + 1])
            wp = ptr8(uint(w) + uint(base))
            j = 0
            while j < n_in:
                xj = x[j]
                if xj:
                    s ^= (s << 13) & m
                    s ^= s >> 17
                    s ^= (s << 5) & m
                    v = wp[j] + ((c * xj + int(s >> rs)) >> shift)
                    if v < 1:
                        v = 1
                    elif v > 255:
                        v = 255
                    wp[j] = v
                j += 1
            rng[2 * i] = int(s >> 16)
            rng[2 * i + 1] = int(s) & 0xFFFF
        base += n_in
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
