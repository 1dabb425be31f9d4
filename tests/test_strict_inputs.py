"""Strict types, the same on every runner (issue 15): a bool, a float or a string is no
label, no input value and no config field, in CPython and in MicroPython alike, refused
with the same message before anything changes.

CPython counts True as the int 1 and MicroPython does not (`isinstance(True, int)` is
False there), so without one rule the runners parted: CPython learnt label 1 where
MicroPython raised after the live learner's counter had moved; `Config(lr=1.5)` was taken;
`predict_one([1, 2, 1.5, 0])` passed the input check and failed half-way through loading,
and a following `learn_last` learnt the half-overwritten input.
"""

import contextlib
import io
import json

import pytest

from ffkit.board import mpy

_SCRIPT = """
import json
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.live import Learner
from ffrt.crc32 import crc32

out = {}
def refused(name, fn):
    try:
        fn()
        out[name] = "accepted"
    except ValueError as e:
        out[name] = str(e)

for name, kw in (("lr_float", {"lr": 1.5}), ("lr_bool", {"lr": True}),
                 ("layers_float", {"layers": (8.0, 4)}), ("theta_str", {"theta": ("9", 9)}),
                 ("seed_float", {"seed": 2.0})):
    base = {"n_features": 4, "n_classes": 3, "in_max": 15, "layers": (8, 4)}
    base.update(kw)
    refused("config_" + name, lambda: Config(**base))

def fresh():
    return FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8, 4)))

def crc(net):
    return crc32(bytes(net.weights[0]) + bytes(net.weights[1]) + bytes(net.head))

net = fresh()
c0 = crc(net)
refused("label_true", lambda: net.learn_one([1, 2, 3, 4], True))
refused("label_false", lambda: net.learn_one([1, 2, 3, 4], False))
refused("label_float", lambda: net.learn_one([1, 2, 3, 4], 1.0))
refused("label_str", lambda: net.learn_one([1, 2, 3, 4], "1"))
refused("x_float", lambda: net.predict_one([1, 2, 1.5, 0]))
refused("x_float_whole", lambda: net.learn_one([1, 2, 2.0, 0], 1))
refused("x_bool", lambda: net.predict_one([1, True, 0, 0]))
refused("x_range", lambda: net.predict_one([1, 2, 16, 0]))
out["unchanged"] = crc(net) == c0 and net.step == 0

# a refused input between a prediction and learn_last: learn_last learns the predicted one
net.predict_one([3, 1, 4, 1])
refused("x_between", lambda: net.predict_one([5, 9, 2.5, 6]))
net.learn_last(2)
twin = fresh()
twin.learn_one([3, 1, 4, 1], 2)
out["learn_last_is_the_predicted_sample"] = crc(net) == crc(twin)

# the learning policy checks before its counters and schedules move
lv = Learner(fresh(), per_class=2, replay=1)
refused("learner_label_true", lambda: lv.learn([1, 2, 3, 4], True))
refused("learner_x_float", lambda: lv.learn([1, 2.5, 3, 4], 1))
out["learner_counters"] = [lv.learnt, lv.net.step, lv.rehearsal is None]
print(json.dumps(out))
"""


def _cpython():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(_SCRIPT, "<strict>", "exec"), {})
    return json.loads(buf.getvalue())


def test_the_rule_in_cpython():
    r = _cpython()
    assert r["config_lr_float"] == "lr 1.5 is not an integer"
    assert r["config_lr_bool"] == "lr True is not an integer"
    assert r["config_layers_float"] == "layers 8.0 is not an integer"
    assert r["config_theta_str"] == "theta '9' is not an integer"
    assert r["config_seed_float"] == "seed 2.0 is not an integer"
    assert r["label_true"] == "label True is not an integer"
    assert r["label_false"] == "label False is not an integer"
    assert r["label_float"] == "label 1.0 is not an integer"
    assert r["label_str"] == "label '1' is not an integer"
    assert r["x_float"] == "x[2] = 1.5 is not an integer"
    assert r["x_float_whole"] == "x[2] = 2.0 is not an integer"
    assert r["x_bool"] == "x[1] = True is not an integer"
    assert r["x_range"] == "x[2] = 16 is outside the input range 0..15"
    assert r["unchanged"] is True
    assert r["x_between"] == "x[2] = 2.5 is not an integer"
    assert r["learn_last_is_the_predicted_sample"] is True
    assert r["learner_label_true"] == "label True is not an integer"
    assert r["learner_x_float"] == "x[1] = 2.5 is not an integer"
    assert r["learner_counters"] == [0, 0, True]


@pytest.mark.device
def test_micropython_refuses_the_same_with_the_same_messages(micropython):
    assert mpy.run_json(_SCRIPT) == _cpython()


def test_numpy_integers_still_pass():
    import numpy as np

    from ffrt.model import Config
    from ffrt.net import FFNet

    cfg = Config(n_features=4, n_classes=3, in_max=15, layers=(np.int64(8), 4),
                 lr=np.int32(3))
    assert cfg.layers == (8, 4) and cfg.lr == 3 and type(cfg.lr) is int
    net = FFNet(cfg)
    net.learn_one(np.array([1, 2, 3, 4], dtype=np.uint8), np.int64(2))
    assert net.step == 1
    with pytest.raises(ValueError, match="label np.True_ is not an integer"):
        net.learn_one([1, 2, 3, 4], np.True_)  # numpy's bool: refused as Python's is


def test_a_float_inside_a_numpy_object_array_is_refused_like_one_in_a_list():
    """An array of one type is judged by its first value; numpy's dtype=object holds any."""
    import numpy as np

    from ffrt.net import FFNet
    from ffrt.model import Config

    net = FFNet(Config(n_features=4, n_classes=2, layers=(8,), in_max=16))
    for x in ([1, 2.5, 3, 4], np.array([1, 2.5, 3, 4], dtype=object)):
        with pytest.raises(ValueError, match=r"x\[1\] = 2\.5 is not an integer"):
            net.check_x(x)
    with pytest.raises(ValueError, match=r"x\[0\] = \S*1\.0\S* is not an integer"):
        net.check_x(np.array([1.0, 2.0, 3.0, 4.0]))
    net.check_x(np.array([1, 2, 3, 4]))   # numpy's integers pass
