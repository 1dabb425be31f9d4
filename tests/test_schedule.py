"""Schedules of lr_shift and theta (ffrt.schedule): model files, host training, the rule."""

import pytest
from ffrt import schedule
from ffrt.model import Config
from ffrt.net import FFNet

from ffkit import config

from ffkit.twins import kernels_np
from ffkit.learning.train import train

MODEL = {"n_features": 4, "n_classes": 2, "in_max": 15, "layers": [8, 6],
         "theta": [2000, 1500], "lr_shift": 22}


def test_model_file_schedules_parse_and_are_checked():
    spec = config.parse({"model": MODEL,
                         "train": {"theta_schedule": [[0, [2500, 1000]], [2, [3000, 1200]]]},
                         "adapt": {"lr_shift_schedule": [[0, 21], [50, 23]],
                                   "theta_schedule": [[10, [1800, 1400]]]}})
    assert spec.theta_schedule == ((0, (2500, 1000)), (2, (3000, 1200)))
    assert spec.adapt.lr_shift_schedule == ((0, 21), (50, 23))
    assert spec.adapt.theta_schedule == ((10, (1800, 1400)),)
    bad = [({"train": {"theta_schedule": [[0, [1, 2, 3]]]}}, "one value per layer"),
           ({"adapt": {"lr_shift_schedule": [[5, 21], [5, 22]]}}, "ascending"),
           ({"adapt": {"lr_shift_schedule": [[0, 30]]}}, "lr_shift in 1..28"),
           ({"adapt": {"theta_schedule": [[0, [1 << 24, 5]]]}}, "theta must be"),
           ({"adapt": {"lr_shift_schedule": [0, 21]}}, "[at, value] pairs"),
           ({"adapt": {"theta_schedule": [[0, 5]]}}, "lists of integers")]
    for extra, words in bad:
        with pytest.raises(config.ConfigError) as e:
            config.parse(dict({"model": MODEL}, **extra), "m.toml")
        assert "m.toml" in str(e.value) and words in str(e.value), (extra, str(e.value))


def test_training_follows_the_theta_schedule():
    X = [[15, 0, 3, 7], [0, 15, 9, 1], [14, 2, 0, 6], [1, 13, 8, 0]] * 3
    y = [0, 1, 0, 1] * 3
    cfg = dict(MODEL, layers=(8, 6), theta=(2000, 1500))

    def run(theta_schedule):
        net = FFNet(Config(**cfg), kernels=kernels_np)
        seen = []
        train(net, X, y, epochs=4, shuffle_seed=0, theta_schedule=theta_schedule,
              progress=False, on_epoch=lambda e, n: seen.append(n.cfg.theta))
        return net, seen

    plain, seen_plain = run(())
    sched, seen = run(((1, (500, 400)), (3, (9000, 8000))))
    assert seen_plain == [(2000, 1500)] * 4
    assert seen == [(2000, 1500), (500, 400), (500, 400), (9000, 8000)]
    assert sched.cfg.theta == (9000, 8000)
    assert bytes(sched.weights[0]) != bytes(plain.weights[0])  # the schedule took effect


def test_changed_at_is_value_at_counted_up():
    s = ((0, 5), (3, 7), (4, 9))
    v, got = 1, []
    for t in range(7):
        c = schedule.changed_at(s, t)
        v = c if c is not None else v
        got.append(v)
    assert got == [schedule.value_at(s, t, 1) for t in range(7)] == [5, 5, 5, 7, 9, 9, 9]
    with pytest.raises(ValueError, match="ascending"):
        schedule.check([[3, 1], [1, 2]], int)


def test_adapt_json_is_read_strictly():
    """ADAPT's JSON (ffrt.schedule.parse) goes through ffrt.strictjson: malformed text is
    refused, naming the byte, where MicroPython's json.loads took it (issue 12)."""
    cfg = Config(**MODEL)
    body = (b'{"lr_shift_schedule": [[0, 21], [50, 23]], "theta_schedule": [[10, [1800, 1400]]],'
            b' "guard": [64, 3, 128, 0], "sleep": [2, 3, 1]}')
    assert schedule.parse(body, cfg) == (((0, 21), (50, 23)), ((10, (1800, 1400)),),
                                         (64, 3, 128, 0), (2, 3, 1))
    assert schedule.parse(b'{"guard": null}', cfg) == ((), (), None, None)
    for bad, words in [(b'{"lr_shift_schedule" [[0, 21]]}', "byte 21: ':' expected"),
                       (b'{"lr_shift_schedule": [[0, 21]]}\x00', "the end expected"),
                       (b'{"lr_shift_schedule": [[0, 21]] "sleep": [2, 3, 1]}', "',' or '}'"),
                       (b'{"sleep": [2, 3, 1], "sleep": [2, 3, 0]}', "a key is repeated"),
                       (b'{"lr_shift_schedule": [[0, 21.0]]}', "no floats"),
                       (b'{"theta_schedule": [[0, [[1800, 1400]]]]}', "deeper than 4"),
                       (b'{"theta_schedule": ' + b'[' * 500, "deeper than 4"),
                       (b'{"lr_shift_schedule": [[0, 25]]', "JSON object with")]:
        with pytest.raises(ValueError) as e:
            schedule.parse(bad, cfg)
        assert "JSON object with" in str(e.value) and words in str(e.value), (bad, str(e.value))
