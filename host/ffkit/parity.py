"""Parity: one seeded learning run in every runner must give the same bits in all of them.

The runners are the CPython reference kernels, the numpy kernels, the C kernels (where a C
compiler builds ffkit.twins.kernels_c), the MicroPython unix port with the pure-Python kernels
and with the viper kernels (x86-64: 63-bit small ints, 64-bit viper words) and, where
QEMU and the ARM toolchain are installed (`ffkit.board.qemu.available`), MicroPython on the
emulated microcontrollers with ffrt frozen into the image: ``qemu-cortex-m3-viper``
(Thumb-2 viper code, 32-bit words), ``qemu-cortex-m3-pure`` and ``qemu-cortex-m0-pure``
(31-bit small ints, Thumb-1). Each runner executes the very
same driver source (`DRIVER`, run with ``exec`` in CPython and as a script in MicroPython),
reads the same integer samples from one binary file, learns ``steps`` samples one at a time
and then predicts held-out samples with `predict_one` (goodness per label) and with
`predict_head` (the linear head). Each reports

- ``weights_crc32``: `ffrt.ffw_ram.weights_crc32` (the .ffw tensor section: every layer's
  weights and per-unit PRNG states, and the head);
- ``ffw_crc32``: the CRC that ends `ffrt.ffw_ram.encode`'s file, which also covers the step
  counter, the net and head PRNGs and the model signature;
- ``state_crc32`` and ``parts_crc32``: the driver's own CRC32 of the whole state and of
  each part (``layer 1 weights``, ``head prng``, ``step``, ...), which name what differs;
- a state digest every ``digest_every`` steps, which dates where a runner went astray;
- its predictions.

    $ ffkit parity --steps 500 --json
    {"runners": ["cpython-reference", ...], "steps": 500, "identical": true, ...}

Data: scikit-learn's digits (integers 0..16, 64 features, 10 classes), shuffled once with a
fixed seed; the last ``n_test`` samples of that order are held out and training walks the
others in order (cycling when ``steps`` exceeds them).

The default model is the digits model (models/digits.toml) with its layers narrowed to 32
(74-32-32) so that the pure-Python MicroPython runner stays quick; everything else, hardest
wrong-label negatives included, is the digits model's (see `default_config`). Each runner
also counts, per layer, the learn steps in which that layer had any activity
(``active_steps``): parity on a net whose layers are silent would not exercise the update
kernels.

When runners disagree, the runners outside the majority are named with the parts of the
state that differ (``layer 1 weights``, ``head prng``, ...), the first digest step at
which they differ, and the first differing prediction.

>>> rep = run_parity(steps=20, n_test=10, runners=[CPythonRunner("a"), CPythonRunner("b")])
>>> rep["identical"], rep["runners"]
(True, ['a', 'b'])

Size (over 500 lines): the runner table, the data file every runner reads, and the
comparison and its report: each runner is a few lines, kept beside the comparison it
feeds.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from collections import Counter

from ffrt import kernels_ref
from ffrt.model import NEG_MODES, Config

from ffkit import FFKitError

from ffkit.board import mpy

__all__ = [
    "DRIVER",
    "CPythonRunner",
    "MicroPythonRunner",
    "ParityError",
    "add_arguments",
    "compare",
    "default_config",
    "default_runners",
    "digits_split",
    "format_report",
    "run_cli",
    "run_parity",
    "write_samples",
]

DATA_SEED = 20240607   # order of the digits samples
N_TEST = 100
DEFAULT_STEPS = 500
DIGEST_EVERY = 50
_MAGIC = b"FFPD"
_HEADER = "<4sHHH"     # magic, n_features, n_train, n_test; then records of features + label


class ParityError(FFKitError):
    """A parity run could not be set up or a runner failed (not a disagreement)."""


# ---- the driver, shared by every runner ----------------------------------------------------

# MicroPython and CPython alike: firmware/tools/parity_driver.py (its docstring says how each
# runner runs it and how the parameters arrive). DRIVER is its text.
DRIVER = mpy.script("parity_driver.py")


def _driver_namespace() -> dict:
    ns = {"__name__": "ffkit_parity_driver"}
    exec(compile(DRIVER, str(mpy.tools_dir() / "parity_driver.py"), "exec"), ns)
    return ns


# ---- data ------------------------------------------------------------------------------------


def digits_split(n_train: int, n_test: int = N_TEST, seed: int = DATA_SEED):
    """Integer digits samples: (X_train, y_train, X_test, y_test) as numpy uint8 arrays.

    One fixed shuffle of all 1,797 samples; the test samples are its last n_test, the
    training samples its first n_train (at most 1,797 - n_test).
    """
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.data.astype(np.uint8)  # integers 0..16 stored as floats
    if not np.array_equal(X, d.data):
        raise ParityError("digits data are not integers")
    y = d.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(y))
    if not 1 <= n_test < len(y):
        raise ParityError("n_test must be in 1..%d" % (len(y) - 1))
    n_train = min(n_train, len(y) - n_test)
    tr, te = order[:n_train], order[len(y) - n_test:]
    return X[tr], y[tr], X[te], y[te]


def write_samples(path, X_train, y_train, X_test, y_test) -> None:
    """Write the binary sample file that `DRIVER.read_samples` reads."""
    nf = X_train.shape[1]
    with open(path, "wb") as f:
        f.write(struct.pack(_HEADER, _MAGIC, nf, len(y_train), len(y_test)))
        for X, y in ((X_train, y_train), (X_test, y_test)):
            for row, label in zip(X, y):
                f.write(bytes(int(v) for v in row))
                f.write(bytes([int(label)]))


# ---- configs -------------------------------------------------------------------------------


PARITY_WIDTH = 32


def default_config() -> Config:
    """The digits model (models/digits.toml, else Config() defaults), layers narrowed to 32.

    Narrow layers keep the pure-Python MicroPython runner quick; every other field (hardest
    wrong-label negatives included) is the digits model's, so parity follows its tuning,
    except that it learns at the bootstrap schedule's first (largest) step, so that 500
    steps move many weights rather than a few.
    """
    from ffkit import config

    path = config.default_model_file("digits")
    spec = config.load(path) if path is not None else None
    cfg = spec.model if spec is not None else Config()
    kw = cfg.as_dict()
    kw["layers"] = tuple(min(n, PARITY_WIDTH) for n in cfg.layers)
    if spec is not None and spec.lr_shift_schedule:
        kw["lr_shift"] = spec.lr_shift_schedule[0][1]
    return Config(**kw)


def _check_digits_config(cfg: Config) -> None:
    if (cfg.n_features, cfg.n_classes) != (64, 10) or cfg.in_max < 16:
        raise ParityError(
            "parity runs on digits (64 features 0..16, 10 classes); the config has "
            "n_features=%d, n_classes=%d, in_max=%d" % (cfg.n_features, cfg.n_classes, cfg.in_max))


def _cfg_dict(cfg: Config) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.as_dict().items()}


# ---- runners -------------------------------------------------------------------------------


class CPythonRunner:
    """Runs the driver in this process with a kernels module (default: the reference).

    ``hook`` (optional) is called with the net after the last learn step, before the final
    state is digested and the predictions are made: negative controls use it to perturb one
    runner (flip a weight byte) and check that parity names it.
    """

    def __init__(self, name: str, kernels=kernels_ref, hook=None):
        self.name = name
        self.kernels = kernels
        self.hook = hook

    def run(self, cfg: Config, data_path: str, steps: int, every: int) -> dict:
        drive = _driver_namespace()["drive"]
        return drive(self.kernels, _cfg_dict(cfg), data_path, steps, every, self.hook)


class MicroPythonRunner:
    """Runs the driver in the MicroPython unix port with ``import <kernels> as K``."""

    def __init__(self, name: str, kernels: str, heapsize=None, timeout: float = 600,
                 path=None):
        self.name = name
        self.kernels = kernels
        self.heapsize = heapsize
        self.timeout = timeout
        self.path = path  # MICROPYPATH in place of firmware/ (e.g. one with native kernels)

    def args(self, cfg: Config, data_path: str, steps: int, every: int) -> str:
        """The driver's parameters, as the JSON text of the file it reads."""
        return json.dumps({"kernels": self.kernels, "cfg": _cfg_dict(cfg),
                           "path": str(data_path), "steps": steps, "every": every})

    def run(self, cfg: Config, data_path: str, steps: int, every: int) -> dict:
        try:
            with tempfile.TemporaryDirectory(prefix="ffkit-parity-") as tmp:
                args = os.path.join(tmp, "args.json")
                with open(args, "w") as f:
                    f.write(self.args(cfg, data_path, steps, every))
                env = None if self.path is None else {"MICROPYPATH": str(self.path)}
                return mpy.run_json(DRIVER, args=[args], heapsize=self.heapsize,
                                    timeout=self.timeout, env_extra=env)
        except (mpy.MicroPythonError, ValueError, FileNotFoundError) as e:
            raise ParityError("runner %s failed: %s" % (self.name, e)) from None


class QemuRunner:
    """The driver on an emulated microcontroller (ffkit.board.qemu): MicroPython on a Cortex-M,
    ffrt frozen into its image, the samples copied onto its filesystem."""

    def __init__(self, name: str, machine: str, kernels: str, heap=None, timeout=3600,
                 flashed=False):
        self.name = name
        self.machine = machine
        self.kernels = kernels
        self.heap = heap
        self.timeout = timeout
        # flashed: ffrt as `ffkit flash` puts it on the board (.mpy files, with the native
        # kernels) in place of the frozen copy, which has no native module
        self.flashed = flashed

    def run(self, cfg: Config, data_path: str, steps: int, every: int) -> dict:
        from ffkit.board import qemu

        args = {"kernels": self.kernels, "cfg": _cfg_dict(cfg), "path": "samples.bin",
                "steps": steps, "every": every}
        files = {"samples.bin": open(data_path, "rb").read(),
                 "args.json": json.dumps(args).encode()}
        try:
            if self.flashed:
                from ffkit.board.builds import bundle_files
                files.update(bundle_files(self.machine))
            return qemu.run_json(self.machine, DRIVER, files=files, heap=self.heap,
                                 timeout=self.timeout)
        except FFKitError as e:
            raise ParityError("runner %s failed: %s" % (self.name, e)) from None


def qemu_runners() -> list:
    """The emulated microcontrollers' runners, when QEMU and the toolchain are here."""
    from ffkit.board import qemu

    if not qemu.available():
        return []
    from ffkit.board import native

    runners = [QemuRunner("qemu-cortex-m3-viper", "cortex-m3", "ffrt.kernels_viper"),
               QemuRunner("qemu-cortex-m3-pure", "cortex-m3", "ffrt.kernels_ref"),
               QemuRunner("qemu-cortex-m0-pure", "cortex-m0", "ffrt.kernels_ref")]
    if native.available("armv7m")[0]:
        runners.insert(1, QemuRunner("qemu-cortex-m3-native", "cortex-m3",
                                     "ffrt.kernels_native", flashed=True))
    if native.available("armv7emsp")[0]:  # the DSP extension's dot product (SMLAD)
        runners.insert(-1, QemuRunner("qemu-cortex-m4-native", "cortex-m4",
                                      "ffrt.kernels_native", flashed=True))
    return runners


def native_runner():
    """The native kernels (C, ffrt/kernels_native.mpy built for the unix port's arch) in
    the unix port, or None where they do not build here (no compiler or MicroPython tree:
    ffkit.board.native says which)."""
    from ffkit.board import builds, native

    try:
        path = native.native_firmware_dir(builds.port_arch())
    except (native.NativeError, builds.BuildError, mpy.MicroPythonError):
        return None
    return MicroPythonRunner("micropython-native", "ffrt.kernels_native", path=path)


def default_runners(qemu: bool = True) -> list:
    """The reference, numpy and (where a C compiler builds them) C twins in CPython, the
    pure, viper and (where they build) native twins in the MicroPython unix port and,
    with qemu (when QEMU is here), the emulated microcontrollers' runners
    (`qemu_runners`)."""
    from ffkit.twins import kernels_c, kernels_np

    host = [CPythonRunner("cpython-reference", kernels_ref),
            CPythonRunner("cpython-numpy", kernels_np)]
    if kernels_c.available():
        host.append(CPythonRunner("cpython-c", kernels_c.load()))
    return host + [
        MicroPythonRunner("micropython-pure", "ffrt.kernels_ref"),
        MicroPythonRunner("micropython-viper", "ffrt.kernels_viper"),
    ] + [r for r in (native_runner(),) if r is not None] + (qemu_runners() if qemu else [])


# ---- comparing -----------------------------------------------------------------------------


def _hex(v: int) -> str:
    return "0x%08x" % v


def _first_diff(a, b):
    for i, (u, v) in enumerate(zip(a, b)):
        if u != v:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare(results: dict) -> tuple[str, list[dict]]:
    """(name of the baseline runner, list of differences).

    The baseline is the first runner of the largest group that agrees on the whole state
    and every prediction (ties: the earliest group), so the odd runner out is the one named.
    """
    def key(r):
        return (r["weights_crc32"], r["ffw_crc32"], r["state_crc32"],
                tuple(r["predict_one"]), tuple(r["predict_head"]))

    counts = Counter(key(r) for r in results.values())
    best = max(counts.values())
    base = next(n for n, r in results.items() if counts[key(r)] == best)
    b = results[base]
    diffs = []
    for name, r in results.items():
        if key(r) == key(b):
            continue
        d = {"runner": name, "versus": base, "parts": [], "first_digest_step": None,
             "last_agreeing_step": None, "predictions": {},
             "crcs": [k for k in ("weights_crc32", "ffw_crc32", "state_crc32") if r[k] != b[k]]}
        d["parts"] = [p for p in b["state"] if r["state"].get(p) != b["state"][p]]
        i = _first_diff([c for _, c in r["digests"]], [c for _, c in b["digests"]])
        if i is not None:
            d["first_digest_step"] = b["digests"][min(i, len(b["digests"]) - 1)][0]
            d["last_agreeing_step"] = b["digests"][i - 1][0] if i else None
        for kind in ("predict_one", "predict_head"):
            j = _first_diff(r[kind], b[kind])
            if j is not None:
                n = sum(u != v for u, v in zip(r[kind], b[kind]))
                d["predictions"][kind] = {"count": n, "first_index": j}
        diffs.append(d)
    return base, diffs


def _describe(d: dict) -> str:
    bits = []
    if d["crcs"] and not d["parts"]:  # e.g. the .ffw header (signature) alone
        bits.append("%s differ%s" % (" and ".join(d["crcs"]), "" if len(d["crcs"]) > 1 else "s"))
    if d["parts"]:
        bits.append("state differs in " + ", ".join(d["parts"]))
        if d["first_digest_step"] is not None:
            after = d["last_agreeing_step"]
            bits.append("first at the digest of step %d%s" % (
                d["first_digest_step"],
                "" if after is None else " (agreed at step %d)" % after))
    for kind, p in d["predictions"].items():
        bits.append("%s differs on %d held-out samples (first: #%d)" % (
            kind, p["count"], p["first_index"]))
    return "%s differs from %s: %s" % (d["runner"], d["versus"], "; ".join(bits))


# ---- the run -------------------------------------------------------------------------------


def run_parity(cfg: Config | None = None, steps: int = DEFAULT_STEPS, n_test: int = N_TEST,
               runners=None, digest_every: int = DIGEST_EVERY, progress=None,
               jobs: int = 1) -> dict:
    """Run every runner on the same data and return the report dict (see module doc).

    jobs > 1 runs that many runners at once (threads: the MicroPython and QEMU runners
    are processes of their own); the report is the same, in the runners' order.
    """
    cfg = cfg if cfg is not None else default_config()
    _check_digits_config(cfg)
    if steps < 1:
        raise ParityError("steps must be at least 1")
    runners = runners if runners is not None else default_runners()
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise ParityError("runner names must be unique: %s" % names)
    Xtr, ytr, Xte, yte = digits_split(steps, n_test)
    t_all = time.monotonic()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ffkit-parity-") as tmp:
        path = os.path.join(tmp, "samples.bin")
        write_samples(path, Xtr, ytr, Xte, yte)

        def one(r):
            if progress:
                progress(r.name)
            t0 = time.monotonic()
            res = r.run(cfg, path, steps, digest_every)
            res["seconds"] = round(time.monotonic() - t0, 3)
            return res

        if jobs > 1 and len(runners) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                done = list(pool.map(one, runners))
        else:
            done = [one(r) for r in runners]
        for r, res in zip(runners, done):
            results[r.name] = res
    base, diffs = compare(results)
    labels = [int(v) for v in yte]
    per_runner = {}
    for name, res in results.items():
        per_runner[name] = {
            "weights_crc32": _hex(res["weights_crc32"]),
            "ffw_crc32": _hex(res["ffw_crc32"]),
            "state_crc32": _hex(res["state_crc32"]),
            "parts_crc32": {k: _hex(v) for k, v in res["state"].items()},
            "step": res["step"],
            "active_steps": res["active_steps"],
            "digests": [[s, _hex(c)] for s, c in res["digests"]],
            "predict_one": res["predict_one"],
            "predict_head": res["predict_head"],
            "accuracy_predict_one": _acc(res["predict_one"], labels),
            "accuracy_predict_head": _acc(res["predict_head"], labels),
            "learn_ms_per_step": round(res["learn_us"] / 1000 / steps, 3),
            "predict_ms_per_sample": round(res["predict_us"] / 1000 / (2 * len(labels)), 3),
            "seconds": res["seconds"],
        }
    b = results[base]
    same_pred = all(r["predict_one"] == b["predict_one"] and r["predict_head"] == b["predict_head"]
                    for r in results.values())
    same_state = all(r[k] == b[k] for r in results.values()
                     for k in ("weights_crc32", "ffw_crc32", "state_crc32"))
    return {
        "runners": names,
        "steps": steps,
        "n_test": len(labels),
        "model": "-".join(str(n) for n in (cfg.n_in,) + cfg.layers),
        "neg_mode": NEG_MODES[cfg.neg_mode],
        "identical": same_state and same_pred and not diffs,
        "weights_crc32": _hex(b["weights_crc32"]),
        "ffw_crc32": _hex(b["ffw_crc32"]),
        "predictions_identical": same_pred,
        "baseline": base,
        "active_steps": b["active_steps"],
        "differences": diffs,
        "messages": [_describe(d) for d in diffs],
        "labels": labels,
        "per_runner": per_runner,
        "seconds": round(time.monotonic() - t_all, 3),
    }


def _acc(pred, labels) -> float:
    return round(sum(p == y for p, y in zip(pred, labels)) / len(labels), 4)


def format_report(rep: dict) -> str:
    lines = ["ffkit parity: %d learn steps, then predict_one and predict_head on %d held-out "
             "digits; model %s, %s negatives" % (rep["steps"], rep["n_test"], rep["model"],
                                                 rep["neg_mode"]),
             "",
             "%-20s %-12s %8s %9s %9s %8s" % ("runner", "weights CRC", "acc one", "acc head",
                                               "ms/learn", "time s")]
    for name in rep["runners"]:
        r = rep["per_runner"][name]
        lines.append("%-20s %-12s %8.3f %9.3f %9.3f %8.2f" % (
            name, r["weights_crc32"], r["accuracy_predict_one"], r["accuracy_predict_head"],
            r["learn_ms_per_step"], r["seconds"]))
    lines.append("")
    lines.append("layers with activity to learn from, per layer: %s of %d steps (%s)" % (
        ", ".join(str(n) for n in rep["active_steps"]), rep["steps"], rep["baseline"]))
    if rep["identical"]:
        lines.append("identical: weights, PRNG states, step counter and all %d predictions agree "
                     "in all %d runners (CRC32 %s)" % (2 * rep["n_test"], len(rep["runners"]),
                                                      rep["weights_crc32"]))
    else:
        lines.append("NOT identical:")
        lines.extend("  " + m for m in rep["messages"])
    lines.append("total %.1f s" % rep["seconds"])
    return "\n".join(lines)


# ---- CLI -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="learn steps per runner (default %(default)s)")
    parser.add_argument("--n-test", type=int, default=N_TEST,
                        help="held-out samples predicted (default %(default)s)")
    parser.add_argument("--config", metavar="TOML",
                        help="model file, see ffkit.config (default: models/digits.toml "
                             "with layers narrowed to %d)" % PARITY_WIDTH)
    parser.add_argument("--recurrent", action="store_true",
                        help="the model made recurrent (each layer but the last also reads "
                             "the layer above's previous activities; advance after every "
                             "sample)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runners run at once (default %(default)s; the emulated "
                             "boards' pure runners take most of the time)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args) -> int:
    """Exit code 0 when every runner agrees, 1 when one differs or fails, 2 on bad usage."""
    from ffkit import config

    try:
        cfg = config.load(args.config).model if args.config else None
        if getattr(args, "recurrent", False):
            cfg = Config(**dict((cfg or default_config()).as_dict(), recurrent=1))
        if args.steps < 1 or args.n_test < 1:
            raise ParityError("--steps and --n-test must be at least 1")
        if getattr(args, "jobs", 1) < 1:
            raise ParityError("--jobs must be at least 1")
    except (FFKitError, OSError) as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 2
    progress = None if args.json else (lambda n: print("running %s ..." % n, file=sys.stderr))
    try:
        rep = run_parity(cfg, steps=args.steps, n_test=args.n_test, progress=progress,
                         jobs=getattr(args, "jobs", 1))
    except FFKitError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep))
    else:
        print(format_report(rep))
    if not rep["identical"]:
        for m in rep["messages"]:
            print("ffkit: parity: " + m, file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ffkit parity", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
