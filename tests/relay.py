"""A lossy serial line for tests: a pty the host opens, relayed to a board's port.

    with LossyRelay(vb.port, drop=0.005, flip=0.005, seed=1) as line:
        board = connect(line.port)        # /dev/pts/M: what a host opens, like any port
        ...
        line.stats()                      # bytes moved, dropped and flipped, per direction

Wiring: host --(slave S, /dev/pts/M)-- master M <-- relay thread --> the board's port
(e.g. a virtual board's /dev/pts/N, opened here as a second client). Each direction has its
own seeded random.Random and decides byte by byte, in the order bytes pass: with
probability `drop` a byte is lost, else with probability `flip` one of its bits is
inverted (a 0x00 may become data and data may become 0x00: frames split and merge as on a
noisy UART). With drop = flip = 0 it is a tap that counts every byte on the wire.

`down` ("host->board") and `up` ("board->host") are Direction objects with counters:
bytes_in (offered), bytes_out (delivered), dropped, flipped, and, while `record` is True,
`data`, every byte offered (what the sender wrote, before any loss).

The relay holds the slave S open itself, so a host may open and close /dev/pts/M any
number of times (as successive ffkit commands do) without the master seeing a hang-up.
"""

import errno
import os
import random
import select
import threading
import tty

_READ = 4096


class Direction:
    """One direction of the line: its random source and counters."""

    def __init__(self, name, drop, flip, seed):
        self.name = name
        self.drop = drop
        self.flip = flip
        self.rng = random.Random(seed)
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped = 0
        self.flipped = 0
        self.record = False
        self.data = bytearray()
        self.pending = bytearray()   # delivered by the line, not yet written to the fd

    def damage(self, data):
        """What arrives of data at the far end (counted)."""
        self.bytes_in += len(data)
        if self.record:
            self.data += data
        if not (self.drop or self.flip):
            self.bytes_out += len(data)
            return bytes(data)
        rnd = self.rng.random
        bit = self.rng.randrange
        p_drop, p_flip = self.drop, self.drop + self.flip
        out = bytearray()
        for b in data:
            r = rnd()
            if r < p_drop:
                self.dropped += 1
                continue
            if r < p_flip:
                b ^= 1 << bit(8)
                self.flipped += 1
            out.append(b)
        self.bytes_out += len(out)
        return bytes(out)

    def stats(self):
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "dropped": self.dropped, "flipped": self.flipped}


class LossyRelay:
    """A pty pair whose slave (`port`) is relayed, with losses, to the port `target`.

    drop, flip: per-byte probabilities in each direction (down_* / up_* override one
    direction). seed: the random sources are Random(seed) and Random(seed + 1).
    """

    def __init__(self, target, drop=0.0, flip=0.0, seed=0, up_drop=None, up_flip=None):
        self.target = target
        self.down = Direction("host->board", drop, flip, seed)
        self.up = Direction("board->host", drop if up_drop is None else up_drop,
                            flip if up_flip is None else up_flip, seed + 1)
        self._tfd = os.open(target, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._tfd)
        self._m, self._s = os.openpty()
        tty.setraw(self._s)
        self.port = os.ttyname(self._s)
        for fd in (self._m, self._tfd):
            os.set_blocking(fd, False)
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self.error = None
        self._thread = threading.Thread(target=self._run, name="lossy-relay", daemon=True)
        self._thread.start()

    def set_loss(self, drop, flip):
        """Change both directions' loss rates (e.g. a clean HELLO, then a noisy line)."""
        with self._lock:
            for d in (self.down, self.up):
                d.drop, d.flip = drop, flip

    def record(self, on=True):
        """Start (clearing what was kept) or stop keeping the bytes offered each way."""
        with self._lock:
            for d in (self.down, self.up):
                d.record = on
                if on:
                    d.data = bytearray()

    def stats(self):
        with self._lock:
            return {"host->board": self.down.stats(), "board->host": self.up.stats()}

    def _run(self):
        m, t = self._m, self._tfd
        route = {m: (self.down, t), t: (self.up, m)}
        out = {t: self.down, m: self.up}
        try:
            while True:
                wl = [fd for fd, d in out.items() if d.pending]
                r, w, _ = select.select([m, t, self._wake_r], wl, [])
                if self._wake_r in r:
                    return
                for fd in r:
                    try:
                        data = os.read(fd, _READ)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        if e.errno == errno.EIO:  # no process has the slave open
                            continue
                        raise
                    d, _ = route[fd]
                    with self._lock:
                        d.pending += d.damage(data)
                for fd in w:
                    d = out[fd]
                    try:
                        n = os.write(fd, d.pending)
                    except BlockingIOError:
                        continue
                    del d.pending[:n]
        except Exception as e:  # kept for the test to report; the line is then dead
            self.error = e

    def close(self):
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        for fd in (self._wake_r, self._wake_w, self._m, self._s, self._tfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
