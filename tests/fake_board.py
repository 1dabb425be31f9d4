"""A stand-in board for host tests: ffrt.proto semantics over an FFNet, with fault knobs.

Runs in CPython (tests/test_client.py drives it over a socketpair) and in the MicroPython
unix port (tests/test_sim.py flashes it into a virtual board's folder as main.py, to test
the pty plumbing apart from the real firmware). It follows proto.py's docstring: one
response per request, ERROR with a status code, the last response replayed for a repeated
(type, seq), staged imports committed only after every check.

Fault knobs (CPython): drop_responses (drop the next n responses after executing),
corrupt_responses (flip a byte in the next n), delay (seconds before answering).
`executed` counts executions per request type.
"""

import json
import struct
import sys

from ffrt import ffw, proto
from ffrt import proto_host
from ffrt import ffw_ram
from ffrt.crc32 import crc32
from ffrt.model import Config
from ffrt.net import FFNet

FIRMWARE = "fake-0"


class FakeBoard:
    def __init__(self, net=None):
        self.net = net if net is not None else FFNet(Config(n_features=4, n_classes=3,
                                                            in_max=15, layers=(8,)))
        self.dec = proto.Decoder()
        self.enc = proto.Encoder()
        self.last_key = None
        self.last_resp = None
        self.executed = {}
        self.drop_responses = 0
        self.corrupt_responses = 0
        self.delay = 0
        self.learning = True
        self.export = None
        self.staged = None
        self.staged_want = None
        self.checkpoints = 0
        self.repl_requested = False
        self.counters = {"requests": 0, "bad_frames": 0, "replayed": 0}

    # bytes in -> bytes out
    def feed(self, data):
        out = b""
        for b in data:
            st = self.dec.feed(b)
            if st is None:
                continue
            if st != proto.FRAME_OK:
                self.counters["bad_frames"] += 1
                continue
            out += self.on_frame(self.dec.type, self.dec.seq, bytes(self.dec.body()))
        return out

    def on_frame(self, ftype, seq, body):
        key = (ftype, seq)
        if key == self.last_key:
            self.counters["replayed"] += 1
            resp = self.last_resp
        else:
            self.counters["requests"] += 1
            self.executed[ftype] = self.executed.get(ftype, 0) + 1
            try:
                rbody = self.handle(ftype, body)
                rtype = ftype | proto.RESPONSE
            except BoardError as e:
                rtype = proto.ERROR
                rbody = bytes([e.status]) + e.message.encode()
            resp = proto_host.encode_frame(rtype, seq, rbody)
            self.last_key, self.last_resp = key, resp
        if self.drop_responses:
            self.drop_responses -= 1
            return b""
        if self.corrupt_responses:
            self.corrupt_responses -= 1
            r = bytearray(resp)
            r[len(r) // 2] ^= 0x55 if r[len(r) // 2] != 0x55 else 0x11
            return bytes(r)
        return resp

    def _x(self, body, off):
        n = self.net.cfg.n_features
        if len(body) < off + 2 * n:
            raise BoardError(proto.E_BAD_LENGTH, "x needs %d bytes" % (2 * n))
        x = list(struct.unpack_from("<%dh" % n, body, off))
        for v in x:
            if v < 0 or v > self.net.cfg.in_max:
                raise BoardError(proto.E_BAD_VALUE, "feature out of range")
        return x

    def info(self):
        return {"firmware": FIRMWARE, "model": self.net.cfg.as_dict(), "step": self.net.step,
                "learning": self.learning}

    def handle(self, t, body):
        net = self.net
        if t == proto.HELLO:
            return bytes([proto.PROTOCOL_VERSION]) + FIRMWARE.encode()
        if t == proto.INFO:
            return json.dumps(self.info()).encode()
        if t == proto.PREDICT:
            x = self._x(body, 0)
            label = net.predict_one(x)
            return bytes([label]) + struct.pack("<%di" % len(net.goodness), *net.goodness)
        if t == proto.LEARN:
            if not body:
                raise BoardError(proto.E_BAD_LENGTH, "no label")
            y = body[0]
            x = self._x(body, 1)
            if y >= net.cfg.n_classes:
                raise BoardError(proto.E_BAD_VALUE, "label %d" % y)
            net.learn_one(x, y)
            L = net.n_layers
            return struct.pack("<I%di" % (2 * L), net.step, *(list(net.last_pos)
                                                             + list(net.last_neg)))
        if t == proto.STREAM:
            count = body[0]
            per = 1 + 2 * net.cfg.n_features
            if len(body) != 1 + count * per:
                raise BoardError(proto.E_BAD_LENGTH, "stream body")
            preds = bytearray()
            for i in range(count):
                off = 1 + i * per
                y = struct.unpack_from("<b", body, off)[0]
                x = self._x(body, off + 1)
                preds.append(net.predict_one(x))
                if y >= 0 and self.learning:
                    net.learn_one(x, y)
            return struct.pack("<I", net.step) + bytes(preds)
        if t == proto.EXPORT_BEGIN:
            self.export = bytes(ffw_ram.encode(net))
            return struct.pack("<II", len(self.export), crc32(self.export[:-4]))
        if t == proto.EXPORT_CHUNK:
            if self.export is None:
                raise BoardError(proto.E_BAD_STATE, "no export")
            off, n = struct.unpack("<IH", body)
            return struct.pack("<I", off) + self.export[off:off + min(n, proto.CHUNK)]
        if t == proto.EXPORT_END:
            self.export = None
            return b""
        if t == proto.IMPORT_BEGIN:
            size, crc = struct.unpack("<II", body)
            self.staged = bytearray()
            self.staged_want = (size, crc)
            return b""
        if t == proto.IMPORT_CHUNK:
            if self.staged is None:
                raise BoardError(proto.E_BAD_STATE, "chunk without IMPORT_BEGIN")
            off = struct.unpack_from("<I", body)[0]
            if off != len(self.staged):
                raise BoardError(proto.E_BAD_STATE, "offset %d, expected %d"
                                 % (off, len(self.staged)))
            self.staged += body[4:]
            return struct.pack("<I", len(self.staged))
        if t == proto.IMPORT_COMMIT:
            if self.staged is None:
                raise BoardError(proto.E_BAD_STATE, "nothing staged")
            data, (size, crc) = bytes(self.staged), self.staged_want
            self.staged = None
            if len(data) != size or crc32(data) != crc:
                raise BoardError(proto.E_REFUSED, "size or CRC mismatch")
            try:
                ffw_ram.load_into(net, data)
            except ffw.FFWError as e:
                raise BoardError(proto.E_REFUSED, str(e))
            return struct.pack("<I", net.step)
        if t == proto.CHECKPOINT:
            self.checkpoints += 1
            return struct.pack("<IB", self.checkpoints, self.checkpoints & 1)
        if t == proto.SET:
            s = json.loads(body)
            if "learning" in s:
                self.learning = bool(s["learning"])
            return json.dumps({"learning": self.learning}).encode()
        if t == proto.STATS:
            return json.dumps(self.counters).encode()
        if t == proto.RESET:
            if body[0] == proto.RESET_FRESH:
                net.reset()
            return struct.pack("<I", net.step)
        if t == proto.REPL:
            self.repl_requested = True
            return b""
        raise BoardError(proto.E_UNKNOWN_TYPE, "type %d" % t)


class BoardError(Exception):
    def __init__(self, status, message):
        self.status = status
        self.message = message


def serve_stdio(board=None):
    """The board's main loop on stdin/stdout (MicroPython unix port, raw pty)."""
    import micropython
    micropython.kbd_intr(-1)
    board = board or FakeBoard()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        b = inp.read(1)
        if not b:
            return
        r = board.feed(b)
        if r:
            out.write(r)
        if board.repl_requested:
            micropython.kbd_intr(3)
            return
