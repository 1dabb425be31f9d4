"""One learning policy (issue 13, item 4): ffrt.live.Learner, schedules then the learn step
(awake for sleep, rehearsal or the net) then the guard, used by the board's live learner,
the host's personalisation protocols and the River estimator."""

import pytest

from ffrt.guard import Guard
from ffrt.live import Learner, LiveLearner
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.storage import Storage

from ffkit.learning.protocols import FFLearner
from ffkit.learning.river_model import FFClassifier

CFG = dict(n_features=6, n_classes=3, in_max=15, in_scale=17, layers=(12, 12), lr_shift=22,
           theta=(2000, 2000), act_shift=(5, 5))
HAPT = dict(n_features=72, n_classes=3, in_max=255, in_scale=1, layers=(8,))


def _stream(n):
    for i in range(n):
        y = i % 3
        yield [(y * 5 + j * (i % 7)) % 16 for j in range(6)], y


def test_every_runner_learns_through_the_one_policy(monkeypatch):
    calls = []
    learn = Learner.learn

    def counted(self, x, label, predicted=False):
        calls.append(type(self).__name__)
        return learn(self, x, label, predicted)

    monkeypatch.setattr(Learner, "learn", counted)
    FFLearner(FFNet(Config(**CFG)), (2, 1)).learn_one([1, 2, 3, 4, 5, 6], 1)
    live = LiveLearner(FFNet(Config(**HAPT)), per_class=2)
    live.window(bytes(72), 2)
    river = FFClassifier(config=CFG)
    river.learn_one({i: v for i, v in enumerate([1, 2, 3, 4, 5, 6])}, "a")
    assert calls == ["FFLearner", "LiveLearner", "Learner"]


def test_the_host_protocols_learner_has_the_boards_guard(tmp_path):
    """A learning rate gone wrong pins the weights; FFLearner's guard (the board's,
    ffrt.guard) rolls back to the weights it started from, exactly as a Guard watching
    the same steps by hand does (before, the host's learner had no guard: its
    personalisation figures could not show what the board's guard does)."""
    def gone_wrong(net):
        net.cfg.lr, net.cfg.lr_shift, net.cfg.grad_floor = 15, 8, 255

    ref = FFNet(Config(**CFG))
    start = [bytes(w) for w in ref.weights], ref.step
    g = Guard(ref, Storage(str(tmp_path)), 16, 2, 64, 0)
    Storage(str(tmp_path)).save(ref)
    gone_wrong(ref)
    host = FFLearner(FFNet(Config(**CFG)), guard=(16, 2, 64, 0))
    gone_wrong(host.net)
    for x, y in _stream(200):
        ref.learn_one(x, y)
        g.observe()
        host.learn_one(x, y)
    assert g.rollbacks >= 1 and host.guard.rollbacks == g.rollbacks
    assert [bytes(w) for w in host.net.weights] == [bytes(w) for w in ref.weights]
    assert host.net.step == ref.step
    first = FFNet(Config(**CFG))
    host2 = FFLearner(first, guard=(16, 2, 64, 0))
    gone_wrong(first)
    for x, y in _stream(48):
        host2.learn_one(x, y)
        if host2.guard.rollbacks:
            break
    assert host2.guard.rollbacks == 1
    assert ([bytes(w) for w in first.weights], first.step) == start   # the starting weights


@pytest.mark.parametrize("per_class", [0, 2])
def test_the_live_learner_and_the_host_learner_leave_the_same_bits(per_class):
    """The board's path (predict, then learn reusing the goodness) and the host's (learn
    the row) through the same policy: the same weights, step and buffer PRNG."""
    rows = [(bytes((i * 7 + j * 3) % 256 for j in range(72)), i % 3) for i in range(40)]
    a = LiveLearner(FFNet(Config(**HAPT)), per_class=per_class, replay=1)
    a.set_schedules(((0, 22), (20, 24)), ())
    b = FFLearner(FFNet(Config(**HAPT)), (per_class, 1) if per_class else None,
                  lr_schedule=((0, 22), (20, 24)))
    for x, y in rows:
        a.window(x, y)
        b.predict_one(x)
        b.learn_one(x, y)
    assert [bytes(w) for w in a.net.weights] == [bytes(w) for w in b.net.weights]
    assert a.net.step == b.net.step and a.net.cfg.lr_shift == b.net.cfg.lr_shift == 24
    if per_class:
        assert list(a.rehearsal.rng) == list(b.rehearsal.rng)
