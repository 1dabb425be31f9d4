"""Sleep (ffrt.sleep): each window learnt awake (its positive phase), negatives learnt later.

- The engine's halves (FFNet.learn_positive / learn_positive_last / learn_negative) check
  their inputs before anything changes, touch only their own phase's record, and give
  the same bits with every kernel twin; the board's live learner and the host's
  FFLearner (ffkit.learning.protocols) compute the same bits awake and asleep.
- In MicroPython, awake windows and scheduled sleeps allocate nothing, with the same bits
  as CPython.
- A short ``ffkit stream --sleep`` on a virtual board is bit-identical with the host twin
  and scores what ffkit.learning.protocols scores; the guard observes sleep steps, board and twin
  alike.
- Malformed SLEEP bodies and refused ADAPT sleep settings change nothing.
- A logged session with scheduled sleeps and SLEEP requests replays IDENTICAL.
- [adapt] sleep is validated.
"""

import contextlib
import io
import json
import struct

import numpy as np
import pytest

from ffkit import cli, config

from ffkit.board import mpy

from ffkit.data import hapt

from ffkit.learning import protocols

from ffkit.sessions import replay, stream

from ffkit.twins import kernels_np
from ffkit.board.client import DeviceError, connect
from ffkit.board.sim import VirtualBoard
from ffrt import kernels_ref
from ffrt import ffw_ram
from ffrt import proto as P
from ffrt.guard import Guard
from ffrt.live import LiveLearner
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.sleep import setup

# the HAPT-shaped net of tests/test_stream.py: small, with a step that shows in a short run
CFG = Config(n_features=72, n_classes=6, in_max=255, in_scale=1, layers=(64, 48),
             act_shift=(9, 7), lr_shift=24, seed=3)


def _windows(n, seed=0):
    """n feature vectors with labels in blocks of 10 (as HAPT's sessions come)."""
    import random
    r = random.Random(seed)
    return [(bytes(r.randrange(256) for _ in range(72)), (i // 10) % 6) for i in range(n)]


def _state(net):
    return (bytes(ffw_ram.encode(net)), bytes(net.last_pos), bytes(net.last_neg),
            bytes(net.goodness))


@pytest.fixture(scope="module")
def weights():
    return bytes(ffw_ram.encode(FFNet(CFG)))


@pytest.fixture(scope="module")
def rec():
    return hapt.load()


# ---- the engine ------------------------------------------------------------------------------

def test_halves_check_inputs_first_and_keep_to_their_phase():
    net = FFNet(CFG)
    x, y = _windows(1)[0]
    net.learn_one(x, y)
    before = _state(net)
    for bad in ((x, 6), (x, -1), (x, 1.0), (x[:71], 1), (list(x[:71]) + [256], 1)):
        with pytest.raises(ValueError):
            net.learn_positive(*bad)
        with pytest.raises(ValueError):
            net.learn_negative(*bad)
        assert _state(net) == before
    with pytest.raises(ValueError, match="needs a prediction"):
        net.learn_positive_last(y)
    neg = bytes(net.last_neg)
    net.learn_positive(x, y)
    assert bytes(net.last_neg) == neg and bytes(net.last_pos) != before[1]
    pos = bytes(net.last_pos)
    net.learn_negative(x, y)
    assert bytes(net.last_pos) == pos and bytes(net.last_neg) != neg
    assert net.step == 3


def test_positive_last_is_learn_positive_and_the_head_is_optional():
    a, b = FFNet(CFG), FFNet(CFG)
    for x, y in _windows(30):
        a.predict_one(x)
        a.learn_positive_last(y, head=False)
        b.learn_positive(x, y, head=False)
    assert bytes(ffw_ram.encode(a)) == bytes(ffw_ram.encode(b))
    assert not any(a.head)            # no head step: the head is still all zeros
    b.learn_positive(*_windows(1)[0])
    assert any(b.head)


def test_every_kernel_twin_and_the_host_learner_agree():
    """LiveLearner awake + scheduled sleeps == FFLearner (ffkit.learning.protocols), both twins;
    with positives in sleep too."""
    w = bytes(ffw_ram.encode(FFNet(CFG)))
    data = _windows(120)
    for sleep in ((8, 5, False), (16, 12, True)):
        crcs = set()
        for k in (kernels_ref, kernels_np):
            net = ffw_ram.load(w, k)
            live = LiveLearner(net, 4, 2)
            setup(live, sleep)
            for x, y in data:
                live.window(x, y)
            fl = protocols.ff_factory(w, per_class=4, kernels=k, sleep=sleep)()
            for x, y in data:
                fl.learn_one(x, y)
            assert bytes(ffw_ram.encode(net)) == bytes(ffw_ram.encode(fl.net))
            assert live.slept == fl.slept == 120 // sleep[0] * sleep[1]
            assert net.step == 120 + live.slept
            crcs.add(ffw_ram.weights_crc32(net))
        assert len(crcs) == 1
    # a sleep with nothing stored does nothing; asleep on request it learns
    fl = protocols.ff_factory(w, per_class=2, sleep=(0, 0, False))()
    assert fl.sleep(5) == 0 and fl.net.step == 0
    fl.learn_one(*data[0])
    assert fl.sleep(5) == 5 and fl.net.step == 6 and fl.learnt == 1


def test_live_learner_needs_a_buffer_to_sleep():
    with pytest.raises(ValueError, match="rehearsal buffer"):
        setup(LiveLearner(FFNet(CFG), 0), (4, 4, False))
    with pytest.raises(ValueError, match="rehearsal buffer"):
        protocols.ff_factory(bytes(ffw_ram.encode(FFNet(CFG))), sleep=(4, 4, False))()


def test_guard_observes_each_phase_apart():
    net = FFNet(CFG)
    g = Guard(net, None, every=1000)
    x, y = _windows(1)[0]
    net.learn_one(x, y)
    g.observe(1)                       # awake: the positive mean starts, the negative not
    assert list(g.gpos) == list(net.last_pos) and not any(g.gneg) and g._fresh == 2
    assert g._fault() == ""            # no margin judged before the first sleep step
    net.learn_negative(x, y)
    g.observe(2)
    assert list(g.gneg) == list(net.last_neg) and g._fresh == 0
    assert list(g.gpos) == list(net.last_pos)


def test_adapt_sleep_in_model_files():
    def adapt(table):
        doc = {"model": CFG.as_dict(), "adapt": table}
        doc["model"] = {k: list(v) if isinstance(v, tuple) else v for k, v in doc["model"].items()}
        return config.parse(doc, "t.toml").adapt

    assert adapt({"per_class": 4, "sleep": {"every": 32, "steps": 16}}).sleep == (32, 16, False)
    assert adapt({"per_class": 4, "sleep": {"steps": 8, "positives": True}}).sleep == \
        (0, 8, True)
    assert adapt({"per_class": 4}).sleep is None
    for table, words in [({"per_class": 0, "sleep": {"steps": 8}}, "per_class must be > 0"),
                         ({"per_class": 4, "sleep": {"every": 4}}, "needs steps"),
                         ({"per_class": 4, "sleep": {"steps": 2000}}, "steps must be in"),
                         ({"per_class": 4, "sleep": {"steps": 2, "nap": 1}}, "table of"),
                         ({"per_class": 4, "sleep": {"steps": 2, "positives": 1}}, "true or")]:
        with pytest.raises(config.ConfigError, match=words):
            adapt(table)


# ---- MicroPython: nothing allocated, the same bits ----------------------------------------

_MPY = """
import gc, json
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.live import LiveLearner
from ffrt.sleep import setup
from ffrt.crc32 import crc32
xs = []
v = 12345
for i in range(40):
    b = bytearray(72)
    for j in range(72):
        v = (v * 1103515245 + 12345) & 0x7FFFFFFF
        b[j] = (v >> 8) & 0xFF
    xs.append(b)
mem = getattr(gc, "mem_alloc", lambda: 0)   # CPython: no heap to measure
def measure(live):
    # in a function: a new global name would grow the module's dict, not the learner
    gc.collect()
    a0 = mem()
    for i in range(20, 40):                   # awake windows and scheduled sleeps
        live.window(xs[i], (i // 3) %% 6)
    n = live.sleep_cfg[0].sleep(live, 7)      # a sleep on request (the SLEEP request's)
    return mem() - a0, n
out = {}
for name, pc, head, sleep in (("neg", 3, False, (4, 3, False)), ("both", 2, False, (5, 4, True)),
                              ("head", 3, True, (4, 3, False))):
    net = FFNet(Config(**%r))
    live = LiveLearner(net, pc, 2, head)
    setup(live, sleep)
    for i in range(20):                       # the buffer made and filled, sleeps included
        live.window(xs[i], (i // 3) %% 6)
    alloc, n = measure(live)
    out[name] = {"alloc": alloc, "step": net.step, "slept": live.slept, "n": n,
                 "crc": crc32(bytes(net.weights[0]) + bytes(net.weights[1])
                              + bytes(net.head))}
print(json.dumps(out))
"""


@pytest.mark.device
def test_awake_and_sleep_allocate_nothing_in_micropython(micropython):
    script = _MPY % (CFG.as_dict(),)
    got = mpy.run_json(script)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(script, "<sleep>", "exec"), {})
    assert got == json.loads(buf.getvalue())
    for name, r in got.items():
        assert r["alloc"] == 0, (name, r)
        assert r["n"] == 7
    assert got["neg"]["slept"] == 40 // 4 * 3 + 7 and got["neg"]["step"] == 40 + 37


# ---- the virtual board ------------------------------------------------------------------------

@pytest.fixture
def hapt_board(tmp_path, weights):
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "model.ffw").write_bytes(weights)
    with VirtualBoard(folder) as vb, connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
        yield b


def test_cli_stream_sleep_is_bit_identical(tmp_path, weights, rec):
    w = tmp_path / "w.ffw"
    w.write_bytes(weights)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["stream", "--weights", str(w), "--subjects", "16,17", "--limit",
                         "12", "--per-class", "4", "--adapt-lr-shift", "23", "--sleep",
                         "5:7", "--no-plots", "--json"])
    assert code == 0, err.getvalue()
    r = json.loads(out.getvalue())
    assert r["bit_identical"] and r["prediction_mismatches"] == 0
    assert r["adapt"]["sleep"] == {"every": 5, "steps": 7, "positives": False}
    n_adapt = [v["n_adapt"] for v in r["per_subject"].values()]
    assert r["sleep_steps"] == sum(n // 5 * 7 for n in n_adapt) > 0
    assert r["board_step"] == n_adapt[-1] + n_adapt[-1] // 5 * 7
    # the host-only reference (ffkit.learning.protocols) scores the same
    streams = stream.target_streams({s: stream.subject_sessions(rec, s, 12) for s in (16, 17)})
    adapt = config.AdaptSpec(per_class=4, lr_shift=23, sleep=(5, 7, False))
    ref = protocols.personalise(protocols.adapt_factory(weights, adapt), streams, (16, 17))
    for k in ("frozen_accuracy", "adapted_accuracy", "worst_subject_adapted"):
        assert r[k] == ref[k], k
    assert "sleep: each window learnt awake" in "\n".join(stream.format_lines(r))


@pytest.mark.parametrize("adapt", [
    config.AdaptSpec(per_class=3, replay=1, lr_shift=23, predict="head",
                     sleep=(4, 6, True)),                        # head; both phases asleep
    config.AdaptSpec(per_class=2, replay=1, lr_shift=8, guard=(3, 1, 1, 0),
                     sleep=(3, 4, False)),                       # a guard that trips
])
def test_board_sleep_equals_the_host_twin(hapt_board, weights, rec, adapt):
    r = stream.run(hapt_board, weights, adapt, (16,), protocol="prequential", limit=12,
                   rec=rec, parallel=False)
    assert r["bit_identical"], r["first_mismatch"]
    assert r["sleep_steps"] > 0
    if adapt.guard is not None:
        assert r["guard_rollbacks"] > 0


def _body(n):
    return struct.pack("<H", n)


def test_malformed_sleep_changes_nothing(hapt_board, weights, rec):
    b = hapt_board
    sess = stream.subject_sessions(rec, 16, limit=12)[0]
    assert b.sleep(0) == {"steps": 0, "step": 0, "slept": 0, "guard_checks": 0,
                          "guard_rollbacks": 0}      # no learner yet: a query answers
    with pytest.raises(DeviceError) as e:
        b.request(P.SLEEP, _body(3))
    assert e.value.status == P.E_BAD_STATE and "ADAPT with per_class > 0" in e.value.message
    # refused ADAPT sleep settings leave the learner in force
    b.adapt(per_class=3, replay=1, sleep=(2, 3, False))
    for body, words in [(bytes([0, 1, 0]) + b'{"sleep": [2, 3, 0]}', "per_class must be > 0"),
                        (bytes([3, 1, 0]) + b'{"sleep": [2, 3]}', "sleep takes"),
                        (bytes([3, 1, 0]) + b'{"sleep": [2, 1025, 0]}', "sleep takes"),
                        (bytes([3, 1, 0]) + b'{"sleep": [2, 3, 2]}', "sleep takes"),
                        (bytes([3, 1, 0]) + b'{"sleep": [2, 3, true]}', "sleep takes"),
                        (bytes([3, 1, 0]) + b'{"nap": [2, 3, 0]}', "JSON object with")]:
        with pytest.raises(DeviceError) as e:
            b.request(P.ADAPT, body)
        assert e.value.status == P.E_BAD_VALUE and words in e.value.message, (e.value, words)
    assert b.adapt()["per_class"] == 3
    b.stream_session(sess.samples, sess.y.tolist(), learn=True)   # 5 learnt: 2 sleeps
    learnt = int((sess.y >= 0).sum())
    before = b.export()
    q = b.sleep(0)
    assert q["slept"] == learnt // 2 * 3 > 0 and q["step"] == learnt + q["slept"]
    bad = [(b"", P.E_BAD_LENGTH, "takes 2 body bytes, got 0"),
           (b"\x01", P.E_BAD_LENGTH, "got 1"),
           (b"\x01\x00\x00", P.E_BAD_LENGTH, "got 3"),
           (_body(1025), P.E_BAD_VALUE, "0..1024 steps, got 1025"),
           (_body(65535), P.E_BAD_VALUE, "got 65535")]
    for body, status, words in bad:
        with pytest.raises(DeviceError) as e:
            b.request(P.SLEEP, body)
        assert e.value.status == status and words in e.value.message, (e.value, words)
    b.set(learning=False)
    with pytest.raises(DeviceError) as e:
        b.sleep(4)
    assert e.value.status == P.E_BAD_STATE and "learning is off" in e.value.message
    b.set(learning=True)
    assert b.export() == before and b.sleep(0) == q      # nothing changed
    got = b.sleep(5)
    assert got["steps"] == 5 and got["step"] == q["step"] + 5
    assert b.export() != before


def test_a_sleep_session_replays_identically(tmp_path, rec):
    """models/hapt.ffw learning with sleep, logged two ways: ``ffkit stream --log`` (its
    ADAPT carries the sleep setting; scheduled sleeps inside SAMPLES), and a log started
    on a board whose learner already sleeps (the learner restarts, logged as its ADAPT)
    followed by SAMPLES and SLEEP requests. The numpy and micropython runners replay them
    IDENTICAL and end at the board's export."""
    from ffkit.sessions import logs
    from ffrt import ffl
    w = (config.models_dir() / "hapt.ffw").read_bytes()
    start = _write(tmp_path / "w.ffw", w)
    sleep = (6, 10, False)
    adapt = config.AdaptSpec(per_class=16, replay=2, lr_shift=27, sleep=sleep)
    logs_ends = []
    for k in range(2):
        folder = tmp_path / ("board%d" % k)
        folder.mkdir()
        (folder / "model.ffw").write_bytes(w)
        log = tmp_path / ("s%d.ffl" % k)
        with VirtualBoard(folder) as vb, \
                connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
            if k == 0:
                r = stream.run(b, w, adapt, (21,), limit=14, rec=rec, log_path=log,
                               parallel=False)
                assert r["bit_identical"] and r["sleep_steps"] > 0
            else:
                b.adapt(16, 2, sleep=sleep)
                rc = logs.Recorder(b, log, digest_every=4)
                for sess in stream.subject_sessions(rec, 21, limit=14):
                    b.stream_session(sess.samples, sess.y.tolist(), learn=True)
                assert b.sleep(9)["steps"] == 9
                b.sleep(0)
                rc.close()
            logs_ends.append((log, b.export()))
    _, recs = ffl.parse(logs_ends[1][0].read_bytes())
    kinds = [ffl.NAMES[t] for t, *_ in recs]
    assert kinds[0] == "ADAPT" and json.loads(recs[0][2][3:])["sleep"] == [6, 10, 0]
    assert kinds.count("SLEEP") == 2
    for (log, end), runners in zip(logs_ends, (("numpy",), ("numpy", "micropython"))):
        for runner in runners:
            out = tmp_path / ("%s_%s.ffw" % (log.stem, runner))
            res = replay.run(log, start, out=out, runner=runner)
            assert res["identical"], (log.name, runner, res.get("first_divergence"))
            assert out.read_bytes() == end
    assert any(line.startswith("IDENTICAL") for line in replay.format_lines(res))


def _write(path, data):
    path.write_bytes(data)
    return path


def test_cli_sleep_argument():
    from ffkit import UsageError
    from ffkit.commands.stream import _sleep_arg
    assert _sleep_arg("16:8") == (16, 8, False)
    assert _sleep_arg("0:32:both") == (0, 32, True)
    assert _sleep_arg("off") is None
    for bad in ("16", "16:8:pos", "a:b", "16:2000", "-1:3"):
        with pytest.raises(UsageError):
            _sleep_arg(bad)
