"""ffkit.learning.baselines: the float rehearsal buffer, the float FF, and `ffkit baseline --quick`."""

import json

import numpy as np
import pytest

from ffkit import cli

from ffkit.learning import baselines


class Recorder:
    def __init__(self):
        self.learnt = []

    def predict_one(self, x):
        return 0

    def learn_one(self, x, y):
        self.learnt.append((x[0], y))


def test_float_rehearsal_is_class_balanced_and_replays_in_turn():
    inner = Recorder()
    r = baselines.FloatRehearsal(inner, n_classes=3, per_class=2, replay=1, seed=0)
    for i in range(10):
        r.learn_one([i], 0)
    assert [len(b) for b in r.buf] == [2, 0, 0] and r.seen == [10, 0, 0]
    assert len(inner.learnt) == 20                       # each new window + one replay
    assert all(y == 0 for _, y in inner.learnt)
    r.learn_one([100], 1)
    r.learn_one([200], 2)
    replays = inner.learnt[21::2]
    # after classes 1 and 2 arrive, replay visits the classes in turn
    assert [y for _, y in replays] == [1, 2]
    r.learn_one([300], 2)
    assert inner.learnt[-1][1] == 0
    assert r.predict_one([0]) == 0


def test_float_ff_learns_a_separable_toy_task():
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=300)
    X = rng.integers(0, 60, size=(300, 8))
    X[np.arange(300), y] += 180                          # class c: feature c high
    ff = baselines.FloatFF(n_features=8, n_classes=3, layers=(32, 32), seed=0)
    ff.fit(X, y, epochs=30)
    assert (ff.predict(X) == y).mean() > 0.9
    before = [w.copy() for w in ff.W]
    learner = baselines.FloatFFLearner(ff, lr=1e-4)
    learner.learn_one(X[0].tolist(), int(y[0]))
    assert any(not np.array_equal(a, b) for a, b in zip(before, ff.W))
    assert learner.predict_one(X[1].tolist()) in (0, 1, 2)


def test_unknown_baseline_is_a_usage_error(capsys):
    assert cli.main(["baseline", "--models", "nope", "--json"]) == cli.EXIT_USAGE


def test_baseline_quick_json(capsys):
    code = cli.main(["baseline", "--dataset", "hapt", "--quick", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    r = json.loads(out)
    assert set(r) >= {"models", "previous_label_accuracy", "settings"}
    assert set(r["models"]) == set(baselines.QUICK_BASELINES)
    for name, m in r["models"].items():
        for k in ("frozen_accuracy", "adapted_accuracy", "prequential_accuracy"):
            assert 0.0 <= m[k] <= 1.0, (name, k)
        assert name in r["settings"]
    assert r["settings"]["test_subjects"] == [16]
    assert "quick" in r["settings"]
    assert 0.9 <= r["previous_label_accuracy"] <= 0.96
    # the bootstrapped float FF is a real classifier, not chance
    assert r["models"]["float_ff"]["frozen_accuracy"] > 0.5   # chance: 1/6
