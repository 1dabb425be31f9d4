"""Integer window features of a 6-axis IMU stream, computed on the board as samples arrive.

Input: int16 samples (acc x, y, z at 4096 LSB/g; gyro x, y, z at 2048 LSB/(rad/s), as
ffkit.data.hapt converts HAPT). A `Windower` keeps the last 128 samples in a ring and, every 64
samples (2.56 s windows, hop 1.28 s at 50 Hz), writes 72 features into one preallocated
bytearray, each 0..255: the input of an FF net with ``in_max = 255``.

Channels (8): the six axes, then acceleration magnitude ``isqrt(sum((a >> 2)**2))`` and
gyro magnitude likewise (in 1/4 of the axes' LSB: 1024 per g, 512 per rad/s). Each axis is
shifted right by 2 before squaring so that the sum stays below 2**30: ``|a >> 2| <= 8192``,
so the sum of three squares is at most ``3 * 2**26 < 2**28``; the root is at most 14,189.

Features per channel c, over the window's 128 values x[0..127] (oldest first), in this
order (feature ``9 * c + k``):

====  =====================  ================================================================
 k    feature                integer value v
====  =====================  ================================================================
 0    mean                   ``m = sum(x) >> 7`` (floor)
 1    mean abs deviation     ``sum(|x[i] - m|) >> 7``
 2    min                    ``min(x)``
 3    max                    ``max(x)``
 4-7  mean abs difference    ``sum(|x[i] - x[i - L]| for i in L..127) >> 7`` for L = 1, 4, 8, 16
      at lag L               (divided by 128, not 128 - L: a fixed factor per feature)
 8    mean crossings         how many i in 1..127 have ``x[i] >= m`` unlike ``x[i - 1]``
====  =====================  ================================================================

Bounds: ``|x| <= 32768`` so ``|sum(x)| <= 2**22``; ``|x[i] - m|`` and ``|x[i] - x[i-L]|``
are at most 65,535 and their sums at most ``128 * 65535 < 2**23``.

Scaling to 0..255 (fixed shifts, saturating; chosen from the HAPT ranges, subjects 1-15):

- level features (mean, min, max) of the axes: ``(v >> s) + 128`` with s = 6 for acc
  (1/64 g per step, +-2 g: the phone's range), s = 4 for the gyro mean (1/128 rad/s, +-1
  rad/s) and s = 6 for gyro min and max (1/32 rad/s, +-4 rad/s). Of the magnitudes (no
  sign, no offset): acc ``v >> 4`` (1/64 g, up to 4 g); gyro ``v >> 2`` for mean and min
  (1/128 rad/s, up to 2 rad/s) and ``v >> 4`` for max (up to 8 rad/s).
- spread features (deviation, differences): ``isqrt(v << 4)`` for the axes and
  ``isqrt(v << 6)`` for the magnitudes (whose unit is 4x coarser: the same scale in the
  axes' LSB). The square root spreads the small values of postures over more steps than a
  shift would; it saturates at ``v = 4064`` axis LSB, about 1 g or 2 rad/s, and
  ``v << 6 < 2**23``. The square root and lag 8 (over 2 or 32) were chosen by logistic
  regression, leave-subjects-out within subjects 1-15 only.
- crossings: ``2 * count`` (0..254).

Every intermediate stays below 2**30 (tests/test_features.py records them all). ffkit's
``features_np`` computes the same bits for many windows at once.

>>> w = Windower()
>>> outs = [w.push(4096, 0, 0, 0, 0, 0) for i in range(128)]   # 1 g on x, at rest
>>> outs[126] is None, outs[127] is w.out, len(w.out)
(True, True, 72)
>>> list(w.out[0:9]), list(w.out[54:63])      # acc x: mean 1 g = 128 + 64; magnitude 1 g
([192, 0, 192, 192, 0, 0, 0, 0, 0], [64, 0, 64, 64, 0, 0, 0, 0, 0])
>>> [w.push(0, 0, 0, 0, 0, 0) for i in range(64)].index(w.out)   # then every 64th sample
63
"""

from array import array

from ffrt.fixedpoint import isqrt

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

WINDOW = const(128)
HOP = const(64)
N_CHANNELS = const(8)
N_PER_CHANNEL = const(9)
N_FEATURES = const(72)
LAGS = (1, 4, 8, 16)

_MASK = const(127)       # WINDOW - 1: ring positions wrap with & (WINDOW is a power of 2)
_LOG2_WINDOW = const(7)

# per channel (ax, ay, az, gx, gy, gz, |a|, |g|): shifts of mean, min, max; offsets; spread
_SHIFT_MEAN = b"\x06\x06\x06\x04\x04\x04\x04\x02"
_SHIFT_MIN = b"\x06\x06\x06\x06\x06\x06\x04\x02"
_SHIFT_MAX = b"\x06\x06\x06\x06\x06\x06\x04\x04"
_OFFSET = b"\x80\x80\x80\x80\x80\x80\x00\x00"
_SHIFT_SPREAD = b"\x04\x04\x04\x04\x04\x04\x06\x06"
_TAB = _SHIFT_MEAN + _SHIFT_MIN + _SHIFT_MAX + _OFFSET + _SHIFT_SPREAD  # the twins' table


def fast_twin(kernels=None):
    """The twin of `Windower`'s work that goes with a net's kernels (ffrt.net): the native
    module itself, which carries `window`, `sample` and `samples` in C; ffrt.features_viper
    beside the viper kernels; None (the pure functions here) beside any other. kernels
    None: those ffrt.net.default_kernels picks here. The same bits every way
    (tests/test_features.py)."""
    if kernels is None:
        from ffrt.net import default_kernels
        kernels = default_kernels()
    if hasattr(kernels, "window"):
        return kernels
    if getattr(kernels, "__name__", "") == "ffrt.kernels_viper":
        from ffrt import features_viper
        return features_viper
    return None


def windows_done(n, due=WINDOW):
    """The windows that n more samples complete when the next one is `due` samples away
    (WINDOW from a reset windower; Windower.due), one every HOP samples after it."""
    return 0 if n < due else 1 + (n - due) // HOP


def _u8(v):
    """Saturate to 0..255."""
    if v < 0:
        return 0
    if v > 255:
        return 255
    return v


def _i16(v):
    """Saturate to the int16 range (typed arrays wrap silently on some ports)."""
    if v < -32768:
        return -32768
    if v > 32767:
        return 32767
    return v


def _lag_sum(w, lag):
    """sum(|w[i] - w[i - lag]|) for i in lag..127: at most 127 * 65535 < 2**23."""
    t = 0
    for i in range(lag, WINDOW):
        d = w[i] - w[i - lag]
        if d < 0:
            d = -d
        t += d
    return t


def channel_features(w, c, out, o):
    """The 9 features of channel c over the window w (128 values, oldest first) -> out[o:o+9]."""
    s = 0
    lo = w[0]
    hi = lo
    for i in range(WINDOW):
        x = w[i]
        s += x
        if x < lo:
            lo = x
        elif x > hi:
            hi = x
    m = s >> _LOG2_WINDOW
    dev = 0
    cross = 0
    above = w[0] >= m
    for i in range(WINDOW):
        d = w[i] - m
        if d < 0:
            d = -d
            if above:
                cross += 1
                above = False
        elif not above:
            cross += 1
            above = True
        dev += d
    k = _SHIFT_SPREAD[c]
    off = _OFFSET[c]
    out[o] = _u8((m >> _SHIFT_MEAN[c]) + off)
    out[o + 1] = _u8(isqrt((dev >> _LOG2_WINDOW) << k))
    out[o + 2] = _u8((lo >> _SHIFT_MIN[c]) + off)
    out[o + 3] = _u8((hi >> _SHIFT_MAX[c]) + off)
    out[o + 4] = _u8(isqrt((_lag_sum(w, 1) >> _LOG2_WINDOW) << k))
    out[o + 5] = _u8(isqrt((_lag_sum(w, 4) >> _LOG2_WINDOW) << k))
    out[o + 6] = _u8(isqrt((_lag_sum(w, 8) >> _LOG2_WINDOW) << k))
    out[o + 7] = _u8(isqrt((_lag_sum(w, 16) >> _LOG2_WINDOW) << k))
    out[o + 8] = cross << 1


class Windower:
    """Samples in one at a time, 72 features out every `HOP` samples once `WINDOW` are in.

    Buffers (allocated here, once): ``ring`` holds the last 128 values of the 8 channels
    (``array('h')``, channel-major, 2 KB), ``win`` one channel's window oldest first (256
    bytes), ``out`` the features (72 bytes). `push` allocates nothing. The work runs in
    the twin that goes with kernels (`fast_twin`: a live learner passes its net's), or
    in the pure reference with fast False (the twin tests).

    A sensor loop::

        fw = Windower()
        while True:
            ax, ay, az, gx, gy, gz = imu.read()        # int16, 4096 LSB/g, 2048 LSB/(rad/s)
            x = fw.push(ax, ay, az, gx, gy, gz)
            if x is not None:                          # every 64th sample from the 128th on
                label = net.predict_one(x)
    """

    def __init__(self, fast=True, kernels=None):
        self.ring = array("h", bytes(2 * N_CHANNELS * WINDOW))
        self.win = array("h", bytes(2 * WINDOW))
        self.out = bytearray(N_FEATURES)
        self.twin = fast_twin(kernels) if fast else None
        self.reset()

    def reset(self):
        """Forget the samples so far: the next window is the next 128 samples."""
        self.pos = 0           # ring position of the next sample (and of the oldest)
        self.due = WINDOW      # samples until the next window is complete
        self.count = 0         # windows emitted since reset

    def push(self, ax, ay, az, gx, gy, gz):
        """Add one sample (int16 values; others are saturated); return `out` or None.

        `out` is returned (and rewritten) when this sample completes a window: the 128th
        sample after `reset` and every 64th after that. Copy it to keep it.
        """
        r = self.ring
        p = self.pos
        t = self.twin
        if t is not None:
            t.sample(r, p, ax, ay, az, gx, gy, gz)
        else:
            self._sample(r, p, ax, ay, az, gx, gy, gz)
        return self._advance(p, 1)

    def push_block(self, src, off, k):
        """k samples (1 <= k <= `due`) of six little-endian int16 from src's memory at byte
        offset off (an array('h'), whose memory is little-endian on every port ffrt runs
        on, or a SAMPLES frame's body); `out` when they complete a window, else None.
        One call for a block, not one per sample: it needs the twin (`twin` not None),
        and callers without one push sample by sample."""
        if self.twin is None or not 0 < k <= self.due:
            raise ValueError("push_block: %d samples, %d due" % (k, self.due))
        p = self.pos
        self.twin.samples(self.ring, p, src, off, k)
        return self._advance(p, k)

    def _advance(self, p, k):
        """k samples stored from ring position p: `out` when they complete a window."""
        self.pos = (p + k) & _MASK
        self.due -= k
        if self.due:
            return None
        self.due = HOP
        self.count += 1
        self.compute()
        return self.out

    @staticmethod
    def _sample(r, p, ax, ay, az, gx, gy, gz):
        """The reference of features_viper.sample: saturate, store, the magnitudes."""
        ax = _i16(ax)
        ay = _i16(ay)
        az = _i16(az)
        gx = _i16(gx)
        gy = _i16(gy)
        gz = _i16(gz)
        r[p] = ax
        r[p + 128] = ay
        r[p + 256] = az
        r[p + 384] = gx
        r[p + 512] = gy
        r[p + 640] = gz
        # |v >> 2| <= 8192: three squares sum to at most 3 * 2**26 < 2**28
        ax >>= 2
        ay >>= 2
        az >>= 2
        gx >>= 2
        gy >>= 2
        gz >>= 2
        r[p + 768] = isqrt(ax * ax + ay * ay + az * az)
        r[p + 896] = isqrt(gx * gx + gy * gy + gz * gz)

    def compute(self):
        """Features of the ring's 128 samples (oldest at `pos`) into `out`."""
        r = self.ring
        w = self.win
        head = self.pos
        if self.twin is not None:
            self.twin.window(r, w, head, self.out, _TAB)
            return
        for c in range(N_CHANNELS):
            base = c << _LOG2_WINDOW
            for i in range(WINDOW):
                w[i] = r[base + ((head + i) & _MASK)]
            channel_features(w, c, self.out, c * N_PER_CHANNEL)
