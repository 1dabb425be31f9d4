"""Guard rails for learning in the field: spot a collapse, roll back to the last good state.

A board that learns unattended can go wrong: a long run of mislabelled data, a learning
rate set too high, or a sensor fault can saturate the weights (many pinned at +-127) or
collapse goodness (every layer silent, or negatives as good as positives). The guard
watches running means of each layer's positive and negative goodness after every learn
step, and every `every` steps checks:

- saturation: the fraction of a layer's weights pinned at the rails above `max_pinned_q8`
  (Q8: 256 = all of them);
- collapse: a layer's mean positive goodness below `theta >> 4` (the layer went silent),
  or the net's mean margin (positive - negative goodness, summed over the layers that
  predict) at or below zero: negatives look as good as positives. (A single deep layer
  may separate little on its own; the sum is what prediction uses.)

A learner that sleeps (ffrt.sleep) learns the phases apart: its awake steps feed the
positive mean only (`observe(1)`), its sleep steps the negative one (`observe(2)`); until
the first sleep step of a stream the negative mean is the last one known (0 at first).

`patience` failed checks in a row trip it: it reloads the newest valid checkpoint
(ffrt.storage) and counts a rollback. `patience` passed checks in a row make the state
good; from then on every `save_every`-th passed check saves a checkpoint (0: never), so
the state rolled back to was itself checked. Integers only; the running means are shifts, so host and board agree.

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> net = FFNet(Config(n_features=4, n_classes=2, in_max=15, layers=(8,), lr_shift=22))
>>> g = Guard(net, None, every=4, patience=2)
>>> for _ in range(8):
...     net.learn_one([15, 0, 0, 15], 0); g.observe()
>>> g.checks, g.rollbacks
(2, 0)
"""

from array import array

_EMA = 4          # running means over about 16 learn steps
_RAIL_LO = b"\x01"  # weights are stored offset-binary: 1 is -127 ...
_RAIL_HI = b"\xff"  # ... and 255 is +127


class Guard:
    """Checks a net after its learn steps; rolls back to a checkpoint when it collapses."""

    def __init__(self, net, storage, every=64, patience=3, max_pinned_q8=64,
                 save_every=0):
        self.net = net
        self.storage = storage
        self.every = every
        self.patience = patience
        self.max_pinned_q8 = max_pinned_q8
        self.save_every = save_every
        n = net.n_layers
        self.gpos = array("i", [0] * n)
        self.gneg = array("i", [0] * n)
        self.checks = 0
        self.rollbacks = 0
        self.saves = 0
        self.reason = ""  # why the last check failed ("" when it passed)
        self._steps = 0
        self._bad = 0
        self._good = 0
        self._fresh = 3  # the running means not started yet: 1 positive, 2 negative

    def restart(self):
        """Forget the running means and the pass/fail runs (a new stream: ffrt.live's
        reset); the counts of checks, rollbacks and saves stay."""
        self._steps = 0
        self._bad = 0
        self._good = 0
        self._fresh = 3

    def observe(self, which=3):
        """Call after each learn step (net.last_pos / last_neg hold its goodness). which:
        3 both phases (learn_one); 1 the positive only (an awake step), 2 the negative
        only (a sleep step, ffrt.sleep): the other running mean is left as it is."""
        net = self.net
        fresh = self._fresh
        for l in range(net.n_layers):
            if which & 1:
                p = net.last_pos[l]
                self.gpos[l] = p if fresh & 1 else self.gpos[l] + ((p - self.gpos[l]) >> _EMA)
            if which & 2:
                q = net.last_neg[l]
                self.gneg[l] = q if fresh & 2 else self.gneg[l] + ((q - self.gneg[l]) >> _EMA)
        self._fresh = fresh & ~which
        self._steps += 1
        if self._steps % self.every == 0:
            self.check()

    def _fault(self):
        net = self.net
        cfg = net.cfg
        margin = 0
        for l in range(net.n_layers):
            w = net.weights[l]
            # pinned * 256 <= 2 * 16000**2 * 256 would pass 2**30 for the widest layers:
            # compare pinned with the limit scaled down instead
            pinned = w.count(_RAIL_LO) + w.count(_RAIL_HI)
            if pinned > (len(w) >> 8) * self.max_pinned_q8:
                return "layer %d: %d of %d weights at the rails" % (l, pinned, len(w))
            if self.gpos[l] < cfg.theta[l] >> 4:
                return "layer %d: positive goodness collapsed (%d)" % (l, self.gpos[l])
            if l >= cfg.goodness_from:
                margin += self.gpos[l] - self.gneg[l]  # |.| < n_layers * 2**24
        if margin <= 0:
            return "negatives as good as positives (margin %d)" % margin
        return ""

    def check(self):
        """One check now; returns True when the state passed."""
        self.checks += 1
        self.reason = self._fault()
        if not self.reason:
            self._bad = 0
            self._good += 1
            k = self._good - self.patience
            if (self.save_every and self.storage is not None and k >= 0
                    and k % self.save_every == 0):
                self.storage.save(self.net)
                self.saves += 1
            return True
        self._good = 0
        self._bad += 1
        if self._bad >= self.patience:
            self._bad = 0
            if self.storage is not None and self.storage.load_newest(self.net) is not None:
                self.rollbacks += 1
                self._steps = 0  # the running means start again from the restored state
                self._fresh = 3
        return False
