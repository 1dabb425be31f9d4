"""FFClassifier: the integer Forward-Forward net as a River classifier.

It wraps an ``ffrt.net.FFNet``, the engine that runs on the board, so what it learns from
a River stream is bit for bit what a board would learn from the same samples (the numpy
kernels are bit-identical to the reference ones); ``ffrt.ffw_ram.encode(model.net)`` gives
the weight file to send to a board.

>>> from sklearn.datasets import load_digits
>>> from ffkit.learning.river_model import FFClassifier
>>> X, y = load_digits(return_X_y=True)      # 64 features, integers 0..16 (as floats)
>>> model = FFClassifier()                   # the digits model: 64 features, 10 classes
>>> for xi, yi in zip(X[:300], y[:300]):
...     model.learn_one(dict(enumerate(xi)), int(yi))
>>> hits = sum(int(model.predict_one(dict(enumerate(xi))) == yi)
...            for xi, yi in zip(X[300:400], y[300:400]))
>>> hits >= 60          # right of 100 unseen digits after one pass over 300 (75 measured)
True
>>> proba = model.predict_proba_one(dict(enumerate(X[400])))
>>> len(proba), round(sum(proba.values()), 6)
(10, 1.0)

Float dicts of any width work too: features take the model's 64 input slots as they come
and a running min/max per feature quantises their values to the integers 0..16 the engine
reads (``scale="minmax"``, the default when no ``feature_names`` are given).

>>> from river import datasets, evaluate, metrics
>>> evaluate.progressive_val_score(datasets.Phishing().take(200), FFClassifier(),
...                                metrics.Accuracy()).get() > 0.7
True
"""

import math
import warnings

from river import base

from ffrt.model import Config
from ffrt.net import FFNet

__all__ = ["FFClassifier"]

KERNELS = ("numpy", "reference")
SCALES = ("auto", "minmax", None)


def _kernel_module(name):
    if name == "numpy":
        from ffkit.twins import kernels_np
        return kernels_np
    if name == "reference":
        from ffrt import kernels_ref
        return kernels_ref
    raise ValueError("kernels must be one of %s (got %r)" % (", ".join(KERNELS), name))


def _make_config(config):
    """A private Config from a Config, a dict of Config fields, or None (the digits model)."""
    if config is None:
        from ffkit import config as model_files
        path = model_files.default_model_file("digits")
        if path is None:
            raise ValueError("config=None means the digits model, models/digits.toml, which "
                             "is not next to this installation; pass a Config")
        spec = model_files.load(path)
        kw = spec.model.as_dict()
        if spec.lr_shift_schedule:  # learning from scratch: the bootstrap's first step size
            kw["lr_shift"] = spec.lr_shift_schedule[0][1]
        return Config(**kw)
    if isinstance(config, Config):
        return Config(**config.as_dict())
    if isinstance(config, dict):
        return Config(**config)
    raise TypeError("config must be an ffrt.model.Config, a dict of its fields or None "
                    "(got %s)" % type(config).__name__)


class _Engine:
    """Holds the FFNet and the learner it learns through (ffrt.live.Learner: the board's
    policy, plain here: no buffer, schedule or guard); pickles and deep-copies as its .ffw
    bytes (an FFNet holds a module and memoryviews, which neither pickle nor deepcopy can
    take)."""

    def __init__(self, net, kernels):
        from ffrt.live import Learner
        self.net = net
        self.kernels = kernels
        self.learner = Learner(net)

    def __reduce__(self):
        from ffrt import ffw_ram
        return (_restore, (bytes(ffw_ram.encode(self.net)), self.kernels, self.net.ff_learning))


def _restore(data, kernels, ff_learning):
    from ffrt import ffw_ram
    net = ffw_ram.load(data, kernels=_kernel_module(kernels))
    net.ff_learning = ff_learning
    return _Engine(net, kernels)


def _sorted_keys(keys):
    try:
        return sorted(keys)
    except TypeError:  # keys of mixed types: any fixed order will do
        return sorted(keys, key=repr)


def _as_float(name, v):
    """A feature value as a finite float, or ValueError naming the feature."""
    if isinstance(v, (str, bytes)):
        ok = False
    else:
        try:
            f = float(v)
            ok = math.isfinite(f)
        except (TypeError, ValueError, OverflowError):
            ok = False
    if not ok:
        raise ValueError("feature %r = %r is not a finite number" % (name, v))
    return f


class FFClassifier(base.Classifier):
    """An integer Forward-Forward network that learns one sample at a time.

    Each ``learn_one`` is one step of the board's learning rule: the sample with its true
    label overlaid is positive data, the wrong label with the most goodness is negative
    data, and every layer takes its own local step; the linear head learns too.

    Parameters
    ----------
    config
        An ``ffrt.model.Config``, a dict of its fields, or None for the digits model (the
        ``[model]`` table of ``models/digits.toml``: 64 input slots 0..16, 10 classes,
        layers 128-128, learning at the first step size of its bootstrap schedule, since a
        River model starts from scratch). The config is copied.
    feature_names
        The features the model reads, in input order (exactly ``config.n_features`` of
        them). If None, features are discovered as they come (see Features below).
    classes
        The labels, mapped to the model's classes 0..n-1 in this order. If None, labels are
        mapped in order of first appearance in ``learn_one``, up to ``config.n_classes``.
    kernels
        ``"numpy"`` (fast, bit-identical) or ``"reference"`` (ffrt's pure-Python kernels).
    scale
        How feature values become the engine's integers 0..``config.in_max``:
        ``"minmax"`` quantises any finite numbers with a running min/max per feature;
        None takes integers as they are (the board's own input contract); ``"auto"`` (the
        default) is None when ``feature_names`` are given and ``"minmax"`` otherwise.

    Features
    --------
    Without ``feature_names`` the model has ``config.n_features`` input slots. In
    ``learn_one`` each key not seen before takes the next free slot (the new keys of one
    sample in sorted order, so the order of a dict's keys never matters). Once every slot
    is taken, further new keys are ignored: they are never read, and the first such key
    raises a ``UserWarning`` naming it (make ``n_features`` larger, or give
    ``feature_names``, to keep them). Predictions never add features; keys the model
    does not read are ignored. A feature missing from a sample gives its slot the input 0
    (no contribution to the first layer), in either scale.

    Inputs
    ------
    With ``scale="minmax"``: any finite number (int, float, bool, numpy scalar). Each
    ``learn_one`` widens the feature's range ``[lo, hi]`` to take the value, then
    ``round((v - lo) / (hi - lo) * in_max)``, clipped to ``0..in_max``, is the engine's
    input (0 while ``hi == lo``); predictions use the ranges as they stand. The ranges are
    part of the model (``ranges_``; they pickle with it); ``quantise_one(x)`` gives the
    exact integer row the engine sees, which is what a board would be sent.
    With ``scale=None``: integers in ``0..config.in_max`` (integral floats such as 3.0 are
    accepted, since River streams often carry floats). Anything else raises ValueError
    naming the feature, before anything changes.

    Probabilities
    -------------
    ``predict_proba_one`` is the softmax of the per-label goodness (one forward pass per
    label, integer) divided by the layers' sigmoid temperature ``T = 8 * 2**gshift``
    (``gshift`` averaged over the predicting layers when they differ), computed in host
    floats. With equal gshifts this is exact for the engine's own model of a layer,
    ``p(positive) = sigmoid((g - theta) / T)``: theta cancels between labels. Only labels
    seen so far (or given as ``classes``) get a probability. ``predict_one`` is the most
    probable label, which is the label with the most goodness (``FFNet.predict_one``).

    River's checks
    --------------
    ``river.checks.check_estimator`` passes on this class with ``scale="minmax"`` (the
    default): all 53 checks River 0.26 yields for it, none skipped
    (``tests/test_river.py``). With ``scale=None`` the inputs must be integers, so River's
    float data sets do not apply; the suite passes there on an integer stream instead.

    Examples
    --------

    >>> from river import datasets
    >>> model = FFClassifier()
    >>> for x, y in datasets.ImageSegments().take(50):   # 18 float features, 7 classes
    ...     model.learn_one(x, y)
    >>> len(model.feature_names_), model.cfg.n_features  # 18 of 64 slots taken
    (18, 64)
    >>> row = model.quantise_one(x)
    >>> len(row), min(row) >= 0, max(row) <= model.cfg.in_max
    (64, True, True)
    >>> model.predict_one(x) in model.classes_
    True
    """

    def __init__(self, config=None, feature_names=None, classes=None, kernels="numpy",
                 scale="auto"):
        self.config = config
        self.feature_names = feature_names
        self.classes = classes
        self.kernels = kernels
        self.scale = scale
        if scale not in SCALES:
            raise ValueError("scale must be 'auto', 'minmax' or None (got %r)" % (scale,))
        cfg = _make_config(config)
        self._engine = _Engine(FFNet(cfg, kernels=_kernel_module(kernels)), kernels)
        self._minmax = scale == "minmax" or (scale == "auto" and feature_names is None)
        self._slots = {}   # feature name -> input slot
        self._names = []   # input slot -> feature name
        self._fixed = feature_names is not None
        self._overflow_warned = False
        self._lo = {}      # feature name -> running min (minmax only)
        self._hi = {}
        if feature_names is not None:
            for name in self._check_features(tuple(feature_names)):
                self._slots[name] = len(self._names)
                self._names.append(name)
        self._labels = []
        self._index = {}
        if classes is not None:
            for label in classes:
                if label in self._index:
                    raise ValueError("classes lists %r twice" % (label,))
                self._add_label(label)

    # ---- River plumbing ---------------------------------------------------------------

    @classmethod
    def _unit_test_params(cls):
        yield {"config": Config(layers=(16, 16), act_shift=(8, 6), theta=(20000, 20000))}

    @property
    def _multiclass(self):
        return True

    def _more_tags(self):
        return set() if self._minmax else {base.tags.POSITIVE_INPUT}

    # ---- the engine -------------------------------------------------------------------

    @property
    def net(self):
        """The wrapped ffrt.net.FFNet (export it with ``ffrt.ffw_ram.encode(model.net)``)."""
        return self._engine.net

    @property
    def cfg(self):
        return self._engine.net.cfg

    @property
    def classes_(self):
        """Labels known so far, in class-index order."""
        return list(self._labels)

    @property
    def feature_names_(self):
        """The features read, in input-slot order (None before any is known)."""
        return list(self._names) if self._names else None

    @property
    def ranges_(self):
        """The running ``{feature: (lo, hi)}`` of ``scale="minmax"`` ({} otherwise)."""
        return {name: (self._lo[name], self._hi[name]) for name in self._names
                if name in self._lo}

    def _check_features(self, names):
        n = self.cfg.n_features
        if len(names) != n:
            raise ValueError("the model takes %d features; feature_names has %d"
                             % (n, len(names)))
        if len(set(names)) != len(names):
            raise ValueError("feature_names lists a feature twice")
        return names

    def _add_label(self, label):
        n = self.cfg.n_classes
        if len(self._labels) >= n:
            raise ValueError("label %r is new, but all %d classes of the model are taken "
                             "by %r" % (label, n, self._labels))
        self._index[label] = len(self._labels)
        self._labels.append(label)

    def _values(self, x):
        """{name: value} of the features of x the model reads or would take, checked
        (x is not modified); ValueError names the first bad value."""
        hi = self.cfg.in_max
        out = {}
        full = self._fixed or len(self._names) >= self.cfg.n_features
        for name, v in x.items():
            if full and name not in self._slots:
                continue  # never read: not checked either
            if self._minmax:
                out[name] = _as_float(name, v)
                continue
            try:
                iv = int(v)
                integral = iv == v and not isinstance(v, (str, bytes))
            except (TypeError, ValueError, OverflowError):  # None, strings, nan, inf
                integral = False
            if not integral:
                raise ValueError("feature %r = %r is not an integer; the model takes integers "
                                 "0..%d (scale='minmax' quantises floats)" % (name, v, hi))
            if not 0 <= iv <= hi:
                raise ValueError("feature %r = %r is outside the model's input range 0..%d "
                                 "(scale='minmax' quantises any range)" % (name, v, hi))
            out[name] = iv
        return out

    def _row(self, values):
        """The engine's input row from checked values: ints in 0..in_max, 0 where missing."""
        row = [0] * self.cfg.n_features
        slots = self._slots
        if not self._minmax:
            for name, v in values.items():
                j = slots.get(name)
                if j is not None:
                    row[j] = v
            return row
        top = self.cfg.in_max
        for name, v in values.items():
            j = slots.get(name)
            if j is None:
                continue
            lo, hi = self._lo.get(name), self._hi.get(name)
            if lo is None or hi <= lo:
                continue
            q = math.floor((v - lo) / (hi - lo) * top + 0.5)
            row[j] = 0 if q < 0 else top if q > top else q
        return row

    def _learn_features(self, x, values):
        """Give new keys free slots and widen the ranges (learn_one only; values are x's
        checked values: every key of x while a slot is free)."""
        if not self._fixed:
            new = [name for name in x if name not in self._slots]
            if new:
                n = self.cfg.n_features
                for name in _sorted_keys(new):
                    if len(self._names) < n:
                        self._slots[name] = len(self._names)
                        self._names.append(name)
                    elif not self._overflow_warned:
                        self._overflow_warned = True
                        warnings.warn("feature %r is ignored: all %d input slots of the model "
                                      "are taken (later new features are ignored too)"
                                      % (name, n), UserWarning, stacklevel=3)
        if self._minmax:
            lo, hi = self._lo, self._hi
            for name, v in values.items():
                if name in self._slots:
                    if name not in lo:
                        lo[name] = hi[name] = v
                    elif v < lo[name]:
                        lo[name] = v
                    elif v > hi[name]:
                        hi[name] = v

    def quantise_one(self, x):
        """The engine's integer input row for x as a prediction would see it (a list of
        ``config.n_features`` ints in ``0..config.in_max``)."""
        return self._row(self._values(x))

    # ---- learning and prediction ------------------------------------------------------

    def learn_one(self, x, y):
        values = self._values(x)  # checks every value before anything changes
        if y not in self._index:
            self._add_label(y)
        self._learn_features(x, values)
        self._engine.learner.learn(self._row(values), self._index[y])

    def _temperature(self):
        cfg = self.cfg
        shifts = cfg.gshift[cfg.goodness_from:]
        return 8.0 * 2.0 ** (sum(shifts) / len(shifts))

    def predict_proba_one(self, x):
        row = self.quantise_one(x)
        if not self._labels:
            return {}
        g = self.net.goodness_per_label(row)
        t = self._temperature()
        top = max(g[i] for i in range(len(self._labels)))
        w = [math.exp((g[i] - top) / t) for i in range(len(self._labels))]
        s = sum(w)
        return {label: w[i] / s for i, label in enumerate(self._labels)}

    def predict_one(self, x):
        row = self.quantise_one(x)
        if not self._labels:
            return None
        g = self.net.goodness_per_label(row)
        best = 0
        for i in range(1, len(self._labels)):  # ties: the lowest class, as FFNet does
            if g[i] > g[best]:
                best = i
        return self._labels[best]
