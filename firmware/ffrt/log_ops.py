"""The LOG request and the board's session logger (the .ffl format: ffrt.ffl).

ffrt.server loads this module on the first LOG request. With logging on (`srv.log`, a
`Logger`), the server hands it every request that ran without error; the logger keeps
those of ffrt.ffl.INPUTS (what changes or reads the net) as a record, then an OUTPUT
record (the reply and the net's goodness), and a DIGEST every `digest_every` requests
(step, state CRC, PRNG). Refused requests changed nothing and are not logged. A board's
own sensor (ffrt.app) is logged through `Logger.sensor` as the SAMPLES requests a host
would have sent for the same samples, so a field session replays like a streamed one. A logger
that cannot write (a full filesystem) stops itself and says so in LOG STATUS: the
request it was logging has run, and its reply must not be lost to the log's trouble.

LOG   u8 op, then by op:
      0 START   u32 segment bytes (ffrt.ffl.Ring), u16 digest_every (0: none)
                -> u16 header length          a new log (the old one is gone); a live
                                              learner starts afresh (logged as ADAPT)
      1 STOP    -> u32 next index             logging off; the log stays readable
      2 HEADER  -> the header bytes
      3 READ    u32 from index, u16 most bytes -> u32 first held, u32 next, records
                [u32 skip]                    whole records (none when the first does
                                              not fit); with skip: the bytes of record
                                              `from` alone from its byte skip on, so a
                                              record of any size is read in parts
      4 DIGEST  -> u32 index                  a DIGEST record now
      5 STATUS  -> u8 on, u32 first, u32 next, u32 records lost to write errors
"""

import struct

from ffrt import ffl
from ffrt import proto as P
from ffrt.proto import Reply

START, STOP, HEADER, READ, DIGEST, STATUS = 0, 1, 2, 3, 4, 5
# The bodies (struct formats; ffkit.board.client packs and reads them with these names)
START_BODY = "<BIH"    # op, u32 segment bytes, u16 digest_every; READ: op, u32 from, u16 most
READ_REPLY = "<II"     # u32 first held, u32 next; then the records
STATUS_REPLY = "<BIII"  # u8 on, u32 first, u32 next, u32 lost


def state_crc(net):
    """The CRC a .ffw file of net would store (ffrt.ffw_write, loaded for it)."""
    from ffrt.ffw_write import stream_crc
    return stream_crc(net)[0]


def checkpoint_crc(storage, cfg):
    """The CRC stored in the newest valid checkpoint's .ffw, or 0 if there is none."""
    if storage is None:
        return 0
    from ffrt.storage import SLOTS
    best = storage.newest(cfg)
    if best is None:
        return 0
    with open(storage.path(SLOTS[best[1]]), "rb") as f:
        # the slot's 8-byte head, then the .ffw, whose length is at its byte 6 (a file of
        # an older release, with fewer signature fields, is shorter than file_size(cfg))
        f.seek(8 + 6)
        m = struct.unpack("<I", f.read(4))[0]
        f.seek(8 + m - 4)  # the .ffw's last 4 bytes: its CRC
        return struct.unpack("<I", f.read(4))[0]


class Logger:
    """Writes the session's records to a ffl.Ring (see the module docstring)."""

    def __init__(self, ring, digest_every):
        self.ring = ring
        self.digest_every = digest_every
        self.on = True
        self.lost = 0
        self.error = ""
        self._since = 0
        self._sbuf = None   # sensor(): the samples read, made on first use

    def log(self, srv, t, body, reply_len):
        if not self.on or t not in ffl.INPUTS:
            return
        try:
            r = self.ring
            r.append(t, body)
            r.append(ffl.OUTPUT, ffl.output_body(t, srv.enc.body, reply_len, srv.net))
            self._since += 1
            if self.digest_every and self._since >= self.digest_every:
                self.digest(srv.net)
        except OSError as e:
            self.on = False
            self.lost += 1
            self.error = "logging stopped: %s" % e

    def sensor(self, srv, sensor):
        """srv.live.read(sensor), logged as the SAMPLES request a host would have sent for
        the same samples (no labels, learning off) and its OUTPUT, so a board's own
        sensor stream replays like a streamed one. Returns the windows completed."""
        lv = srv.live
        if not self.on:
            return type(lv).read(lv, sensor)
        buf = self._sbuf
        if buf is None:  # once: the samples, then a SAMPLES body of up to 32 of them
            from array import array
            buf = self._sbuf = array("h", bytes(12 * 32))
            self._sbody = bytearray(2 + 1 + 12 * 32)
        n = sensor.read_into(buf)
        if not n:
            return 0
        w = lv.windower
        from ffrt.features import windows_done   # loaded with the live learner
        k = windows_done(n, w.due)
        b = self._sbody
        b[0] = 0
        b[1] = k
        for i in range(k):
            b[2 + i] = 0xFF
        o = 2 + k
        for i in range(6 * n):
            struct.pack_into("<h", b, o + 2 * i, buf[i])
        done = lv.feed(buf, n)
        out = srv.enc.body
        struct.pack_into("<I", out, 0, srv.net.step)
        if done:
            out[4] = lv.last
        self.log(srv, P.SAMPLES, memoryview(b)[:o + 12 * n], 4 + done)
        return done

    def keep(self, srv):
        """Stop for good and close the files (ffrt.server.Server.free, after a
        MemoryError): returns the numbers that reopen the log for reading (`_reopen`)
        once this code is unloaded."""
        self.on = False
        r = self.ring
        r.close()
        lv = getattr(srv, "live", None)
        if lv is not None:
            try:
                del lv.read   # the sensor() wrapper of start(): LiveLearner.read again
            except AttributeError:
                pass
        return (r.segment, r.first, r.next, r.cur, self.lost, self.error)

    def digest(self, net):
        self._since = 0
        return self.ring.append(ffl.DIGEST, ffl.digest_body(net.step, state_crc(net),
                                                            net.rng))


def start(srv, segment=65536, digest_every=64):
    """A new log on srv's filesystem (LOG START; ffrt.app at boot with run(log=...));
    returns the header's length."""
    if not 1024 <= segment <= 1 << 24:
        raise Reply(P.E_BAD_VALUE, "segment bytes must be in 1024..16777216")
    if srv.storage is None:
        raise Reply(P.E_STORAGE, "this board has no filesystem for a log")
    import ffrt
    net = srv.net
    head = ffl.header(ffrt.__version__.encode(), _signature(net), state_crc(net),
                      checkpoint_crc(srv.storage, net.cfg), net.step, net.rng)
    lg = getattr(srv, "log", None)
    if lg is not None:
        lg.ring.close()
    ring = ffl.Ring(srv.storage.folder, segment)
    ring.start(head)
    lg = srv.log = Logger(ring, digest_every)
    lv = getattr(srv, "live", None)
    if lv is not None:
        # A live learner holds samples of a window and a rehearsal buffer that the log
        # cannot show: it starts afresh with its settings, logged as the ADAPT that makes
        # it, so a replay builds the same learner.
        from ffrt import live_ops
        b = bytes([lv.per_class, lv.replay, 1 if lv.predict_head else 0])
        sl = lv.sleep_cfg
        if lv.schedules is not None or lv.guard is not None or sl is not None:
            import json
            d: dict = {}
            if lv.schedules is not None:
                d["lr_shift_schedule"] = [list(e) for e in lv.schedules[1]]
                d["theta_schedule"] = [[a, list(v)] for a, v in lv.schedules[2]]
            g = lv.guard
            if g is not None:
                d["guard"] = [g.every, g.patience, g.max_pinned_q8, g.save_every]
            if sl is not None:
                d["sleep"] = [sl[1], sl[2], 1 if sl[3] else 0]
            b += json.dumps(d).encode()
        lg.log(srv, P.ADAPT, b, live_ops.HANDLERS[P.ADAPT](srv, b))
        lv = srv.live
        # the board's own sensor (ffrt.app: live.read) is logged from now on: an instance
        # attribute shadows LiveLearner.read, so nothing changes while no log runs
        lv.read = lambda sensor, label=-1: lg.sensor(srv, sensor)
    return len(head)


def _log(srv, body):
    if len(body) < 1:
        raise Reply(P.E_BAD_LENGTH, "LOG takes an op byte")
    op = body[0]
    lg = getattr(srv, "log", None)   # no attribute until the first START (server.py)
    out = srv.enc.body
    if op == START:
        srv.need(body, 7)
        _, seg, every = struct.unpack_from(START_BODY, body, 0)
        struct.pack_into("<H", out, 0, start(srv, seg, every))
        return 2
    if lg is None:
        kept = getattr(srv, "log_kept", None)   # a log the server stopped (keep)
        if kept is None:
            raise Reply(P.E_BAD_STATE, "no log (LOG START first)")
        lg = srv.log = _reopen(srv, kept)
    ring = lg.ring
    if op == STOP:
        srv.need(body, 1)
        lg.on = False
        ring.flush()
        struct.pack_into("<I", out, 0, ring.next)
        return 4
    if op == HEADER:
        srv.need(body, 1)
        h = ring.header()
        out[:len(h)] = h
        return len(h)
    if op == READ:
        skip = -1
        if len(body) == 11:
            skip = struct.unpack_from("<I", body, 7)[0]
        else:
            srv.need(body, 7)
        _, frm, most = struct.unpack_from(START_BODY, body, 0)
        most = min(most, P.MAX_BODY - 8)
        try:
            n = ring.read(frm, memoryview(out)[8:8 + most], skip)
        except ffl.FFLError as e:
            raise Reply(P.E_BAD_STATE, str(e))
        struct.pack_into(READ_REPLY, out, 0, ring.first, ring.next)
        return 8 + n
    if op == DIGEST:
        srv.need(body, 1)
        if not lg.on:
            raise Reply(P.E_BAD_STATE, "logging is off")
        struct.pack_into("<I", out, 0, lg.digest(srv.net))
        return 4
    if op == STATUS:
        srv.need(body, 1)
        struct.pack_into(STATUS_REPLY, out, 0, 1 if lg.on else 0, ring.first, ring.next,
                         lg.lost)
        return 13
    raise Reply(P.E_BAD_VALUE, "LOG op %d (0 start, 1 stop, 2 header, 3 read, 4 digest, "
                "5 status)" % op)


def _reopen(srv, kept):
    """The stopped log of Logger.keep's numbers, read from its files again."""
    ring = ffl.Ring(srv.storage.folder, kept[0])
    ring.first, ring.next, ring.cur = kept[1], kept[2], kept[3]
    lg = Logger(ring, 0)
    lg.on = False
    lg.lost, lg.error = kept[4], kept[5]
    srv.log_kept = None
    return lg


def _signature(net):
    """The model signature block of net's .ffw (field count and fields: ffrt.ffw)."""
    from ffrt import ffw
    from ffrt.ffw_write import _header
    return bytes(_header(net, ffw.file_size(net.cfg))[ffw.FIXED - 1:-ffw.STATE])


HANDLERS = {P.LOG: _log}
