"""Session logs on the host: download a board's .ffl log, record one while streaming.

    ffkit log start --port /dev/ttyACM0 [--segment BYTES] [--digest-every N]
    ffkit log status --port /dev/ttyACM0
    ffkit log stop --port /dev/ttyACM0
    ffkit log download --port /dev/ttyACM0 -o session.ffl [--newest]
    ffkit stream --dataset hapt --weights W.ffw --log session.ffl
    ffkit replay session.ffl --weights W.ffw

A board logs to a bounded ring on its filesystem (ffrt.ffl.Ring, ffrt.log_ops); a host
that listens (`Recorder`) reads the new records while the session runs and appends them
to its file, so the file holds the whole session however long it is. The file is the
board's header and records, byte for byte: nothing the host computed is in it.

A ring that has overwritten its oldest records no longer holds the state its header
describes, so its records cannot be replayed from the header. `download(newest=True)`
writes what can be: the records from the first DIGEST the ring still holds, under a
header the host makes from that DIGEST (the board's firmware version and model signature;
the DIGEST's step, state CRC and PRNG; no checkpoint), renumbered from 0 with their CRCs
recomputed (bodies byte for byte). Replaying it needs the weights of that state
(`ffkit replay --weights`, a file whose state CRC is the DIGEST's), and a live learner's
window and rehearsal buffer are in no DIGEST: SAMPLES or SLEEP records before an ADAPT in
such a log do not replay (the result's notes say so). The header's model signature is the
board's at the download (read from an export), since settings (SET, schedules) may have
changed since the log's start; a note names the fields that did.
"""

from ffkit import FFKitError


class Recorder:
    """Keeps a file in step with a board's log: `drain` appends every record the board
    has written since the last call (call it often enough that the ring does not
    overwrite records not yet read: each of its two segments holds `segment` bytes)."""

    def __init__(self, board, path, segment=65536, digest_every=64, drain_every=16):
        self.board = board
        self.path = path
        self.next = 0
        self.records = 0
        self.bytes = 0
        self.drain_every = drain_every
        self._calls = 0
        board.log_start(segment, digest_every)
        self._f = open(path, "wb")
        head = board.log_header()
        self._f.write(head)
        self.bytes = len(head)

    def maybe_drain(self):
        """`drain` every drain_every calls (after each SAMPLES frame, say)."""
        self._calls += 1
        if self._calls >= self.drain_every:
            self._calls = 0
            self.drain()

    def drain(self):
        """Append the records written since the last drain; FFKitError if the ring lost
        some before they were read."""
        from ffkit.board.client import DeviceError
        while True:
            try:
                first, nxt, data = self.board.log_read(self.next)
                if self.next >= nxt:
                    return
                if not data:  # a record larger than a reply
                    data = _read_parts(self.board, self.next)
            except DeviceError as e:
                raise FFKitError("the board's log lost records before they were read (%s); "
                                 "drain more often or give it larger segments"
                                 % e.message) from None
            self._f.write(data)
            self.bytes += len(data)
            n = _count(data)
            self.records += n
            self.next += n

    def close(self, digest=True):
        """A final DIGEST (the state at the end), the rest of the records, logging off."""
        try:
            if digest:
                self.board.log_digest()
            self.drain()
            self.board.log_stop()
        finally:
            self._f.close()
        return {"log": str(self.path), "records": self.records, "bytes": self.bytes}


def _count(data):
    """Records in a run of whole records."""
    n = o = 0
    while o < len(data):
        o += 7 + (data[o + 1] | (data[o + 2] << 8)) + 4
        n += 1
    return n


def _read_parts(board, index):
    """Record `index`, too large for one LOG READ reply, read in parts (LOG READ with a
    byte offset into the record: ffrt.log_ops)."""
    import struct

    from ffrt import proto

    from ffkit.board.client import P_LOG_READ, DeviceError
    rec = b""
    size = None
    while size is None or len(rec) < size:
        try:
            r = board.request(proto.LOG, struct.pack("<BIHI", 3, index, P_LOG_READ, len(rec)))
        except DeviceError as e:
            if e.status == proto.E_BAD_LENGTH:  # firmware older than parts
                raise FFKitError("record %d does not fit a LOG READ reply, and the board's "
                                 "firmware reads no record in parts (update it)"
                                 % index) from None
            raise
        part = bytes(r[8:])
        if not part:
            raise FFKitError("record %d: LOG READ at byte %d of it returned nothing"
                             % (index, len(rec)))
        rec += part
        if size is None and len(rec) >= 3:
            size = 7 + (rec[1] | (rec[2] << 8)) + 4
    return rec[:size]


def _chunks(board, index):
    """Runs of whole records from record `index` to the ring's end: (first held, bytes)."""
    while True:
        first, end, data = board.log_read(index)
        if index >= end:
            return
        if not data:  # a record larger than a reply
            data = _read_parts(board, index)
        yield first, data
        index += _count(data)


def status(board):
    """The board's log: exists, on, first (oldest record held), next, held, lost,
    wrapped (records overwritten), and from its header: firmware, step and state CRC at
    its start. exists False (and nothing else) when the board has no log."""
    from ffrt import ffl, proto

    from ffkit.board.client import DeviceError
    try:
        st = board.log_status()
    except DeviceError as e:
        if e.status == proto.E_BAD_STATE:   # "no log (LOG START first)"
            return {"exists": False}
        raise
    res = {"exists": True, "on": st["on"], "first": st["first"], "next": st["next"],
           "held": st["next"] - st["first"], "lost": st["lost"],
           "wrapped": st["first"] > 0}
    head, _ = ffl.parse_header(board.log_header())
    res.update({"firmware": head["version"], "start_step": head["step"],
                "start_state_crc32": "%08x" % head["state_crc"]})
    return res


def start(board, segment=65536, digest_every=64):
    """LOG START (a new log; the board's old one is gone): the new log's status, and
    `replaced`: the old log's status (exists False if there was none)."""
    if not 1024 <= segment <= 1 << 24:
        raise FFKitError("--segment must be 1024..16777216 bytes, not %d" % segment)
    if not 0 <= digest_every <= 0xFFFF:
        raise FFKitError("--digest-every must be 0..65535 requests, not %d" % digest_every)
    old = status(board)
    board.log_start(segment, digest_every)
    res = status(board)
    res.update({"segment": segment, "digest_every": digest_every, "replaced": old})
    return res


def stop(board):
    """LOG STOP: logging off, the log stays readable; its status, with was_on.
    FFKitError if the board has no log."""
    old = status(board)
    if not old["exists"]:
        raise FFKitError("the board has no log to stop (ffkit log start)")
    board.log_stop()
    res = status(board)
    res["was_on"] = old["on"]
    return res


def download(board, path, newest=False):
    """Write the board's whole log (header and every record it holds) to path.

    A ring that has overwritten records 0.. is refused, unless newest: then the log from
    the first DIGEST still held (the module docstring), with complete False, cut_at (the
    board's index of the file's record 0), start_step, start_state_crc32 and notes."""
    st = board.log_status()
    base = {"log": str(path), "logging": st["on"], "lost": st["lost"],
            "first": st["first"], "next": st["next"]}
    if st["first"] > 0:
        if not newest:
            raise FFKitError("the board's log no longer holds records 0..%d (its ring "
                             "overwrote them): a log that does not start at its header's "
                             "state cannot be replayed; --newest writes records %d..%d "
                             "from the first state digest among them"
                             % (st["first"] - 1, st["first"], st["next"] - 1))
        return dict(base, **_newest(board, path, st))
    with open(path, "wb") as f:
        head = board.log_header()
        f.write(head)
        nxt, total = 0, len(head)
        for _, data in _chunks(board, 0):
            f.write(data)
            total += len(data)
            nxt += _count(data)
    return dict(base, records=nxt, bytes=total, complete=True, cut_at=0, notes=[])


def _newest(board, path, st):
    import struct

    from ffrt import ffl
    from ffrt import proto as P
    from ffrt.crc32 import crc32

    head, _ = ffl.parse_header(board.log_header())
    recs = []   # (type, board index, body)
    first = None
    for held, data in _chunks(board, st["first"]):
        if first is None:
            first = held
        o = 0
        while o < len(data):
            t, n, idx = struct.unpack_from("<BHI", data, o)
            end = o + ffl.REC_HEAD + n + 4
            if crc32(data[o:end - 4]) != struct.unpack_from("<I", data, end - 4)[0]:
                raise FFKitError("record %d from the board: CRC mismatch" % idx)
            want = (recs[-1][1] + 1) if recs else first
            if idx != want:
                raise FFKitError("record %d from the board where %d belongs (the ring moved "
                                 "while it was read?)" % (idx, want))
            recs.append((t, idx, data[o + ffl.REC_HEAD:end - 4]))
            o = end
    cut = next((i for i, r in enumerate(recs) if r[0] == ffl.DIGEST), None)
    if cut is None:
        raise FFKitError(
            "the ring overwrote records 0..%d and the %d it holds (%d..%d) have no state "
            "digest, so no state to replay them from is known: nothing written (start the "
            "log with a --digest-every small enough that a segment holds a DIGEST)"
            % (first - 1, len(recs), first, first + len(recs) - 1))
    t, idx, body = recs[cut]
    step, crc, r0, r1 = struct.unpack("<IIHH", body)
    sig, changed = _signature_now(board, head["signature"])
    out = ffl.header(head["version"].encode(), sig, crc, 0, step, (r0, r1))
    kept = recs[cut:]
    with open(path, "wb") as f:
        f.write(out)
        total = len(out)
        for i, (t, _, b) in enumerate(kept):
            r = ffl.record(t, i, b)
            f.write(r)
            total += len(r)
    notes = ["the ring overwrote records 0..%d; this log starts at the board's record %d "
             "(its first DIGEST still held; %d older record(s) before it skipped), "
             "renumbered from 0: step %d, state crc32 %08x. A replay needs the weights of "
             "that state (ffkit replay --weights)" % (first - 1, idx, cut, step, crc)]
    if changed:
        notes.append("the model's settings changed since the log started (%s); the header "
                     "holds the board's settings now, which may not be those at the cut: "
                     "if ffkit replay refuses the weights of the cut by model signature, "
                     "--force replays them (record 0, the DIGEST, still checks their state)"
                     % ", ".join(changed))
    for t, i, b in kept:
        if t == P.ADAPT:
            break
        if t in (P.SAMPLES, P.SLEEP):
            notes.append("record %d (%s) needs the live learner's window and rehearsal "
                         "buffer at the cut, which no DIGEST holds: a replay differs from there on"
                         % (i - idx, ffl.NAMES[t]))
            break
    for t, i, b in kept:
        if t == P.CHECKPOINT:
            break
        if t == P.RESET and b[:1] == bytes([P.RESET_RELOAD]):
            notes.append("record %d (RESET reload) reloads a checkpoint that is not known "
                         "at the cut: a replay differs there" % (i - idx))
            break
    return {"records": len(kept), "bytes": total, "complete": False, "cut_at": idx,
            "dropped": first, "start_step": step, "start_state_crc32": "%08x" % crc,
            "notes": notes}


def _signature_now(board, start_sig):
    """(the model signature of the board's weights now, ["field old -> new", ...] where
    it differs from start_sig). A log's header holds the signature at its start, which a
    SET or a schedule may have changed before a cut; the board's present one is read from
    an export (EXPORT is not logged)."""
    from ffrt import ffw, ffw_ram
    from ffrt.log_ops import _signature

    net = ffw_ram.load(board.export())
    sig = _signature(net)
    if sig == start_sig:
        return sig, []
    try:
        a = ffw.signature_config(start_sig).as_dict()
    except ffw.FFWError:
        return sig, ["the log's start signature is not readable"]
    b = net.cfg.as_dict()
    return sig, ["%s %s -> %s" % (k, a[k], b[k]) for k in b if a.get(k) != b[k]]
