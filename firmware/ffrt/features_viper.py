"""Viper twins of ffrt.features' per-window and per-sample work: same bits, no allocation.

`window` is `Windower.compute` (the ring's 8 channels copied out oldest first and their 72
features, as `channel_features` computes them); `sample` is the body of `Windower.push`
(six values saturated to int16, stored in the ring with the two magnitudes), and
`samples` the same for a block of samples read from memory (`Windower.push_block`). Picked by
ffrt.features where the emitter exists; the pure functions there are the reference and
the twin tests (tests/test_features.py) hold these to them. Pure Python spends about 10 M
x64 instructions on a window's features, for 8 x 128 values walked seven times.

Viper loads from a ptr16 are unsigned: int16 values are sign-extended with
``(v ^ 0x8000) - 0x8000``. Every bound is features' (sums below 2**23, squares below
2**28), so a 32-bit machine word computes what the reference does.
"""

import micropython

from ffrt.kernels_viper import isqrt


@micropython.viper
def _u8(v: int) -> int:
    if v < 0:
        return 0
    if v > 255:
        return 255
    return v


@micropython.viper
def _lag_sum(w: ptr16, lag: int) -> int:
    t = 0
    i = lag
    while i < 128:
        d = ((w[i] ^ 0x8000) - 0x8000) - ((w[i - lag] ^ 0x8000) - 0x8000)
        if d < 0:
            d = -d
        t += d
        i += 1
    return t


@micropython.viper
def window(ring: ptr16, w: ptr16, head: int, out: ptr8, tab: ptr8):
    """Features of ring (8 channels x 128, channel-major; the oldest at head) into out[0:72];
    w: 128 int16 of scratch (Windower.win); tab: ffrt.features._TAB, the per-channel shifts
    and offsets (mean, min, max shifts, offset, spread shift; 8 bytes each)."""
    sq = isqrt
    sat = _u8
    lag = _lag_sum
    c = 0
    while c < 8:
        base = c << 7
        s = 0
        i = 0
        while i < 128:
            v = ring[base + ((head + i) & 127)]
            w[i] = v
            x = (v ^ 0x8000) - 0x8000
            s += x
            if i == 0:
                lo = x
                hi = x
            elif x < lo:
                lo = x
            elif x > hi:
                hi = x
            i += 1
        m = s >> 7
        dev = 0
        cross = 0
        above = ((w[0] ^ 0x8000) - 0x8000) >= m
        i = 0
        while i < 128:
            d = ((w[i] ^ 0x8000) - 0x8000) - m
            if d < 0:
                d = -d
                if above:
                    cross += 1
                    above = False
            elif not above:
                cross += 1
                above = True
            dev += d
            i += 1
        k = tab[32 + c]
        off = tab[24 + c]
        o = c * 9
        out[o] = int(sat((m >> tab[c]) + off))
        out[o + 1] = int(sat(int(sq((dev >> 7) << k))))
        out[o + 2] = int(sat((lo >> tab[8 + c]) + off))
        out[o + 3] = int(sat((hi >> tab[16 + c]) + off))
        out[o + 4] = int(sat(int(sq((int(lag(w, 1)) >> 7) << k))))
        out[o + 5] = int(sat(int(sq((int(lag(w, 4)) >> 7) << k))))
        out[o + 6] = int(sat(int(sq((int(lag(w, 8)) >> 7) << k))))
        out[o + 7] = int(sat(int(sq((int(lag(w, 16)) >> 7) << k))))
        out[o + 8] = cross << 1
        c += 1


@micropython.viper
def _i16(v: int) -> int:
    if v < -32768:
        return -32768
    if v > 32767:
        return 32767
    return v


@micropython.viper
def sample(r: ptr16, p: int, ax: int, ay: int, az: int, gx: int, gy: int, gz: int):
    """Windower.push's sample into ring r at position p: the six values saturated to int16,
    then the magnitudes of (a >> 2) and (g >> 2). Values are small ints (|v| < 2**30)."""
    sat = _i16
    ax = int(sat(ax))
    ay = int(sat(ay))
    az = int(sat(az))
    gx = int(sat(gx))
    gy = int(sat(gy))
    gz = int(sat(gz))
    r[p] = ax
    r[p + 128] = ay
    r[p + 256] = az
    r[p + 384] = gx
    r[p + 512] = gy
    r[p + 640] = gz
    ax >>= 2
    ay >>= 2
    az >>= 2
    gx >>= 2
    gy >>= 2
    gz >>= 2
    sq = isqrt
    r[p + 768] = int(sq(ax * ax + ay * ay + az * az))
    r[p + 896] = int(sq(gx * gx + gy * gy + gz * gz))


@micropython.viper
def samples(r: ptr16, p: int, src: ptr8, off: int, k: int):
    """k samples into ring r from position p (wrapping at 128), read from src's memory at
    byte offset off: six little-endian int16 each (an array('h') on every port ffrt runs
    on, or a SAMPLES frame's body; read by bytes, so any alignment will do)."""
    sq = isqrt
    while k > 0:
        ax = ((src[off] | (src[off + 1] << 8)) ^ 0x8000) - 0x8000
        ay = ((src[off + 2] | (src[off + 3] << 8)) ^ 0x8000) - 0x8000
        az = ((src[off + 4] | (src[off + 5] << 8)) ^ 0x8000) - 0x8000
        gx = ((src[off + 6] | (src[off + 7] << 8)) ^ 0x8000) - 0x8000
        gy = ((src[off + 8] | (src[off + 9] << 8)) ^ 0x8000) - 0x8000
        gz = ((src[off + 10] | (src[off + 11] << 8)) ^ 0x8000) - 0x8000
        r[p] = ax
        r[p + 128] = ay
        r[p + 256] = az
        r[p + 384] = gx
        r[p + 512] = gy
        r[p + 640] = gz
        ax >>= 2
        ay >>= 2
        az >>= 2
        gx >>= 2
        gy >>= 2
        gz >>= 2
        r[p + 768] = int(sq(ax * ax + ay * ay + az * az))
        r[p + 896] = int(sq(gx * gx + gy * gy + gz * gz))
        p = (p + 1) & 127
        off += 12
        k -= 1
