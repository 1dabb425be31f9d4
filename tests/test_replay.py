"""Session logs recorded on the virtual board and replayed on the host (issue 5).

A HAPT session (`ffkit stream --log`) and a digits session (LEARN, STREAM, PREDICT, SET,
CHECKPOINT, RESET through a Recorder) replay identically in every runner, and the replayed
final weights equal the board's export byte for byte. A deliberately changed rounding rule
makes the replay stop at the first record it affects; corrupt, truncated, reordered,
empty and foreign logs are refused with the byte offset or record named; the ring keeps
the newest records and a listening host keeps them all; a board's own sensor stream is
logged and replays too. A session of more than 10,000 HAPT windows replays identically
(about 1.5 minutes).
"""

import random
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ffkit import FFKitError, config

from ffkit.data import hapt

from ffkit.sessions import logs, replay, stream
from ffkit.board.client import connect
from ffkit.board.sim import VirtualBoard
from ffrt import ffl, kernels_ref
from ffrt.fixedpoint import xs_next

MODELS = config.models_dir()
HAPT_W = MODELS / "hapt.ffw"
DIGITS_W = MODELS / "digits.ffw"


@pytest.fixture(scope="module")
def rec():
    return hapt.load()


def _board(tmp, weights):
    folder = Path(tmp) / "board"
    folder.mkdir(parents=True)
    (folder / "model.ffw").write_bytes(weights)
    return VirtualBoard(folder)


def record_hapt(tmp, rec, subjects, limit):
    """(log path, the board's export after the session, stream result)."""
    w = HAPT_W.read_bytes()
    adapt = config.load(MODELS / "hapt.toml").adapt
    log = Path(tmp) / "hapt.ffl"
    with _board(tmp, w) as vb, connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
        r = stream.run(b, w, adapt, subjects, limit=limit, rec=rec, log_path=log,
                       parallel=False)
        exported = b.export()
    return log, exported, r


@pytest.fixture(scope="module")
def hapt_log(rec, tmp_path_factory):
    return record_hapt(tmp_path_factory.mktemp("hapt"), rec, (16, 17), 12)


@pytest.fixture(scope="module")
def digits_log(tmp_path_factory):
    from ffkit.data import datasets
    from ffkit.data.datasets import as_labels, as_rows

    tmp = tmp_path_factory.mktemp("digits")
    w = DIGITS_W.read_bytes()
    d = datasets.load("digits")
    X, y = as_rows(d.X_test), as_labels(d.y_test)
    log = tmp / "digits.ffl"
    with _board(tmp, w) as vb, connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
        b.import_weights(w)
        r = logs.Recorder(b, log, digest_every=4)
        for i in range(12):
            b.learn(X[i], y[i])
        b.stream(list(zip(X[12:30], y[12:30])))
        b.stream([(x, None) for x in X[30:40]])
        b.predict(X[40])
        b.set(lr_shift=25)
        b.checkpoint()
        b.learn(X[41], y[41])
        b.reset("reload")
        b.learn(X[42], y[42])
        info = r.close()
        exported = b.export()
    return log, exported, info


# ---- identical replays ------------------------------------------------------------------------

def test_hapt_session_replays_identically_and_ends_at_the_export(hapt_log, tmp_path):
    log, exported, r = hapt_log
    assert r["bit_identical"] and r["log"]["records"] > 100
    out = tmp_path / "end.ffw"
    res = replay.run(log, HAPT_W, out=out)
    assert res["identical"] and "first_divergence" not in res
    assert res["records"] == r["log"]["records"]
    assert out.read_bytes() == exported      # the replayed weights are the board's
    assert res["step"] == r["board_step"]
    # every record kind is there: raw samples with labels, settings, resets, outputs, digests
    _, recs = ffl.parse(log.read_bytes())
    kinds = {ffl.NAMES[t] for t, *_ in recs}
    assert {"SAMPLES", "SET", "CHECKPOINT", "ADAPT", "RESET", "OUTPUT", "DIGEST"} <= kinds


def test_a_second_logged_session_on_the_same_board_replays(rec, tmp_path):
    """Issue 15: two logged `ffkit stream` sessions on one running board. The second began
    (its RESET reload) with the goodness of the first session's last prediction still in
    the net, which its OUTPUT records reported and a replay, starting from the weights
    alone, did not have: "DIVERGES at record 1". New weights now clear it."""
    w = HAPT_W.read_bytes()
    adapt = config.load(MODELS / "hapt.toml").adapt
    paths = [tmp_path / "rep1.ffl", tmp_path / "rep2.ffl"]
    with _board(tmp_path, w) as vb:
        for log in paths:
            with connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
                r = stream.run(b, w, adapt, (21,), limit=5, rec=rec, log_path=log,
                               parallel=False)
                assert r["bit_identical"]
    for log in paths:
        res = replay.run(log, HAPT_W)
        assert res["identical"], (log.name, res.get("first_divergence"))


def test_new_weights_forget_the_last_prediction():
    """After an import (or a RESET reload) the last prediction's goodness belongs to other
    weights: learn_last refuses, and the goodness reads 0 as in a net just loaded."""
    from ffrt import ffw_ram

    data = DIGITS_W.read_bytes()
    net = ffw_ram.load(data, kernels_ref)
    net.predict_one([3] * net.cfg.n_features)
    assert any(net.goodness)
    ffw_ram.load_into(net, data)
    assert not any(net.goodness) and not any(net.last_pos) and not any(net.last_neg)
    with pytest.raises(ValueError, match="learn_last needs a prediction"):
        net.learn_last(1)


def test_every_runner_replays_the_same(hapt_log, digits_log, tmp_path):
    log, exported, _ = hapt_log
    mp = replay.run(log, HAPT_W, out=tmp_path / "mp.ffw", runner="micropython")
    assert mp["identical"] and (tmp_path / "mp.ffw").read_bytes() == exported
    dlog, dexported, _ = digits_log
    crcs = set()
    for runner in replay.RUNNERS:
        res = replay.run(dlog, DIGITS_W, out=tmp_path / (runner + ".ffw"), runner=runner)
        assert res["identical"], (runner, res.get("first_divergence"))
        assert (tmp_path / (runner + ".ffw")).read_bytes() == dexported
        crcs.add(res["final_weights_crc32"])
    assert len(crcs) == 1


def test_starting_weights_are_found_by_their_crc(digits_log):
    res = replay.run(digits_log[0])   # no --weights: models/digits.ffw has the log's CRC
    assert res["identical"] and res["weights"] == str(DIGITS_W)


# ---- a changed rounding rule is caught at the first record it affects ------------------------

def _update_round_half_up(w, x, h, rng, p):
    """kernels_ref.update with the stochastic rounding replaced by round-half-up (the PRNG
    is still drawn, so only the rounding differs)."""
    n_in, n_out, coef, shift, floor = p[0], p[1], p[2], p[3], p[4]
    if coef == 0:
        return
    base = 0
    for i in range(n_out):
        hi_ = max(h[i], floor)
        if hi_:
            c = coef * hi_
            for j in range(n_in):
                xj = x[j]
                if xj:
                    xs_next(rng, i, shift)
                    v = w[base + j] + ((c * xj + (1 << (shift - 1))) >> shift)
                    w[base + j] = min(255, max(1, v))
        base += n_in


def test_changed_rounding_rule_fails_at_the_first_record_it_affects(digits_log, monkeypatch,
                                                                    tmp_path):
    log = digits_log[0]
    assert replay.run(log, DIGITS_W, runner="reference")["identical"]
    monkeypatch.setattr(kernels_ref, "update", _update_round_half_up)
    res = replay.run(log, DIGITS_W, runner="reference")
    assert not res["identical"]
    d = res["first_divergence"]
    assert d["type"] in ("OUTPUT", "DIGEST") and d["board"] != d["host"]
    assert d["field"] and d["index"] > 0
    data = log.read_bytes()
    head, recs = ffl.parse(data)
    assert recs[d["index"]][3] == d["offset"]
    # every record before it replays identically under the changed rule: it is the first
    prefix = tmp_path / "prefix.ffl"
    prefix.write_bytes(data[:d["offset"]])
    assert replay.run(prefix, DIGITS_W, runner="reference")["identical"]
    lines = replay.format_lines(res)
    assert "DIVERGES at record %d (byte %d, %s)" % (d["index"], d["offset"], d["type"]) \
        in lines[-1]


# ---- bad logs are refused, naming where --------------------------------------------------------

def _records(data):
    return ffl.parse(data)[1]


def _rebuild(head, recs):
    return head + b"".join(ffl.record(t, i, body) for i, (t, _, body, _) in enumerate(recs))


def test_corrupt_truncated_reordered_and_empty_logs_are_refused(digits_log, tmp_path):
    data = digits_log[0].read_bytes()
    head, hl = ffl.parse_header(data)
    recs = _records(data)
    t5, off5 = recs[5][0], recs[5][3]
    flipped = bytearray(data)
    flipped[off5 + 9] ^= 0x10
    swapped = list(recs)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    reordered = data[:hl] + b"".join(
        data[r[3]:r[3] + 11 + len(r[2])] for r in swapped)
    dropped = data[:recs[6][3]] + data[recs[7][3]:]
    bad_head = bytearray(data)
    bad_head[20] ^= 1
    cases = {
        "empty": (b"", "byte 0: empty log"),
        "not a log": (b"FFKW" + data[4:], "byte 0: not an ffkit log"),
        "header": (bytes(bad_head), "header CRC mismatch"),
        "flipped": (bytes(flipped), "record 5 at byte %d: CRC mismatch" % off5),
        "truncated": (data[:off5 + 5], "record 5 at byte %d: truncated" % off5),
        "reordered": (reordered, "record 3 at byte %d: index 4 where 3 belongs"
                      % recs[3][3]),
        "dropped": (dropped, "record 6 at byte %d: index 7 where 6 belongs" % recs[6][3]),
        "garbage": (data + b"\x00\x01", "truncated"),
    }
    assert t5 in ffl.NAMES
    for name, (bad, words) in cases.items():
        p = tmp_path / (name + ".ffl")
        p.write_bytes(bad)
        with pytest.raises(FFKitError) as e:
            replay.run(p, DIGITS_W)
        assert words in str(e.value), (name, str(e.value))
    # the command: a clear message, a failing exit code, never IDENTICAL
    p = tmp_path / "flipped.ffl"
    cp = subprocess.run([sys.executable, "-m", "ffkit.cli", "replay", str(p), "--weights",
                         str(DIGITS_W)], capture_output=True, text=True)
    assert cp.returncode != 0 and "CRC mismatch" in cp.stderr + cp.stdout
    assert "IDENTICAL" not in cp.stdout and "Traceback" not in cp.stderr


def test_random_damage_never_replays_as_identical(digits_log, tmp_path):
    data = digits_log[0].read_bytes()
    rng = random.Random(5)
    p = tmp_path / "bad.ffl"
    outcomes = {"refused": 0}
    for k in range(150):
        bad = bytearray(data)
        how = k % 3
        if how == 0:
            i = rng.randrange(len(bad))
            bad[i] ^= 1 << rng.randrange(8)
        elif how == 1:
            del bad[rng.randrange(1, len(bad)):]
        else:
            i = rng.randrange(len(bad) - 8)
            j = rng.randrange(1, 8)
            bad[i:i + j], bad[i + j:i + 2 * j] = bad[i + j:i + 2 * j], bad[i:i + j]
            if bytes(bad) == data:
                continue
        p.write_bytes(bytes(bad))
        try:
            res = replay.run(p, DIGITS_W)
        except FFKitError:
            outcomes["refused"] += 1
            continue
        assert not res["identical"] or bytes(bad) == data, k
    assert outcomes["refused"] >= 140


def test_logs_of_another_firmware_or_model_need_force(digits_log, hapt_log, tmp_path):
    data = digits_log[0].read_bytes()
    head, hl = ffl.parse_header(data)
    other = ffl.header(b"9.9.9", head["signature"], head["state_crc"], head["checkpoint_crc"],
                       head["step"], head["rng"]) + data[hl:]
    p = tmp_path / "other.ffl"
    p.write_bytes(other)
    with pytest.raises(FFKitError, match="from firmware 9.9.9, this is"):
        replay.run(p, DIGITS_W)
    forced = replay.run(p, DIGITS_W, force=True)
    assert forced["identical"] and "firmware 9.9.9" in forced["notes"][0]
    # the HAPT session over the digits model: refused; forced, it diverges at once
    with pytest.raises(FFKitError, match="model signature is not this model's"):
        replay.run(hapt_log[0], DIGITS_W)
    forced = replay.run(hapt_log[0], DIGITS_W, force=True)
    assert not forced["identical"]
    d = forced["first_divergence"]   # record 0 is SET lr_shift; its answer already differs
    assert (d["index"], d["type"]) == (1, "OUTPUT") and d["board"] != d["host"]
    assert any("starting weights are not the log's" in n for n in forced["notes"])


# ---- the board's ring ---------------------------------------------------------------------------

def test_ring_keeps_the_newest_and_a_listening_host_keeps_all(tmp_path):
    from ffkit.data import datasets
    from ffkit.data.datasets import as_labels, as_rows

    w = DIGITS_W.read_bytes()
    d = datasets.load("digits")
    X, y = as_rows(d.X_test), as_labels(d.y_test)
    with _board(tmp_path, w) as vb, connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
        b.import_weights(w)
        b.log_start(segment=1024, digest_every=0)
        for i in range(40):
            b.learn(X[i], y[i])
        st = b.log_status()
        assert st["on"] and st["next"] == 80 and st["first"] > 0
        with pytest.raises(FFKitError, match="overwrote them"):
            logs.download(b, tmp_path / "lost.ffl")
        start = tmp_path / "start.ffw"
        start.write_bytes(b.export())   # the state this second log starts from
        r = logs.Recorder(b, tmp_path / "all.ffl", segment=1024, digest_every=0,
                          drain_every=1)
        for i in range(40, 80):
            b.learn(X[i], y[i])
            r.maybe_drain()
        info = r.close()
        exported = b.export()
        assert b.log_status()["first"] > 0   # the ring dropped records the host had read
    assert info["records"] == 2 * 40 + 1   # request and output per LEARN, the final digest
    res = replay.run(tmp_path / "all.ffl", start, out=tmp_path / "end.ffw")
    assert res["identical"] and (tmp_path / "end.ffw").read_bytes() == exported


def test_ring_reads_across_its_segments(tmp_path):
    ring = ffl.Ring(str(tmp_path), segment=1024)
    ring.start(ffl.header(b"t", b"", 1, 0, 0, (0, 1)))
    for i in range(120):   # 23 bytes each: 44 to a segment, so the first 44 are gone
        ring.append(ffl.DIGEST, ffl.digest_body(i, i, (0, 1)))
    assert ring.first == 44 and ring.next == 120
    out = bytearray(4096)
    n = ring.read(ring.first, out)
    got = [struct.unpack_from("<I", out, o + 3)[0] for o in range(0, n, 23)]
    assert got == list(range(44, 120))   # across both segments, in order
    n = ring.read(100, out)
    assert [struct.unpack_from("<I", out, o + 3)[0] for o in range(0, n, 23)] == \
        list(range(100, 120))
    with pytest.raises(ffl.FFLError, match="the ring holds"):
        ring.read(ring.first - 1, out)


# ---- a long session --------------------------------------------------------------------------

def _long_session(rec, subjects, min_windows):
    with tempfile.TemporaryDirectory() as tmp:
        log, exported, r = record_hapt(tmp, rec, subjects, None)
        assert r["windows"] >= min_windows and r["bit_identical"]
        out = Path(tmp) / "end.ffw"
        res = replay.run(log, HAPT_W, out=out)
        assert res["identical"], res.get("first_divergence")
        assert out.read_bytes() == exported
        return r["windows"], res


@pytest.mark.slow
def test_ten_thousand_windows_replay_identically(rec):
    """Subjects 16-27 under the personalise protocol (about 1.5 minutes: streaming with
    the log drained every 16 frames, then the numpy replay; `--runslow`)."""
    windows, res = _long_session(rec, tuple(range(16, 28)), 10000)
    assert windows >= 10000 and res["records"] > 2 * windows  # frames and their outputs


def test_a_whole_subject_replays_identically(rec):
    """The short version `make test` runs: subject 16 whole, every window."""
    windows, res = _long_session(rec, (16,), 700)
    assert res["records"] > 2 * windows


# ---- a board's own sensor ------------------------------------------------------------------

class _Sensor:
    """read_into like ffrt.imu_mpu6050: up to 32 samples per read, from a HAPT stretch."""

    def __init__(self, samples, per_read):
        self.s = samples.reshape(-1).tolist()
        self.i = 0
        self.per_read = per_read

    def read_into(self, buf):
        n = min(self.per_read, (len(self.s) - self.i) // 6, len(buf) // 6)
        for k in range(6 * n):
            buf[k] = self.s[self.i + k]
        self.i += 6 * n
        return n


def test_a_sensor_stream_is_logged_and_replays(rec, tmp_path):
    """ffrt.app with a sensor and run(log=...): the samples are logged as SAMPLES without
    labels; a log started mid-stream restarts the learner, logged as its ADAPT."""
    from ffrt import log_ops
    from ffrt import ffw_ram
    from ffrt.live import LiveLearner
    from ffrt.server import Server
    from ffrt.storage import Storage

    from ffkit.twins import kernels_np

    w = HAPT_W.read_bytes()
    a, b = rec.session_range(40)
    samples = rec.samples[a:a + 128 + 64 * 30]
    net = ffw_ram.load(w, kernels_np)
    board = tmp_path / "board"
    board.mkdir()
    srv = Server(net, None, Storage(str(board)))
    srv.live = LiveLearner(net, per_class=4, replay=1)
    srv.live.feed(_Sensor(samples[:100], 100).s, 100)   # samples before the log starts
    start = tmp_path / "start.ffw"
    start.write_bytes(bytes(ffw_ram.encode(net)))
    log_ops.start(srv, 1 << 20, digest_every=8)
    sensor = _Sensor(samples, 27)
    windows = 0
    while sensor.i < len(sensor.s):
        windows += srv.live.read(sensor)   # as ffrt.app calls it: now logged
    srv.log.digest(net)
    ring = srv.log.ring
    assert ring.first == 0 and windows == 31
    out = bytearray(1 << 20)
    log = tmp_path / "sensor.ffl"
    log.write_bytes(ring.header() + bytes(out[:ring.read(0, out)]))
    _, recs = ffl.parse(log.read_bytes())
    assert ffl.NAMES[recs[0][0]] == "ADAPT" and recs[0][2][:3] == bytes([4, 1, 0])
    assert sum(1 for t, *_ in recs if t == 0x11) == -(-len(samples) // 27)
    res = replay.run(log, start, out=tmp_path / "end.ffw")
    assert res["identical"], res.get("first_divergence")
    assert (tmp_path / "end.ffw").read_bytes() == bytes(ffw_ram.encode(net))


def test_a_version_that_is_not_text_is_a_log_error(tmp_path):
    """A header whose firmware version bytes are not UTF-8 (its CRC recomputed) is an
    FFLError naming the byte, and `ffkit replay` says so (issue 12, item 3a)."""
    data = ffl.header(b"0.1\xff\xfe", b"\x01", 7, 0, 3, (0, 1)) + \
        ffl.record(ffl.DIGEST, 0, bytes(12))
    with pytest.raises(ffl.FFLError, match="byte 9: the firmware version is not text"):
        ffl.parse_header(data)
    p = tmp_path / "v.ffl"
    p.write_bytes(data)
    with pytest.raises(FFKitError, match="firmware version is not text"):
        replay.run(p, DIGITS_W)
    cp = subprocess.run([sys.executable, "-m", "ffkit.cli", "replay", str(p), "--weights",
                         str(DIGITS_W)], capture_output=True, text=True)
    assert cp.returncode != 0 and "not text" in cp.stderr + cp.stdout
    assert "Traceback" not in cp.stderr
