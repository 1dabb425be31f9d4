"""ffrt.net.FFNet in CPython: determinism, twin agreement, input checks, doctests."""

import doctest
from array import array

import pytest

from ffkit.twins import kernels_np
from ffrt import fixedpoint, kernels_ref, model, net
from ffrt.model import NEG_HARDEST, NEG_MIX, NEG_RANDOM, Config
from ffrt.net import FFNet

KERNELS = {"ref": kernels_ref, "np": kernels_np}

SMALL = dict(n_features=12, n_classes=4, in_max=15, in_scale=17, layers=(24, 16),
             theta=(3000, 2000), act_shift=(6, 5), gshift=(8, 8))


def small_cfg(**kw):
    return Config(**dict(SMALL, **kw))


def samples(cfg, n, seed=99):
    """n (x, y) pairs: class prototypes plus xorshift noise, x a list of ints."""
    st = array("H", [0, 0])
    fixedpoint.seed_state(st, 0, seed)
    protos = [[fixedpoint.xs_below(st, 0, cfg.in_max + 1) for _ in range(cfg.n_features)]
              for _ in range(cfg.n_classes)]
    out = []
    for _ in range(n):
        y = fixedpoint.xs_below(st, 0, cfg.n_classes)
        x = [min(cfg.in_max, max(0, v + fixedpoint.xs_below(st, 0, 5) - 2)) for v in protos[y]]
        out.append((x, y))
    return out


def state(n):
    """Everything that learning may change, as plain values."""
    return {
        "weights": [bytes(w) for w in n.weights],
        "rngs": [bytes(r) for r in n.rngs],
        "head": bytes(n.head),
        "head_rng": bytes(n.head_rng),
        "rng": bytes(n.rng),
        "step": n.step,
        "ff_learning": n.ff_learning,
    }


def train(cfg, kernels, data):
    n = FFNet(cfg, kernels=kernels)
    preds = []
    for x, y in data:
        n.learn_one(x, y)
        preds.append((n.predict_one(x), n.predict_head(x), list(n.goodness)))
    return n, preds


# ---- determinism and twin agreement ---------------------------------------------------------

@pytest.mark.parametrize("neg_mode", [NEG_HARDEST, NEG_RANDOM, NEG_MIX])
@pytest.mark.parametrize("kname", ["ref", "np"])
def test_same_seed_same_net(kname, neg_mode):
    cfg = small_cfg(neg_mode=neg_mode)
    data = samples(cfg, 40)
    a, pa = train(cfg, KERNELS[kname], data)
    b, pb = train(cfg, KERNELS[kname], data)
    assert state(a) == state(b)
    assert pa == pb
    assert a.step == 40
    fresh = FFNet(cfg, kernels=KERNELS[kname])
    assert state(a)["weights"] != state(fresh)["weights"], "40 steps must change weights"
    assert state(a)["head"] != state(fresh)["head"]


def test_mixed_negatives_are_neither_mode_alone():
    """NEG_MIX: per step one bit of the net's PRNG picks the hardest or a random wrong
    label, so its run differs from both pure modes, and learn_last (the hardest from the
    prediction's goodness) still gives learn_one's bits."""
    runs = {m: train(small_cfg(neg_mode=m), kernels_np, samples(small_cfg(), 40))[0]
            for m in (NEG_HARDEST, NEG_RANDOM, NEG_MIX)}
    w = {m: state(n)["weights"] for m, n in runs.items()}
    assert w[NEG_MIX] != w[NEG_HARDEST] and w[NEG_MIX] != w[NEG_RANDOM]
    a = FFNet(small_cfg(neg_mode=NEG_MIX), kernels=kernels_np)
    b = FFNet(small_cfg(neg_mode=NEG_MIX), kernels=kernels_np)
    for x, y in samples(small_cfg(), 30, seed=9):
        a.learn_one(x, y)
        b.predict_one(x)
        b.learn_last(y)
    assert state(a) == state(b)
    with pytest.raises(ValueError, match="2 \\(mix\\)"):
        small_cfg(neg_mode=3)


def test_different_seed_different_net():
    a = FFNet(small_cfg(seed=1), kernels=kernels_np)
    b = FFNet(small_cfg(seed=2), kernels=kernels_np)
    assert state(a)["weights"] != state(b)["weights"]
    assert state(a)["rngs"] != state(b)["rngs"]


@pytest.mark.parametrize("extra", [
    dict(neg_mode=NEG_HARDEST),
    dict(neg_mode=NEG_RANDOM, goodness_from=1),
    dict(neg_mode=NEG_HARDEST, lr=15, lr_shift=16, head_lr=15, head_shift=8),
    dict(neg_mode=NEG_MIX),
], ids=["hardest", "random_goodness_from1", "big_steps", "mix"])
def test_reference_and_numpy_twins_agree(extra):
    cfg = small_cfg(**extra)
    data = samples(cfg, 60, seed=5)
    a, pa = train(cfg, kernels_ref, data)
    b, pb = train(cfg, kernels_np, data)
    assert state(a) == state(b)
    assert pa == pb


def test_reference_and_numpy_twins_agree_on_digits_shape():
    cfg = Config()  # 74-128-128, the digits model
    data = samples(cfg, 8, seed=11)
    a = FFNet(cfg, kernels=kernels_ref)
    b = FFNet(cfg, kernels=kernels_np)
    for x, y in data:
        a.learn_one(x, y)
        b.learn_one(x, y)
    assert state(a) == state(b)
    assert a.predict_one(data[0][0]) == b.predict_one(data[0][0])
    assert list(a.goodness) == list(b.goodness)
    assert a.predict_head(data[1][0]) == b.predict_head(data[1][0])


def test_reset_restores_the_initial_state():
    cfg = small_cfg()
    n = FFNet(cfg, kernels=kernels_np)
    s0 = state(n)
    for x, y in samples(cfg, 10):
        n.learn_one(x, y)
    assert state(n) != s0
    n.reset()
    assert state(n) == s0


def test_learn_one_leaves_its_input_unchanged():
    cfg = small_cfg()
    n = FFNet(cfg, kernels=kernels_ref)
    x = [3, 0, 15, 7, 1, 2, 3, 4, 5, 6, 7, 8]
    xb = bytearray(x)
    n.learn_one(x, 2)
    n.learn_one(xb, 1)
    n.predict_one(x)
    n.predict_head(xb)
    assert x == [3, 0, 15, 7, 1, 2, 3, 4, 5, 6, 7, 8]
    assert xb == bytearray(x)


def test_inputs_as_list_bytearray_and_array_are_the_same():
    cfg = small_cfg()
    data = samples(cfg, 15)
    nets = []
    for conv in (list, bytearray, lambda v: array("B", v)):
        n = FFNet(cfg, kernels=kernels_np)
        for x, y in data:
            n.learn_one(conv(x), y)
        nets.append(state(n))
    assert nets[0] == nets[1] == nets[2]


# ---- bad input: ValueError, and the net exactly as it was -----------------------------------

def _trained():
    cfg = small_cfg()
    n = FFNet(cfg, kernels=kernels_ref)
    for x, y in samples(cfg, 5):
        n.learn_one(x, y)
    return n


GOOD_X = [1] * SMALL["n_features"]

BAD_LEARN = {
    "x_short": (GOOD_X[:-1], 0, r"x has 11 values, the model takes 12"),
    "x_empty": ([], 0, r"x has 0 values, the model takes 12"),
    "x_long": (GOOD_X + [1], 0, r"x has 13 values, the model takes 12"),
    "label_negative": (GOOD_X, -1, r"label -1 is outside 0\.\.3"),
    "label_n_classes": (GOOD_X, 4, r"label 4 is outside 0\.\.3"),
    "value_negative": (GOOD_X[:5] + [-1] + GOOD_X[6:], 0,
                       r"x\[5\] = -1 is outside the input range 0\.\.15"),
    "value_too_large": (GOOD_X[:-1] + [16], 1,
                        r"x\[11\] = 16 is outside the input range 0\.\.15"),
    "value_last_bad_after_good": ([15] * 11 + [300], 2,
                                  r"x\[11\] = 300 is outside the input range 0\.\.15"),
}


@pytest.mark.parametrize("case", sorted(BAD_LEARN))
def test_learn_one_rejects_bad_input_and_changes_nothing(case):
    x, y, msg = BAD_LEARN[case]
    n = _trained()
    before = state(n)
    with pytest.raises(ValueError, match=msg):
        n.learn_one(x, y)
    assert state(n) == before


BAD_X = {k: v for k, v in BAD_LEARN.items() if not k.startswith("label")}


@pytest.mark.parametrize("method", ["predict_one", "predict_head", "goodness_per_label"])
@pytest.mark.parametrize("case", sorted(BAD_X))
def test_predict_rejects_bad_x_and_changes_nothing(method, case):
    x, _, msg = BAD_X[case]
    n = _trained()
    before = state(n)
    n.predict_one(GOOD_X)
    goodness = list(n.goodness)
    with pytest.raises(ValueError, match=msg):
        getattr(n, method)(x)
    assert state(n) == before
    assert list(n.goodness) == goodness


def test_a_rejected_call_does_not_change_later_results():
    # the failed call may not leave anything behind (e.g. in the input buffer)
    a, b = _trained(), _trained()
    with pytest.raises(ValueError):
        a.learn_one([15] * 11 + [99], 0)
    with pytest.raises(ValueError):
        a.predict_one([15] * 11 + [99])
    for x, y in samples(a.cfg, 5, seed=3):
        a.learn_one(x, y)
        b.learn_one(x, y)
        assert a.predict_one(x) == b.predict_one(x)
        assert a.predict_head(x) == b.predict_head(x)
    assert state(a) == state(b)


def test_non_integer_label_is_rejected_before_anything_changes():
    n = _trained()
    before = state(n)
    with pytest.raises((TypeError, ValueError)):
        n.learn_one(GOOD_X, 1.0)
    assert state(n) == before


# ---- docstring examples ---------------------------------------------------------------------

@pytest.mark.parametrize("module", [net, model, fixedpoint, kernels_ref],
                         ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("kernels", [kernels_ref, kernels_np], ids=["ref", "np"])
def test_learn_last_gives_the_bits_of_learn_one(kernels):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    cfg = Config(layers=(24, 24), lr_shift=23)
    a, b = FFNet(cfg, kernels=kernels), FFNet(cfg, kernels=kernels)
    preds_a, preds_b = [], []
    for i in range(60):
        x = [int(v) for v in X[i]]
        preds_a.append(a.predict_one(x))
        a.learn_one(x, int(y[i]))
        preds_b.append(b.predict_one(x))
        b.learn_last(int(y[i]))
    assert preds_a == preds_b
    assert state(a) == state(b)


def test_learn_last_needs_a_fresh_prediction():
    n = _trained()
    x = [1] * n.cfg.n_features
    n.predict_one(x)
    n.learn_last(0)
    before = state(n)
    with pytest.raises(ValueError, match="needs a prediction"):
        n.learn_last(0)  # the weights changed since that prediction
    n.predict_head(x)
    with pytest.raises(ValueError, match="needs a prediction"):
        n.learn_last(0)
    assert state(n) == before


def test_learn_pair_raises_goodness_of_positives_over_negatives():
    cfg = Config(n_features=6, n_classes=2, in_max=15, in_scale=17, layers=(16, 16),
                 theta=(2000, 2000), act_shift=(5, 5), lr_shift=21)
    n = FFNet(cfg)
    normal = [[15, 12, 9, 6, 3, 0], [14, 12, 10, 6, 2, 1]]
    odd = [[0, 3, 15, 0, 12, 3], [1, 2, 14, 1, 13, 2]]
    gap0 = min(n.goodness_of(x) for x in normal) - max(n.goodness_of(x) for x in odd)
    for i in range(200):
        n.learn_pair(normal[i % 2], odd[i % 2])
    gap = min(n.goodness_of(x) for x in normal) - max(n.goodness_of(x) for x in odd)
    assert gap > 0 and gap > gap0 and n.step == 200


def test_learn_pair_checks_both_inputs_first():
    n = _trained()
    before = state(n)
    good = [1] * n.cfg.n_features
    for bad in ([1] * (n.cfg.n_features - 1), [n.cfg.in_max + 1] * n.cfg.n_features):
        with pytest.raises(ValueError):
            n.learn_pair(good, bad)
        with pytest.raises(ValueError):
            n.learn_pair(bad, good)
    assert state(n) == before


# ---- recurrent models, label repeats, and the host's all-labels composite -------------------

VARIANTS = {
    "plain": {},
    "label_repeat": dict(label_repeat=3),
    "recurrent": dict(recurrent=1),
    "recurrent_three_layers": dict(recurrent=1, layers=(24, 16, 8), act_shift=(6, 5, 5),
                                   theta=(3000, 2000, 1000), gshift=(8, 8, 8),
                                   goodness_from=1, label_repeat=2),
    "mixed_negatives": dict(recurrent=1, neg_mode=NEG_MIX),
}


def _twins():
    from ffkit.twins import kernels_c
    return {"ref": kernels_ref, "np": kernels_np, "c": kernels_c.load()}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_host_twin_learns_and_advances_the_same_bits(name):
    """learn_one, predict_one (the numpy and C twins' all-labels composite), predict_head,
    advance and reset_state give the reference's bits, state included."""
    cfg = small_cfg(**VARIANTS[name])
    nets = {k: FFNet(Config(**cfg.as_dict()), kernels=t) for k, t in _twins().items()}
    data = samples(cfg, 40)
    for i, (x, y) in enumerate(data):
        got = {}
        for k, n in nets.items():
            n.learn_one(x, y)
            if i % 4:
                n.advance()
            if i == 21:
                n.reset_state()
            got[k] = (n.predict_one(data[-1 - i][0]), list(n.goodness),
                      n.predict_head(x), state(n))
            n.advance(data[i // 2][0])
        assert got["np"] == got["ref"] and got["c"] == got["ref"], (name, i)
    for k, n in nets.items():
        assert [bytes(b) for b in n._inp] == [bytes(b) for b in nets["ref"]._inp], k


def test_a_recurrent_net_reads_its_previous_step():
    cfg = small_cfg(recurrent=1)
    n = FFNet(cfg)
    assert n.n_in == (cfg.n_in + 16, 24 + 0) and cfg.layer_inputs() == n.n_in
    x, y = samples(cfg, 1)[0]
    before = list(n.goodness_per_label(x))
    n.advance()           # the state is now x's activities in layer 2
    assert any(n.layer_input(0)[cfg.n_in:])
    assert list(n.goodness_per_label(x)) != before
    n.reset_state()
    assert not any(n.layer_input(0)[cfg.n_in:])
    assert list(n.goodness_per_label(x)) == before
    # a feed-forward net: advance and reset_state change nothing
    f = FFNet(small_cfg())
    g0 = list(f.goodness_per_label(x))
    f.advance()
    f.reset_state()
    assert list(f.goodness_per_label(x)) == g0


def test_label_repeat_overlays_the_label_that_many_times():
    cfg = small_cfg(label_repeat=3)
    assert cfg.n_in == 12 + 3 * 4
    n = FFNet(cfg)
    n.goodness_of([1] * 12, 2)
    lab = bytes(n.layer_input(0)[12:])
    assert lab == bytes([0, 0, 255, 0]) * 3
    with pytest.raises(ValueError, match="label_repeat must be in 1..64"):
        small_cfg(label_repeat=0)
    with pytest.raises(ValueError, match="a recurrent model needs at least two layers"):
        small_cfg(layers=(8,), act_shift=(6,), theta=(3000,), gshift=(8,), recurrent=1)
