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
>>> hits >= 60          # right of 100 unseen digits after one pass over 300 (77 measured)
True
>>> proba = model.predict_proba_one(dict(enumerate(X[400])))
>>> len(proba), round(sum(proba.values()), 6)
(10, 1.0)
"""

import math

from river import base

from ffrt.model import Config
from ffrt.net import FFNet

__all__ = ["FFClassifier"]

KERNELS = ("numpy", "reference")


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
        return tuple(sorted(keys))
    except TypeError:  # keys of mixed types: any fixed order will do
        return tuple(sorted(keys, key=repr))


class FFClassifier(base.Classifier):
    """An integer Forward-Forward network that learns one sample at a time.

    Each ``learn_one`` is one step of the board's learning rule: the sample with its true
    label overlaid is positive data, the wrong label with the most goodness is negative
    data, and every layer takes its own local step; the linear head learns too.

    Parameters
    ----------
    config
        An ``ffrt.model.Config``, a dict of its fields, or None for the digits model (the
        ``[model]`` table of ``models/digits.toml``: 64 features 0..16, 10 classes, layers
        128-128, learning at the first step size of its bootstrap schedule, since a River
        model starts from scratch). The config is copied.
    feature_names
        The features the model reads, in input order. If None, they are the keys of the
        first sample seen (``learn_one`` or a prediction), in sorted order, and that sample
        must carry exactly ``config.n_features`` of them.
    classes
        The labels, mapped to the model's classes 0..n-1 in this order. If None, labels are
        mapped in order of first appearance in ``learn_one``, up to ``config.n_classes``.
    kernels
        ``"numpy"`` (fast, bit-identical) or ``"reference"`` (ffrt's pure-Python kernels).

    Inputs
    ------
    Feature values must be integers in ``0..config.in_max`` (integral floats such as 3.0
    are accepted, since River streams often carry floats); anything else raises ValueError
    naming the feature. A feature missing from a sample counts as 0 (River's sparse-dict
    convention); keys that are not model features are ignored.

    Probabilities
    -------------
    ``predict_proba_one`` is the softmax of the per-label goodness (one forward pass per
    label, integer) divided by the layers' sigmoid temperature ``T = 8 * 2**gshift``
    (``gshift`` averaged over the predicting layers when they differ), computed in host
    floats. With equal gshifts this is exact for the engine's own model of a layer,
    ``p(positive) = sigmoid((g - theta) / T)``: theta cancels between labels. Only labels
    seen so far (or given as ``classes``) get a probability. ``predict_one`` is the most
    probable label, which is the label with the most goodness (``FFNet.predict_one``).
    """

    def __init__(self, config=None, feature_names=None, classes=None, kernels="numpy"):
        self.config = config
        self.feature_names = feature_names
        self.classes = classes
        self.kernels = kernels
        cfg = _make_config(config)
        self._engine = _Engine(FFNet(cfg, kernels=_kernel_module(kernels)), kernels)
        self._features = None
        if feature_names is not None:
            self._features = self._check_features(tuple(feature_names))
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
        return {base.tags.POSITIVE_INPUT}

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
        """The features read, in input order (None until the first sample)."""
        return None if self._features is None else list(self._features)

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

    def _row(self, x):
        """x as the engine's input row: a list of ints in 0..in_max (x is not modified)."""
        names = self._features
        if names is None:
            keys = _sorted_keys(x.keys())
            if len(keys) != self.cfg.n_features:
                raise ValueError("the model takes %d features, the first sample has %d; "
                                 "give feature_names to fix them"
                                 % (self.cfg.n_features, len(keys)))
            names = self._features = keys
        hi = self.cfg.in_max
        row = [0] * len(names)
        for j, name in enumerate(names):
            v = x.get(name, 0)
            try:
                iv = int(v)
                integral = iv == v
            except (TypeError, ValueError, OverflowError):  # None, strings, nan, inf
                integral = False
            if not integral:
                raise ValueError("feature %r = %r is not an integer; the model takes integers "
                                 "0..%d" % (name, v, hi))
            if not 0 <= iv <= hi:
                raise ValueError("feature %r = %r is outside the model's input range 0..%d"
                                 % (name, v, hi))
            row[j] = iv
        return row

    # ---- learning and prediction ------------------------------------------------------

    def learn_one(self, x, y):
        row = self._row(x)  # checks every value before anything changes
        if y not in self._index:
            self._add_label(y)
        self._engine.learner.learn(row, self._index[y])

    def _temperature(self):
        cfg = self.cfg
        shifts = cfg.gshift[cfg.goodness_from:]
        return 8.0 * 2.0 ** (sum(shifts) / len(shifts))

    def predict_proba_one(self, x):
        row = self._row(x)
        if not self._labels:
            return {}
        g = self.net.goodness_per_label(row)
        t = self._temperature()
        top = max(g[i] for i in range(len(self._labels)))
        w = [math.exp((g[i] - top) / t) for i in range(len(self._labels))]
        s = sum(w)
        return {label: w[i] / s for i, label in enumerate(self._labels)}

    def predict_one(self, x):
        row = self._row(x)
        if not self._labels:
            return None
        g = self.net.goodness_per_label(row)
        best = 0
        for i in range(1, len(self._labels)):  # ties: the lowest class, as FFNet does
            if g[i] > g[best]:
                best = i
        return self._labels[best]
