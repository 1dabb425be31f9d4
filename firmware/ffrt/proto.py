"""The serial protocol: frames, message types, status codes. One module for board and host.

A frame on the wire is COBS(type, seq, body, crc32) followed by a 0x00 delimiter:

    offset  size  content
    0       1     type: a request (0x01..0x3F), its response (request | 0x80) or ERROR
    1       1     seq: chosen by the host, echoed by the board
    2       n     body (at most MAX_BODY bytes; layouts below)
    2+n     4     CRC-32 (IEEE, as zlib.crc32) of bytes 0 .. 2+n, little-endian

COBS removes every 0x00 from the frame, so 0x00 marks frame ends and a receiver that
joins mid-stream, or loses bytes, resynchronises at the next 0x00. Every request gets
exactly one response with its seq: the request's type | 0x80 on success, or ERROR with
body (status u8, message utf-8). A frame whose CRC or COBS is bad is dropped and counted
(its seq cannot be trusted); the host times out and sends the same request again with the
same seq. The board keeps its last response and answers a repeated (type, seq) from that
copy without executing it again, so a lost response never makes a board learn twice.
A host starts every session with HELLO (and a random first seq): HELLO is always
executed and its response replaces the kept one, so a new session is never answered
with the previous session's cached reply.

Bodies (little-endian; "x" is n_features values as int16 each):

    HELLO           -                         -> u8 protocol version, utf-8 firmware version
    INFO            -                         -> utf-8 JSON (firmware, model, step, heap...);
                                                 "model" holds every field an imported
                                                 file must share with the running net
                                                 (n_features, n_classes, layers,
                                                 goodness_from, pipeline)
    PREDICT         x                         -> u8 label, n_classes x i32 goodness
    LEARN           u8 label, x               -> u32 step, L x i32 goodness pos, L x i32 neg
    STREAM          u8 count, count x (i8 label or -1, x)
                                              -> u32 step, count x u8 predicted label
    EXPORT_BEGIN    -                         -> u32 size, u32 the CRC the file stores
    EXPORT_CHUNK    u32 offset, u16 length    -> u32 offset, data
    EXPORT_END      -                         -> -
    IMPORT_BEGIN    u32 size, u32 crc32       -> -
    IMPORT_CHUNK    u32 offset, data          -> u32 offset + len(data) (bytes staged)
    IMPORT_COMMIT   -                         -> u32 step of the committed weights
    CHECKPOINT      -                         -> u32 checkpoint sequence number, u8 slot
    SET             utf-8 JSON {"learning": bool, "lr_shift": int, ...}
                                              -> utf-8 JSON of the settings now in force
    STATS           -                         -> utf-8 JSON counters
    RESET           u8 what (RESET_COUNTERS / RESET_RELOAD / RESET_FRESH)
                                              -> u32 step
    REPL            -                         -> - (then the board hands the port back)
    SAMPLES         u8 flags, u8 k, k x u8 label (0xFF: none), n x (6 x i16 sample)
                                              -> u32 step, k x u8 predicted label
                                                 (raw IMU samples: the board computes the
                                                 window features, predicts, learns;
                                                 ffrt.live_ops has the flags and checks)
    ADAPT           - | u8 per_class, u8 replay, u8 predict (0 goodness, 1 head)
                                              -> u8 per_class, u8 replay, u8 predict,
                                                 u32 windows, u32 RAM bytes (the live
                                                 learner's settings; a body sets them)
    LOG             u8 op, ...                (the session log: ffrt.log_ops)
    SLEEP           u16 n                     -> u16 steps done, u32 step, u32 sleep
                                                 steps since the buffer was emptied,
                                                 u16 guard checks, u16 guard rollbacks
                                                 (n sleep steps on the rehearsal buffer
                                                 now; n = 0 asks; ffrt.sleep)

>>> from ffrt.proto_host import encode_frame
>>> f = encode_frame(HELLO, 7, b"")
>>> f[-1], 0 in f[:-1]
(0, False)
>>> d = Decoder(); [d.feed(b) for b in f][-1] == FRAME_OK, d.type, d.seq, bytes(d.body())
(True, 1, 7, b'')
"""

import struct

from ffrt.crc32 import crc32

try:
    from micropython import const
except ImportError:  # CPython: const() is only a compile-time hint, every one an int
    const = int  # type: ignore[assignment]

PROTOCOL_VERSION = 1

# request types; a response is type | RESPONSE
HELLO = const(0x01)
INFO = const(0x02)
PREDICT = const(0x03)
LEARN = const(0x04)
STREAM = const(0x05)
EXPORT_BEGIN = const(0x06)
EXPORT_CHUNK = const(0x07)
EXPORT_END = const(0x08)
IMPORT_BEGIN = const(0x09)
IMPORT_CHUNK = const(0x0A)
IMPORT_COMMIT = const(0x0B)
CHECKPOINT = const(0x0C)
SET = const(0x0D)
STATS = const(0x0E)
RESET = const(0x0F)
REPL = const(0x10)
SAMPLES = const(0x11)
ADAPT = const(0x12)
LOG = const(0x13)
SLEEP = const(0x14)
RESPONSE = const(0x80)
ERROR = const(0x7F)

RESET_COUNTERS = const(0)  # zero the statistics only
RESET_RELOAD = const(1)    # reload the newest valid checkpoint (as at boot)
RESET_FRESH = const(2)     # fresh weights from the model's seed

# status codes carried by ERROR responses
E_UNKNOWN_TYPE = const(1)   # no such request type
E_BAD_LENGTH = const(2)     # body too short or too long for its type
E_BAD_VALUE = const(3)      # a field out of range (label, feature, JSON setting)
E_BAD_STATE = const(4)      # e.g. a chunk without BEGIN, an offset out of order
E_REFUSED = const(5)        # an imported .ffw was refused (message: the FFWError)
E_STORAGE = const(6)        # the filesystem failed
E_BUSY = const(7)           # an export or import session holds the weights
E_INTERNAL = const(8)       # anything else; the message names it

MAX_BODY = const(600)      # the largest body either side sends (a 512-byte chunk + header)
CHUNK = const(512)         # export/import payload per frame: 0.95 of the wire is payload
HEAD = const(2)            # type, seq
CRC = const(4)
MAX_RAW = const(606)       # HEAD + MAX_BODY + CRC
MAX_WIRE = const(610)      # COBS adds one byte per 254, plus the 0x00 delimiter

# Decoder.feed results
FRAME_OK = const(1)
FRAME_BAD_CRC = const(2)
FRAME_BAD_COBS = const(3)
FRAME_TOO_LONG = const(4)
FRAME_TOO_SHORT = const(5)


class Reply(Exception):
    """Raised by a board's request handler: answer with ERROR, status (E_*) and message."""

    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


def cobs_encode_into(src, n, out):
    """COBS-encode src[0:n] into out followed by 0x00; returns the bytes written.

    out must hold n + n // 254 + 2 bytes.
    """
    code_at = 0
    o = 1
    code = 1
    for i in range(n):
        b = src[i]
        if b:
            out[o] = b
            o += 1
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
    out[code_at] = code
    out[o] = 0
    return o + 1


class Encoder:
    """Builds frames in preallocated buffers (the board's side: no allocation per frame).

    Fill `body` (a memoryview of MAX_BODY bytes), then `frame(type, seq, n)` returns a
    memoryview of the wire bytes, valid until the next call.
    """

    def __init__(self):
        self._raw = bytearray(MAX_RAW)
        self._out = bytearray(MAX_WIRE)
        self._mv_raw = memoryview(self._raw)
        self._mv_out = memoryview(self._out)
        self.body = self._mv_raw[HEAD:HEAD + MAX_BODY]

    def frame(self, ftype, seq, n):
        raw = self._raw
        raw[0] = ftype
        raw[1] = seq
        end = HEAD + n
        struct.pack_into("<I", raw, end, crc32(self._mv_raw[:end]))
        m = cobs_encode_into(raw, end + CRC, self._out)
        return self._mv_out[:m]


class Decoder:
    """A byte-at-a-time COBS frame decoder that reports every frame with a status.

    feed(b) returns None while a frame is incomplete, else one of FRAME_OK, FRAME_BAD_CRC,
    FRAME_BAD_COBS, FRAME_TOO_LONG, FRAME_TOO_SHORT; after FRAME_OK, `type`, `seq` and
    `body()` describe the frame. Bad frames are counted in `errors`, never raised.
    Empty frames (two 0x00 in a row) are ignored: senders may start with 0x00 to flush.
    """

    def __init__(self, size=MAX_RAW):
        self._buf = bytearray(size)
        self._mv = memoryview(self._buf)
        self._size = size
        self.errors = 0
        self.frames = 0
        self.type = 0
        self.seq = 0
        self.length = 0
        self._reset()

    def _reset(self):
        self._n = 0
        self._left = 0      # data bytes left in the current COBS block
        self._code = 0xFF   # code of the current block (0xFF: no implicit zero before next)
        self._over = False

    def feed(self, b):
        if b == 0:
            n = self._n
            if n == 0 and not self._over and self._left == 0:
                self._reset()
                return None
            status = self._finish()
            self._reset()
            if status != FRAME_OK:
                self.errors += 1
            else:
                self.frames += 1
            return status
        if self._left == 0:
            if self._code != 0xFF:
                self._put(0)
            self._code = b
            self._left = b - 1
        else:
            self._put(b)
            self._left -= 1
        return None

    def _put(self, b):
        if self._n < self._size:
            self._buf[self._n] = b
            self._n += 1
        else:
            self._over = True

    def _finish(self):
        if self._over:
            return FRAME_TOO_LONG
        if self._left != 0:
            return FRAME_BAD_COBS
        n = self._n
        if n < HEAD + CRC:
            return FRAME_TOO_SHORT
        end = n - CRC
        got = struct.unpack_from("<I", self._buf, end)[0]
        if crc32(self._mv[:end]) != got:
            return FRAME_BAD_CRC
        self.type = self._buf[0]
        self.seq = self._buf[1]
        self.length = end - HEAD
        return FRAME_OK

    def body(self):
        """The last good frame's body (a memoryview into the decoder's buffer)."""
        return self._mv[HEAD:HEAD + self.length]
