"""A fake machine.I2C bus with register-level fakes of the MPU-6050 and the LSM6DS3/LSM6DSO.

The chips sample on a clock the test advances (`FakeClock`, also the drivers' ticks_ms /
ticks_diff / sleep_ms), so their FIFOs fill at 50 or 52 Hz between reads, and overflow when
nobody reads. What each fake models, from the datasheets and register maps:

- `FakeMPU6050`: WHO_AM_I 0x68; DEVICE_RESET (PWR_MGMT_1 bit 7) restores the defaults (asleep)
  and reads 1 for `reset_us`, ignoring writes meanwhile; sample rate 1 kHz (8 kHz with the
  DLPF off) / (1 + SMPLRT_DIV); the FIFO_EN data sets in register order, big-endian; a
  1024-byte FIFO that overwrites its oldest byte when full (so it loses sample alignment)
  and then sets FIFO_OFLOW_INT in INT_STATUS (taken here to need FIFO_OFLOW_EN in
  INT_ENABLE), cleared by reading INT_STATUS; FIFO_COUNTH/L; FIFO_RESET honoured only while
  the written USER_CTRL has FIFO_EN clear; FIFO_R_W bursts do not advance the address.
- `FakeLSM6DS(kind)`: "ds3" (WHO_AM_I 0x69, 4096 words, 12-bit count), "ds3trc" (0x6A, 2048
  words, 11-bit count): six little-endian words per sample, gx gy gz ax ay az, FIFO_PATTERN
  the position of the next word, FIFO_CTRL5 ODR_FIFO and mode, FIFO_CTRL3 decimation; "dso"
  (0x6C, 512 tagged words of 7 bytes; TAG_CNT counts time slots, parity in bit 0; a
  gyroscope and an accelerometer word per slot, `accel_first` flips their order, and
  `ts_every` adds a timestamp word every so many slots), FIFO_CTRL3 batch rates, FIFO_CTRL4
  mode, FIFO_OVR_LATCHED cleared by reading FIFO_STATUS2. Common: SW_RESET (CTRL3_C bit 0),
  ODR codes 1..6 (12.5..416 Hz; both sensors at one rate), watermark, overrun (oldest word
  overwritten; cleared by a read or by bypass mode, which empties the FIFO), FIFO_FULL
  ("full at the next sample"), burst reads that roll over inside the FIFO output registers
  and otherwise advance only while IF_INC is set.

`partial = m` makes the next sample appear in two steps: its first m units (bytes on the
MPU-6050, words on the LSM6DS) at once, the rest at the first bus access after the clock
moves on. Reading an empty FIFO is counted in `underflows`.

Written in the MicroPython subset, and nothing on the read path allocates (the bus's write
log is a list: `FakeI2C(..., log=False)` turns it off), so the drivers can be measured with
`gc.mem_alloc()` in the MicroPython unix port with these fakes in the loop. Times are
microseconds; `(t - t0) * rate` products exceed 2**30 after a few seconds, which is fine
on CPython and on the 64-bit unix port (62-bit small ints).
"""

TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms wraps here


def pattern(k, ch):
    """Raw int16 reading number k of channel ch (0..5: ax ay az gx gy gz).

    ax = k - 30000 names its sample (accelerometer units pass through unchanged, so a test
    reads k back off the driver's output); the others are a 16-bit hash covering -32768..32767.
    """
    if ch == 0:
        return (k % 60000) - 30000
    h = ((k & 0x3FFF) * 40503 + ch * 9973) & 0xFFFF
    h ^= h >> 7
    h = (h * 7919 + 6927) & 0xFFFF
    return h - 65536 if h >= 32768 else h


class FakeClock:
    """Microseconds that only move when told; ticks_* as in MicroPython's time module."""

    def __init__(self, start_ms=0):
        self.us = start_ms * 1000

    def ticks_ms(self):
        return (self.us // 1000) & (TICKS_PERIOD - 1)

    def ticks_diff(self, a, b):
        return ((a - b + TICKS_PERIOD // 2) & (TICKS_PERIOD - 1)) - TICKS_PERIOD // 2

    def ticks_add(self, t, delta):
        return (t + delta) & (TICKS_PERIOD - 1)

    def sleep_ms(self, ms):
        self.us += ms * 1000

    def advance_ms(self, ms):
        self.us += ms * 1000

    def advance_us(self, us):
        self.us += us


class FakeI2C:
    """machine.I2C's memory-read/write methods over attached fake chips.

    Every transaction first lets the chip catch up with the clock, then moves the clock on by
    `us_per_byte` for each byte including the address and register (about 23 at 400 kHz).
    """

    def __init__(self, clock, us_per_byte=0, log=True):
        self.clock = clock
        self.us_per_byte = us_per_byte
        self.chips = {}
        self.writes = [] if log else None  # (addr, reg, value) in order
        self.transactions = 0

    def attach(self, chip):
        chip.clock = self.clock
        chip.restart_timing()
        self.chips[chip.addr] = chip
        return chip

    def _chip(self, addr):
        chip = self.chips.get(addr)
        if chip is None:
            raise OSError(19)  # ENODEV: nobody acknowledged the address
        chip.sync()
        return chip

    def _done(self, n):
        self.transactions += 1
        self.clock.us += self.us_per_byte * (n + 2)

    def readfrom_mem_into(self, addr, memaddr, buf):
        chip = self._chip(addr)
        reg = memaddr
        for i in range(len(buf)):
            buf[i] = chip.read(reg)
            reg = chip.next_reg(reg)
        self._done(len(buf))

    def readfrom_mem(self, addr, memaddr, nbytes):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf):
        chip = self._chip(addr)
        reg = memaddr
        for i in range(len(buf)):
            if self.writes is not None:
                self.writes.append((addr, reg, buf[i]))
            chip.write(reg, buf[i])
            reg = chip.next_reg(reg)
        self._done(len(buf))


class _Chip:
    """Registers, a FIFO of fixed-size units in a ring, and a sample clock."""

    def __init__(self, addr, unit, capacity, defaults):
        self.addr = addr
        self.clock = None
        self.regs = bytearray(256)
        self._defaults = defaults
        self.unit = unit                  # bytes per FIFO unit
        self.capacity = capacity          # units
        self._ring = bytearray(unit * capacity)
        self._head = 0
        self.count = 0                    # units in the FIFO
        self.overwritten = 0              # units lost to overflow, ever
        self.underflows = 0
        self.source = pattern
        self.index = 0                    # number of the next sample the sensors take
        self.partial = 0
        self._scratch = bytearray(64)     # one sample's units, built before they are pushed
        self._rest = 0                    # units of the last sample still held back
        self._rest_from = 0
        self._rest_us = 0
        self._t0 = 0                      # sample clock origin (us) and samples since then
        self._k = 0
        self._reset_until = -1
        self.power_on()

    def power_on(self):
        for i in range(256):
            self.regs[i] = 0
        for reg, value in self._defaults:
            self.regs[reg] = value
        self.clear_fifo()

    def clear_fifo(self):
        self._head = 0
        self.count = 0
        self._rest = 0

    def restart_timing(self):
        self._t0 = self.clock.us if self.clock is not None else 0
        self._k = 0

    def rate_num(self):
        """Samples = elapsed_us * rate_num() // rate_den(); 0 while not sampling."""
        return 0

    def rate_den(self):
        return 1

    def sync(self):
        now = self.clock.us
        if self._rest and now > self._rest_us:
            self._flush_rest()
        num = self.rate_num()
        if num == 0:
            return
        k = (now - self._t0) * num // self.rate_den()
        while self._k < k:
            self._k += 1
            self._emit()
            self.index += 1

    def retime(self):
        """Call after sync when a write changes the sample rate: the grid restarts now."""
        self._t0 = self.clock.us
        self._k = 0

    def _flush_rest(self):
        self._push_units(self._rest_from, self._rest)
        self._rest = 0

    def _emit(self):
        if self._rest:                    # a sample is written whole before the next one
            self._flush_rest()
        n = self.build(self._scratch)     # units of this sample in _scratch, 0 if none
        if n == 0:
            return
        if self.partial and self.partial < n:
            self._rest = n - self.partial
            self._rest_from = self.partial
            self._rest_us = self.clock.us
            n = self.partial
            self.partial = 0
        self._push_units(0, n)

    def _push_units(self, first, n):
        u = self.unit
        for q in range(first, first + n):
            if self.count == self.capacity:   # overwrite the oldest unit
                self._head = (self._head + 1) % self.capacity
                self.count -= 1
                self.overwritten += 1
                self.on_drop()
            tail = (self._head + self.count) % self.capacity
            for b in range(u):
                self._ring[tail * u + b] = self._scratch[q * u + b]
            self.count += 1

    def peek(self, b):
        return self._ring[self._head * self.unit + b]

    def pop(self):
        self._head = (self._head + 1) % self.capacity
        self.count -= 1
        self.on_pop()

    def pop_units(self, n):
        """Take n units out of the FIFO as another reader would (for torn-sample tests)."""
        for _ in range(n):
            self.pop()

    def on_drop(self):
        pass

    def on_pop(self):
        pass

    def resetting(self):
        return self._reset_until >= 0 and self.clock.us < self._reset_until


class FakeMPU6050(_Chip):
    def __init__(self, addr=0x68, reset_us=30000):
        self.reset_us = reset_us
        _Chip.__init__(self, addr, 1, 1024, ((0x6B, 0x40), (0x75, 0x68)))

    def rate_num(self):
        r = self.regs
        if r[0x6B] & 0xC0 or self.resetting():   # asleep or in reset
            return 0
        return 8000 if r[0x1A] & 0x07 in (0, 7) else 1000   # without / with the DLPF

    def rate_den(self):
        return 1000000 * (1 + self.regs[0x19])

    def build(self, out):
        r = self.regs
        en = r[0x23]
        if not r[0x6A] & 0x40 or not en & 0xF8:
            return 0
        n = 0
        # data sets in register order: ACCEL_XOUT_H.. (0x3B), TEMP (0x41), GYRO (0x43)
        for ch, bit in ((0, 0x08), (1, 0x08), (2, 0x08), (-1, 0x80), (3, 0x40), (4, 0x20),
                        (5, 0x10)):
            if en & bit:
                v = self.source(self.index, ch) if ch >= 0 else 0
                out[n] = (v >> 8) & 0xFF
                out[n + 1] = v & 0xFF
                n += 2
        return n

    def on_drop(self):
        if self.regs[0x38] & 0x10:
            self.regs[0x3A] |= 0x10

    def read(self, reg):
        if reg == 0x6B and self.resetting():
            return self.regs[0x6B] | 0x80
        if reg == 0x3A:
            v = self.regs[0x3A]
            self.regs[0x3A] = 0
            return v
        if reg == 0x72:
            return self.count >> 8
        if reg == 0x73:
            return self.count & 0xFF
        if reg == 0x74:
            if self.count == 0:
                self.underflows += 1
                return 0xFF
            v = self.peek(0)
            self.pop()
            return v
        return self.regs[reg]

    def write(self, reg, v):
        if self.resetting():
            return
        if reg == 0x6B and v & 0x80:
            self.power_on()
            self._reset_until = self.clock.us + self.reset_us
            self.retime()
            return
        if reg == 0x6A:
            if v & 0x04 and not v & 0x40:
                self.clear_fifo()
            v &= ~0x04 & 0xFF
        self.regs[reg] = v
        if reg in (0x19, 0x1A, 0x6B):
            self.retime()

    def next_reg(self, reg):
        return reg if reg == 0x74 else (reg + 1) & 0xFF


_KINDS = {"ds3": (0x69, 2, 4096, 0x0F), "ds3trc": (0x6A, 2, 2048, 0x07),
          "dso": (0x6C, 7, 512, 0x03)}
_ODR_MHZ = (0, 12500, 26000, 52000, 104000, 208000, 416000)


class FakeLSM6DS(_Chip):
    def __init__(self, kind="dso", addr=0x6A, reset_us=2500):
        self.kind = kind
        self.who, unit, capacity, self.hi = _KINDS[kind]
        self.tagged = kind == "dso"
        self.reset_us = reset_us
        self.accel_first = False
        self.ts_every = 0
        self.pattern = 0          # position of the head word in its sample (pattern FIFO)
        self.overrun = 0          # an overwrite since the last read or bypass
        self.latched = 0          # LSM6DSO FIFO_OVR_LATCHED
        self._slot = 0
        _Chip.__init__(self, addr, unit, capacity, ((0x0F, self.who), (0x12, 0x04)))

    def rate_num(self):
        r = self.regs
        code = r[0x10] >> 4
        if self.resetting() or code == 0 or code >= len(_ODR_MHZ) or r[0x11] >> 4 != code:
            return 0
        return _ODR_MHZ[code]

    def rate_den(self):
        return 1000000000

    def _fifo_on(self):
        r = self.regs
        code = r[0x10] >> 4
        if self.tagged:
            return r[0x0A] & 0x07 in (1, 6) and r[0x09] == (code << 4) | code
        return (r[0x0A] & 0x07 in (1, 6) and (r[0x0A] >> 3) & 0x0F == code
                and r[0x08] & 0x3F == 0x09)

    def build(self, out):
        if not self._fifo_on():
            return 0
        k = self.index
        if not self.tagged:   # gx gy gz ax ay az, little-endian
            for w in range(6):
                v = self.source(k, w + 3 if w < 3 else w - 3)
                out[2 * w] = v & 0xFF
                out[2 * w + 1] = (v >> 8) & 0xFF
            return 6
        n = 0
        cnt = self._slot & 3
        if self.ts_every and self._slot % self.ts_every == 0:
            n = self._word(out, n, 0x04, cnt, k, -1)
        first, second = (0x02, 0x01) if self.accel_first else (0x01, 0x02)
        n = self._word(out, n, first, cnt, k, 0 if first == 0x02 else 3)
        n = self._word(out, n, second, cnt, k, 0 if second == 0x02 else 3)
        self._slot += 1
        return n

    def _word(self, out, n, sensor, cnt, k, ch0):
        tag = (sensor << 3) | (cnt << 1)
        p = tag ^ (tag >> 4)
        p ^= p >> 2
        p ^= p >> 1
        out[7 * n] = tag | (p & 1)
        for c in range(3):
            v = self.source(k, ch0 + c) if ch0 >= 0 else k * 3 + c
            out[7 * n + 1 + 2 * c] = v & 0xFF
            out[7 * n + 2 + 2 * c] = (v >> 8) & 0xFF
        return n + 1

    def on_drop(self):
        self.overrun = 1
        self.latched = 1
        self.pattern = (self.pattern + 1) % 6

    def on_pop(self):
        self.overrun = 0
        self.pattern = (self.pattern + 1) % 6

    def clear_fifo(self):
        _Chip.clear_fifo(self)
        self.pattern = 0
        self.overrun = 0
        self.latched = 0

    def _threshold(self):
        r = self.regs
        if self.tagged:
            return r[0x07] | ((r[0x08] & 0x01) << 8)
        return r[0x06] | ((r[0x07] & 0x0F) << 8)

    def status2(self):
        c = self.count
        wtm = self._threshold()
        per = 2 if self.tagged else 6
        v = (c >> 8) & self.hi
        v |= 0x80 if wtm and c >= wtm else 0
        v |= 0x40 if self.overrun else 0
        v |= 0x20 if c + per > self.capacity else 0
        if self.tagged:
            v |= 0x08 if self.latched else 0
        else:
            v |= 0x10 if c == 0 else 0
        return v

    def read(self, reg):
        if reg == 0x12 and self.resetting():
            return self.regs[0x12] | 0x01
        if reg == 0x3A:
            return self.count & 0xFF
        if reg == 0x3B:
            v = self.status2()
            self.latched = 0
            return v
        if not self.tagged and reg in (0x3C, 0x3D):
            return self.pattern & 0xFF if reg == 0x3C else self.pattern >> 8
        lo, hi = (0x78, 0x7E) if self.tagged else (0x3E, 0x3F)
        if lo <= reg <= hi:
            if self.count == 0:
                self.underflows += 1
                return 0
            v = self.peek(reg - lo)
            if reg == hi:
                self.pop()
            return v
        return self.regs[reg]

    def write(self, reg, v):
        if self.resetting():
            return
        if reg == 0x12 and v & 0x01:
            self.power_on()
            self._reset_until = self.clock.us + self.reset_us
            self.retime()
            return
        self.regs[reg] = v
        if reg == 0x0A and v & 0x07 == 0:
            self.clear_fifo()
        if reg in (0x10, 0x11):
            self.retime()

    def next_reg(self, reg):
        if self.tagged and reg == 0x7E:
            return 0x78
        if not self.tagged and reg == 0x3F:
            return 0x3E
        return (reg + 1) & 0xFF if self.regs[0x12] & 0x04 else reg


class FakeADC:
    """machine.ADC's read_u16: reading number i of channel ch is (i * 977 + ch * 13001) & 0xFFFF."""

    def __init__(self, ch):
        self.ch = ch
        self.reads = 0

    @staticmethod
    def value(i, ch):
        return (i * 977 + ch * 13001) & 0xFFFF

    def read_u16(self):
        v = (self.reads * 977 + self.ch * 13001) & 0xFFFF
        self.reads += 1
        return v


class FakeTimer:
    """machine.Timer's init/deinit; `fire()` runs the callback as one period would."""

    PERIODIC = 1

    def __init__(self):
        self.freq = 0
        self.mode = -1
        self.callback = None

    def init(self, mode=1, freq=0, callback=None):
        self.mode = mode
        self.freq = freq
        self.callback = callback

    def deinit(self):
        self.callback = None

    def fire(self):
        if self.callback is not None:
            self.callback(self)
