"""ffkit.learning.protocols on synthetic streams with learners whose behaviour is known, and on HAPT."""

import numpy as np
import pytest

from ffkit.data import hapt

from ffkit.learning import protocols


class LastLabel:
    """Predicts the last label it was taught (0 before any)."""

    def __init__(self):
        self.y = 0
        self.learnt = []

    def predict_one(self, x):
        return self.y

    def learn_one(self, x, y):
        self.y = y
        self.learnt.append(y)


class Never:
    """Predicts x[0] and never learns."""

    def predict_one(self, x):
        return x[0]

    def learn_one(self, x, y):
        pass


class Memorise:
    """Predicts the label taught for x[0], else x[1]: adaptation visibly helps."""

    def __init__(self):
        self.table = {}

    def predict_one(self, x):
        return self.table.get(x[0], x[1])

    def learn_one(self, x, y):
        self.table[x[0]] = y


def _blocks(labels):
    return [[i, 0] for i in range(len(labels))], list(labels)


def _synthetic(seed=0, n_subjects=3):
    """{subject: (rows, labels, sessions)}: two sessions of label blocks per subject."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(1, n_subjects + 1):
        xs, ys, ss = [], [], []
        for sess in (0, 1):
            for _ in range(4):
                lab = int(rng.integers(6))
                for _ in range(int(rng.integers(1, 6))):
                    key = int(rng.integers(8))
                    xs.append([key, int(rng.integers(6))])
                    ys.append(lab)
                    ss.append(sess)
        out[s] = (xs, ys, ss)
    return out


# ---- prequential_stream -----------------------------------------------------------------------

def test_prequential_last_label_equals_previous_label_score():
    labels = [1, 1, 1, 2, 2, 3, 3, 3, 3, 0]
    xs, ys = _blocks(labels)
    # the learner starts at 0, so window 0 (label 1) is a miss; so is each change
    hits = sum(int(ys[t] == ys[t - 1]) for t in range(1, len(ys)))
    assert protocols.prequential_stream(LastLabel(), zip(xs, ys)) == hits / len(ys)


def test_last_label_learner_prequential_equals_previous_label_accuracy():
    # one session per subject, each starting with a non-zero label (the learner's initial
    # guess is 0, so its first prediction misses, like the previous-label rule's)
    streams = {}
    for s, labels in ((1, [3, 3, 1, 1, 1, 0, 0]), (2, [5, 5, 5, 5, 2]), (3, [1, 4, 4, 4])):
        xs, ys = _blocks(labels)
        streams[s] = (xs, ys, [0] * len(ys))
    prev = protocols.previous_label_accuracy(streams, (1, 2, 3))
    assert prev == pytest.approx((4 + 3 + 2) / 16)
    assert protocols.prequential(LastLabel, streams, (1, 2, 3))["accuracy"] == \
        pytest.approx(prev)


def test_delayed_labels_really_delay():
    labels = [0, 0, 1, 1, 1, 2, 2, 2, 2, 3]
    xs, ys = _blocks(labels)
    for k in range(0, 5):
        # window t is predicted as the label of window t - 1 - k (0 before any label)
        want = sum(int(ys[t] == (ys[t - 1 - k] if t - 1 - k >= 0 else 0))
                   for t in range(len(ys))) / len(ys)
        got = protocols.prequential_stream(LastLabel(), zip(xs, ys), delay=k)
        assert got == pytest.approx(want), k
    # by hand: window t is predicted as y[t - 3]; delay 2 hits t = 0, 1 (initial 0) and 8
    assert protocols.prequential_stream(LastLabel(), zip(xs, ys), delay=2) == 0.3
    # delay 0 hits t = 0, 1, 3, 4, 6, 7, 8
    assert protocols.prequential_stream(LastLabel(), zip(xs, ys)) == 0.7


def test_label_every_learns_only_every_kth_window():
    labels = list(range(6)) * 2
    xs, ys = _blocks(labels)
    learner = LastLabel()
    protocols.prequential_stream(learner, zip(xs, ys), label_every=3)
    assert learner.learnt == [ys[t] for t in range(0, len(ys), 3)]
    learner = LastLabel()
    protocols.prequential_stream(learner, zip(xs, ys), delay=2, label_every=4)
    assert learner.learnt == [ys[0], ys[4], ys[8]]   # t = 8 is learnt after window 10
    with pytest.raises(ValueError):
        protocols.prequential_stream(LastLabel(), zip(xs, ys), label_every=0)


# ---- personalise ------------------------------------------------------------------------------

def test_never_learning_learner_adapted_equals_frozen():
    streams = _synthetic(1)
    r = protocols.personalise(Never, streams, subjects=(1, 2, 3))
    for v in r["subjects"].values():
        assert v["adapted"] == v["frozen"]
    assert r["adapted_accuracy"] == r["frozen_accuracy"]
    assert r["worst_subject_adapted"] == r["worst_subject_frozen"]


def test_personalise_learns_earlier_sessions_only_and_tests_the_last():
    streams = _synthetic(2)
    seen = []

    class Spy(Memorise):
        def learn_one(self, x, y):
            seen.append((tuple(x), y))
            super().learn_one(x, y)

    r = protocols.personalise(Spy, streams, subjects=(1, 2, 3))
    want = [(tuple(x), y) for s in (1, 2, 3)
            for x, y, ss in zip(*streams[s]) if ss == 0]
    assert seen == want                 # earlier session, in time order, nothing else
    for s, v in r["subjects"].items():
        xs, ys, ss = streams[s]
        test = [(x, y) for x, y, q in zip(xs, ys, ss) if q == 1]
        assert v["n_test"] == len(test)
        assert v["frozen"] == sum(int(x[1] == y) for x, y in test) / len(test)
        table = {}
        for x, y, q in zip(xs, ys, ss):
            if q == 0:
                table[x[0]] = y
        assert v["adapted"] == sum(int(table.get(x[0], x[1]) == y)
                                   for x, y in test) / len(test)
    means = [np.mean([v[k] for v in r["subjects"].values()]) for k in ("frozen", "adapted")]
    assert (r["frozen_accuracy"], r["adapted_accuracy"]) == pytest.approx(means)
    worst = min(r["subjects"], key=lambda s: r["subjects"][s]["adapted"])
    assert r["worst_subject_adapted"] == {"subject": worst,
                                          "accuracy": r["subjects"][worst]["adapted"]}


def test_fresh_learner_per_subject_in_prequential():
    made = []

    def fresh():
        made.append(LastLabel())
        return made[-1]

    streams = _synthetic(3)
    protocols.prequential(fresh, streams, subjects=(1, 2, 3))
    assert len(made) == 3
    assert [len(m.learnt) for m in made] == [len(streams[s][1]) for s in (1, 2, 3)]


# ---- on HAPT ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rec():
    return hapt.load()


def test_previous_label_accuracy_on_hapt(rec):
    acc = protocols.previous_label_accuracy(rec, range(16, 31))
    assert 0.92 <= acc <= 0.95


def test_last_label_learner_on_hapt_sessions(rec):
    """Prequential 'last label' differs from the previous-label score only at the first
    window of each session (first of the stream: learner says 0; later: the last label
    of the previous session)."""
    subjects = (16, 17)
    streams = protocols.subject_streams(rec, subjects)
    pre = protocols.prequential(LastLabel, rec, subjects)["accuracy"]
    prev = protocols.previous_label_accuracy(rec, subjects)
    extra = 0
    n = 0
    for xs, ys, ss in streams.values():
        n += len(ys)
        for t in range(len(ys)):
            if t == 0:
                extra += int(ys[0] == 0)
            elif ss[t] != ss[t - 1]:
                extra += int(ys[t] == ys[t - 1])
    assert pre == pytest.approx(prev + extra / n)


def test_ff_factory_gives_fresh_copies():
    from ffrt.model import Config
    from ffrt.net import FFNet
    from ffrt import ffw_ram
    from ffkit.twins import kernels_np

    net = FFNet(Config(n_features=4, n_classes=2, in_max=15, layers=(8,), lr_shift=22),
                kernels=kernels_np)
    data = bytes(ffw_ram.encode(net))
    for per_class in (None, 2):
        fresh = protocols.ff_factory(data, per_class=per_class, replay=1)
        a = fresh()
        for i in range(5):
            a.learn_one([i, 1, 2, 3], i % 2)
        b = fresh()
        assert b.net.step == net.step
        assert a.net.step == net.step + (5 if per_class is None else 10)
        assert (a.rehearsal is None) == (per_class is None)
        assert b.predict_one([1, 2, 3, 4]) in (0, 1)
