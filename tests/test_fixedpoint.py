"""ffrt.fixedpoint: integer square root, sigmoid table, xorshift32 in 16-bit halves."""

import importlib.util
import math
import zlib
from array import array

import pytest

from ffkit.board import mpy
from ffrt import fixedpoint as fp

SMALL_INT = 1 << 30
M32 = 0xFFFFFFFF


def _load_tool(repo_root, name):
    path = repo_root / "tools" / (name + ".py")
    spec = importlib.util.spec_from_file_location("tools_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- sigmoid table --------------------------------------------------------------------------

def test_sigmoid_table_matches_generator(repo_root):
    gen = _load_tool(repo_root, "gen_sigmoid")
    table = gen.sigmoid_q8_table()
    assert list(fp.SIGMOID_Q8) == table
    assert table == [round(256 / (1 + math.exp(-(2 * i - 63) / 16))) for i in range(64)]
    # the literal in fixedpoint.py is the generator's output, byte for byte
    source = (repo_root / "firmware" / "ffrt" / "fixedpoint.py").read_text()
    assert gen.format_table(table) in source


def test_sigmoid_table_shape():
    t = list(fp.SIGMOID_Q8)
    assert len(t) == 64
    assert all(a <= b for a, b in zip(t, t[1:]))
    assert all(t[i] + t[63 - i] == fp.ONE_Q8 for i in range(64))  # odd symmetry about 1/2
    assert 0 < t[0] and t[-1] < fp.ONE_Q8


@pytest.mark.parametrize("gshift", [0, 1, 4, 11, 24])
def test_sigmoid_q8_indexes_and_clamps(gshift):
    t = fp.SIGMOID_Q8
    theta = 40000
    for z in range(-70, 71):
        g = theta + (z << gshift)
        assert fp.sigmoid_q8(g, theta, gshift) == t[min(63, max(0, z + 32))], z
    # one goodness unit below the threshold rounds down (arithmetic shift)
    assert fp.sigmoid_q8(theta - 1, theta, gshift) == t[31]
    assert fp.sigmoid_q8(theta, theta, gshift) == t[32]


def test_sigmoid_q8_extremes():
    t = fp.SIGMOID_Q8
    assert fp.sigmoid_q8(0, (1 << 24) - 1, 0) == t[0] == 5
    assert fp.sigmoid_q8(SMALL_INT - 1, 0, 0) == t[63] == 251
    assert fp.sigmoid_q8(-(SMALL_INT - 1), 0, 24) == 5  # head margins may be negative
    assert fp.sigmoid_q8(SMALL_INT - 1, 0, 24) == 251


# ---- isqrt ----------------------------------------------------------------------------------

ISQRT_EDGES = [0, 1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 24, 25, 99, 100, 101,
               (1 << 28) - 1, 1 << 28, (1 << 28) + 1, (1 << 29) - 1, 1 << 29,
               32767 ** 2 - 1, 32767 ** 2, 32767 ** 2 + 1, SMALL_INT - 1]


@pytest.mark.parametrize("n", ISQRT_EDGES)
def test_isqrt_edges(n):
    assert fp.isqrt(n) == math.isqrt(n)


def test_isqrt_sweep():
    # every n below 2**16, then around every perfect square k*k up to 2**30 - 1, then
    # each power of two and its neighbours, then a stride through the whole range
    for n in range(1 << 16):
        assert fp.isqrt(n) == math.isqrt(n), n
    for k in range(256, 32768):
        sq = k * k
        assert fp.isqrt(sq - 1) == k - 1, sq - 1
        assert fp.isqrt(sq) == k, sq
        assert fp.isqrt(sq + 1) == k, sq + 1
    for p in range(1, 30):
        for n in ((1 << p) - 1, 1 << p, (1 << p) + 1):
            assert fp.isqrt(n) == math.isqrt(n), n
    for n in range(1 << 16, SMALL_INT, 104729):  # a prime stride: 10,252 values
        assert fp.isqrt(n) == math.isqrt(n), n


@pytest.mark.parametrize("n", [-1, -2, -(1 << 29)])
def test_isqrt_negative_raises(n):
    with pytest.raises(ValueError, match="negative"):
        fp.isqrt(n)


# ---- xorshift32 in halves -------------------------------------------------------------------

def xorshift32(s):
    s ^= (s << 13) & M32
    s ^= s >> 17
    s ^= (s << 5) & M32
    return s


@pytest.mark.parametrize("seed", [1, 0x2545, 0xDEADBEEF, M32, 0x80000000, 0x0000FFFF,
                                  0xFFFF0000])
def test_xs_next_equals_32bit_xorshift(seed):
    s = seed
    buf = array("H", [s >> 16, s & 0xFFFF])
    for step in range(10_000):
        s = xorshift32(s)
        assert fp.xs_next(buf, 0, 16) == s >> 16, step
        assert (buf[0] << 16) | buf[1] == s, step


def test_xs_next_uses_its_own_slot_and_top_bits():
    buf = array("H", [0] * 6)
    fp.seed_state(buf, 1, 12345)
    before = list(buf)
    assert before[0:2] == [0, 0] and before[4:6] == [0, 0]
    s = (buf[2] << 16) | buf[3]
    for k in (1, 7, 15, 16, 17, 24):
        r = fp.xs_next(buf, 1, k)
        s = xorshift32(s)
        assert r == s >> (32 - k)
        assert list(buf[2:4]) == [s >> 16, s & 0xFFFF]
    assert buf[0:2] == array("H", [0, 0]) and buf[4:6] == array("H", [0, 0])


@pytest.mark.parametrize("k", range(1, 25))
def test_top_bits(k):
    words = [0, 1, M32, 0x80000000, 0x7FFFFFFF, 0x0000FFFF, 0xFFFF0000, 0x12345678]
    s = 0x9E3779B9
    for _ in range(200):
        s = xorshift32(s)
        words.append(s)
    for wd in words:
        r = fp.top_bits(wd >> 16, wd & 0xFFFF, k)
        assert r == wd >> (32 - k), hex(wd)
        assert 0 <= r < 1 << k
    assert fp.top_bits(0xFFFF, 0xFFFF, k) == (1 << k) - 1


def test_xs_below_range_and_spread():
    buf = array("H", [0, 0])
    fp.seed_state(buf, 0, 7)
    for n in (1, 2, 3, 10, 1000, 1 << 15):
        seen = set()
        for _ in range(400):
            r = fp.xs_below(buf, 0, n)
            assert 0 <= r < n
            seen.add(r)
        assert len(seen) >= min(n, 300)  # every value of a small range shows up


def test_seed_state_zero_is_not_the_zero_state():
    buf = array("H", [0, 0])
    fp.seed_state(buf, 0, 0)
    assert list(buf) != [0, 0]
    first = [fp.xs_next(buf, 0, 16) for _ in range(8)]
    assert any(first), "a zero state would only ever give zeros"


def test_seed_state_is_deterministic_and_separates_neighbours():
    states = set()
    for seed in list(range(64)) + [SMALL_INT - 1]:
        a = array("H", [0, 0])
        b = array("H", [9, 9])
        fp.seed_state(a, 0, seed)
        fp.seed_state(b, 0, seed)
        assert a == b
        states.add(tuple(a))
    assert len(states) == 65


# ---- the same bits in MicroPython -----------------------------------------------------------

_MPY_SCRIPT = """
import json, binascii
from array import array
from ffrt import fixedpoint as fp
roots = bytearray()
for n in NS:
    r = fp.isqrt(n)
    roots.append(r & 0xFF); roots.append(r >> 8)
buf = array("H", [0, 0, 0, 0])
fp.seed_state(buf, 0, 0)
fp.seed_state(buf, 1, 1073741823)
draws = bytearray()
for i in range(10000):
    r = fp.xs_next(buf, i & 1, 24)
    draws.append(r & 0xFF); draws.append((r >> 8) & 0xFF); draws.append(r >> 16)
sig = bytes(fp.sigmoid_q8(g, 5000, 3) for g in range(4000, 6000, 7))
print(json.dumps([binascii.crc32(roots), binascii.crc32(draws), binascii.crc32(sig),
                  list(buf)]))
"""


def _digests(ns):
    roots = bytearray()
    for n in ns:
        r = fp.isqrt(n)
        roots += bytes([r & 0xFF, r >> 8])
    buf = array("H", [0, 0, 0, 0])
    fp.seed_state(buf, 0, 0)
    fp.seed_state(buf, 1, 1073741823)
    draws = bytearray()
    for i in range(10000):
        r = fp.xs_next(buf, i & 1, 24)
        draws += bytes([r & 0xFF, (r >> 8) & 0xFF, r >> 16])
    sig = bytes(fp.sigmoid_q8(g, 5000, 3) for g in range(4000, 6000, 7))
    return [zlib.crc32(roots), zlib.crc32(draws), zlib.crc32(sig), list(buf)]


@pytest.mark.device
@pytest.mark.parity
def test_micropython_gives_the_same_bits(micropython):
    ns = ISQRT_EDGES + list(range(0, SMALL_INT, 1048573))
    got = mpy.run_json(_MPY_SCRIPT.replace("NS", repr(ns)))
    assert got == _digests(ns)
