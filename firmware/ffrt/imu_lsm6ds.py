"""LSM6DS3 / LSM6DS3TR-C / LSM6DSO over I2C as an ffrt sensor source: FIFO at 52 Hz, HAPT units.

Both sensors run at 52 Hz, the nearest ODR these chips have to HAPT's 50 Hz (a 128-sample
window spans 2.46 s instead of 2.56 s), and both are batched into the chip's FIFO in
continuous mode, so samples keep coming while the board learns. WHO_AM_I picks the FIFO:

- 0x69 LSM6DS3: 4096 16-bit words, 12-bit count; 0x6A LSM6DS3TR-C (also LSM6DSL/DSM):
  2048 words, 11-bit count. A "pattern" FIFO: each sample is six words, gx gy gz ax ay az,
  and FIFO_PATTERN says which of the six is read next; a read that does not start at 0
  (only after something else read the FIFO) skips to the next sample and counts the torn
  one as lost. Drain at least every 682 / 341 samples (13 s / 6.5 s).
- 0x6C LSM6DSO (also LSM6DSOX): 512 tagged words of 7 bytes (tag, x, y, z), gyroscope and
  accelerometer words apart; a sample is the two words of one time slot (same TAG_CNT).
  Other tags (timestamp, temperature, configuration change) are skipped; a slot whose
  other half never comes is dropped and counted. Drain at least every 256 samples (4.9 s).
  The LSM6DSO32 also answers 0x6C but its ranges differ: not supported.

Units (the HAPT stream's int16, integers only):
- accelerometer at +-8 g: 0.244 mg/LSB (= 8 g / 32768), that is 4096 LSB/g: copied unchanged.
- gyroscope at +-1000 deg/s: 35 mdps/LSB. To 2048 LSB per rad/s the factor is
  2048 * 0.035 * pi / 180 = 1.2510520; here `(raw * 20497 + 8192) >> 14`, M / 2**14 =
  1.2510376 (-1.2e-5 relative). Rounding is half up (the shift floors): within 0.5 LSB +
  |raw| * 1.5e-5 of the exact product, at most 0.88 LSB below the clip. |raw| * M < 32768 *
  20497 < 2**30. Above 26191 raw (917 deg/s = 16 rad/s) the result clips to int16.

`overflowed` counts samples lost: on an overrun (FIFO_STATUS2, read with the count) the
FIFO is reset (bypass, then continuous again) and the loss estimated from the time since
the last read; a nearly full FIFO is checked again after its data is read, and if an
overrun came in between, that data is dropped too. Torn or half samples dropped while
realigning count as well. A partial sample is left for the next read (in the FIFO; on the
LSM6DSO its first word waits in the driver).

    from machine import I2C, Pin
    from array import array
    from ffrt.imu_lsm6ds import LSM6DS
    imu = LSM6DS(I2C(0, scl=Pin(22), sda=Pin(21), freq=400_000))  # ESP32; SA0 low: 0x6A
    buf = array("h", [0] * (6 * 32))
    n = imu.read_into(buf)                   # samples of ax ay az gx gy gz; no allocation
"""

import time
from array import array

try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int  # type: ignore[assignment]

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks the I2C calls against the board's machine stubs
    import machine
    from typing import Any

ADDR = const(0x6A)          # SA0/SDO low; 0x6B with it high
RATE_HZ = const(52)
GYRO_MUL = const(20497)     # 2048 * 0.035 * pi / 180 * 2**14, rounded
GYRO_SHIFT = const(14)
_ROUND = const(8192)

_DS3_FIFO_CTRL1 = const(0x06)  # watermark, in words
_DS3_FIFO_CTRL3 = const(0x08)  # decimation per data set
_DSO_FIFO_CTRL1 = const(0x07)  # watermark, in words
_DSO_FIFO_CTRL3 = const(0x09)  # batch data rates
_FIFO_MODE = const(0x0A)       # FIFO_CTRL5 (LSM6DS3), FIFO_CTRL4 (LSM6DSO)
_WHO_AM_I = const(0x0F)
_CTRL1_XL = const(0x10)
_CTRL2_G = const(0x11)
_CTRL3_C = const(0x12)
_FIFO_STATUS1 = const(0x3A)
_FIFO_STATUS2 = const(0x3B)
_DS3_FIFO_OUT = const(0x3E)    # FIFO_DATA_OUT_L; a burst rolls over from 0x3F to 0x3E
_DSO_FIFO_OUT = const(0x78)    # FIFO_DATA_OUT_TAG; a burst rolls over from 0x7E to 0x78

_XL_52HZ_8G = const(0x3C)      # ODR 0011, FS_XL 11
_G_52HZ_1000DPS = const(0x38)  # ODR 0011, FS_G 10
_SW_RESET = const(0x01)
_BDU_IF_INC = const(0x44)
_DS3_NO_DECIMATION = const(0x09)  # gyro and accelerometer data sets, every sample
_DS3_BYPASS = const(0x18)      # ODR_FIFO 0011 (52 Hz), mode 000
_DS3_CONTINUOUS = const(0x1E)  # ODR_FIFO 0011, mode 110
_DSO_BDR_52HZ = const(0x33)    # BDR_GY 0011, BDR_XL 0011
_DSO_CONTINUOUS = const(0x06)
_WATERMARK = const(26)         # samples (0.5 s): FIFO_STATUS2 bit 7, for an INT pin
_OVR_DS3 = const(0x40)         # FIFO_OVER_RUN
_OVR_DSO = const(0x48)         # FIFO_OVR_IA | FIFO_OVR_LATCHED
_TAG_GYRO = const(0x01)
_TAG_XL = const(0x02)
_WORD = const(7)               # LSM6DSO FIFO word: tag + 6 bytes
_CHUNK = const(16)             # words per I2C read on the LSM6DSO, 2 * 8 samples on the LSM6DS3

# WHO_AM_I -> (tagged FIFO, DIFF_FIFO high bits in FIFO_STATUS2, capacity in words)
_CHIPS = {0x69: (False, 0x0F, 4096), 0x6A: (False, 0x07, 2048), 0x6C: (True, 0x03, 512)}


def gyro_to_hapt(raw):
    """A gyroscope reading (int16, +-1000 deg/s) in HAPT units, 2048 per rad/s, clipped."""
    v = (raw * GYRO_MUL + _ROUND) >> GYRO_SHIFT
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class LSM6DS:
    """An LSM6DS3/LSM6DS3TR-C/LSM6DSO FIFO as a stream of [ax, ay, az, gx, gy, gz] int16."""

    rate_hz = RATE_HZ

    def __init__(self, i2c, addr=ADDR, clock=None):
        # type: (machine.I2C, int, Any) -> None
        self._i2c = i2c
        self._addr = addr
        self._clock = clock or time  # ticks_ms, ticks_diff, sleep_ms (a fake in tests)
        self._buf = bytearray(_WORD * _CHUNK)
        mv = memoryview(self._buf)
        self._one = mv[:1]
        self._two = mv[:2]
        self._three = mv[:3]
        self._status = mv[:4]
        self.overflowed = 0   # samples lost (overrun; torn samples dropped)
        self._left = 0        # whole samples left in the FIFO by the last read
        self._t_last = 0
        self._pend = array("h", [0] * 6)  # LSM6DSO: the slot being assembled
        self._have = 0        # its words so far: bit 0 gyroscope, bit 1 accelerometer (tags)
        self._cnt = 0         # its TAG_CNT
        who = self._reg(_WHO_AM_I)
        if who not in _CHIPS:
            raise OSError("no LSM6DS3/LSM6DSO at 0x%02x (WHO_AM_I 0x%02x)" % (addr, who))
        self.who_am_i = who
        self._tagged, self._hi, self._capacity = _CHIPS[who]
        size = _WORD if self._tagged else 12  # bytes per read unit: a word or a sample
        units = _CHUNK if self._tagged else _CHUNK // 2
        self._views = [mv[:size * k] for k in range(1, units + 1)]
        self._init()

    def _reg(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._one)
        return self._buf[0]

    def _set(self, reg, value):
        self._buf[0] = value
        self._i2c.writeto_mem(self._addr, reg, self._one)

    def _init(self):
        self._set(_CTRL3_C, _SW_RESET)
        for _ in range(100):
            self._clock.sleep_ms(1)
            if not self._reg(_CTRL3_C) & _SW_RESET:
                break
        else:
            raise OSError("LSM6DS at 0x%02x did not leave reset" % self._addr)
        self._set(_CTRL3_C, _BDU_IF_INC)
        if self._tagged:
            self._set(_DSO_FIFO_CTRL1, 2 * _WATERMARK)  # < 256: FIFO_CTRL2 keeps WTM8 = 0
            self._set(_DSO_FIFO_CTRL3, _DSO_BDR_52HZ)
        else:
            self._set(_DS3_FIFO_CTRL1, 6 * _WATERMARK)  # < 256: FIFO_CTRL2 keeps FTH[11:8] = 0
            self._set(_DS3_FIFO_CTRL3, _DS3_NO_DECIMATION)
        self._set(_CTRL1_XL, _XL_52HZ_8G)
        self._set(_CTRL2_G, _G_52HZ_1000DPS)
        self._restart()
        self._t_last = self._clock.ticks_ms()

    def _restart(self):
        """Empty the FIFO (bypass mode) and batch again (continuous mode)."""
        if self._tagged:
            self._set(_FIFO_MODE, 0)
            self._set(_FIFO_MODE, _DSO_CONTINUOUS)
        else:
            self._set(_FIFO_MODE, _DS3_BYPASS)
            self._set(_FIFO_MODE, _DS3_CONTINUOUS)

    def _recover(self):
        """Reset the FIFO after an overrun and count what was lost since the last read."""
        self._restart()
        now = self._clock.ticks_ms()  # lost: all the FIFO took in up to now, since the last read
        el = self._clock.ticks_diff(now, self._t_last)
        lost = self._left + (el // 1000) * RATE_HZ + (el % 1000) * RATE_HZ // 1000
        self.overflowed += max(lost, self._capacity // (2 if self._tagged else 6) + 1)
        self._left = 0
        self._have = 0
        self._t_last = now
        return 0

    def read_into(self, buf):
        """Drain whole samples into buf (array('h'), 6 values each); returns how many."""
        now = self._clock.ticks_ms()
        s = self._buf
        n = 0
        self._i2c.readfrom_mem_into(self._addr, _FIFO_STATUS1,
                                    self._two if self._tagged else self._status)
        if s[1] & (_OVR_DSO if self._tagged else _OVR_DS3):
            return self._recover()
        words = ((s[1] & self._hi) << 8) | s[0]
        room = len(buf) // 6
        if self._tagged:
            take = min(words, 2 * room)  # with a word pending: still at most `room` samples
            n = self._tagged_into(buf, take)
            left = (words - take) // 2
        else:
            pattern = s[2] | ((s[3] & 0x03) << 8)
            if pattern:
                if words < 6 - pattern:
                    return 0  # the torn sample's last words are not there yet
                self._skip(6 - pattern)
                words -= 6 - pattern
                self.overflowed += 1
            avail = words // 6
            n = min(avail, room)
            self._pattern_into(buf, n)
            left = avail - n
        if words + (2 if self._tagged else 6) > self._capacity:
            # Nearly full: an overrun between the status and the data read dropped the
            # oldest words before we got them. On the LSM6DSO the latched flag says so; on
            # the LSM6DS3 the flag is a level that our reads cleared, but the words were
            # shifted (a full FIFO is not a whole number of samples), so FIFO_PATTERN is
            # no longer 0. Either way: drop what was read, start clean.
            self._i2c.readfrom_mem_into(self._addr, _FIFO_STATUS2,
                                        self._one if self._tagged else self._three)
            if (s[0] & _OVR_DSO) if self._tagged else (s[0] & _OVR_DS3 or s[1] or s[2] & 3):
                return self._recover()
        self._left = left
        self._t_last = now
        return n

    def _skip(self, k):
        for _ in range(k):
            self._i2c.readfrom_mem_into(self._addr, _DS3_FIFO_OUT, self._two)

    def _pattern_into(self, buf, n):
        b = self._buf
        j = 0
        while n:
            k = min(n, _CHUNK // 2)
            self._i2c.readfrom_mem_into(self._addr, _DS3_FIFO_OUT, self._views[k - 1])
            i = 0
            while i < 12 * k:
                for c in range(6):  # gx gy gz ax ay az in the FIFO -> ax ay az gx gy gz
                    v = b[i] | (b[i + 1] << 8)
                    v -= (v & 0x8000) << 1
                    if c < 3:
                        v = (v * GYRO_MUL + _ROUND) >> GYRO_SHIFT
                        v = 32767 if v > 32767 else (-32768 if v < -32768 else v)
                        buf[j + 3 + c] = v
                    else:
                        buf[j + c - 3] = v
                    i += 2
                j += 6
            n -= k

    def _tagged_into(self, buf, take):
        b = self._buf
        p = self._pend
        n = 0
        while take > 0:
            k = min(take, _CHUNK)
            self._i2c.readfrom_mem_into(self._addr, _DSO_FIFO_OUT, self._views[k - 1])
            i = 0
            while i < _WORD * k:
                tag = b[i] >> 3
                if tag == _TAG_XL or tag == _TAG_GYRO:
                    cnt = (b[i] >> 1) & 0x03
                    if self._have and (cnt != self._cnt or self._have & tag):
                        self.overflowed += 1  # the slot's other word never came
                        self._have = 0
                    self._cnt = cnt
                    off = 0 if tag == _TAG_XL else 3
                    for c in range(3):
                        v = b[i + 1 + 2 * c] | (b[i + 2 + 2 * c] << 8)
                        v -= (v & 0x8000) << 1
                        if off:
                            v = (v * GYRO_MUL + _ROUND) >> GYRO_SHIFT
                            v = 32767 if v > 32767 else (-32768 if v < -32768 else v)
                        p[off + c] = v
                    self._have |= tag
                    if self._have == 3:
                        for c in range(6):
                            buf[6 * n + c] = p[c]
                        n += 1
                        self._have = 0
                i += _WORD
            take -= k
        return n
