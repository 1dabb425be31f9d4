"""The data types of ffkit's data sets: `Dataset` (integer features and labels, already
split), `Quantiser` (the affine map of a user's features to 0..255) and `DataError`.

Their own module, below every loader (ffkit.data.datasets, ffkit.data.hapt, ffkit.data.mnist,
ffkit.data.pkgdata), so the loaders import the types and ffkit.data.datasets imports the loaders,
with no cycle between them.
"""

from dataclasses import dataclass

import numpy as np

from ffkit import FFKitError

QUANT_MAX = 255  # a quantised feature is 0..255 (in_max 255, in_scale 1)


class DataError(FFKitError, ValueError):
    """Data that the model cannot use; the message names the file or data set and why."""


@dataclass(frozen=True)
class Quantiser:
    """Per-feature affine map of raw values to integers 0..255, fitted on training rows.

    ``q = clip(round((x - lo) * 255 / (hi - lo)), 0, 255)`` with round half to even
    (numpy's ``rint``), in float64; a constant feature (``hi == lo``) maps to 0. ``lo`` and
    ``hi`` are tuples of Python floats (exact in a TOML file, see ffkit.config).
    """

    lo: tuple
    hi: tuple

    def __post_init__(self):
        lo, hi = tuple(float(v) for v in self.lo), tuple(float(v) for v in self.hi)
        if len(lo) != len(hi) or not lo:
            raise ValueError("lo and hi need one value per feature (got %d and %d)"
                             % (len(lo), len(hi)))
        a, b = np.array(lo), np.array(hi)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("lo and hi must be finite numbers")
        bad = np.flatnonzero(a > b)
        if len(bad):
            raise ValueError("lo > hi for feature %d (%r > %r)"
                             % (bad[0], lo[bad[0]], hi[bad[0]]))
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @classmethod
    def fit(cls, X):
        """lo and hi: each feature's minimum and maximum over the rows of X."""
        X = np.asarray(X, dtype=np.float64)
        return cls(tuple(X.min(axis=0).tolist()), tuple(X.max(axis=0).tolist()))

    @property
    def n_features(self):
        return len(self.lo)

    def apply(self, X):
        """X (n, n_features), any numeric dtype, as int64 0..255."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError("the quantiser takes %d features, the data has %s"
                            % (self.n_features, X.shape[1] if X.ndim == 2 else X.shape))
        lo, hi = np.array(self.lo), np.array(self.hi)
        span = hi - lo
        live = span > 0
        q = np.rint((X - lo) * QUANT_MAX / np.where(live, span, 1.0))
        q = np.clip(q, 0, QUANT_MAX)
        q[:, ~live] = 0
        return q.astype(np.int64)


@dataclass
class Dataset:
    """Integer features (n, n_features) and labels (n,), already split.

    Optional: ``X_valid``/``y_valid``, a validation split given with the data (where
    settings are chosen, never on the test split); ``classes``, the original label of
    each class when the file's labels were mapped to 0..n-1 (``classes[i]`` is label i);
    ``quantiser``, the `Quantiser` that made the integer features (None: used as given);
    ``label_column``, the CSV column the labels came from; ``sequences``, for data that
    is a stream in time (HAPT): a callable returning ``{"train": (X, y, groups), "test":
    (X, y, groups)}``, every time step of each split in time order within each group (a
    session), y -1 where a step has no label: what a recurrent model trains and is
    scored on (ffkit.learning.train.train_sequences, ffkit.learning.evaluate).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    split: str
    X_valid: np.ndarray = None
    y_valid: np.ndarray = None
    classes: tuple = None
    quantiser: Quantiser = None
    label_column: str = None
    sequences: object = None

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def n_classes(self):
        """The number of class names when the labels were mapped, else 1 + the largest
        label in either split."""
        if self.classes is not None:
            return len(self.classes)
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def in_max(self):
        """The largest feature value in either split."""
        return int(max(self.X_train.max(), self.X_test.max()))

    def check_model(self, cfg):
        """Raise DataError unless a model with Config ``cfg`` can take this data."""
        if self.n_features != cfg.n_features:
            raise DataError("%s has %d features, the model takes %d"
                            % (self.name, self.n_features, cfg.n_features))
        if self.n_classes > cfg.n_classes:
            raise DataError("%s has labels up to %d, the model has %d classes (0..%d)"
                            % (self.name, self.n_classes - 1, cfg.n_classes, cfg.n_classes - 1))
        lo = int(min(self.X_train.min(), self.X_test.min()))
        if lo < 0 or self.in_max > cfg.in_max:
            raise DataError("%s has feature values in %d..%d, the model takes 0..%d"
                            % (self.name, lo, self.in_max, cfg.in_max))
