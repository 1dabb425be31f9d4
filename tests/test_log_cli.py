"""ffkit log start / stop / status / download, and the newest records of a wrapped ring
(issue 15, item 5).

Before: `ffkit log` only downloaded, a board's log could be started only by ffkit stream
--log (or a script), and once the ring had overwritten records 0.. `ffkit log` refused and
nothing got the newest records out.
"""

import contextlib
import io
import json
import struct
from pathlib import Path

import pytest

from ffkit import cli, config
from ffkit.board.client import _pack_x, connect
from ffkit.board.sim import VirtualBoard
from ffkit.data import datasets
from ffkit.data.datasets import as_labels, as_rows
from ffrt import ffl
from ffrt import proto as P

DIGITS_W = config.models_dir() / "digits.ffw"
HAPT_W = config.models_dir() / "hapt.ffw"

pytestmark = pytest.mark.device


def _cli(*argv, code=0):
    """(exit code, the JSON object printed or None, stderr) of ffkit argv --json."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            got = cli.main(list(argv) + ["--json"])
        except SystemExit as e:   # argparse's usage errors
            got = e.code
    assert got == code, (got, out.getvalue(), err.getvalue())
    text = out.getvalue().strip()
    return json.loads(text.splitlines()[-1]) if text else None, err.getvalue()


def _board(tmp_path, weights=DIGITS_W):
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "model.ffw").write_bytes(weights.read_bytes())
    return VirtualBoard(folder)


def _windows(n):
    """Windows that n samples complete."""
    from ffrt.features import HOP, WINDOW
    return 0 if n < WINDOW else 1 + (n - WINDOW) // HOP


def _digits():
    d = datasets.load("digits")
    return as_rows(d.X_test), as_labels(d.y_test)


def test_start_status_stop_and_both_download_forms(tmp_path):
    X, y = _digits()
    with _board(tmp_path) as vb:
        port = vb.port
        with connect(port, timeout=5.0, hello_timeout=10.0):
            pass   # booted
        st, _ = _cli("log", "status", "--port", port)
        assert st == {"exists": False, "port": port, "action": "status"}
        _, err = _cli("log", "stop", "--port", port, code=1)
        assert "no log to stop" in err
        st, _ = _cli("log", "start", "--port", port, "--segment", "4096",
                     "--digest-every", "2")
        assert st["exists"] and st["on"] and (st["first"], st["next"]) == (0, 0)
        assert (st["segment"], st["digest_every"]) == (4096, 2)
        assert st["replaced"] == {"exists": False}
        with connect(port, timeout=5.0) as b:
            for i in range(3):
                b.learn(X[i], y[i])
        st, _ = _cli("log", "status", "--port", port)
        # LEARN + OUTPUT per request, a DIGEST after the second
        assert st["on"] and st["next"] == 7 and st["held"] == 7 and not st["wrapped"]
        st, _ = _cli("log", "stop", "--port", port)
        assert st["was_on"] and not st["on"] and st["next"] == 7
        with connect(port, timeout=5.0) as b:
            b.learn(X[3], y[3])   # not logged: logging is off
        st, _ = _cli("log", "stop", "--port", port)
        assert not st["was_on"] and st["next"] == 7
        old, _ = _cli("log", "--port", port, "-o", str(tmp_path / "old.ffl"))
        new, _ = _cli("log", "download", "--port", port, "-o", str(tmp_path / "new.ffl"))
        assert old["records"] == new["records"] == 7 and new["complete"]
        assert (tmp_path / "old.ffl").read_bytes() == (tmp_path / "new.ffl").read_bytes()
        # a second start replaces the log and says so
        st, _ = _cli("log", "start", "--port", port)
        assert st["replaced"]["next"] == 7 and st["next"] == 0 and st["on"]
        # usage errors exit 2 and name the action's options
        _, err = _cli("log", "--port", port, code=2)
        assert "needs -o" in err
        _, err = _cli("log", "status", "--port", port, "-o", "x.ffl", code=2)
        assert "options of ffkit log download" in err
        _, err = _cli("log", "start", "--port", port, "--segment", "10", code=2)
        assert "1024..16777216" in err
    head, recs = ffl.parse((tmp_path / "new.ffl").read_bytes())
    assert [r[0] for r in recs] == [P.LEARN, ffl.OUTPUT, P.LEARN, ffl.OUTPUT, ffl.DIGEST,
                                    P.LEARN, ffl.OUTPUT]


def test_a_wrapped_ring_gives_its_newest_records_and_they_replay(tmp_path):
    from ffkit.sessions import replay

    X, y = _digits()
    with _board(tmp_path) as vb:
        port = vb.port
        with connect(port, timeout=5.0, hello_timeout=10.0):
            pass
        # small segments, no periodic digest: the ring wraps after a few requests
        _cli("log", "start", "--port", port, "--segment", "1024", "--digest-every", "0")
        with connect(port, timeout=5.0) as b:
            b.request(P.SET, b'{"lr_shift": 25}')   # settings change before the cut
            n = 0
            while b.log_status()["first"] == 0:
                b.learn(X[n], y[n])
                n += 1
            b.learn(X[n], y[n])
            n += 1
            mid = b.export()   # the state at the DIGEST below
            cut = b.log_digest()
            sent = []
            for i in range(n, n + 3):
                b.learn(X[i], y[i])
                sent.append(bytes([y[i]]) + _pack_x(X[i]))
            end = b.export()
            steps = [b.info()["step"] - 3 + k for k in range(1, 4)]
        st, _ = _cli("log", "status", "--port", port)
        assert st["wrapped"] and st["first"] > 0 and st["next"] == cut + 1 + 2 * 3
        _, err = _cli("log", "download", "--port", port, "-o", str(tmp_path / "x.ffl"),
                      code=1)
        assert "overwrote" in err and "--newest" in err
        assert not (tmp_path / "x.ffl").exists()
        res, _ = _cli("log", "download", "--newest", "--port", port,
                      "-o", str(tmp_path / "new.ffl"))
    assert not res["complete"] and res["cut_at"] == cut and res["dropped"] == st["first"]
    assert res["records"] == 1 + 2 * 3 and res["start_state_crc32"] == \
        "%08x" % struct.unpack("<I", mid[-4:])[0]
    assert "needs the weights of that state" in res["notes"][0]
    assert "lr_shift 27 -> 25" in res["notes"][1] and len(res["notes"]) == 2
    data = (tmp_path / "new.ffl").read_bytes()
    head, recs = ffl.parse(data)
    assert head["state_crc"] == struct.unpack("<I", mid[-4:])[0]
    assert [r[0] for r in recs] == [ffl.DIGEST] + [P.LEARN, ffl.OUTPUT] * 3
    assert [r[2] for r in recs if r[0] == P.LEARN] == sent
    assert [struct.unpack_from("<I", r[2], 3)[0] for r in recs if r[0] == ffl.OUTPUT] \
        == steps
    mid_path = tmp_path / "mid.ffw"
    mid_path.write_bytes(mid)
    r = replay.run(tmp_path / "new.ffl", mid_path, out=tmp_path / "end.ffw")
    assert r["identical"] and r["records"] == 7, r
    assert (tmp_path / "end.ffw").read_bytes() == end


def test_a_wrapped_stream_log_gives_its_newest_frames(tmp_path):
    """A board streamed raw samples (SAMPLES frames, the live learner) past its ring: the
    newest frames download in order, and the notes say that the live learner's state at
    the cut is in no DIGEST."""
    import numpy as np

    from ffkit.board.client import _pack_samples

    rng = np.random.default_rng(5)
    with _board(tmp_path, HAPT_W) as vb:
        port = vb.port
        with connect(port, timeout=5.0, hello_timeout=10.0):
            pass
        _cli("log", "start", "--port", port, "--segment", "1024", "--digest-every", "3")
        frames = []
        done = 0
        with connect(port, timeout=5.0) as b:
            for i in range(30):   # 20 samples a frame: a 242..244-byte SAMPLES record
                s = rng.integers(-3000, 3000, size=(20, 6)).astype(np.int16)
                k = _windows(done + 20) - _windows(done)
                done += 20
                b.samples(s, labels=[-1] * k)
                frames.append(_pack_samples(s))
            st = b.log_status()
        res, _ = _cli("log", "download", "--newest", "--port", port,
                      "-o", str(tmp_path / "new.ffl"))
    assert st["first"] > 0 and res["cut_at"] >= st["first"]
    head, recs = ffl.parse((tmp_path / "new.ffl").read_bytes())
    assert res["records"] == len(recs) == st["next"] - res["cut_at"]
    got = [r[2] for r in recs if r[0] == P.SAMPLES]
    # whole frames, in order, the newest last; the record after a DIGEST is a SAMPLES
    assert got and [g[-240:] for g in got] == frames[-len(got):]
    assert recs[0][0] == ffl.DIGEST and recs[1][0] == P.SAMPLES
    assert any("record 1 (SAMPLES) needs the live learner" in n for n in res["notes"])
