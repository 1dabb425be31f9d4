"""Instruction counts and allocation on an emulated board (ffkit.bench.qemu_counts), run by
ffkit.board.qemu.run_json under ``-icount shift=0``: every count as raw time.ticks_us ticks
(the host turns them into instructions).

Parameters: the file ``args.json`` the host copies onto the board with the others (a JSON
object: "timer" [kind, base address] of the SoC's own timer, "calib" the calibration
loop's length, "n" the kernels' layer size, "k" the calls and steps of each count
(ffkit.bench.QEMU_COUNTS), "per_class", "replay" and "head" of hapt.toml's [adapt],
"native": whether kernels_native.mpy, ffrt's kernels in C for the board's arch, and
bench_cloop.mpy, the plain C loops built alike, are beside it). Data files: digits.ffw,
samples.bin, hapt.ffw, hapt.bin, hapt_labels.bin (ffkit.bench.qemu_files). Prints one
JSON object; with native, its "native" entry holds the digits and HAPT counts again with
the native kernels (the frozen ffrt has no native module: the job imports it by name).

Loops index preloaded lists and the timed calls take their arguments written out, so the
timing adds no allocation of its own; a no-op twin of each timed call, timed the same
way, is the overhead subtracted.
"""
import gc
import json
import machine
import sys
import time
from array import array

from ffrt import ffw_ram, kernels_ref
from ffrt.live import LiveLearner

with open("args.json") as f:
    P = json.load(f)
T = time.ticks_us
D = time.ticks_diff
r: dict = {"platform": "%s, MicroPython %s" % (
    sys.implementation._machine, ".".join([str(v) for v in sys.implementation.version[:3]]))}


def hw_timer():
    """A read() of the SoC's own timer, counting up (QEMU_CLOCKS: kind, base)."""
    kind, base = P["timer"]
    if kind == "cmsdk":  # a down-counter; reloads at 2**30 - 1 so reads stay small ints
        machine.mem32[base + 8] = 0x3FFFFFFF
        machine.mem32[base + 4] = 0x3FFFFFFF
        machine.mem32[base] = 1

        def read():
            return 0x3FFFFFFF - machine.mem32[base + 4]
    else:  # nRF51 TIMER: 32-bit timer mode, prescaler 0, captured into CC[0]
        machine.mem32[base + 0x504] = 0
        machine.mem32[base + 0x508] = 3
        machine.mem32[base + 0x510] = 0
        machine.mem32[base] = 1

        def read():
            machine.mem32[base + 0x40] = 1
            return machine.mem32[base + 0x540]
    return read


read = hw_timer()
c0 = read()
t0 = T()
for i in range(P["calib"]):
    pass
t1 = T()
c1 = read()
r["systick_reload"] = machine.mem32[0xE000E014] + 1
r["calib_ticks"] = D(t1, t0)
r["calib_timer"] = (c1 - c0) & 0x3FFFFFFF

# ---- kernels: fc_relu and update, 128 x 128, every input and unit active -----------------
N = P["n"]
w = bytearray(N * N)
x = bytearray(N)
h0: bytearray = bytearray(N)
h: bytearray = bytearray(N)
rng = array("H", [0x1234, 0x5678] * N)
s = 12345
for i in range(N * N):
    s = (s * 1103515245 + 12345) & 0x3FFFFFFF
    w[i] = 1 + (s >> 8) % 255
for i in range(N):
    x[i] = 1 + (i * 37) % 255
    h0[i] = 1 + (i * 91) % 255


def nop_fc(w, x, h, n_in, n_out, shift):
    pass


def nop_update(w, x, h, rng, p):
    pass


def t_fc(f, k):
    gc.collect()
    t0 = T()
    for _ in range(k):
        f(w, x, h, N, N, 8)
    return D(T(), t0)


UP = array("i", [N, N, 400, 22, 0])  # update's n_in, n_out, coef, shift, floor
UP_NEG = array("i", [N, N, -400, 22, 0])


def t_update(f, k):
    for i in range(N):  # every unit active (fc_relu rewrites h)
        h[i] = h0[i]
    gc.collect()
    t0 = T()
    for i in range(k):
        f(w, x, h, rng, UP if i & 1 else UP_NEG)
    return D(T(), t0)


K = P["k"]
kv = None
if K["fc"] or K["update"]:
    from ffrt import kernels_viper as kv  # type: ignore[assignment]  # else None
for name, f, twin, timer in (("fc", None, nop_fc, t_fc), ("update", None, nop_update, t_update),
                             ("fc_pure", kernels_ref.fc_relu, nop_fc, t_fc),
                             ("update_pure", kernels_ref.update, nop_update, t_update)):
    k = K[name]
    if not k:
        continue
    if f is None:
        f = kv.fc_relu if name == "fc" else kv.update  # type: ignore[attr-defined]
    r[name] = [timer(f, k), timer(twin, k), k]
# the native kernels (C for the board's arch, beside this job as kernels_native.mpy) and
# the plain C loops built the same way (bench_cloop.mpy): the same calls, timed alike
KN = None
if P.get("native"):
    import kernels_native as KN  # type: ignore[import-not-found,no-redef]
    import bench_cloop  # type: ignore[import-not-found]
    for name, f, twin, timer, k in (
            ("fc_native", KN.fc_relu, nop_fc, t_fc, K["fc"]),  # type: ignore[attr-defined]
            ("update_native", KN.update, nop_update, t_update,  # type: ignore[attr-defined]
             K["update"]),
            ("fc_cloop", bench_cloop.fc_plain, nop_fc, t_fc, K["fc"]),
            ("update_cloop", bench_cloop.update_plain, nop_update, t_update, K["update"])):
        r[name] = [timer(f, k), timer(twin, k), k]
w = x = h = h0 = rng = None  # type: ignore[assignment]  # freed; no longer used

# ---- the digits model: learn_one, predict_one, their allocation --------------------------
with open("samples.bin", "rb") as f:
    data = f.read()
nf = data[4] | data[5] << 8
n_train = data[6] | data[7] << 8
xs: list = []
ys: list = []
for i in range(n_train):
    p = 10 + i * (nf + 1)
    xs.append(data[p:p + nf])
    ys.append(data[p + nf])
data = None
M = len(xs)


class Nop:
    def learn_one(self, x, y):
        pass

    def predict_one(self, x):
        pass

    def feed(self, buf, n, label):
        pass


def learn(net, n, off):
    for i in range(n):
        j = (off + i) % M
        net.learn_one(xs[j], ys[j])


def predict(net, n, off):
    for i in range(n):
        net.predict_one(xs[(off + i) % M])


def probe(net, n, off):
    for i in range(n):
        keep = [i]  # one small list per step: shows the measurement sees allocation


def timed(fn, obj, n, off):
    gc.collect()
    t0 = T()
    fn(obj, n, off)
    return D(T(), t0)


def allocated(fn, obj, n, off):
    """Bytes allocated by n steps, automatic collection off (None: the heap ran out)."""
    gc.collect()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        fn(obj, n, off)
        return gc.mem_alloc() - a0
    except MemoryError:
        return None
    finally:
        gc.enable()


nop = Nop()


def digits(kern, r):
    """learn_one and predict_one of models/digits.ffw with kern (None: the default)."""
    with open("digits.ffw", "rb") as f:
        net = ffw_ram.load(f.read(), kern)
    r["kernels"] = net.k.__name__
    learn(net, K["learn_warm"], 0)
    off = K["learn_warm"]
    r["learn"] = [timed(learn, net, K["learn"], off), timed(learn, nop, K["learn"], off),
                  K["learn"]]
    off += K["learn"]
    r["predict"] = [timed(predict, net, K["predict"], 0), timed(predict, nop, K["predict"], 0),
                    K["predict"]]
    r["alloc_learn"] = [allocated(learn, net, K["alloc"], off), K["alloc"]]
    r["alloc_predict"] = [allocated(predict, net, K["alloc"], 0), K["alloc"]]
    r["alloc_probe"] = [allocated(probe, net, K["alloc"], 0), K["alloc"]]
    r["digits_step"] = net.step
    r["digits_crc32"] = ffw_ram.weights_crc32(net)


digits(None, r)
if KN is not None:
    r["native"] = {}
    digits(KN, r["native"])
xs = ys = None  # type: ignore[assignment]  # freed; no longer used

# ---- HAPT: raw samples through LiveLearner (features, prediction, rehearsal learning) -----
with open("hapt_labels.bin", "rb") as f:
    labels = f.read()
with open("hapt.bin", "rb") as f:
    samples = array("h", f.read())
views = []
j = 0
for k in range(len(labels)):  # window k: 128 samples, then 64 more each
    n = 128 if k == 0 else 64
    views.append(memoryview(samples)[6 * j:6 * (j + n)])
    j += n


def window(live, k):
    lab = labels[k]
    return live.feed(views[k], len(views[k]) // 6, -1 if lab == 255 else lab)


def timed_windows(live, a, b):
    """Ticks of windows a..b-1, learnt and unlabelled apart, and of their no-op twins."""
    learnt = [0, 0]
    other = [0, 0]
    over = 0
    gc.collect()
    for k in range(a, b):
        lab = labels[k]
        mv = views[k]
        t0 = T()
        done = live.feed(mv, len(mv) // 6, -1 if lab == 255 else lab)
        dt = D(T(), t0)
        t0 = T()
        nop.feed(mv, len(mv) // 6, -1 if lab == 255 else lab)
        over += D(T(), t0)
        if done != 1:
            raise RuntimeError("window %d: %d windows completed" % (k, done))
        c = other if lab == 255 else learnt
        c[0] += dt
        c[1] += 1
    return {"learnt": learnt, "other": other, "overhead": over, "windows": b - a}


def windows(live, n, a):
    for k in range(a, a + n):
        window(live, k)


def hapt(kern, r):
    """HAPT windows through a LiveLearner over models/hapt.ffw with kern (None: default)."""
    with open("hapt.ffw", "rb") as f:
        net = ffw_ram.load(f.read(), kern)
    live = LiveLearner(net, P["per_class"], P["replay"], P["head"])  # features: kern's
    WARM = K["hapt_warm"]
    windows(live, WARM, 0)
    r["hapt"] = timed_windows(live, WARM, WARM + K["hapt"])
    r["alloc_hapt"] = [allocated(windows, live, K["hapt_alloc"], WARM + K["hapt"]),
                       K["hapt_alloc"]]
    r["hapt_step"] = net.step
    r["hapt_crc32"] = ffw_ram.weights_crc32(net)


hapt(None, r)
if KN is not None:
    hapt(KN, r["native"])
print(json.dumps(r))
