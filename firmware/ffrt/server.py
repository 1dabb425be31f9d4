"""The board's side of the serial protocol (ffrt.proto): every request gets one response.

    srv = Server(net, port, storage)   # port: ffrt.port; storage: ffrt.storage (optional)
    while srv.poll() != LEAVE:         # call it between learn steps: it returns quickly
        ...
    port.close()

`poll` reads what is waiting (at most 128 bytes), answers each frame it completes, and
returns IDLE (nothing arrived), BUSY, or LEAVE (a REPL request was answered, or the input
ended): the caller then closes the port. The board answers with status codes, never
tracebacks: an exception in a request becomes an ERROR (Reply: its status; FFWError:
E_REFUSED; ValueError: E_BAD_VALUE; OSError: E_STORAGE; else E_INTERNAL, each with its
message) and the loop never dies of one. Frames with a bad CRC or COBS are dropped and
counted (STATS bad_frames). The last response is kept: a repeated (type, seq) is answered
from it and not executed again, so a lost response never makes the board learn twice.

While an export is open (EXPORT_BEGIN .. EXPORT_END, or until _SESSION_MS pass without
one of its requests) the weights hold still: LEARN, SET, RESET and IMPORT_COMMIT answer
E_BUSY and STREAM only predicts. The requests live in ffrt.ops (PREDICT, LEARN, STREAM,
SET), ffrt.transfer (EXPORT_*, IMPORT_*) and here (the rest).
"""

import gc
import json
import struct
from array import array

import ffrt
from ffrt import ops, transfer
from ffrt import proto as P
from ffrt.ffw import FFWError
from ffrt.transfer import Reply

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

IDLE = 0
BUSY = 1
LEAVE = 2
_READ = 128          # bytes per poll: frames are answered between learn steps
_SESSION_MS = 30000  # an export or import left alone this long is dropped


def _mem():
    """(free, allocated) heap bytes after a collection; (None, None) on CPython."""
    f = getattr(gc, "mem_free", None)
    gc.collect()
    return (f(), gc.mem_alloc()) if f else (None, None)


class Server:
    """Serves net over port; storage (ffrt.storage.Storage) adds checkpoints; info holds
    extra INFO fields (the board's name...)."""

    def __init__(self, net, port, storage=None, info=None):
        self.net = net
        self.port = port
        self.storage = storage
        self.info = info or {}
        self.dec = P.Decoder()
        self.enc = P.Encoder()
        self.learning = True
        self.export = None       # the open transfer.Export, if any
        self.import_ = None      # the open transfer.Import, if any
        self.x = array("h", [0] * net.cfg.n_features)  # the features of one request
        self._touched = ticks_ms()  # when the open session last saw a request
        self._rbuf = bytearray(_READ)
        self._lt = self._ls = -1  # type and seq of the last request; _wire: its response
        self._wire = None
        self.leave = False
        self.reset_counters()

    def reset_counters(self):
        self.dec.errors = 0
        self.requests = self.learn_steps = self.predictions = self.labelled = self.correct = 0
        self.gpos = array("i", [0] * self.net.n_layers)  # running means of goodness
        self.gneg = array("i", [0] * self.net.n_layers)

    def learning_allowed(self):
        """May the net learn now? (Learning is on and no export holds the weights.)"""
        return self.learning and self.export is None

    # ---- the loop ----------------------------------------------------------------------

    def poll(self):
        """Answer whatever has arrived; IDLE, BUSY or LEAVE (see the module docstring)."""
        self.leave = False
        if (self.export or self.import_) and ticks_diff(ticks_ms(), self._touched) > _SESSION_MS:
            self.export = None
            if self.import_ is not None:
                self.import_.close(True)
                self.import_ = None
        try:
            n = self.port.readinto(self._rbuf)
            if not n:
                return IDLE
            dec = self.dec
            rbuf = self._rbuf
            for i in range(n):
                if dec.feed(rbuf[i]) == P.FRAME_OK:
                    self._request()
                    if self.leave:
                        return LEAVE
        except (EOFError, OSError):  # the input ended, or the other side went away
            return LEAVE
        return BUSY

    def _request(self):
        dec = self.dec
        t = dec.type
        seq = dec.seq
        if t == self._lt and seq == self._ls:
            self.port.write(self._wire)  # a retransmission: answered, not executed again
            return
        self.requests += 1
        self._lt = t
        self._ls = seq
        h = HANDLERS.get(t)
        try:
            if h is None:
                raise Reply(P.E_UNKNOWN_TYPE, "unknown request type 0x%02x" % t)
            wire = self.enc.frame(t | P.RESPONSE, seq, h(self, dec.body()))
        except Exception as e:  # whatever happened, the answer is a status and a message
            st = getattr(e, "status", None)
            if st is None:
                st = P.E_REFUSED if isinstance(e, FFWError) else \
                    P.E_BAD_VALUE if isinstance(e, ValueError) else \
                    P.E_STORAGE if isinstance(e, OSError) else P.E_INTERNAL
            msg = str(e) if st != P.E_INTERNAL else "%s: %s" % (type(e).__name__, e)
            m = msg.encode()[:P.MAX_BODY - 1]
            b = self.enc.body
            b[0] = st
            b[1:1 + len(m)] = m
            wire = self.enc.frame(P.ERROR, seq, 1 + len(m))
        self._wire = wire
        self.port.write(wire)

    # ---- for the requests --------------------------------------------------------------

    def need(self, body, n):
        """Refuse a body that is not n bytes long (E_BAD_LENGTH)."""
        if len(body) != n:
            raise Reply(P.E_BAD_LENGTH, "%s takes %d body bytes, got %d"
                        % (P.NAMES[self.dec.type], n, len(body)))

    def still(self):
        """Refuse to change the weights while an export reads them (E_BUSY)."""
        if self.export is not None:
            raise Reply(P.E_BUSY, "an export holds the weights (EXPORT_END first)")

    def touch(self):
        self._touched = ticks_ms()

    def reply_json(self, obj):
        b = json.dumps(obj).encode()
        if len(b) > P.MAX_BODY:
            raise Reply(P.E_INTERNAL, "a %d-byte answer is over MAX_BODY" % len(b))
        self.enc.body[:len(b)] = b
        return len(b)

    def reply_step(self):
        struct.pack_into("<I", self.enc.body, 0, self.net.step)
        return 4


# ---- the requests not in ops or transfer (each fills srv.enc.body, returns its length) ----

def _hello(srv, body):
    srv.need(body, 0)
    v = ffrt.__version__.encode()
    srv.enc.body[0] = P.PROTOCOL_VERSION
    srv.enc.body[1:1 + len(v)] = v
    return 1 + len(v)


def _info(srv, body):
    srv.need(body, 0)
    cfg = srv.net.cfg
    free, alloc = _mem()
    d = {"firmware": ffrt.__version__, "protocol": P.PROTOCOL_VERSION,
         "model": {"n_features": cfg.n_features, "n_classes": cfg.n_classes,
                   "layers": list(cfg.layers)},
         "step": srv.net.step, "learning": srv.learning, "mem_free": free, "mem_alloc": alloc,
         "checkpoint": srv.storage.seq if srv.storage else None}
    d.update(srv.info)
    return srv.reply_json(d)


def _stats(srv, body):
    srv.need(body, 0)
    return srv.reply_json({
        "requests": srv.requests, "bad_frames": srv.dec.errors,
        "learn_steps": srv.learn_steps, "predictions": srv.predictions,
        "labelled": srv.labelled, "correct": srv.correct,
        "goodness_pos": list(srv.gpos), "goodness_neg": list(srv.gneg),
        "mem_free": _mem()[0]})


def _checkpoint(srv, body):
    srv.need(body, 0)
    if srv.storage is None:
        raise Reply(P.E_STORAGE, "this board has no checkpoint storage")
    seq, slot = srv.storage.save(srv.net)
    struct.pack_into("<IB", srv.enc.body, 0, seq, slot)
    return 5


def _reset(srv, body):
    srv.need(body, 1)
    what = body[0]
    if what == P.RESET_COUNTERS:
        srv.reset_counters()
    elif what == P.RESET_FRESH:
        srv.still()
        srv.net.reset()
    elif what == P.RESET_RELOAD:
        srv.still()
        if srv.storage is None or srv.storage.load_newest(srv.net) is None:
            raise Reply(P.E_BAD_STATE, "no valid checkpoint to reload")
    else:
        raise Reply(P.E_BAD_VALUE, "RESET takes 0 (counters), 1 (reload) or 2 (fresh)")
    return srv.reply_step()


def _repl(srv, body):
    srv.need(body, 0)
    srv.leave = True
    return 0


HANDLERS = {P.HELLO: _hello, P.INFO: _info, P.STATS: _stats, P.CHECKPOINT: _checkpoint,
            P.RESET: _reset, P.REPL: _repl}
HANDLERS.update(ops.HANDLERS)
HANDLERS.update(transfer.HANDLERS)
