"""Fuzzing the virtual board's protocol server with frames that are invalid by construction.

The firmware runs on a virtual board (ffkit.board.sim); the host writes many frames per write and
holds every answer to what proto.py's docstring says:

- a frame whose CRC or COBS is bad, that is too long or too short, is dropped and counted
  in STATS bad_frames; the count expected is what the reference decoder (proto.Decoder,
  the board's own code, run on the host) reports for the same bytes;
- a frame with a good CRC gets exactly one response with its seq: here always ERROR, with
  the status the request's layout calls for (E_UNKNOWN_TYPE, E_BAD_LENGTH, E_BAD_VALUE,
  E_BAD_STATE, E_REFUSED; never E_INTERNAL).

Only frames that cannot change the board are sent: every good-CRC frame goes through
`expected_status`, which names the error the request must get, or None when the request
might be carried out (a valid LEARN, IMPORT_BEGIN, SET, RESET, REPL...); such a frame, and
a mutation that happens to come out valid, is never sent. After each batch of at most
BATCH frames a HELLO must be answered (no crash, no hang); at the end the weights (an
export), the settings, the step, the learn and predict counters and the board's files are
as before.

CI sends FRAMES (20,000) frames; ``--runslow`` sends 1,000,000, and FFKIT_FUZZ_FRAMES=N
any number. The seed is FFKIT_FUZZ_SEED (default 1); a failure names the seed and the
frame.

A separate test sends each kind of valid-but-refused request one at a time and checks its
status and message (a bad label, features out of range, a chunk without BEGIN...).
"""

import json
import os
import struct
import time

import pytest

from ffkit.board import fuzz
from ffkit.board.client import Board, DeviceError
from ffkit.board.fuzz import ANSWER_S, BATCH, BATCH_BYTES, Fuzzer, Raw, Target
from ffkit.board.link import open_link
from ffkit.board.sim import VirtualBoard
from ffrt import ffw
from ffrt import proto as P
from ffrt import proto_host
from ffrt.crc32 import crc32
from ffrt.model import Config

pytestmark = pytest.mark.device

FRAMES = 50000          # frames in CI (about 6 s)
SLOW_FRAMES = 1000000   # with --runslow

CFG = Config()          # the board boots fresh: this shape
NF, NC, IN_MAX = CFG.n_features, CFG.n_classes, CFG.in_max
FILE_SIZE = ffw.file_size(CFG)
TARGET = Target(CFG)


def fuzz_frames(request):
    env = os.environ.get("FFKIT_FUZZ_FRAMES")
    if env:
        return int(env)
    return SLOW_FRAMES if request.config.getoption("--runslow") else FRAMES


def _x(vals):
    return struct.pack("<%dh" % len(vals), *vals)


def expected_status(t, body):
    return fuzz.expected_status(t, body, TARGET)


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _settings(board):
    return board.set()  # SET {}: changes nothing, answers every setting in force


@pytest.fixture
def vb(tmp_path):
    with VirtualBoard(tmp_path / "board") as b:
        yield b


def test_fuzz_frames_change_nothing_and_are_counted(vb, request):
    n_frames = fuzz_frames(request)
    seed = int(os.environ.get("FFKIT_FUZZ_SEED", "1"))
    fz = Fuzzer(seed)
    link = open_link(vb.port)
    try:
        board = Board(link)
        board.learn([1] * NF, 3)           # a board that has learnt, and checkpointed
        board.checkpoint()
        before = board.export()
        settings = _settings(board)
        info = board.info()
        files = _files(vb.dir)
        raw = Raw(link, fz)
        fz.last = None
        s0 = json.loads(raw.request(P.STATS))

        t0 = time.monotonic()
        sent = good = bad = hellos = 0
        wire_bytes = 0
        while sent < n_frames:
            batch = bytearray()
            want = []
            k = 0
            while k < BATCH and sent + k < n_frames and len(batch) < BATCH_BYTES:
                kind, wire, g, nb = fz.unit()
                batch += wire
                want += [(s, st, t, body, kind) for s, st, t, body in g]
                bad += nb
                k += 1
            # the HELLO that closes the batch: the board is alive and has read it all
            hseq = fz.next_seq(P.HELLO)
            fz.last = (P.HELLO, hseq)
            batch += proto_host.encode_frame(P.HELLO, hseq, b"")
            link.write(bytes(batch))
            wire_bytes += len(batch)
            for seq, st, t, body, kind in want:
                got = raw.next_frame(ANSWER_S)
                where = "seed %d, frames %d..%d, %s request 0x%02x seq %d body %r" % (
                    seed, sent, sent + k, kind, t, seq, body[:40])
                assert got is not None, "no answer (hang?) to " + where + vb.console()
                rt, rseq, rbody = got
                assert (rt, rseq) == (P.ERROR, seq), "answered %r to %s" % (got[:2], where)
                assert rbody[0] == st, "status %d (%s), not %d, to %s" % (
                    rbody[0], rbody[1:].decode("utf-8", "replace"), st, where)
            got = raw.next_frame(ANSWER_S)
            assert got is not None and got[:2] == (P.HELLO | P.RESPONSE, hseq), (
                "no HELLO answer after frames %d..%d (seed %d): %r %s"
                % (sent, sent + k, seed, got, vb.console()))
            sent += k
            good += len(want)
            hellos += 1
        seconds = time.monotonic() - t0

        s1 = json.loads(raw.request(P.STATS))
        assert s1["bad_frames"] - s0["bad_frames"] == bad
        assert s1["requests"] - s0["requests"] == good + hellos + 1  # + this STATS
        for k in ("learn_steps", "predictions", "labelled"):
            assert s1[k] == s0[k], k
        assert raw.dec.errors == 0 and vb.dropped == 0  # the answers arrived whole
        board = Board(link)
        assert board.export() == before
        assert _settings(board) == settings
        assert board.info()["step"] == info["step"]
        assert _files(vb.dir) == files
        assert vb.running
    finally:
        link.close()
    print("\nfuzz: %d frames (%s) in %.1f s: %d dropped and counted (bad_frames), %d "
          "answered ERROR, %d HELLO checks, %d units not sent (might be valid), %d bytes"
          % (sent, ", ".join("%s %d" % kv for kv in fz.sent.items()), seconds, bad, good,
             hellos, fz.rejected, wire_bytes))
    request.node.user_properties.append(("fuzz", {
        "frames": sent, "seconds": round(seconds, 1), "bad_frames": bad, "errors": good,
        "hellos": hellos, "kinds": fz.sent}))


def test_oracle_agrees_with_the_reference_decoder():
    """The fuzzer's own classes: what it calls a bad frame the reference decoder drops."""
    fz = Fuzzer(7)
    for kind in ("bad_crc", "too_long", "too_short"):
        for _ in range(200):
            wire = fz.make(kind)
            dec = P.Decoder()
            got = [s for s in (dec.feed(b) for b in wire) if s is not None]
            want = {"bad_crc": P.FRAME_BAD_CRC, "too_long": P.FRAME_TOO_LONG,
                    "too_short": P.FRAME_TOO_SHORT}[kind]
            assert got == [want], (kind, wire)
    assert expected_status(P.LEARN, bytes([3]) + _x([1] * NF)) is None
    assert expected_status(P.LEARN, bytes([NC]) + _x([1] * NF)) == P.E_BAD_VALUE
    assert expected_status(P.STREAM, b"\x00") is None
    assert expected_status(P.STREAM, b"") == P.E_BAD_LENGTH
    assert expected_status(P.SET, b"{}") is None


# ---- valid frames the board must refuse, one by one ------------------------------------------

def _refusals():
    x = [1] * NF
    feats_hi = [1] * (NF - 1) + [IN_MAX + 1]
    feats_neg = [-1] + [1] * (NF - 1)
    per = 1 + 2 * NF
    return [
        ("label out of range", P.LEARN, bytes([NC]) + _x(x), P.E_BAD_VALUE, "label %d" % NC),
        ("label 255", P.LEARN, bytes([255]) + _x(x), P.E_BAD_VALUE, "label"),
        ("feature above in_max", P.LEARN, bytes([1]) + _x(feats_hi), P.E_BAD_VALUE,
         "x[%d] = %d" % (NF - 1, IN_MAX + 1)),
        ("negative feature", P.PREDICT, _x(feats_neg), P.E_BAD_VALUE, "x[0] = -1"),
        ("too few features", P.PREDICT, _x(x[:-1]), P.E_BAD_LENGTH, "got %d" % (2 * NF - 2)),
        ("LEARN without features", P.LEARN, b"\x01", P.E_BAD_LENGTH, "got 1"),
        ("STREAM count and length disagree", P.STREAM, b"\x02" + bytes(per), P.E_BAD_LENGTH,
         "STREAM of 2 samples"),
        ("STREAM with one bad label", P.STREAM,
         b"\x02" + b"\x01" + _x(x) + bytes([NC]) + _x(x), P.E_BAD_VALUE, "label"),
        ("STREAM with one bad feature", P.STREAM,
         b"\x02" + b"\xff" + _x(x) + b"\x01" + _x(feats_hi), P.E_BAD_VALUE, "x[%d]" % (NF - 1)),
        ("chunk without IMPORT_BEGIN", P.IMPORT_CHUNK, struct.pack("<I", 0) + b"FFKW",
         P.E_BAD_STATE, "IMPORT_BEGIN first"),
        ("commit without IMPORT_BEGIN", P.IMPORT_COMMIT, b"", P.E_BAD_STATE,
         "IMPORT_BEGIN first"),
        ("export chunk without EXPORT_BEGIN", P.EXPORT_CHUNK, struct.pack("<IH", 0, 64),
         P.E_BAD_STATE, "EXPORT_BEGIN first"),
        ("import larger than the model's file", P.IMPORT_BEGIN,
         struct.pack("<II", FILE_SIZE + 1, 0), P.E_REFUSED, "size mismatch"),
        ("RESET of nothing known", P.RESET, b"\x07", P.E_BAD_VALUE, "RESET takes"),
        ("SET of a bad value", P.SET, b'{"lr_shift": 99}', P.E_BAD_VALUE, "lr_shift"),
        ("SET of an unknown setting", P.SET, b'{"bogus": 1}', P.E_BAD_VALUE, "bogus"),
        ("SET of the shape", P.SET, b'{"layers": [10]}', P.E_BAD_VALUE, "layers"),
        ("SET, not JSON", P.SET, b"\xff{", P.E_BAD_VALUE, "JSON"),
        ("SET of a JSON list", P.SET, b"[1]", P.E_BAD_VALUE, "JSON object"),
        ("HELLO with a body", P.HELLO, b"x", P.E_BAD_LENGTH, "got 1"),
        ("CHECKPOINT with a body", P.CHECKPOINT, b"\x00", P.E_BAD_LENGTH, "got 1"),
        ("REPL with a body", P.REPL, b"\x00", P.E_BAD_LENGTH, "got 1"),
        ("SAMPLES to a net of other features", P.SAMPLES, b"\x02\x00" + bytes(12),
         P.E_BAD_STATE, "72 window features"),
        ("ADAPT of two bytes", P.ADAPT, b"\x02\x01", P.E_BAD_LENGTH, "got 2"),
        ("unknown request type", 0x33, b"", P.E_UNKNOWN_TYPE, "0x33"),
        ("a response type sent as a request", P.LEARN | P.RESPONSE, b"", P.E_UNKNOWN_TYPE,
         "0x%02x" % (P.LEARN | P.RESPONSE)),
    ]


def test_valid_frames_refused_one_by_one_change_nothing(vb):
    with Board(open_link(vb.port)) as board:
        board.learn([2] * NF, 1)
        board.checkpoint()
        before = board.export()
        settings = _settings(board)
        files = _files(vb.dir)
        s0 = board.stats()
        for what, t, body, status, text in _refusals():
            with pytest.raises(DeviceError) as e:
                board.request(t, body)
            assert (e.value.status, what) == (status, what), e.value
            assert text in e.value.message, (what, e.value.message)
        # refusals inside sessions: an import chunk out of order, a learn while exporting
        data = before
        board.request(P.IMPORT_BEGIN, struct.pack("<II", len(data), crc32(data)))
        board.request(P.IMPORT_CHUNK, struct.pack("<I", 0) + data[:256])
        with pytest.raises(DeviceError) as e:
            board.request(P.IMPORT_CHUNK, struct.pack("<I", 512) + data[512:768])
        assert e.value.status == P.E_BAD_STATE and "256 bytes staged" in e.value.message
        with pytest.raises(DeviceError) as e:
            board.request(P.IMPORT_COMMIT)
        assert e.value.status == P.E_BAD_STATE and "256 of %d" % len(data) in e.value.message
        board.request(P.EXPORT_BEGIN)
        for t, body, status in ((P.LEARN, bytes([1]) + _x([1] * NF), P.E_BUSY),
                                (P.RESET, bytes([P.RESET_FRESH]), P.E_BUSY),
                                (P.SET, b'{"lr_shift": 12}', P.E_BUSY),
                                (P.EXPORT_CHUNK, struct.pack("<IH", FILE_SIZE - 10, 64),
                                 P.E_BAD_VALUE)):
            with pytest.raises(DeviceError) as e:
                board.request(t, body)
            assert e.value.status == status, (proto_host.NAMES[t], e.value)
        board.request(P.EXPORT_END)
        s1 = board.stats()
        assert board.export() == before
        assert _settings(board) == settings
        for k in ("learn_steps", "predictions", "labelled", "bad_frames"):
            assert s1[k] == s0[k], k
        assert _files(vb.dir) == files   # no import.tmp left behind either


# ---- ffkit fuzz: the same fuzzer as a verb, at the firmware's smallest heap ------------------

def test_ffkit_fuzz_at_the_smallest_heap_leaves_the_board_serviceable(repo_root, tmp_path):
    """`ffkit fuzz` against the flashed .mpy firmware at the heap tests/test_server.py
    pins (108K): fuzzed batches with an abandoned-session episode
    after each (IMPORT_BEGIN, IMPORT_CHUNK, SAMPLES, LOG STATUS: the sequence that once
    left every later INFO answering MemoryError), a valid import after each, and at the
    end the same weights, settings and step. Below the pinned heap the imports may be
    refused for want of heap (cleanly: with a draft of issue 15's checks, 44 of 90 in a
    100,000-frame run at 106K), so the check that they go through runs here (it ran 1 KB
    above the pin before issue 15, which pins 108K: at 107K an abandoned import can leave
    an export short of heap, tests/test_wedge.py)."""
    import subprocess
    import sys
    import tempfile

    from ffkit.board import builds

    board = tempfile.mkdtemp(prefix="vb")   # a short folder, as in tests/test_server.py
    try:
        builds.build_bundle("unix", board, model=repo_root / "models" / "digits.ffw")
        r = subprocess.run([sys.executable, "-m", "ffkit.cli", "fuzz", "--port",
                            "sim://%s?heap=108K" % board, "--frames", "4000",
                            "--episodes-every", "1", "--imports", "--json"],
                           capture_output=True, text=True, timeout=600)
    finally:
        import shutil
        shutil.rmtree(board, ignore_errors=True)
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    assert rep["frames"] == 4000 and rep["episodes"] >= 4, rep
    # valid imports of the board's own weights ran between the episodes, and some of them
    # went through even at this heap (the rest were refused for want of it)
    assert rep["imports"] >= 1, rep
    assert {k: rep[k] for k in ("crashes", "hangs", "unexpected_answers",
                                "state_changes_unexpected", "wedged")} == {
        "crashes": 0, "hangs": 0, "unexpected_answers": 0, "state_changes_unexpected": 0,
        "wedged": 0}, rep["failures"]
    assert r.returncode == 0 and rep["ok"] is True


def test_ffkit_fuzz_reports_a_board_that_changes_state(tmp_path, monkeypatch):
    """A negative control: a fuzzer that (wrongly) lets a valid LEARN through must see the
    board change, and say so (state_changes_unexpected, exit 1)."""
    from ffkit.board.client import connect

    real = fuzz.expected_status

    def lax(t, body, tg):
        if t == P.LEARN and len(body) == 1 + 2 * tg.nf and body[0] < tg.nc:
            return P.E_BAD_VALUE    # claims a refusal: the board learns instead
        return real(t, body, tg)

    refused = fuzz.Fuzzer.refused_request

    def with_valid_learns(self, kind):
        if kind == "bad_value" and self.rng.random() < 0.2:
            return P.LEARN, bytes([self.rng.randrange(self.tg.nc)]) + self.feats()
        return refused(self, kind)

    monkeypatch.setattr(fuzz, "expected_status", lax)
    monkeypatch.setattr(fuzz.Fuzzer, "refused_request", with_valid_learns)
    with VirtualBoard(tmp_path / "b") as vb:
        board = connect(vb.port)
        try:
            rep = fuzz.run_fuzz(board.link, 3000, seed=3, episodes=0)
        finally:
            board.close()
    assert rep["state_changes_unexpected"] >= 1 and rep["ok"] is False, rep
    assert rep["unexpected_answers"] >= 1
    assert any("learn_steps" in f or "weights" in f for f in rep["failures"]), rep["failures"]
