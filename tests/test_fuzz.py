"""Fuzzing the virtual board's protocol server with frames that are invalid by construction.

The firmware runs on a virtual board (ffkit.sim); the host writes many frames per write and
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
import random
import struct
import time

import pytest

from ffkit.client import Board, DeviceError
from ffkit.link import open_link
from ffkit.sim import VirtualBoard
from ffrt import ffw
from ffrt import proto as P
from ffrt.crc32 import crc32
from ffrt.model import Config

pytestmark = pytest.mark.device

FRAMES = 50000          # frames in CI (about 6 s)
SLOW_FRAMES = 1000000   # with --runslow
BATCH = 1000            # frames between two HELLO checks
BATCH_BYTES = 24000     # and at most this many bytes (the sim's relay holds 64 KB)
ANSWER_S = 20.0         # the longest silence accepted while answers are due

CFG = Config()          # the board boots fresh: this shape
NF, NC, IN_MAX = CFG.n_features, CFG.n_classes, CFG.in_max
FILE_SIZE = ffw.file_size(CFG)
KNOWN = set(range(P.HELLO, P.SLEEP + 1))
# SET bodies a board must refuse (E_BAD_VALUE) whatever state it is in
BAD_SETS = [b"[1, 2]", b'"learning"', b"3", b"null", b"true", b'{"bogus": 1}',
            b'{"seed": 3}', b'{"layers": [10]}', b'{"lr_shift": 99}', b'{"lr_shift": 0}',
            b'{"lr": true}', b'{"lr": 1.5}', b'{"theta": [1, 2, 3]}', b'{"theta": "x"}',
            b'{"learning": 1}', b'{"ff_learning": "yes"}', b'{"act_shift": 25}',
            b'{"learning": true, "bogus": 0}', b'{"lr_shift": 9, "grad_floor": 300}',
            b'{"lr": 1e999}', b"{", b'{"lr": 3', b"{}}"]
NOT_JSON_START = b"#}]:,;=\x01\x02\x7f\x80\xff<>!@%&*()"


def fuzz_frames(request):
    env = os.environ.get("FFKIT_FUZZ_FRAMES")
    if env:
        return int(env)
    return SLOW_FRAMES if request.config.getoption("--runslow") else FRAMES


def _x(vals):
    return struct.pack("<%dh" % len(vals), *vals)


def _feats_ok(body, o, n=NF):
    for j in range(n):
        v = struct.unpack_from("<h", body, o + 2 * j)[0]
        if not 0 <= v <= IN_MAX:
            return False
    return True


def expected_status(t, body):
    """The ERROR status a freshly booted digits board (no export or import open, learning
    on) must answer request (t, body) with; None when it might carry it out."""
    n = len(body)
    if t not in KNOWN:
        return P.E_UNKNOWN_TYPE
    if t in (P.HELLO, P.INFO, P.STATS, P.REPL, P.CHECKPOINT, P.EXPORT_BEGIN, P.EXPORT_END):
        return P.E_BAD_LENGTH if n else None
    if t == P.PREDICT:
        if n != 2 * NF:
            return P.E_BAD_LENGTH
        return None if _feats_ok(body, 0) else P.E_BAD_VALUE
    if t == P.LEARN:
        if n != 1 + 2 * NF:
            return P.E_BAD_LENGTH
        return None if _feats_ok(body, 1) and body[0] < NC else P.E_BAD_VALUE
    if t == P.STREAM:
        k = body[0] if n else 0
        per = 1 + 2 * NF
        if n != 1 + k * per:
            return P.E_BAD_LENGTH
        for i in range(k):
            y = body[1 + i * per]
            if (y != 0xFF and y >= NC) or not _feats_ok(body, 2 + i * per):
                return P.E_BAD_VALUE
        return None
    if t == P.EXPORT_CHUNK:
        return P.E_BAD_LENGTH if n != 6 else P.E_BAD_STATE
    if t == P.IMPORT_BEGIN:
        if n != 8:
            return P.E_BAD_LENGTH
        return P.E_REFUSED if struct.unpack("<I", body[:4])[0] > FILE_SIZE else None
    if t == P.IMPORT_CHUNK:
        return P.E_BAD_STATE
    if t == P.IMPORT_COMMIT:
        return P.E_BAD_LENGTH if n else P.E_BAD_STATE
    if t == P.RESET:
        if n != 1:
            return P.E_BAD_LENGTH
        return None if body[0] in (0, 1, 2) else P.E_BAD_VALUE
    if t == P.SET:
        if body in BAD_SETS or (n and body[0] in NOT_JSON_START):
            return P.E_BAD_VALUE
        return None  # might be a valid setting
    if t == P.SAMPLES:  # the digits net is not a window-features model
        return P.E_BAD_STATE
    if t == P.ADAPT:
        # 3 bytes and optional JSON schedules; the digits net does not fit
        return None if n == 0 else P.E_BAD_LENGTH if n < 3 else P.E_BAD_STATE
    if t == P.LOG:  # no valid START is ever sent: every other op finds no log
        if n == 0:
            return P.E_BAD_LENGTH
        if body[0] != 0:
            return P.E_BAD_STATE
        if n != 7:
            return P.E_BAD_LENGTH
        seg = struct.unpack_from("<I", body, 1)[0]
        return None if 1024 <= seg <= 1 << 24 else P.E_BAD_VALUE
    return None


class Fuzzer:
    """Makes units (bytes ending in 0x00) of one kind each and classifies them with the
    reference decoder: (kind, wire, [(seq, status, t, body) per good frame], bad frames)."""

    KINDS = (("bad_crc", 10), ("flip_bits", 10), ("truncated", 8), ("drop_bytes", 6),
             ("insert_bytes", 6), ("merged", 4), ("too_long", 3), ("too_short", 3),
             ("random_bytes", 8), ("unknown_type", 8), ("bad_length", 14), ("bad_value", 14),
             ("bad_state", 6))

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.ref = P.Decoder()
        self.seq = 0
        self.last = None     # (type, seq) of the last request the board executed
        self.kinds = [k for k, _ in self.KINDS]
        self.weights = [w for _, w in self.KINDS]
        self.sent = {k: 0 for k in self.kinds}
        self.rejected = 0    # units made but not sent (they might have been carried out)

    # ---- the pieces -------------------------------------------------------------------

    def next_seq(self, t):
        self.seq = (self.seq + 1) & 0xFF
        if (t, self.seq) == self.last:
            self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def feats(self, bad=False):
        r = self.rng
        x = [r.randrange(IN_MAX + 1) for _ in range(NF)]
        if bad:
            for _ in range(r.randrange(1, 4)):
                x[r.randrange(NF)] = r.choice([-1, -32768, IN_MAX + 1, 255, 32767,
                                               r.randrange(-32768, 0),
                                               r.randrange(IN_MAX + 1, 32768)])
        return _x(x)

    def rbytes(self, n, nonzero=False):
        r = self.rng
        lo = 1 if nonzero else 0
        return bytes(r.randrange(lo, 256) for _ in range(n))

    def valid_request(self):
        """A well-formed request of any type (only ever sent mutated)."""
        r = self.rng
        t = r.choice(sorted(KNOWN))
        body = {P.PREDICT: lambda: self.feats(),
                P.LEARN: lambda: bytes([r.randrange(NC)]) + self.feats(),
                P.STREAM: lambda: bytes([2]) + bytes([r.randrange(NC)]) + self.feats()
                + b"\xff" + self.feats(),
                P.EXPORT_CHUNK: lambda: struct.pack("<IH", 512 * r.randrange(63), 512),
                P.IMPORT_BEGIN: lambda: struct.pack("<II", FILE_SIZE, r.getrandbits(32)),
                P.IMPORT_CHUNK: lambda: struct.pack("<I", 0) + self.rbytes(r.randrange(512)),
                P.SET: lambda: b'{"lr_shift": 12}',
                P.RESET: lambda: bytes([r.randrange(3)])}.get(t, lambda: b"")()
        return t, body

    def refused_request(self, kind):
        """(type, body) of a good-CRC request the board must refuse."""
        r = self.rng
        if kind == "unknown_type":
            t = r.choice([0, r.randrange(P.SLEEP + 1, 256), P.ERROR,
                          r.randrange(1, P.REPL + 1) | P.RESPONSE])
            return t, self.rbytes(r.choice([0, 1, 8, r.randrange(P.MAX_BODY + 1)]))
        if kind == "bad_length":
            t = r.choice(sorted(KNOWN - {P.IMPORT_CHUNK, P.SET}))
            right = {P.PREDICT: 2 * NF, P.LEARN: 1 + 2 * NF, P.EXPORT_CHUNK: 6,
                     P.IMPORT_BEGIN: 8, P.RESET: 1, P.SLEEP: 2}.get(t, 0)
            if t == P.STREAM:  # a count that does not match the samples sent
                n = r.choice([0, 1, 2, 1 + 2 * NF, 1 + (1 + 2 * NF) + 1,
                              r.randrange(P.MAX_BODY + 1)])
                body = bytearray(self.rbytes(n))
                if n:
                    body[0] = r.randrange(5)
                    if n == 1 + body[0] * (1 + 2 * NF):
                        body[0] += 1
                return t, bytes(body)
            if t == P.ADAPT:  # 0 (a query) and 3 or more (settings) are right
                return t, self.rbytes(r.choice([1, 2]))
            if t == P.LOG:  # no op byte, or a START that is not 7 bytes
                return t, r.choice([b"", b"\x00" + self.rbytes(r.choice([0, 1, 5, 7, 30]))])
            n = right
            while n == right:
                n = r.choice([0, 1, right - 1, right + 1, r.randrange(P.MAX_BODY + 1)])
                n = max(0, n)
            return t, self.rbytes(n)
        if kind == "bad_value":
            which = r.randrange(6)
            if which == 0:   # LEARN: a label out of range, or a feature
                if r.random() < 0.5:
                    return P.LEARN, bytes([r.randrange(NC, 256)]) + self.feats()
                return P.LEARN, bytes([r.randrange(256)]) + self.feats(bad=True)
            if which == 1:
                return P.PREDICT, self.feats(bad=True)
            if which == 2:   # STREAM: one bad sample spoils the batch
                k = r.randrange(1, 5)
                bad = r.randrange(k)
                body = bytearray([k])
                for i in range(k):
                    if i == bad and r.random() < 0.5:
                        body += bytes([r.randrange(NC, 255)]) + self.feats()
                    else:
                        body += bytes([r.choice([0xFF, r.randrange(NC)])]) \
                            + self.feats(bad=i == bad)
                return P.STREAM, bytes(body)
            if which == 3:
                return P.RESET, bytes([r.randrange(3, 256)])
            if which == 4:   # SET: refused settings, or bytes that are not JSON
                if r.random() < 0.5:
                    return P.SET, r.choice(BAD_SETS)
                return P.SET, bytes([r.choice(NOT_JSON_START)]) + self.rbytes(r.randrange(80))
            return P.IMPORT_BEGIN, struct.pack("<II", r.randrange(FILE_SIZE + 1, 1 << 32),
                                               r.getrandbits(32))
        # bad_state: transfer requests without their session
        t = r.choice([P.EXPORT_CHUNK, P.IMPORT_CHUNK, P.IMPORT_COMMIT])
        if t == P.EXPORT_CHUNK:
            return t, struct.pack("<IH", r.randrange(FILE_SIZE), r.randrange(1, 513))
        if t == P.IMPORT_CHUNK:
            return t, struct.pack("<I", r.choice([0, r.randrange(FILE_SIZE)])) \
                + self.rbytes(r.randrange(513))
        return t, b""

    def raw_wire(self, raw):
        out = bytearray(len(raw) + len(raw) // 254 + 2)
        return bytes(out[:P.cobs_encode_into(raw, len(raw), out)])

    def make(self, kind):
        r = self.rng
        if kind in ("unknown_type", "bad_length", "bad_value", "bad_state"):
            t, body = self.refused_request(kind)
            return P.encode_frame(t, self.next_seq(t), body)
        if kind == "bad_crc":
            t, body = self.valid_request() if r.random() < 0.5 else \
                self.refused_request("bad_length")
            raw = bytearray([t, r.randrange(256)]) + body
            raw += struct.pack("<I", crc32(raw) ^ r.randrange(1, 1 << 32))
            return self.raw_wire(raw)
        if kind == "too_long":
            if r.random() < 0.5:  # a good CRC, but more than MAX_BODY
                t, body = self.valid_request()
                body = body + self.rbytes(P.MAX_BODY + 1 - len(body) + r.randrange(300))
                return P.encode_frame(t, r.randrange(256), body)
            return self.rbytes(P.MAX_RAW + r.randrange(1, 400), nonzero=True) + b"\x00"
        if kind == "too_short":
            return self.raw_wire(self.rbytes(r.randrange(1, 6)))
        if kind == "random_bytes":
            return self.rbytes(r.randrange(1, 300)) + b"\x00"
        wire = bytearray(P.encode_frame(*self._base()))
        body = wire[:-1]
        if kind == "flip_bits":
            for _ in range(r.randrange(1, 4)):
                body[r.randrange(len(body))] ^= 1 << r.randrange(8)
        elif kind == "truncated":
            body = body[:r.randrange(1, len(body))]
        elif kind == "drop_bytes":
            for _ in range(min(r.randrange(1, 4), len(body) - 1)):
                del body[r.randrange(len(body))]
        elif kind == "insert_bytes":
            for _ in range(r.randrange(1, 4)):
                body.insert(r.randrange(len(body) + 1), r.randrange(256))
        elif kind == "merged":  # a lost delimiter: two frames run together
            body += P.encode_frame(*self._base())[:-1]
        return bytes(body) + b"\x00"

    def _base(self):
        r = self.rng
        t, body = self.valid_request() if r.random() < 0.6 else \
            self.refused_request(r.choice(["bad_length", "bad_value", "bad_state"]))
        return t, r.randrange(256), body

    def unit(self):
        """One unit that is safe to send, classified (see the class docstring)."""
        while True:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            wire = self.make(kind)
            good = []
            bad = 0
            last = self.last
            ok = True
            for b in wire:
                st = self.ref.feed(b)
                if st is None:
                    continue
                if st != P.FRAME_OK:
                    bad += 1
                    continue
                t, seq, body = self.ref.type, self.ref.seq, bytes(self.ref.body())
                want = expected_status(t, body)
                if want is None or (t, seq) == last:
                    ok = False   # might be carried out, or answered from the cache
                    continue
                good.append((seq, want, t, body))
                last = (t, seq)
            assert wire[-1] == 0  # a unit ends its last frame: the next starts afresh
            if ok:
                self.last = last
                self.sent[kind] += 1
                return kind, wire, good, bad
            self.rejected += 1


class Raw:
    """Frames on a link, answers collected in order (no client in the way)."""

    def __init__(self, link, fuzzer):
        self.link = link
        self.fz = fuzzer
        self.dec = P.Decoder()
        self.buf = b""
        self.pos = 0

    def next_frame(self, timeout):
        deadline = time.monotonic() + timeout
        feed = self.dec.feed
        while True:
            buf = self.buf
            for i in range(self.pos, len(buf)):
                if feed(buf[i]) == P.FRAME_OK:
                    self.pos = i + 1
                    return self.dec.type, self.dec.seq, bytes(self.dec.body())
            left = deadline - time.monotonic()
            if left <= 0:
                self.buf, self.pos = b"", 0
                return None
            self.buf, self.pos = self.link.read(65536, left), 0

    def request(self, t, body=b""):
        """A request that must succeed (HELLO, STATS); returns its body."""
        seq = self.fz.next_seq(t)
        self.fz.last = (t, seq)
        self.link.write(P.encode_frame(t, seq, body))
        got = self.next_frame(ANSWER_S)
        assert got is not None, "no answer to %s" % P.NAMES[t]
        assert got[:2] == (t | P.RESPONSE, seq), got
        return got[2]


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
            batch += P.encode_frame(P.HELLO, hseq, b"")
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
            assert e.value.status == status, (P.NAMES[t], e.value)
        board.request(P.EXPORT_END)
        s1 = board.stats()
        assert board.export() == before
        assert _settings(board) == settings
        for k in ("learn_steps", "predictions", "labelled", "bad_frames"):
            assert s1[k] == s0[k], k
        assert _files(vb.dir) == files   # no import.tmp left behind either
