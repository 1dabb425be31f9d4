"""MPU-6050 over I2C as an ffrt sensor source: its FIFO drained at 50 Hz, in HAPT units.

The chip samples on its own clock (1 kHz / (1 + 19) = 50 Hz, DLPF_CFG 4: about 20 Hz
bandwidth, below the 25 Hz Nyquist limit) into its 1024-byte FIFO, so samples keep coming
while the board learns; `read_into` drains whatever has arrived. Call it at least every
85 samples (1.7 s) to lose nothing.

Units (the HAPT stream's int16, integers only):
- accelerometer at +-8 g: 4096 LSB/g natively, copied unchanged.
- gyroscope at +-1000 deg/s: 32.8 LSB/(deg/s) (datasheet). To 2048 LSB per rad/s the factor is
  2048 * pi / (180 * 32.8) = 1.0897666; here `(raw * 17855 + 8192) >> 14`, M / 2**14 =
  1.0897827 (+1.5e-5 relative). Rounding is half up (the shift floors), so the result is within
  0.5 LSB + |raw| * 1.6e-5 of the exact product: at most 0.99 LSB below the clip. |raw| * M
  < 32768 * 17855 < 2**30. Above 30067 raw (917 deg/s = 16 rad/s) the result clips to int16.

`overflowed` counts samples lost. When the FIFO is nearly full, INT_STATUS is read before
and after the data: FIFO_OFLOW means the chip overwrote its oldest bytes, so the FIFO no
longer starts at a sample boundary (1024 is not a multiple of 12). Then nothing read is
returned; the FIFO is reset and the loss estimated from the time since the last read (what
was left then, plus rate * elapsed; at least the 86 samples an overflow takes). A partial
sample stays in the FIFO for the next read.

    from machine import I2C, Pin
    from array import array
    from ffrt.imu_mpu6050 import MPU6050
    imu = MPU6050(I2C(0, sda=Pin(4), scl=Pin(5), freq=400_000))   # Pico, I2C0
    buf = array("h", [0] * (6 * 32))         # up to 32 samples of ax ay az gx gy gz
    n = imu.read_into(buf)                   # samples drained; no allocation
"""

import time

try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int  # type: ignore[assignment]

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks the I2C calls against the board's machine stubs
    import machine
    from typing import Any

ADDR = const(0x68)          # AD0 low; 0x69 with AD0 high
RATE_HZ = const(50)
GYRO_MUL = const(17855)     # 2048 * pi / (180 * 32.8) * 2**14, rounded
GYRO_SHIFT = const(14)
_ROUND = const(8192)        # 1 << (GYRO_SHIFT - 1)

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_GYRO_CONFIG = const(0x1B)
_ACCEL_CONFIG = const(0x1C)
_FIFO_EN = const(0x23)
_INT_ENABLE = const(0x38)
_INT_STATUS = const(0x3A)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)

_ID = const(0x68)
_RESET = const(0x80)        # PWR_MGMT_1: DEVICE_RESET (clears itself)
_CLK_PLL_X = const(0x01)    # PWR_MGMT_1: awake, clock from the X gyro's PLL
_DIV_50HZ = const(19)       # 1 kHz / (1 + 19)
_DLPF_20HZ = const(0x04)
_FS_1000DPS = const(0x10)
_FS_8G = const(0x10)
_OFLOW = const(0x10)        # INT_ENABLE FIFO_OFLOW_EN, INT_STATUS FIFO_OFLOW_INT
_FIFO_ACC_GYRO = const(0x78)  # FIFO_EN: XG YG ZG ACCEL -> ax ay az gx gy gz, big-endian
_FIFO_ON = const(0x40)      # USER_CTRL: FIFO_EN
_FIFO_RESET = const(0x04)   # USER_CTRL: FIFO_RESET, honoured while FIFO_EN is 0
_SAMPLE = const(12)         # FIFO bytes per sample
_CAPACITY = const(1024)
_CHUNK = const(8)           # samples per I2C read


def gyro_to_hapt(raw):
    """A gyroscope reading (int16, +-1000 deg/s) in HAPT units, 2048 per rad/s, clipped."""
    v = (raw * GYRO_MUL + _ROUND) >> GYRO_SHIFT
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class MPU6050:
    """The MPU-6050's FIFO as a stream of [ax, ay, az, gx, gy, gz] int16 samples."""

    rate_hz = RATE_HZ

    def __init__(self, i2c, addr=ADDR, clock=None):
        # type: (machine.I2C, int, Any) -> None
        self._i2c = i2c
        self._addr = addr
        self._clock = clock or time  # ticks_ms, ticks_diff, sleep_ms (a fake in tests)
        self._buf = bytearray(_SAMPLE * _CHUNK)
        mv = memoryview(self._buf)
        self._views = [mv[:_SAMPLE * k] for k in range(1, _CHUNK + 1)]
        self._one = mv[:1]
        self._two = mv[:2]
        self.overflowed = 0   # samples lost to FIFO overflow
        self._left = 0        # whole samples left in the FIFO by the last read
        self._t_last = 0      # ticks_ms of the last read
        self._init()

    def _reg(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._one)
        return self._buf[0]

    def _set(self, reg, value):
        self._buf[0] = value
        self._i2c.writeto_mem(self._addr, reg, self._one)

    def _init(self):
        who = self._reg(_WHO_AM_I)
        if who != _ID:
            raise OSError("no MPU6050 at 0x%02x (WHO_AM_I 0x%02x)" % (self._addr, who))
        self._set(_PWR_MGMT_1, _RESET)
        for _ in range(50):
            self._clock.sleep_ms(10)
            if not self._reg(_PWR_MGMT_1) & _RESET:
                break
        else:
            raise OSError("MPU6050 at 0x%02x did not leave reset" % self._addr)
        self._set(_PWR_MGMT_1, _CLK_PLL_X)
        self._set(_SMPLRT_DIV, _DIV_50HZ)
        self._set(_CONFIG, _DLPF_20HZ)
        self._set(_GYRO_CONFIG, _FS_1000DPS)
        self._set(_ACCEL_CONFIG, _FS_8G)
        self._set(_INT_ENABLE, _OFLOW)
        self._set(_FIFO_EN, _FIFO_ACC_GYRO)
        self._restart()
        self._t_last = self._clock.ticks_ms()

    def _restart(self):
        self._set(_USER_CTRL, _FIFO_RESET)
        self._set(_USER_CTRL, _FIFO_ON)
        self._reg(_INT_STATUS)  # reading clears a pending FIFO_OFLOW_INT

    def _recover(self):
        """Reset the FIFO after an overflow and count what was lost since the last read."""
        self._restart()
        now = self._clock.ticks_ms()  # lost: all the FIFO took in up to now, since the last read
        el = self._clock.ticks_diff(now, self._t_last)
        lost = self._left + (el // 1000) * RATE_HZ + (el % 1000) * RATE_HZ // 1000
        self.overflowed += max(lost, _CAPACITY // _SAMPLE + 1)
        self._left = 0
        self._t_last = now
        return 0

    def read_into(self, buf):
        """Drain whole samples into buf (array('h'), 6 values each); returns how many."""
        now = self._clock.ticks_ms()
        self._i2c.readfrom_mem_into(self._addr, _FIFO_COUNTH, self._two)
        count = (self._buf[0] << 8) | self._buf[1]
        # After an overflow the FIFO stays full (1024) until read, so only a nearly full
        # FIFO needs INT_STATUS: before the data (overflowed already: do not read it) and
        # after it (a sample written between the count and the data overflowed it,
        # shifting what was just read by 8 bytes: drop that batch too).
        near = count + 2 * _SAMPLE > _CAPACITY
        if near and self._reg(_INT_STATUS) & _OFLOW:
            return self._recover()
        avail = count // _SAMPLE
        n = min(avail, len(buf) // 6)
        b = self._buf
        j = 0
        todo = n
        while todo:
            k = min(todo, _CHUNK)
            self._i2c.readfrom_mem_into(self._addr, _FIFO_R_W, self._views[k - 1])
            i = 0
            end = k * _SAMPLE
            while i < end:
                for c in range(6):
                    v = (b[i] << 8) | b[i + 1]
                    v -= (v & 0x8000) << 1
                    if c >= 3:
                        v = (v * GYRO_MUL + _ROUND) >> GYRO_SHIFT
                        if v > 32767:
                            v = 32767
                        elif v < -32768:
                            v = -32768
                    buf[j] = v
                    j += 1
                    i += 2
            todo -= k
        if near and self._reg(_INT_STATUS) & _OFLOW:
            return self._recover()
        self._left = avail - n
        self._t_last = now
        return n
