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
HELLO starts a host session: it is always executed, and its response replaces the kept
one, so no request of a new session is ever answered with the previous session's reply.

While an export is open (EXPORT_BEGIN .. EXPORT_END, or until _SESSION_S pass without
one of its requests) the weights hold still: LEARN, SET, RESET and IMPORT_COMMIT answer
E_BUSY and STREAM only predicts.

The requests live in modules of their own besides HELLO and REPL here: ffrt.ops (INFO,
STATS, CHECKPOINT, RESET: small, see below), ffrt.net_ops (PREDICT, LEARN, STREAM, SET),
ffrt.transfer (EXPORT_*, IMPORT_*), ffrt.live_ops (SAMPLES, ADAPT: raw sensor samples to
the live learner `srv.live`, an ffrt.live.LiveLearner set on first use; until then the
server has no such attribute, which keeps the small-heap run of tests/test_server.py
within its heap), ffrt.log_ops (LOG: the session log, `srv.log`, likewise set on first
use; every request that ran is handed to it), and ffrt.sleep_ops (SLEEP: the live learner
sleeps, ffrt.sleep). Each is loaded on its first request; once no export or import is
open, loading transfer drops ops, net_ops and live_ops, loading live_ops drops the other
three, and loading ops or net_ops drops transfer and live_ops (`unload`). Measured in the
unix port (tools/serve_bench.py), holding the request code and transfer together costs
about 7 KB more at the peak of an import, which is what sets the smallest heap the
firmware runs in; dropping it while samples stream (and live_ops at each RESET) takes
3 KB off the heap streaming needs (tests/test_stream.py).

A full heap does not wedge the board (tests/test_wedge.py, `ffkit fuzz` at the smallest
heap it boots in): after a MemoryError the server frees what it can (`Server.free`: the
open export or import is dropped, a running log stops and its code is unloaded, the
request modules are unloaded, and what a failed import left), so INFO and RESET answer
again. They live in ops, apart from the learning requests and small, because unloading a
module from `.mpy` leaves its interned names behind (about 5 KB once every kind of
request has been served): where the heap is short, ops still finds room to load.
ffrt.app does not serve at all with less free heap after boot than serving takes
(ffrt.app.SERVE_NEED). A request module is not loaded without the free heap it takes
(`ffrt.room`), since an import that runs out of heap half-way keeps some of what it
built. An export or import left alone for _SESSION_S is dropped with its
code.
"""

import gc
import struct
import sys
from array import array
from time import time

import ffrt
from ffrt import proto as P
from ffrt import room, unload
from ffrt.proto import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:  # for the annotation of Server.live; the board never imports it here
    from ffrt.live import LiveLearner

IDLE = 0
BUSY = 1
LEAVE = 2
_READ = 128          # bytes per poll: frames are answered between learn steps
_SESSION_S = 30      # an export or import left alone this long (seconds) is dropped
# the heap's headroom (INFO mem_free_min): gc.mem_free after a request, no collection first,
# so garbage counts as used and the least reading is a lower bound (None: CPython). Not
# after the per-step requests (PREDICT, LEARN, STREAM, SAMPLES): a reading walks the whole
# heap (0.2 ms on the unix port's 2 MB, 0.6 M instructions on a 192 KB Cortex-M0) and their
# steps allocate nothing (what a first SAMPLES sets up stays, for the next reading to see);
# INFO adds its own, after a collection.
_MEM_FREE = getattr(gc, "mem_free", None)
# the `need` of each request module in Server._handler: units of free heap (ffrt.room)


class Server:
    """Serves net over port; storage (ffrt.storage.Storage) adds checkpoints; info holds
    extra INFO fields (the board's name...)."""

    # the live learner, once ffrt.live_ops or ffrt.app sets it (declared for type checkers
    # only: a bare annotation compiles to nothing in MicroPython)
    live: "LiveLearner"

    def __init__(self, net, port, storage=None, info=None):
        self.net = net
        self.port = port
        self.storage = storage
        self.info = info or {}
        self.dec = P.Decoder()
        self.enc = P.Encoder()
        self.learning = True
        self.export = None       # the open export (transfer: size, stored CRC), if any
        self.import_ = None      # the open transfer.Import, if any
        self.x = array("h", [0] * net.cfg.n_features)  # the features of one request
        self._touched = time()   # when the open session last saw a request
        self._rbuf = bytearray(_READ)
        self._lt = self._ls = -1  # type and seq of the last request; _wire: its response
        self._wire = None
        self.leave = False
        self.mem_low = -1        # the least _MEM_FREE() read after a request (-1: none yet)
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
        if (self.export or self.import_) and time() - self._touched > _SESSION_S:
            self.free(False)
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

    def free(self, full=True):
        """Drop the open export or import and unload its code (an expired session); full
        (after a MemoryError): also stop a running log and unload its code (the next LOG
        request reopens it from its files, for reading), unload the request modules and
        what a failed import may have left (the live learner's unless one is set), so the
        next request has the heap it had after boot. (Keeping ops loaded for INFO was
        tried: it left the heap too broken up for an import's commit at 102K.)"""
        self.export = None
        if self.import_ is not None:
            self.import_.close(True)
            self.import_ = None
        unload("transfer")
        if full:
            lg = getattr(self, "log", None)
            if lg is not None:   # stopped, and readable again from its files (log_ops)
                self.log_kept = lg.keep(self)
                self.log = None
            unload("log_ops")
            unload("ffl")
            if getattr(self, "live", None) is None:
                unload("live")
                unload("features")
                unload("rehearsal")
            unload("ops")
            unload("net_ops")
            unload("live_ops")
            unload("sleep_ops")
            unload("ffw_write")
            gc.collect()

    def _handler(self, t):
        """The function that answers request type t, loading its module (docstring)."""
        if t == P.HELLO or t == P.REPL:
            return _hello if t == P.HELLO else _repl
        if P.EXPORT_BEGIN <= t <= P.IMPORT_COMMIT:
            name, others, need = "transfer", ("ops", "net_ops", "live_ops"), 8
        elif P.PREDICT <= t <= P.STREAM or t == P.SET:
            name, others, need = "net_ops", ("transfer", "live_ops"), 10
        elif t == P.INFO or P.CHECKPOINT <= t <= P.RESET:
            name, others, need = "ops", ("transfer", "live_ops"), 5
        elif P.SAMPLES <= t <= P.ADAPT:
            name, others, need = "live_ops", ("transfer", "ops", "net_ops"), 16
        elif t == P.LOG:
            name, others, need = "log_ops", (), 28
        elif t == P.SLEEP:
            name, others, need = "sleep_ops", ("transfer", "ops", "net_ops"), 2
        else:
            return None
        if name != "transfer" and (self.export or self.import_):
            others = ()  # a session open: its code stays
        mod = sys.modules.get("ffrt." + name)
        if mod is None:
            for other in others:
                unload(other)
            if others:
                unload("ffw_write")  # an import never needs the writer
            room(need)
            mod = __import__("ffrt." + name, None, None, ("HANDLERS",))
        return mod.HANDLERS.get(t)

    def _request(self):
        dec = self.dec
        t = dec.type
        seq = dec.seq
        # HELLO starts a host session: always executed, it replaces the kept response
        if t != P.HELLO and t == self._lt and seq == self._ls:
            self.port.write(self._wire)  # a retransmission: answered, not executed again
            return
        self.requests += 1
        self._lt = t
        self._ls = seq
        try:
            h = self._handler(t)
            if h is None:
                raise Reply(P.E_UNKNOWN_TYPE, "unknown request type 0x%02x" % t)
            n = h(self, dec.body())
            lg = getattr(self, "log", None)  # set by ffrt.log_ops (LOG START), if at all
            if lg is not None:
                lg.log(self, t, dec.body(), n)
            wire = self.enc.frame(t | P.RESPONSE, seq, n)
        except Exception as e:  # whatever happened, the answer is a status and a message
            if isinstance(e, MemoryError):
                self.free()
            st = getattr(e, "status", None)
            if st is None:
                ffw = sys.modules.get("ffrt.ffw")  # an FFWError needs ffw loaded
                st = P.E_REFUSED if ffw and isinstance(e, ffw.FFWError) else \
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
        if _MEM_FREE is not None and not (P.PREDICT <= t <= P.STREAM or t == P.SAMPLES):
            m = _MEM_FREE()
            if m < self.mem_low or self.mem_low < 0:
                self.mem_low = m

    # ---- for the requests --------------------------------------------------------------

    def need(self, body, n):
        """Refuse a body that is not n bytes long (E_BAD_LENGTH)."""
        if len(body) != n:
            raise Reply(P.E_BAD_LENGTH, "request 0x%02x takes %d body bytes, got %d"
                        % (self.dec.type, n, len(body)))

    def still(self):
        """Refuse to change the weights while an export reads them (E_BUSY)."""
        if self.export is not None:
            raise Reply(P.E_BUSY, "an export holds the weights (EXPORT_END first)")

    def touch(self):
        self._touched = time()

    def reply_step(self):
        struct.pack_into("<I", self.enc.body, 0, self.net.step)
        return 4

    def reply_json(self, obj):
        """obj as the JSON reply (INFO, STATS, SET)."""
        import json
        b = json.dumps(obj).encode()
        if len(b) > P.MAX_BODY:
            raise Reply(P.E_INTERNAL, "a %d-byte answer is over MAX_BODY" % len(b))
        self.enc.body[:len(b)] = b
        return len(b)


# ---- HELLO and REPL (each fills srv.enc.body and returns its length) -----------------------

def _hello(srv, body):
    srv.need(body, 0)
    v = ffrt.__version__.encode()
    srv.enc.body[0] = P.PROTOCOL_VERSION
    srv.enc.body[1:1 + len(v)] = v
    return 1 + len(v)


def _repl(srv, body):
    srv.need(body, 0)
    srv.leave = True
    return 0
