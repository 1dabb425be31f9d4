"""Anomaly mode: a one-class FF net learns "normal" from the stream, with self-made negatives.

Only normal windows arrive (no labels). For each new window x the learner builds negatives
from x (and a window it stored earlier) and takes `FFNet.learn_pair` steps (x positive,
the made-up window negative, label 0 overlaid on both). Goodness with label 0 is the normality
score: windows like those it learnt score high, others low.

Negatives (``mix``), all made from normal windows only:

- ``MIX_CHANNEL_GAIN`` (default): per window two steps, first against a *gain* negative
  (`_gain`: on a random subset of channels the window's motion made 4x stronger or 4x
  weaker, computed on its features), then against a channel-block hybrid (below). The
  gain negative is what teaches the net a band of normal motion energy: an untrained FF
  net's goodness grows with the input's energy, and hybrids of normal windows never show
  it more (or less) motion than normal, so with hybrids alone unseen vigorous windows
  score as *more* normal (measured: `ffkit.learning.anomaly_eval`).
- ``MIX_CHANNEL``: a *channel-block* hybrid only. The 72 features are 8 channels x 9
  features (`ffrt.features`); every channel's 9 features come, as a block, from x or from
  the stored window, by one PRNG bit per channel (redrawn until both windows contribute).
  Each block is then a real, self-consistent channel summary (its min <= mean <= max, its
  lag differences fitting its deviation), so what the hybrid gets wrong is only the joint
  structure *across* channels, where per-feature masks (``MIX_FEATURE``) would add
  trivially impossible combinations that no real anomaly shows.
- ``MIX_FEATURE``: a hybrid with an independent PRNG bit per feature.
- ``MIX_TIME``: a *time shuffle* of the window itself: the features of its 128 raw
  samples in a random order (`time_shuffle`), so the negative has the
  window's levels and spreads but noise's time structure. It needs the raw samples, so
  the windower that made x is passed to `learn_one`. Per window one gain negative and
  one time shuffle.

Why mostly features, not raw samples: splicing half of one window's raw samples with another's
needs two raw windows in RAM (2 x 128 x 6 int16 = 3 KB) and a second feature pass (128 x 8
channels of work) per step, five to ten times the learn step's own cost on a board; the
channel-block mix needs one stored feature vector per slot (72 bytes) and 72 byte copies,
and its blocks are genuine windows' features. A time shuffle (``MIX_TIME``) costs a second
feature pass per window but no second raw window: it reads the windower's own ring. The stored windows are a ring of ``slots`` windows, but only every
``stride``-th window enters it, so the partner of a hybrid is usually from a few minutes
earlier (often another normal activity) rather than the overlapping previous window.

Everything is integer and preallocated: the ring (slots x 72 bytes), one negative buffer,
the PRNG (xorshift32 in 16-bit halves, seeded, part of the state: `state_bytes`). learn_one
and score allocate nothing (with the viper kernels on a board).

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=72, n_classes=2, in_max=255, in_scale=1, layers=(16,)))
>>> a = AnomalyLearner(net, slots=4, stride=2)
>>> for i in range(10):
...     a.learn_one(bytearray([(i * 7 + j) % 200 for j in range(72)]))
>>> a.stored(), a.seen(), net.step      # the first window only fills the ring
(4, 10, 19)
"""

from array import array

from ffrt import fixedpoint as fp
from ffrt.features import N_CHANNELS, N_PER_CHANNEL, WINDOW, channel_features

MIX_CHANNEL = 0
MIX_FEATURE = 1
MIX_CHANNEL_GAIN = 2
MIX_TIME = 3
CHANNEL_FEATURES = 9  # features per channel in ffrt.features


def time_shuffle(windower, rng, perm, out):
    """Features of the windower's last window with its samples in a random order -> out.

    A *time shuffle*, the negative of MIX_TIME: the same samples, each sample's six axes
    kept together (one permutation for every channel, so the magnitudes still match their
    axes), so the window's levels and spreads stay (mean, deviation, min, max) while its
    time structure (the lag differences, the mean crossings) becomes noise's. perm (128
    bytes) receives a Fisher-Yates shuffle drawn from rng (an xorshift32 state,
    ffrt.fixedpoint); the windower's ring is read, not changed, so the stream goes on.
    Call it after `Windower.push` returned a window, before the next sample. Allocates
    nothing."""
    for i in range(WINDOW):
        perm[i] = i
    for i in range(WINDOW - 1, 0, -1):
        j = fp.xs_below(rng, 0, i + 1)
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
    r = windower.ring
    w = windower.win
    head = windower.pos
    mask = WINDOW - 1  # WINDOW is a power of 2
    for c in range(N_CHANNELS):
        base = c * WINDOW
        for i in range(WINDOW):
            w[i] = r[base + ((head + perm[i]) & mask)]
        channel_features(w, c, out, c * N_PER_CHANNEL)
    return out


class AnomalyLearner:
    """Learn normal windows through a one-class FFNet; score(x) is its normality."""

    def __init__(self, net, slots=8, stride=16, mix=MIX_CHANNEL_GAIN, seed=None):
        cfg = net.cfg
        if not 1 <= slots <= 255 or not 1 <= stride <= 4096:
            raise ValueError("slots must be in 1..255 and stride in 1..4096")
        if mix not in (MIX_CHANNEL, MIX_FEATURE, MIX_CHANNEL_GAIN, MIX_TIME):
            raise ValueError("mix must be MIX_CHANNEL, MIX_FEATURE, MIX_CHANNEL_GAIN or "
                             "MIX_TIME")
        nf = cfg.n_features
        if mix != MIX_FEATURE and (nf % CHANNEL_FEATURES or nf < 2 * CHANNEL_FEATURES):
            raise ValueError("MIX_CHANNEL needs n_features a multiple of 9 (>= 18)")
        self.net = net
        self.slots = slots
        self.stride = stride
        self.mix = mix
        self._nf = nf
        self._buf = bytearray(slots * nf)
        mv = memoryview(self._buf)
        self._slot = [mv[i * nf:(i + 1) * nf] for i in range(slots)]
        self.neg = bytearray(nf)
        self._perm = bytearray(128 if mix == MIX_TIME else 0)  # time_shuffle's order
        self._n = 0        # windows stored (up to slots)
        self._head = 0     # the ring slot written next
        self._seen = 0     # windows offered to learn_one
        self.rng = array("H", [0, 0])
        fp.seed_state(self.rng, 0, (cfg.seed if seed is None else seed) ^ 0x0A40E1)

    def stored(self):
        return self._n

    def seen(self):
        return self._seen

    def ram_bytes(self):
        """Bytes of the ring, the negative buffer, the permutation, PRNG and counters."""
        return len(self._buf) + len(self.neg) + len(self._perm) + 4 + 12

    def state_bytes(self):
        """Everything that decides future steps besides the net: ring, counters, PRNG."""
        n = self._seen
        return (bytes(self._buf) + bytes(self.rng) + bytes((self._n, self._head,
                n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >> 24) & 255)))

    def _hybrid(self, x):
        """Fill self.neg with a hybrid of x and a random stored window."""
        nf = self._nf
        rng = self.rng
        w = self._slot[fp.xs_below(rng, 0, self._n)]
        neg = self.neg
        if self.mix != MIX_FEATURE:
            nc = nf // CHANNEL_FEATURES
            full = (1 << nc) - 1
            m = 0
            while m == 0 or m == full:  # both windows give at least one channel
                m = fp.xs_next(rng, 0, nc) if nc <= 15 else fp.xs_next(rng, 0, 15)
            c = 0
            j = 0
            while j < nf:
                src = x if (m >> (c % 15)) & 1 else w
                for k in range(j, j + CHANNEL_FEATURES):
                    neg[k] = src[k]
                j += CHANNEL_FEATURES
                c += 1
        else:
            bits = 0
            for j in range(nf):
                if j % 15 == 0:
                    bits = fp.xs_next(rng, 0, 15)
                neg[j] = x[j] if (bits >> (j % 15)) & 1 else w[j]

    def _gain(self, x):
        """Fill self.neg with x whose motion, on a random subset of channels, is 4x
        stronger or 4x weaker (one PRNG bit for the direction): what scaling a channel's
        samples about their level does to its features. Spread features (deviation, lag
        differences) are isqrt(v << 4) of a sum linear in the gain, so they double or
        halve; min and max move 4x away from or towards their midpoint; mean and
        crossings stay. All in 0..255 (saturating)."""
        rng = self.rng
        nf = self._nf
        neg = self.neg
        for j in range(nf):
            neg[j] = x[j]
        nc = nf // CHANNEL_FEATURES
        m = 0
        while m == 0:
            m = fp.xs_next(rng, 0, nc) if nc <= 15 else fp.xs_next(rng, 0, 15)
        up = fp.xs_next(rng, 0, 1)
        for c in range(nc):
            if not (m >> (c % 15)) & 1:
                continue
            b = c * CHANNEL_FEATURES
            lo = neg[b + 2]  # ints from the bytearray (x may hold numpy uint8)
            hi = neg[b + 3]
            mid = (lo + hi) >> 1
            for k in (1, 4, 5, 6, 7):
                v = neg[b + k]
                neg[b + k] = (v << 1 if v < 128 else 255) if up else v >> 1
            if up:
                # clipped both ways: min > max never comes out of ffrt.features, but a
                # caller's window may hold anything in 0..255
                v = mid - ((mid - lo) << 2)
                neg[b + 2] = 0 if v < 0 else (255 if v > 255 else v)
                v = mid + ((hi - mid) << 2)
                neg[b + 3] = 0 if v < 0 else (255 if v > 255 else v)
            else:
                neg[b + 2] = mid - ((mid - lo) >> 2)
                neg[b + 3] = mid + ((hi - mid) >> 2)

    def learn_one(self, x, windower=None):
        """One normal window: learn_pair steps against its negatives (see the module
        docstring), then maybe store it. A bad x raises before anything changes.
        ``windower``: with MIX_TIME, the ffrt.features.Windower whose newest window is x."""
        net = self.net
        net._load(x)  # the range check, before the PRNG or any buffer moves
        if self.mix == MIX_TIME and windower is None:
            raise ValueError("MIX_TIME makes its negative from raw samples: pass the "
                             "windower that made x")
        if self.mix == MIX_CHANNEL_GAIN or self.mix == MIX_TIME:
            self._gain(x)
            net.learn_pair(x, self.neg, 0)
        if self.mix == MIX_TIME:
            net.learn_pair(x, time_shuffle(windower, self.rng, self._perm, self.neg), 0)
        elif self._n > 0:  # the first window has no partner for a hybrid yet
            self._hybrid(x)
            net.learn_pair(x, self.neg, 0)
        if self._seen % self.stride == 0:
            s = self._slot[self._head]
            for j in range(self._nf):
                s[j] = x[j]
            self._head += 1
            if self._head == self.slots:
                self._head = 0
            if self._n < self.slots:
                self._n += 1
        self._seen += 1

    def score(self, x):
        """Normality of x: total goodness with label 0 (higher: more normal)."""
        return self.net.goodness_of(x, 0)
