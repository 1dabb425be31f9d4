"""ffrt.features (the board's window features) and its numpy twin ffkit.twins.features_np.

- On real HAPT sessions, the Windower fed one sample at a time gives exactly the bytes that
  features_np computes for all windows at once; in CPython and in the MicroPython unix port
  (where pushing allocates nothing after the first window).
- On adversarial int16 streams (full-scale, alternating, random, out of range) the twins
  still agree, and no intermediate reaches 2**30 (every arithmetic result is recorded by
  the instrumentation of tests/test_kernels.py).
- The features mean what ffrt.features says they mean, on streams whose answer is known.
"""

import numpy as np
import pytest

from ffkit.board import mpy

from ffkit.data import hapt

from ffkit.twins import features_np
from ffrt import features, fixedpoint
from test_kernels import Peak, instrumented


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return hapt.load(cache=tmp_path_factory.mktemp("ffkit-cache"))


def _session(rec, subject, session):
    s = int(np.flatnonzero((rec.subject == subject) & (rec.session == session))[0])
    a, b = rec.session_range(s)
    return rec.samples[a:b]


def _windower_features(samples, mod=features):
    w = mod.Windower()
    outs = []
    for row in np.asarray(samples).tolist():
        o = w.push(*row)
        if o is not None:
            outs.append(bytes(o))
    return np.frombuffer(b"".join(outs), np.uint8).reshape(-1, 72)


def test_twins_identical_on_real_sessions(rec):
    for subject, session in ((1, 0), (10, 2), (23, 1)):
        x = _session(rec, subject, session)
        starts = features_np.window_starts(len(x))
        got = _windower_features(x)
        assert len(got) == len(starts) == (len(x) - 128) // 64 + 1
        assert np.array_equal(got, features_np.features(x, starts)), (subject, session)


def _adversarial_streams():
    rng = np.random.RandomState(7)
    n = 128 + 64 * 3
    alt = np.where(np.arange(n) % 2 == 0, 32767, -32768)
    yield "full scale +", np.full((n, 6), 32767)
    yield "full scale -", np.full((n, 6), -32768)
    yield "alternating", np.repeat(alt[:, None], 6, axis=1)
    blocks = np.where(np.arange(n) // 16 % 2, 32767, -32768)
    yield "alternating blocks of 16", np.repeat(blocks[:, None], 6, axis=1)
    yield "uniform int16", rng.randint(-32768, 32768, size=(n, 6))
    yield "tiny noise", rng.randint(-2, 3, size=(n, 6))
    yield "zeros", np.zeros((n, 6), int)


_STREAMS = list(_adversarial_streams())


@pytest.mark.parametrize("name,x", _STREAMS, ids=[name for name, _ in _STREAMS])
def test_twins_identical_and_bounded_on_adversarial_streams(name, x):
    want = features_np.features(x.astype(np.int16), features_np.window_starts(len(x)))
    peak = Peak()
    fp = instrumented(fixedpoint, peak)
    mod = instrumented(features, peak, isqrt=fp.isqrt)
    got = _windower_features(x, mod)
    assert np.array_equal(got, want), name
    assert peak.value < 2 ** 30, (name, peak.value, peak.line)


def test_out_of_range_samples_saturate_like_int16():
    x = np.array([[40000, -40000, 2 ** 20, -(2 ** 20), 32768, -32769]] * 128)
    clipped = np.clip(x, -32768, 32767)
    assert np.array_equal(_windower_features(x), _windower_features(clipped))
    assert np.array_equal(features_np.features(x, [0]), _windower_features(clipped))


def test_bounds_with_real_data(rec):
    peak = Peak()
    fp = instrumented(fixedpoint, peak)
    mod = instrumented(features, peak, isqrt=fp.isqrt)
    x = _session(rec, 6, 1)[26200:26200 + 128 + 64 * 4]   # gyro at +-10 rad/s in here
    assert np.abs(x).max() >= 20000
    got = _windower_features(x, mod)
    assert np.array_equal(got, features_np.features(x, features_np.window_starts(len(x))))
    assert 2 ** 26 < peak.value < 2 ** 30   # the magnitude's sum of squares is the largest


def test_features_mean_what_the_docstring_says():
    n = 128
    t = np.arange(n)
    x = np.zeros((n, 6), np.int64)
    x[:, 0] = np.where(t // 8 % 2, 1000, -1000)     # square wave, period 16: 15 crossings
    x[:, 1] = t * 16                                 # ramp: |x[i] - x[i - L]| = 16 L
    x[:, 2] = 4096                                   # 1 g
    x[:, 3] = 3 * 400                                # gyro (3, 4, 0) * 400 -> |g| = 500 * 4 / 4
    x[:, 4] = 4 * 400
    F = features_np.features(x, [0])[0].reshape(8, 9).astype(int)
    f = _windower_features(x)[0].reshape(8, 9).astype(int)
    assert np.array_equal(F, f)
    # square wave: mean 0 -> 128, deviation 1000 -> isqrt(16000) = 126, min/max +-1000 >> 6
    assert F[0].tolist()[:4] == [128, 126, 128 - 16, 128 + 15]
    assert F[0, 8] == 2 * 15
    assert F[0, 4] == fixedpoint.isqrt(((15 * 2000) >> 7) << 4)     # lag 1: 15 jumps of 2000
    assert F[0, 6] == fixedpoint.isqrt(((120 * 2000) >> 7) << 4)    # lag 8: every pair differs
    assert F[0, 7] == 0                                              # lag 16: none does
    # ramp: lag L gives 16 L per pair, (128 - L) pairs
    for j, lag in enumerate(features.LAGS):
        assert F[1, 4 + j] == fixedpoint.isqrt(((16 * lag * (128 - lag)) >> 7) << 4)
    assert F[1, 8] == 2 * 1                          # a ramp crosses its mean once
    # constant 1 g on z: mean 192 (= 128 + 4096 >> 6); acc magnitude 1024 >> 4 = 64
    assert F[2].tolist() == [192, 0, 192, 192, 0, 0, 0, 0, 0]
    # gyro magnitude isqrt(300**2 + 400**2) = 500 (in 1/4 LSB), mean/min >> 2, max >> 4
    assert F[7].tolist()[:4] == [125, 0, 125, 31]
    assert F[3, 0] == 128 + (1200 >> 4) and F[3, 2] == 128 + (1200 >> 6)


def test_windower_emits_every_hop_and_resets():
    w = features.Windower()
    emitted = [i for i in range(128 + 64 * 3) if w.push(i, 0, 0, 0, 0, 0) is not None]
    assert emitted == [127, 191, 255, 319] and w.count == 4
    w.reset()
    assert [i for i in range(200) if w.push(0, 0, 0, 0, 0, 0) is not None] == [127, 191]


# the families of Windower's work in MicroPython: the native module's C (ffrt.kernels_native
# carries window and sample), ffrt.features_viper, and the pure reference
FAMILIES = {"native": "ffrt.kernels_native", "viper": "ffrt.features_viper", "pure": None}


def _family_env(family):
    if family != "native":
        return {}
    from ffkit.board import native
    try:
        return {"MICROPYPATH": str(native.native_firmware_dir("x64"))}
    except native.NativeError as e:
        pytest.skip(str(e))


_MPY_SCRIPT = """
import json, gc
from array import array
from ffrt.features import Windower
S = array('h', bytes.fromhex('%s'))
w = Windower()
def push(i):
    j = 6 * i
    return w.push(S[j], S[j + 1], S[j + 2], S[j + 3], S[j + 4], S[j + 5])
out = []
for i in range(128):
    o = push(i)
out.append(bytes(o).hex())
n = 0                       # (a new global after a0 would grow the globals dict)
gc.collect()
a0 = gc.mem_alloc()
for i in range(128, len(S) // 6):
    if push(i) is not None:
        n += 1
a1 = gc.mem_alloc()
out.append(bytes(w.out).hex())
print(json.dumps({"first_last": out, "windows": n + 1, "alloc_bytes": a1 - a0,
                  "twin": w.twin.__name__}))
"""


@pytest.mark.device
@pytest.mark.parametrize("family", ["native", "viper"])
def test_windower_in_micropython_matches_numpy_and_allocates_nothing(rec, micropython, family):
    # subject 1, session 0: walking down- and upstairs, pauses in between
    x = _session(rec, 1, 0)[14000:14000 + 128 + 64 * 15]
    r = mpy.run_json(_MPY_SCRIPT % x.astype("<i2").tobytes().hex(),
                     env_extra=_family_env(family))
    assert r["twin"] == FAMILIES[family]
    want = features_np.features(x, features_np.window_starts(len(x)))
    assert r["windows"] == len(want) == 16
    assert bytes.fromhex(r["first_last"][0]) == want[0].tobytes()
    assert bytes.fromhex(r["first_last"][1]) == want[-1].tobytes()
    assert r["alloc_bytes"] == 0


_MPY_ALL = """
import json
from array import array
from ffrt.features import Windower
S = array('h', bytes.fromhex('%s'))
w = Windower(fast=%s)
out = []
for i in range(len(S) // 6):
    j = 6 * i
    o = w.push(S[j], S[j + 1], S[j + 2], S[j + 3], S[j + 4], S[j + 5])
    if o is not None:
        out.append(bytes(o).hex())
for v in %s:  # values outside int16 (and past the small ints): saturated, as by _i16
    w.push(*v)
out.append(bytes(w.ring).hex())
print(json.dumps({"twin": w.twin.__name__ if w.twin else None, "out": out}))
"""

_WIDE = [(40000, -40000, 2 ** 20, -(2 ** 20), 32768, -32769), (1 << 29, -(1 << 29), 0, 1, -1, 7)]
_LONG = [(1 << 40, -(1 << 40), 1 << 62, -(1 << 70), 5, -5)]  # long ints: C and pure only


@pytest.mark.device
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_window_in_micropython(rec, micropython, family):
    """Every window of a real stretch and of adversarial streams, each family of
    Windower's work (native C, viper, pure) against the numpy twin, and out-of-range
    samples saturated into the ring as the reference saturates them."""
    # a second stretch, every window compared: lying, a transition, standing (subject 23)
    x = np.concatenate([_session(rec, 23, 1)[4000:4000 + 128 + 64 * 11],
                        np.array([[32767, -32768, 32767, -32768, 32767, -32768]] * 64)]
                       + [s for _, s in _STREAMS])
    wide = _WIDE + (_LONG if family != "viper" else [])
    r = mpy.run_json(_MPY_ALL % (x.astype("<i2").tobytes().hex(), family != "pure",
                                 repr(wide)), env_extra=_family_env(family))
    assert r["twin"] == FAMILIES[family]
    want = features_np.features(x, features_np.window_starts(len(x)))
    got = [bytes.fromhex(h) for h in r["out"][:-1]]
    assert got == [row.tobytes() for row in want]
    ref = features.Windower(fast=False)
    for i in range(len(x)):
        ref.push(*(int(v) for v in x[i]))
    for v in wide:
        ref.push(*v)
    assert bytes.fromhex(r["out"][-1]) == bytes(ref.ring)


# ---- time shuffles (ffrt.anomaly.time_shuffle: the unsupervised negative of MIX_TIME) -----

def test_time_shuffle_is_the_features_of_the_permuted_samples(rec):
    from array import array

    from ffrt import fixedpoint as fp
    from ffrt.anomaly import time_shuffle

    x = _session(rec, 2, 0)[3000:3000 + 128 + 64 * 3]
    w, plain = features.Windower(), features.Windower()
    rng = array("H", [0, 0])
    fp.seed_state(rng, 0, 12345)
    shuffled = []
    for i, s in enumerate(x.tolist()):
        o = w.push(*s)
        assert (plain.push(*s) is None) == (o is None)
        if o is None:
            continue
        before = bytes(o)
        perm = bytearray(128)
        neg = time_shuffle(w, rng, perm, bytearray(72))
        perm = list(perm)
        assert sorted(perm) == list(range(128)) and perm != list(range(128))
        win = x[i - 127:i + 1]
        want = features_np.features(win[perm], np.array([0]))[0]
        assert bytes(neg) == want.tobytes()       # the permuted samples' features
        assert bytes(o) == before                 # the window's own features untouched
        neg = np.frombuffer(bytes(neg), np.uint8).reshape(8, 9)
        own = np.frombuffer(before, np.uint8).reshape(8, 9)
        assert (neg[:, :4] == own[:, :4]).all()   # levels and spreads stay
        assert (neg[:, 4:] != own[:, 4:]).any()   # time structure does not
        shuffled.append(bytes(plain.out) == before)
    assert shuffled == [True] * 4  # the stream goes on as if nothing was shuffled


_MPY_SHUFFLE = """
import json, gc
from array import array
from ffrt import fixedpoint as fp
from ffrt.features import Windower
from ffrt.anomaly import time_shuffle
S = array('h', bytes.fromhex('%s'))
w = Windower()
rng = array('H', [0, 0])
fp.seed_state(rng, 0, 777)
neg = bytearray(72)
perm = bytearray(128)
out = []
n = 0
def run(a, b):
    global n
    for i in range(a, b):
        j = 6 * i
        if w.push(S[j], S[j + 1], S[j + 2], S[j + 3], S[j + 4], S[j + 5]) is not None:
            time_shuffle(w, rng, perm, neg)
            n += 1
run(0, 192)
out.append(bytes(neg).hex())
gc.collect()
a0 = gc.mem_alloc()
run(192, len(S) // 6)
a1 = gc.mem_alloc()
out.append(bytes(neg).hex())
print(json.dumps({"negs": out, "windows": n, "alloc_bytes": a1 - a0}))
"""


@pytest.mark.device
def test_time_shuffle_in_micropython_same_bits_no_allocation(rec, micropython):
    from array import array

    from ffrt import fixedpoint as fp
    from ffrt.anomaly import time_shuffle

    x = _session(rec, 5, 0)[8000:8000 + 128 + 64 * 6]
    r = mpy.run_json(_MPY_SHUFFLE % x.astype("<i2").tobytes().hex())
    w = features.Windower()
    rng = array("H", [0, 0])
    fp.seed_state(rng, 0, 777)
    negs = []
    for s in x.tolist():
        if w.push(*s) is not None:
            negs.append(bytes(time_shuffle(w, rng, bytearray(128), bytearray(72))).hex())
    assert r["windows"] == len(negs) == 7
    assert r["negs"] == [negs[1], negs[-1]]
    assert r["alloc_bytes"] == 0


_MPY_BLOCKS = """
import json
from array import array
from ffrt.features import Windower
S = array('h', bytes.fromhex('%s'))
a = Windower()
b = Windower(fast=False)
seed = 12345
def rnd(n):  # a small LCG: the same block sizes on every port
    global seed
    seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
    return 1 + (seed >> 8) %% n
out = []
n = len(S) // 6
j = 0
body = bytearray(1 + 12 * 64)  # a SAMPLES body: samples from an odd byte offset
while j < n:
    k = min(n - j, a.due, rnd(40))
    if rnd(2) == 1:
        x = a.push_block(S, 12 * j, k)
    else:
        for q in range(6 * k):
            v = S[6 * j + q] & 0xFFFF
            body[1 + 2 * q] = v & 0xFF
            body[2 + 2 * q] = v >> 8
        x = a.push_block(body, 1, k)
    for q in range(j, j + k):
        y = b.push(S[6 * q], S[6 * q + 1], S[6 * q + 2], S[6 * q + 3], S[6 * q + 4], S[6 * q + 5])
    j += k
    if (x is None) != (y is None) or a.ring != b.ring:
        raise SystemExit("differ at sample %%d" %% j)
    if x is not None:
        out.append(bytes(x).hex())
refused = []
for bad in (a.due + 1, 0):
    try:
        a.push_block(S, 0, bad)
    except ValueError:
        refused.append(bad)
try:
    b.push_block(S, 0, 1)
except ValueError:
    refused.append("pure")
print(json.dumps({"twin": a.twin.__name__, "out": out, "refused": len(refused)}))
"""


@pytest.mark.device
@pytest.mark.parametrize("family", ["native", "viper"])
def test_push_block_is_push_sample_by_sample(rec, micropython, family):
    """Windower.push_block (what LiveLearner.feed and SAMPLES run with a twin): blocks of
    random sizes from an int16 array and from a frame body at an odd offset give the ring
    and the windows that pushing each sample through the reference gives; a block past the
    next window, an empty one, or one without a twin is refused."""
    x = np.concatenate([_session(rec, 2, 0)[9000:9000 + 128 + 64 * 9]]
                       + [s for _, s in _STREAMS])
    r = mpy.run_json(_MPY_BLOCKS % x.astype("<i2").tobytes().hex(),
                     env_extra=_family_env(family))
    assert r["twin"] == FAMILIES[family]
    want = features_np.features(x, features_np.window_starts(len(x)))
    assert [bytes.fromhex(h) for h in r["out"]] == [row.tobytes() for row in want]
    assert r["refused"] == 3
