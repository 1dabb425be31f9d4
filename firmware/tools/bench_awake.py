"""The work of a HAPT window learnt awake against interleaved (ffkit.bench.measure_awake).

    micropython bench_awake.py MODEL ROWS WARM K PER_CLASS REPLAY

sys.argv: MODEL, the HAPT model (.ffw); ROWS, feature rows (72 bytes and a label each,
ffkit.bench.write_awake_rows); WARM, the windows learnt before the timing; K, the windows
timed per learning path; PER_CLASS and REPLAY, the model's [adapt] rehearsal buffer.

Per path (predict, learn_last, interleaved, awake, sleep_step) a fresh net from MODEL,
WARM windows through LiveLearner.window, then K timed (automatic collection off; the
paths take turns), and the same again with counting kernels (multiply-accumulates:
forward, update). Prints one JSON object: per path microseconds and MACs per window.
"""
import gc
import json
import sys
import time

from ffrt import ffw_ram, kernels_viper
from ffrt.live import LiveLearner
from ffrt.sleep import setup, sleep

with open(sys.argv[1], "rb") as f:
    MODEL = f.read()
with open(sys.argv[2], "rb") as f:
    data = f.read()
xs = []
ys = []
for i in range(len(data) // 73):
    xs.append(data[73 * i:73 * i + 72])
    ys.append(data[73 * i + 72])
WARM = int(sys.argv[3])
K = int(sys.argv[4])
PER_CLASS = int(sys.argv[5])
REPLAY = int(sys.argv[6])


class Counting:
    def __init__(self):
        self.fwd = 0
        self.upd = 0

    def fc_relu(self, w, x, h, n_in, n_out, shift):
        self.fwd += n_in * n_out
        return kernels_viper.fc_relu(w, x, h, n_in, n_out, shift)

    def normalize(self, h, out, n, recip):
        return kernels_viper.normalize(h, out, n, recip)

    def isqrt(self, n):
        return kernels_viper.isqrt(n)

    def copy(self, dst, src, off, n):
        return kernels_viper.copy(dst, src, off, n)

    def fc_acc(self, w, x, acc, n_in, n_out):
        self.fwd += n_in * n_out
        return kernels_viper.fc_acc(w, x, acc, n_in, n_out)

    def label_relu(self, w, acc, h, p):
        self.fwd += p[1] * p[5]  # n_out rows of the label's columns
        return kernels_viper.label_relu(w, acc, h, p)

    def update(self, w, x, h, rng, p):
        self.upd += p[0] * p[1]
        return kernels_viper.update(w, x, h, rng, p)

    def head_scores(self, wh, a, n_in, n_out, scores):
        self.fwd += n_in * n_out
        return kernels_viper.head_scores(wh, a, n_in, n_out, scores)

    def head_update(self, wh, a, rng, p):
        self.upd += p[0]
        return kernels_viper.head_update(wh, a, rng, p)


def learner(path, kernels):
    net = ffw_ram.load(MODEL)
    if kernels is not None:
        net.k = kernels
    live = LiveLearner(net, 0 if path == "learn_last" else PER_CLASS, REPLAY)
    if path == "awake" or path == "sleep_step":
        setup(live, (0, 0, False))   # awake; a sleep only when asked
    live.learning = path != "predict"
    for i in range(WARM):
        live.window(xs[i], ys[i])
    return live


def windows(live, a, b):
    for i in range(WARM + a, WARM + b):
        live.window(xs[i], ys[i])


PATHS = ("predict", "learn_last", "interleaved", "awake", "sleep_step")
ROUNDS = 5   # the paths take turns, K / ROUNDS windows at a time: a load that drifts
learners = {}  # during the run weighs on each path alike
us = {}
for path in PATHS:
    learners[path] = learner(path, None)
    us[path] = 0
for r in range(ROUNDS):
    a = K * r // ROUNDS
    b = K * (r + 1) // ROUNDS
    for path in PATHS:
        live = learners[path]
        gc.collect()
        gc.disable()
        t0 = time.ticks_us()
        if path == "sleep_step":
            sleep(live, b - a)
        else:
            windows(live, a, b)
        us[path] += time.ticks_diff(time.ticks_us(), t0)
        gc.enable()
learners = None
out: dict = {}
for path in PATHS:
    c = Counting()
    live = learner(path, c)
    c.fwd = c.upd = 0
    if path == "sleep_step":
        sleep(live, K)
    else:
        windows(live, 0, K)
    out[path] = {"us": us[path] / K, "fwd_macs": c.fwd // K, "upd_macs": c.upd // K}
net = live.net
out["forward_pass_macs"] = sum([a * b for a, b in zip(net.n_in, net.cfg.layers)])
out["model"] = "-".join([str(v) for v in (net.cfg.n_in,) + net.cfg.layers])
print(json.dumps(out))
