"""ffkit.data.datasets: the fixed split, .npz and .csv files (refused with a clear reason when
they cannot be used), and the quantiser that maps float features to 0..255."""

import numpy as np
import pytest

from ffkit.data import datasets
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
    with pytest.raises(ValueError, match="unknown dataset 'cifar10' .*digits, hapt, mnist"):
        datasets.load("cifar10")


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
    (dict(X=np.zeros((4, 3), "U2"), y=np.zeros(4, int)),
     "X must have an integer or float dtype"),
    (dict(X=np.zeros((4, 3), complex), y=np.zeros(4, int)),
     "X must have an integer or float dtype"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4)), "y must have an integer dtype"),
    (dict(X=np.zeros(4, int), y=np.zeros(4, int)), r"X must be 2-D \(got shape \(4,\)\)"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros((4, 1), int)), "y must be 1-D"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(5, int)), "X has 4 rows but y has 5"),
    (dict(X=np.zeros((4, 3), int)), "has no array 'y'"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4, int), X_test=np.zeros((2, 3), int)),
     "only one of X_test and y_test"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4, int), X_test=np.zeros((2, 2), int),
          y_test=np.zeros(2, int)), "X has 3 features but X_test has 2"),
    (dict(X=np.array([[0.5, np.nan]] * 4), y=np.array([0, 1] * 2)),
     r"X\[0, 1\] is nan; features must be finite"),
    (dict(X=np.zeros((4, 3), int), y=-np.ones(4, int)), "y has negative labels"),
    (dict(X=np.zeros((4, 3), int), y=np.zeros(4, int)), "y has only one class"),
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


# ---- float and out-of-range features: the quantiser -----------------------------------------

def test_float_npz_is_quantised_on_the_training_split(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3)) * [1.0, 100.0, 0.0] + [0.0, -50.0, 7.0]  # one constant
    y = np.repeat([0, 1], 20)
    d = datasets.load_npz(_save(tmp_path / "f.npz", X=X, y=y, X_test=X[:5] * 3,
                                y_test=y[:5]))
    q = d.quantiser
    assert q == datasets.Quantiser.fit(X)  # training rows only
    assert np.issubdtype(d.X_train.dtype, np.integer)
    assert d.X_train.min() == 0 and d.X_train.max() == 255 and d.in_max == 255
    assert (d.X_train[:, 2] == 0).all()  # constant feature
    lo, hi = np.array(q.lo), np.array(q.hi)
    want = np.clip(np.rint((X[:5] * 3 - lo) * 255 / np.where(hi > lo, hi - lo, 1)), 0, 255)
    want[:, 2] = 0
    assert np.array_equal(d.X_test, want)  # test values beyond the range are clipped
    # a given quantiser (a model file's) is applied as it is
    other = datasets.Quantiser((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    d2 = datasets.load_npz(tmp_path / "f.npz", quantiser=other)
    assert d2.quantiser is other and np.array_equal(d2.X_test, other.apply(X[:5] * 3))


def test_integers_in_range_are_used_as_given_others_quantised(tmp_path):
    y = np.array([0, 1] * 10)
    X = (np.arange(60).reshape(20, 3) * 4).astype(np.int32)  # 0..236
    d = datasets.load_npz(_save(tmp_path / "i.npz", X=X, y=y, X_test=X[:4], y_test=y[:4]))
    assert d.quantiser is None and np.array_equal(d.X_train, X)
    neg = datasets.load_npz(_save(tmp_path / "n.npz", X=X - 100, y=y, X_test=X[:4] - 100,
                                  y_test=y[:4]))
    assert neg.quantiser is not None and neg.X_train.min() == 0
    big = datasets.load_npz(_save(tmp_path / "b.npz", X=X * 10, y=y, X_test=X[:4] * 10,
                                  y_test=y[:4]))
    assert big.quantiser.hi == (2280.0, 2320.0, 2360.0) and big.X_train.max() == 255
    boolean = datasets.load_npz(_save(tmp_path / "t.npz", X=X > 100, y=y, X_test=X[:4] > 1,
                                      y_test=y[:4]))
    assert boolean.quantiser is None and boolean.in_max == 1


def test_quantiser_rounds_half_to_even_and_checks_its_input():
    q = datasets.Quantiser((0.0,), (2.0,))
    # (x - lo) * 255 / 2: 1/255 -> 0.5 -> 0, 3/255 -> 1.5 -> 2
    assert q.apply(np.array([[1 / 255], [3 / 255], [-1.0], [9.0]])).ravel().tolist() == \
        [0, 2, 0, 255]
    with pytest.raises(ValueError, match="quantiser takes 1 features, the data has 2"):
        q.apply(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="lo > hi"):
        datasets.Quantiser((1.0,), (0.0,))


# ---- CSV files ------------------------------------------------------------------------------

def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _rows(n, fmt):
    return "".join(fmt.format(i=i, c=("cat", "dog")[i % 2], k=i % 2, v=i * 0.5)
                   for i in range(n))


def test_csv_with_header_and_named_label_column(tmp_path):
    p = _csv(tmp_path, "a,Label,b\n" + _rows(20, "{i},{c},{k}\n"))
    d = datasets.load_csv(p)
    assert d.label_column == "Label" and d.classes == ("cat", "dog")
    assert d.n_features == 2 and d.n_classes == 2 and d.quantiser is None
    assert len(d.y_train) == 15 and len(d.y_test) == 5 and d.split == datasets.SPLIT_TEXT
    row = d.X_train[0]
    assert row[1] == row[0] % 2 and d.y_train[0] == row[0] % 2  # cat 0, dog 1 (sorted)
    again = datasets.load_file(p)
    assert np.array_equal(again.X_test, d.X_test)


def test_csv_without_header_takes_the_last_column(tmp_path):
    d = datasets.load_csv(_csv(tmp_path, _rows(20, "{i},{k},{k}\n")))
    assert d.label_column == "column 3" and d.classes is None  # labels 0, 1 as given
    assert d.n_features == 2 and sorted(set(d.y_train.tolist())) == [0, 1]


def test_csv_float_features_and_numeric_class_names(tmp_path):
    d = datasets.load_csv(_csv(tmp_path, "x,w,target\n" + _rows(20, "{v},1,{k}.5\n")))
    assert d.quantiser is not None and d.quantiser.lo[1] == d.quantiser.hi[1] == 1.0
    assert d.classes == ("0.5", "1.5")
    assert d.label_column == "target"
    neg = datasets.load_csv(_csv(tmp_path, "f,y\n" + "".join(
        "%d,%d\n" % (i, (-1, 10, 2)[i % 3]) for i in range(30)), "neg.csv"))
    assert neg.classes == ("-1", "2", "10")  # numeric order


def test_csv_label_names_given_by_the_model_file(tmp_path):
    p = _csv(tmp_path, "a,label\n" + _rows(20, "{i},{c}\n"))
    d = datasets.load_csv(p, classes=("bird", "cat", "dog"))
    assert d.classes == ("bird", "cat", "dog") and d.n_classes == 3
    assert set(d.y_train.tolist()) == {1, 2}
    with pytest.raises(datasets.DataError, match="label 'dog' is not one of the model's "
                                                 "classes"):
        datasets.load_csv(p, classes=("cat", "mouse"))


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("\n\n", "is empty"),
    ("a,b,label\n", "has a header but no data rows"),
    ("a,b,label\n1,2,x\n1,2\n3,4,y\n", "line 3 has 2 cells, line 1 has 3"),
    ("a,b,label\n1,2,x\n1,,y\n3,4,y\n", "line 3, column 'b': '' is not a number"),
    ("a,b,label\n1,2,x\n1,zz,y\n3,4,y\n", "line 3, column 'b': 'zz' is not a number"),
    ("a,b,label\n1,2,x\n1,inf,y\n3,4,y\n", "line 3, column 'b': 'inf' is not a finite"),
    ("a,label\n1,x\n2,x\n3,x\n", "the label column 'label' has only one class"),
    ("label\nx\ny\n", "has one column"),
    (b"\xff\xfe\x00a".decode("latin1"), "not a UTF-8 text file"),
])
def test_csv_refusals_are_one_line(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(text.encode("latin1") if "\xff" in text else text.encode())
    with pytest.raises(datasets.DataError, match=message) as e:
        datasets.load_csv(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)
