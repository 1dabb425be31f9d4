"""Benchmarks of the board engine, measured inside MicroPython (the unix port).

``ffkit bench`` runs the digits model (Config() defaults: 74-128-128, label overlay,
hardest wrong-label negatives) on real scikit-learn digits samples read from a file, and
reports:

- speed: microseconds per `learn_one` / `predict_one` with the viper kernels, and the
  speed-up of viper over the pure-Python kernels, both timed in one MicroPython process on
  the same samples from the same starting weights (``time.ticks_us``);
- allocation: bytes left allocated per learn / predict step in steady state
  (``gc.mem_alloc`` before and after ``--steps`` steps, automatic collection off), and
  the heap traffic: every byte allocated, also what is freed at once, such as a call
  frame over MicroPython's stack limit (``micropython.mem_total``, where the port counts);
- memory: the net's arrays (``net.ram_bytes()``), the smallest ``-X heapsize`` that builds
  the net, learns 20 samples and predicts (bisection in 1 KB steps, with ffrt cross-compiled
  to .mpy as `ffkit flash` installs it, and again from .py source), and the highest
  ``gc.mem_alloc()`` seen in that run at a 64 KB heap;
- instructions (where valgrind is installed): callgrind counts of a script that calls
  ``kernels_viper.fc_relu`` (128 x 128) K times minus the same script with 0 calls, per
  multiply-accumulate; likewise per weight updated by ``kernels_viper.update`` with every
  h and x non-zero, and per MAC of the pure-Python ``kernels_ref.fc_relu``;
- the serial link, to a virtual board (ffkit.board.sim: the firmware in the unix port on a pty,
  driven by ffkit.board.client over pyserial): the share of the bytes on the wire, both
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
  ffkit.sessions.golden.record_hapt: raw IMU samples, personalise protocol) replayed on the host
  with the numpy runner (ffkit.sessions.replay), against the session's real time: the raw samples
  in its SAMPLES records at HAPT's 50 Hz, over the replay's wall time (``ffkit replay
  --json``'s ``seconds`` in a new process, median of 3).

    $ ffkit bench --json
    {"learn_speedup_viper": 54.77, ..., "alloc_bytes_per_learn_step": 0.0, ...,
     "instructions_per_mac_forward": 28.36, ...}

On an emulated microcontroller (``ffkit bench --machine cortex-m3|cortex-m0``: the firmware
image of ffkit.board.qemu, MicroPython for the board with ffrt frozen, run by QEMU):

- instruction counts under ``-icount shift=0``, where QEMU's virtual clock advances 1 ns
  per instruction, so time.ticks_us() deltas are instruction counts (times the
  instructions a tick lasts, read from the board: 1,000 on the Cortex-M3 and on the
  Cortex-M0 image, built for the 16 MHz at which QEMU clocks the nRF51's SysTick): per
  MAC of fc_relu and per weight of update (128 x 128; viper on the Cortex-M3, the pure
  kernels on the Cortex-M0, and the pure kernels on the Cortex-M3 too), per learn_one and
  predict_one of models/digits.ffw, and per HAPT window of models/hapt.ffw with its
  [adapt] (raw int16 samples fed to an ffrt.live.LiveLearner: features, prediction,
  learning through the rehearsal buffer); each minus a no-op twin timed alike, from
  `--repeat` fresh boots that must agree exactly (``instr_repeatable``), and as rates at
  stated clocks (``at_clock``; one instruction per cycle assumed: upper bounds);
- allocation per learn, predict and HAPT-window step (gc.mem_alloc, collection off);
- the smallest heaps the image boots with (1 KB bisection over QemuBoard's heap) that
  serve the firmware's requests and stream HAPT, ffrt frozen and as .mpy files in the
  board's filesystem (``--no-heap`` skips them);
- on the Cortex-M0 (TINY_MACHINES), the same for models/hapt-tiny, issue 16's model for
  small boards: a learnt window's instructions and allocation on one more boot, its
  windows per second at the stated clocks, and the smallest heap that streams it.

    $ ffkit bench --machine cortex-m3 --json
    {"instr_per_mac_forward": 16.21, ..., "min_heap_kb_stream": 64, ...}

Ratios, allocation and instruction counts are what tests check; absolute times depend on
the machine.
The unix port is a 64-bit build: object headers and pointers are twice a 32-bit board's,
so heap figures are upper bounds for boards (the net's arrays are the same size).

Size (over 500 lines): four measuring rigs (timing and allocation in the unix port, heap
bisection, callgrind counts, QEMU instruction counts) behind one report and one JSON
schema; splitting it by rig is left for later.
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


from ffkit import FFKitError


from ffkit.board import builds, mpy
from ffkit.board.link import Link
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
    "min_heap_k",
    "qemu_counts",
    "qemu_heaps",
    "run_bench",
    "run_cli",
    "run_qemu_bench",
    "QEMU_FIGURES",
    "format_qemu_table",
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
    ("learn_speedup_native", "x", "pure-Python learn_one time / the native (C) kernels'"),
    ("learn_native_vs_viper", "x", "viper learn_one time / native's (steady state, --steps)"),
    ("predict_native_vs_viper", "x", "viper predict_one time / native's"),
    ("learn_us_native", "us", "one learn_one with the native kernels (C .mpy for x64)"),
    ("predict_us_native", "us", "one predict_one with the native kernels"),
    ("predict_us_pure", "us", "one predict_one with pure-Python kernels"),
    ("alloc_bytes_per_learn_step", "B", "heap bytes allocated per learn_one, steady state"),
    ("alloc_bytes_per_predict_step", "B", "heap bytes allocated per predict_one (viper)"),
    ("alloc_bytes_per_predict_head_step", "B", "heap bytes allocated per predict_head"),
    ("alloc_probe_bytes_per_step", "B", "control: a loop that makes one small list per step"),
    ("heap_traffic_bytes_per_learn_step", "B", "every heap byte allocated per learn_one, "
     "freed at once or not (micropython.mem_total: frames over the stack limit)"),
    ("heap_traffic_bytes_per_predict_step", "B", "the same per predict_one"),
    ("heap_traffic_bytes_per_predict_head_step", "B", "the same per predict_head"),
    ("heap_traffic_bytes_per_probe_step", "B", "control: the one-list-per-step loop"),
    ("net_ram_bytes", "B", "bytes in the net's arrays: weights, PRNG states, head, buffers"),
    ("min_heap_bytes", "B", "least -X heapsize for build + 20 learn + predict, ffrt as .mpy"),
    ("min_heap_bytes_source", "B", "the same with ffrt from .py source (compiled on board)"),
    ("peak_heap_bytes", "B", "highest gc.mem_alloc() seen in that run at a 64 KB heap"),
    ("live_heap_bytes", "B", "gc.mem_alloc() after gc.collect() at the end of that run"),
    ("instructions_per_mac_forward", "instr", "x64 instructions per MAC, viper fc_relu"),
    ("instructions_per_weight_update", "instr", "x64 instructions per weight, viper update"),
    ("instructions_per_mac_forward_pure", "instr", "x64 instructions per MAC, pure fc_relu"),
    ("instr_per_mac_native", "instr", "x64 instructions per MAC, native (C) fc_relu"),
    ("instr_per_weight_update_native", "instr", "x64 instructions per weight, native update"),
    ("instr_per_mac_c_loop", "instr", "the plain C loop's per MAC, same flags (yardstick)"),
    ("instr_per_weight_update_c_loop", "instr", "the plain C update loop's per weight"),
    ("wire_efficiency", "ratio", "payload / all bytes on the wire (both ways), 32 KB export"),
    ("learn_steps_per_s_link", "/s", "LEARN requests answered per second, virtual board"),
    ("stream_samples_per_s_link", "/s", "samples per second in STREAM batches, virtual board"),
    ("replay_speedup_vs_realtime", "x", "HAPT session's time at 50 Hz / its replay's (numpy)"),
    ("awake_window_work_ratio", "ratio", "HAPT window learnt awake (sleep) / interleaved, time"),
)


class BenchError(FFKitError):
    """A benchmark could not run (a MicroPython script failed, a tool is missing)."""


def _mp_run(script: str, **kw) -> str:
    """`mpy.run`, its errors as BenchError (the scripts: firmware/tools/bench_*.py)."""
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

# MicroPython: firmware/tools/bench_speed.py (what it times, its arguments).


def measure_speed(path, steps: int = DEFAULT_STEPS, pure_steps: int = DEFAULT_PURE_STEPS,
                  timeout: float = 1200) -> dict:
    """Speed-ups, per-step times and allocation, from one MicroPython run (see module doc)."""
    if steps < 1 or pure_steps < 1:
        raise BenchError("steps and pure steps must be at least 1")
    native_path, _ = _native_port()
    env = None if native_path is None else {"MICROPYPATH": native_path}
    raw = _last_json(_mp_run(mpy.script("bench_speed.py"), args=[str(path), steps, pure_steps],
                             timeout=timeout, env_extra=env))
    if not raw["nets_identical"] or not raw.get("native_identical", True):
        raise BenchError("pure, viper and native nets differ after the same samples: run "
                         "ffkit parity")
    native = {}
    if "learn_native_us" in raw:
        traffic = raw["traffic_bytes_per_step"]
        native = {
            "learn_speedup_native": _ratio(raw["learn_pure_total_us"],
                                           raw["learn_native_same_us"]),
            "predict_speedup_native": _ratio(raw["predict_pure_total_us"],
                                             raw["predict_native_same_us"]),
            "learn_native_vs_viper": _ratio(raw["learn_viper_us"], raw["learn_native_us"]),
            "predict_native_vs_viper": _ratio(raw["predict_viper_us"],
                                              raw["predict_native_us"]),
            "learn_us_native": round(raw["learn_native_us"] / steps, 1),
            "predict_us_native": round(raw["predict_native_us"] / steps, 1),
            "predict_head_us_native": round(raw["predict_head_native_us"] / steps, 1),
            "heap_traffic_bytes_per_learn_step_native": traffic.pop("learn_native"),
            "heap_traffic_bytes_per_predict_step_native": traffic.pop("predict_native"),
        }
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
        **{"heap_traffic_bytes_per_%s_step" % k: v
           for k, v in raw["traffic_bytes_per_step"].items()},
        "net_ram_bytes": raw["net_ram_bytes"],
        "ff_active_fraction": [round(a, 3) for a in raw["ff_active_fraction"]],
        **native,
    }


def _ratio(a, b):
    return round(a / b, 2) if b > 0 else None


# ---- heap --------------------------------------------------------------------------------------

# MicroPython: firmware/tools/bench_heap.py (the digits net built, learning and predicting
# streamed samples; the highest gc.mem_alloc() between steps).


def _heap_run(script: str, heap_k: int, path_dir: str | None, args=()):
    """(peak, live) when the script fits in heap_k KB, None when it runs out of memory."""
    env = None
    if path_dir is not None:
        env = {"MICROPYPATH": "%s%s.frozen" % (path_dir, os.pathsep)}
    try:
        out = mpy.run(script, args=args, heapsize="%dK" % heap_k, env_extra=env,
                      timeout=120)
    except mpy.MicroPythonError as e:
        if "MemoryError" in e.tail:
            return None
        raise BenchError("heap probe at %d KB failed:\n%s" % (heap_k, e.tail)) from None
    m = re.search(r"HEAP_OK (\d+) (\d+)", out)
    if not m:
        raise BenchError("heap probe printed no result:\n" + out[-2000:])
    return int(m.group(1)), int(m.group(2))


def _min_heap_k(script: str, path_dir: str | None, lo: int = HEAP_LO_K,
                hi: int = HEAP_HI_K, args=()) -> int | None:
    """Smallest heap in KB (lo < k <= hi) in which the script succeeds, by bisection."""
    if _heap_run(script, hi, path_dir, args) is None:
        return None
    if _heap_run(script, lo, path_dir, args) is not None:
        return lo
    while hi - lo > 1:  # invariant: fails at lo, succeeds at hi
        mid = (lo + hi) // 2
        if _heap_run(script, mid, path_dir, args) is None:
            lo = mid
        else:
            hi = mid
    return hi


def measure_heap(path) -> dict:
    """min_heap_bytes (.mpy), min_heap_bytes_source (.py), peak and live heap at 64 KB."""
    script = mpy.script("bench_heap.py")
    args = [str(path), HEAP_LEARN_STEPS, HEAP_PREDICT_STEPS]
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-mpy-") as tmp:
        try:
            builds.build_mpy(builds.port_arch(), tmp)
        except builds.BuildError as e:
            raise BenchError(str(e)) from None
        k_mpy = _min_heap_k(script, tmp, args=args)
        peak_k = max(PEAK_HEAP_K, k_mpy or HEAP_HI_K)
        peak = _heap_run(script, peak_k, tmp, args)
    k_src = _min_heap_k(script, None, args=args)
    return {
        "min_heap_bytes": None if k_mpy is None else k_mpy * 1024,
        "min_heap_bytes_source": None if k_src is None else k_src * 1024,
        "peak_heap_bytes": None if peak is None else peak[0],
        "live_heap_bytes": None if peak is None else peak[1],
        "peak_heap_run_bytes": peak_k * 1024,
    }


# ---- instruction counts ------------------------------------------------------------------------

# MicroPython: firmware/tools/bench_callgrind.py (N x N kernel calls, counts in sys.argv).


def find_valgrind() -> str | None:
    return shutil.which("valgrind")


CG_KEYS = ("fc_viper", "fc_pure", "update_viper", "fc_native", "update_native", "fc_cloop",
           "update_cloop")  # bench_callgrind.py's arguments, in order


def _callgrind_count(counts: dict, tmp: str, tag: str, path: str) -> int:
    """Instructions callgrind counts in MicroPython's run_main for the script with counts
    (path: the MICROPYPATH folder that holds ffrt)."""
    exe = mpy.find_micropython()
    script = os.path.join(tmp, "cg_%s.py" % tag)
    with open(script, "w") as f:
        f.write(mpy.script("bench_callgrind.py"))
    out_file = os.path.join(tmp, "callgrind.%s.out" % tag)
    argv = [find_valgrind(), "--tool=callgrind", "--callgrind-out-file=" + out_file]
    with open(exe, "rb") as f:
        launcher = f.read(2) == b"#!"
    if launcher:
        # the pip package's micropython is a CPython script that calls run_main() in a C
        # extension: count only MicroPython, not CPython's start-up
        argv.append("--toggle-collect=*run_main*")
    argv += [exe, script, str(CG_N)]
    argv += [str(counts.get(k, 0)) for k in CG_KEYS]
    env = dict(os.environ)
    env["MICROPYPATH"] = "%s%s.frozen" % (path, os.pathsep)
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


def _native_port():
    """(MICROPYPATH folder with ffrt and the native kernels for the unix port's arch,
    bench_cloop.mpy), or (None, None) where they do not build (ffkit.board.native)."""
    from ffkit.board import native

    try:
        arch = builds.port_arch()
        return (str(native.native_firmware_dir(arch)),
                native.build(arch, mpy.tools_dir() / "cloop", "bench_cloop"))
    except (native.NativeError, builds.BuildError, mpy.MicroPythonError):
        return None, None


def measure_callgrind(k_fc: int = 100, k_update: int = 100, k_pure: int = 3) -> dict:
    """instructions_per_mac_forward, instructions_per_weight_update, ..._forward_pure
    (viper and pure), and where the native kernels build here (x64) instr_per_mac_native,
    instr_per_weight_update_native and the plain C loops' instr_per_mac_c_loop,
    instr_per_weight_update_c_loop (the same flags: the yardstick)."""
    if find_valgrind() is None:
        raise BenchError("valgrind not found on PATH")
    macs = CG_N * CG_N
    path, cloop = _native_port()
    runs = [("instructions_per_mac_forward", "fc_viper", k_fc),
            ("instructions_per_weight_update", "update_viper", k_update),
            ("instructions_per_mac_forward_pure", "fc_pure", k_pure)]
    if path is not None:
        runs += [("instr_per_mac_native", "fc_native", k_fc),
                 ("instr_per_weight_update_native", "update_native", k_update),
                 ("instr_per_mac_c_loop", "fc_cloop", k_fc),
                 ("instr_per_weight_update_c_loop", "update_cloop", k_update)]
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-cg-") as tmp:
        if cloop is not None:
            shutil.copyfile(cloop, os.path.join(tmp, "bench_cloop.mpy"))
        path = path or str(mpy.firmware_dir())
        base = _callgrind_count({}, tmp, "base", path)
        out = {}
        calls = {"size": "%dx%d" % (CG_N, CG_N)}
        for key, what, k in runs:
            n = _callgrind_count({what: k}, tmp, what, path)
            out[key] = round((n - base) / (k * macs), 2)
            calls[what] = k
        out["callgrind_calls"] = calls
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
    from ffkit.board.client import Board
    from ffkit.board.link import open_link
    from ffkit.board.sim import VirtualBoard

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
    return sum((len(body) - 2 - body[1]) // live_ops.SAMPLE_BYTES
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
    from ffkit.data import hapt
    from ffkit.sessions import golden

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

# MicroPython: firmware/tools/bench_awake.py (the paths it times, its arguments).


def write_awake_rows(path, n: int) -> None:
    """n HAPT target windows of subjects 16-17 (72 features and the label each), in a
    fixed shuffled order, so the buffer holds every class when the timing starts."""
    import numpy as np

    from ffkit.data import hapt

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
        raw = _last_json(_mp_run(mpy.script("bench_awake.py"), args=[
            str(config.models_dir() / "hapt.ffw"), rows, warm, windows, adapt.per_class,
            adapt.replay], timeout=1200))
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


# ---- emulated boards (QEMU): instruction counts, allocation, smallest heaps -------------------
#
# `ffkit bench --machine cortex-m3|cortex-m0` measures the firmware image that ffkit.board.qemu
# builds (MicroPython for the board, ffrt frozen), run by QEMU.
#
# Instruction counts: under ``-icount shift=0`` QEMU's virtual clock advances exactly 1 ns
# per guest instruction, and every clock the guest can read (SysTick behind
# time.ticks_us, the SoC's timers) runs on that virtual clock. The counts are taken with
# time.ticks_us(); how many nanoseconds one of its microseconds lasts is read from the
# board rather than assumed. The qemu port's ticks_us counts SysTick cycles at the rate
# its CPU_FREQ_HZ names (SysTick's reload register holds CPU_FREQ_HZ / 1000 - 1 cycles a
# millisecond), while QEMU clocks SysTick at the SoC's own rate: 25 MHz on mps2-an385 and
# 16 MHz on the nRF51. The port assumes 25 MHz; ffkit's CORTEX_M0 board says 16 MHz, so a
# tick is 1,000 instructions on both (an image built without that line would make it
# 1,562.5, and the reload register read here would say so). Each run cross-checks the
# rate against the SoC's own timer (CMSDK timer 0 at 25 MHz, nRF51 TIMER0 at 16 MHz)
# read through machine.mem32.

QEMU_CLOCKS = {
    # machine: (SysTick's clock in QEMU, (hardware timer kind, base address, its clock))
    "cortex-m3": (25_000_000, ("cmsdk", 0x40000000, 25_000_000)),
    "cortex-m4": (25_000_000, ("cmsdk", 0x40000000, 25_000_000)),  # mps2-an386: AN385's
    "cortex-m0": (16_000_000, ("nrf51", 0x40008000, 16_000_000)),
}

# Clocks at which the counts become rates (MHz, what runs at it).
STATED_CLOCKS = {
    "cortex-m3": ((64, "an nRF52-class Cortex-M4 part at 64 MHz"),),
    "cortex-m4": ((64, "an nRF52840 (Cortex-M4F) at 64 MHz"),),
    "cortex-m0": ((16, "a micro:bit v1 (nRF51, Cortex-M0) at 16 MHz"),
                  (125, "an RP2040 (Cortex-M0+) at 125 MHz")),
}
CYCLE_CAVEAT = ("the rates assume one instruction per cycle, which a real core does not "
                "reach (Cortex-M loads take 2 cycles, taken branches 2-3, and flash adds "
                "wait states at higher clocks): they are upper bounds")

# Repetitions per machine: enough that a tick (1,000 instructions) is small
# beside what is timed; the Cortex-M0 runs the pure-Python kernels (about 50 times as many
# instructions per step), so it gets fewer.
QEMU_COUNTS = {
    "cortex-m3": {"fc": 20, "update": 20, "fc_pure": 1, "update_pure": 1, "learn_warm": 20,
                  "learn": 200, "predict": 100, "alloc": 100, "hapt_warm": 32,
                  "hapt": 48, "hapt_alloc": 8},
    "cortex-m4": {"fc": 20, "update": 20, "fc_pure": 1, "update_pure": 1, "learn_warm": 20,
                  "learn": 200, "predict": 100, "alloc": 100, "hapt_warm": 32,
                  "hapt": 48, "hapt_alloc": 8},
    "cortex-m0": {"fc": 0, "update": 0, "fc_pure": 1, "update_pure": 1, "learn_warm": 2,
                  "learn": 4, "predict": 4, "alloc": 2, "hapt_warm": 8, "hapt": 6,
                  "hapt_alloc": 1},
}
# machines whose bench also counts a window of models/hapt-tiny (issue 16's tiny profile)
TINY_MACHINES = ("cortex-m0",)
QEMU_N = 128              # fc_relu / update size for the kernel counts (128 x 128)
HAPT_SUBJECT = 16         # its first session, streamed from its first sample
HAPT_HOP_S = 64 / 50      # a new window every 64 samples at 50 Hz: 1.28 s

# MicroPython, on the emulated board: firmware/tools/bench_qemu.py (every count as raw
# ticks; its parameters in the file args.json, copied onto the board with the data).


def native_files(machine: str) -> dict:
    """{"kernels_native.mpy", "bench_cloop.mpy": bytes} for a machine that loads native
    code, where they build for its arch (ffkit.board.native), else {}."""
    from ffkit.board import native
    from ffkit.board.qemu import MACHINES

    if not MACHINES[machine][3]:
        return {}
    arch = MACHINES[machine][4]
    try:
        return {"kernels_native.mpy": native.build(arch).read_bytes(),
                "bench_cloop.mpy": native.build(arch, mpy.tools_dir() / "cloop",
                                                "bench_cloop").read_bytes()}
    except native.NativeError:
        return {}


def qemu_files(counts: dict, machine: str | None = None, hapt_model: str = "hapt") -> dict:
    """The files the count script reads on the board, {name: bytes}: with machine, the
    native kernels and plain C loops for its arch (`native_files`); the digits model and
    N_SAMPLES digits samples; models/hapt.ffw as `ffkit stream` starts it (its [adapt]
    lr_shift set) and the raw int16 samples of the first windows of HAPT subject 16's
    first session (6 a sample, windows of 128 with a hop of 64) with each window's label
    (0..5, 255: none)."""
    import numpy as np

    from ffkit import config

    from ffkit.data import hapt

    from ffkit.sessions import stream

    models = config.models_dir()
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-qemu-") as tmp:
        path = os.path.join(tmp, "samples.bin")
        write_bench_samples(path)
        with open(path, "rb") as f:
            samples = f.read()
    adapt = config.load(models / (hapt_model + ".toml")).adapt
    n_win = counts["hapt_warm"] + counts["hapt"] + counts["hapt_alloc"]
    sess = stream.subject_sessions(hapt.load(), HAPT_SUBJECT, limit=n_win)[0]
    if len(sess.y) < n_win:
        raise BenchError("HAPT subject %d's first session has %d windows, not %d"
                         % (HAPT_SUBJECT, len(sess.y), n_win))
    labels = np.where(sess.y >= 0, sess.y, 255).astype(np.uint8)
    return {**(native_files(machine) if machine else {}),
            "digits.ffw": (models / "digits.ffw").read_bytes(),
            "samples.bin": samples,
            "hapt.ffw": stream.start_bytes((models / (hapt_model + ".ffw")).read_bytes(),
                                           adapt.lr_shift),
            "hapt.bin": np.ascontiguousarray(sess.samples, "<i2").tobytes(),
            "hapt_labels.bin": labels.tobytes()}


def _qemu_raw(machine: str, counts: dict, files: dict, timeout: float,
              hapt_model: str = "hapt") -> dict:
    """One fresh boot of the machine under -icount shift=0 running bench_qemu.py."""
    from ffkit import config
    from ffkit.board import qemu

    adapt = config.load(config.models_dir() / (hapt_model + ".toml")).adapt
    kind, base, _ = QEMU_CLOCKS[machine][1]
    params = {"timer": (kind, base), "calib": 20000, "n": QEMU_N, "k": dict(counts),
              "per_class": adapt.per_class, "replay": adapt.replay,
              "head": adapt.predict == "head", "native": "kernels_native.mpy" in files}
    try:
        return qemu.run_json(machine, mpy.script("bench_qemu.py"),
                             files=dict(files, **{"args.json": json.dumps(params).encode()}),
                             icount=0, timeout=timeout)
    except qemu.QemuError as e:
        raise BenchError(str(e)) from None


def _round(v, digits):
    return None if v is None else round(v, digits)


def ns_per_tick(machine: str, raw: dict) -> float:
    """Nanoseconds of virtual time (instructions, under -icount shift=0) in one tick of
    the board's time.ticks_us: SysTick's cycles per firmware millisecond over SysTick's
    clock in QEMU, checked against the SoC timer's count over the calibration loop."""
    systick_hz, (_, _, timer_hz) = QEMU_CLOCKS[machine]
    ns = raw["systick_reload"] * 1e6 / systick_hz
    by_timer = raw["calib_timer"] * 1e9 / timer_hz / raw["calib_ticks"]
    if abs(by_timer - ns) > 0.002 * ns:
        raise BenchError("%s: time.ticks_us advances %.1f ns a tick by the SoC's timer, "
                         "%.1f ns by SysTick's reload register: the QEMU clocks in "
                         "ffkit.bench.QEMU_CLOCKS are not this QEMU's" % (machine, by_timer, ns))
    return ns


def qemu_counts(machine: str, counts: dict | None = None, repeat: int = 2,
                timeout: float = 1800, files: dict | None = None) -> dict:
    """Instruction counts and allocation per step (the comment above QEMU_CLOCKS), from
    `repeat` fresh boots of the machine; counts overrides QEMU_COUNTS[machine] entries.
    ``instr_repeatable`` says whether every raw count came out the same in each boot."""
    if machine not in QEMU_CLOCKS:
        raise BenchError("unknown machine %r (%s)" % (machine, ", ".join(QEMU_CLOCKS)))
    counts = dict(QEMU_COUNTS[machine], **(counts or {}))
    files = files if files is not None else qemu_files(counts, machine)
    runs = [_qemu_raw(machine, counts, files, timeout) for _ in range(max(1, repeat))]
    raw = runs[0]
    ns = ns_per_tick(machine, raw)

    def per(entry, units):
        """Instructions per unit from [ticks, overhead ticks, calls]."""
        if entry is None:
            return None
        t, t0, k = entry
        return (t - t0) * ns / (k * units)

    macs = QEMU_N * QEMU_N
    native = "fc" in raw
    out = {"machine": machine, "platform": raw["platform"], "kernels": raw["kernels"],
           "instr_per_tick_us": ns}
    fc = per(raw.get("fc"), macs)
    fc_pure = per(raw.get("fc_pure"), macs)
    up = per(raw.get("update"), macs)
    up_pure = per(raw.get("update_pure"), macs)
    out["instr_per_mac_forward"] = _round(fc if native else fc_pure, 2)
    out["instr_per_weight_update"] = _round(up if native else up_pure, 2)
    out["instr_per_mac_forward_pure"] = _round(fc_pure, 2)
    out["instr_per_weight_update_pure"] = _round(up_pure, 2)
    out["instr_per_learn_step"] = round(per(raw["learn"], 1))
    out["instr_per_predict_step"] = round(per(raw["predict"], 1))
    hp = raw["hapt"]
    over = hp["overhead"] / hp["windows"]  # the timer's and a call's own cost, per window

    def window_instr(c):
        return round((c[0] / c[1] - over) * ns) if c[1] else None

    out["instr_per_hapt_window"] = window_instr(hp["learnt"])
    out["instr_per_hapt_window_unlabelled"] = window_instr(hp["other"])
    if machine in TINY_MACHINES:  # the tiny model's window (issue 16), one more boot
        # the digits and kernel counts are the main run's: one step of each here
        tc = dict(counts, fc_pure=0, update_pure=0, learn_warm=0, learn=1, predict=1,
                  alloc=1)
        tiny = _qemu_raw(machine, tc, qemu_files(tc, machine, "hapt-tiny"), timeout,
                         "hapt-tiny")
        tp = tiny["hapt"]
        over_t = tp["overhead"] / tp["windows"]
        learnt = tp["learnt"]
        out["instr_per_hapt_window_tiny"] = round((learnt[0] / learnt[1] - over_t) * ns) \
            if learnt[1] else None
        b, k = tiny["alloc_hapt"]
        out["alloc_bytes_per_hapt_window_tiny"] = None if b is None else b / k
    nat = raw.get("native")
    if nat is not None:  # the same counts with the native kernels (C for the arch)
        out["kernels_native"] = nat["kernels"]
        for key, entry in (("instr_per_mac_native", "fc_native"),
                           ("instr_per_weight_update_native", "update_native"),
                           ("instr_per_mac_c_loop", "fc_cloop"),
                           ("instr_per_weight_update_c_loop", "update_cloop")):
            out[key] = _round(per(raw[entry], macs), 2)
        out["instr_per_learn_step_native"] = round(per(nat["learn"], 1))
        out["instr_per_predict_step_native"] = round(per(nat["predict"], 1))
        hn = nat["hapt"]
        over_n = hn["overhead"] / hn["windows"]
        out["instr_per_hapt_window_native"] = round((hn["learnt"][0] / hn["learnt"][1]
                                                     - over_n) * ns)
        out["hapt_window_native_vs_viper"] = _ratio(out["instr_per_hapt_window"],
                                                    out["instr_per_hapt_window_native"])
        out["learn_step_native_vs_viper"] = _ratio(out["instr_per_learn_step"],
                                                   out["instr_per_learn_step_native"])
        for key, name in (("alloc_learn", "learn_step"), ("alloc_predict", "predict_step"),
                          ("alloc_hapt", "hapt_window")):
            b, k = nat[key]
            out["alloc_bytes_per_%s_native" % name] = None if b is None else b / k
        if (nat["digits_crc32"], nat["hapt_crc32"]) != (raw["digits_crc32"],
                                                        raw["hapt_crc32"]):
            raise BenchError("%s: the native kernels' weights differ from %s's after the "
                             "same steps: run ffkit parity" % (machine, raw["kernels"]))
    for key, name in (("alloc_learn", "learn_step"), ("alloc_predict", "predict_step"),
                      ("alloc_probe", "probe_step"), ("alloc_hapt", "hapt_window")):
        b, k = raw[key]
        out["alloc_bytes_per_" + name] = None if b is None else b / k
    out["instr_counts"] = {
        "method": "QEMU -icount shift=0 (1 ns of virtual time per instruction); "
                  "time.ticks_us deltas x instr_per_tick_us, minus a no-op twin's",
        "kernel_size": "%dx%d" % (QEMU_N, QEMU_N), "calls": counts,
        "digits_model": "models/digits.ffw, %d learn_one after %d, predict_one x %d"
                        % (counts["learn"], counts["learn_warm"], counts["predict"]),
        "hapt": "models/hapt.ffw ([adapt]: rehearsal), LiveLearner.feed of raw samples, "
                "subject %d's first session, windows %d-%d (%d learnt, %d unlabelled: "
                "features and prediction only)" % (
                    HAPT_SUBJECT, counts["hapt_warm"], counts["hapt_warm"] + counts["hapt"] - 1,
                    hp["learnt"][1], hp["other"][1]),
        "digits_crc32": "%08x" % raw["digits_crc32"], "hapt_crc32": "%08x" % raw["hapt_crc32"],
        "runs": len(runs)}
    out["instr_repeatable"] = all(r == raw for r in runs[1:]) if len(runs) > 1 else None
    clocks = []
    for mhz, name in STATED_CLOCKS[machine]:
        hz = mhz * 1e6
        c = {"mhz": mhz, "part": name,
             "learn_steps_per_s": round(hz / out["instr_per_learn_step"], 2),
             "predict_steps_per_s": round(hz / out["instr_per_predict_step"], 2),
             "ms_per_learn_step": round(1e3 * out["instr_per_learn_step"] / hz, 1)}
        if out["instr_per_hapt_window"]:
            c["hapt_windows_per_s"] = round(hz / out["instr_per_hapt_window"], 3)
            c["ms_per_hapt_window"] = round(1e3 * out["instr_per_hapt_window"] / hz, 1)
            # the share of the core a 50 Hz stream keeps busy (a window every 1.28 s)
            c["hapt_realtime_load"] = round(out["instr_per_hapt_window"] / (hz * HAPT_HOP_S), 3)
        if out.get("instr_per_hapt_window_tiny"):
            c["hapt_tiny_windows_per_s"] = round(hz / out["instr_per_hapt_window_tiny"], 3)
            c["hapt_tiny_realtime_load"] = round(out["instr_per_hapt_window_tiny"]
                                                 / (hz * HAPT_HOP_S), 3)
        clocks.append(c)
    out["at_clock"] = clocks
    out["clock_caveat"] = CYCLE_CAVEAT
    return out


# ---- emulated boards: the smallest heaps ---------------------------------------------------

HEAP_STREAM_LIMIT = 4          # windows per session in the stream probe (ffkit stream --limit)
HEAP_STREAM_SUBJECTS = (16, 17)
# (lo, hi) KB to bisect between: checked (lo fails, hi serves), widened when not so
QEMU_HEAP_BRACKET = {"firmware": (24, 96), "stream": (32, 128), "stream_tiny": (16, 48)}
# the model each stream probe streams: the main HAPT model, and (the Cortex-M0's, issue 16)
# the tiny one
STREAM_MODELS = {"stream": "hapt", "stream_tiny": "hapt-tiny"}


def _digits_samples(n, cfg, seed):
    """n random (features, label) pairs for cfg (as tests/test_server.py makes them)."""
    import random
    rnd = random.Random(seed)
    return [([rnd.randrange(cfg.in_max + 1) for _ in range(cfg.n_features)],
             rnd.randrange(cfg.n_classes)) for _ in range(n)]


class _ProbeFailed(Exception):
    """The board did not boot or serve the probe's requests in this heap."""


def _hello(vb, deadline_s=60.0):
    """A connected ffkit.board.client.Board once the board answers HELLO; _ProbeFailed as soon
    as its console shows that the firmware stopped (a traceback, the REPL) or QEMU
    exited, instead of waiting out every HELLO retry."""
    from ffkit.board.client import BoardTimeout, connect

    t_end = time.monotonic() + deadline_s
    while True:
        try:
            return connect(vb.port, timeout=20.0, retries=0, hello_timeout=1.0)
        except BoardTimeout:
            con = vb.console()
            if "Traceback" in con or ">>>" in con or not vb.running:
                raise _ProbeFailed(con.strip()[-300:] or "QEMU exited") from None
            if time.monotonic() > t_end:
                raise _ProbeFailed("no HELLO within %d s" % deadline_s) from None


def _probe_firmware(board):
    """What tests/test_server.py's small-heap test asks of the unix port: boot from
    model.ffw (the digits model), INFO, a 32 KB IMPORT, LEARN x 3, EXPORT (the host's
    bits), CHECKPOINT."""
    from ffrt import ffw_ram

    from ffkit import config

    digits = (config.models_dir() / "digits.ffw").read_bytes()
    info = board.info()
    if info.get("boot") != "model.ffw":
        raise _ProbeFailed("booted from %r, not model.ffw" % info.get("boot"))
    net = ffw_ram.load(digits)
    for x, y in _digits_samples(2, net.cfg, 3):
        net.learn_one(x, y)
    board.import_weights(bytes(ffw_ram.encode(net)))
    for x, y in _digits_samples(3, net.cfg, 4):
        board.learn(x, y)
        net.learn_one(x, y)
    if board.export() != bytes(ffw_ram.encode(net)):
        raise _ProbeFailed("the exported weights are not the host's")
    board.checkpoint()


def _probe_stream(board, rec, model="hapt"):
    """`ffkit stream` of HAPT (models/<model>.ffw and its [adapt]: the rehearsal buffer)
    for two subjects, HEAP_STREAM_LIMIT windows a session: bit-identical with the host."""
    from ffkit import config
    from ffkit.sessions import stream

    models = config.models_dir()
    w = (models / (model + ".ffw")).read_bytes()
    adapt = config.load(models / (model + ".toml")).adapt
    r = stream.run(board, w, adapt, HEAP_STREAM_SUBJECTS, limit=HEAP_STREAM_LIMIT, rec=rec,
                   parallel=False)
    if not r["bit_identical"]:
        raise _ProbeFailed("not bit-identical: %s" % (r["first_mismatch"],))


def _heap_probe(machine, heap_k, kind, mpy_dir, rec=None):
    """None when the machine's image, booted with a heap of heap_k KB (ffrt frozen, or
    the .mpy files of mpy_dir/ffrt in its folder, shadowing the frozen ones), serves
    the probe (kind: "firmware" or "stream") and prints nothing on its console; else why
    not (a short text: a MemoryError, a timeout)."""
    from ffkit import config
    from ffkit.board.qemu import QemuBoard

    model = STREAM_MODELS.get(kind, "digits") + ".ffw"
    with tempfile.TemporaryDirectory(prefix="fkb") as tmp:  # short: a board's paths
        d = os.path.join(tmp, "b")
        os.mkdir(d)
        shutil.copy(config.models_dir() / model, os.path.join(d, "model.ffw"))
        if mpy_dir is not None:
            shutil.copytree(os.path.join(mpy_dir, "ffrt"), os.path.join(d, "ffrt"))
        with QemuBoard(d, machine, heap="%dK" % heap_k) as vb:
            try:
                with _hello(vb) as board:
                    if kind == "firmware":
                        _probe_firmware(board)
                    else:
                        _probe_stream(board, rec, STREAM_MODELS[kind])
            except (_ProbeFailed, FFKitError, OSError) as e:
                return (str(e) + " " + vb.console().strip()[-200:]).strip()[:400]
            con = vb.console().strip()
            if con:
                return "console: " + con[-300:]
    return None


def min_heap_k(machine, kind, mpy_dir=None, rec=None, bracket=None, progress=None):
    """(smallest heap in KB that serves, why the next smaller does not, probes run): a
    bisection in 1 KB steps within the bracket, widened while its ends are wrong. A
    probe that fails other than by a MemoryError (a timeout) is run once more."""
    from ffkit.board.qemu import MACHINES

    top = MACHINES[machine][2] // 1024
    lo, hi = bracket or QEMU_HEAP_BRACKET[kind]
    hi = min(hi, top)
    probes = [0]

    def fails(k):
        probes[0] += 1
        why = _heap_probe(machine, k, kind, mpy_dir, rec)
        if why is not None and "MemoryError" not in why:  # a timeout on a busy host?
            probes[0] += 1
            why = _heap_probe(machine, k, kind, mpy_dir, rec)
        if progress:
            progress("  %s %s heap %d KB: %s" % (machine, kind, k, "fails" if why else "serves"))
        return why

    why = fails(hi)
    while why is not None:
        if hi >= top:
            raise BenchError("%s: the %s probe fails even with the largest heap (%d KB): %s"
                             % (machine, kind, top, why))
        lo, hi = hi, min(top, hi * 2)
        why = fails(hi)
    why = fails(lo)
    while why is None:
        if lo <= 1:
            return lo, None, probes[0]
        hi, lo = lo, max(1, lo // 2)
        why = fails(lo)
    while hi - lo > 1:  # fails at lo, serves at hi
        mid = (lo + hi) // 2
        w = fails(mid)
        if w is None:
            hi = mid
        else:
            lo, why = mid, w
    return hi, why, probes[0]


def qemu_heaps(machine, progress=None):
    """min_heap_kb_firmware and min_heap_kb_stream with ffrt frozen (the image as built)
    and as .mpy files in the board's filesystem (ffkit.board.builds for the machine's arch;
    without the viper modules where the image has no native emitter, as the frozen
    manifest leaves them out), each with the reason the next smaller heap fails."""
    from ffkit.data import hapt
    from ffkit.board.qemu import MACHINES

    _, _, _, native, arch = MACHINES[machine]
    rec = hapt.load()
    out = {}
    detail = {}
    with tempfile.TemporaryDirectory(prefix="ffkit-bench-mpy-") as mpy_dir:
        try:
            paths = builds.build_mpy(arch, mpy_dir)
        except builds.BuildError as e:
            raise BenchError(str(e)) from None
        if not native:
            for p in paths:
                if p.stem.endswith("_viper"):
                    p.unlink()
        for variant, where in (("", None), ("_mpy", mpy_dir)):
            # the tiny model (issue 16) on the Cortex-M0's image as built
            tiny = ("stream_tiny",) if machine in TINY_MACHINES and where is None else ()
            for kind in ("firmware", "stream") + tiny:
                t0 = time.monotonic()
                k, why, n = min_heap_k(machine, kind, where, rec, progress=progress)
                out["min_heap_kb_%s%s" % (kind, variant)] = k
                detail["%s%s" % (kind, variant)] = {
                    "fails_at_kb": k - 1, "because": why, "probes": n,
                    "seconds": round(time.monotonic() - t0, 1)}
    detail["firmware_probe"] = ("boot from model.ffw (models/digits.ffw), HELLO, INFO, a "
                                "32 KB IMPORT, LEARN x 3, EXPORT (host's bits), CHECKPOINT")
    detail["stream_probe"] = ("ffkit stream: models/hapt.ffw with its [adapt], subjects "
                              "%s, --limit %d, bit-identical" % (
                                  " and ".join(map(str, HEAP_STREAM_SUBJECTS)),
                                  HEAP_STREAM_LIMIT))
    if "stream_tiny" in detail:
        detail["stream_tiny_probe"] = detail["stream_probe"].replace("hapt.ffw",
                                                                     "hapt-tiny.ffw")
    out["min_heap"] = detail
    if machine == "cortex-m3":
        out["target_64k_stream_frozen"] = out["min_heap_kb_stream"] <= 64
    return out


def run_qemu_bench(machine, counts=None, heap=True, repeat=2, progress=None) -> dict:
    """`ffkit bench --machine`: qemu_counts, then (heap) qemu_heaps; with seconds."""
    from ffkit.board import qemu

    say = progress or (lambda msg: None)
    seconds = {}
    t0 = time.monotonic()
    say("building / finding the %s image" % machine)
    try:
        qemu.build(machine, progress=say)
    except qemu.QemuError as e:
        raise BenchError(str(e)) from None
    seconds["build"] = round(time.monotonic() - t0, 1)
    say("instruction counts and allocation on %s under -icount shift=0 (%d runs)"
        % (machine, repeat))
    t0 = time.monotonic()
    rep = qemu_counts(machine, counts, repeat=repeat)
    seconds["counts"] = round(time.monotonic() - t0, 1)
    if heap:
        say("smallest heaps on %s (bisection, 1 KB)" % machine)
        t0 = time.monotonic()
        rep.update(qemu_heaps(machine, progress=say))
        seconds["heap"] = round(time.monotonic() - t0, 1)
    else:
        rep["min_heap"] = "skipped (--no-heap)"
    rep["seconds"] = seconds
    return rep


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


# (key, unit, meaning) of `ffkit bench --machine`'s table; every key is in the JSON.
QEMU_FIGURES = (
    ("instr_per_mac_forward", "instr", "per multiply-accumulate, fc_relu 128x128 (the "
                                       "machine's kernels: viper, else pure)"),
    ("instr_per_weight_update", "instr", "per weight, update with every input and unit active"),
    ("instr_per_mac_forward_pure", "instr", "per MAC, the pure-Python fc_relu"),
    ("instr_per_weight_update_pure", "instr", "per weight, the pure-Python update"),
    ("instr_per_learn_step", "instr", "one learn_one of models/digits.ffw"),
    ("instr_per_predict_step", "instr", "one predict_one of models/digits.ffw (10 labels)"),
    ("instr_per_hapt_window", "instr", "HAPT window: 64 raw samples in, features, "
                                       "prediction, learning with 2 replays"),
    ("instr_per_hapt_window_unlabelled", "instr", "HAPT window without a label: "
                                                  "features and prediction"),
    ("instr_per_hapt_window_tiny", "instr", "a learnt HAPT window of models/hapt-tiny"),
    ("alloc_bytes_per_hapt_window_tiny", "B", "heap bytes allocated per hapt-tiny window"),
    ("instr_per_mac_native", "instr", "per MAC, the native (C) fc_relu for the arch"),
    ("instr_per_weight_update_native", "instr", "per weight, the native update"),
    ("instr_per_mac_c_loop", "instr", "per MAC, the plain C loop built alike (yardstick)"),
    ("instr_per_weight_update_c_loop", "instr", "per weight, the plain C update loop"),
    ("instr_per_learn_step_native", "instr", "one learn_one of models/digits.ffw, native"),
    ("instr_per_predict_step_native", "instr", "one predict_one, native"),
    ("instr_per_hapt_window_native", "instr", "a learnt HAPT window, native kernels"),
    ("learn_step_native_vs_viper", "x", "instructions per learn step, viper / native"),
    ("hapt_window_native_vs_viper", "x", "instructions per learnt HAPT window, viper / native"),
    ("alloc_bytes_per_learn_step", "B", "heap bytes allocated per learn_one, steady state"),
    ("alloc_bytes_per_predict_step", "B", "heap bytes allocated per predict_one"),
    ("alloc_bytes_per_hapt_window", "B", "heap bytes allocated per HAPT window"),
    ("alloc_bytes_per_learn_step_native", "B", "the same per learn_one, native kernels"),
    ("alloc_bytes_per_probe_step", "B", "control: a loop that makes one small list per step"),
    ("min_heap_kb_firmware", "KB", "smallest heap that boots and serves (ffrt frozen)"),
    ("min_heap_kb_stream", "KB", "smallest heap that streams HAPT with rehearsal (frozen)"),
    ("min_heap_kb_firmware_mpy", "KB", "the same, ffrt as .mpy in the filesystem"),
    ("min_heap_kb_stream_mpy", "KB", "the same, ffrt as .mpy in the filesystem"),
    ("min_heap_kb_stream_tiny", "KB", "smallest heap that streams models/hapt-tiny (frozen)"),
)


def format_qemu_table(rep: dict) -> str:
    """`ffkit bench --machine` as text: the figures, the rates at the stated clocks."""
    lines = ["ffkit bench --machine %s: %s, kernels %s, under QEMU -icount shift=0"
             % (rep["machine"], rep["platform"], rep["kernels"]), ""]
    lines.append("%-33s %14s %-5s  %s" % ("figure", "value", "unit", "meaning"))
    for key, unit, meaning in QEMU_FIGURES:
        lines.append("%-33s %14s %-5s  %s" % (key, _fmt(rep.get(key), unit), unit, meaning))
    lines.append("")
    for c in rep["at_clock"]:
        load = c.get("hapt_realtime_load")
        lines.append("at %s: %s learn steps/s (%s ms each), %s predict steps/s, %s HAPT "
                     "windows/s (%s ms each: %s of the core for a 50 Hz stream)" % (
                         c["part"], c["learn_steps_per_s"], c["ms_per_learn_step"],
                         c["predict_steps_per_s"], c.get("hapt_windows_per_s", "-"),
                         c.get("ms_per_hapt_window", "-"),
                         "-" if load is None else "%.0f%%" % (100 * load)))
        if "hapt_tiny_windows_per_s" in c:
            lines.append("  models/hapt-tiny: %s windows/s (%.0f%% of the core at 50 Hz)"
                         % (c["hapt_tiny_windows_per_s"], 100 * c["hapt_tiny_realtime_load"]))
    lines.append(rep["clock_caveat"])
    runs = rep["instr_counts"]["runs"]
    lines.append("the counts of %d fresh boots are identical: %s" % (
        runs, "yes" if rep["instr_repeatable"] else "NO")
        if runs > 1 else "one boot (--repeat 1): repetition not checked")
    heap = rep.get("min_heap")
    if isinstance(heap, dict):
        for k in ("firmware", "stream", "firmware_mpy", "stream_mpy", "stream_tiny"):
            if k not in heap:
                continue
            lines.append("heap %s: %d KB fails: %s" % (k, heap[k]["fails_at_kb"],
                                                       heap[k]["because"]))
        if "target_64k_stream_frozen" in rep:
            lines.append("firmware + HAPT streaming in a 64 KB heap, ffrt frozen: %s"
                         % ("holds" if rep["target_64k_stream_frozen"] else "does not hold"))
    else:
        lines.append("heap: %s" % heap)
    lines.append("seconds: %s" % ", ".join("%s %.1f" % kv for kv in rep["seconds"].items()))
    return "\n".join(lines)


# ---- CLI -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=None,
                        help="viper learn and predict steps timed (default %d; with "
                             "--machine: learn_one and predict_one steps counted, default %s)"
                             % (DEFAULT_STEPS, ", ".join("%d on %s" % (c["learn"], m)
                                                         for m, c in QEMU_COUNTS.items())))
    parser.add_argument("--pure-steps", type=int, default=DEFAULT_PURE_STEPS,
                        help="steps timed with the pure-Python kernels (default %(default)s)")
    parser.add_argument("--no-callgrind", action="store_true",
                        help="skip the valgrind instruction counts")
    parser.add_argument("--machine", choices=sorted(QEMU_CLOCKS),
                        help="measure on an emulated board instead (ffkit.board.qemu: the image "
                             "with ffrt frozen, QEMU -icount shift=0): instruction counts, "
                             "allocation per step, smallest heaps")
    parser.add_argument("--windows", type=int, default=None,
                        help="with --machine: HAPT windows counted (default %s)"
                             % ", ".join("%d on %s" % (c["hapt"], m)
                                         for m, c in QEMU_COUNTS.items()))
    parser.add_argument("--repeat", type=int, default=2,
                        help="with --machine: boots that count the same instructions, to "
                             "show that they repeat exactly (default %(default)s)")
    parser.add_argument("--no-heap", action="store_true",
                        help="with --machine: skip the smallest-heap bisections (minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args) -> int:
    """Exit code 0 when every benchmark ran, 1 when one failed, 2 on bad usage."""
    machine = getattr(args, "machine", None)
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    windows = getattr(args, "windows", None)
    repeat = getattr(args, "repeat", 2)
    if steps < 1 or args.pure_steps < 1 or (windows is not None and windows < 1) \
            or repeat < 1:
        print("ffkit: --steps, --pure-steps, --windows and --repeat must be at least 1",
              file=sys.stderr)
        return 2
    progress = None if args.json else (lambda m: print(m + " ...", file=sys.stderr))
    try:
        if machine is not None:
            counts = {}
            if args.steps is not None:
                counts.update(learn=args.steps, predict=args.steps)
            if windows is not None:
                counts["hapt"] = windows
            rep = run_qemu_bench(machine, counts, heap=not args.no_heap, repeat=repeat,
                                 progress=progress)
        else:
            rep = run_bench(steps, args.pure_steps, callgrind=not args.no_callgrind,
                            progress=progress)
    except FFKitError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep))
    else:
        print(format_qemu_table(rep) if machine is not None else format_table(rep))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ffkit bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
