"""Data sets for training and evaluation: integer features, labels 0..n-1, a fixed split.

Everything ships with the packages (scikit-learn's digits; UCI HAPT windows, see
``ffkit.data.hapt``; MNIST, see ``ffkit.data.mnist``) or comes from the user's own ``.npz`` or
``.csv`` file; nothing is fetched at run time. Splits are deterministic and named in every
output, so a quoted accuracy says which test samples it was measured on.

The engine takes integers 0..in_max (in_max * in_scale <= 255). A user's file may hold
floats, or integers outside 0..255: those features go through a `Quantiser`, an affine map
per feature to 0..255 fitted on the training split only, which the Dataset keeps (and
``ffkit train`` writes into the model file) so test data and a board's inputs get the
same map. Integers already in 0..255 are used as they are.

>>> d = load("digits")
>>> d.X_train.shape, d.X_test.shape, d.in_max, d.n_classes
((1347, 64), (450, 64), 16, 10)
>>> d.split
'stratified 75/25 split, random_state=0'
>>> q = Quantiser.fit(np.array([[0.5, 3.0], [1.5, 3.0]]))
>>> q.lo, q.hi
((0.5, 3.0), (1.5, 3.0))
>>> q.apply(np.array([[0.5, 3.0], [1.0, 7.0], [2.0, 1.0]])).tolist()
[[0, 0], [128, 0], [255, 0]]
"""

import csv
import io
from pathlib import Path
import zipfile

import numpy as np

# (callers that name ffkit.data.datasets.Dataset ... still find them here)
from ffkit.data.dataset import QUANT_MAX, DataError, Dataset, Quantiser  # noqa: F401

SPLIT_TEXT = "stratified 75/25 split, random_state=0"
GIVEN_SPLIT_TEXT = "test split as given in the file"
LABEL_NAMES = ("label", "class", "target", "y")  # CSV header names of the label column,
#                                                  in the order they are looked for
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


def needs_quantiser(X):
    """True unless X holds integers in 0..255 (what the engine takes as they are)."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.integer):
        return True
    return X.size > 0 and (int(X.min()) < 0 or int(X.max()) > QUANT_MAX)


def quantise(data, quantiser=None):
    """``data`` with its features mapped to 0..255 when they need it, as a new Dataset.

    ``quantiser``: the map to apply (a model file's ``[input]``), to every split whatever
    its dtype. None: fit one on the training split when the training features are floats
    or integers outside 0..255 (`needs_quantiser`; the test split has no say), else
    return ``data`` unchanged. False: return ``data`` unchanged (raw features for a
    front end, which quantises its inputs itself).
    """
    if quantiser is False:
        return data
    if data.quantiser is not None:
        raise ValueError("%s is quantised already" % data.name)
    if quantiser is None:
        if not (needs_quantiser(data.X_train) or
                not np.issubdtype(np.asarray(data.X_test).dtype, np.integer)):
            return data
        quantiser = Quantiser.fit(data.X_train)
    elif quantiser.n_features != data.n_features:
        raise DataError("%s has %d features, the model file's [input] quantiser takes %d"
                        % (data.name, data.n_features, quantiser.n_features))
    q = quantiser.apply
    return Dataset(data.name, q(data.X_train), data.y_train, q(data.X_test), data.y_test,
                   data.split,
                   None if data.X_valid is None else q(data.X_valid), data.y_valid,
                   data.classes, quantiser, data.label_column)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.data.astype(np.int64)  # the values are exact integers 0..16 stored as floats
    return split(X, d.target.astype(np.int64), "digits")


def _hapt():
    from ffkit.data import hapt

    return hapt.dataset()


def _mnist():
    from ffkit.data import mnist

    return mnist.dataset()


def _mnist14():
    from ffkit.data import mnist

    return mnist.dataset(pooled=True)


DATASETS = {"digits": _digits, "hapt": _hapt, "mnist": _mnist, "mnist14": _mnist14}


def load(name):
    """A built-in data set by name (see DATASETS)."""
    try:
        make = DATASETS[name]
    except KeyError:
        raise DataError("unknown dataset %r (known: %s)"
                        % (name, ", ".join(sorted(DATASETS)))) from None
    return make()


def load_file(path, quantiser=None, classes=None):
    """The user's data: `load_csv` for a ``.csv`` file, else `load_npz`."""
    if Path(path).suffix.lower() == ".csv":
        return load_csv(path, quantiser=quantiser, classes=classes)
    return load_npz(path, quantiser=quantiser)


def _one_class(y, bad, what="y"):
    if len(np.unique(y)) < 2:
        raise bad("%s has only one class (%s); a classifier needs at least two"
                  % (what, np.unique(y)[0]))


def load_npz(path, quantiser=None):
    """Load ``X`` (n, features) and ``y`` (n,), with optional ``X_test``/``y_test``.

    Labels are integers 0..n_classes-1. Features are integers, used as they are when they
    lie in 0..255; floats (and integers outside 0..255) are quantised (`quantise`: a
    `Quantiser` fitted on the training split, or the one given). Without a test split in
    the file, the stratified 75/25 split (random_state=0) is made. Raises DataError naming
    the file and what is wrong with it.
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
                  "numeric arrays" % e) from None
    for key in ("X", "y"):
        if key not in arrays:
            raise bad("has no array %r (it has: %s)" % (key, ", ".join(sorted(arrays)) or "none"))
    has_test = ("X_test" in arrays, "y_test" in arrays)
    if has_test[0] != has_test[1]:
        raise bad("gives only one of X_test and y_test; give both or neither")

    def check_pair(xk, yk):
        X, y = arrays[xk], arrays[yk]
        if not np.issubdtype(y.dtype, np.integer):
            raise bad("%s must have an integer dtype (got %s); labels are integers "
                      "0..n_classes-1" % (yk, y.dtype))
        if X.dtype == np.bool_:
            X = X.astype(np.int64)
        if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
            raise bad("%s must have an integer or float dtype (got %s)" % (xk, X.dtype))
        for k, a, ndim in ((xk, X, 2), (yk, y, 1)):
            if a.ndim != ndim:
                raise bad("%s must be %d-D (got shape %s)" % (k, ndim, a.shape))
        if len(X) != len(y):
            raise bad("%s has %d rows but %s has %d" % (xk, len(X), yk, len(y)))
        if len(X) == 0 or X.shape[1] == 0:
            raise bad("%s is empty (shape %s)" % (xk, X.shape))
        if y.min() < 0:
            raise bad("%s has negative labels; labels are 0..n_classes-1" % yk)
        if np.issubdtype(X.dtype, np.floating):
            if not np.isfinite(X).all():
                r, c = np.argwhere(~np.isfinite(X))[0]
                raise bad("%s[%d, %d] is %s; features must be finite numbers"
                          % (xk, r, c, X[r, c]))
            return X.astype(np.float64), y.astype(np.int64)
        return X.astype(np.int64), y.astype(np.int64)

    X, y = check_pair("X", "y")
    if has_test[0]:
        X_test, y_test = check_pair("X_test", "y_test")
        if X_test.shape[1] != X.shape[1]:
            raise bad("X has %d features but X_test has %d" % (X.shape[1], X_test.shape[1]))
    _one_class(y, bad)
    if not has_test[0]:
        data = split(X, y, name)
    else:
        data = Dataset(name, X, y, X_test, y_test, GIVEN_SPLIT_TEXT)
    return quantise(data, quantiser)


def _number(cell):
    """A CSV cell as an int or a float, or None when it is neither."""
    s = cell.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return None


def load_csv(path, quantiser=None, classes=None):
    """A comma-separated file: one row per sample, numeric features, one label column.

    - An optional header row: the first row is one when it names a label column or has a
      text cell above a number. The label column is the first of `LABEL_NAMES` (any case)
      found in the header, else the last column; every other column is a feature.
    - Labels: integers >= 0 are used as they are; anything else (text, negative or
      fractional numbers) is mapped to 0..n-1 in sorted order (numeric order when all are
      numbers), kept as ``Dataset.classes``. ``classes`` (a model file's ``[input]
      classes``) gives that mapping instead, so another file's labels map the same way.
    - Features: integers, used as they are in 0..255; any decimal number (and integers
      outside 0..255) makes the features go through a `Quantiser` fitted on the training
      split (or the ``quantiser`` given, from a model file).
    - The stratified 75/25 split (random_state=0), as for an .npz without a test split.

    Raises DataError (one line, naming the file, the line and the column) for an empty
    file, ragged rows, a cell that is not a number, non-finite values, or one class only.
    """
    path = Path(path)

    def bad(msg):
        return DataError("%s: %s" % (path, msg))

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise bad("not a UTF-8 text file (%s)" % e.reason) from None
    rows, lines = [], []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            if row and any(c.strip() for c in row):  # blank lines are skipped
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as e:
        raise bad("not a valid CSV file (line %d: %s)" % (reader.line_num, e)) from None
    if not rows:
        raise bad("is empty")
    first = [c.strip() for c in rows[0]]
    lowered = [c.lower() for c in first]
    header = any(c in LABEL_NAMES for c in lowered) or (len(rows) > 1 and any(
        _number(c) is None and j < len(rows[1]) and _number(rows[1][j]) is not None
        for j, c in enumerate(first)))
    names = first if header else ["column %d" % (j + 1) for j in range(len(first))]
    body, body_lines = (rows[1:], lines[1:]) if header else (rows, lines)
    if not body:
        raise bad("has a header but no data rows")
    width = len(rows[0])
    for row, line in zip(body, body_lines):
        if len(row) != width:
            raise bad("line %d has %d cells, line %d has %d (rows must all have the same "
                      "number of columns)" % (line, len(row), lines[0], width))
    if width < 2:
        raise bad("has one column; it needs feature columns and a label column")
    label_col = width - 1
    if header:
        for wanted in LABEL_NAMES:
            if wanted in lowered:
                label_col = lowered.index(wanted)
                break
    feat_cols = [j for j in range(width) if j != label_col]

    cells = np.array([[row[j] for j in feat_cols] for row in body], dtype=str)
    try:
        X = np.char.strip(cells).astype(np.int64)
    except (ValueError, OverflowError):
        try:
            X = np.char.strip(cells).astype(np.float64)
        except ValueError:
            for r, row in enumerate(body):
                for k, j in enumerate(feat_cols):
                    if _number(row[j]) is None:
                        raise bad("line %d, column %r: %r is not a number"
                                  % (body_lines[r], names[j], row[j])) from None
            raise bad("has cells that are not numbers") from None
        if not np.isfinite(X).all():
            r, k = np.argwhere(~np.isfinite(X))[0]
            raise bad("line %d, column %r: %r is not a finite number"
                      % (body_lines[r], names[feat_cols[k]], body[r][feat_cols[k]]))

    raw = [row[label_col].strip() for row in body]
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        for r, v in enumerate(raw):
            if v not in index:
                raise bad("line %d: label %r is not one of the model's classes (%s)"
                          % (body_lines[r], v, ", ".join(classes)))
        y = np.array([index[v] for v in raw], dtype=np.int64)
        classes = tuple(classes)
    else:
        nums = [_number(v) for v in raw]
        if all(isinstance(v, int) and v >= 0 for v in nums):
            y = np.array(nums, dtype=np.int64)
        else:
            numeric = all(v is not None for v in nums)
            classes = tuple(sorted(set(raw), key=(lambda v: (_number(v), v)) if numeric
                                   else None))
            index = {c: i for i, c in enumerate(classes)}
            y = np.array([index[v] for v in raw], dtype=np.int64)
    _one_class(y, bad, "the label column %r" % names[label_col])
    data = split(X, y, path.stem)
    data.classes = classes
    data.label_column = names[label_col]
    return quantise(data, quantiser)
