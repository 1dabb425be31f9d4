"""The ``ffkit`` command: a table of verbs, each a parser builder and a handler.

    ffkit train --dataset digits --out digits.ffw
    ffkit eval --dataset digits --weights digits.ffw --json
    ffkit demo

Exit codes: 0 ok, 1 failed, 2 usage. Errors meant for the user (FFKitError, a refused
.ffw file, a file that cannot be opened) print ``ffkit: message`` on stderr, never a
traceback. ``--json`` prints one JSON object on stdout that mirrors the human text.

Adding a verb: write ``add_<verb>_parser(sub)`` (returns the subparser) and
``cmd_<verb>(args) -> int`` and list them in VERBS. Only the chosen verb's parser is built
in full, so a verb's module (``ffkit.parity``, ``ffkit.bench``, ...) is imported only when
that verb runs. Such a module exposes ``add_arguments(parser)`` and ``run_cli(args) -> int``.
"""

import argparse
from dataclasses import dataclass
import importlib
import json
import os
from pathlib import Path
import sys
import time

import ffkit
from ffkit import FFKitError, UsageError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


# ---- shared helpers -----------------------------------------------------------------------

def _kernels():
    from ffkit import kernels_np
    return kernels_np


def _ffw():
    from ffrt import ffw
    return ffw


def _add_data_args(p, default_help):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", metavar="NAME",
                   help="a built-in data set (digits); default: " + default_help)
    g.add_argument("--data", metavar="FILE.npz", type=Path,
                   help="integer X (n, features) and y (n,), optional X_test/y_test")


def _load_data(args, spec=None):
    from ffkit import datasets

    if args.data is not None:
        return datasets.load_npz(args.data)
    name = args.dataset or (spec.dataset if spec is not None else None)
    if name is None:
        raise UsageError("give --dataset NAME or --data FILE.npz")
    return datasets.load(name)


def _load_spec(args):
    """The model file: --config, else models/<dataset>.toml for a built-in data set."""
    from ffkit import config

    if args.config is not None:
        return config.load(args.config)
    if args.data is None and args.dataset is not None:
        path = config.default_model_file(args.dataset)
        if path is not None:
            return config.load(path)
        raise UsageError("no models/%s.toml found next to the package; give --config"
                         % args.dataset)
    if args.data is not None:
        raise UsageError("--data needs --config (the model file for that data)")
    path = config.default_model_file("digits")
    if path is None:
        raise UsageError("give --config and --dataset or --data")
    return config.load(path)


def write_atomic(path, data):
    """Write data to path via a temporary file in the same folder and os.replace."""
    path = Path(path)
    tmp = path.with_name(".%s.tmp%d" % (path.name, os.getpid()))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_weights(path, kernels=None):
    """An FFNet from a .ffw file; a refused file becomes an FFKitError naming the path."""
    ffw = _ffw()
    data = Path(path).read_bytes()
    try:
        return ffw.load(data, kernels=kernels if kernels is not None else _kernels())
    except ffw.FFWError as e:
        raise FFKitError("%s: refused: %s" % (path, e)) from None


def _shape(cfg):
    return "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers))


def _emit(args, result, lines):
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=False))
    else:
        print("\n".join(lines))


# ---- train -----------------------------------------------------------------------------------

def add_train_parser(sub):
    p = sub.add_parser("train", description=(
        "Train a model with FFNet.learn_one (numpy kernels, bit-identical to the board) "
        "and write its .ffw file."))
    _add_data_args(p, "the config's [data] dataset")
    p.add_argument("--config", metavar="TOML", type=Path,
                   help="model file (default: models/<dataset>.toml)")
    p.add_argument("--out", metavar="W.ffw", type=Path, required=True,
                   help="weight file to write (atomically)")
    p.add_argument("--epochs", type=int, help="override the config's [train] epochs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_train(args):
    from ffrt.net import FFNet

    from ffkit.evaluate import accuracy_goodness
    from ffkit.train import train

    spec = _load_spec(args)
    data = _load_data(args, spec)
    cfg = spec.model
    data.check_model(cfg)
    epochs = spec.epochs if args.epochs is None else args.epochs
    if epochs < 0:
        raise UsageError("--epochs must be >= 0")
    t0 = time.perf_counter()
    net = FFNet(cfg, kernels=_kernels())
    res = train(net, data.X_train, data.y_train, epochs=epochs,
                shuffle_seed=spec.shuffle_seed, lr_shift_schedule=spec.lr_shift_schedule,
                progress=not args.no_progress)
    acc = accuracy_goodness(net, data.X_train, data.y_train)
    ffw = _ffw()
    blob = bytes(ffw.encode(net))
    write_atomic(args.out, blob)
    seconds = time.perf_counter() - t0
    crc = ffw.weights_crc32(net)
    result = {
        "dataset": data.name,
        "split": data.split,
        "n_train": int(len(data.y_train)),
        "config": spec.source,
        "shape": _shape(cfg),
        "epochs": epochs,
        "shuffle_seed": spec.shuffle_seed,
        "lr_shift_per_epoch": list(res.lr_shifts),
        "steps": net.step,
        "train_accuracy": acc,
        "predict": "goodness",
        "seconds": round(seconds, 3),
        "out": str(args.out),
        "file_bytes": len(blob),
        "weights_crc32": "%08x" % crc,
    }
    shifts = ", ".join(str(s) for s in res.lr_shifts) or "-"
    _emit(args, result, [
        "dataset         %s (%s), %d training samples" % (data.name, data.split,
                                                           result["n_train"]),
        "model           %s from %s" % (result["shape"], spec.source),
        "epochs          %d (shuffle_seed %d; lr_shift per epoch: %s)"
        % (epochs, spec.shuffle_seed, shifts),
        "train accuracy  %.4f (by goodness, on the training split)" % acc,
        "time            %.1f s" % seconds,
        "wrote           %s (%d bytes, weights crc32 %08x)" % (args.out, len(blob), crc),
        "next            ffkit eval --weights %s  (held-out accuracy)" % args.out,
    ])
    return EXIT_OK


# ---- eval ------------------------------------------------------------------------------------

def add_eval_parser(sub):
    p = sub.add_parser("eval", description=(
        "Accuracy by goodness (FF's own prediction) on the held-out split, the linear head's, "
        "and the head of an untrained net of the same Config (the control: head accuracy "
        "alone is no evidence that FF learned)."))
    _add_data_args(p, "digits")
    p.add_argument("--weights", metavar="W.ffw", type=Path, required=True,
                   help="the model (its Config comes from the file)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-control", action="store_true", help="skip the untrained-net control")
    p.add_argument("--control-epochs", type=int, default=10,
                   help="epochs the control's head trains (default %(default)s, shuffle_seed 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_eval(args):
    from ffkit.evaluate import report

    net = load_weights(args.weights)
    if args.data is None and args.dataset is None:
        args.dataset = "digits"
    data = _load_data(args)
    data.check_model(net.cfg)
    if args.control_epochs < 0:
        raise UsageError("--control-epochs must be >= 0")
    rep = report(net, data, control_epochs=args.control_epochs, control_shuffle_seed=0,
                 control=not args.no_control, kernels=_kernels(),
                 progress=not args.no_progress)
    rep["weights"] = str(args.weights)
    rep["shape"] = _shape(net.cfg)
    ctrl = rep["accuracy_head_untrained_control"]
    _emit(args, rep, [
        "%s, held-out test split (%s), %d samples, model %s"
        % (data.name, data.split, rep["n_test"], rep["shape"]),
        "accuracy (by goodness, FF)            %.4f" % rep["accuracy"],
        "accuracy (linear head)                %.4f" % rep["accuracy_head"],
        ("accuracy (head on an untrained net)   %.4f  <- control: its head alone trained, "
         "%d epoch(s)" % (ctrl, args.control_epochs)) if ctrl is not None else
        "accuracy (head on an untrained net)   skipped (--no-control)",
    ])
    return EXIT_OK


# ---- demo ------------------------------------------------------------------------------------

def add_demo_parser(sub):
    p = sub.add_parser("demo", description=(
        "Loads models/digits.ffw if present, else trains a digits model briefly; then "
        "evaluates it and explains a few predictions."))
    p.add_argument("--epochs", type=int, default=3,
                   help="epochs when training (default %(default)s)")
    p.add_argument("--retrain", action="store_true", help="train even if models/digits.ffw exists")
    p.add_argument("--samples", type=int, default=3, help="predictions to explain")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


_SHADES = " .:-=+*#%@"


def _digit_art(row):
    """An 8x8 digit (values 0..16) as text."""
    out = []
    for r in range(8):
        out.append("".join(_SHADES[min(9, v * 10 // 17)] * 2 for v in row[8 * r:8 * r + 8]))
    return out


def cmd_demo(args):
    from ffrt.net import FFNet

    from ffkit import config, datasets
    from ffkit.datasets import as_labels, as_rows
    from ffkit.evaluate import report
    from ffkit.train import train

    data = datasets.load("digits")
    saved = config.models_dir() / "digits.ffw"
    spec_path = config.default_model_file("digits")
    if saved.is_file() and not args.retrain:
        net = load_weights(saved)
        print("model     %s (%s)" % (saved, _shape(net.cfg)))
    else:
        if spec_path is None:
            raise FFKitError("models/digits.toml not found next to the package")
        spec = config.load(spec_path)
        net = FFNet(spec.model, kernels=_kernels())
        print("model     %s from %s; training %d epochs on %d digits ..."
              % (_shape(net.cfg), spec_path, args.epochs, len(data.y_train)))
        res = train(net, data.X_train, data.y_train, epochs=args.epochs,
                    shuffle_seed=spec.shuffle_seed, lr_shift_schedule=spec.lr_shift_schedule,
                    progress=not args.no_progress)
        print("trained   %d steps in %.1f s (integer FF rule, numpy kernels)"
              % (res.steps, res.seconds))
    rep = report(net, data, control_epochs=max(1, args.epochs), kernels=_kernels())
    print("held out  %d digits (%s)" % (rep["n_test"], data.split))
    print("  accuracy by goodness (FF)          %.4f" % rep["accuracy"])
    print("  accuracy of the linear head        %.4f" % rep["accuracy_head"])
    print("  head on an untrained net (control) %.4f" % rep["accuracy_head_untrained_control"])
    print()
    rows, labels = as_rows(data.X_test), as_labels(data.y_test)
    for k in range(min(args.samples, len(rows))):
        x, t = rows[k], labels[k]
        g = list(net.goodness_per_label(x))
        order = sorted(range(len(g)), key=lambda c: -g[c])
        pred = order[0]
        art = _digit_art(x)
        lines = ["test digit %d: true label %d, predicted %d%s"
                 % (k, t, pred, "" if pred == t else "  (wrong)"),
                 "goodness with each label overlaid (the most wins):"]
        top = max(g) or 1
        for c in order[:5]:
            lines.append("  %d  %8d %s" % (c, g[c], "#" * max(1, 20 * g[c] // top)))
        lines.append("  linear head says %d" % net.predict_head(x))
        for i in range(max(len(art), len(lines))):
            left = art[i] if i < len(art) else " " * 16
            right = lines[i] if i < len(lines) else ""
            print("  %s   %s" % (left, right))
        print()
    return EXIT_OK


# ---- verbs in other modules (imported only when chosen) -----------------------------------

def _delegate(verb):
    """The module ffkit.<verb>; a clear error if this build does not have it."""
    name = "ffkit." + verb
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise FFKitError("'ffkit %s' is not available in this build (no module %s)"
                         % (verb, name)) from None


def _add_delegated_parser(sub, verb):
    mod = _delegate(verb)
    doc = (mod.__doc__ or "").strip().split("\n\n")[0]
    p = sub.add_parser(verb, description=doc or None)
    mod.add_arguments(p)
    return p


def add_parity_parser(sub):
    return _add_delegated_parser(sub, "parity")


def cmd_parity(args):
    return _delegate("parity").run_cli(args)


def add_bench_parser(sub):
    return _add_delegated_parser(sub, "bench")


def cmd_bench(args):
    return _delegate("bench").run_cli(args)


# ---- the table and main ---------------------------------------------------------------------

@dataclass(frozen=True)
class Verb:
    name: str
    help: str            # shown in `ffkit --help`, without building the verb's parser
    add_parser: object   # add_<verb>_parser(sub) -> argparse.ArgumentParser
    run: object          # cmd_<verb>(args) -> int


VERBS = (
    Verb("train", "bootstrap a model on the host (integer FF rule) and write its .ffw",
         add_train_parser, cmd_train),
    Verb("eval", "held-out accuracy by goodness, the head's, and the untrained control",
         add_eval_parser, cmd_eval),
    Verb("demo", "host-only digits demo: train or load, evaluate, explain predictions",
         add_demo_parser, cmd_demo),
    Verb("parity", "hold every runner (CPython, numpy, MicroPython) bit-identical",
         add_parity_parser, cmd_parity),
    Verb("bench", "speed and memory of the engine on each runner",
         add_bench_parser, cmd_bench),
)


def _chosen_verb(argv):
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(argv=()):
    """The parser; only the verb named in argv gets its full subparser (lazy imports)."""
    parser = argparse.ArgumentParser(
        prog="ffkit", description="Host toolkit for ffrt, the integer Forward-Forward runtime.")
    parser.add_argument("--version", action="version", version="ffkit " + ffkit.__version__)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    chosen = _chosen_verb(argv)
    for v in VERBS:
        if v.name == chosen:
            p = v.add_parser(sub)
        else:
            p = sub.add_parser(v.name, help=v.help)
        p.set_defaults(_run=v.run, _parser=p)
    return parser


def _user_errors():
    errors = (FFKitError, OSError)
    try:
        from ffrt import ffw
    except ImportError:
        return errors
    return errors + (ffw.FFWError,)


def main(argv=None):
    """Entry point of the ``ffkit`` console script; returns (and exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv)
    except FFKitError as e:  # a delegated verb's module is missing
        print("ffkit: %s" % e, file=sys.stderr)
        return EXIT_FAIL
    args = parser.parse_args(argv)  # usage errors: argparse prints them and exits 2
    try:
        code = args._run(args)
    except UsageError as e:
        args._parser.print_usage(sys.stderr)
        print("ffkit: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except _user_errors() as e:
        print("ffkit: %s" % _describe(e), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("ffkit: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK if code is None else int(code)


def _describe(e):
    if isinstance(e, OSError) and e.filename is not None:
        return "%s: %s" % (e.filename, e.strerror or e)
    return str(e)


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
