"""Anomaly mode: ROC AUC, the board-side one-class learners (ffrt.anomaly for HAPT windows,
ffrt.oneclass for any feature vector: same bits on every runner, nothing allocated per step
in MicroPython), the HAPT task, one-class files and benchmarks through the CLI."""

import json
import zlib

import numpy as np
import pytest

from ffkit import cli

from ffkit.board import mpy

from ffkit.learning import anomaly_eval

from ffkit.twins import kernels_np
from ffkit.twins.kernels import host_kernels
from ffrt import kernels_ref
from ffrt.anomaly import MIX_CHANNEL, MIX_CHANNEL_GAIN, MIX_FEATURE, AnomalyLearner
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.oneclass import NEG_BOX, NEG_WIDE, OneClassLearner, code_table

CFG = dict(n_features=18, n_classes=2, in_max=255, in_scale=1, layers=(12, 8),
           act_shift=(9, 7), lr_shift=20, grad_floor=0, neg_mode=0)


def _stream(n):
    """Windows of 18 features (2 channels x 9) that drift in blocks, as activities do."""
    return [bytearray([(37 * i + 11 * j + (i // 25) * 60) % 256 for j in range(18)])
            for i in range(n)]


def _state(net, a):
    return [bytes(w) for w in net.weights], [bytes(r) for r in net.rngs], net.step, \
        a.state_bytes(), bytes(a.neg)


# ---- ROC AUC --------------------------------------------------------------------------------

def test_roc_auc_hand_computed():
    # positives 3, 5; negatives 1, 4: pairs (3>1, 3<4, 5>1, 5>4) -> 3 of 4
    assert anomaly_eval.roc_auc([3, 1, 5, 4], [1, 0, 1, 0]) == 0.75
    # a tie between a positive and a negative counts one half: (2=2, 2>1) -> 1.5 / 2
    assert anomaly_eval.roc_auc([2, 2, 1], [1, 0, 0]) == 0.75
    assert anomaly_eval.roc_auc([1, 2], [0, 1]) == 1.0
    assert anomaly_eval.roc_auc([1, 2], [1, 0]) == 0.0
    assert anomaly_eval.roc_auc([7, 7, 7], [1, 0, 1]) == 0.5
    with pytest.raises(ValueError):
        anomaly_eval.roc_auc([1, 2], [1, 1])


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        y = rng.integers(0, 2, n)
        y[0], y[1] = 0, 1
        s = rng.integers(0, 12, n)  # many ties
        assert anomaly_eval.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


# ---- the board-side learner -----------------------------------------------------------------

def test_ring_stride_and_counts():
    net = FFNet(Config(**CFG))
    a = AnomalyLearner(net, slots=3, stride=4, mix=MIX_CHANNEL)
    xs = _stream(30)
    for x in xs:
        a.learn_one(x)
    assert (a.seen(), a.stored(), net.step) == (30, 3, 29)
    # windows 0, 4, ..., 28 entered the ring in turn: the last three are 20, 24, 28
    assert sorted(bytes(s) for s in a._slot) == sorted(bytes(xs[i]) for i in (20, 24, 28))
    assert a.ram_bytes() == 3 * 18 + 18 + 16


@pytest.mark.parametrize("mix", [MIX_CHANNEL, MIX_FEATURE, MIX_CHANNEL_GAIN])
def test_negatives_come_from_the_window_and_a_stored_one(mix):
    net = FFNet(Config(**CFG))
    a = AnomalyLearner(net, slots=2, stride=1, mix=mix)
    x0, x1 = bytearray([10] * 18), bytearray([200] * 18)
    a.learn_one(x0)
    a._hybrid(x1)
    neg = bytes(a.neg)
    assert set(neg) == {10, 200}  # both windows give something
    if mix != MIX_FEATURE:  # whole channels of 9 features
        assert neg[0:9] in (bytes([10] * 9), bytes([200] * 9))
        assert neg[9:18] in (bytes([10] * 9), bytes([200] * 9)) and neg[0] != neg[9]


def test_gain_negative_scales_spread_and_range():
    net = FFNet(Config(**CFG))
    a = AnomalyLearner(net, slots=2, stride=1)
    #        mean dev min max lag1 4  8  16 crossings
    ch = [128, 20, 100, 160, 10, 20, 30, 40, 50]
    x = bytearray(ch + ch)
    seen = set()
    for _ in range(40):
        a._gain(x)
        for c in (0, 9):
            got = list(a.neg[c:c + 9])
            if got == ch:
                continue
            assert got[0] == 128 and got[8] == 50  # mean and crossings stay
            if got[1] == 40:  # 4x the motion: spreads double, the range 4x about 130
                assert got[2:8] == [10, 250, 20, 40, 60, 80]
                seen.add("up")
            else:
                assert got[1:8] == [10, 123, 137, 5, 10, 15, 20]
                seen.add("down")
    assert seen == {"up", "down"}


def test_bad_window_changes_nothing():
    net = FFNet(Config(**CFG))
    a = AnomalyLearner(net, slots=3, stride=1)
    for x in _stream(5):
        a.learn_one(x)
    before = _state(net, a)
    with pytest.raises(ValueError):
        a.learn_one([1] * 17)
    with pytest.raises(ValueError):
        a.learn_one([1] * 17 + [300])
    assert _state(net, a) == before


def _window(rng, spread, lo, hi):
    """Two channels laid out as ffrt.features makes them, with spreads drawn in `spread`."""
    out = []
    for _ in range(2):
        d = rng.integers(*spread, 5).tolist()
        out += [128, d[0], 128 - lo, 128 + hi] + d[1:] + [int(rng.integers(40, 80))]
    return bytearray(out)


def test_learns_normal_and_scores_it_higher():
    # at rest (small spreads) is normal; motion (large spreads) was never shown. An
    # untrained net ranks motion as *more* normal (its goodness grows with the input)
    rng = np.random.default_rng(1)
    quiet = [_window(rng, (0, 15), 5, 5) for _ in range(300)]
    loud = [_window(rng, (40, 90), 60, 60) for _ in range(50)]
    is_normal = [1] * 50 + [0] * 50
    net = FFNet(Config(**dict(CFG, layers=(16,), act_shift=(9,), lr_shift=22)))
    a = AnomalyLearner(net, slots=4, stride=3)
    before = anomaly_eval.roc_auc([a.score(x) for x in quiet[250:] + loud], is_normal)
    for x in quiet[:250]:
        a.learn_one(x)
    after = anomaly_eval.roc_auc([a.score(x) for x in quiet[250:] + loud], is_normal)
    assert before < 0.5 < 0.9 < after


def test_same_bits_with_every_kernel_twin():
    runs = []
    for k in (kernels_ref, kernels_np):
        net = FFNet(Config(**CFG), kernels=k)
        a = AnomalyLearner(net, slots=4, stride=3)
        for x in _stream(120):
            a.learn_one(x)
        runs.append((_state(net, a), [a.score(x) for x in _stream(10)]))
    assert runs[0] == runs[1]


_MPY = """
import gc, json
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.anomaly import AnomalyLearner
net = FFNet(Config(**%r))
a = AnomalyLearner(net, slots=4, stride=3)
xs = [bytearray([(37 * i + 11 * j + (i // 25) * 60) %% 256 for j in range(18)])
      for i in range(150)]
def run(b, e):
    for i in range(b, e):
        a.learn_one(xs[i])
def scores(b, e):
    t = 0
    for i in range(b, e):
        t += a.score(xs[i])
    return t
def measure():
    run(0, 100)
    scores(0, 5)
    gc.collect()
    m = gc.mem_alloc()
    run(100, 150)
    t = scores(0, 10)
    return gc.mem_alloc() - m, t
alloc, total = measure()
import binascii
print(json.dumps({"alloc": alloc, "total": total, "step": net.step,
      "crc": binascii.crc32(bytes(net.weights[0]) + bytes(net.weights[1]) +
                            a.state_bytes() + bytes(a.neg))}))
"""


@pytest.mark.device
def test_micropython_same_bits_and_no_allocation():
    cfg = CFG
    got = mpy.run_json(_MPY % (cfg,))
    net = FFNet(Config(**cfg))
    a = AnomalyLearner(net, slots=4, stride=3)
    xs = _stream(150)
    for x in xs:
        a.learn_one(x)
    total = sum(a.score(x) for x in xs[:10])
    want = zlib.crc32(bytes(net.weights[0]) + bytes(net.weights[1]) + a.state_bytes()
                      + bytes(a.neg))
    assert (got["crc"], got["step"], got["total"]) == (want, net.step, total)
    assert got["alloc"] == 0


# ---- the HAPT task, end to end through the CLI (about 10 s) ----------------------------------

def test_hapt_anomaly_task_via_cli(capsys):
    assert cli.main(["eval", "--mode", "anomaly", "--seeds", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["roc_auc_per_subject"]) == {str(s) for s in range(16, 31)}
    assert rep["learner"] == "oneclass" and rep["negatives"] == "wide"
    assert rep["config"].endswith("anomaly.toml") and rep["seeds"] == [1]
    # measured (seed 1): mean 0.9997, worst 0.9949 (subject 18); untrained 0.0006, inverted
    # 0.9994; energy alone (low = normal) 0.9995
    assert rep["roc_auc"] >= 0.99 and rep["roc_auc_worst"] >= 0.97
    assert rep["untrained_roc_auc"] < 0.05  # the energy ranking, inverted
    assert rep["untrained_inverted_roc_auc"] == pytest.approx(1 - rep["untrained_roc_auc"])
    c = rep["controls"]
    assert set(c) == set(anomaly_eval.CONTROLS)
    # energy alone separates rest from walking on this task: say so, do not hide it
    assert c["energy_low"]["roc_auc"] > 0.99
    assert c["energy_low"]["roc_auc"] == pytest.approx(1 - c["energy_high"]["roc_auc"], abs=1e-3)
    assert 0.4 < c["random"]["roc_auc"] < 0.6
    assert c["isolation_forest"]["roc_auc"] > 0.99
    assert "sitting, standing, lying" in rep["task"]


def test_anomaly_mode_refuses_weights(tmp_path):
    assert cli.main(["eval", "--mode", "anomaly", "--weights", str(tmp_path / "w.ffw")]) \
        == cli.EXIT_USAGE


def test_time_shuffle_negatives_need_the_windower_and_agree_across_runners(micropython):
    """MIX_TIME: a gain negative and a time shuffle of the window's raw samples per window;
    the same bits in CPython (reference and numpy kernels) and in MicroPython."""
    from ffrt.anomaly import MIX_TIME
    from ffrt.features import Windower

    cfg = dict(CFG, n_features=72, in_max=255, in_scale=1)
    rs = np.random.RandomState(3)
    samples = (rs.randn(128 + 64 * 9, 6) * 3000).astype(np.int16)
    a = AnomalyLearner(FFNet(Config(**cfg)), mix=MIX_TIME)
    with pytest.raises(ValueError, match="pass the windower"):
        a.learn_one(bytearray(72))
    runs = []
    for k in (kernels_ref, kernels_np):
        net = FFNet(Config(**cfg), kernels=k)
        a = AnomalyLearner(net, slots=4, stride=3, mix=MIX_TIME)
        w = Windower()
        for s in samples.tolist():
            x = w.push(*s)
            if x is not None:
                a.learn_one(x, w)
        runs.append((net.step, zlib.crc32(bytes(net.weights[0]) + a.state_bytes()
                                          + bytes(a.neg))))
    assert runs[0] == runs[1] and runs[0][0] == 10 * 2  # 10 windows, 2 steps each
    got = mpy.run_json(_MPY_TIME % (cfg, samples.astype("<i2").tobytes().hex()))
    assert (got["step"], got["crc"]) == runs[0]


_MPY_TIME = """
import json, binascii
from array import array
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.anomaly import AnomalyLearner, MIX_TIME
from ffrt.features import Windower
net = FFNet(Config(**%r))
a = AnomalyLearner(net, slots=4, stride=3, mix=MIX_TIME)
w = Windower()
S = array('h', bytes.fromhex('%s'))
for i in range(len(S) // 6):
    j = 6 * i
    x = w.push(S[j], S[j + 1], S[j + 2], S[j + 3], S[j + 4], S[j + 5])
    if x is not None:
        a.learn_one(x, w)
print(json.dumps({"step": net.step,
                  "crc": binascii.crc32(bytes(net.weights[0]) + a.state_bytes() +
                                        bytes(a.neg))}))
"""


def test_time_shuffle_negatives_on_the_hapt_task_via_cli(capsys):
    # ffrt.anomaly's MIX_TIME end to end (with models/anomaly.toml's net), 3 subjects
    assert cli.main(["eval", "--mode", "anomaly", "--negatives", "gain-time", "--seeds", "1",
                     "--no-control", "--subjects", "16-18", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["negatives"] == "gain-time" and rep["learner"] == "anomaly"
    assert set(rep["roc_auc_per_subject"]) == {"16", "17", "18"} and "controls" not in rep
    assert 0 <= rep["roc_auc"] <= 1


# ---- ffrt.oneclass: the learner for any feature vector ---------------------------------------

OC_CFG = dict(n_features=2 * 18, n_classes=2, in_max=255, in_scale=1, layers=(12, 8),
              act_shift=(10, 7), lr_shift=20, grad_floor=0, neg_mode=0)


def _rows(n, nf=18, top=16):
    """Rows in 0..top whose pattern drifts in blocks."""
    return [[(5 * i + 3 * j + (i // 20) * 7) % (top + 1) for j in range(nf)] for i in range(n)]


def _oc_state(net, oc):
    return ([bytes(w) for w in net.weights], [bytes(r) for r in net.rngs], net.step,
            oc.state_bytes(), bytes(oc.neg), bytes(oc.raw))


def test_code_table_is_a_thermometer():
    t = code_table(16, 2)
    assert len(t) == 17 * 2
    assert list(t[0:2]) == [0, 0] and list(t[16:18]) == [254, 0]  # v = 8: t = 127
    assert list(t[32:34]) == [255, 254]                          # v = 16: t = 255
    for v in range(17):  # the first code fills before the second starts
        a, b = t[2 * v], t[2 * v + 1]
        assert b == 0 or a == 255
    assert list(code_table(255, 1)) == list(range(256))
    t4 = code_table(255, 4)
    assert list(t4[4 * 255:4 * 256]) == [255, 255, 255, 252]


def test_oneclass_ranges_first_row_and_negatives():
    net = FFNet(Config(**OC_CFG))
    oc = OneClassLearner(net, in_max=16, negatives=NEG_BOX)
    oc.learn_one([3] * 18)
    assert net.step == 0 and oc.seen() == 1  # the first row only sets the ranges
    assert bytes(oc.lo) == bytes(oc.hi) == bytes([3] * 18)
    oc.learn_one([5] * 9 + [1] * 9)
    assert net.step == 1
    assert list(oc.lo) == [3] * 9 + [1] * 9 and list(oc.hi) == [5] * 9 + [3] * 9
    seen = set()
    for _ in range(50):  # box: every feature inside its range, all of it reached
        oc._box()
        assert all(oc.lo[j] <= oc.raw[j] <= oc.hi[j] for j in range(18))
        seen.update(oc.raw)
    assert seen == {1, 2, 3, 4, 5}
    x = [16] * 18
    kept = 0
    for _ in range(50):  # wide: about half of x kept, the rest anywhere in 0..16
        oc._wide(x)
        kept += sum(v == 16 for v in oc.raw)
        assert all(0 <= v <= 16 for v in oc.raw)
    assert 0.4 < kept / (50 * 18) < 0.65
    assert oc.ram_bytes() == 34 + 18 * 3 + 36 * 2 + 8


def test_oneclass_refuses_bad_rows_and_settings_before_anything_changes():
    net = FFNet(Config(**OC_CFG))
    oc = OneClassLearner(net, in_max=16)
    for x in _rows(5):
        oc.learn_one(x)
    before = _oc_state(net, oc)
    for bad in ([1] * 17, [1] * 17 + [17], [1] * 17 + [-1]):
        with pytest.raises(ValueError):
            oc.learn_one(bad)
        with pytest.raises(ValueError):
            oc.score(bad)
    assert _oc_state(net, oc) == before
    with pytest.raises(ValueError, match="n \\* levels"):
        OneClassLearner(FFNet(Config(**dict(OC_CFG, n_features=37))), in_max=16, levels=2)
    with pytest.raises(ValueError, match="levels must be"):
        OneClassLearner(net, in_max=16, levels=5)
    with pytest.raises(ValueError, match="in_max 255"):
        OneClassLearner(FFNet(Config(**dict(OC_CFG, in_max=15, in_scale=17))), in_max=16)
    with pytest.raises(ValueError):
        OneClassLearner(net, in_max=16, negatives=0)


def test_oneclass_learns_a_blob_in_the_middle():
    # normal rows sit in the middle of every feature's range; anomalies lie above *and*
    # below it. A one-layer net's goodness is convex in its input, so without the
    # thermometer code (levels 1) it cannot rate the middle above both sides.
    rng = np.random.default_rng(0)
    normal = rng.integers(100, 156, (400, 6))
    lo, hi = rng.integers(0, 60, (40, 6)), rng.integers(196, 256, (40, 6))
    test = np.concatenate([normal[300:], lo, hi]).tolist()
    is_normal = [1] * 100 + [0] * 80
    aucs = {}
    for levels, act in ((1, 9), (2, 10)):
        net = FFNet(Config(**dict(OC_CFG, n_features=6 * levels, layers=(32,),
                                  act_shift=(act,), lr_shift=22)), kernels=kernels_np)
        oc = OneClassLearner(net, in_max=255, levels=levels)
        for _ in range(3):
            for x in normal[:300].tolist():
                oc.learn_one(x)
        aucs[levels] = anomaly_eval.roc_auc([oc.score(x) for x in test], is_normal)
    assert aucs[2] > 0.95 and aucs[1] < 0.9, aucs


def test_oneclass_same_bits_with_every_kernel_twin():
    runs = []
    for k in (kernels_ref, kernels_np, host_kernels()):
        net = FFNet(Config(**OC_CFG), kernels=k)
        oc = OneClassLearner(net, in_max=16)
        for x in _rows(80):
            oc.learn_one(x)
        runs.append((_oc_state(net, oc), [oc.score(x) for x in _rows(10)]))
    assert runs[0] == runs[1] == runs[2]


_MPY_OC = """
import gc, json, binascii
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.oneclass import OneClassLearner
net = FFNet(Config(**%r))
oc = OneClassLearner(net, in_max=16)
xs = [bytearray([(5 * i + 3 * j + (i // 20) * 7) %% 17 for j in range(18)]) for i in range(150)]
def run(b, e):
    for i in range(b, e):
        oc.learn_one(xs[i])
def scores(b, e):
    t = 0
    for i in range(b, e):
        t += oc.score(xs[i])
    return t
def measure():
    run(0, 100)
    scores(0, 5)
    gc.collect()
    m = gc.mem_alloc()
    run(100, 150)
    t = scores(0, 10)
    return gc.mem_alloc() - m, t
alloc, total = measure()
print(json.dumps({"alloc": alloc, "total": total, "step": net.step,
      "crc": binascii.crc32(bytes(net.weights[0]) + bytes(net.weights[1]) +
                            oc.state_bytes() + bytes(oc.neg) + bytes(oc.raw))}))
"""


@pytest.mark.device
def test_oneclass_micropython_same_bits_and_no_allocation(micropython):
    got = mpy.run_json(_MPY_OC % (OC_CFG,))
    net = FFNet(Config(**OC_CFG), kernels=kernels_np)
    oc = OneClassLearner(net, in_max=16)
    xs = _rows(150)
    for x in xs:
        oc.learn_one(x)
    total = sum(oc.score(x) for x in xs[:10])
    want = zlib.crc32(bytes(net.weights[0]) + bytes(net.weights[1]) + oc.state_bytes()
                      + bytes(oc.neg) + bytes(oc.raw))
    assert (got["crc"], got["step"], got["total"]) == (want, net.step, total)
    assert got["step"] == 2 * 149
    assert got["alloc"] == 0


# ---- one-class files and benchmarks through the CLI ------------------------------------------

def _digit_file(path, **over):
    """A small one-class file from scikit-learn digits: normal = 0, anomalies = 1 and 7."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.data.astype(np.int64), d.target
    zeros, ones, sevens = (np.flatnonzero(y == c) for c in (0, 1, 7))
    arrays = dict(X=X[zeros[:60]], X_test=X[np.r_[zeros[60:90], ones[:15], sevens[:15]]],
                  y_test=np.r_[np.zeros(30, int), np.ones(30, int)])
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_oneclass_file_via_cli(tmp_path, capsys):
    f = _digit_file(tmp_path / "zeros.npz")
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--seeds", "1-2",
                     "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["learner"] == "oneclass" and rep["config"].endswith("oneclass.toml")
    assert rep["seeds"] == [1, 2] and set(rep["roc_auc_per_seed"]) == {"1", "2"}
    assert rep["n_train"] == {"normal = y_test 0": 60} and rep["test_values_clipped"] == 0
    assert rep["rows_learnt"]["normal = y_test 0"] == 1020  # 17 passes of 60 (min_rows 1000)
    # measured: 1.0 (seeds 1 and 2); IsolationForest 1.0
    assert rep["roc_auc"] >= 0.95 and rep["roc_auc_worst"] <= rep["roc_auc"]
    assert set(rep["controls"]) == set(anomaly_eval.CONTROLS)
    assert rep["shape"] == "130-64"
    # the same file's float twin is quantised from its training rows
    g = _digit_file(tmp_path / "zeros_f.npz")
    with np.load(g) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["X"] = arrays["X"] / 16.0
    arrays["X_test"] = arrays["X_test"] / 16.0
    np.savez(g, **arrays)
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(g), "--seeds", "1",
                     "--no-control"]) == 0
    out = capsys.readouterr().out
    assert "quantised per feature" in out and "ROC AUC" in out and "untrained net" in out


def test_oneclass_file_with_class_labels_and_normal(tmp_path, capsys):
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.data.astype(np.int64)[:400], d.target[:400]
    f = tmp_path / "digits.npz"
    np.savez(f, X=X[:300], y=y[:300], X_test=X[300:], y_test=y[300:])
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--normal", "3",
                     "--seeds", "1", "--no-control", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    name = "normal = label(s) 3"
    assert rep["n_train"] == {name: int((y[:300] == 3).sum())}
    assert rep["n_test_anomalies"] == {name: int((y[300:] != 3).sum())}
    assert rep["roc_auc"] > 0.8
    # a .csv with class names: --normal takes their index (sorted names), the report names it
    rows = ["a,b,c,kind"] + ["%d,%d,%d,%s" % (i % 7, (3 * i) % 5, i % 3, "ok" if i % 3 else "bad")
                             for i in range(80)]
    f = tmp_path / "t.csv"
    f.write_text("\n".join(rows) + "\n")
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--normal", "1",
                     "--seeds", "1", "--no-control", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert list(rep["n_train"]) == ["normal = label(s) 1 (ok)"]


@pytest.mark.parametrize("over, normal, match", [
    (dict(X_test=None), None, "has no array 'X_test'"),
    (dict(y_test=np.arange(60) % 3), None, "y_test must be 0 \\(normal\\) or 1"),
    (dict(y_test=np.zeros(60, int)), None, "only normal rows"),
    (dict(y_test=np.ones(60, int)), None, "only anomalous rows"),
    (dict(y=np.r_[np.zeros(59, int), 1]), None, "training rows must all be normal"),
    (dict(X_test=np.zeros((60, 63))), None, "X has 64 features but X_test has 63"),
    (dict(X=np.full((60, 64), np.nan)), None, "features must be finite"),
    (dict(y_test=np.zeros(59, int)), None, "X_test has 60 rows but y_test has 59"),
])
def test_bad_oneclass_files_are_refused_by_name(tmp_path, capsys, over, normal, match):
    f = _digit_file(tmp_path / "bad.npz", **over)
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--seeds", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ffkit: %s: " % f) and "Traceback" not in err
    import re
    assert re.search(match, err), err


def test_bad_oneclass_requests(tmp_path, capsys):
    f = _digit_file(tmp_path / "zeros.npz")
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    # usage errors (exit 2)
    for argv in (["--data", str(f), "--negatives", "gain-channel"],
                 ["--dataset", "mnist"], ["--dataset", "wine", "--normal", "0"],
                 ["--normal", "0-5"], ["--dataset", "wine", "--subjects", "16"],
                 ["--subjects", "10"], ["--data", str(f), "--seeds", "x"],
                 ["--weights", str(f)]):
        assert cli.main(["eval", "--mode", "anomaly"] + argv) == cli.EXIT_USAGE, argv
    capsys.readouterr()
    # refused files (exit 1, named)
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(csv)]) == 1
    assert "give --normal LABELS" in capsys.readouterr().err
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--normal", "0"]) == 1
    assert "has no array 'y'" in capsys.readouterr().err  # --normal: labels are classes
    lab = tmp_path / "lab.npz"
    np.savez(lab, X=np.arange(40).reshape(20, 2), y=np.arange(20) % 2)
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(lab), "--normal", "9"]) == 1
    assert "no training row has a label in --normal 9" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlayers = [8]\n[learner]\nnegatives = \"box-wide\"\nlevel = 2\n")
    assert cli.main(["eval", "--mode", "anomaly", "--data", str(f), "--config", str(bad)]) == 1
    assert "[learner] unknown key(s): level" in capsys.readouterr().err


def test_wine_benchmark_via_cli(capsys):
    assert cli.main(["eval", "--mode", "anomaly", "--dataset", "wine", "--seeds", "1",
                     "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["roc_auc_per_task"]) == {"cultivar 0", "cultivar 1", "cultivar 2"}
    assert rep["n_train"] == {"cultivar 0": 44, "cultivar 1": 53, "cultivar 2": 36}
    assert 0.5 < rep["roc_auc"] <= 1 and "quantised" in rep["features"]
