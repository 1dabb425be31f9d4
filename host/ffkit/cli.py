"""The ``ffkit`` command: a table of verbs, each a parser builder and a handler.

    ffkit train --dataset digits --out digits.ffw
    ffkit eval --dataset digits --weights digits.ffw --json
    ffkit demo                          # flash a virtual board, learn, compare with the host
    ffkit flash --board rp2 --port /dev/ttyACM0 --model models/digits.ffw
    ffkit sim --dir board1 &            # a virtual board; then, as with any board:
    ffkit info
    ffkit export -o b.ffw
    ffkit import b.ffw
    ffkit monitor
    ffkit tflite export --weights digits.ffw -o digits.tflite

Exit codes: 0 ok, 1 failed, 2 usage. Errors meant for the user (FFKitError, a refused
.ffw file, a file that cannot be opened) print ``ffkit: message`` on stderr, never a
traceback. ``--json`` prints one JSON object on stdout that mirrors the human text.

Board verbs (ports, info, export, import, monitor, sim, flash) take ``--port`` (a device path,
a virtual board's /dev/pts/N, or a pyserial URL; default ``$FFKIT_PORT``, else the one
board attached, see ffkit.link.choose_port). No board, a busy port, a board that does not
answer and an incompatible model exit 1 with a message saying which; several boards and
no ``--port`` exit 2 with the list.

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
    from ffkit.kernels import host_kernels
    return host_kernels()


def _ffw():
    from ffrt import ffw
    return ffw


def _add_data_args(p, default_help):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", metavar="NAME",
                   help="a built-in data set (digits, hapt, mnist, mnist14); default: "
                        + default_help)
    g.add_argument("--data", metavar="FILE", type=Path,
                   help="your data: FILE.npz (X (n, features) and y (n,), optional "
                        "X_test/y_test) or FILE.csv (a label column named label, class, "
                        "target or y, else the last); float features are quantised to "
                        "0..255 (fitted on the training split)")


def _load_data(args, spec=None):
    """The data set of --data or --dataset (else the model file's [data] dataset), with
    the model file's [input] quantiser and class names applied when it has them."""
    from ffkit import datasets

    quantiser = classes = None
    if spec is not None:
        quantiser, classes = spec.quantiser, spec.classes
    if getattr(args, "frontend", None) is not None:
        if quantiser is not None:
            raise UsageError("%s quantises the data ([input] lo/hi); a front end takes the "
                             "raw features, so --frontend cannot be used with it"
                             % spec.source)
        quantiser = False  # the front end quantises its inputs itself
    if args.data is not None:
        return datasets.load_file(args.data, quantiser=quantiser, classes=classes)
    name = args.dataset or (spec.dataset if spec is not None else None)
    if name is None:
        raise UsageError("give --dataset NAME or --data FILE")
    return datasets.quantise(datasets.load(name), quantiser)


def _load_spec(args):
    """The model file: --config, else models/<dataset>.toml for a built-in data set, else
    None: ffkit train then chooses one (ffkit.autoconfig)."""
    from ffkit import config

    if args.config is not None:
        return config.load(args.config)
    if args.data is None and args.dataset is not None:
        path = config.default_model_file(args.dataset)
        return config.load(path) if path is not None else None
    if args.data is not None:
        return None
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
    """'78-192-64'; a recurrent model's reads '78-192-64 (recurrent)'."""
    s = "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers))
    return s + " (recurrent)" if cfg.recurrent else s


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
                   help="model file (default: models/<dataset>.toml; without one, "
                        "ffkit.autoconfig chooses a model on a validation split of the "
                        "training data and writes its model file)")
    p.add_argument("--out", metavar="W.ffw", type=Path, required=True,
                   help="weight file to write (atomically)")
    p.add_argument("--write-config", metavar="TOML", type=Path,
                   help="without --config: where the chosen model file goes (default: "
                        "W.toml beside W.ffw)")
    p.add_argument("--epochs", type=int, help="override the config's [train] epochs")
    _add_frontend_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _add_frontend_arg(p):
    p.add_argument("--frontend", metavar="FRONT.ffe", type=Path,
                   help="a frozen front end (ffkit tflite import-frontend): the data's "
                        "features go through it, and its outputs (0..255) are the model's "
                        "inputs (n_features, in_max 255, in_scale 1)")


def _through_frontend(args, data, cfg=None):
    """(data, cfg) with the features mapped through --frontend, when it is given."""
    if getattr(args, "frontend", None) is None:
        return data, cfg
    from ffkit import frontend_import

    fe = frontend_import.load(args.frontend)
    data = frontend_import.through(fe, data, args.frontend.name)
    return data, cfg if cfg is None else frontend_import.config_behind(cfg, fe)


_GENERATED = "# Generated by `ffkit train`"  # the first line of a model file it wrote


def _auto_config_path(args):
    """Where the chosen model file goes; never over a file that ffkit did not write."""
    path = args.write_config if args.write_config is not None else args.out.with_suffix(".toml")
    if args.write_config is None and path.exists():
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
        if not first.startswith(_GENERATED):
            raise FFKitError("%s exists and was not written by ffkit train; give "
                             "--write-config PATH (or --config %s to train from it)"
                             % (path, path))
    return path


def _quantiser_text(data, spec):
    if data.quantiser is None:
        return None
    if spec is not None and spec.quantiser is data.quantiser:
        return "[input] of %s" % spec.source
    return "fitted on the training split"


def cmd_train(args):
    from ffrt.net import FFNet

    from ffkit.evaluate import accuracy_goodness
    from ffkit.train import train_spec

    if args.epochs is not None and args.epochs < 0:
        raise UsageError("--epochs must be >= 0")
    spec = _load_spec(args)
    auto = None
    if spec is None:  # no model file: choose one on a validation split of the training data
        if args.write_config is not None and args.write_config.resolve() == args.out.resolve():
            raise UsageError("--write-config and --out name the same file")
        from ffkit import autoconfig, config

        config_path = _auto_config_path(args)
        data, _ = _through_frontend(args, _load_data(args))
        auto = autoconfig.choose(data, kernels=_kernels(), progress=not args.no_progress,
                                 in_max=None if args.frontend is None else 255)
        source = str(args.data) if args.data is not None else "the data set " + args.dataset
        text = autoconfig.model_file_text(auto, data, source,
                                          dataset=args.dataset if args.data is None else None)
        write_atomic(config_path, text.encode("utf-8"))
        spec = config.load(config_path)  # train from what the file says
        cfg = spec.model  # behind a front end too: infer took its outputs, in_max 255
    else:
        if args.write_config is not None:
            raise UsageError("--write-config is for training without --config (it writes "
                             "the model file that ffkit chooses)")
        data, cfg = _through_frontend(args, _load_data(args, spec), spec.model)
        data.check_model(cfg)
    epochs = spec.epochs if args.epochs is None else args.epochs
    t0 = time.perf_counter()
    net = FFNet(cfg, kernels=_kernels())
    if cfg.recurrent:  # a stream: every window in time order, its state carried along
        from ffkit.evaluate import accuracy_stream, sequences
        X, y, groups = sequences(data, "train")
        res = train_spec(net, spec, X, y, epochs, progress=not args.no_progress,
                         groups=groups)
        acc = accuracy_stream(net, X, y, groups)
    else:
        res = train_spec(net, spec, data.X_train, data.y_train, epochs,
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
        "frontend": None if args.frontend is None else str(args.frontend),
        "file_bytes": len(blob),
        "weights_crc32": "%08x" % crc,
        "quantiser": _quantiser_text(data, spec),
        "classes": None if data.classes is None else list(data.classes),
        "auto": None if auto is None else auto.as_json(),
    }
    shifts = ", ".join(str(s) for s in res.lr_shifts) or "-"
    lines = [
        "dataset         %s (%s), %d training samples" % (data.name, data.split,
                                                           result["n_train"]),
    ]
    if result["quantiser"] is not None:
        lines.append("features        quantised to 0..255 per feature (%s)"
                     % result["quantiser"])
    if auto is not None:
        lines.append("model choice    %d candidates on %s (%d rows; trained on %d), %.1f s"
                     % (len(auto.scores), auto.validation, auto.n_validation, auto.n_fit,
                        auto.seconds))
        for sc in auto.scores:
            lines.append("  %s layers %-10s act_shift %-8s validation accuracy %.4f"
                         % ("*" if sc["index"] == auto.chosen else " ",
                            "-".join(str(w) for w in sc["layers"]),
                            ",".join(str(a) for a in sc["act_shift"]),
                            sc["validation_accuracy"]))
        lines.append("model file      wrote %s (edit it and train again with --config)"
                     % spec.source)
    lines += [
        "model           %s from %s%s" % (result["shape"], spec.source,
                                            "" if args.frontend is None else
                                            ", behind the front end %s" % args.frontend),
        "epochs          %d (shuffle_seed %d; lr_shift per epoch: %s)"
        % (epochs, spec.shuffle_seed, shifts),
        "train accuracy  %.4f (by goodness, on the training split)" % acc,
        "time            %.1f s" % seconds,
        "wrote           %s (%d bytes, weights crc32 %08x)" % (args.out, len(blob), crc),
        "next            ffkit eval --weights %s  (held-out accuracy)" % args.out,
    ]
    _emit(args, result, lines)
    return EXIT_OK


# ---- eval ------------------------------------------------------------------------------------

def add_eval_parser(sub):
    p = sub.add_parser("eval", description=(
        "Accuracy by goodness (FF's own prediction) on the held-out split, the linear head's, "
        "and the head of an untrained net of the same Config (the control: head accuracy "
        "alone is no evidence that FF learned)."))
    _add_data_args(p, "the model file's [data] dataset, else digits")
    p.add_argument("--weights", metavar="W.ffw", type=Path,
                   help="the model (its Config comes from the file); required unless "
                        "--mode anomaly")
    p.add_argument("--config", metavar="TOML", type=Path,
                   help="the model file whose [input] (quantiser, class names) maps the "
                        "data (default: W.toml beside W.ffw, when it describes that model)")
    p.add_argument("--mode", choices=("classify", "anomaly"), default="classify",
                   help="anomaly: one-class FF (ffkit.anomaly_eval): fresh nets learn "
                        "normal rows only and goodness ranks the test split (ROC AUC, "
                        "mean and worst over --seeds, with controls). Data: --dataset hapt "
                        "(default; per subject, models/anomaly.toml), --dataset digits, "
                        "breast-cancer or wine (built-in benchmarks, models/oneclass.toml), "
                        "or --data FILE.npz: X = normal training rows, X_test and y_test "
                        "with 0 = normal, 1 = anomaly (y, if given, all 0); with --normal "
                        "LABELS any file ffkit train takes (.npz or .csv), rows of those "
                        "classes normal, the others anomalies. Floats are quantised from "
                        "the normal training rows only. --config: the model file")
    p.add_argument("--negatives", choices=ANOMALY_NEGATIVES, default=None,
                   help="--mode anomaly: the self-made negatives (default: the model "
                        "file's [learner]). ffrt.oneclass, any data: box-wide (a box and "
                        "a wide negative per row), box, wide. ffrt.anomaly, HAPT only: "
                        "gain-channel (a gain negative and a channel-block hybrid), "
                        "channel, feature (hybrids only), gain-time (a gain negative and "
                        "a time shuffle of the raw samples)")
    p.add_argument("--normal", metavar="LABELS",
                   help="--mode anomaly: the class labels that are normal, as 0 or 0,3: "
                        "with --data, the file's y/y_test are then class labels; with "
                        "hapt, activities y 0-5 (walking, upstairs, downstairs, sitting, "
                        "standing, lying; default 3,4,5)")
    p.add_argument("--seeds", default="1-4", metavar="1-4",
                   help="--mode anomaly: net seeds, as 1-4 or 1,3 (default %(default)s); "
                        "figures are means and worsts over them")
    p.add_argument("--subjects", metavar="16-30",
                   help="--mode anomaly, hapt: the subjects reported (default 16-30; "
                        "settings were chosen on 1-15)")
    _add_frontend_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-control", action="store_true",
                   help="skip the untrained-net control (--mode anomaly: the energy, random "
                        "and scikit-learn controls; the untrained net is always scored)")
    p.add_argument("--control-epochs", type=int, default=10,
                   help="epochs the control's head trains (default %(default)s, shuffle_seed 0)")
    p.add_argument("--baselines", action="store_true",
                   help="also train float learners on the same split (logistic regression, "
                        "an MLP with one hidden layer of 128; scikit-learn) and report "
                        "their held-out accuracy and FF's gap to the MLP")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_eval(args):
    from ffkit.evaluate import report

    if args.mode == "anomaly":
        return _eval_anomaly(args)
    if args.weights is None:
        raise UsageError("give --weights W.ffw")
    net = load_weights(args.weights)
    spec, note = _eval_spec(args, net.cfg)
    if args.data is None and args.dataset is None and (spec is None or spec.dataset is None):
        args.dataset = "digits"  # else the model file's [data] dataset
    data, _ = _through_frontend(args, _load_data(args, spec))
    data.check_model(net.cfg)
    if args.control_epochs < 0:
        raise UsageError("--control-epochs must be >= 0")
    rep = report(net, data, control_epochs=args.control_epochs, control_shuffle_seed=0,
                 control=not args.no_control, kernels=_kernels(),
                 progress=not args.no_progress)
    rep["weights"] = str(args.weights)
    rep["shape"] = _shape(net.cfg)
    rep["config"] = None if spec is None else spec.source
    rep["quantiser"] = _quantiser_text(data, spec)
    ctrl = rep["accuracy_head_untrained_control"]
    _emit(args, rep, [
        "%s, held-out test split (%s), %d samples, model %s"
        % (data.name, data.split, rep["n_test"], rep["shape"]),
    ] + (["features quantised to 0..255 per feature (%s)" % rep["quantiser"]]
         if rep["quantiser"] is not None else []) + ([note] if note else []) + [
        "accuracy (by goodness, FF)            %.4f" % rep["accuracy"],
        "accuracy (linear head)                %.4f" % rep["accuracy_head"],
        ("accuracy (head on an untrained net)   %.4f  <- control: its head alone trained, "
         "%d epoch(s)" % (ctrl, args.control_epochs)) if ctrl is not None else
        "accuracy (head on an untrained net)   skipped (--no-control)",
    ] + ([
        "FF learning adds                      %+.1f points by goodness, %+.1f by the head"
        % (100 * rep["margin"], 100 * rep["margin_head"])] if ctrl is not None else [])
      + _baseline_lines(args, rep, data))
    return EXIT_OK


def _baseline_lines(args, rep, data):
    """eval --baselines: float learners on the same split, into rep and as lines."""
    if not getattr(args, "baselines", False):
        return []
    from ffkit.evaluate import float_baselines

    b = float_baselines(data)
    rep["baselines"] = b
    best = max(rep["accuracy"], rep["accuracy_head"])
    rep["gap_to_mlp"] = best - b["mlp_128"]
    return ["float logistic regression             %.4f" % b["logistic_regression"],
            "float MLP, one hidden layer of 128    %.4f  (FF's best %+.1f points from it)"
            % (b["mlp_128"], 100 * rep["gap_to_mlp"])]


def _same_model(a, b):
    keys = ("n_features", "n_classes", "in_max", "in_scale", "layers")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _eval_spec(args, cfg):
    """(model file or None, a note or None) for eval: --config (which must describe the
    model in the .ffw), else W.toml beside W.ffw when it does (else it is left aside)."""
    from ffkit import config

    if args.config is not None:
        spec = config.load(args.config)
        if not _same_model(spec.model, cfg):
            raise FFKitError("%s describes a %s model, %s holds a %s one"
                             % (args.config, _shape(spec.model), args.weights, _shape(cfg)))
        return spec, None
    path = args.weights.with_suffix(".toml")
    if not path.is_file() or args.frontend is not None:  # beside it: the raw input's model
        return None, None
    spec = config.load(path)
    if not _same_model(spec.model, cfg):
        return None, "note: %s describes another model (%s); not used" % (path,
                                                                         _shape(spec.model))
    return spec, None


ANOMALY_NEGATIVES = ("box-wide", "box", "wide", "gain-channel", "channel", "feature",
                     "gain-time")  # ffkit.anomaly_eval.NEGATIVES, without importing it here


def _int_list(text, what):
    """'1-4' or '1,3,5-6' -> a tuple of ints (>= 0)."""
    out = []
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b or a)
            if lo < 0 or hi < lo:
                raise ValueError
            out.extend(range(lo, hi + 1))
    except ValueError:
        raise UsageError("%s must be numbers as 1-4 or 1,3 (got %r)" % (what, text)) from None
    return tuple(out)


def _eval_anomaly(args):
    from dataclasses import replace

    from ffkit import anomaly_eval as ae
    from ffkit import config

    if args.weights is not None or args.frontend is not None:
        raise UsageError("--mode anomaly takes no --weights or --frontend (fresh nets learn "
                         "the normal rows)")
    name = args.dataset if args.dataset is not None else ("hapt" if args.data is None else None)
    if name is not None and name not in ae.BUILTIN:
        raise UsageError("--mode anomaly: --dataset is one of %s (or give --data FILE)"
                         % ", ".join(ae.BUILTIN))
    normal = None if args.normal is None else _int_list(args.normal, "--normal")
    if normal is not None and name not in (None, "hapt"):
        raise UsageError("--normal picks the normal classes of a --data file or of hapt")
    if args.subjects is not None and name != "hapt":
        raise UsageError("--subjects is for --dataset hapt")
    seeds = _int_list(args.seeds, "--seeds")
    if not seeds or max(seeds) >= 1 << 30:
        raise UsageError("--seeds must be in 0..2**30")
    path = args.config or config.default_model_file("anomaly" if name == "hapt" else "oneclass")
    spec, learner = ae.load_spec(path)
    if args.negatives is not None:
        learner = replace(learner, negatives=args.negatives)
    if learner.kind == "anomaly" and name != "hapt":
        raise UsageError("the %s negatives (ffrt.anomaly) are for HAPT windows; for other "
                         "data use box-wide, box or wide" % learner.negatives)
    common = dict(cfg=spec.model, learner=learner, seeds=seeds, controls=not args.no_control)
    if name == "hapt":
        subjects = ae.SUBJECTS
        if args.subjects is not None:
            try:
                subjects = _subject_range(args.subjects)
            except argparse.ArgumentTypeError as e:
                raise UsageError("--subjects: %s" % e) from None
        if normal is not None and not set(normal) < set(range(6)):
            raise UsageError("--normal: hapt's activities are y 0-5, and some must be "
                             "anomalous")
        try:
            rep = ae.evaluate(subjects=subjects, normal=normal or ae.NORMAL, **common)
        except ValueError as e:  # a subject whose last session lacks normal or anomalies
            raise UsageError(str(e)) from None
        unit = "subject"
    elif args.data is not None:
        rep = ae.file_report(args.data, normal=normal, **common)
        unit = "task"
    else:
        rep = ae.benchmark_report(name, **common)
        unit = "task"
    rep["config"] = str(path)
    _emit(args, rep, _anomaly_lines(rep, unit))
    return EXIT_OK


def _anomaly_lines(rep, unit):
    seeds = rep["seeds"]
    lines = [
        "anomaly task: " + rep["task"],
        "learner: %s, negatives %s; model file %s; seeds %s"
        % ("ffrt.oneclass" if rep["learner"] == "oneclass" else "ffrt.anomaly",
           rep["negatives"], rep["config"], ",".join(str(s) for s in seeds)),
    ]
    if rep.get("features"):
        lines.append("features: " + rep["features"] + (
            " (%d test values clipped)" % rep["test_values_clipped"]
            if rep.get("test_values_clipped") else ""))
    lines += [
        "ROC AUC by goodness (normal = positive): mean %.4f over %ss and seeds, worst %.4f "
        "(%s %s, seed %d)" % (rep["roc_auc"], unit, rep["roc_auc_worst"], unit,
                              rep["worst_" + unit], rep["worst_seed"]),
        "per seed (mean / worst): " + ", ".join(
            "%s: %.4f / %.4f" % (s, v["roc_auc"], v["roc_auc_worst"])
            for s, v in rep["roc_auc_per_seed"].items()),
    ]
    c = rep.get("controls")
    if c:
        lines.append("controls on the same split and features (mean / worst %s):" % unit)
        for k, v in c.items():
            lines.append("  %-17s %.4f / %.4f  %s" % (k, v["roc_auc"], v["roc_auc_worst"],
                                                       v["about"]))
        if rep["untrained_roc_auc"] < 0.5:
            lines.append("  the untrained net's %.4f is the energy ranking inverted, not "
                         "chance: 1 - AUC = %.4f" % (rep["untrained_roc_auc"],
                                                     rep["untrained_inverted_roc_auc"]))
    else:
        lines.append("untrained net: mean %.4f, worst %.4f (controls skipped: --no-control)"
                     % (rep["untrained_roc_auc"], rep["untrained_roc_auc_worst"]))
    lines.append("per %s (mean over seeds): " % unit + ", ".join(
        "%s %.3f" % kv for kv in rep["roc_auc_per_" + unit].items()))
    return lines


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


def add_demo_parser(sub):
    return _add_delegated_parser(sub, "demo")


def cmd_demo(args):
    return _delegate("demo").run_cli(args)


def cmd_bench(args):
    return _delegate("bench").run_cli(args)


def add_fuzz_parser(sub):
    return _add_delegated_parser(sub, "fuzz")


def cmd_fuzz(args):
    return _delegate("fuzz").run_cli(args)


def add_tflite_parser(sub):
    return _add_delegated_parser(sub, "tflite")


def cmd_tflite(args):
    return _delegate("tflite").run_cli(args)


# ---- board verbs: ports, info, export, import, monitor, sim -------------------------------

def _add_port_args(p):
    p.add_argument("--port", metavar="PORT", default=os.environ.get("FFKIT_PORT"),
                   help="serial device, e.g. /dev/ttyACM0 or a virtual board's /dev/pts/N "
                        "(default: $FFKIT_PORT, else the only board attached)")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds to wait for each reply before resending (default %(default)s)")


def _connect(args):
    from ffkit.client import connect

    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    return connect(args.port, timeout=args.timeout)


class _Progress:
    """A transfer's progress(done, total) callback: a tqdm bar on stderr, opened by the
    first call (so nothing shows when a check fails before any byte moves)."""

    def __init__(self, args, desc):
        self.off = args.json or args.no_progress
        self.desc = desc
        self.bar = None

    def __call__(self, done, total):
        if self.off:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=self.desc, unit="B", unit_scale=True,
                            file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def add_ports_parser(sub):
    p = sub.add_parser("ports", description=(
        "Serial ports that may hold a board, and running virtual boards (ffkit sim)."))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_ports(args):
    from ffkit.link import list_ports

    ports = list_ports()
    lines = ["%-16s %-7s %s%s" % (p["port"], p["kind"], p["description"],
                                  "" if p["auto"] else "  (not auto-detected: use --port)")
             for p in ports]
    if not ports:
        lines = ["no boards found (plug one in, or start a virtual board: ffkit sim --dir DIR)"]
    _emit(args, {"ports": ports}, lines)
    return EXIT_OK


def add_info_parser(sub):
    p = sub.add_parser("info", description="What the board runs: firmware, model, step, memory.")
    _add_port_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _info_lines(info):
    lines = []
    for k, v in info.items():
        if k == "protocol":
            continue
        if k == "model" and isinstance(v, dict) and "layers" in v:
            shape = "-".join(str(n) for n in [v.get("n_features", 0) + v.get("n_classes", 0)]
                             + list(v["layers"]))
            v = "%s (%s features, %s classes)" % (shape, v.get("n_features"),
                                                  v.get("n_classes"))
        elif isinstance(v, (dict, list)):
            v = json.dumps(v)
        lines.append("%-12s %s" % (k, v))
    return lines


def cmd_info(args):
    board = _connect(args)
    try:
        info = board.info()
        port = board.link.name
    finally:
        board.close()
    result = {"port": port, "protocol": board.protocol_version, **info}
    _emit(args, result, ["%-12s %s" % ("port", port),
                         "%-12s %s" % ("protocol", board.protocol_version)]
          + _info_lines(info))
    return EXIT_OK


def add_export_parser(sub):
    p = sub.add_parser("export", description=(
        "Copy the board's weights into a .ffw file (chunked, retried, CRC and every .ffw "
        "check verified on the host; the file is written atomically)."))
    _add_port_args(p)
    p.add_argument("-o", "--out", metavar="W.ffw", type=Path, required=True,
                   help="file to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_export(args):
    ffw = _ffw()
    t0 = time.perf_counter()
    board = _connect(args)
    try:
        with _Progress(args, "export") as progress:
            data = board.export(progress=progress)   # every .ffw check passed
        port = board.link.name
    finally:
        board.close()
    write_atomic(args.out, data)
    from ffrt.net import FFNet
    cfg = ffw.decode_config(data)
    net = FFNet(cfg, init=False)
    ffw.load_into(net, data)
    crc = ffw.weights_crc32(net)
    result = {"port": port, "out": str(args.out), "file_bytes": len(data), "step": net.step,
              "shape": _shape(cfg), "weights_crc32": "%08x" % crc,
              "seconds": round(time.perf_counter() - t0, 3)}
    _emit(args, result, [
        "exported %s from %s: %d bytes, model %s, step %d, weights crc32 %08x (%.1f s)"
        % (args.out, port, len(data), result["shape"], net.step, crc, result["seconds"])])
    return EXIT_OK


def add_log_parser(sub):
    p = sub.add_parser("log", description=(
        "Download the board's session log (.ffl: every request that read or changed its "
        "net, its answers and state digests) to a file, for ffkit replay. A board logs "
        "after LOG START (ffkit stream --log starts and drains one as it streams)."))
    _add_port_args(p)
    p.add_argument("-o", "--out", metavar="FILE.ffl", type=Path, required=True,
                   help="file to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_log(args):
    from ffkit import logs

    board = _connect(args)
    try:
        result = logs.download(board, args.out)
        result["port"] = board.link.name
    finally:
        board.close()
    _emit(args, result, [
        "wrote %s from %s: %d records, %d bytes (logging %s%s)"
        % (result["log"], result["port"], result["records"], result["bytes"],
           "on" if result["logging"] else "off",
           ", %d record(s) lost to write errors" % result["lost"] if result["lost"] else ""),
        "next            ffkit replay %s --weights START.ffw" % result["log"]])
    return EXIT_OK


def add_replay_parser(sub):
    return _add_delegated_parser(sub, "replay")


def cmd_replay(args):
    return _delegate("replay").run_cli(args)


def add_import_parser(sub):
    p = sub.add_parser("import", description=(
        "Send a .ffw file to the board. It is checked on the host first (every .ffw check, "
        "and its model signature against the board's), then staged on the board, checked "
        "again and committed atomically: a refused or interrupted import leaves the "
        "running weights untouched."))
    p.add_argument("file", metavar="W.ffw", type=Path, help="weight file to send")
    _add_port_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_import(args):
    from ffkit.client import check_ffw

    data = args.file.read_bytes()
    cfg = check_ffw(data, what=str(args.file))   # before any port is opened
    t0 = time.perf_counter()
    board = _connect(args)
    try:
        with _Progress(args, "import") as progress:
            step = board.import_weights(data, progress=progress)
        port = board.link.name
    finally:
        board.close()
    result = {"port": port, "file": str(args.file), "file_bytes": len(data),
              "shape": _shape(cfg), "step": step,
              "seconds": round(time.perf_counter() - t0, 3)}
    _emit(args, result, ["imported %s into %s: %d bytes, model %s, now at step %d (%.1f s)"
                         % (args.file, port, len(data), result["shape"], step,
                            result["seconds"])])
    return EXIT_OK


def add_monitor_parser(sub):
    p = sub.add_parser("monitor", description=(
        "A live line per interval from the board's counters: steps, accuracy, goodness "
        "margin (positive minus negative) per layer, free heap. Reads only; Ctrl-C stops."))
    _add_port_args(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between lines (default %(default)s)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N lines")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def monitor_sample(board):
    """One monitor reading: the board's STATS plus step and checkpoint from INFO."""
    stats = board.stats()
    info = board.info()
    out = {"time": round(time.time(), 3), "step": info.get("step")}
    out.update(stats)
    if info.get("checkpoint") is not None:
        out["checkpoint"] = info["checkpoint"]
    pos, neg = stats.get("goodness_pos"), stats.get("goodness_neg")
    if pos is not None and neg is not None:
        out["margin"] = [p - n for p, n in zip(pos, neg)]
    if stats.get("labelled"):
        out["accuracy"] = round(stats["correct"] / stats["labelled"], 4)
    return out


def monitor_line(cur, prev=None):
    """The human line for one monitor reading (keys the board did not send are left out).

    >>> monitor_line({"time": 2.0, "step": 150, "learn_steps": 50, "labelled": 40,
    ...               "correct": 30, "accuracy": 0.75, "margin": [1200, -35],
    ...               "mem_free": 41000, "bad_frames": 0},
    ...              {"time": 1.0, "step": 100})
    'step 150 (+50.0/s)  acc 0.750 (30/40)  margin +1200 -35  heap free 41000  bad frames 0'
    """
    parts = []
    step = cur.get("step")
    if step is not None:
        rate = ""
        if prev is not None and prev.get("step") is not None and cur["time"] > prev["time"]:
            rate = " (%+.1f/s)" % ((step - prev["step"]) / (cur["time"] - prev["time"]))
        parts.append("step %d%s" % (step, rate))
    if "accuracy" in cur:
        parts.append("acc %.3f (%d/%d)" % (cur["accuracy"], cur["correct"], cur["labelled"]))
    elif "labelled" in cur:
        parts.append("acc - (0 labelled)")
    if "margin" in cur:
        parts.append("margin " + " ".join("%+d" % m for m in cur["margin"]))
    if cur.get("mem_free") is not None:
        parts.append("heap free %d" % cur["mem_free"])
    if "bad_frames" in cur:
        parts.append("bad frames %d" % cur["bad_frames"])
    return "  ".join(parts)


def cmd_monitor(args):
    if args.interval <= 0:
        raise UsageError("--interval must be > 0")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be >= 1")
    board = _connect(args)
    prev, n = None, 0
    try:
        if not args.json:
            print("monitoring %s every %g s (Ctrl-C stops); margin = goodness of positive "
                  "minus negative passes, running mean per layer" % (board.link.name,
                                                                     args.interval),
                  flush=True)
        next_at = time.monotonic()
        while True:
            cur = monitor_sample(board)
            print(json.dumps(cur) if args.json else monitor_line(cur, prev), flush=True)
            prev, n = cur, n + 1
            if args.count is not None and n >= args.count:
                break
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
    return EXIT_OK


def add_sim_parser(sub):
    return _add_delegated_parser(sub, "sim")


def cmd_sim(args):
    return _delegate("sim").run_cli(args)


def add_flash_parser(sub):
    return _add_delegated_parser(sub, "flash")


def cmd_flash(args):
    return _delegate("flash").run_cli(args)


# ---- baseline ----------------------------------------------------------------------------

def _subject_range(text):
    """'16-30' or '16,18,20-22' -> a tuple of subject ids."""
    out = []
    try:
        for part in text.split(","):
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b or a)
            if not 1 <= lo <= hi <= 30:
                raise ValueError
            out.extend(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "subjects are 1..30, as 16-30 or 16,18,20-22") from None
    return tuple(out)


def add_baseline_parser(sub):
    p = sub.add_parser("baseline", description=(
        "Float baselines (River, scikit-learn MLP, float FF in numpy, two with a "
        "class-balanced rehearsal buffer) on the HAPT features, bootstrapped on subjects "
        "1-15, under the integer FF's protocols: frozen and adapted accuracy on each test "
        "subject's last session, and prequential accuracy. About 5 minutes on 2 cores; "
        "--weights adds about 70 s."))
    p.add_argument("--dataset", default="hapt", choices=("hapt",), help="only hapt")
    p.add_argument("--subjects", type=_subject_range, default=None, metavar="16-30",
                   help="test subjects (default 16-30; with --quick 16)")
    p.add_argument("--bootstrap-subjects", type=_subject_range, default=tuple(range(1, 16)),
                   metavar="1-15", help="the subjects every float baseline is "
                   "bootstrapped on (default 1-15; --weights should be trained on them too)")
    p.add_argument("--models", metavar="A,B", default=None,
                   help="a comma list of baselines (default all)")
    p.add_argument("--weights", metavar="W.ffw", type=Path, default=None,
                   help="also evaluate this integer FF (int_ff, int_ff_rehearsal)")
    p.add_argument("--config", metavar="TOML", type=Path, default=None,
                   help="the model file whose layers the float FF takes and whose [adapt] "
                        "the rehearsal rows take (default models/hapt.toml)")
    p.add_argument("--quick", action="store_true",
                   help="for tests: subject 16, two baselines (river_softmax, float_ff), "
                        "shortened bootstraps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_baseline(args):
    from ffkit import baselines

    names = baselines.QUICK_BASELINES if args.quick else baselines.BASELINES
    if args.models:
        names = tuple(n.strip() for n in args.models.split(",") if n.strip())
        bad = [n for n in names if n not in baselines.BASELINES]
        if bad:
            raise UsageError("unknown baseline(s) %s; choose from %s"
                             % (", ".join(bad), ", ".join(baselines.BASELINES)))
    subjects = args.subjects
    if subjects is None:
        subjects = (16,) if args.quick else tuple(range(16, 31))
    weights = args.weights.read_bytes() if args.weights is not None else None
    if weights is not None:
        load_weights(args.weights)   # refuse a bad file before the long run
    from ffkit import config
    spec = config.load(args.config if args.config is not None
                       else config.models_dir() / "hapt.toml")
    if set(subjects) & set(args.bootstrap_subjects):
        raise UsageError("--subjects and --bootstrap-subjects overlap")
    result = baselines.run(names, subjects, weights=weights, quick=args.quick, spec=spec,
                           boot_subjects=args.bootstrap_subjects,
                           log=None if args.json else
                           (lambda m: print(m, file=sys.stderr, flush=True)))
    _emit(args, result, baselines.format_table(result))
    return EXIT_OK


# ---- stream ------------------------------------------------------------------------------

def add_stream_parser(sub):
    p = sub.add_parser("stream", description=(
        "Stream raw HAPT IMU samples to a board (a virtual board by default): the board "
        "computes the window features, predicts and learns (ffrt.live); the host computes "
        "the same stream with the same code and compares predictions and final weights bit "
        "for bit. Prints frozen/adapted (personalise) or prequential accuracy, the "
        "previous-label bar, windows per second, and writes PNG plots."))
    p.add_argument("--dataset", default="hapt", choices=("hapt",), help="only hapt")
    p.add_argument("--weights", metavar="W.ffw", type=Path, required=True,
                   help="a HAPT model (72 features, 6 classes), e.g. from ffkit train "
                        "--dataset hapt")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--port", metavar="PORT",
                   help="a board running a model of the same shape (default: --sim)")
    g.add_argument("--sim", action="store_true",
                   help="a new virtual board booted from --weights (the default)")
    p.add_argument("--heap", metavar="SIZE", help="the virtual board's heap, e.g. 192K "
                   "(default: the unix port's 2M)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for each reply before resending (default "
                        "%(default)s; more per window a frame completes)")
    p.add_argument("--protocol", choices=("personalise", "prequential"),
                   default="personalise", help="default %(default)s")
    p.add_argument("--subjects", type=_subject_range, default=tuple(range(16, 31)),
                   metavar="16-30", help="test subjects (default 16-30)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="at most N windows per session (the first N; for quick runs)")
    p.add_argument("--config", metavar="TOML", type=Path,
                   help="model file whose [adapt] table gives the defaults below "
                        "(default: models/hapt.toml)")
    p.add_argument("--per-class", type=int, metavar="K",
                   help="rehearsal samples kept per class on the board (0: none)")
    p.add_argument("--replay", type=int, metavar="R",
                   help="stored samples learnt after each new labelled window")
    p.add_argument("--adapt-lr-shift", type=int, metavar="S",
                   help="lr_shift while adapting (set on the board before its checkpoint)")
    p.add_argument("--predict", choices=("goodness", "head"),
                   help="prediction by goodness per label or by the linear head")
    p.add_argument("--sleep", metavar="N:M[:both] | off",
                   help="learn each window awake (its positive phase only, kept in the "
                        "rehearsal buffer) and sleep M negative steps on the buffer after "
                        "every N windows learnt (N = 0: never; ':both': a sleep step learns "
                        "both phases); 'off': both phases per window even if [adapt] "
                        "has sleep (default: [adapt] sleep, if any; ffrt.sleep)")
    p.add_argument("--plots", metavar="DIR", type=Path, default=Path("ffkit-plots"),
                   help="folder for the PNG plots (default %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument("--log", metavar="FILE.ffl", type=Path,
                   help="record the session log while streaming (ffkit replay replays it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _adapt_spec(args):
    """config [adapt] (models/hapt.toml unless --config), overridden by the flags."""
    import dataclasses

    from ffkit import config

    path = args.config if args.config is not None else config.default_model_file("hapt")
    spec = config.load(path).adapt if path is not None else config.AdaptSpec()
    over = {"per_class": args.per_class, "replay": args.replay,
            "lr_shift": args.adapt_lr_shift, "predict": args.predict}
    spec = dataclasses.replace(spec, **{k: v for k, v in over.items() if v is not None})
    if getattr(args, "sleep", None) is not None:
        spec = dataclasses.replace(spec, sleep=_sleep_arg(args.sleep))
    if not 0 <= spec.per_class <= 255 or not 0 <= spec.replay <= 16:
        raise UsageError("--per-class must be in 0..255 and --replay in 0..16")
    if spec.sleep is not None and not spec.per_class:
        raise UsageError("sleep learns from the rehearsal buffer: --per-class must be > 0")
    if spec.lr_shift is not None:
        from ffrt.model import Config
        try:
            Config(lr_shift=spec.lr_shift)
        except ValueError as e:
            raise UsageError("--adapt-lr-shift: %s" % e) from None
    return spec


def _sleep_arg(text):
    """--sleep: 'off' -> None, 'N:M' -> (N, M, False), 'N:M:both' -> (N, M, True)."""
    from ffrt.schedule import SLEEP_LIMITS

    if text == "off":
        return None
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "both"):
            raise ValueError
        every, steps = int(parts[0]), int(parts[1])
    except ValueError:
        raise UsageError("--sleep takes N:M, N:M:both or off (got %r)" % text) from None
    (lo_n, hi_n), (lo_m, hi_m) = SLEEP_LIMITS[:2]
    if not lo_n <= every <= hi_n or not lo_m <= steps <= hi_m:
        raise UsageError("--sleep N must be in %d..%d and M in %d..%d"
                         % (lo_n, hi_n, lo_m, hi_m))
    return every, steps, len(parts) == 3


def cmd_stream(args):
    from ffkit import stream

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if args.port is not None and args.heap is not None:
        raise UsageError("--heap is for the virtual board, not --port")
    if args.heap is not None:
        from ffkit.sim import check_heap
        check_heap(args.heap)
    adapt = _adapt_spec(args)
    weights = args.weights.read_bytes()
    stream.check_model(load_weights(args.weights).cfg)  # before any board is started
    board, close = stream.open_board(args, weights)
    bar = None
    try:
        port = board.link.name
        if not (args.json or args.no_progress):
            from tqdm import tqdm
            bar = tqdm(total=0, desc="stream", unit="window", file=sys.stderr, leave=False)

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        result = stream.run(board, weights, adapt, args.subjects, protocol=args.protocol,
                            limit=args.limit, plots_dir=None if args.no_plots else args.plots,
                            progress=progress if bar is not None else None,
                            log_path=args.log)
    finally:
        if bar is not None:
            bar.close()
        close()
    result = {"weights": str(args.weights), "port": None if args.port is None else port,
              "board": "virtual" if args.port is None else "serial", **result}
    _emit(args, result, stream.format_lines(result))
    return EXIT_OK if result["bit_identical"] else EXIT_FAIL


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
    Verb("demo", "a virtual board is flashed, learns digits, and matches the host bit for bit",
         add_demo_parser, cmd_demo),
    Verb("parity", "hold every runner (CPython, numpy, MicroPython) bit-identical",
         add_parity_parser, cmd_parity),
    Verb("bench", "speed and memory of the engine on each runner",
         add_bench_parser, cmd_bench),
    # boards (over a serial port or a virtual board's pty)
    Verb("ports", "list serial ports and running virtual boards", add_ports_parser, cmd_ports),
    Verb("info", "what a board runs: firmware, model, step, memory",
         add_info_parser, cmd_info),
    Verb("export", "copy a board's weights into a .ffw file", add_export_parser, cmd_export),
    Verb("import", "send a .ffw file to a board (checked, staged, committed atomically)",
         add_import_parser, cmd_import),
    Verb("monitor", "a live line per interval: steps, accuracy, goodness margin, heap",
         add_monitor_parser, cmd_monitor),
    Verb("sim", "a virtual board: the firmware in the MicroPython unix port on a pty",
         add_sim_parser, cmd_sim),
    Verb("flash", "cross-compile ffrt for a board and copy it there with mpremote",
         add_flash_parser, cmd_flash),
    Verb("baseline", "float baselines (River, MLP, float FF) under the HAPT protocols",
         add_baseline_parser, cmd_baseline),
    Verb("stream", "raw HAPT samples to a board that predicts and learns; checked bit for bit",
         add_stream_parser, cmd_stream),
    Verb("log", "download a board's session log (.ffl)", add_log_parser, cmd_log),
    Verb("fuzz", "hostile frames at a board; reports crashes, hangs, state changes, wedges",
         add_fuzz_parser, cmd_fuzz),
    Verb("replay", "replay a session log on the host and report the first difference",
         add_replay_parser, cmd_replay),
    Verb("tflite", "TFLite interop: a .ffw as an int8 .tflite (checked in LiteRT and TFLite "
         "Micro); a TFLite model as a front end", add_tflite_parser, cmd_tflite),
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
