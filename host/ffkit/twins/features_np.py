"""numpy twin of ``ffrt.features``: the same 72 integer features for many windows at once.

`features(samples, starts)` gives, for each window ``samples[s:s + 128]``, the bytes that
``ffrt.features.Windower`` writes on a board after it has been fed those 128 samples, bit
for bit (tests/test_features.py compares both on real HAPT windows, in CPython and in
MicroPython). ffrt.features documents the features, their bounds and their scaling; this
module restates the arithmetic only, vectorised in int64 (wide enough that nothing here
can differ from the board's small ints: every value stays below 2**30 there).

>>> import numpy as np
>>> x = np.zeros((256, 6), np.int16); x[:, 0] = 4096          # 1 g on x, at rest
>>> F = features(x, window_starts(len(x)))
>>> F.shape, F.dtype, F[0, :9].tolist(), F[0, 54:63].tolist()
((3, 72), dtype('uint8'), [192, 0, 192, 192, 0, 0, 0, 0, 0], [64, 0, 64, 64, 0, 0, 0, 0, 0])
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ffrt import features as _ff

WINDOW = _ff.WINDOW
HOP = _ff.HOP
N_FEATURES = _ff.N_FEATURES
N_CHANNELS = _ff.N_CHANNELS
LAGS = _ff.LAGS

_SHIFT_MEAN = np.frombuffer(_ff._SHIFT_MEAN, np.uint8).astype(np.int64)
_SHIFT_MIN = np.frombuffer(_ff._SHIFT_MIN, np.uint8).astype(np.int64)
_SHIFT_MAX = np.frombuffer(_ff._SHIFT_MAX, np.uint8).astype(np.int64)
_OFFSET = np.frombuffer(_ff._OFFSET, np.uint8).astype(np.int64)
_SHIFT_SPREAD = np.frombuffer(_ff._SHIFT_SPREAD, np.uint8).astype(np.int64)

_LOG2 = 7
assert 1 << _LOG2 == WINDOW


def isqrt(n):
    """floor(sqrt(n)) elementwise for integer arrays 0 <= n < 2**52, exactly.

    The float root is within one of the true one there; the two corrections make it exact.
    """
    n = np.asarray(n, dtype=np.int64)
    r = np.floor(np.sqrt(n.astype(np.float64))).astype(np.int64)
    r -= r * r > n
    r += (r + 1) * (r + 1) <= n
    return r


def window_starts(n_samples, window=WINDOW, hop=HOP):
    """0, hop, 2 hop, ...: the windows a `Windower` emits for n samples after a reset."""
    if n_samples < window:
        return np.zeros(0, np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def channels(samples):
    """(n, 6) int16 samples -> (n, 8) int64: the axes, then |acc| and |gyro| (ffrt.features)."""
    x = np.asarray(samples)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError("samples must be (n, 6), got shape %s" % (x.shape,))
    x = np.clip(x.astype(np.int64), -32768, 32767)
    q = x >> 2
    sq = q * q
    acc = isqrt(sq[:, 0] + sq[:, 1] + sq[:, 2])
    gyro = isqrt(sq[:, 3] + sq[:, 4] + sq[:, 5])
    return np.concatenate([x, acc[:, None], gyro[:, None]], axis=1)


def _u8(v):
    return np.clip(v, 0, 255)


def window_features(W):
    """Features of windows W (n, 8 channels, 128) int64 -> (n, 72) uint8."""
    n = W.shape[0]
    m = W.sum(axis=2) >> _LOG2
    dev = W - m[:, :, None]
    mad = np.abs(dev).sum(axis=2) >> _LOG2
    above = dev >= 0
    cross = (above[:, :, 1:] != above[:, :, :-1]).sum(axis=2)
    k = _SHIFT_SPREAD[None, :]
    off = _OFFSET[None, :]
    F = np.empty((n, N_CHANNELS, 9), np.int64)
    F[:, :, 0] = _u8((m >> _SHIFT_MEAN[None, :]) + off)
    F[:, :, 1] = _u8(isqrt(mad << k))
    F[:, :, 2] = _u8((W.min(axis=2) >> _SHIFT_MIN[None, :]) + off)
    F[:, :, 3] = _u8((W.max(axis=2) >> _SHIFT_MAX[None, :]) + off)
    for j, lag in enumerate(LAGS):
        d = np.abs(W[:, :, lag:] - W[:, :, :-lag]).sum(axis=2) >> _LOG2
        F[:, :, 4 + j] = _u8(isqrt(d << k))
    F[:, :, 8] = cross << 1
    return F.reshape(n, N_FEATURES).astype(np.uint8)


def features(samples, starts, batch=2048):
    """(len(starts), 72) uint8: the features of ``samples[s:s + 128]`` for each start s.

    ``samples``: (n, 6) integer array in int16 units (values outside int16 are saturated,
    as the board's Windower does). Windows are processed ``batch`` at a time.
    """
    ch = channels(samples)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) and (starts.min() < 0 or starts.max() + WINDOW > len(ch)):
        raise ValueError("a window runs outside the %d samples" % len(ch))
    out = np.empty((len(starts), N_FEATURES), np.uint8)
    if not len(starts):
        return out
    view = sliding_window_view(ch, WINDOW, axis=0)  # (n - 127, 8, 128), no copy
    for a in range(0, len(starts), batch):
        out[a:a + batch] = window_features(view[starts[a:a + batch]])
    return out
