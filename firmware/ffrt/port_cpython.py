"""ffrt.port.StdioPort on CPython: the process's stdin/stdout file descriptors as a port.

The same interface as the board's port (readinto never blocks and raises EOFError at the
end of the input; write, wait, close), over select and os.readv, so ffrt.server runs
unchanged in CPython tests. ffrt.port picks this class on CPython; a board never loads it.
"""

import os
import select
import sys


class StdioPort:
    """sys.stdin / sys.stdout (their file descriptors) as a protocol port."""

    def __init__(self):
        self._fd_in = sys.stdin.fileno()
        self._fd_out = sys.stdout.fileno()

    def _ready(self, ms):
        return bool(select.select([self._fd_in], [], [], ms / 1000)[0])

    def readinto(self, buf):
        if not self._ready(0):
            return 0
        n = os.readv(self._fd_in, [buf])
        if not n:
            raise EOFError
        return n

    def write(self, buf):
        mv = memoryview(buf)
        while len(mv):
            mv = mv[os.write(self._fd_out, mv):]

    def wait(self, ms):
        self._ready(ms)

    def close(self):
        pass
