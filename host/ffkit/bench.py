"""Benchmarks of the board engine, measured inside MicroPython (the unix port).

``ffkit bench`` runs the digits model (Config() defaults: 74-128-128, label overlay,
hardest wrong-label negatives) on real scikit-learn digits samples read from a file, and
reports:

- speed: microseconds per `learn_one` / `predict_one` with the viper kernels, and the
  speed-up of viper over the pure-Python kernels, both timed in one MicroPython process on
  the same samples from the same starting weights (``time.ticks_us``);
- allocation: bytes allocated per learn / predict step in steady state (``gc.mem_alloc``
  before and after ``--steps`` steps, automatic collection off so nothing is hidden);
- memory: the net's arrays (``net.ram_bytes()``), the smallest ``-X heapsize`` that builds
  the net, learns 20 samples and predicts (bisection in 1 KB steps, with ffrt cross-compiled
  to .mpy as `ffkit flash` installs it, and again from .py source), and the highest
  ``gc.mem_alloc()`` seen in that run at a 64 KB heap;
- instructions (where valgrind is installed): callgrind counts of a script that calls
  ``kernels_viper.fc_relu`` (128 x 128) K times minus the same script with 0 calls, per
  multiply-accumulate; likewise per weight updated by ``kernels_viper.update`` with every
  h and x non-zero, and per MAC of the pure-Python ``kernels_ref.fc_relu``;
- the serial link, to a virtual board (ffkit.sim: the firmware in the unix port on a pty,
  driven by ffkit.client over pyserial): the share of the bytes on the wire, both
  directions, that is payload when the board exports its 32 KB weight file (counted by
  wrapping the host's link), and LEARN requests and STREAM samples answered per second;
- sleep (ffrt.sleep): the work of a HAPT window (models/hapt.ffw, its [adapt] buffer of 16
  per class) learnt awake (prediction, the positive phase, the window kept) against the
  same window learnt interleaved (prediction, then learn_one through the buffer: the
  window and 2 replays, both phases each), timed in one MicroPython run with the viper
  kernels on the same windows from the same state (``awake_window_work_ratio``), with
  the multiply-accumulates of each counted alongside (``awake_window``: per window and
  per sleep step, and the interleaved window without a buffer, learn_last);
- replay: a HAPT session recorded on a virtual board (the golden log's session,
  ffkit.golden.record_hapt: raw IMU samples, personalise protocol) replayed on the host
  with the numpy runner (ffkit.replay), against the session's real time: the raw samples
  in its SAMPLES records at HAPT's 50 Hz, over the replay's wall time (``ffkit replay
  --json``'s ``seconds`` in a new process, median of 3).

    $ ffkit bench --json
    {"learn_speedup_viper": 54.77, ..., "alloc_bytes_per_learn_step": 0.0, ...,
     "instructions_per_mac_forward": 28.36, ...}

Ratios and allocation counts are what tests check; absolute times depend on the machine.
The unix port is a 64-bit build: object headers and pointers are twice a 32-bit board's,
so heap figures are upper bounds for boards (the net's arrays are the same size).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


from ffkit import FFKitError, builds, mpy
from ffkit.link import Link
from ffkit.parity import digits_split, write_samples

__all__ = [
    "FIGURES",
    "BenchError",
    "add_arguments",
    "format_table",
    "measure_callgrind",
    "measure_heap",
    "measure_link",
    "measure_awake",
    "measure_replay",
    "measure_speed",
    "run_bench",
    "run_cli",
]

DEFAULT_STEPS = 1000
DEFAULT_PURE_STEPS = 20
N_SAMPLES = 200          # digits samples in the bench file (cycled)
HEAP_LEARN_STEPS = 20
HEAP_PREDICT_STEPS = 5
HEAP_LO_K, HEAP_HI_K = 16, 256
PEAK_HEAP_K = 64
CG_N = 128               # fc_relu / update size for the instruction counts

# (key, unit, meaning): the order of the plain-text table; every key is in the JSON.
FIGURES = (
    ("learn_speedup_viper", "x", "pure-Python learn_one time / viper's, on the same samples"),
    ("predict_speedup_viper", "x", "pure-Python predict_one time / viper's"),
    ("learn_us_viper", "us", "one learn_one with viper kernels (mean over --steps)"),
    ("predict_us_viper", "us", "one predict_one (10 label passes) with viper kernels"),
    ("predict_head_us_viper", "us", "one predict_head (one pass + linear head) with viper"),
    ("learn_us_pure", "us", "one learn_one with pure-Python kernels (mean, --pure-steps)"),
    ("predict_us_pure", "us", "one predict_one with pure-Python kernels"),
    ("alloc_bytes_per_learn_step", "B", "heap bytes allocated per learn_one, steady state"),
    ("alloc_bytes_per_predict_step", "B", "heap bytes allocated per predict_one (viper)"),
    ("alloc_bytes_per_predict_head_step", "B", "heap bytes allocated per predict_head"),
    ("alloc_probe_bytes_per_step", "B", "control: a loop that makes one small list per step"),
    ("net_ram_bytes", "B", "bytes in the net's arrays: weights, PRNG states, head, buffers"),
    ("min_heap_bytes", "B", "least -X heapsize for build + 20 learn + predict, ffrt as .mpy"),
    ("min_heap_bytes_source", "B", "the same with ffrt from .py source (compiled on board)"),
    ("peak_heap_bytes", "B", "highest gc.mem_alloc() seen in that run at a 64 KB heap"),
    ("live_heap_bytes", "B", "gc.mem_alloc() after gc.collect() at the end of that run"),
    ("instructions_per_mac_forward", "instr", "x64 instructions per MAC, viper fc_relu"),
    ("instructions_per_weight_update", "instr", "x64 instructions per weight, viper update"),
    ("instructions_per_mac_forward_pure", "instr", "x64 instructions per MAC, pure fc_relu"),
    ("wire_efficiency", "ratio", "payload / all bytes on the wire (both ways), 32 KB export"),
    ("learn_steps_per_s_link", "/s", "LEARN requests answered per second, virtual board"),
    ("stream_samples_per_s_link", "/s", "samples per second in STREAM batches, virtual board"),
    ("replay_speedup_vs_realtime", "x", "HAPT session's time at 50 Hz / its replay's (numpy)"),
    ("awake_window_work_ratio", "ratio", "HAPT window learnt awake (sleep) / interleaved, time"),
)


class BenchError(FFKitError):
    """A benchmark could not run (a MicroPython script failed, a tool is missing)."""


def _mp_run(script: str, **kw) -> str:
    try:
        return mpy.run(script, **kw)
    except (mpy.MicroPythonError, FileNotFoundError) as e:
        raise BenchError(str(e)) from None


def _last_json(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError("benchmark script printed no JSON line:\n" + out[-2000:]) from None


def write_bench_samples(path, n: int = N_SAMPLES) -> None:
    """n digits samples (integers 0..16, label) in the parity sample-file format."""
    Xtr, ytr, Xte, yte = digits_split(n, 1)
    write_samples(path, Xtr, ytr, Xte, yte)


# ---- speed and allocation ------------------------------------------------------------------

# MicroPython. Loops index preloaded lists, so the loop itself allocates nothing.
_SPEED_SCRIPT = r'''
import gc
import json
import struct
import time

from ffrt import kernels_ref, kernels_viper
from ffrt.model import Config
from ffrt.net import FFNet

PATH = %(path)r
STEPS = %(steps)d
PURE = %(pure)d

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
        j = (off + i) %% M
        net.learn_one(xs[j], ys[j])
    return time.ticks_diff(time.ticks_us(), t0)


def predict(net, n, off):
    t0 = time.ticks_us()
    for i in range(n):
        net.predict_one(xs[(off + i) %% M])
    return time.ticks_diff(time.ticks_us(), t0)


def predict_head(net, n, off):
    t0 = time.ticks_us()
    for i in range(n):
        net.predict_head(xs[(off + i) %% M])
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


def measured(fn, net, n, off):
    """(microseconds, bytes allocated) for n steps, automatic collection off."""
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    us = fn(net, n, off)
    a1 = gc.mem_alloc()
    gc.enable()
    return us, a1 - a0


cfg = Config()
r = {"model": "-".join([str(v) for v in (cfg.n_in,) + cfg.layers])}
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
pure = None
# steady state with viper, continuing the stream
us, nb = measured(learn, viper, STEPS, PURE)
r["learn_viper_us"] = us
r["learn_alloc_bytes"] = nb
us, nb = measured(predict, viper, STEPS, 0)
r["predict_viper_us"] = us
r["predict_alloc_bytes"] = nb
us, nb = measured(predict_head, viper, STEPS, 0)
r["predict_head_viper_us"] = us
r["predict_head_alloc_bytes"] = nb
N_PROBE = min(STEPS, 1000)
r["probe_alloc_bytes_per_step"] = measured(alloc_probe, viper, N_PROBE, 0)[1] / N_PROBE
# which layers still have activity to learn from, just after the timed run
n_act = min(STEPS, 200)
act = [0] * viper.n_layers
for i in range(n_act):
    j = (PURE + STEPS + i) %% M
    viper.learn_one(xs[j], ys[j])
    for l in range(viper.n_layers):
        if viper.last_pos[l] or viper.last_neg[l]:
            act[l] += 1
r["ff_active_fraction"] = [a / n_act for a in act]
print(json.dumps(r))
'''


def measure_speed(path, steps: int = DEFAULT_STEPS, pure_steps: int = DEFAULT_PURE_STEPS,
                  timeout: float = 1200) -> dict:
    """Speed-ups, per-step times and allocation, from one MicroPython run (see module doc)."""
    if steps < 1 or pure_steps < 1:
        raise BenchError("steps and pure steps must be at least 1")
    raw = _last_json(_mp_run(_SPEED_SCRIPT % {"path": str(path), "steps": steps,
                                              "pure": pure_steps}, timeout=timeout))
    if not raw["nets_identical"]:
        raise BenchError("pure and viper nets differ after the same samples: run ffkit parity")
    return {
        "model": raw["model"],
        "learn_speedup_viper": _ratio(raw["learn_pure_total_us"], raw["learn_viper_same_us"]),
        "predict_speedup_viper": _ratio(raw["predict_pure_total_us"],
                                        raw["predict_viper_same_us"]),
        "learn_us_viper": round(raw["learn_viper_us"] / steps, 1),
        "predict_us_viper": round(raw["predict_viper_us"] / steps, 1),
        "predict_head_us_viper": round(raw["predict_head_viper_us"] / steps, 1),
        "learn_us_pure": round(raw["learn_pure_total_us"] / pure_steps, 1),
        "predict_us_pure": round(raw["predict_pure_total_us"] / pure_steps, 1),
        "alloc_bytes_per_learn_step": raw["learn_alloc_bytes"] / steps,
        "alloc_bytes_per_predict_step": raw["predict_alloc_bytes"] / steps,
        "alloc_bytes_per_predict_head_step": raw["predict_head_alloc_bytes"] / steps,
        "alloc_probe_bytes_per_step": raw["probe_alloc_bytes_per_step"],
        "net_ram_bytes": raw["net_ram_bytes"],
        "ff_active_fraction": [round(a, 3) for a in raw["ff_active_fraction"]],
    }


def _ratio(a, b):
    return round(a / b, 2) if b > 0 else None


# ---- heap --------------------------------------------------------------------------------------

# MicroPython: build the digits net, learn and predict streaming samples through one
# 65-byte record buffer; track the highest gc.mem_alloc() between steps.
_HEAP_SCRIPT = r'''
import gc
gc.collect()
_peak = gc.mem_alloc()


def mark():
    global _peak
    a = gc.mem_alloc()
    if a > _peak:
        _peak = a


from ffrt import kernels_viper
from ffrt.model import Config
from ffrt.net import FFNet

mark()
net = FFNet(Config(), kernels=kernels_viper)
mark()
f = open(%(path)r, "rb")
f.read(10)
rec = bytearray(net.cfg.n_features + 1)
x = memoryview(rec)[:net.cfg.n_features]
for i in range(%(learn)d):
    f.readinto(rec)
    net.learn_one(x, rec[-1])
    mark()
for i in range(%(predict)d):
    f.readinto(rec)
    net.predict_one(x)
    net.predict_head(x)
    mark()
f.close()
gc.collect()
print("HEAP_OK %%d %%d" %% (_peak, gc.mem_alloc()))
'''


def _heap_run(script: str, heap_k: int, path_dir: str | None):
    """(peak, live) when the script fits in heap_k KB, None when it runs out of memory."""
    env = None
    if path_dir is not None:
        env = {"MICROPYPATH": "%s%s.frozen" % (path_dir, os.pathsep)}
    try:
        out = mpy.run(script, heapsize="%dK" % heap_k, env_extra=env, timeout=120)
    except mpy.MicroPythonError as e:
        if "MemoryError" in e.tail:
            return None
        raise BenchError("heap probe at %d KB failed:\n%s" % (heap_k, e.tail)) from None
    m = re.search(r"HEAP_OK (\d+) (\d+)", out)
    if not m:
        raise BenchError("heap probe printed no result:\n" + out[-2000:])
    return int(m.group(1)), int(m.group(2))


def _min_heap_k(script: str, path_dir: str | None, lo: int = HEAP_LO_K,
                hi: int = HEAP_HI_K) -> int | None:
    """Smallest heap in KB (lo < k <= hi) in which the script succeeds, by bisection."""
    if _heap_run(script, hi, path_dir) is None:
        return None
    if _heap_run(script, lo, path_dir) is not None:
        return lo
    while hi - lo > 1:  # invariant: fails at lo, succeeds at hi
        mid = (lo + hi) // 2
        if _heap_run(script, mid, path_dir) is None:
            lo = mid
        else:
            hi = mid
    return hi


def _port_arch() -> str:
    """The -march of the unix port's native code (from sys.implementation._mpy)."""
    out = _mp_run("import sys\nprint(sys.implementation._mpy)\n")
    code = (int(out.split()[-1]) >> 10) & 0x3F
    names = {v: k for k, v in builds.MPY_ARCH_CODES.items()}
    if code not in names:
        raise BenchError("unknown native arch %d in the unix port" % code)
    return names[code]


def measure_heap(path) -> dict:
    """min_heap_bytes (.mpy), min_heap_bytes_source (.py), peak and live heap at 64 KB."""
    script = _HEAP_SCRIPT % {"path": str(path), "learn": HEAP_LEARN_STEPS,
                             "predict": HEAP_PREDICT_STEPS}
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-mpy-") as tmp:
        try:
            builds.build_mpy(_port_arch(), tmp)
        except builds.BuildError as e:
            raise BenchError(str(e)) from None
        k_mpy = _min_heap_k(script, tmp)
        peak_k = max(PEAK_HEAP_K, k_mpy or HEAP_HI_K)
        peak = _heap_run(script, peak_k, tmp)
    k_src = _min_heap_k(script, None)
    return {
        "min_heap_bytes": None if k_mpy is None else k_mpy * 1024,
        "min_heap_bytes_source": None if k_src is None else k_src * 1024,
        "peak_heap_bytes": None if peak is None else peak[0],
        "live_heap_bytes": None if peak is None else peak[1],
        "peak_heap_run_bytes": peak_k * 1024,
    }


# ---- instruction counts ------------------------------------------------------------------------

_CG_SCRIPT = r'''
from array import array

from ffrt import kernels_ref, kernels_viper

N = %(n)d
COUNTS = %(counts)r
w = bytearray(N * N)
x = bytearray(N)
h = bytearray(N)
rng = array("H", [0x1234, 0x5678] * N)
s = 12345
for i in range(N * N):
    s = (s * 1103515245 + 12345) & 0x3FFFFFFF
    w[i] = 1 + (s >> 8) %% 255
for i in range(N):
    x[i] = 1 + (i * 37) %% 255
    h[i] = 1 + (i * 91) %% 255
f = kernels_viper.fc_relu
for _ in range(COUNTS["fc_viper"]):
    f(w, x, h, N, N, 8)
f = kernels_ref.fc_relu
for _ in range(COUNTS["fc_pure"]):
    f(w, x, h, N, N, 8)
f = kernels_viper.update
for i in range(COUNTS["update_viper"]):
    f(w, x, h, N, N, 400 if i & 1 else -400, 22, rng, 0)
'''


def find_valgrind() -> str | None:
    return shutil.which("valgrind")


def _callgrind_count(counts: dict, tmp: str, tag: str) -> int:
    """Instructions callgrind counts in MicroPython's run_main for the script with counts."""
    exe = mpy.find_micropython()
    script = os.path.join(tmp, "cg_%s.py" % tag)
    with open(script, "w") as f:
        f.write(_CG_SCRIPT % {"n": CG_N, "counts": counts})
    out_file = os.path.join(tmp, "callgrind.%s.out" % tag)
    argv = [find_valgrind(), "--tool=callgrind", "--callgrind-out-file=" + out_file]
    with open(exe, "rb") as f:
        launcher = f.read(2) == b"#!"
    if launcher:
        # the pip package's micropython is a CPython script that calls run_main() in a C
        # extension: count only MicroPython, not CPython's start-up
        argv.append("--toggle-collect=*run_main*")
    argv += [exe, script]
    env = dict(os.environ)
    env["MICROPYPATH"] = "%s%s.frozen" % (mpy.firmware_dir(), os.pathsep)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp)
    if proc.returncode != 0:
        raise BenchError("callgrind run failed (%s):\n%s"
                         % (tag, (proc.stderr + proc.stdout)[-2000:]))
    with open(out_file) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise BenchError("no instruction total in " + out_file)


def measure_callgrind(k_fc: int = 100, k_update: int = 100, k_pure: int = 3) -> dict:
    """instructions_per_mac_forward, instructions_per_weight_update, ..._forward_pure."""
    if find_valgrind() is None:
        raise BenchError("valgrind not found on PATH")
    zero = {"fc_viper": 0, "fc_pure": 0, "update_viper": 0}
    macs = CG_N * CG_N
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-cg-") as tmp:
        base = _callgrind_count(zero, tmp, "base")
        out = {}
        for key, what, k in (("instructions_per_mac_forward", "fc_viper", k_fc),
                             ("instructions_per_weight_update", "update_viper", k_update),
                             ("instructions_per_mac_forward_pure", "fc_pure", k_pure)):
            n = _callgrind_count(dict(zero, **{what: k}), tmp, what)
            out[key] = round((n - base) / (k * macs), 2)
        out["callgrind_calls"] = {"fc_viper": k_fc, "update_viper": k_update, "fc_pure": k_pure,
                                  "size": "%dx%d" % (CG_N, CG_N)}
    return out


# ---- the serial link -----------------------------------------------------------------------------


class _CountingLink(Link):
    """A link that counts the bytes written and read: the wire, both directions."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.sent = 0
        self.received = 0

    def write(self, data):
        self.sent += len(data)
        self.inner.write(data)

    def read(self, n, timeout):
        data = self.inner.read(n, timeout)
        self.received += len(data)
        return data

    def close(self):
        self.inner.close()


def measure_link(steps: int = DEFAULT_STEPS) -> dict:
    """Wire efficiency of an export and request rates, over a virtual board's pty.

    The board boots fresh (the digits shape, Config()); its export is the 32,130-byte
    file. Every byte of the export's frames is counted, requests and replies, delimiters
    and COBS overhead included. Then `steps` LEARN requests one by one, and `steps`
    labelled samples in STREAM batches (as many per frame as MAX_BODY holds).
    """
    from ffkit.client import Board
    from ffkit.link import open_link
    from ffkit.sim import VirtualBoard

    X, y, _, _ = digits_split(N_SAMPLES, 1)
    xs = [[int(v) for v in row] for row in X]
    ys = [int(v) for v in y]
    samples = [(xs[i % len(xs)], ys[i % len(ys)]) for i in range(steps)]
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-link-") as tmp:
        with VirtualBoard(os.path.join(tmp, "board")) as vb:
            link = _CountingLink(open_link(vb.port))
            with Board(link, hello_timeout=2.0) as board:
                link.sent = link.received = 0
                data = board.export()
                down, up = link.sent, link.received
                t0 = time.perf_counter()
                for x, label in samples:
                    board.learn(x, label)
                learn_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                board.stream(samples)
                stream_s = time.perf_counter() - t0
    return {"wire_efficiency": round(len(data) / (down + up), 4),
            "link_export_bytes": {"payload": len(data), "wire": down + up,
                                  "host_to_board": down, "board_to_host": up},
            "learn_steps_per_s_link": round(steps / learn_s, 1),
            "stream_samples_per_s_link": round(steps / stream_s, 1)}


# ---- replay ------------------------------------------------------------------------------------

REPLAY_REPEATS = 3


def log_samples(data) -> int:
    """Raw IMU samples in a session log's SAMPLES records (ffrt.live_ops: u8 flags, u8 k,
    k labels, then six int16 a sample)."""
    from ffrt import ffl, live_ops
    from ffrt import proto as P

    _, recs = ffl.parse(data)
    return sum((len(body) - 2 - body[1]) // live_ops._SAMPLE
               for t, _, body, _ in recs if t == P.SAMPLES)


def measure_replay(repeats: int = REPLAY_REPEATS) -> dict:
    """replay_speedup_vs_realtime: the golden HAPT session (recorded afresh on a virtual
    board, so it is this firmware's) replayed `repeats` times by ``ffkit replay --json``
    (numpy runner), each in a new process as a user runs it; the session's real time
    (samples / 50 Hz) over the median of the replays' own wall time (``seconds``: loading
    the weights and replaying, without the interpreter's start-up).

    A new process, not this one: the replay makes many small objects, and the cyclic
    collector's full passes scan every object a process holds, so after the other
    benchmarks (scikit-learn loaded) the same replay takes about three times as long."""
    from ffkit import golden, hapt

    with tempfile.TemporaryDirectory(prefix="ffkit-bench-replay-") as tmp:
        path = os.path.join(tmp, "hapt.ffl")
        golden.record_hapt(path)
        with open(path, "rb") as f:
            samples = log_samples(f.read())
        times, process = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "ffkit.cli", "replay", path, "--json"],
                               capture_output=True, text=True, timeout=600)
            process.append(time.perf_counter() - t0)
            try:
                r = json.loads(p.stdout)
            except json.JSONDecodeError:
                raise BenchError("ffkit replay failed:\n" + (p.stderr + p.stdout)[-2000:]) \
                    from None
            if not r["identical"]:
                raise BenchError("the replay of a fresh HAPT log diverges: %s"
                                 % r["first_divergence"])
            times.append(r["seconds"])
    wall = sorted(times)[len(times) // 2]
    session = samples / hapt.RATE_HZ
    return {"replay_speedup_vs_realtime": round(session / wall, 1),
            "replay_log": {"records": r["records"], "samples": samples,
                           "session_seconds": round(session, 2), "replay_seconds": wall,
                           "process_seconds": round(sorted(process)[len(process) // 2], 3),
                           "repeats": repeats}}


# ---- sleep: the work of an awake window ------------------------------------------------------

AWAKE_WARM = 96          # windows learnt before the timing (the buffer fills)
AWAKE_WINDOWS = 100      # windows timed per learning path

# MicroPython: the HAPT model through LiveLearner.window on feature rows (72 bytes and a
# label each) from a file; per path a fresh net from the same file, AWAKE_WARM windows,
# then AWAKE_WINDOWS timed (automatic collection off; the paths take turns), and the same
# again with counting kernels (multiply-accumulates: forward, update).
_AWAKE_SCRIPT = r'''
import gc
import json
import time

from ffrt import ffw_ram, kernels_viper
from ffrt.live import LiveLearner
from ffrt.sleep import setup, sleep

with open(%(model)r, "rb") as f:
    MODEL = f.read()
with open(%(rows)r, "rb") as f:
    data = f.read()
xs = []
ys = []
for i in range(len(data) // 73):
    xs.append(data[73 * i:73 * i + 72])
    ys.append(data[73 * i + 72])
WARM = %(warm)d
K = %(k)d


class Counting:
    def __init__(self):
        self.fwd = 0
        self.upd = 0

    def fc_relu(self, w, x, h, n_in, n_out, shift):
        self.fwd += n_in * n_out
        return kernels_viper.fc_relu(w, x, h, n_in, n_out, shift)

    def normalize(self, h, out, n, recip):
        return kernels_viper.normalize(h, out, n, recip)

    def update(self, w, x, h, n_in, n_out, coef, shift, rng, floor):
        self.upd += n_in * n_out
        return kernels_viper.update(w, x, h, n_in, n_out, coef, shift, rng, floor)

    def head_scores(self, wh, a, n_in, n_out, scores):
        self.fwd += n_in * n_out
        return kernels_viper.head_scores(wh, a, n_in, n_out, scores)

    def head_update(self, wh, a, n_in, row, coef, shift, rng):
        self.upd += n_in
        return kernels_viper.head_update(wh, a, n_in, row, coef, shift, rng)


def learner(path, kernels):
    net = ffw_ram.load(MODEL)
    if kernels is not None:
        net.k = kernels
    live = LiveLearner(net, 0 if path == "learn_last" else %(per_class)d, %(replay)d)
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
out = {}
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
'''


def write_awake_rows(path, n: int) -> None:
    """n HAPT target windows of subjects 16-17 (72 features and the label each), in a
    fixed shuffled order, so the buffer holds every class when the timing starts."""
    import numpy as np

    from ffkit import hapt

    w = hapt.windows(subjects=(16, 17))
    order = np.random.RandomState(0).permutation(len(w["y"]))[:n]
    rows = np.concatenate([np.asarray(w["X"], np.uint8)[order],
                           np.asarray(w["y"], np.uint8)[order, None]], axis=1)
    with open(path, "wb") as f:
        f.write(rows.tobytes())


def measure_awake(windows: int = AWAKE_WINDOWS, warm: int = AWAKE_WARM) -> dict:
    """awake_window_work_ratio and its details (module docstring): one MicroPython run."""
    from ffkit import config

    adapt = config.load(config.models_dir() / "hapt.toml").adapt
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-awake-") as tmp:
        rows = os.path.join(tmp, "rows.bin")
        write_awake_rows(rows, warm + windows)
        raw = _last_json(_mp_run(_AWAKE_SCRIPT % {
            "model": str(config.models_dir() / "hapt.ffw"), "rows": rows, "warm": warm,
            "k": windows, "per_class": adapt.per_class, "replay": adapt.replay},
            timeout=1200))
    one = raw["forward_pass_macs"]
    detail = {"model": raw["model"] + " (models/hapt.ffw)",
              "adapt": "per_class %d, replay %d" % (adapt.per_class, adapt.replay),
              "windows": windows, "warm_windows": warm, "forward_pass_macs": one}
    for path in ("predict", "learn_last", "interleaved", "awake", "sleep_step"):
        r = raw[path]
        detail[path] = {"us": round(r["us"], 1),
                        "forward_passes": round(r["fwd_macs"] / one, 2),
                        "update_passes": round(r["upd_macs"] / one, 2)}
    t = {k: raw[k]["us"] for k in ("predict", "learn_last", "interleaved", "awake")}
    m = {k: raw[k]["fwd_macs"] + raw[k]["upd_macs"] for k in raw if isinstance(raw[k], dict)}
    # counted, so exact: the whole window's MACs, and those of its learning alone
    detail["mac_ratio"] = _ratio(m["awake"], m["interleaved"])
    detail["learn_mac_ratio"] = _ratio(m["awake"] - m["predict"],
                                       m["interleaved"] - m["predict"])
    detail["awake_vs_learn_last_ratio"] = _ratio(t["awake"], t["learn_last"])
    detail["sleep_step_vs_interleaved_window"] = _ratio(raw["sleep_step"]["us"],
                                                        t["interleaved"])
    return {"awake_window_work_ratio": _ratio(t["awake"], t["interleaved"]),
            "awake_window": detail}


# ---- the whole bench ---------------------------------------------------------------------------


def run_bench(steps: int = DEFAULT_STEPS, pure_steps: int = DEFAULT_PURE_STEPS,
              callgrind: bool = True, progress=None) -> dict:
    """Every figure of FIGURES (None where not measured) plus run details."""
    say = progress or (lambda msg: None)
    rep = {k: None for k, _, _ in FIGURES}
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-") as tmp:
        path = os.path.join(tmp, "samples.bin")
        write_bench_samples(path)
        say("speed and allocation (%d viper steps, %d pure steps)" % (steps, pure_steps))
        t0 = time.monotonic()
        rep.update(measure_speed(path, steps, pure_steps))
        seconds["speed"] = round(time.monotonic() - t0, 2)
        say("heap (bisection over -X heapsize)")
        t0 = time.monotonic()
        rep.update(measure_heap(path))
        seconds["heap"] = round(time.monotonic() - t0, 2)
    say("the serial link (a virtual board: export, %d LEARN, %d STREAM samples)"
        % (steps, steps))
    t0 = time.monotonic()
    rep.update(measure_link(steps))
    seconds["link"] = round(time.monotonic() - t0, 2)
    say("sleep: a HAPT window learnt awake vs interleaved (%d windows each)" % AWAKE_WINDOWS)
    t0 = time.monotonic()
    rep.update(measure_awake(min(steps, AWAKE_WINDOWS)))
    seconds["awake"] = round(time.monotonic() - t0, 2)
    say("replay (a HAPT session log from a virtual board, numpy runner, %d times)"
        % REPLAY_REPEATS)
    t0 = time.monotonic()
    rep.update(measure_replay())
    seconds["replay"] = round(time.monotonic() - t0, 2)
    if not callgrind:
        rep["callgrind"] = "skipped (--no-callgrind)"
    elif find_valgrind() is None:
        rep["callgrind"] = "skipped (valgrind not found)"
    else:
        say("instruction counts (valgrind --tool=callgrind)")
        t0 = time.monotonic()
        rep.update(measure_callgrind())
        seconds["callgrind"] = round(time.monotonic() - t0, 2)
        rep["callgrind"] = "measured"
    rep["steps"] = steps
    rep["pure_steps"] = pure_steps
    rep["micropython"] = _mp_run(
        "import sys\nprint('%s %s' % (sys.implementation.name, "
        "'.'.join(str(v) for v in sys.implementation.version[:3])))\n").strip()
    rep["seconds"] = seconds
    return rep


def _fmt(v, unit):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%.2f" % v).rstrip("0").rstrip(".") if unit != "B" or v != int(v) else "%d" % v
    return str(v)


def format_table(rep: dict) -> str:
    lines = ["ffkit bench: model %s in %s (%d viper steps, %d pure steps)" % (
        rep.get("model"), rep.get("micropython"), rep["steps"], rep["pure_steps"]), ""]
    lines.append("%-35s %12s %-5s  %s" % ("figure", "value", "unit", "meaning"))
    for key, unit, meaning in FIGURES:
        lines.append("%-35s %12s %-5s  %s" % (key, _fmt(rep.get(key), unit), unit, meaning))
    lines.append("")
    lines.append("layers with activity to learn from after the timed run: %s (share of steps)"
                 % ", ".join("%.2f" % a for a in rep.get("ff_active_fraction") or []))
    lines.append("instruction counts: %s" % rep.get("callgrind"))
    aw = rep.get("awake_window")
    if aw:
        lines.append("sleep, HAPT %s, %s; per window (us, forward + update passes): "
                     "%s; MACs awake / interleaved: learning alone %s, whole window %s"
                     % (aw["model"], aw["adapt"], ", ".join(
                         "%s %.0f (%.1f + %.1f)" % (k, aw[k]["us"], aw[k]["forward_passes"],
                                                    aw[k]["update_passes"])
                         for k in ("predict", "learn_last", "interleaved", "awake",
                                   "sleep_step")), aw["learn_mac_ratio"], aw["mac_ratio"]))
    log = rep.get("replay_log")
    if log:
        lines.append("replay: %d samples (%.1f s at 50 Hz), %d records, replayed in %.3f s "
                     "(%.2f s with the process start; median of %d)"
                     % (log["samples"], log["session_seconds"], log["records"],
                        log["replay_seconds"], log["process_seconds"], log["repeats"]))
    lines.append("seconds: %s" % ", ".join("%s %.1f" % kv for kv in rep["seconds"].items()))
    return "\n".join(lines)


# ---- CLI -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="viper learn and predict steps timed (default %(default)s)")
    parser.add_argument("--pure-steps", type=int, default=DEFAULT_PURE_STEPS,
                        help="steps timed with the pure-Python kernels (default %(default)s)")
    parser.add_argument("--no-callgrind", action="store_true",
                        help="skip the valgrind instruction counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args) -> int:
    """Exit code 0 when every benchmark ran, 1 when one failed, 2 on bad usage."""
    if args.steps < 1 or args.pure_steps < 1:
        print("ffkit: --steps and --pure-steps must be at least 1", file=sys.stderr)
        return 2
    progress = None if args.json else (lambda m: print(m + " ...", file=sys.stderr))
    try:
        rep = run_bench(args.steps, args.pure_steps, callgrind=not args.no_callgrind,
                        progress=progress)
    except FFKitError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(rep) if args.json else format_table(rep))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ffkit bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
