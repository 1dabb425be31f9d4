"""ffkit eval: held-out accuracy (classify) or ROC AUC (--mode anomaly)."""

import argparse
from pathlib import Path

from ffkit import FFKitError, UsageError
from ffkit.argtypes import subject_range
from ffkit.commands._common import (EXIT_OK, add_data_args, add_frontend_arg, emit,
                                    load_data, quantiser_text, shape, through_frontend)
from ffkit.weights import host_kernels, load_weights


ANOMALY_NEGATIVES = ("box-wide", "box", "wide", "gain-channel", "channel", "feature",
                     "gain-time")  # ffkit.learning.anomaly_eval.NEGATIVES, without importing it here


DESCRIPTION = (
    "Accuracy by goodness (FF's own prediction) on the held-out split, the linear head's, "
    "and the head of an untrained net of the same Config (the control: head accuracy "
    "alone is no evidence that FF learned).")


def add_arguments(p):
    p.description = DESCRIPTION
    add_data_args(p, "the model file's [data] dataset, else digits")
    p.add_argument("--weights", metavar="W.ffw", type=Path,
                   help="the model (its Config comes from the file); required unless "
                        "--mode anomaly")
    p.add_argument("--config", metavar="TOML", type=Path,
                   help="the model file whose [input] (quantiser, class names) maps the "
                        "data (default: W.toml beside W.ffw, when it describes that model)")
    p.add_argument("--mode", choices=("classify", "anomaly"), default="classify",
                   help="anomaly: one-class FF (ffkit.learning.anomaly_eval): fresh nets learn "
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
    add_frontend_arg(p)
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


def run(args):
    from ffkit.learning.evaluate import report

    if args.mode == "anomaly":
        return _eval_anomaly(args)
    if args.weights is None:
        raise UsageError("give --weights W.ffw")
    net = load_weights(args.weights)
    spec, note = _eval_spec(args, net.cfg)
    if args.data is None and args.dataset is None and (spec is None or spec.dataset is None):
        args.dataset = "digits"  # else the model file's [data] dataset
    data, _ = through_frontend(args, load_data(args, spec))
    data.check_model(net.cfg)
    if args.control_epochs < 0:
        raise UsageError("--control-epochs must be >= 0")
    rep = report(net, data, control_epochs=args.control_epochs, control_shuffle_seed=0,
                 control=not args.no_control, kernels=host_kernels(),
                 progress=not args.no_progress)
    rep["weights"] = str(args.weights)
    rep["shape"] = shape(net.cfg)
    rep["config"] = None if spec is None else spec.source
    rep["quantiser"] = quantiser_text(data, spec)
    ctrl = rep["accuracy_head_untrained_control"]
    emit(args, rep, [
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
    from ffkit.learning.evaluate import float_baselines

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
                             % (args.config, shape(spec.model), args.weights, shape(cfg)))
        return spec, None
    path = args.weights.with_suffix(".toml")
    if not path.is_file() or args.frontend is not None:  # beside it: the raw input's model
        return None, None
    spec = config.load(path)
    if not _same_model(spec.model, cfg):
        return None, "note: %s describes another model (%s); not used" % (path,
                                                                         shape(spec.model))
    return spec, None


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

    from ffkit.learning import anomaly_eval as ae
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
                subjects = subject_range(args.subjects)
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
    emit(args, rep, _anomaly_lines(rep, unit))
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
