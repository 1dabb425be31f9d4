"""FFNet: a Forward-Forward network in integer arithmetic that learns one sample at a time.

Each layer learns locally: positive data (the sample with its true label overlaid) should
have goodness sum(h**2) above the layer's threshold, negative data (a wrong label) below.
The update is the gradient of that layer's logistic loss, an outer product applied with
stochastic rounding; nothing is propagated backwards and no activations are kept.

All buffers are allocated here, once; learn_one and predict_one allocate nothing when
their kernels are the native or viper twins.

>>> from ffrt.model import Config
>>> net = FFNet(Config(n_features=4, n_classes=3, in_max=15, in_scale=17, layers=(16, 16),
...                    theta=(2000, 2000), act_shift=(5, 5), lr_shift=22))
>>> for _ in range(30):
...     for x, y in (([15, 0, 0, 15], 0), ([0, 15, 15, 0], 1), ([15, 15, 0, 0], 2)):
...         net.learn_one(x, y)
>>> [net.predict_one(x) for x in ([15, 0, 0, 15], [0, 15, 15, 0], [15, 15, 0, 0])]
[0, 1, 2]
"""

from array import array

from ffrt import fixedpoint as fp
from ffrt.model import NEG_HARDEST, NEG_MIX, NEG_RANDOM, as_int, no_int

BYTE_INPUTS = (bytes, bytearray)  # inputs whose values are 0..255 by their type (_load)


def _why(v, n, hi):
    """FFNet.check_x's message for x[n] = v, a value FFNet._outside found (apart: the
    message's locals would enlarge check_x's frame on every step, not only on errors);
    as_int raises the one for what is no integer."""
    return "x[%d] = %d is outside the input range 0..%d" % (n, as_int(v, "x[%d] =" % n), hi)


def default_kernels():
    """The fastest twin that loads here: the native module (C, ffrt/kernels_native.mpy,
    present where `ffkit flash` or `mpremote mip` put one built for this board's arch),
    else the viper twins (where the emitter exists), else the reference. A .mpy of
    another arch, or a port without a native loader, raises ValueError on import."""
    import sys
    if sys.implementation.name == "micropython":
        try:
            from ffrt import kernels_native  # type: ignore[attr-defined]  # a .mpy per arch
            return kernels_native
        except (ImportError, ValueError, OSError):
            pass
        try:
            from ffrt import kernels_viper
            return kernels_viper
        except (ImportError, SyntaxError, NotImplementedError):  # port built without viper
            pass
    from ffrt import kernels_ref
    return kernels_ref


class FFNet:
    """Integer Forward-Forward net with label overlay; see the module docstring."""

    def __init__(self, cfg, kernels=None, init=True):
        self.cfg = cfg
        self.k = kernels if kernels is not None else default_kernels()
        self.n_layers = len(cfg.layers)
        self.n_in = cfg.layer_inputs()
        self.weights = [bytearray(ni * no) for ni, no in zip(self.n_in, cfg.layers)]
        self.rngs = [array("H", bytes(4 * no)) for no in cfg.layers]
        self.n_head = cfg.head_inputs()
        self.head = array("h", bytes(2 * cfg.n_classes * self.n_head))
        self.head_rng = array("H", [0, 0])
        self.rng = array("H", [0, 0])
        self.step = 0
        self.ff_learning = True  # False: only the head learns (the untrained-net control)
        self._predicted = False  # goodness[] belongs to the sample in _x (see learn_last)
        # working buffers
        self._x = bytearray(self.n_in[0])  # features, label, (recurrent) the layer above
        # the label overlay's part of it (_overlay: a short frame indexes it from 0)
        self._lab = memoryview(self._x)[cfg.n_features:
                                        cfg.n_features + cfg.n_classes * cfg.label_repeat]
        self._h = [bytearray(n) for n in cfg.layers]
        self._acts = bytearray(sum(cfg.layers))  # normalised activities, all layers
        self._nv = []
        off = 0
        mv = memoryview(self._acts)
        for n in cfg.layers:
            self._nv.append(mv[off:off + n])
            off += n
        # the buffer each layer reads: the layer below's activities, or in a recurrent
        # model a buffer of them followed by the layer above's from the previous time step
        # (its tail, self._td[l]: the recurrent state, set by advance)
        self._inp = [self._x] + self._nv[:-1]
        self._td = []
        if cfg.recurrent:
            for l in range(self.n_layers - 1):
                if l:
                    self._inp[l] = bytearray(self.n_in[l])
                self._td.append(memoryview(self._inp[l])[self.n_in[l] - cfg.layers[l + 1]:])
        self._head_in = mv[sum(cfg.layers[:cfg.goodness_from]):]
        # every label's pass shares layer 1's sums over the features (kernels.fc_acc);
        # label_relu adds one label's columns
        self._acc0 = array("i", range(cfg.layers[0]))  # no temporary list: wide layers
        # the parameters label_relu, update and head_update read (kernels_ref.P_*, U_*,
        # H_*): one array for the three, each caller writing every field its kernel reads
        self._p = array("i", bytes(4 * 7))
        self._scores = array("i", [0] * cfg.n_classes)
        self.goodness = array("i", [0] * cfg.n_classes)  # per label, from the last predict
        self.last_pos = array("i", [0] * self.n_layers)   # per layer, from the last learn
        self.last_neg = array("i", [0] * self.n_layers)
        # a host twin may compute every label's pass at once (ffkit.twins.kernels_np); the
        # board's twins leave it to the loop in goodness_per_label
        self._all_labels = getattr(self.k, "goodness_labels", None)
        if init:  # init=False: the caller loads every tensor (ffw_ram.load, ffw.load_stream) and skips the draws
            self.reset()

    # ---- state -------------------------------------------------------------------------

    def reset(self):
        """Fresh weights and PRNG streams from cfg.seed (the same bits on every runner)."""
        cfg = self.cfg
        fp.seed_state(self.rng, 0, cfg.seed)
        r = cfg.init_range
        for l in range(self.n_layers):
            w = self.weights[l]
            for i in range(len(w)):
                w[i] = 128 - r + fp.xs_below(self.rng, 0, 2 * r + 1)
            for i in range(cfg.layers[l]):
                # seed < 2**30 and (l << 16 | i + 1) < 2**24: the XOR stays below 2**30
                fp.seed_state(self.rngs[l], i, cfg.seed ^ ((l << 16) | (i + 1)))
        for i in range(len(self.head)):
            self.head[i] = 0
        fp.seed_state(self.head_rng, 0, cfg.seed ^ 0x1234567)
        self.step = 0
        self.forget_outputs()
        self.reset_state()

    def forget_outputs(self):
        """Zero what the last prediction and learn step left (goodness per label and per
        layer), as in a net just made: new weights (reset, an import, a RESET reload:
        ffrt.ffw's loader calls this) make them another net's, so learn_last must not
        reuse them, and a log started afterwards must not report them (its replay starts
        from the weights alone)."""
        for a in (self.goodness, self.last_pos, self.last_neg):
            for i in range(len(a)):
                a[i] = 0
        self._predicted = False

    # ---- input checks: raise before anything changes --------------------------------------

    def check_x(self, x):
        """Raise ValueError naming the fault unless x is n_features ints in 0..in_max.

        The one statement of the input rule: learn and predict call it before anything
        changes, and the board's server calls it on a whole STREAM batch first.
        """
        n = self.cfg.n_features
        if len(x) != n:
            raise ValueError("x has %d values, the model takes %d" % (len(x), n))
        if isinstance(x, BYTE_INPUTS) and self.cfg.in_max >= 255:
            return  # bytes are 0..255 by their type
        n = self._outside(x)
        if n >= 0:
            raise ValueError(_why(x[n], n, self.cfg.in_max))

    def _outside(self, x):
        """The first index of x outside 0..in_max, -1 if none (a frame apart: see
        _normalize). A bool, a float or a string counts as outside: CPython would take
        True as 1, and 1.5 as far as a comparison goes; MicroPython refuses both later.
        A list, a tuple or a numpy object array may hold anything, so each of its values
        is judged; an array, a memoryview or another numpy array holds one type, so its
        first is (the check costs a call a value: the server's int16 features skip it).
        No try here: an exception handler makes the frame larger than MicroPython keeps
        on the C stack."""
        hi = self.cfg.in_max
        n = len(x) if type(x) is list or type(x) is tuple or getattr(x, "dtype", 0) == object \
            else min(len(x), 1)
        for j in range(n):
            v = x[j]
            if type(v) is not int and no_int(v):  # (a bool's type is bool everywhere)
                return j
        for j in range(len(x)):
            v = x[j]
            if v < 0 or v > hi:
                return j
        return -1

    def _load(self, x):
        cfg = self.cfg
        if cfg.in_scale == 1 and cfg.in_max >= 255 and isinstance(x, BYTE_INPUTS):
            self._load_bytes(x)  # a window's features, as a board has them: one copy
            return
        self.check_x(x)
        self._predicted = False  # before the copy: a learn_last never sees half an input
        buf = self._x
        s = cfg.in_scale
        for j in range(cfg.n_features):
            buf[j] = x[j] * s

    def _load_bytes(self, x):
        # bytes are 0..255 by their type, so only their count needs checking
        n = self.cfg.n_features
        if len(x) != n:
            self.check_x(x)  # raises, naming the fault
        self._x[0:n] = x
        self._predicted = False

    def check_label(self, y):
        """Return y as an int in 0..n_classes-1, or raise before anything changes (a bool,
        a float or a string is no label on any runner: ffrt.model.as_int)."""
        if type(y) is not int:  # the common case needs no call
            y = as_int(y, "label")
        if not 0 <= y < self.cfg.n_classes:
            raise ValueError("label %r is outside 0..%d" % (y, self.cfg.n_classes - 1))
        return y

    def _overlay(self, label):
        """One-hot label after the features, label_repeat times; label -1 spreads it
        evenly (neutral). Few locals: see _normalize."""
        lab = self._lab
        nc = self.cfg.n_classes
        v = self.cfg.label_value
        if label < 0:
            v //= nc
        for i in range(len(lab)):
            lab[i] = v if label < 0 or i % nc == label else 0

    # ---- passes ---------------------------------------------------------------------------

    def _normalize(self, l, g):
        # few locals: a frame over MicroPython's 11-word limit is allocated on the heap
        # target << 16 < 2**30 (norm_target < 2**14); see kernels_ref.normalize
        g = self.k.isqrt(g)  # a kernel: pure Python spends about 90 operations on it
        if g:
            g = (self.cfg.norm_target << 16) // g
        self.k.normalize(self._h[l], self._nv[l], self.cfg.layers[l], g)

    def _pass_on(self, l):
        """Layer l's normalised activities into the input buffer of layer l + 1
        (self._inp[l + 1]: the same buffer, or in a recurrent model a copy in front of the
        recurrent state: memcpy)."""
        inp = self._inp[l + 1]
        nv = self._nv[l]
        if inp is not nv:
            inp[0:len(nv)] = nv

    # The passes are split into short methods: a frame over MicroPython's limit (11 words
    # of locals and stack) is allocated on the heap at every call (ffkit bench:
    # heap_traffic_bytes_per_learn_step). Layer l reads self._inp[l] (_pass_on fills it).

    def _layer(self, l):
        """Layer l's activities from its input; returns their goodness."""
        return self.k.fc_relu(self.weights[l], self._inp[l], self._h[l], self.n_in[l],
                              self.cfg.layers[l], self.cfg.act_shift[l])

    def _forward(self, label):
        """Forward pass with a label overlaid; returns the predicting layers' goodness."""
        self._overlay(label)
        total = 0
        for l in range(self.n_layers):
            g = self._layer(l)
            if l >= self.cfg.goodness_from:
                total += g  # < n_layers * 2**24, far below 2**30 for a few layers
            self._normalize(l, g)
            if l < self.n_layers - 1:
                self._pass_on(l)
        return total

    # Every label's pass over one sample (a prediction, the hardest negative): the label
    # overlay changes only the label columns of the first layer's input, so its products
    # over the rest are formed once (_labels_first) and each label adds its own columns
    # (_label_goodness): the same bits as _forward(label), about 1.5x fewer MACs per
    # digits prediction (ffkit bench).

    def _labels_first(self):
        """Layer 1's sums over the input with the label columns zero (self._acc0)."""
        self._overlay(self.cfg.n_classes)  # no label: every label column zero
        p = self._p  # P_*: P_COL per label; the shift read here, since SET may change it
        p[0] = self.n_in[0]
        p[1] = self.cfg.layers[0]
        p[2] = self.cfg.act_shift[0]
        p[4] = self.cfg.n_classes
        p[5] = self.cfg.label_repeat
        p[6] = self.cfg.label_value
        self.k.fc_acc(self.weights[0], self._x, self._acc0, self.n_in[0], self.cfg.layers[0])

    def _label_goodness(self, c):
        """_forward(c)'s goodness, after _labels_first on the same sample."""
        self._p[3] = self.cfg.n_features + c
        return self._above(self.k.label_relu(self.weights[0], self._acc0, self._h[0],
                                             self._p))

    def _above(self, g):
        """The rest of a forward pass from the first layer's goodness g (its activities in
        self._h[0]); returns the predicting layers' goodness, as _forward does. The last
        layer is not normalised: in a label pass its normalised activities feed nothing
        (the head and the recurrent state take theirs from a pass with the neutral
        label, _forward(-1)), and each normalisation costs an isqrt."""
        total = g if self.cfg.goodness_from <= 0 else 0
        for l in range(1, self.n_layers):
            self._normalize(l - 1, g)
            self._pass_on(l - 1)
            g = self._layer(l)
            if l >= self.cfg.goodness_from:
                total += g
        return total

    def _learn_pass(self, label, record):
        """Forward with a label and let every layer take its local step: positive data
        when record is self.last_pos, negative when it is self.last_neg (each layer's
        goodness goes there). No more arguments: see _normalize; and no more attributes,
        since a net with over 29 of them doubles its attribute table."""
        self._overlay(label)
        for l in range(self.n_layers):
            self._learn_layer(l, record)

    def _learn_layer(self, l, record):
        g = self._layer(l)
        record[l] = g
        self._update(l, g, record is self.last_pos)
        if l < self.n_layers - 1:  # the last layer's normalised activities feed nothing
            self._normalize(l, g)  # here (the head's come from _forward(-1), see _above)
            self._pass_on(l)

    def _update(self, l, g, positive):
        """Layer l's local step after a pass of goodness g. Few locals, and the kernel's
        arguments in self._p: see _normalize."""
        g = fp.sigmoid_q8(g, self.cfg.theta[l], self.cfg.gshift[l])
        # d(log-likelihood)/d(goodness) in Q8: 1 - p for positive data, -p for negative
        self._p[2] = (fp.ONE_Q8 - g) * self.cfg.lr if positive else -g * self.cfg.lr
        self._p[4] = self.cfg.grad_floor if positive else 0
        self._step(l)

    def _step(self, l):
        p = self._p  # U_*: coef and floor set by _update
        p[0] = self.n_in[l]
        p[1] = self.cfg.layers[l]
        p[3] = self.cfg.lr_shift
        self.k.update(self.weights[l], self._inp[l], self._h[l], self.rngs[l], p)

    # ---- the public API ---------------------------------------------------------------------

    def learn_one(self, x, y):
        """One supervised step: the true label as positive, a wrong label as negative."""
        y = self.check_label(y)
        self._load(x)
        self._learn(y, False)

    def learn_last(self, y):
        """learn_one on the sample of the last predict_one / goodness_per_label call.

        The same bits as learn_one(x, y), but the hardest negative comes from the goodness
        that prediction already computed (same weights, same sums), which saves
        n_classes - 1 forward passes when a board predicts and then learns each sample.
        """
        if not self._predicted:
            raise ValueError("learn_last needs a prediction on the same sample first")
        y = self.check_label(y)
        self._learn(y, True)

    def _negative_label(self, y, known):
        """The wrong label to learn as negative data for the sample in _x (cfg.neg_mode):
        the one with the most goodness (from self.goodness when known), or a random one.
        Short methods with few locals, as the passes: see _normalize."""
        mode = self.cfg.neg_mode
        if mode == NEG_MIX:  # a bit from the net's stream: hardest or random this step
            mode = NEG_HARDEST if fp.xs_next(self.rng, 0, 1) else NEG_RANDOM
        if mode == NEG_HARDEST:
            return self._best_other(y, self.goodness if known else self._other_labels(y))
        mode = fp.xs_below(self.rng, 0, self.cfg.n_classes - 1)
        return mode + 1 if mode >= y else mode

    def _other_labels(self, y):
        """The goodness of every label but y for the sample in _x, in self._scores (not
        self.goodness: that stays the last prediction's; the head's scores are formed
        again before they are read, by _learn_head and predict_head)."""
        g = self._scores
        if self._all_labels is not None:
            self._all_labels(self, g)
        else:
            self._labels_first()
            for c in range(self.cfg.n_classes):
                if c != y:
                    g[c] = self._label_goodness(c)
        return g

    def _best_other(self, y, v):
        """The class other than y with the highest v[c] (ties: the lowest): the hardest
        negative by goodness, the head's strongest rival by score."""
        best = -1
        for c in range(self.cfg.n_classes):
            if c != y and (best < 0 or v[c] > v[best]):
                best = c
        return best

    def _learn(self, y, known):
        self._predicted = False  # the weights change below
        if self.ff_learning:
            neg = self._negative_label(y, known)
            self._learn_pass(y, self.last_pos)
            self._learn_pass(neg, self.last_neg)
        self._learn_head(y)
        self.step += 1

    def learn_pair(self, x_pos, x_neg, label=0):
        """One unsupervised step: x_pos is positive data, x_neg negative (e.g. a hybrid of
        two windows), both with the same label overlaid (0 for a one-class net); every
        layer raises the goodness of the first and lowers that of the second.

        Both inputs are checked before anything changes; the head does not learn.
        """
        label = self.check_label(label)
        self._load(x_neg)  # checks x_neg; x_pos is checked (and loaded) after it
        self._load(x_pos)
        if self.ff_learning:
            self._learn_pass(label, self.last_pos)
            self._load(x_neg)
            self._learn_pass(label, self.last_neg)
        self.step += 1

    # ---- the two phases apart in time (ffrt.sleep: awake, then asleep) --------------------

    def learn_positive(self, x, y, head=True):
        """The awake half of learn_one: (x, y) as positive data only, and with head the
        linear head's step; the negatives come later (learn_negative, ffrt.sleep). x and
        y are checked before anything changes. One step."""
        y = self.check_label(y)
        self._load(x)
        self._learn_positive(y, head)

    def learn_positive_last(self, y, head=True):
        """learn_positive on the sample of the last predict_one / goodness_per_label call
        (the same bits as learn_positive(x, y), without loading x again)."""
        if not self._predicted:
            raise ValueError("learn_positive_last needs a prediction on the same sample "
                             "first")
        y = self.check_label(y)
        self._learn_positive(y, head)

    def _learn_positive(self, y, head):
        self._predicted = False  # the weights change below
        if self.ff_learning:
            self._learn_pass(y, self.last_pos)
        if head:
            self._learn_head(y)
        self.step += 1

    def learn_negative(self, x, y):
        """The sleeping half of learn_one: x with a wrong label (cfg.neg_mode: the hardest
        by goodness, or a random one) as negative data. x and y are checked before
        anything changes; the head does not learn. One step."""
        y = self.check_label(y)
        self._load(x)
        if self.ff_learning:
            self._learn_pass(self._negative_label(y, False), self.last_neg)
        self.step += 1

    def goodness_of(self, x, label=0):
        """Total goodness of x with one label overlaid: a normality score for a net that
        learnt "normal" with learn_pair (higher: more like what it learnt as positive)."""
        self._load(x)
        return self._forward(label)

    def layer_input(self, l):
        """The buffer layer l read in the last pass (the first layer's: features, label,
        recurrent state); valid until the next pass. For diagnostics and calibration."""
        return self._inp[l]

    # ---- time (recurrent models) -----------------------------------------------------------

    def advance(self, x=None):
        """End a time step (a recurrent model; no-op otherwise): one pass of the current
        sample (x, if given: one that was neither predicted nor learnt) with the neutral
        label, whose normalised activities each layer but the first then reads as "the
        layer above at the previous step". The neutral label keeps the state free of the
        true label, which learning overlays, so a label never leaks into the next step's
        prediction. Call it once per sample, after predicting and learning it (ffrt.live
        does, per window)."""
        if self._td:
            self._advance(x)

    def _advance(self, x):
        if x is not None:
            self._load(x)
        self._forward(-1)
        for l in range(self.n_layers - 1):
            self._keep_state(l)
        self._predicted = False  # goodness[] stays; learn_last needs a new prediction

    def _keep_state(self, l):
        """The layer above's normalised activities as layer l's recurrent state (memcpy;
        a method of its own: see _normalize)."""
        nv = self._nv[l + 1]
        self._td[l][0:len(nv)] = nv

    def reset_state(self):
        """Forget the previous time step (a recurrent model): the state is all zero, as
        at the start of a stream."""
        for td in self._td:
            for i in range(len(td)):
                td[i] = 0

    def _learn_head(self, y):
        """Logistic step on the margin of the true class over its strongest rival. Few
        locals, and head_update's arguments in self._p (H_*): see _normalize."""
        self._head_forward()
        rival = self._best_other(y, self._scores)
        p = fp.sigmoid_q8(self._scores[y] - self._scores[rival], 0, self.cfg.head_gshift)
        p = (fp.ONE_Q8 - p) * self.cfg.head_lr
        hp = self._p
        hp[0] = self.n_head
        hp[3] = self.cfg.head_shift
        hp[1] = y
        hp[2] = p
        self._head_step()
        hp[1] = rival
        hp[2] = -p
        self._head_step()

    def _head_step(self):
        self.k.head_update(self.head, self._head_in, self.head_rng, self._p)

    def _head_forward(self):
        self._forward(-1)
        self.k.head_scores(self.head, self._head_in, self.n_head, self.cfg.n_classes,
                           self._scores)

    def goodness_per_label(self, x):
        """Fill and return self.goodness: total goodness with each label overlaid."""
        self._load(x)
        if self._all_labels is not None:
            self._all_labels(self, self.goodness)
        else:
            self._labels_first()
            for c in range(self.cfg.n_classes):
                self.goodness[c] = self._label_goodness(c)
        self._predicted = True
        return self.goodness

    def predict_one(self, x):
        """The label whose overlay gives the most goodness (ties: the lowest label)."""
        g = self.goodness_per_label(x)
        best = 0
        for c in range(1, self.cfg.n_classes):
            if g[c] > g[best]:
                best = c
        return best

    def predict_head(self, x):
        """One pass with a neutral label, then the linear head's best class."""
        self._load(x)
        self._head_forward()
        s = self._scores
        best = 0
        for c in range(1, self.cfg.n_classes):
            if s[c] > s[best]:
                best = c
        return best

    def ram_bytes(self):
        """Bytes held in the net's arrays (weights, PRNG states, head, buffers)."""
        n = sum(len(w) for w in self.weights) + sum(2 * len(r) for r in self.rngs)
        n += 2 * len(self.head) + 4 + 4 + len(self._x) + sum(len(h) for h in self._h)
        n += sum(len(b) for b in self._inp[1:] if type(b) is bytearray)  # recurrent inputs
        n += len(self._acts) + 4 * (len(self._scores) + len(self.goodness))
        n += 4 * (len(self._acc0) + len(self._p))
        n += 8 * self.n_layers
        return n
