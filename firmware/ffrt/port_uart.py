"""A machine.UART as a protocol port (ffrt.port's interface), for boards whose console
must stay the REPL's: readinto never blocks, write sends every byte, wait(ms) sleeps until
input arrives, close unregisters the poll.

    from machine import UART, Pin
    port = UartPort(UART(1, baudrate=115200, tx=Pin(4), rx=Pin(5)))
"""

import select


class UartPort:
    """A machine.UART as a protocol port (the console stays the REPL's)."""

    def __init__(self, uart):
        self._uart = uart
        self._poll = select.poll()
        self._poll.register(uart, select.POLLIN)

    def readinto(self, buf):
        n = self._uart.any()
        if not n:
            return 0
        return self._uart.readinto(buf, min(n, len(buf))) or 0

    def write(self, buf):
        mv = memoryview(buf)
        while len(mv):
            mv = mv[self._uart.write(mv) or 0:]

    def wait(self, ms):
        self._poll.poll(ms)

    def close(self):
        self._poll.unregister(self._uart)
