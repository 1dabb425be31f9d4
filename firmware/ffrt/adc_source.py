"""machine.ADC channels as an ffrt sensor source: a fixed sample rate, int16 out.

Each sample reads every channel once with `read_u16()` (0..65535) and scales it to int16
with integers only: `((u16 - zero) * mul + half) >> shift`, clipped to -32768..32767
(`half` = 1 << (shift - 1) rounds half up; none when shift is 0). The defaults (zero 32768,
mul 1, shift 0) give `u16 - 32768`. For an analogue accelerometer such as the ADXL335 on
3.3 V (ratiometric: 0.1 of the supply per g, so 6553.6 u16 counts per g, zero g at half
scale), `mul=5, shift=3` gives 6553.6 * 5 / 8 = 4096 LSB/g, the HAPT stream's unit, exactly.
|u16 - zero| * mul stays below 65536 * 16384 = 2**30 (mul is limited to 1..16383).

Two ways to keep time, both without allocation once built:

- polled (default): `read_into` takes a sample when one is due on the fixed grid of
  `rate_hz` (ticks_ms; 50 Hz is every 20 ms), at most one per call; periods the caller
  was too late for are counted in `overflowed`, and the grid stays put.
- timer: `start(timer)` has a machine.Timer take every sample in its callback into a ring
  of `ring` samples; `read_into` drains the ring. A full ring drops the new sample and
  counts it in `overflowed`. `stop()` ends it.

    from machine import ADC, Pin, Timer
    from array import array
    from ffrt.adc_source import AdcSource
    src = AdcSource([ADC(Pin(26)), ADC(Pin(27)), ADC(Pin(28))], mul=5, shift=3)  # Pico
    src.start(Timer(-1))            # or leave it polled: call read_into often enough
    buf = array("h", [0] * (3 * 16))
    n = src.read_into(buf)          # samples of 3 values each
"""

import time
from array import array

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks the ADC and Timer calls against the board's machine stubs
    import machine
    from typing import Any, Sequence


class AdcSource:
    """Channels read at a fixed rate, interleaved in int16 samples."""

    def __init__(self, adcs, rate_hz=50, zero=32768, mul=1, shift=0, ring=64, clock=None):
        # type: (Sequence[machine.ADC], int, Any, int, int, int, Any) -> None
        if not 1 <= rate_hz <= 1000 or not 1 <= mul < 16384 or not 0 <= shift <= 16:
            raise ValueError("rate_hz must be 1..1000, mul 1..16383, shift 0..16")
        self._adcs = list(adcs)
        self.channels = len(self._adcs)
        self.rate_hz = rate_hz
        zeros = [zero] * self.channels if isinstance(zero, int) else list(zero)
        if len(zeros) != self.channels:
            raise ValueError("zero: one value, or one per channel")
        self._zero = array("i", zeros)
        self._mul = mul
        self._shift = shift
        self._half = (1 << shift) >> 1
        self._clock = clock or time  # ticks_ms, ticks_diff, ticks_add (a fake in tests)
        self.overflowed = 0          # samples missed (polled: late; timer: ring full)
        self._t0 = self._clock.ticks_ms()  # the grid: sample k is due at t0 + k * 1000 // rate
        self._k = 0
        self._ring = array("h", [0] * (ring * self.channels))
        self._size = ring
        self._head = 0               # next slot the timer writes
        self._tail = 0               # next slot read_into reads
        self._timer = None  # type: Any
        self._tick_cb = self._tick   # one bound method, made here rather than per start()

    def _sample_into(self, out, j):
        for c in range(self.channels):
            v = ((self._adcs[c].read_u16() - self._zero[c]) * self._mul + self._half) >> self._shift
            out[j + c] = 32767 if v > 32767 else (-32768 if v < -32768 else v)

    def start(self, timer):
        # type: (machine.Timer) -> None
        """Sample from timer's callback at rate_hz into the ring (soft callback, no allocation)."""
        self._head = self._tail = 0
        self._timer = timer
        timer.init(mode=timer.PERIODIC, freq=self.rate_hz, callback=self._tick_cb)

    def stop(self):
        if self._timer is not None:
            self._timer.deinit()
            self._timer = None

    def _tick(self, _t):
        nxt = self._head + 1
        if nxt == self._size:
            nxt = 0
        if nxt == self._tail:  # full: keep what is unread, drop this one
            self.overflowed += 1
            return
        self._sample_into(self._ring, self._head * self.channels)
        self._head = nxt

    def read_into(self, buf):
        """Samples into buf (array('h'), `channels` values each); returns how many."""
        ch = self.channels
        room = len(buf) // ch
        if self._timer is not None:
            n = 0
            head = self._head  # the callback may move it meanwhile; read up to here
            t = self._tail
            while t != head and n < room:
                for c in range(ch):
                    buf[n * ch + c] = self._ring[t * ch + c]
                n += 1
                t += 1
                if t == self._size:
                    t = 0
            self._tail = t
            return n
        if not room:
            return 0
        clock = self._clock
        now = clock.ticks_ms()
        el = clock.ticks_diff(now, self._t0)
        if el < 0:  # not called for 2**29 ms (6 days) or more: a new grid from now
            self._t0 = now
            self._k = 0
            return 0
        due = (el // 1000) * self.rate_hz + (el % 1000) * self.rate_hz // 1000  # < 2**30
        if due < self._k:
            return 0
        self.overflowed += due - self._k  # periods gone by without a call
        self._sample_into(buf, 0)
        self._k = due + 1
        if due >= self.rate_hz:  # move the origin on by whole seconds, never past now
            s = due // self.rate_hz
            self._t0 = clock.ticks_add(self._t0, 1000 * s)
            self._k -= s * self.rate_hz
        return 1
