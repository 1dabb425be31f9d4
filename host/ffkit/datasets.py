"""Data sets for training and evaluation: integer features, labels 0..n-1, a fixed split.

Everything ships with the packages (scikit-learn's digits; UCI HAPT windows, see
``ffkit.hapt``) or comes from the user's own ``.npz`` file; nothing is fetched at run
time. Splits are deterministic and named in every output, so a quoted accuracy says which
test samples it was measured on.

>>> d = load("digits")
>>> d.X_train.shape, d.X_test.shape, d.in_max, d.n_classes
((1347, 64), (450, 64), 16, 10)
>>> d.split
'stratified 75/25 split, random_state=0'
"""

from dataclasses import dataclass
from pathlib import Path
import zipfile

import numpy as np

from ffkit import FFKitError

SPLIT_TEXT = "stratified 75/25 split, random_state=0"
GIVEN_SPLIT_TEXT = "test split as given in the file"


class DataError(FFKitError, ValueError):
    """Data that the model cannot use; the message names the file or data set and why."""


@dataclass
class Dataset:
    """Integer features (n, n_features) and labels (n,), already split."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    split: str

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def n_classes(self):
        """1 + the largest label in either split."""
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


def as_rows(X):
    """Rows as lists of Python ints (what FFNet takes), converted once."""
    return np.asarray(X).tolist()


def as_labels(y):
    return [int(v) for v in np.asarray(y).tolist()]


def split(X, y, name):
    """The stratified 75/25 split with random_state=0 used everywhere in ffkit."""
    from sklearn.model_selection import train_test_split

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=0)
    except ValueError as e:  # e.g. a class with a single sample cannot be stratified
        raise DataError("%s cannot be split (%s); give X_test and y_test in the file"
                        % (name, e)) from None
    return Dataset(name, X_train, y_train, X_test, y_test, SPLIT_TEXT)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.data.astype(np.int64)  # the values are exact integers 0..16 stored as floats
    return split(X, d.target.astype(np.int64), "digits")


def _hapt():
    from ffkit import hapt

    return hapt.dataset()


DATASETS = {"digits": _digits, "hapt": _hapt}


def load(name):
    """A built-in data set by name (see DATASETS)."""
    try:
        make = DATASETS[name]
    except KeyError:
        raise DataError("unknown dataset %r (known: %s)"
                        % (name, ", ".join(sorted(DATASETS)))) from None
    return make()


def load_npz(path):
    """Load ``X`` (n, features) and ``y`` (n,), integers, with optional ``X_test``/``y_test``.

    Without a test split in the file, the stratified 75/25 split (random_state=0) is made.
    Raises DataError naming the file and what is wrong with it.
    """
    path = Path(path)
    name = path.stem

    def bad(msg):
        return DataError("%s: %s" % (path, msg))

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise bad("holds a single array (.npy); expected an .npz with X and y (np.savez)")
    if magic[:2] != b"PK":  # every .npz is a zip archive
        raise bad("not an .npz file (np.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError) as e:
        raise bad("damaged .npz file (%s)" % e) from None
    except ValueError as e:  # object arrays: refused without allow_pickle
        raise bad("cannot read it without unpickling objects (%s); X and y must be "
                  "integer arrays" % e) from None
    for key in ("X", "y"):
        if key not in arrays:
            raise bad("has no array %r (it has: %s)" % (key, ", ".join(sorted(arrays)) or "none"))
    has_test = ("X_test" in arrays, "y_test" in arrays)
    if has_test[0] != has_test[1]:
        raise bad("gives only one of X_test and y_test; give both or neither")

    def check_pair(xk, yk):
        X, y = arrays[xk], arrays[yk]
        for k, a, ndim in ((xk, X, 2), (yk, y, 1)):
            if not np.issubdtype(a.dtype, np.integer):
                raise bad("%s must have an integer dtype (got %s); features and labels are "
                          "integers, scale and round them first" % (k, a.dtype))
            if a.ndim != ndim:
                raise bad("%s must be %d-D (got shape %s)" % (k, ndim, a.shape))
        if len(X) != len(y):
            raise bad("%s has %d rows but %s has %d" % (xk, len(X), yk, len(y)))
        if len(X) == 0 or X.shape[1] == 0:
            raise bad("%s is empty (shape %s)" % (xk, X.shape))
        if y.min() < 0:
            raise bad("%s has negative labels; labels are 0..n_classes-1" % yk)
        if X.min() < 0:
            raise bad("%s has negative values; features are integers from 0 up" % xk)
        return X.astype(np.int64), y.astype(np.int64)

    X, y = check_pair("X", "y")
    if not has_test[0]:
        return split(X, y, name)
    X_test, y_test = check_pair("X_test", "y_test")
    if X_test.shape[1] != X.shape[1]:
        raise bad("X has %d features but X_test has %d" % (X.shape[1], X_test.shape[1]))
    return Dataset(name, X, y, X_test, y_test, GIVEN_SPLIT_TEXT)
