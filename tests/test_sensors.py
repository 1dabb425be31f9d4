"""Sensor sources (ffrt.imu_mpu6050, ffrt.imu_lsm6ds, ffrt.adc_source) against register-level fakes.

tests/fake_i2c.py models each chip's registers, its FIFO (count registers, overflow, pattern or
tags) and a sample clock the tests advance. Checked here: the configuration in the fake's
register file; every drained sample equal, int16 for int16, to what the fake produced after
the documented conversion (so a sample read from the wrong offset cannot pass); overflow
counted and followed by aligned samples only; partial samples left for the next read; and,
in the MicroPython unix port with the same fakes, no allocation in read_into.
"""

import json
import math
import random
from array import array

import pytest

from conftest import REPO_ROOT
from fake_i2c import (FakeADC, FakeClock, FakeI2C, FakeLSM6DS, FakeMPU6050, FakeTimer,
                      pattern)
from ffkit.board import mpy
from ffrt import adc_source, imu_lsm6ds, imu_mpu6050
from ffrt.adc_source import AdcSource
from ffrt.imu_lsm6ds import LSM6DS
from ffrt.imu_mpu6050 import MPU6050

# gyroscope LSB -> HAPT's 2048 LSB per rad/s, from the datasheets' sensitivities at +-1000 dps
EXACT = {"mpu6050": 2048 * math.pi / (180 * 32.8), "lsm6ds": 2048 * 0.035 * math.pi / 180}
MODULES = {"mpu6050": imu_mpu6050, "lsm6ds": imu_lsm6ds}
CHIPS = ["mpu6050", "ds3", "ds3trc", "dso"]


def conv(family, raw):
    """The drivers' rule, restated: (raw * M + 2**13) >> 14, clipped to int16."""
    m = round(EXACT[family] * 2 ** 14)
    return max(-32768, min(32767, (raw * m + 8192) >> 14))


def expected(family, k):
    return [pattern(k, 0), pattern(k, 1), pattern(k, 2)] + [
        conv(family, pattern(k, ch)) for ch in (3, 4, 5)]


def make(chip, start_ms=0, us_per_byte=0):
    clock = FakeClock(start_ms)
    bus = FakeI2C(clock, us_per_byte=us_per_byte)
    if chip == "mpu6050":
        fake = bus.attach(FakeMPU6050())
        return clock, bus, fake, MPU6050(bus, clock=clock), "mpu6050"
    fake = bus.attach(FakeLSM6DS(chip))
    return clock, bus, fake, LSM6DS(bus, clock=clock), "lsm6ds"


def next_sample_us(fake, ahead=1):
    """When the fake takes its `ahead`-th sample from now."""
    fake.sync()
    k = fake._k + ahead
    return fake._t0 + -(-k * fake.rate_den() // fake.rate_num())


def samples(buf, n):
    return [list(buf[6 * i:6 * i + 6]) for i in range(n)]


def index_of(sample):
    return sample[0] + 30000  # pattern(): ax = k - 30000


def assert_exact(family, got, first=None):
    """Each sample is the fake's sample k, converted; k runs on by one (from `first`)."""
    k = first if first is not None else (index_of(got[0]) if got else 0)
    for s in got:
        assert s == expected(family, k), "sample %d: %r != %r" % (k, s, expected(family, k))
        k += 1
    return k


# ---- conversion factors ---------------------------------------------------------------------

@pytest.mark.parametrize("family, bound", [("mpu6050", 0.99), ("lsm6ds", 0.88)])
def test_gyro_factor_and_its_error(family, bound):
    mod = MODULES[family]
    m = mod.GYRO_MUL
    assert m == round(EXACT[family] * 2 ** 14) and mod.GYRO_SHIFT == 14
    assert 32768 * m + 8192 < 2 ** 30  # every product stays a small int on a 32-bit board
    assert abs(m / 2 ** 14 - EXACT[family]) / EXACT[family] < 1.6e-5
    worst = 0.0
    for raw in range(-32768, 32768):
        got = mod.gyro_to_hapt(raw)
        assert got == conv(family, raw)
        ideal = raw * EXACT[family]
        if -32768 <= ideal <= 32767:
            worst = max(worst, abs(got - ideal))
        else:
            assert got == (32767 if ideal > 0 else -32768)
    assert worst < bound, worst
    # 16 rad/s is the top of HAPT's int16 range: 917 deg/s, inside the +-1000 deg/s range
    assert mod.gyro_to_hapt(32767) == 32767 and mod.gyro_to_hapt(-32768) == -32768


# ---- configuration --------------------------------------------------------------------------

def test_mpu6050_configuration():
    clock, bus, fake, imu, _ = make("mpu6050")
    r = fake.regs
    assert (r[0x6B], r[0x19], r[0x1A], r[0x1B], r[0x1C]) == (0x01, 19, 0x04, 0x10, 0x10)
    assert (r[0x38], r[0x23], r[0x6A]) == (0x10, 0x78, 0x40)
    w = [(reg, v) for _, reg, v in bus.writes]
    assert w[0] == (0x6B, 0x80)                           # reset first, waited out
    assert w.index((0x6A, 0x04)) < w.index((0x6A, 0x40))  # FIFO reset, then enabled
    assert imu.rate_hz == 50 and fake.rate_num() * 10 ** 6 // fake.rate_den() == 50
    clock.advance_ms(1000)
    buf = array("h", [0] * 600)
    assert imu.read_into(buf) == 50 and fake.underflows == 0


@pytest.mark.parametrize("kind, who", [("ds3", 0x69), ("ds3trc", 0x6A), ("dso", 0x6C)])
def test_lsm6ds_configuration(kind, who):
    clock, bus, fake, imu, _ = make(kind)
    r = fake.regs
    assert imu.who_am_i == who and imu.rate_hz == 52
    assert (r[0x10], r[0x11], r[0x12]) == (0x3C, 0x38, 0x44)  # 52 Hz, +-8 g, +-1000 dps, BDU
    if kind == "dso":
        assert (r[0x07], r[0x08], r[0x09], r[0x0A]) == (52, 0, 0x33, 0x06)
    else:
        assert (r[0x06], r[0x07], r[0x08], r[0x0A]) == (156, 0, 0x09, 0x1E)
    assert bus.writes[0][1:] == (0x12, 0x01)               # SW_RESET first
    clock.advance_ms(490)                                  # 25 samples: below the watermark
    assert not bus.readfrom_mem(0x6A, 0x3B, 1)[0] & 0x80
    clock.advance_ms(10)                                   # 26
    assert bus.readfrom_mem(0x6A, 0x3B, 1)[0] & 0x80
    clock.advance_ms(500)
    buf = array("h", [0] * 600)
    assert imu.read_into(buf) == 52 and fake.underflows == 0


def test_wrong_or_missing_chip():
    clock = FakeClock()
    bus = FakeI2C(clock)
    bus.attach(FakeLSM6DS("dso", addr=0x68))
    with pytest.raises(OSError, match="WHO_AM_I 0x00"):
        MPU6050(bus, clock=clock)
    with pytest.raises(OSError):
        LSM6DS(bus, addr=0x6B, clock=clock)  # nobody there: ENODEV


# ---- draining -------------------------------------------------------------------------------

@pytest.mark.parametrize("chip", CHIPS)
def test_drained_samples_are_exact(chip):
    """Reads at uneven times into buffers of uneven sizes: every sample, in order, exact."""
    clock, bus, fake, imu, family = make(chip)
    rng = random.Random(chip)
    got = []
    for _ in range(150):
        clock.advance_ms(rng.randrange(0, 200))
        buf = array("h", [0] * (6 * rng.randrange(1, 40)))
        got += samples(buf, imu.read_into(buf))
    clock.advance_ms(100)
    buf = array("h", [0] * 6000)
    got += samples(buf, imu.read_into(buf))
    assert_exact(family, got, first=0)
    assert len(got) == fake.index and imu.overflowed == 0 and fake.underflows == 0
    assert len(got) > 700


@pytest.mark.parametrize("chip", CHIPS)
def test_empty_fifo_and_full_buffer(chip):
    clock, bus, fake, imu, family = make(chip)
    buf = array("h", [0] * 6)
    assert imu.read_into(buf) == 0                        # nothing yet
    clock.advance_ms(1000)
    assert imu.read_into(array("h", [0] * 5)) == 0        # no room for one sample
    got = []
    while True:
        n = imu.read_into(buf)
        if not n:
            break
        got += samples(buf, n)
    assert len(got) == fake.index
    assert_exact(family, got, first=0)


# ---- overflow -------------------------------------------------------------------------------

# time without a read that overflows each FIFO: 1024 B / 12 = 85 samples at 50 Hz (1.7 s),
# 4096 words / 6 = 682 samples at 52 Hz (13.1 s), 341 (6.6 s), 512 / 2 = 256 (4.9 s)
OVERFLOW_MS = {"mpu6050": 3000, "ds3": 15000, "ds3trc": 8000, "dso": 6000}


@pytest.mark.parametrize("start_ms", [0, 2 ** 30 - 2000], ids=["t0", "ticks-wrap"])
@pytest.mark.parametrize("chip", CHIPS)
def test_overflow_is_counted_and_reading_resumes_aligned(chip, start_ms):
    clock, bus, fake, imu, family = make(chip, start_ms=start_ms)
    buf = array("h", [0] * 6000)
    clock.advance_ms(1000)
    small = array("h", [0] * 60)
    got = samples(small, imu.read_into(small))   # 10 of the 50 or 52: the rest stays
    left = fake.index - 10
    assert_exact(family, got, first=0)
    clock.advance_ms(OVERFLOW_MS[chip])
    before = bus.transactions
    n = imu.read_into(buf)
    lost = fake.index - 10
    assert n == 0 and fake.overwritten > 0
    assert bus.transactions - before <= 6          # no FIFO data read: status, reset
    # the overwrite left the FIFO starting mid-sample; the reset discarded all of it, and
    # the count is what was left plus what came since: exact here, the window being whole
    # sample periods
    assert imu.overflowed == lost == left + OVERFLOW_MS[chip] * imu.rate_hz // 1000
    assert fake.count == 0
    for _ in range(40):
        clock.advance_ms(97)
        more = samples(buf, imu.read_into(buf))
        assert_exact(family, more, first=fake.index - len(more) if more else None)
        got += more
    assert imu.overflowed == lost and fake.underflows == 0
    assert len(got) + imu.overflowed == fake.index and fake.count == 0


# the sample that overflows each FIFO when nothing is read: 85 * 12 bytes fit in 1024,
# 682 * 6 words in 4096, 341 * 6 in 2048, 256 * 2 tagged words in 512
BRINK = {"mpu6050": 86, "ds3": 683, "ds3trc": 342, "dso": 257}


@pytest.mark.parametrize("chip", CHIPS)
def test_overflow_between_status_and_data_is_not_delivered(chip):
    """At 400 kHz (23 us a byte) a read takes time, and the sample that overflows a full
    FIFO may land between any two of the driver's transactions: after the count, after the
    status, during the data. Whatever was read from a FIFO that overflowed meanwhile (its
    start shifted mid-sample) is dropped, never delivered. Swept over 40 landing times."""
    outcomes = set()
    for offset in range(5, 400, 10):
        clock, bus, fake, imu, family = make(chip, us_per_byte=23)
        buf = array("h", [0] * 6000)
        clock.advance_ms(200)
        got = samples(buf, imu.read_into(buf))
        k = len(got)
        clock.us = next_sample_us(fake, BRINK[chip]) - offset
        n = imu.read_into(buf)
        got += samples(buf, n)
        outcomes.add((n > 0, imu.overflowed > 0))
        for _ in range(6):
            clock.advance_ms(150)
            got += samples(buf, imu.read_into(buf))
        ks = [index_of(s) for s in got]
        assert ks[:k] == list(range(k)) and ks == sorted(set(ks)), offset
        for s in got:
            assert s == expected(family, index_of(s)), (offset, s)
        in_fifo = fake.count // {"mpu6050": 12, "dso": 2}.get(chip, 6)
        assert abs(len(got) + imu.overflowed - (fake.index - in_fifo)) <= 1, offset
        assert fake.underflows == 0
    # some landed before the data was read (all dropped), some after (delivered)
    assert {delivered for delivered, _ in outcomes} == {False, True}, outcomes


# ---- partial and torn samples ---------------------------------------------------------------

@pytest.mark.parametrize("chip, units", [("mpu6050", 5), ("ds3", 3), ("ds3trc", 5),
                                         ("dso", 1)])
def test_partial_sample_is_left_for_the_next_read(chip, units):
    clock, bus, fake, imu, family = make(chip)
    buf = array("h", [0] * 600)
    clock.advance_ms(300)
    got = samples(buf, imu.read_into(buf))
    fake.partial = units
    clock.us = next_sample_us(fake)            # one sample, only its first units written
    assert imu.read_into(buf) == 0
    if chip != "dso":
        assert fake.count == units             # still in the FIFO
    clock.advance_ms(1)                        # the rest arrives
    got += samples(buf, imu.read_into(buf))
    assert len(got) == fake.index
    assert_exact(family, got, first=0)


@pytest.mark.parametrize("accel_first", [False, True])
def test_lsm6dso_pairs_words_by_time_slot_and_skips_other_tags(accel_first):
    clock, bus, fake, imu, family = make("dso")
    fake.accel_first = accel_first
    fake.ts_every = 3                          # timestamp words in between
    buf = array("h", [0] * 60)
    got = []
    for step in (7, 13, 30, 1, 0, 45, 19, 240):
        clock.advance_ms(step)
        got += samples(buf, imu.read_into(buf))
    clock.advance_ms(10)
    while True:
        n = imu.read_into(buf)
        if not n:
            break
        got += samples(buf, n)
    assert len(got) == fake.index and imu.overflowed == 0
    assert_exact(family, got, first=0)


def test_lsm6dso_half_slot_is_dropped_and_counted():
    clock, bus, fake, imu, family = make("dso")
    buf = array("h", [0] * 600)
    clock.advance_ms(100)
    got = samples(buf, imu.read_into(buf))
    clock.advance_ms(60)                       # 3 more slots: g a g a g a
    fake.pop_units(1)                          # someone else took the first gyro word
    got += samples(buf, imu.read_into(buf))
    assert imu.overflowed == 1                 # slot 5's accelerometer word, alone
    assert_exact(family, got[:5], first=0)
    assert_exact(family, got[5:], first=6)


@pytest.mark.parametrize("kind", ["ds3", "ds3trc"])
def test_lsm6ds3_torn_sample_realigns_on_fifo_pattern(kind):
    clock, bus, fake, imu, family = make(kind)
    buf = array("h", [0] * 600)
    clock.advance_ms(100)
    got = samples(buf, imu.read_into(buf))
    clock.advance_ms(60)
    fake.pop_units(2)                          # gx gy of the next sample gone: pattern 2
    assert fake.pattern == 2
    got += samples(buf, imu.read_into(buf))
    assert imu.overflowed == 1                 # the torn sample
    assert_exact(family, got[:5], first=0)
    assert_exact(family, got[5:], first=6)
    assert len(got) == fake.index - 1 and fake.underflows == 0


# ---- ADC ------------------------------------------------------------------------------------

def adc_expected(i, ch, zero=32768, mul=1, shift=0):
    v = ((FakeADC.value(i, ch) - zero) * mul + ((1 << shift) >> 1)) >> shift
    return max(-32768, min(32767, v))


def test_adc_polled_keeps_a_fixed_grid():
    clock = FakeClock(2 ** 30 - 3000)  # runs across the ticks wrap
    adcs = [FakeADC(c) for c in range(3)]
    src = AdcSource(adcs, rate_hz=50, clock=clock)
    buf = array("h", [0] * 30)
    times = []
    for step in range(2000):  # 10 s in 5 ms steps
        if src.read_into(buf):
            assert list(buf[:3]) == [adc_expected(len(times), c) for c in range(3)]
            times.append(step * 5)
        clock.advance_ms(5)
    assert times == list(range(0, 10000, 20)) and src.overflowed == 0
    clock.advance_ms(95)  # 10095, late: 10000 .. 10060 missed; 10080's sample taken now
    assert src.read_into(buf) == 1 and src.overflowed == 4
    clock.advance_ms(4)   # 10099: the next is due at 10100, on the grid
    assert src.read_into(buf) == 0
    clock.advance_ms(1)
    assert src.read_into(buf) == 1 and src.read_into(buf) == 0
    clock.advance_ms(2 ** 29 + 7)  # not called for 6 days: ticks_diff cannot say how long
    assert src.read_into(buf) == 0 and src.read_into(buf) == 1  # a new grid from now
    clock.advance_ms(19)
    assert src.read_into(buf) == 0
    clock.advance_ms(1)
    assert src.read_into(buf) == 1


def test_adc_scaling_adxl335_to_hapt_units():
    clock = FakeClock()

    class Const:
        def __init__(self, v):
            self.v = v

        def read_u16(self):
            return self.v

    # ADXL335 on 3.3 V: 0.1 of the supply per g = 6553.6 counts; zero g at 32768
    one_g, minus_g = Const(32768 + 6554), Const(32768 - 6554)
    rail, ground = Const(65535), Const(0)
    src = AdcSource([one_g, minus_g, rail, ground], mul=5, shift=3, clock=clock)
    buf = array("h", [0] * 4)
    assert src.read_into(buf) == 1
    assert list(buf) == [4096, -4096, 20479, -20480]  # +-1 g = +-4096; rails: about +-5 g
    src = AdcSource([rail, ground], zero=[0, 65535], mul=1, clock=clock)
    src.read_into(buf)
    assert list(buf[:2]) == [32767, -32768]  # clipped
    with pytest.raises(ValueError):
        AdcSource([rail], mul=16384)
    with pytest.raises(ValueError):
        AdcSource([rail, ground], zero=[1, 2, 3])


def test_adc_timer_ring():
    clock = FakeClock()
    adcs = [FakeADC(c) for c in range(2)]
    src = AdcSource(adcs, rate_hz=50, ring=8, clock=clock)
    timer = FakeTimer()
    src.start(timer)
    assert (timer.mode, timer.freq) == (FakeTimer.PERIODIC, 50)
    buf = array("h", [0] * 10)
    for _ in range(3):
        timer.fire()
    assert src.read_into(buf) == 3
    assert list(buf[:6]) == [adc_expected(i, c) for i in range(3) for c in range(2)]
    for _ in range(10):  # 7 fit (one slot stays free), 3 dropped
        timer.fire()
    assert src.overflowed == 3
    assert src.read_into(buf) == 5 and src.read_into(buf) == 2 and src.read_into(buf) == 0
    assert list(buf[:4]) == [adc_expected(i, c) for i in (8, 9) for c in range(2)]
    src.stop()
    assert timer.callback is None


# ---- MicroPython: the same fakes, no allocation ---------------------------------------------

_MPY_SCRIPT = """
import gc, json, sys
sys.path.insert(0, %(tests)r)
from array import array
from fake_i2c import FakeClock, FakeI2C, FakeMPU6050, FakeLSM6DS, FakeADC, FakeTimer, pattern
from ffrt.imu_mpu6050 import MPU6050
from ffrt.imu_lsm6ds import LSM6DS
from ffrt.adc_source import AdcSource
from ffrt import imu_mpu6050, imu_lsm6ds

def build(chip):
    clock = FakeClock()
    bus = FakeI2C(clock, log=False)
    if chip == "mpu6050":
        bus.attach(FakeMPU6050())
        return clock, MPU6050(bus, clock=clock), imu_mpu6050.gyro_to_hapt
    bus.attach(FakeLSM6DS(chip))
    return clock, LSM6DS(bus, clock=clock), imu_lsm6ds.gyro_to_hapt

def check(buf, n, k, g):
    ok = True
    for i in range(n):
        for c in range(6):
            v = pattern(k + i, c)
            ok = ok and buf[6 * i + c] == (v if c < 3 else g(v))
    return ok

def run(chip):
    clock, imu, g = build(chip)
    buf = array("h", [0] * 600)
    clock.advance_ms(100)
    k = imu.read_into(buf)
    gc.collect()
    a = gc.mem_alloc()
    total = 0
    n = 0
    for i in range(100):
        clock.advance_ms(20)
        n = imu.read_into(buf)
        total += n
    alloc = gc.mem_alloc() - a
    exact = n > 0 and check(buf, n, k + total - n, g)
    clock.advance_ms(20000)      # overflow, then recover inside read_into
    gc.collect()
    a = gc.mem_alloc()
    r = imu.read_into(buf)
    alloc_recover = gc.mem_alloc() - a
    clock.advance_ms(500)
    n = imu.read_into(buf)
    aligned = n > 0 and check(buf, n, buf[0] + 30000, g)
    return {"alloc": alloc, "samples": total, "exact": exact, "alloc_recover": alloc_recover,
            "recover_returned": r, "overflowed": imu.overflowed, "aligned_after": aligned}

def run_adc(timer_mode):
    clock = FakeClock()
    src = AdcSource([FakeADC(c) for c in range(3)], mul=5, shift=3, clock=clock)
    t = FakeTimer()
    if timer_mode:
        src.start(t)
    buf = array("h", [0] * 48)
    gc.collect()
    a = gc.mem_alloc()
    total = 0
    for i in range(100):
        clock.advance_ms(20)
        t.fire()
        total += src.read_into(buf)
    alloc = gc.mem_alloc() - a   # before the dict below: MicroPython builds it first
    return {"alloc": alloc, "samples": total}

res = {}
for chip in ("mpu6050", "ds3", "ds3trc", "dso"):
    res[chip] = run(chip)
res["adc_polled"] = run_adc(False)
res["adc_timer"] = run_adc(True)
print(json.dumps(res))
"""


@pytest.mark.device
def test_read_into_allocates_nothing_in_micropython(micropython):
    res = mpy.run_json(_MPY_SCRIPT % {"tests": str(REPO_ROOT / "tests")})
    for chip in CHIPS:
        r = res[chip]
        assert r["alloc"] == 0 and r["alloc_recover"] == 0, (chip, r)
        assert r["exact"] and r["aligned_after"], (chip, r)
        assert r["samples"] in (100, 104) and r["recover_returned"] == 0, (chip, r)
        assert r["overflowed"] >= 1000, (chip, r)
    for mode in ("adc_polled", "adc_timer"):
        assert res[mode] == {"alloc": 0, "samples": 100}, (mode, res[mode])
