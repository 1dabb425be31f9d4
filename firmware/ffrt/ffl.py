"""The .ffl session log: what a board was asked and what it answered, record by record.

One codec for board and host. A board with logging on (the LOG request, ffrt.log_ops)
appends a record of every request that changed or read its net (the request's own type and
body: raw IMU samples with the labels of their windows, feature vectors, settings,
checkpoints, resets), then an OUTPUT record (the reply: predictions, step; and the
goodness per layer of the last learn step and per label of the last prediction), and
every few requests a DIGEST (step, CRC of the whole state, the net's PRNG). A host
replays the inputs through the same request handlers (ffkit.sessions.replay) and compares every
OUTPUT and DIGEST, so a recorded session is a regression test.

Layout, little-endian:

    header
      0    4   magic b"FFKL"
      4    2   u16 format version (1)
      6    2   u16 header length H (the whole header, its CRC included)
      8    1   u8 v; then v bytes: the firmware version (ffrt.__version__, ascii)
      .    2   u16 s; then s bytes: the model signature (the .ffw signature block: field
               count and every ffrt.model.FIELDS entry, as ffrt.ffw lays it out)
      .    4   u32 state CRC of the net when logging started (the CRC its .ffw file stores)
      .    4   u32 CRC stored in the newest checkpoint's .ffw then (0: no checkpoint)
      .    4   u32 step
      .    4   2 x u16 the net's PRNG state (hi, lo)
      H-4  4   u32 CRC-32 of header bytes 0 .. H-4
    records, one after another
      0    1   u8 type: a request type of ffrt.proto (the input), OUTPUT or DIGEST
      1    2   u16 body length n
      3    4   u32 index: 0, 1, 2, ... in the order the board wrote them
      7    n   body
      7+n  4   u32 CRC-32 of record bytes 0 .. 7+n

    OUTPUT body: u8 request type, u16 r, r bytes of the reply body, then per layer
      i32 last positive and i32 last negative goodness (FFNet.last_pos / last_neg), then
      per label i32 goodness of the last prediction (FFNet.goodness)
    DIGEST body: u32 step, u32 state CRC, 2 x u16 PRNG state

`parse` checks a whole log before anything uses it and raises FFLError naming the byte
offset and the record: bad magic or version, a damaged header, a truncated record, a
CRC that does not match, an index out of order (a record missing, repeated or moved), an
unknown type, a body too short for its type, a firmware version that is not text. An
empty file is refused too.

The board's writer, `Ring`, keeps the log bounded on its filesystem: two segment files
(log_0.bin, log_1.bin) of at most `segment` bytes each; when the one being written is
full the other is emptied and written next, so the newest records survive and the oldest
go. A host that listens reads the records as they come (`Ring.read` from an index) and
keeps the whole session.

>>> import io
>>> h = header(b"0.1.0", b"\\x01", 7, 0, 3, (0, 1))
>>> log = h + record(OUTPUT, 0, b"\\x04\\x00\\x00") + record(DIGEST, 1, bytes(12))
>>> head, recs = parse(log)
>>> head["version"], head["step"], [(r[0], r[1]) for r in recs]
('0.1.0', 3, [(240, 0), (241, 1)])
>>> parse(log[:-1])
Traceback (most recent call last):
...
ffrt.ffl.FFLError: record 1 at byte 51: truncated: 22 bytes of 23
"""

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only; the board never imports typing
    import typing

from ffrt import proto as P
from ffrt.crc32 import crc32

MAGIC = b"FFKL"
VERSION = 1
OUTPUT = 0xF0
DIGEST = 0xF1
REC_HEAD = 7        # type, length, index
DIGEST_BYTES = 12
# input records: the request types of ffrt.proto that a log holds, with their smallest body
INPUTS = {P.PREDICT: 1, P.LEARN: 2, P.STREAM: 1, P.CHECKPOINT: 0, P.SET: 0, P.RESET: 1,
          P.SAMPLES: 2, P.ADAPT: 0, P.SLEEP: 2}
NAMES = {P.PREDICT: "PREDICT", P.LEARN: "LEARN", P.STREAM: "STREAM",
         P.CHECKPOINT: "CHECKPOINT", P.SET: "SET", P.RESET: "RESET", P.SAMPLES: "SAMPLES",
         P.ADAPT: "ADAPT", P.SLEEP: "SLEEP", OUTPUT: "OUTPUT", DIGEST: "DIGEST"}


class FFLError(ValueError):
    """A log that cannot be used; the message names the byte offset and the record."""


def header(version, signature, state_crc, ckpt_crc, step, rng):
    """The header bytes (the layout above)."""
    n = 8 + 1 + len(version) + 2 + len(signature) + 16 + 4
    b = bytearray(n)
    struct.pack_into("<4sHHB", b, 0, MAGIC, VERSION, n, len(version))
    o = 9
    b[o:o + len(version)] = version
    o += len(version)
    struct.pack_into("<H", b, o, len(signature))
    o += 2
    b[o:o + len(signature)] = signature
    o += len(signature)
    struct.pack_into("<IIIHH", b, o, state_crc, ckpt_crc, step, rng[0], rng[1])
    struct.pack_into("<I", b, n - 4, crc32(memoryview(b)[:n - 4]))
    return bytes(b)


def record(rtype, index, body):
    """One record's bytes (the layout above)."""
    b = struct.pack("<BHI", rtype, len(body), index) + bytes(body)
    return b + struct.pack("<I", crc32(b))


def parse_header(data):
    """(dict, length) of the header at the start of data; FFLError if it is not one."""
    n = len(data)
    if n == 0:
        raise FFLError("byte 0: empty log")
    if n < 8 or bytes(data[:4]) != MAGIC:
        raise FFLError("byte 0: not an ffkit log (bad magic)")
    magic, ver, hl = struct.unpack_from("<4sHH", data, 0)
    if ver != VERSION:
        raise FFLError("byte 4: log format version %d (this reader knows %d)" % (ver, VERSION))
    if hl < 8 + 1 + 2 + 16 + 4 or hl > n:
        raise FFLError("byte 6: header length %d, the log has %d bytes" % (hl, n))
    if crc32(memoryview(data)[:hl - 4]) != struct.unpack_from("<I", data, hl - 4)[0]:
        raise FFLError("byte %d: header CRC mismatch" % (hl - 4))
    v = data[8]
    o = 9 + v
    s = struct.unpack_from("<H", data, o)[0] if o + 2 <= hl else hl
    if o + 2 + s + 16 + 4 != hl:
        raise FFLError("byte 8: header fields do not add up to its length %d" % hl)
    sig = bytes(data[o + 2:o + 2 + s])
    o += 2 + s
    state, ckpt, step, r0, r1 = struct.unpack_from("<IIIHH", data, o)
    try:
        version = bytes(data[9:9 + v]).decode()
    except UnicodeError:  # a UnicodeDecodeError is one
        raise FFLError("byte 9: the firmware version is not text (%r)"
                       % bytes(data[9:9 + v])) from None
    return {"version": version, "signature": sig,
            "state_crc": state, "checkpoint_crc": ckpt, "step": step,
            "rng": (r0, r1)}, hl


def parse(data, layers=None):
    """(header dict, [(type, index, body, offset)]) of a whole log, every check first.

    layers: the model's layer count when known (then OUTPUT bodies are checked to hold the
    goodness of every layer)."""
    head, o = parse_header(data)
    n = len(data)
    recs: list = []
    mv = memoryview(data)
    while o < n:
        i = len(recs)
        where = "record %d at byte %d: " % (i, o)
        if n - o < REC_HEAD + 4:
            raise FFLError(where + "truncated: %d bytes of a record head" % (n - o))
        t, ln, idx = struct.unpack_from("<BHI", data, o)
        end = o + REC_HEAD + ln + 4
        if end > n:
            raise FFLError(where + "truncated: %d bytes of %d" % (n - o, end - o))
        if crc32(mv[o:end - 4]) != struct.unpack_from("<I", data, end - 4)[0]:
            raise FFLError(where + "CRC mismatch")
        if idx != i:
            raise FFLError(where + "index %d where %d belongs (a record missing, repeated "
                           "or out of order)" % (idx, i))
        body = bytes(mv[o + REC_HEAD:end - 4])
        if t == OUTPUT:
            if ln < 3 or 3 + struct.unpack_from("<H", body, 1)[0] > ln or \
                    (layers is not None and
                     ln < 3 + struct.unpack_from("<H", body, 1)[0] + 8 * layers):
                raise FFLError(where + "OUTPUT body of %d bytes does not hold its fields" % ln)
        elif t == DIGEST:
            if ln != DIGEST_BYTES:
                raise FFLError(where + "DIGEST body of %d bytes, not %d" % (ln, DIGEST_BYTES))
        elif t in INPUTS:
            if ln < INPUTS[t]:
                raise FFLError(where + "%s body of %d bytes is too short" % (NAMES[t], ln))
        else:
            raise FFLError(where + "unknown record type 0x%02x" % t)
        recs.append((t, idx, body, o))
        o = end
    return head, recs


def output_body(t, reply, reply_len, net):
    """The OUTPUT body for request type t answered with reply[0:reply_len]."""
    nl = net.n_layers
    nc = net.cfg.n_classes
    b = bytearray(3 + reply_len + 8 * nl + 4 * nc)
    b[0] = t
    struct.pack_into("<H", b, 1, reply_len)
    b[3:3 + reply_len] = reply[:reply_len]
    o = 3 + reply_len
    for l in range(nl):
        struct.pack_into("<ii", b, o, net.last_pos[l], net.last_neg[l])
        o += 8
    for c in range(nc):
        struct.pack_into("<i", b, o, net.goodness[c])
        o += 4
    return b


def digest_body(step, state_crc, rng):
    return struct.pack("<IIHH", step, state_crc, rng[0], rng[1])


# ---- the board's bounded writer -------------------------------------------------------------

SEGMENTS = ("log_0.bin", "log_1.bin")
HEAD_FILE = "log_head.bin"


class Ring:
    """The log on a board's filesystem: the header in log_head.bin and the records in two
    segment files of at most `segment` bytes, used in turn (see the module docstring).

    Each segment starts with u32 the index of its first record. `next` is the index of the
    next record, `first` the oldest one still held."""

    def __init__(self, folder, segment=65536):
        self.folder = folder
        self.segment = segment
        self.next = 0
        self.first = 0
        self.cur = 0          # the segment being written
        self._f: "typing.Any" = None
        self._size = 0

    def path(self, name):
        return self.folder + "/" + name if self.folder else name

    def start(self, head):
        """A new log with this header; the old one is gone."""
        self.close()
        with open(self.path(HEAD_FILE), "wb") as f:
            f.write(head)
        for name in SEGMENTS:
            try:
                os.remove(self.path(name))
            except OSError:
                pass
        self.next = self.first = 0
        self._open(0, 0)

    def _open(self, seg, first):
        if self._f is not None:
            self._f.close()
        self.cur = seg
        self._f = open(self.path(SEGMENTS[seg]), "wb")
        self._f.write(struct.pack("<I", first))
        self._size = 4

    def append(self, rtype, body, n=None):
        """Write one record of body[0:n] (all of it if n is None); returns its index."""
        n = len(body) if n is None else n
        if self._size + REC_HEAD + n + 4 > self.segment and self._size > 4:
            other = 1 - self.cur
            self._open(other, self.next)  # the older segment's records are dropped
            self.first = self._first_of(1 - other)
        head = struct.pack("<BHI", rtype, n, self.next)
        mv = memoryview(body)[:n]
        f = self._f
        f.write(head)
        f.write(mv)
        f.write(struct.pack("<I", crc32(mv, crc32(head))))
        self._size += REC_HEAD + n + 4
        self.next += 1
        return self.next - 1

    def _first_of(self, seg):
        try:
            with open(self.path(SEGMENTS[seg]), "rb") as f:
                return struct.unpack("<I", f.read(4))[0]
        except (OSError, ValueError):  # no such segment yet (struct.error is a ValueError)
            return self.next

    def flush(self):
        if self._f is not None:
            self._f.flush()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def header(self):
        with open(self.path(HEAD_FILE), "rb") as f:
            return f.read()

    def read(self, index, out, skip=-1):
        """Whole records from `index` on into out (as many as fit); returns the bytes
        written. FFLError if index is older than `first` (overwritten) or past `next`.
        skip >= 0: the bytes of record `index` alone, from its byte `skip` on (as many as
        fit): a record larger than out is read in parts."""
        if index < self.first or index > self.next:
            raise FFLError("records from %d asked; the ring holds %d .. %d"
                           % (index, self.first, self.next - 1))
        self.flush()
        older = 1 - self.cur
        cur_first = self._first_of(self.cur)
        segs = [self.cur]
        if self._first_of(older) < cur_first and index < cur_first:
            segs.insert(0, older)   # the wanted records start in the older segment
        w = 0
        cap = len(out)
        head = bytearray(REC_HEAD)
        for seg in segs:
            with open(self.path(SEGMENTS[seg]), "rb") as f:
                i = struct.unpack("<I", f.read(4))[0]
                while f.readinto(head) == REC_HEAD:
                    n = head[1] | (head[2] << 8)
                    size = REC_HEAD + n + 4
                    if i < index:
                        f.seek(n + 4, 1)
                        i += 1
                        continue
                    if skip >= 0:  # a part of this record
                        k = min(cap, size - skip)
                        if k <= 0:
                            return 0
                        f.seek(skip - REC_HEAD, 1)
                        return f.readinto(memoryview(out)[:k])
                    if w + size > cap:
                        return w
                    out[w:w + REC_HEAD] = head
                    f.readinto(memoryview(out)[w + REC_HEAD:w + size])
                    w += size
                    i += 1
                    index = i
        return w
