"""ffkit fuzz: hostile frames at a board's protocol server, and what they changed.

    ffkit fuzz --port /dev/pts/5 --frames 100000 --json
    ffkit fuzz --port 'sim://board1?heap=104K' --frames 20000

The fuzzer (`Fuzzer`) makes frames that are invalid by construction: bad CRCs, flipped,
dropped and inserted bytes, truncated and merged frames, frames too long or too short,
random bytes, unknown types, and well-formed requests that the board must refuse (a bad
length, a bad value, a transfer without its session). Every frame is classified with the
board's own decoder (ffrt.proto.Decoder) and `expected_status`, which names the ERROR the
request must get from a board serving the target's model (`Target`, read from the board's
INFO and export); a frame that might be carried out (a valid LEARN, SET, RESET...) is
never sent. Frames go out in batches, each closed by a HELLO that must be answered.

Every few batches an abandoned-session episode runs the sequence that once wedged a board
at its smallest heap: IMPORT_BEGIN (a wrong CRC), one IMPORT_CHUNK, SAMPLES, LOG STATUS,
then INFO, which must answer (retried for a few seconds), then an IMPORT_COMMIT, which
must be refused (the CRC is wrong), so the weights stay as they were.

The report (``--json``): frames sent, ``crashes`` (the board stopped answering HELLO),
``hangs`` (an answer due that never came), ``unexpected_answers`` (another status or a
success), ``state_changes_unexpected`` (weights, settings, step or learn/predict counters
that differ at the end, or bad frames not counted in STATS), ``wedged`` (episodes after
which INFO kept failing), with the first few failures of each kind described. A refusal
for want of heap (E_INTERNAL "MemoryError: ...") is allowed and counted as
``out_of_memory``: a board at its smallest heap cannot load every handler, and the
episodes and the end check that it recovers and that nothing changed. Exit 0 when the
five counts are 0, else 1; 2 for a usage error or no board.

With ``--imports`` each episode also imports the board's own weights back, chunk by chunk
(a valid import: it must succeed or be refused for want of heap, and the end check holds
the weights to what they were). The board is left as it was: nothing else sent can change
it (``--imports`` writes checkpoints of the same weights), and the fuzzer checks that
nothing did. Its heap is the board's own: fuzz a virtual board at its smallest heap with
``--port 'sim://DIR?heap=104K'``.

Size (over 500 lines): a generator per message type and `expected_status` (the board's
refusal rules, written as the fuzzer's model of them), the run loop and its episodes.
"""

import argparse
import json
import random
import struct
import sys
import time

from ffrt import ffw, transfer
from ffrt import proto as P
from ffrt import proto_host
from ffrt.crc32 import crc32
from ffrt.model import Config

from ffkit import FFKitError
from ffkit.progress import progress_bar

__all__ = ["Target", "Fuzzer", "Raw", "FuzzError", "expected_status", "run_fuzz",
           "add_arguments", "run_cli"]

BATCH = 1000            # frames between two HELLO checks
BATCH_BYTES = 24000     # and at most this many bytes (the sim's relay holds 64 KB)
ANSWER_S = 20.0         # the longest silence accepted while answers are due
EPISODE_EVERY = 5       # batches between two abandoned-session episodes
WEDGE_S = 5.0           # how long INFO may keep failing after an episode
KNOWN = set(range(P.HELLO, P.SLEEP + 1))
WINDOW_FEATURES = 72    # ffrt.features.N_FEATURES: a model that takes SAMPLES
# SET bodies a board must refuse (E_BAD_VALUE) whatever state it is in
BAD_SETS = [b"[1, 2]", b'"learning"', b"3", b"null", b"true", b'{"bogus": 1}',
            b'{"seed": 3}', b'{"layers": [10]}', b'{"lr_shift": 99}', b'{"lr_shift": 0}',
            b'{"lr": true}', b'{"lr": 1.5}', b'{"theta": [1, 2, 3]}', b'{"theta": "x"}',
            b'{"learning": 1}', b'{"ff_learning": "yes"}', b'{"act_shift": 25}',
            b'{"learning": true, "bogus": 0}', b'{"lr_shift": 9, "grad_floor": 300}',
            b'{"lr": 1e999}', b"{", b'{"lr": 3', b"{}}"]
NOT_JSON_START = b"#}]:,;=\x01\x02\x7f\x80\xff<>!@%&*()"


class FuzzError(FFKitError):
    """The board did not answer a request the fuzzer needs (HELLO, STATS)."""


class Target:
    """What the fuzzed board serves: features, classes, the largest feature value, the
    size of its .ffw file, and whether it takes SAMPLES (a window-features model)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.nf, self.nc, self.in_max = cfg.n_features, cfg.n_classes, cfg.in_max
        self.file_size = ffw.file_size(cfg)
        self.windows = cfg.n_features == WINDOW_FEATURES and cfg.in_max == 255


def _x(vals):
    return struct.pack("<%dh" % len(vals), *vals)


def _feats_ok(body, o, n, in_max):
    for j in range(n):
        v = struct.unpack_from("<h", body, o + 2 * j)[0]
        if not 0 <= v <= in_max:
            return False
    return True


def expected_status(t, body, tg):
    """The ERROR status a board serving target tg (`Target`: no export or import open,
    learning on) must answer request (t, body) with; None when it might carry it out."""
    n = len(body)
    NF, NC, FILE_SIZE = tg.nf, tg.nc, tg.file_size
    if t not in KNOWN:
        return P.E_UNKNOWN_TYPE
    if t in (P.HELLO, P.INFO, P.STATS, P.REPL, P.CHECKPOINT, P.EXPORT_BEGIN, P.EXPORT_END):
        return P.E_BAD_LENGTH if n else None
    if t == P.PREDICT:
        if n != 2 * NF:
            return P.E_BAD_LENGTH
        return None if _feats_ok(body, 0, NF, tg.in_max) else P.E_BAD_VALUE
    if t == P.LEARN:
        if n != 1 + 2 * NF:
            return P.E_BAD_LENGTH
        return None if _feats_ok(body, 1, NF, tg.in_max) and body[0] < NC else P.E_BAD_VALUE
    if t == P.STREAM:
        k = body[0] if n else 0
        per = 1 + 2 * NF
        if n != 1 + k * per:
            return P.E_BAD_LENGTH
        for i in range(k):
            y = body[1 + i * per]
            if (y != 0xFF and y >= NC) or not _feats_ok(body, 2 + i * per, NF, tg.in_max):
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
    if t == P.SAMPLES:  # only a window-features model takes samples
        return None if tg.windows else P.E_BAD_STATE
    if t == P.ADAPT:
        # 3 bytes and optional JSON schedules; only a window-features model fits
        if n == 0:
            return None
        return P.E_BAD_LENGTH if n < 3 else None if tg.windows else P.E_BAD_STATE
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

    def __init__(self, seed, target=None):
        self.tg = target if target is not None else Target(Config())
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
        x = [r.randrange(self.tg.in_max + 1) for _ in range(self.tg.nf)]
        if bad:
            for _ in range(r.randrange(1, 4)):
                x[r.randrange(self.tg.nf)] = r.choice([-1, -32768, self.tg.in_max + 1, 255, 32767,
                                               r.randrange(-32768, 0),
                                               r.randrange(self.tg.in_max + 1, 32768)])
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
                P.LEARN: lambda: bytes([r.randrange(self.tg.nc)]) + self.feats(),
                P.STREAM: lambda: bytes([2]) + bytes([r.randrange(self.tg.nc)]) + self.feats()
                + b"\xff" + self.feats(),
                P.EXPORT_CHUNK: lambda: struct.pack(transfer.EXPORT_CHUNK_BODY,
                                                    512 * r.randrange(63), 512),
                P.IMPORT_BEGIN: lambda: struct.pack(transfer.BEGIN, self.tg.file_size,
                                                    r.getrandbits(32)),
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
            right = {P.PREDICT: 2 * self.tg.nf, P.LEARN: 1 + 2 * self.tg.nf, P.EXPORT_CHUNK: 6,
                     P.IMPORT_BEGIN: 8, P.RESET: 1, P.SLEEP: 2}.get(t, 0)
            if t == P.STREAM:  # a count that does not match the samples sent
                n = r.choice([0, 1, 2, 1 + 2 * self.tg.nf, 1 + (1 + 2 * self.tg.nf) + 1,
                              r.randrange(P.MAX_BODY + 1)])
                body = bytearray(self.rbytes(n))
                if n:
                    body[0] = r.randrange(5)
                    if n == 1 + body[0] * (1 + 2 * self.tg.nf):
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
                    return P.LEARN, bytes([r.randrange(self.tg.nc, 256)]) + self.feats()
                return P.LEARN, bytes([r.randrange(256)]) + self.feats(bad=True)
            if which == 1:
                return P.PREDICT, self.feats(bad=True)
            if which == 2:   # STREAM: one bad sample spoils the batch
                k = r.randrange(1, 5)
                bad = r.randrange(k)
                body = bytearray([k])
                for i in range(k):
                    if i == bad and r.random() < 0.5:
                        body += bytes([r.randrange(self.tg.nc, 255)]) + self.feats()
                    else:
                        body += bytes([r.choice([0xFF, r.randrange(self.tg.nc)])]) \
                            + self.feats(bad=i == bad)
                return P.STREAM, bytes(body)
            if which == 3:
                return P.RESET, bytes([r.randrange(3, 256)])
            if which == 4:   # SET: refused settings, or bytes that are not JSON
                if r.random() < 0.5:
                    return P.SET, r.choice(BAD_SETS)
                return P.SET, bytes([r.choice(NOT_JSON_START)]) + self.rbytes(r.randrange(80))
            return P.IMPORT_BEGIN, struct.pack(transfer.BEGIN,
                                               r.randrange(self.tg.file_size + 1, 1 << 32),
                                               r.getrandbits(32))
        # bad_state: transfer requests without their session
        t = r.choice([P.EXPORT_CHUNK, P.IMPORT_CHUNK, P.IMPORT_COMMIT])
        if t == P.EXPORT_CHUNK:
            return t, struct.pack(transfer.EXPORT_CHUNK_BODY, r.randrange(self.tg.file_size),
                                  r.randrange(1, 513))
        if t == P.IMPORT_CHUNK:
            return t, struct.pack("<I", r.choice([0, r.randrange(self.tg.file_size)])) \
                + self.rbytes(r.randrange(513))
        return t, b""

    def raw_wire(self, raw):
        out = bytearray(len(raw) + len(raw) // 254 + 2)
        return bytes(out[:P.cobs_encode_into(raw, len(raw), out)])

    def make(self, kind):
        r = self.rng
        if kind in ("unknown_type", "bad_length", "bad_value", "bad_state"):
            t, body = self.refused_request(kind)
            return proto_host.encode_frame(t, self.next_seq(t), body)
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
                return proto_host.encode_frame(t, r.randrange(256), body)
            return self.rbytes(P.MAX_RAW + r.randrange(1, 400), nonzero=True) + b"\x00"
        if kind == "too_short":
            return self.raw_wire(self.rbytes(r.randrange(1, 6)))
        if kind == "random_bytes":
            return self.rbytes(r.randrange(1, 300)) + b"\x00"
        wire = bytearray(proto_host.encode_frame(*self._base()))
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
            body += proto_host.encode_frame(*self._base())[:-1]
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
                want = expected_status(t, body, self.tg)
                if want is None or (t, seq) == last:
                    ok = False   # might be carried out, or answered from the cache
                    continue
                good.append((seq, want, t, body))
                last = (t, seq)
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

    def send(self, t, body=b""):
        """One request with a fresh seq: (seq, the next frame or None after ANSWER_S)."""
        seq = self.fz.next_seq(t)
        self.fz.last = (t, seq)
        self.link.write(proto_host.encode_frame(t, seq, body))
        return seq, self.next_frame(ANSWER_S)

    def request(self, t, body=b""):
        """A request that must succeed (HELLO, STATS); returns its body."""
        seq, got = self.send(t, body)
        if got is None:
            raise FuzzError("no answer to %s" % proto_host.NAMES[t])
        if got[:2] != (t | P.RESPONSE, seq):
            raise FuzzError("%s answered %r" % (proto_host.NAMES[t], got[:2]))
        return got[2]


# ---- a run against a board -------------------------------------------------------------------

_STATE_COUNTERS = ("learn_steps", "predictions", "labelled")
_MAX_NOTES = 3


_END_TRIES = 3   # tries of a state-check request refused for want of heap


def _settled(fn, rep):
    """fn() retried when the board refuses it for want of heap: the board must recover
    from a MemoryError (the end check calls it wedged when it does not); each refusal
    is counted like any other."""
    for attempt in range(_END_TRIES):
        try:
            return fn()
        except FFKitError as e:
            if "MemoryError" not in str(e) or attempt == _END_TRIES - 1:
                raise
            rep.out_of_memory += 1


def _settings(board):
    return board.set()  # SET {}: changes nothing, answers every setting in force


class _Report:
    def __init__(self):
        self.counts = {"crashes": 0, "hangs": 0, "unexpected_answers": 0,
                       "state_changes_unexpected": 0, "wedged": 0}
        self.notes = []
        self.out_of_memory = 0
        self.imports = 0

    def fail(self, what, text):
        self.counts[what] += 1
        if self.counts[what] <= _MAX_NOTES:   # the first few of each kind
            self.notes.append("%s: %s" % (what, text))


def _episode(raw, tg, rng, rep, where):
    """The abandoned-session sequence (module docstring); False when the board is gone."""
    crc = rng.getrandbits(32)
    steps = [(P.IMPORT_BEGIN, struct.pack(transfer.BEGIN, tg.file_size, crc)),
             (P.IMPORT_CHUNK, struct.pack("<I", 0) + bytes(rng.randrange(256)
                                                           for _ in range(256))),
             (P.SAMPLES, b"\x02\x00" + bytes(12)),
             (P.LOG, bytes([5]))]
    for t, body in steps:   # any answer will do, but an answer must come
        if raw.send(t, body)[1] is None:
            rep.fail("hangs", "%s: no answer to %s" % (where, proto_host.NAMES[t]))
            return False
    deadline = time.monotonic() + WEDGE_S
    status = None
    while True:
        seq, got = raw.send(P.INFO)
        if got is None:
            rep.fail("hangs", "%s: no answer to INFO" % where)
            return False
        if got[:2] == (P.INFO | P.RESPONSE, seq):
            break
        status = got[2][1:].decode("utf-8", "replace") if got[0] == P.ERROR else repr(got)
        if time.monotonic() > deadline:
            rep.fail("wedged", "%s: INFO still answers %s after %.0f s"
                     % (where, status, WEDGE_S))
            break
        time.sleep(0.5)
    got = raw.send(P.IMPORT_COMMIT)[1]
    if got is None:
        rep.fail("hangs", "%s: no answer to IMPORT_COMMIT" % where)
        return False
    if got[0] != P.ERROR:
        rep.fail("unexpected_answers", "%s: an IMPORT_COMMIT with a wrong CRC answered %r"
                 % (where, got[:2]))
    return True


def _reimport(raw, data, rep, where):
    """A valid import of the board's own weights (IMPORT_BEGIN, chunks, COMMIT): it must
    succeed or be refused for want of heap; the end check finds any change. Returns
    False when the board is gone."""
    def call(t, body):
        seq, got = raw.send(t, body)
        if got is None:
            rep.fail("hangs", "%s: no answer to %s (a valid import)" % (where, proto_host.NAMES[t]))
            return None
        if got[:2] == (t | P.RESPONSE, seq):
            return True
        if got[:2] == (P.ERROR, seq) and got[2][0] == P.E_INTERNAL \
                and bytes(got[2][1:13]) == b"MemoryError:":
            rep.out_of_memory += 1
            return False
        rep.fail("unexpected_answers", "%s: %s of a valid import answered %r %r"
                 % (where, proto_host.NAMES[t], got[:2], bytes(got[2][:60])))
        return False

    ok = call(P.IMPORT_BEGIN, struct.pack(transfer.BEGIN, len(data), crc32(data)))
    off = 0
    while ok and off < len(data):
        ok = call(P.IMPORT_CHUNK, struct.pack("<I", off) + data[off:off + P.CHUNK])
        off += P.CHUNK
    if ok:
        ok = call(P.IMPORT_COMMIT, b"")
        if ok:
            rep.imports += 1
    return ok is not None


def run_fuzz(link, frames, seed=1, episodes=EPISODE_EVERY, progress=None, console=None,
             imports=False):
    """Fuzz the board on link with `frames` frames (module docstring); returns the report.

    episodes: batches between two abandoned-session episodes (0: none). imports: each
    episode also imports the board's own weights back (valid, changing nothing but the
    board's checkpoint files). console: a callable giving the board's console output for
    messages (virtual boards).
    """
    from ffkit.board.client import Board

    board = Board(link)
    rep = _Report()
    try:
        before = _settled(board.export, rep)
    except FFKitError as e:
        if "MemoryError" in str(e):
            raise FFKitError("the board cannot export its weights at this heap (%s); the "
                             "fuzzer compares them before and after: give it more heap"
                             % e) from None
        raise
    tg = Target(_cfg_of(before))
    try:
        settings = _settled(lambda: _settings(board), rep)
    except FFKitError as e:
        if "MemoryError" not in str(e):
            raise
        settings = None   # SET's parser does not fit this heap: the weights file holds
        #                   the learning settings, the export comparison covers them
    info = _settled(board.info, rep)
    fz = Fuzzer(seed, tg)
    raw = Raw(link, fz)
    s0 = json.loads(raw.request(P.STATS))
    rng = random.Random(seed ^ 0x5EED)
    t0 = time.monotonic()
    sent = good = bad = hellos = batches = n_episodes = 0
    alive = True
    while sent < frames and alive:
        batch = bytearray()
        want = []
        k = 0
        while k < BATCH and sent + k < frames and len(batch) < BATCH_BYTES:
            kind, wire, g, nb = fz.unit()
            batch += wire
            want += [(s, st, t, body, kind) for s, st, t, body in g]
            bad += nb
            k += 1
        hseq = fz.next_seq(P.HELLO)
        fz.last = (P.HELLO, hseq)
        batch += proto_host.encode_frame(P.HELLO, hseq, b"")
        link.write(bytes(batch))
        where = "seed %d, frames %d..%d" % (seed, sent, sent + k)
        lost = False
        for seq, st, t, body, kind in want:
            got = raw.next_frame(ANSWER_S)
            if got is None:
                rep.fail("hangs", "%s: no answer to %s request 0x%02x seq %d body %r%s"
                         % (where, kind, t, seq, body[:40], console() if console else ""))
                lost = True
                break
            if got[:2] == (P.ERROR, seq) and got[2][0] == P.E_INTERNAL \
                    and bytes(got[2][1:13]) == b"MemoryError:":
                # refused for want of heap: allowed, counted; the episodes check that the
                # board recovers, and the end that nothing changed
                rep.out_of_memory += 1
                continue
            if got[:2] != (P.ERROR, seq) or got[2][0] != st:
                rep.fail("unexpected_answers", "%s: %s request 0x%02x seq %d body %r "
                         "answered %r %r, not status %d" % (where, kind, t, seq, body[:40],
                                                          got[:2], got[2][:60], st))
        if not lost:
            got = raw.next_frame(ANSWER_S)
            while got is not None and got[:2] != (P.HELLO | P.RESPONSE, hseq):
                got = raw.next_frame(ANSWER_S)   # past answers that came out of step
        if lost or got is None:
            # resynchronise: a fresh HELLO must be answered, else the board is gone
            try:
                raw.buf, raw.pos = b"", 0
                raw.request(P.HELLO)
            except FuzzError:
                rep.fail("crashes", "%s: the board stopped answering HELLO%s"
                         % (where, console() if console else ""))
                alive = False
        sent += k
        good += len(want)
        hellos += 1
        batches += 1
        if alive and episodes and batches % episodes == 0:
            n_episodes += 1
            alive = _episode(raw, tg, rng, rep, where)
            if alive and imports:
                alive = _reimport(raw, before, rep, where)
        if progress:
            progress(sent, frames)
    seconds = time.monotonic() - t0
    changed = []

    def settled(fn):
        return _settled(fn, rep)

    if alive:
        try:
            s1 = json.loads(settled(lambda: raw.request(P.STATS)))
            if s1["bad_frames"] - s0["bad_frames"] != bad:
                changed.append("STATS bad_frames grew by %d, %d bad frames were sent"
                               % (s1["bad_frames"] - s0["bad_frames"], bad))
            changed += ["STATS %s %s -> %s" % (k, s0[k], s1[k])
                        for k in _STATE_COUNTERS if s1[k] != s0[k]]
            board = Board(link)
            if settled(board.export) != before:
                changed.append("the weights")
            if settings is not None and settled(lambda: _settings(board)) != settings:
                changed.append("the settings")
            if settled(board.info)["step"] != info["step"]:
                changed.append("the step")
        except (FFKitError, OSError) as e:
            rep.fail("wedged" if "MemoryError" in str(e) else "crashes",
                     "after the run: %s" % e)
    for c in changed:
        rep.fail("state_changes_unexpected", c)
    out = {"frames": sent, "seed": seed, "seconds": round(seconds, 1),
           "bad_frames": bad, "errors_answered": good, "hellos": hellos,
           "episodes": n_episodes, "kinds": dict(fz.sent), "not_sent": fz.rejected,
           "model": {"n_features": tg.nf, "n_classes": tg.nc, "in_max": tg.in_max}}
    out.update(rep.counts)
    out["out_of_memory"] = rep.out_of_memory
    out["imports"] = rep.imports
    out["settings_checked"] = settings is not None
    out["failures"] = rep.notes
    out["ok"] = not any(rep.counts.values())
    return out


def _cfg_of(data):
    from ffkit.board.client import check_ffw
    return check_ffw(data, what="the board's export")


# ---- CLI --------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", help="the board's serial port, or sim://DIR (default: "
                        "$FFKIT_PORT, else the one board found)")
    parser.add_argument("--frames", type=int, default=100000,
                        help="frames sent (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the fuzzer's seed")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds to wait for the board's first answer")
    parser.add_argument("--episodes-every", type=int, default=EPISODE_EVERY, metavar="N",
                        help="an abandoned-session episode after every N batches of %d "
                             "frames (default %%(default)s; 0: none)" % BATCH)
    parser.add_argument("--imports", action="store_true",
                        help="each episode also imports the board's own weights back (a "
                             "valid import: the board writes a checkpoint)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args) -> int:
    from ffkit.board.client import connect

    if args.frames < 1 or args.episodes_every < 0:
        print("ffkit: --frames must be at least 1 and --episodes-every at least 0",
              file=sys.stderr)
        return 2
    bar = progress_bar(args.frames, "fuzz", "frame", enabled=not args.json)

    def progress(n, total):
        bar.total = total
        bar.update(n - bar.n)
    try:
        board = connect(args.port, timeout=args.timeout)
        try:
            rep = run_fuzz(board.link, args.frames, seed=args.seed,
                           episodes=args.episodes_every, progress=progress,
                           imports=args.imports)
        finally:
            board.close()
    except (FFKitError, OSError) as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 2
    finally:
        bar.close()
    if args.json:
        print(json.dumps(rep))
    else:
        print("%d frames in %.1f s (seed %d): %d dropped and counted, %d refused as "
              "expected (%d for want of heap), %d episodes"
              % (rep["frames"], rep["seconds"], rep["seed"], rep["bad_frames"],
                 rep["errors_answered"], rep["out_of_memory"], rep["episodes"]))
        print("crashes %d, hangs %d, unexpected answers %d, unexpected state changes %d, "
              "wedged %d" % tuple(rep[k] for k in ("crashes", "hangs", "unexpected_answers",
                                                    "state_changes_unexpected", "wedged")))
        for n in rep["failures"]:
            print("  " + n)
    return 0 if rep["ok"] else 1
