"""Guard rails: a learning rate gone wrong pins the weights; the guard rolls back."""

from ffrt.guard import Guard
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.storage import Storage

CFG = dict(n_features=6, n_classes=3, in_max=15, in_scale=17, layers=(12, 12), lr_shift=22,
           theta=(2000, 2000), act_shift=(5, 5))


def _stream(n):
    for i in range(n):
        y = i % 3
        yield [(y * 5 + j * (i % 7)) % 16 for j in range(6)], y


def test_healthy_learning_passes_and_saves_checkpoints(tmp_path):
    net = FFNet(Config(**CFG))
    st = Storage(str(tmp_path))
    g = Guard(net, st, every=16, patience=2, save_every=2)
    for x, y in _stream(400):
        net.learn_one(x, y)
        g.observe()
    assert g.rollbacks == 0 and g.checks == 25 and g.reason == ""
    assert g.saves >= 5 and st.newest(net.cfg) is not None


def test_pinned_weights_roll_back_to_the_last_good_checkpoint(tmp_path):
    net = FFNet(Config(**CFG))
    st = Storage(str(tmp_path))
    g = Guard(net, st, every=16, patience=2, save_every=1)
    for x, y in _stream(200):
        net.learn_one(x, y)
        g.observe()
    assert g.saves > 0 and g.rollbacks == 0
    good = FFNet(Config(**CFG))
    st.load_newest(good)
    saved = [bytes(w) for w in good.weights], good.step
    # a setting gone wrong: every update is huge, the weights run to the rails
    net.cfg.lr, net.cfg.lr_shift, net.cfg.grad_floor = 15, 8, 255
    for x, y in _stream(200):
        net.learn_one(x, y)
        g.observe()
        if g.rollbacks:
            break
    assert g.rollbacks == 1 and "rails" in g.reason
    assert ([bytes(w) for w in net.weights], net.step) == saved
    assert net.cfg.lr_shift == 22  # the checkpoint's own settings came back with it


def test_without_storage_it_only_reports(tmp_path):
    net = FFNet(Config(**CFG))
    g = Guard(net, None, every=8, patience=1)
    net.cfg.lr, net.cfg.lr_shift, net.cfg.grad_floor = 15, 8, 255
    for x, y in _stream(100):
        net.learn_one(x, y)
        g.observe()
    assert g.rollbacks == 0 and g.reason


def test_collapse_reasons_and_patience(tmp_path):
    net = FFNet(Config(**CFG))
    g = Guard(net, None, every=1000, patience=2)
    g.gpos[0], g.gneg[0], g.gpos[1], g.gneg[1] = 5000, 1000, 3000, 1000
    assert g.check() and g.reason == ""
    g.gpos[1] = 50                       # below theta >> 4: the layer went silent
    assert not g.check() and "layer 1: positive goodness collapsed" in g.reason
    g.gpos[1], g.gneg[0], g.gneg[1] = 3000, 6000, 2500
    assert not g.check() and "negatives as good as positives" in g.reason
    assert g.checks == 3 and g.rollbacks == 0  # nothing to roll back to
