"""Byte transports for the protocol server: the REPL's stdio or a UART, one tiny interface.

    readinto(buf) -> int   the bytes waiting, up to len(buf); 0 when none: never blocks.
                           Raises EOFError when the input has ended (a unix pipe closed).
    write(buf)             every byte of buf.
    wait(ms)               return when input arrives or ms have passed (the idle sleep).
    close()                hand the stream back (the REPL works again).

StdioPort on MicroPython owns sys.stdin/sys.stdout: micropython.kbd_intr(-1) while it is
open, so a 0x03 byte is data, not Ctrl-C; close() restores kbd_intr(3). Reading, as
measured in the unix port (1.29): sys.stdin.buffer.readinto(buf) blocks until buf is full,
and read(n) likewise, so on a pipe or a board's USB/UART console the port reads one byte
per select.poll readiness check (ipoll: no allocation), about 1.2 MB/s in the unix port,
far above any serial line. On a tty (the virtual board's pseudo-terminal) it sets VMIN=0
and VTIME=0, so one readinto returns every byte waiting (over 100 MB/s measured), and raw
mode if the host left the terminal cooked (termios.setraw flushes pending input, so a raw
terminal is not touched again); close() restores the terminal. On CPython, StdioPort is
ffrt.port_cpython's, which reads the raw file descriptors with select/os.readv, so the
server runs unchanged in tests (a board never loads that code).

ffrt.port_uart.UartPort wraps a machine.UART (any(), readinto(buf, n), write()), e.g. on
a board whose console must stay free (a module of its own: a board on its console never
loads it):

    from machine import UART, Pin
    port = UartPort(UART(1, baudrate=115200, tx=Pin(4), rx=Pin(5)))
"""

import select
import sys

try:
    import micropython
except ImportError:  # CPython
    micropython = None  # type: ignore[assignment]


class StdioPort:
    """The console's stdin/stdout as a protocol port; see the module docstring."""

    def __init__(self):
        self._one = bytearray(1)
        self._rd = sys.stdin.buffer.readinto
        self._wr = sys.stdout.buffer.write
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        try:  # a terminal: raw, and reads return what is waiting (VMIN = VTIME = 0)
            import termios  # type: ignore[import-not-found]
            self._tty = termios.tcgetattr(0)
            if self._tty[1] & 1:  # OPOST: a cooked terminal (setraw drops pending input,
                termios.setraw(0)  # so a terminal the host made raw is left as it is)
            a = termios.tcgetattr(0)
            a[6][5] = 0  # VTIME
            a[6][6] = 0  # VMIN
            termios.tcsetattr(0, termios.TCSANOW, a)
        except (ImportError, OSError):  # a pipe, or a board's console
            self._tty = None
        micropython.kbd_intr(-1)

    def _ready(self, ms):
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def readinto(self, buf):
        if self._tty is not None:
            if not self._ready(0):
                return 0
            try:
                n = self._rd(buf)
            except OSError:  # EIO: the other end of the terminal hung up
                raise EOFError
            if not n:
                raise EOFError
            return n
        one = self._one
        rd = self._rd
        n = 0
        while n < len(buf) and self._ready(0):
            if not rd(one):
                raise EOFError
            buf[n] = one[0]
            n += 1
        return n

    def write(self, buf):
        self._wr(buf)

    def wait(self, ms):
        self._ready(ms)

    def close(self):
        if self._tty is not None:
            import termios
            termios.tcsetattr(0, termios.TCSANOW, self._tty)
            self._tty = None
        micropython.kbd_intr(3)


if micropython is None:  # CPython: the same interface over the raw file descriptors
    from ffrt.port_cpython import StdioPort  # noqa: F811
