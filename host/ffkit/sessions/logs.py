"""Session logs on the host: download a board's .ffl log, record one while streaming.

    ffkit log --port /dev/ttyACM0 -o session.ffl      # what the board's log holds
    ffkit stream --dataset hapt --weights W.ffw --log session.ffl
    ffkit replay session.ffl --weights W.ffw

A board logs to a bounded ring on its filesystem (ffrt.ffl.Ring, ffrt.log_ops); a host
that listens (`Recorder`) reads the new records while the session runs and appends them
to its file, so the file holds the whole session however long it is. The file is the
board's header and records, byte for byte: nothing the host computed is in it.
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


def download(board, path):
    """Write the board's whole log (header and every record it holds) to path."""
    st = board.log_status()
    if st["first"] > 0:
        raise FFKitError("the board's log no longer holds records 0..%d (its ring "
                         "overwrote them): a log that does not start at its header's "
                         "state cannot be replayed" % (st["first"] - 1))
    with open(path, "wb") as f:
        head = board.log_header()
        f.write(head)
        nxt, total = 0, len(head)
        while True:
            first, end, data = board.log_read(nxt)
            if nxt >= end:
                break
            if not data:  # a record larger than a reply
                data = _read_parts(board, nxt)
            f.write(data)
            total += len(data)
            nxt += _count(data)
    return {"log": str(path), "records": nxt, "bytes": total, "logging": st["on"],
            "lost": st["lost"]}
