"""ffkit.datasets: the fixed stratified split, and .npz files refused with a clear reason."""

import numpy as np
import pytest

from ffkit import datasets
from ffrt.model import Config


def test_digits_split_is_stratified_and_deterministic():
    a = datasets.load("digits")
    b = datasets.load("digits")
    assert a.name == "digits" and a.split == "stratified 75/25 split, random_state=0"
    assert a.X_train.shape == (1347, 64) and a.X_test.shape == (450, 64)
    assert np.array_equal(a.X_test, b.X_test) and np.array_equal(a.y_train, b.y_train)
    assert np.issubdtype(a.X_train.dtype, np.integer)
    assert a.in_max == 16 and a.n_classes == 10 and a.n_features == 64
    # stratified: every class has (almost exactly) a quarter of its samples in the test split
    for c in range(10):
        n_test = int((a.y_test == c).sum())
        n_all = n_test + int((a.y_train == c).sum())
        assert abs(n_test - n_all / 4) <= 1
    assert isinstance(datasets.as_rows(a.X_test)[0][0], int)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'mnist' .*digits"):
        datasets.load("mnist")


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_without_test_split_gets_the_same_split(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 16, size=(80, 5)).astype(np.uint8)
    y = np.repeat(np.arange(4), 20)
    d = datasets.load_npz(_save(tmp_path / "toy.npz", X=X, y=y))
    assert d.name == "toy" and d.split == datasets.SPLIT_TEXT
    assert d.X_train.shape == (60, 5) and d.X_test.shape == (20, 5)
    assert sorted(np.bincount(d.y_test)) == [5, 5, 5, 5]
    d2 = datasets.load_npz(tmp_path / "toy.npz")
    assert np.array_equal(d.X_test, d2.X_test)


def test_npz_with_test_split_is_used_as_given(tmp_path):
    X = np.arange(40).reshape(8, 5) % 7
    y = np.array([0, 1] * 4)
    d = datasets.load_npz(_save(tmp_path / "given.npz", X=X, y=y, X_test=X[:2], y_test=y[:2]))
    assert d.split == datasets.GIVEN_SPLIT_TEXT
    assert np.array_equal(d.X_train, X) and np.array_equal(d.X_test, X[:2])


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.zeros((4, 3)), y=np.zeros(4, int)), "X must have an integer dtype"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4)), "y must have an integer dtype"),
    (dict(X=np.zeros(4, int), y=np.zeros(4, int)), r"X must be 2-D \(got shape \(4,\)\)"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros((4, 1), int)), "y must be 1-D"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(5, int)), "X has 4 rows but y has 5"),
    (dict(X=np.zeros((4, 3), int)), "has no array 'y'"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4, int), X_test=np.zeros((2, 3), int)),
     "only one of X_test and y_test"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4, int), X_test=np.zeros((2, 2), int),
          y_test=np.zeros(2, int)), "X has 3 features but X_test has 2"),
    (dict(X=-np.ones((4, 3), int), y=np.zeros(4, int)), "X has negative values"),
    (dict(X=np.zeros((4, 3), int), y=-np.ones(4, int)), "y has negative labels"),
    (dict(X=np.zeros((4, 3), int), y=np.array([0, 0, 0, 1])), "cannot be split"),
])
def test_npz_validation_names_the_problem(tmp_path, arrays, message):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message) as e:
        datasets.load_npz(path)
    assert str(path) in str(e.value) or "bad" in str(e.value)


def test_not_an_npz_file(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello, not a zip")
    with pytest.raises(ValueError, match="not an .npz file"):
        datasets.load_npz(p)
    np.save(tmp_path / "a.npy", np.zeros(3, int))
    with pytest.raises(ValueError, match=r"single array \(.npy\)"):
        datasets.load_npz(tmp_path / "a.npy")


def test_check_model_refuses_data_the_model_cannot_take():
    d = datasets.load("digits")
    d.check_model(Config())  # the digits shape
    with pytest.raises(ValueError, match="digits has 64 features, the model takes 32"):
        d.check_model(Config(n_features=32))
    with pytest.raises(ValueError, match="labels up to 9, the model has 5 classes"):
        d.check_model(Config(n_classes=5))
    with pytest.raises(ValueError, match=r"values in 0\.\.16, the model takes 0\.\.15"):
        d.check_model(Config(in_max=15, in_scale=17))
