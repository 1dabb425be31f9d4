"""Speed and allocation of the digits net's learn_one / predict_one / predict_head
(ffkit.bench.measure_speed), in the MicroPython unix port.

    micropython bench_speed.py SAMPLES STEPS PURE

sys.argv: SAMPLES, a parity sample file (ffkit.parity.write_samples); STEPS, the steps
timed with the viper kernels (steady state, automatic collection off, gc.mem_alloc
before and after, and micropython.mem_total where the port has it: every byte allocated,
also what was freed at once, such as a call frame too large for the C stack); PURE, the steps timed with both the pure-Python and the viper kernels
from the same weights on the same samples (the speed-ups), and with the native kernels
(C: ffrt/kernels_native.mpy) where they load, timed alike. Prints one JSON object of raw
microseconds and byte counts; the host turns them into per-step figures. Loops index
preloaded lists, so the loop itself allocates nothing.
"""
import gc
import json
import struct
import sys
import time

import micropython

from ffrt import kernels_ref, kernels_viper
from ffrt.model import Config
from ffrt.net import FFNet

PATH = sys.argv[1]
STEPS = int(sys.argv[2])
PURE = int(sys.argv[3])

with open(PATH, "rb") as f:
    data = f.read()
magic, nf, n_train, n_test = struct.unpack("<4sHHH", data[:10])
xs = []
ys = []
for i in range(n_train):
    p = 10 + i * (nf + 1)
    xs.append(data[p:p + nf])
    ys.append(data[p + nf])
M = len(xs)


def learn(net, n, off):
    t0 = time.ticks_us()
    for i in range(n):
        j = (off + i) % M
        net.learn_one(xs[j], ys[j])
    return time.ticks_diff(time.ticks_us(), t0)


def predict(net, n, off):
    t0 = time.ticks_us()
    for i in range(n):
        net.predict_one(xs[(off + i) % M])
    return time.ticks_diff(time.ticks_us(), t0)


def predict_head(net, n, off):
    t0 = time.ticks_us()
    for i in range(n):
        net.predict_head(xs[(off + i) % M])
    return time.ticks_diff(time.ticks_us(), t0)


def alloc_probe(net, n, off):
    # allocates a 1-element list per step: shows that the measurement sees allocation
    t0 = time.ticks_us()
    for i in range(n):
        keep = [i]
    return time.ticks_diff(time.ticks_us(), t0)


def timed(fn, net, n, off):
    """Microseconds for n steps, starting on a collected heap: no phase pays for an
    earlier one's garbage (the pure kernels make a lot: tuples from the PRNG helper)."""
    gc.collect()
    return fn(net, n, off)


TOTAL = getattr(micropython, "mem_total", None)  # MICROPY_MEM_STATS ports only
TRAFFIC: dict = {}  # phase: bytes ever allocated (mem_total) per step, freed or not


def measured(fn, net, n, off, phase=None):
    """(microseconds, bytes allocated and still held) for n steps, automatic collection
    off; with phase, also every byte allocated per step (TRAFFIC[phase], None without
    mem_total), less what the same loop of 0 steps allocates (its own frame and range
    object, once per loop: the figure is the steps' own)."""
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = TOTAL() if TOTAL else 0
    us = fn(net, n, off)
    t1 = TOTAL() if TOTAL else 0
    a1 = gc.mem_alloc()
    fn(net, 0, off)
    t2 = TOTAL() if TOTAL else 0
    gc.enable()
    if phase:
        TRAFFIC[phase] = ((t1 - t0) - (t2 - t1)) / n if TOTAL else None
    return us, a1 - a0


cfg = Config()
r: dict = {"model": "-".join([str(v) for v in (cfg.n_in,) + cfg.layers])}
pure = FFNet(cfg, kernels=kernels_ref)
viper = FFNet(cfg, kernels=kernels_viper)
r["net_ram_bytes"] = viper.ram_bytes()
# the same samples from the same weights: the two nets stay bit-identical
r["learn_pure_total_us"] = timed(learn, pure, PURE, 0)
r["learn_viper_same_us"] = timed(learn, viper, PURE, 0)
r["nets_identical"] = (bytes(pure.weights[-1]) == bytes(viper.weights[-1])
                       and bytes(pure.head) == bytes(viper.head))
r["predict_pure_total_us"] = timed(predict, pure, PURE, 0)
r["predict_viper_same_us"] = timed(predict, viper, PURE, 0)
try:
    from ffrt import kernels_native  # type: ignore[attr-defined]  # a .mpy, built per arch
except (ImportError, ValueError):  # not built for this port, or another arch's
    kernels_native = None
native = None
if kernels_native is not None:
    native = FFNet(cfg, kernels=kernels_native)
    r["learn_native_same_us"] = timed(learn, native, PURE, 0)
    r["native_identical"] = (bytes(pure.weights[-1]) == bytes(native.weights[-1])
                             and bytes(pure.head) == bytes(native.head))
    r["predict_native_same_us"] = timed(predict, native, PURE, 0)
pure = None
if native is not None:  # steady state with the native kernels, as for viper below
    r["learn_native_us"] = measured(learn, native, STEPS, PURE, "learn_native")[0]
    r["predict_native_us"] = measured(predict, native, STEPS, 0, "predict_native")[0]
    r["predict_head_native_us"] = measured(predict_head, native, STEPS, 0)[0]
    native = None
# steady state with viper, continuing the stream
us, nb = measured(learn, viper, STEPS, PURE, "learn")
r["learn_viper_us"] = us
r["learn_alloc_bytes"] = nb
us, nb = measured(predict, viper, STEPS, 0, "predict")
r["predict_viper_us"] = us
r["predict_alloc_bytes"] = nb
us, nb = measured(predict_head, viper, STEPS, 0, "predict_head")
r["predict_head_viper_us"] = us
r["predict_head_alloc_bytes"] = nb
N_PROBE = min(STEPS, 1000)
r["probe_alloc_bytes_per_step"] = measured(alloc_probe, viper, N_PROBE, 0, "probe")[1] / N_PROBE
r["traffic_bytes_per_step"] = TRAFFIC
# which layers still have activity to learn from, just after the timed run
n_act = min(STEPS, 200)
act = [0] * viper.n_layers
for i in range(n_act):
    j = (PURE + STEPS + i) % M
    viper.learn_one(xs[j], ys[j])
    for l in range(viper.n_layers):
        if viper.last_pos[l] or viper.last_neg[l]:
            act[l] += 1
r["ff_active_fraction"] = [a / n_act for a in act]
print(json.dumps(r))
