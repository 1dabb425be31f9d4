"""One-class learning for any feature vector: an FF net learns "normal" from normal rows only.

`OneClassLearner` takes rows of ``n`` integer features in 0..in_max (any sensor features, a
user's table quantised to bytes, image pixels) that are all normal. For each row x it makes
negatives from the data itself and takes `FFNet.learn_pair` steps (x positive, the
made-up row negative, label 0 overlaid on both). Goodness with label 0 is the normality
score: rows like those it learnt score high, others low. Nothing here knows what the
features mean (ffrt.anomaly is the HAPT-window learner, whose negatives need its channel
layout and raw samples).

Negatives (``negatives``, bit flags), each from the rows seen so far, with no stored rows:

- ``NEG_BOX``: every feature drawn uniformly from the range that feature has shown so
  far (``lo[j]..hi[j]``, two bytes per feature): the product of the seen ranges, the
  *box*. It has each feature's values but none of their joint structure.
- ``NEG_WIDE``: x with a random half of its features (one PRNG bit each) replaced by
  values drawn uniformly from the whole input range 0..in_max, so it also shows values
  normal rows never had, above and below their range.

Per row one step against each negative asked for (the first row only sets the ranges).

The net does not see x itself but its *thermometer code* (``levels`` codes per feature,
`encode`): with levels = 2 a feature v (as t = v * 255 // in_max) becomes
(min(2t, 255), max(2t - 256, 0)). Why: with one layer, goodness sum(relu(W x)**2) is a
convex function of its input, so the inputs it rates highest always lie at a corner of the
input range; normal rows in the middle of a feature's range (a blob, as tabular data
often is) cannot score above rows beyond it. The code's two pieces per feature let a unit
rise and then fall along each feature, so a bump is possible. (Measured with box and wide
negatives, tools/anomaly_validation.py: iris, normal = one species, quantised: ROC AUC
0.38 without the code, 0.95 with levels = 2; levels = 4 did not do better.) The net
therefore has ``n_features = n * levels`` inputs in 0..255 (in_max 255, in_scale 1).

Which negatives: on the validation tasks (models/oneclass.toml says which) the wide ones
alone did best; with box negatives a net that learnt HAPT walking windows rated rest
windows as normal far more often (ROC AUC: box 0.60, box and wide 0.83, wide 0.998).

Everything is integer and preallocated: the code table ((in_max + 1) * levels bytes), the
ranges, one raw negative, the coded positive and negative, and the PRNG (xorshift32 in
16-bit halves, seeded, part of the state: `state_bytes`). `learn_one` and `score`
allocate nothing (with the viper kernels on a board).

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=2 * 6, n_classes=2, in_max=255, in_scale=1, layers=(8,)))
>>> oc = OneClassLearner(net, in_max=16)
>>> for i in range(10):
...     oc.learn_one([(i + j) % 8 for j in range(6)])
>>> oc.seen(), net.step, bytes(oc.lo), bytes(oc.hi)   # two steps per row but the first
(10, 18, b'\\x00\\x00\\x00\\x00\\x00\\x00', b'\\x07\\x07\\x07\\x07\\x07\\x07')
>>> list(oc.encode([0, 8, 16, 4, 12, 1], oc.pos)[:6])   # (min(2t, 255), max(2t-256, 0))
[0, 0, 254, 0, 255, 254]
"""

from array import array

from ffrt import fixedpoint as fp

try:
    from micropython import const
except ImportError:  # CPython: const() is only a compile-time hint for MicroPython
    def const(x):  # type: ignore[misc]
        return x

NEG_BOX = const(1)
NEG_WIDE = const(2)
_NEG_ALL = const(3)
_MAX_LEVELS = const(4)
_SEEN_MAX = const(0x3FFFFFFF)  # the row counter saturates: a small int on every port


def code_table(in_max, levels):
    """The thermometer code of every raw value: bytes[v * levels + k] for v in 0..in_max.

    t = v * 255 // in_max spreads v over 0..255; code k is t's part in the k-th of
    ``levels`` equal pieces of 0..255, stretched to 0..255: clip((t - k * 256 // levels)
    * levels, 0, 255). Every value is below 2**16."""
    out = bytearray((in_max + 1) * levels)
    for v in range(in_max + 1):
        t = v * 255 // in_max
        for k in range(levels):
            e = (t - (k * 256) // levels) * levels
            out[v * levels + k] = 0 if e < 0 else (255 if e > 255 else e)
    return out


class OneClassLearner:
    """Learn normal rows through a one-class FFNet; score(x) is its normality."""

    def __init__(self, net, in_max, levels=2, negatives=_NEG_ALL, seed=None):
        cfg = net.cfg
        if not 1 <= in_max <= 255:
            raise ValueError("in_max must be in 1..255 (features are bytes)")
        if not 1 <= levels <= _MAX_LEVELS:
            raise ValueError("levels must be in 1..%d" % _MAX_LEVELS)
        if not 1 <= negatives <= _NEG_ALL:
            raise ValueError("negatives must be NEG_BOX, NEG_WIDE or both")
        if cfg.n_features % levels:
            raise ValueError("the net's n_features (%d) must be n * levels (levels %d)"
                             % (cfg.n_features, levels))
        if cfg.in_max != 255:  # so in_scale is 1 (Config: in_max * in_scale <= 255)
            raise ValueError("the net takes the code (0..255): in_max 255, in_scale 1")
        nf = cfg.n_features // levels
        self.net = net
        self.in_max = in_max
        self.levels = levels
        self.negatives = negatives
        self._nf = nf
        self._code = code_table(in_max, levels)
        self.lo = bytearray(nf)   # each feature's range so far (valid once a row was seen)
        self.hi = bytearray(nf)
        self.raw = bytearray(nf)  # the negative row, before it is coded
        self.pos = bytearray(nf * levels)
        self.neg = bytearray(nf * levels)
        self._seen = 0
        self.rng = array("H", [0, 0])
        fp.seed_state(self.rng, 0, (cfg.seed if seed is None else seed) ^ 0x0C1A55)

    def seen(self):
        """Rows learnt so far (saturates at 2**30 - 1)."""
        return self._seen

    def ram_bytes(self):
        """Bytes of the code table, ranges, negative and coded rows, PRNG and counter."""
        return (len(self._code) + len(self.lo) + len(self.hi) + len(self.raw)
                + len(self.pos) + len(self.neg) + 4 + 4)

    def state_bytes(self):
        """Everything that decides future steps besides the net: ranges, PRNG, counter."""
        n = self._seen
        return (bytes(self.lo) + bytes(self.hi) + bytes(self.rng)
                + bytes((n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >> 24) & 255)))

    def check(self, x):
        """Raise ValueError naming the fault unless x is n ints in 0..in_max."""
        nf = self._nf
        if len(x) != nf:
            raise ValueError("x has %d values, the learner takes %d" % (len(x), nf))
        hi = self.in_max
        for j in range(nf):
            v = x[j]
            if v < 0 or v > hi:
                raise ValueError("x[%d] = %d is outside the input range 0..%d" % (j, v, hi))

    def encode(self, x, out):
        """The thermometer code of the row x (n values in 0..in_max) -> out; returns out."""
        code = self._code
        lv = self.levels
        o = 0
        for j in range(self._nf):
            b = x[j] * lv
            for k in range(lv):
                out[o] = code[b + k]
                o += 1
        return out

    def _box(self):
        """self.raw: each feature uniform in its range so far (lo[j]..hi[j])."""
        rng = self.rng
        lo = self.lo
        hi = self.hi
        raw = self.raw
        for j in range(self._nf):
            a = lo[j]
            raw[j] = a + fp.xs_below(rng, 0, hi[j] - a + 1)

    def _wide(self, x):
        """self.raw: x with a random half of its features uniform in 0..in_max."""
        rng = self.rng
        raw = self.raw
        n = self.in_max + 1
        bits = 0
        for j in range(self._nf):
            if j % 15 == 0:
                bits = fp.xs_next(rng, 0, 15)
            raw[j] = fp.xs_below(rng, 0, n) if (bits >> (j % 15)) & 1 else x[j]

    def learn_one(self, x):
        """One normal row: widen the ranges, then a learn_pair step against each negative
        (none for the very first row, whose box is the row itself). A bad x raises
        before anything changes."""
        self.check(x)
        lo = self.lo
        hi = self.hi
        first = self._seen == 0
        for j in range(self._nf):
            v = x[j]
            if first or v < lo[j]:
                lo[j] = v
            if first or v > hi[j]:
                hi[j] = v
        if not first:
            net = self.net
            self.encode(x, self.pos)
            if self.negatives & NEG_BOX:
                self._box()
                net.learn_pair(self.pos, self.encode(self.raw, self.neg), 0)
            if self.negatives & NEG_WIDE:
                self._wide(x)
                net.learn_pair(self.pos, self.encode(self.raw, self.neg), 0)
        if self._seen < _SEEN_MAX:
            self._seen += 1

    def score(self, x):
        """Normality of the row x: total goodness of its code with label 0 (higher: more
        normal)."""
        self.check(x)
        return self.net.goodness_of(self.encode(x, self.pos), 0)
