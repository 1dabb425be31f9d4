"""The host side of the serial protocol (ffrt.proto): requests, retries, transfers.

`Board` wraps a `ffkit.board.link.Link`. Each request is one frame with a fresh sequence number;
the reply is the first good frame that echoes it. A reply that does not arrive within the
timeout makes the host send the SAME bytes again (same seq): the board answers a repeated
(type, seq) from its cached response without executing it twice, so a lost reply never
makes a board learn twice. After the retries, BoardTimeout names the request. An ERROR
reply becomes DeviceError(status, message).

    from ffkit.board.client import connect
    with connect("/dev/pts/3") as board:         # or connect() to auto-detect
        print(board.info()["firmware"])
        label, goodness = board.predict(x)
        step, g_pos, g_neg = board.learn(x, y)
        data = board.export(progress=print)      # the board's .ffw, checked on the host
        board.import_weights(data)               # checked on the host, then staged
        step, preds = board.samples(imu_rows, window_labels, learn=True)   # ffkit.sessions.stream
        board.sleep(64)                          # 64 sleep steps (ffrt.sleep)

A session starts by writing one 0x00 (ends any partial frame the board holds) and a HELLO.
HELLO is idempotent, so it is the one request that may harmlessly be answered from a
previous session's cache; after it, the board's cache can never match this session's
next (type, seq). Sequence numbers start at a random value so that replies left in a
buffer by an earlier session are unlikely to carry a seq this session is waiting for
(and a reply must also carry the request's type to count).

Size (over 500 lines): one method per request type of the protocol, with its reply format,
the retries and the chunked transfers.
"""

import json
import random
import struct
import time

from ffrt import live_ops, log_ops, net_ops, ops, proto, sleep_ops, transfer
from ffrt import proto_host
from ffrt.crc32 import crc32
from ffrt.features import windows_done
from ffrt.live import PREDICT_MODES
from ffrt.rehearsal import check_sizes

from ffkit import FFKitError

DEFAULT_TIMEOUT = 1.0   # seconds per attempt
DEFAULT_RETRIES = 3     # resends after the first attempt
SLOW_TIMEOUT = 5.0      # commits and checkpoints write flash
MIN_CHUNK = 32          # transfers shrink their chunks down to this on a lossy line
_GROW_AFTER = 8         # clean chunks in a row before a chunk doubles again
_READ = 1024            # bytes asked of the link per read

# SAMPLES frames: 2 + 1 label + 49 * 12 bytes fit MAX_BODY (fewer than 64 samples complete
# at most one window); 48 by default, four frames to three hops of the windower
MAX_SAMPLES_PER_FRAME = (proto.MAX_BODY - 3) // live_ops.SAMPLE_BYTES
SAMPLES_PER_FRAME = 48
SLEEP_STEP_TIMEOUT = SLOW_TIMEOUT / 4  # a sleep step: about a quarter of a window's work
# record bytes per LOG READ reply (MAX_BODY less its head)
P_LOG_READ = proto.MAX_BODY - struct.calcsize(log_ops.READ_REPLY)
RESET_WHAT = {"counters": proto.RESET_COUNTERS, "reload": proto.RESET_RELOAD,
              "fresh": proto.RESET_FRESH}


# CRC-32 of any data followed by its own CRC (little-endian): what older boards sent
_CRC32_RESIDUE = 0x2144DF1C

class DeviceError(FFKitError):
    """The board answered ERROR: ``status`` (proto.E_*), ``status_name``, ``message``."""

    def __init__(self, status, message, request=None):
        self.status = status
        self.status_name = proto_host.STATUS_NAMES.get(status, "status %d" % status)
        self.message = message
        self.request = request
        where = "board refused %s: " % request if request else "board error: "
        super().__init__(where + self.status_name + (": " + message if message else ""))


class BoardTimeout(FFKitError, TimeoutError):
    """No valid reply to a request after every retry."""


class ProtocolError(FFKitError):
    """A reply that is well framed but does not make sense (wrong length, offsets)."""


class IncompatibleModel(FFKitError):
    """A weight file whose model signature is not the board's."""


class ImportIncomplete(FFKitError):
    """An import the board lost before committing it (it restarted: a power cut, a reset);
    the board holds its previous weights."""


def _name(ftype):
    return proto_host.NAMES.get(ftype, "request 0x%02x" % ftype)


class Board:
    """A protocol session with one board over a Link; see the module docstring.

    timeout: seconds to wait for each attempt's reply; retries: resends after the first.
    hello: send HELLO now (checks the protocol version; also waits out a board that is
    still booting: it is retried like any request, with hello_timeout per attempt).
    """

    sleep_steps = 0  # the steps of a scheduled sleep (ffrt.sleep) set by the last adapt()

    def __init__(self, link, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES, hello=True,
                 hello_timeout=None):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self._seq = random.randrange(256)
        self._dec = proto.Decoder()
        self._pending = b""
        self._info = None
        self.resends = 0      # frames sent again after a timeout
        self.chunk = proto.CHUNK  # transfer payload per frame, adapted to the line
        self._clean = 0
        self.stale = 0        # good frames that answered nothing we waited for
        self.protocol_version = None
        self.firmware = None
        self.link.write(b"\x00")
        if hello:
            self.hello(timeout=hello_timeout)

    # ---- the session --------------------------------------------------------------------

    @property
    def bad_frames(self):
        """Frames dropped by the decoder (bad CRC, bad COBS, too long, too short)."""
        return self._dec.errors

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _next_seq(self):
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def request(self, ftype, body=b"", timeout=None, retries=None):
        """Send one request; return the reply's body (bytes).

        Each attempt waits up to `timeout` seconds (time.monotonic); the whole request at
        most (retries + 1) * timeout. Raises BoardTimeout, DeviceError or LinkError.
        """
        if len(body) > proto.MAX_BODY:
            raise ValueError("%s body has %d bytes, the protocol allows %d"
                             % (_name(ftype), len(body), proto.MAX_BODY))
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        seq = self._next_seq()
        frame = proto_host.encode_frame(ftype, seq, body)
        overall = time.monotonic() + timeout * (retries + 1)
        for attempt in range(retries + 1):
            if attempt:
                self.resends += 1
            self.link.write(frame)
            reply = self._await(ftype, seq, min(time.monotonic() + timeout, overall))
            if reply is not None:
                break
        else:
            raise BoardTimeout(
                "no reply to %s from %s after %d attempt(s) of %.1f s (is the firmware "
                "running? a board in the REPL or busy with another program does not answer)%s"
                % (_name(ftype), self.link.name, retries + 1, timeout, _console_says(self.link)))
        rtype, rbody = reply
        if rtype == proto.ERROR:
            status = rbody[0] if rbody else proto.E_INTERNAL
            raise DeviceError(status, bytes(rbody[1:]).decode("utf-8", "replace"),
                              _name(ftype))
        return rbody

    def _await(self, ftype, seq, deadline):
        """The (type, body) of the reply to (ftype, seq), or None at the deadline."""
        want = ftype | proto.RESPONSE
        dec = self._dec
        while True:
            data = self._pending
            self._pending = b""
            for i, b in enumerate(data):
                if dec.feed(b) != proto.FRAME_OK:
                    continue
                if dec.seq == seq and dec.type in (want, proto.ERROR):
                    self._pending = data[i + 1:]
                    return dec.type, bytes(dec.body())
                self.stale += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._pending = self.link.read(_READ, left)

    # ---- requests -----------------------------------------------------------------------

    def hello(self, timeout=None):
        """HELLO: check the protocol version; returns the firmware version string."""
        body = self.request(proto.HELLO, timeout=timeout)
        if not body:
            raise ProtocolError("empty HELLO reply")
        self.protocol_version = body[0]
        self.firmware = body[1:].decode("utf-8", "replace")
        if self.protocol_version != proto.PROTOCOL_VERSION:
            raise FFKitError("the board speaks protocol version %d, this ffkit speaks %d "
                             "(flash a matching firmware or update ffkit)"
                             % (self.protocol_version, proto.PROTOCOL_VERSION))
        return self.firmware

    def info(self):
        """INFO as a dict (firmware, model, step, heap, ...); also cached in `last_info`."""
        self._info = _json(self.request(proto.INFO), "INFO")
        return self._info

    @property
    def last_info(self):
        return self._info

    def predict(self, x):
        """(label, goodness per label) for one sample of integer features."""
        body = self.request(proto.PREDICT, _pack_x(x))
        n = (len(body) - 1) // 4
        if len(body) != 1 + 4 * n or n < 1:
            raise ProtocolError("PREDICT reply of %d bytes" % len(body))
        label, *goodness = struct.unpack_from(net_ops.PREDICT_REPLY % n, body)
        return label, goodness

    def learn(self, x, y):
        """One learn step: (step after it, goodness of the positive pass per layer, of the
        negative pass per layer)."""
        body = self.request(proto.LEARN, bytes([_label(y, False)]) + _pack_x(x))
        n = (len(body) - 4) // 8
        if len(body) != 4 + 8 * n:
            raise ProtocolError("LEARN reply of %d bytes" % len(body))
        vals = struct.unpack_from(net_ops.LEARN_REPLY % (2 * n), body)
        return vals[0], list(vals[1:1 + n]), list(vals[1 + n:])

    def stream(self, samples, progress=None):
        """Predict-then-learn over samples, (x, y) pairs (y None or -1: predict only).

        Sent in batches as large as MAX_BODY allows. Returns (step after the last batch,
        the predicted label of every sample, in order).
        """
        samples = list(samples)
        preds = []
        step = None
        if not samples:
            return step, preds
        nf = len(samples[0][0])
        per = 1 + 2 * nf
        batch = min(net_ops.STREAM_MAX, (proto.MAX_BODY - 1) // per)
        if batch < 1:
            raise ValueError("a sample of %d features does not fit in one STREAM frame" % nf)
        for i in range(0, len(samples), batch):
            part = samples[i:i + batch]
            body = bytearray([len(part)])
            for x, y in part:
                if len(x) != nf:
                    raise ValueError("samples differ in length (%d and %d)" % (nf, len(x)))
                body += struct.pack("<b", _label(y, True)) + _pack_x(x)
            reply = self.request(proto.STREAM, bytes(body),
                                 timeout=self.timeout + 0.25 * len(part))
            if len(reply) != 4 + len(part):
                raise ProtocolError("STREAM reply of %d bytes for %d samples"
                                    % (len(reply), len(part)))
            step = struct.unpack_from("<I", reply)[0]
            preds.extend(reply[4:])
            if progress is not None:
                progress(min(i + batch, len(samples)), len(samples))
        return step, preds

    def samples(self, samples, labels=(), learn=False, new_session=False,
                clear_buffer=False, timeout=None):
        """One SAMPLES frame: raw int16 samples (n rows of ax ay az gx gy gz) to the board's
        live learner, which computes the window features, predicts each window they
        complete and, with learn, learns the labelled ones (ffrt.live_ops).

        labels: one per window these samples complete (None or -1: no label). new_session
        resets the board's windower first, clear_buffer empties its rehearsal buffer.
        Returns (step after the frame, the predicted label of each completed window).
        """
        flags = ((live_ops.LEARN if learn else 0) | (live_ops.NEW_SESSION if new_session else 0)
                 | (live_ops.CLEAR_BUFFER if clear_buffer else 0))
        lab = bytes(0xFF if _label(y, True) < 0 else y for y in labels)
        body = bytes([flags, len(lab)]) + lab + _pack_samples(samples)
        if timeout is None:  # a window is features, a prediction and learn steps
            timeout = self.timeout + SLOW_TIMEOUT * len(lab)
            if learn and lab:  # one of them may end in a scheduled sleep (ffrt.sleep)
                timeout += SLEEP_STEP_TIMEOUT * self.sleep_steps
        reply = self._live_request(proto.SAMPLES, body, timeout)
        if len(reply) != 4 + len(lab):
            raise ProtocolError("SAMPLES reply of %d bytes for %d window(s)"
                                % (len(reply), len(lab)))
        return struct.unpack_from("<I", reply)[0], list(reply[4:])

    def stream_session(self, samples, window_labels, learn=False, clear_buffer=False,
                       per_frame=SAMPLES_PER_FRAME, progress=None, after_frame=None):
        """A whole session of raw samples in SAMPLES frames, from a reset windower.

        Window k is samples[64 k : 64 k + 128] (ffrt.features); window_labels holds the
        label of each window the samples complete (None or -1: none). Returns (step, the
        prediction of every window, in order). progress(windows done, windows) per frame;
        after_frame() after each frame (a session log drains there: ffkit.sessions.logs).
        """
        n = len(samples)
        nwin = windows_done(n)
        if len(window_labels) != nwin:
            raise ValueError("%d samples make %d windows, got %d labels"
                             % (n, nwin, len(window_labels)))
        if not 0 < per_frame <= MAX_SAMPLES_PER_FRAME:
            raise ValueError("per_frame must be in 1..%d" % MAX_SAMPLES_PER_FRAME)
        preds = []
        step = None
        for a in range(0, max(n, 1), per_frame):
            b = min(n, a + per_frame)
            lo, hi = windows_done(a), windows_done(b)   # those completed in a..b-1
            step, got = self.samples(samples[a:b], window_labels[lo:hi], learn=learn,
                                     new_session=a == 0, clear_buffer=clear_buffer and a == 0)
            preds.extend(got)
            if progress is not None:
                progress(hi, nwin)
            if after_frame is not None:
                after_frame()
        return step, preds

    def adapt(self, per_class=None, replay=1, predict="goodness", lr_shift_schedule=(),
              theta_schedule=(), guard=None, sleep=None):
        """ADAPT: the live learner's settings (a new learner when per_class is given:
        per_class rehearsal samples per class, 0 = none; replay stored samples per new
        one; predict "goodness" or "head"; schedules ((windows learnt, lr_shift), ...)
        and ((windows learnt, (theta per layer)), ...), ffrt.schedule; guard: (every,
        patience, max_pinned_q8, save_every) of an ffrt.guard.Guard, or None; sleep:
        (every, steps, positives) of ffrt.sleep, or None: learn both phases at once). Returns
        the settings in force with the learner's windows since its reset, its RAM bytes,
        the number of entries in each schedule and the guard's checks and rollbacks."""
        body = b""
        if per_class is not None:
            if predict not in PREDICT_MODES:
                raise ValueError("predict must be one of %s" % ", ".join(PREDICT_MODES))
            check_sizes(per_class, replay, 0)
            body = bytes([per_class, replay, PREDICT_MODES.index(predict)])
            sched = {}
            if lr_shift_schedule:
                sched["lr_shift_schedule"] = [[a, v] for a, v in lr_shift_schedule]
            if theta_schedule:
                sched["theta_schedule"] = [[a, list(v)] for a, v in theta_schedule]
            if guard is not None:
                sched["guard"] = list(guard)
            if sleep is not None:
                sched["sleep"] = [sleep[0], sleep[1], 1 if sleep[2] else 0]
            self.sleep_steps = sleep[1] if sleep is not None and sleep[0] else 0
            if sched:
                body += json.dumps(sched, separators=(",", ":")).encode()
        reply = self._live_request(proto.ADAPT, body)
        if len(reply) != struct.calcsize(live_ops.ADAPT_REPLY):
            raise ProtocolError("ADAPT reply of %d bytes" % len(reply))
        pc, rp, pr, windows, ram, n_lr, n_theta, checks, rollbacks = \
            struct.unpack(live_ops.ADAPT_REPLY, reply)
        if pr >= len(PREDICT_MODES):
            raise ProtocolError("ADAPT reply names prediction mode %d" % pr)
        return {"per_class": pc, "replay": rp, "predict": PREDICT_MODES[pr],
                "windows": windows, "ram_bytes": ram, "lr_shift_schedule_entries": n_lr,
                "theta_schedule_entries": n_theta, "guard_checks": checks,
                "guard_rollbacks": rollbacks}

    def sleep(self, n=0):
        """SLEEP (ffrt.sleep): n sleep steps now on the live learner's rehearsal buffer
        (0..1024; 0 only asks). Returns {"steps": done, "step": the net's, "slept": sleep
        steps since the buffer was emptied, "guard_checks", "guard_rollbacks"}."""
        if not 0 <= n <= sleep_ops.MAX_STEPS:
            raise ValueError("sleep steps must be in 0..%d" % sleep_ops.MAX_STEPS)
        reply = self._live_request(proto.SLEEP, struct.pack("<H", n),
                                   self.timeout + SLEEP_STEP_TIMEOUT * n)
        if len(reply) != struct.calcsize(sleep_ops.SLEEP_REPLY):
            raise ProtocolError("SLEEP reply of %d bytes" % len(reply))
        done, step, slept, checks, rollbacks = struct.unpack(sleep_ops.SLEEP_REPLY, reply)
        return {"steps": done, "step": step, "slept": slept, "guard_checks": checks,
                "guard_rollbacks": rollbacks}

    # ---- the session log (LOG, ffrt.log_ops; files: ffkit.sessions.logs) -------------------

    def log_start(self, segment=65536, digest_every=64):
        """LOG START: a new session log on the board (two ring segments of `segment`
        bytes; a DIGEST every digest_every logged requests). Returns the header length."""
        r = self._log(struct.pack(log_ops.START_BODY, log_ops.START, segment, digest_every))
        return struct.unpack("<H", r)[0]

    def log_stop(self):
        """LOG STOP: logging off (the log stays readable); returns the next index."""
        return struct.unpack("<I", self._log(b"\x01"))[0]

    def log_header(self):
        return bytes(self._log(b"\x02"))

    def log_read(self, index, most=P_LOG_READ):
        """LOG READ: (first index held, next index, bytes of whole records from index)."""
        r = self._log(struct.pack(log_ops.START_BODY, log_ops.READ, index, most))
        head = struct.calcsize(log_ops.READ_REPLY)
        if len(r) < head:
            raise ProtocolError("LOG READ reply of %d bytes" % len(r))
        first, nxt = struct.unpack_from(log_ops.READ_REPLY, r, 0)
        return first, nxt, bytes(r[head:])

    def log_digest(self):
        """LOG DIGEST: a DIGEST record now; returns its index."""
        return struct.unpack("<I", self._log(b"\x04"))[0]

    def log_status(self):
        on, first, nxt, lost = struct.unpack(log_ops.STATUS_REPLY,
                                             self._log(bytes([log_ops.STATUS])))
        return {"on": bool(on), "first": first, "next": nxt, "lost": lost}

    def _log(self, body):
        return self._live_request(proto.LOG, body)

    def _live_request(self, ftype, body, timeout=None):
        """A request of the live learner; firmware older than it is named as such."""
        try:
            return self.request(ftype, body, timeout=timeout)
        except DeviceError as e:
            if e.status == proto.E_UNKNOWN_TYPE:
                raise FFKitError("the board's firmware %s has no %s request (flash a newer "
                                 "one: ffkit flash)" % (self.firmware, _name(ftype))) from None
            raise

    def _chunk_done(self, resends_before):
        """Adapt the transfer chunk: halve it after a chunk that needed resends, double it
        after _GROW_AFTER clean ones. A frame of n bytes survives a line that corrupts a
        fraction e of its bytes with probability (1 - e)**n: at 1% a 526-byte frame gets
        through about once in 200 tries, a 46-byte one every other try."""
        if self.resends > resends_before:
            self.chunk = max(MIN_CHUNK, self.chunk // 2)
            self._clean = 0
        else:
            self._clean += 1
            if self._clean >= _GROW_AFTER and self.chunk < proto.CHUNK:
                self.chunk = min(proto.CHUNK, self.chunk * 2)
                self._clean = 0

    def export(self, progress=None):
        """The board's weights as a .ffw file (bytes), checked on the host before return.

        EXPORT_BEGIN snapshots the weights on the board and names them by the CRC the file
        stores; chunks of up to proto.CHUNK bytes follow, each retried on its own and sized
        to the line (`_chunk_done`); EXPORT_END is always sent. That CRC and
        every .ffw check (ffrt.ffw) must pass. progress(done, total) is called per chunk.
        """
        body = self.request(proto.EXPORT_BEGIN)
        if len(body) != 8:
            raise ProtocolError("EXPORT_BEGIN reply of %d bytes" % len(body))
        size, crc = struct.unpack(transfer.BEGIN, body)
        buf = bytearray(size)
        ok = False
        try:
            off = 0
            while off < size:
                n = min(self.chunk, size - off)
                before = self.resends
                reply = self.request(proto.EXPORT_CHUNK,
                                     struct.pack(transfer.EXPORT_CHUNK_BODY, off, n))
                self._chunk_done(before)
                if len(reply) < 5:
                    raise ProtocolError("EXPORT_CHUNK reply of %d bytes" % len(reply))
                got = struct.unpack_from(transfer.OFFSET, reply)[0]
                data = reply[4:]
                if got != off or len(data) > size - off:
                    raise ProtocolError("EXPORT_CHUNK at offset %d answered offset %d with %d "
                                        "bytes" % (off, got, len(data)))
                buf[off:off + len(data)] = data
                off += len(data)
                if progress is not None:
                    progress(off, size)
            ok = True
        finally:
            try:
                self.request(proto.EXPORT_END)
            except FFKitError:
                if ok:
                    raise
                # the transfer already failed: report that error, not this one
        # the CRC the file stores, over every byte before it (older firmware sent the whole
        # file's CRC, which is CRC-32's residue for every valid file: still accepted)
        got = crc32(memoryview(buf)[:-4]) if size >= 4 else crc32(buf)
        if got != crc and not (crc == _CRC32_RESIDUE and crc32(buf) == crc):
            raise FFKitError("export CRC mismatch: the board says 0x%08x, received data "
                             "gives 0x%08x" % (crc, got))
        data = bytes(buf)
        check_ffw(data, what="the board's export")
        return data

    def import_weights(self, data, progress=None, check_signature=True):
        """Send a .ffw file; the board stages, checks and commits it atomically.

        The file is checked on the host first (every ffrt.ffw check) and its model signature
        compared with the board's (from INFO), naming the first differing field. Returns
        the step of the committed weights. When the board restarted around the commit (its
        answer lost; the retry finds "no import open"), its export tells whether the new
        weights are in: if not, ImportIncomplete (it holds its previous weights).
        """
        data = bytes(data)
        cfg = check_ffw(data, what="the weight file")
        if check_signature:
            model = self.info().get("model")
            diff = signature_diff(cfg, model) if isinstance(model, dict) else None
            if diff:
                raise IncompatibleModel(
                    "model signature differs: %s is %r in the file, %r on the board (a board "
                    "runs the shape it booted: flash the model with `ffkit flash --model "
                    "FILE`, or start a virtual board with `ffkit sim --model FILE`)" % diff)
        self.request(proto.IMPORT_BEGIN, struct.pack(transfer.BEGIN, len(data), crc32(data)))
        off = 0
        while off < len(data):
            part = data[off:off + self.chunk]
            before = self.resends
            reply = self.request(proto.IMPORT_CHUNK, struct.pack(transfer.OFFSET, off) + part)
            self._chunk_done(before)
            if len(reply) != 4:
                raise ProtocolError("IMPORT_CHUNK reply of %d bytes" % len(reply))
            staged = struct.unpack(transfer.OFFSET, reply)[0]
            if staged != off + len(part):
                raise ProtocolError("IMPORT_CHUNK at offset %d: the board has %d bytes "
                                    "staged, expected %d" % (off, staged, off + len(part)))
            off = staged
            if progress is not None:
                progress(off, len(data))
        try:
            reply = self.request(proto.IMPORT_COMMIT, timeout=max(self.timeout, SLOW_TIMEOUT))
        except DeviceError as e:
            if e.status != proto.E_BAD_STATE:
                raise
            return self._commit_outcome(data, e)
        return _u32(reply, "IMPORT_COMMIT")

    def _commit_outcome(self, data, err):
        """IMPORT_COMMIT answered "no import open": the board restarted after the last
        chunk (a power cut, a reset; `ffkit sim --restart`), before or while it committed,
        and its answer went with it. Whether the commit happened is in the board's weights:
        the step of the file when they are the file's, else ImportIncomplete."""
        try:
            held = self.export()
        except FFKitError as e:
            raise FFKitError("the import's outcome is unknown: the board lost it (%s) and "
                             "its weights could not be read back to tell: %s"
                             % (err.message, e)) from None
        if held == data:
            return self.info()["step"]   # committed: the step of the file's weights
        raise ImportIncomplete(
            "the import did not complete: the board restarted (a power cut or a reset?) "
            "before it committed the new weights, and it holds its previous weights (those "
            "of its last checkpoint); send the file again")

    def checkpoint(self):
        """Write a checkpoint now: (checkpoint sequence number, slot)."""
        body = self.request(proto.CHECKPOINT, timeout=max(self.timeout, SLOW_TIMEOUT))
        if len(body) != 5:
            raise ProtocolError("CHECKPOINT reply of %d bytes" % len(body))
        return struct.unpack(ops.CHECKPOINT_REPLY, body)

    def set(self, **settings):
        """Change settings ({"learning": bool, "lr_shift": int, ...}); returns all in force."""
        body = json.dumps(settings, separators=(",", ":")).encode()
        return _json(self.request(proto.SET, body), "SET")

    def stats(self):
        """The board's counters (a dict)."""
        return _json(self.request(proto.STATS), "STATS")

    def reset(self, what="counters"):
        """RESET: "counters", "reload" (the newest checkpoint) or "fresh"; returns the step."""
        code = RESET_WHAT.get(what, what)
        if code not in RESET_WHAT.values():
            raise ValueError("reset what? one of %s" % ", ".join(RESET_WHAT))
        body = self.request(proto.RESET, bytes([code]), timeout=max(self.timeout, SLOW_TIMEOUT))
        return _u32(body, "RESET")

    def repl(self):
        """Hand the port back to the MicroPython REPL (then mpremote can deploy again).

        The session is over afterwards: the board no longer speaks the protocol.
        """
        self.request(proto.REPL)


# ---- helpers ---------------------------------------------------------------------------------

def _pack_x(x):
    try:
        return struct.pack("<%dh" % len(x), *[int(v) for v in x])
    except struct.error:
        raise ValueError("features must be integers in -32768..32767") from None


def _pack_samples(samples):
    """Rows of six int16 values as little-endian bytes (a numpy array or lists)."""
    try:
        import numpy as np
        a = np.asarray(samples)
        if a.size == 0:
            return b""
        if a.ndim != 2 or a.shape[1] != 6:
            raise ValueError("samples must be rows of 6 values (ax ay az gx gy gz), got "
                             "shape %s" % (a.shape,))
        if a.min() < -32768 or a.max() > 32767 or a.dtype.kind not in "iu":
            raise ValueError("samples must be integers in -32768..32767")
        return a.astype("<i2").tobytes()
    except TypeError:
        raise ValueError("samples must be rows of 6 integers") from None


def _label(y, allow_none):
    if y is None or (allow_none and int(y) == -1):
        if not allow_none:
            raise ValueError("a label is needed")
        return -1
    y = int(y)
    if not 0 <= y <= 127:
        raise ValueError("label %d is outside 0..127" % y)
    return y


def _u32(body, what):
    if len(body) != 4:
        raise ProtocolError("%s reply of %d bytes" % (what, len(body)))
    return struct.unpack("<I", body)[0]


def _json(body, what):
    try:
        return json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("%s reply is not JSON: %r" % (what, bytes(body[:60]))) from None


def check_ffw(data, what="file"):
    """Every .ffw check (ffrt.ffw), on a throwaway net; returns the file's Config.

    Raises FFKitError "<what> refused: <reason>".
    """
    from ffrt import ffw
    from ffrt import ffw_ram
    from ffrt.net import FFNet

    try:
        cfg = ffw_ram.decode_config(data)
        ffw_ram.load_into(FFNet(cfg, init=False), data)
    except ffw.FFWError as e:
        raise FFKitError("%s refused: %s" % (what, e)) from None
    return cfg


def signature_diff(cfg, model):
    """The first model field where a Config and a board's INFO "model" dict differ, as
    (name, the Config's value, the board's value), or None.

    Only the fields the board reports are compared (n_features, n_classes and layers at
    least); the board checks the whole signature itself before it commits an import.

    >>> from ffrt.model import Config
    >>> cfg = Config(n_features=4, n_classes=3, in_max=15, layers=(8, 7))
    >>> signature_diff(cfg, {"n_features": 4, "n_classes": 3, "layers": [8, 6]})
    ('layers', (8, 7), (8, 6))
    >>> signature_diff(cfg, {"layers": [8, 7], "firmware": "x"}) is None
    True
    """
    from ffrt.model import FIELDS

    for name, _ in FIELDS:
        if name not in model:
            continue
        a, b = getattr(cfg, name), model[name]
        if isinstance(a, tuple) and isinstance(b, list):
            b = tuple(b)
        if a != b:
            return name, a, b
    return None


def connect(port=None, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES, hello_timeout=None):
    """Open `port` (auto-detected when None, see ffkit.board.link.choose_port) and say HELLO.

    The link is closed again if HELLO fails.
    """
    from ffkit.board.link import choose_port
    from ffkit.board.sim_port import open_port

    link = open_port(choose_port(port))
    try:
        return Board(link, timeout=timeout, retries=retries, hello_timeout=hello_timeout)
    except BaseException:
        link.close()
        raise


def _console_says(link):
    """'; its console says: ...' with the firmware's last message or traceback line, for
    a link that sees the console (a virtual board's); '' otherwise.

    Only what came before the REPL's first prompt is the firmware's own: a board whose
    main.py ended sits in the REPL, which takes the host's HELLO frames as typed input and
    may answer them with an error of its own (a NameError for a name made of frame bytes).
    """
    console = getattr(link, "console", None)
    if console is None:
        return ""
    text = console()
    prompt = text.find(">>> ")
    for part in (text[:prompt], text) if prompt >= 0 else (text,):
        lines = [ln.strip() for ln in part.splitlines()
                 if ln.startswith("ffrt:") or "Error" in ln]
        if lines:
            return "; its console says: %s" % lines[-1]
    return ""
