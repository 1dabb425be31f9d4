"""A class-balanced rehearsal buffer: a few stored samples per class, replayed between new ones.

A board cannot reorder its stream. When labels come in long blocks (an hour of sitting,
then a walk), learning one window at a time drifts towards the latest activity and forgets
the rest. The buffer keeps up to `per_class` samples of every class, chosen by reservoir
sampling within each class (every sample of a class seen so far has the same chance to be
kept), and after each new labelled sample the net also learns `replay` stored ones, taken
from the classes in turn. Integers only; the PRNG is a seeded xorshift32 like the net's,
so a host replaying the same stream gets the same bits.

RAM: n_classes * per_class * n_features bytes of samples (6 * 8 * 72 = 3,456 bytes for
HAPT), one sample's bytes that a replay is copied into, and a few counters
(`ram_bytes()`). A view per slot would spare the copy (72 bytes, a few thousand
instructions, against a learn step's millions) and cost an object each: 96 of them take
1.9 KB of a 32-bit board's heap at 16 per class.

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=2, in_max=15, layers=(8,), lr_shift=22))
>>> r = Rehearsal(net, per_class=2, replay=1)
>>> for i in range(5):
...     r.learn_one([i, 0, 0, 1], 0)
>>> r.stored(0), r.stored(1), r.seen(0), net.step   # 5 new steps + 4 replays
(2, 0, 5, 10)
"""

from array import array

from ffrt import fixedpoint as fp
from ffrt.net import BYTE_INPUTS

try:
    from micropython import const
except ImportError:  # CPython
    const = int  # type: ignore[assignment]

PER_CLASS_MAX = const(255)  # samples kept per class: the counts are bytes, as ADAPT's field
REPLAY_MAX = const(16)      # stored samples learnt after each new one


def check_sizes(per_class, replay, least=1):
    """ValueError unless least <= per_class <= PER_CLASS_MAX and 0 <= replay <= REPLAY_MAX
    (least 0: no buffer at all, as a live learner or an ADAPT may ask)."""
    if not least <= per_class <= PER_CLASS_MAX or not 0 <= replay <= REPLAY_MAX:
        raise ValueError("per_class must be in %d..%d and replay in 0..%d"
                         % (least, PER_CLASS_MAX, REPLAY_MAX))


class Rehearsal:
    """Learn through a net, keeping and replaying a class-balanced sample buffer."""

    def __init__(self, net, per_class=8, replay=1, seed=None):
        cfg = net.cfg
        check_sizes(per_class, replay)
        self.net = net
        self.per_class = per_class
        self.replay = replay
        self._nf = cfg.n_features
        self._buf = bytearray(cfg.n_classes * per_class * self._nf)
        self._one = bytearray(self._nf)             # the sample a replay learns (sample)
        self._count = bytearray(cfg.n_classes)      # samples stored per class
        self._seen = array("i", [0] * cfg.n_classes)  # samples offered per class
        self._next = 0                              # the class replayed next
        self.rng = array("H", [0, 0])
        fp.seed_state(self.rng, 0, (cfg.seed if seed is None else seed) ^ 0x2EA45A1)

    def stored(self, c):
        return self._count[c]

    def seen(self, c):
        return self._seen[c]

    def ram_bytes(self):
        """Bytes of samples, the replay's copy and counters."""
        return len(self._buf) + self._nf + len(self._count) + 4 * len(self._seen) + 4

    def sample(self, j):
        """Stored sample j (slot j: class j // per_class) in one buffer, rewritten by the
        next call: what a replay or a sleep step learns. Few locals: a frame over
        MicroPython's stack limit would be allocated on the heap at every call."""
        self.net.k.copy(self._one, self._buf, j * self._nf, self._nf)
        return self._one

    def learn_one(self, x, y):
        """Learn (x, y), keep it by reservoir sampling, then replay stored samples.

        The net checks x and y first (learn_one raises before anything changes), so a bad
        sample is neither learnt nor stored.
        """
        net = self.net
        net.learn_one(x, y)
        self._keep(x, y)
        for _ in range(self.replay):
            j = self._pick()
            if j >= 0:
                net.learn_one(self.sample(j), j // self.per_class)

    def _keep(self, x, y):
        seen = self._seen[y]
        if seen < 0x3FFFFFFF:
            seen += 1
            self._seen[y] = seen
        k = self.per_class
        if self._count[y] < k:
            j = self._count[y]
            self._count[y] = j + 1
        else:
            # keep with probability k / seen: a uniform draw below seen (< 2**28 draws
            # are exact; a longer stream keeps a slowly sliding sample)
            j = fp.xs_next(self.rng, 0, 28) % seen
            if j >= k:
                return
        self._put((y * k + j) * self._nf, x)

    def _put(self, o, x):
        if isinstance(x, BYTE_INPUTS):  # a window's features: one copy, no Python per byte
            self._buf[o:o + self._nf] = x
            return
        for i in range(self._nf):
            self._buf[o + i] = x[i]

    def _pick(self):
        """The slot of the stored sample to learn next (its class: slot // per_class):
        the classes in turn, a uniform draw within one; -1 when nothing is stored.
        Replays and sleep steps (ffrt.sleep) take their samples here."""
        n = len(self._count)
        c = self._next
        for _ in range(n):  # the next class, in turn, that has something stored
            if self._count[c]:
                break
            c = c + 1 if c + 1 < n else 0
        else:
            return -1
        self._next = c + 1 if c + 1 < n else 0
        return c * self.per_class + fp.xs_below(self.rng, 0, self._count[c])
