"""Choose the anomaly models' settings on tasks that are never reported (README, Anomaly mode).

Two choices, each a list of candidates compared on validation tasks only:

``hapt``: models/anomaly.toml (``ffkit eval --mode anomaly``, reported on subjects 16-30).
  Candidates are scored on subjects 1-15 (subject 10's last session has no normal window:
  14 subjects), the same protocol as the report (learn the rest windows of the earlier
  session(s), one pass in time order; score the last session), seeds 1-4.

``oneclass``: models/oneclass.toml (``--data FILE``, ``--dataset digits|breast-cancer|wine``).
  Candidates are scored on four choice tasks, seeds 1-2:
  - digits, *training split only*: per digit, learn two thirds of its training rows;
    validate on the other third against 200 training rows of other digits;
  - HAPT subjects 1-15, rest normal (walking anomalous), and the reverse (walking normal,
    rest anomalous), each subject's windows learnt as a file's rows are;
  - iris (not a reported benchmark): per species, learn two thirds of its rows; validate
    on the rest against the other two species (floats, quantised as files are).
  Breast cancer, wine and the digits test split play no part.

The criterion is the mean over the validation tasks (each task's mean over its sub-tasks
and seeds); the worst sub-task is printed beside it. The one-class candidates come in two
rounds: one setting at a time from a base, then around round 1's best. The winner is what
the model file holds; the script does not write it. About 2 minutes (hapt) and 10 minutes
(oneclass) on one core of a shared 2-core machine.

    python tools/anomaly_validation.py hapt [--json]
    python tools/anomaly_validation.py oneclass [--json] [--only NAME]
"""

import argparse
from dataclasses import replace
import json
import sys
import time

import numpy as np

from ffrt.model import Config

from ffkit.learning import anomaly_eval as ae
from ffkit.twins.kernels import host_kernels

# (name, [model] overrides, [learner] overrides) on top of the base below (spelled out
# here, not read from the model file, so the comparison stays the same after the file
# takes the winner)
HAPT_BASE = ({"layers": (64,), "act_shift": (9,), "lr_shift": 22},
             {"negatives": "gain-channel", "slots": 8, "stride": 16, "levels": 2})
HAPT_CANDIDATES = [
    ("gain-channel, lr_shift 22, 64 units (issue 4's)", {}, {}),
    ("gain-channel, lr_shift 23", {"lr_shift": 23}, {}),
    ("gain-channel, lr_shift 21", {"lr_shift": 21}, {}),
    ("gain-channel, 128 units", {"layers": (128,)}, {}),
    ("gain-channel, act_shift 10", {"act_shift": (10,)}, {}),
    ("gain-time", {}, {"negatives": "gain-time"}),
    ("channel (hybrids only)", {}, {"negatives": "channel"}),
    ("box-wide (ffrt.oneclass), levels 2, act_shift 10", {"act_shift": (10,)},
     {"negatives": "box-wide", "levels": 2}),
    ("box-wide (ffrt.oneclass), levels 1, act_shift 9", {},
     {"negatives": "box-wide", "levels": 1}),
    ("box (ffrt.oneclass), levels 2, act_shift 10", {"act_shift": (10,)},
     {"negatives": "box", "levels": 2}),
    ("wide (ffrt.oneclass), levels 2, act_shift 10", {"act_shift": (10,)},
     {"negatives": "wide", "levels": 2}),
]

ONECLASS_BASE = ({"layers": (64,), "act_shift": (10,), "lr_shift": 22, "theta": (100000,),
                  "gshift": (11,)},
                 {"negatives": "box-wide", "levels": 2, "min_rows": 300, "headroom": 32})
ONECLASS_CANDIDATES = [
    ("box-wide, levels 2, act 10, lr 22, 64, min_rows 300 (base)", {}, {}),
    ("levels 1, act 9", {"act_shift": (9,)}, {"levels": 1}),
    ("levels 4, act 11", {"act_shift": (11,)}, {"levels": 4}),
    ("box only", {}, {"negatives": "box"}),
    ("wide only", {}, {"negatives": "wide"}),
    ("act 9", {"act_shift": (9,)}, {}),
    ("act 11", {"act_shift": (11,)}, {}),
    ("lr 21", {"lr_shift": 21}, {}),
    ("lr 23", {"lr_shift": 23}, {}),
    ("32 units", {"layers": (32,)}, {}),
    ("128 units", {"layers": (128,)}, {}),
    ("min_rows 0 (one pass)", {}, {"min_rows": 0}),
    ("min_rows 1000", {}, {"min_rows": 1000}),
    ("headroom 0", {}, {"headroom": 0}),
    ("two layers 64-64", {"layers": (64, 64), "act_shift": (10, 7), "theta": (100000, 100000),
                          "gshift": (11, 11)}, {}),
    # round 2: around the best of round 1 (wide only)
    ("wide, levels 4, act 11", {"act_shift": (11,)}, {"negatives": "wide", "levels": 4}),
    ("wide, act 11", {"act_shift": (11,)}, {"negatives": "wide"}),
    ("wide, lr 23", {"lr_shift": 23}, {"negatives": "wide"}),
    ("wide, 128 units", {"layers": (128,)}, {"negatives": "wide"}),
    ("wide, min_rows 1000", {}, {"negatives": "wide", "min_rows": 1000}),
    ("wide, headroom 0", {}, {"negatives": "wide", "headroom": 0}),
]


def _apply(cfg, learner, base, model_over, learner_over):
    cfg = Config(**dict(cfg.as_dict(), **dict(base[0], **model_over)))
    return cfg, replace(learner, **dict(base[1], **learner_over))


def run_hapt(say=print, only=None):
    spec, lspec = ae.default_spec("anomaly")
    out = {}
    for name, mo, lo in HAPT_CANDIDATES:
        if only and only not in name:
            continue
        cfg, learner = _apply(spec.model, lspec, HAPT_BASE, mo, lo)
        t = time.perf_counter()
        r = ae.evaluate(cfg=cfg, learner=learner, subjects=ae.VALIDATION_SUBJECTS,
                        seeds=ae.SEEDS, controls=False)
        row = {"roc_auc": r["roc_auc"], "roc_auc_worst": r["roc_auc_worst"],
               "worst_subject": r["worst_subject"], "worst_seed": r["worst_seed"],
               "per_seed_mean": {s: v["roc_auc"] for s, v in r["roc_auc_per_seed"].items()},
               "untrained_roc_auc": r["untrained_roc_auc"]}
        out[name] = row
        say("%-52s mean %.4f worst %.4f (subject %d, seed %d)  seeds %s  [%.0f s]" % (
            name, row["roc_auc"], row["roc_auc_worst"], row["worst_subject"],
            row["worst_seed"], " ".join("%.3f" % v for v in row["per_seed_mean"].values()),
            time.perf_counter() - t))
    best = max(out, key=lambda k: out[k]["roc_auc"]) if out else None
    say("chosen (highest mean): %s" % best)
    return {"validation_subjects": list(ae.VALIDATION_SUBJECTS), "seeds": list(ae.SEEDS),
            "criterion": "mean ROC AUC over subjects and seeds", "results": out,
            "chosen": best}


# ---- the one-class choice tasks -----------------------------------------------------------

def digits_tasks():
    """Training split only: per digit, fit 2/3 of its rows; validate on 1/3 + 200 others."""
    from ffkit.data import datasets

    d = datasets.load("digits")
    X, y = d.X_train, d.y_train
    tasks = []
    for c in range(10):
        r = np.random.default_rng(1000 + c)
        own = np.flatnonzero(y == c)
        r.shuffle(own)
        k = len(own) * 2 // 3
        other = np.flatnonzero(y != c)
        r.shuffle(other)
        val = np.concatenate([own[k:], other[:200]])
        tasks.append(ae.prepare("digit %d" % c, X[own[:k]], X[val], y[val] == c, in_max=16))
    return tasks


def hapt_tasks(normal):
    """Subjects 1-15 (as files: windows learnt in passes), one task per subject."""
    from ffkit.data import hapt

    rec = hapt.load()
    tasks = []
    for s in range(1, 16):
        Xtr, Xte, pos = ae._hapt_subject(rec, s, normal, None)
        if pos.all() or not pos.any():
            continue
        tasks.append(ae.prepare("subject %d" % s, Xtr, Xte, pos, in_max=255))
    return tasks


def iris_tasks(headroom):
    """Per species: fit 2/3 of its rows; validate on the rest and the other species."""
    from sklearn.datasets import load_iris

    d = load_iris()
    X, y = d.data, d.target
    tasks = []
    for c in range(3):
        r = np.random.default_rng(2000 + c)
        own = np.flatnonzero(y == c)
        r.shuffle(own)
        k = len(own) * 2 // 3
        val = np.concatenate([own[k:], np.flatnonzero(y != c)])
        tasks.append(ae.prepare("species %d" % c, X[own[:k]], X[val], y[val] == c,
                                headroom))
    return tasks


def run_oneclass(say=print, only=None, seeds=(1, 2)):
    spec, lspec = ae.default_spec("oneclass")
    k = host_kernels()
    fixed = {"digits (training split)": digits_tasks(),
             "HAPT 1-15, rest normal": hapt_tasks((3, 4, 5)),
             "HAPT 1-15, walking normal": hapt_tasks((0, 1, 2))}
    out = {}
    for name, mo, lo in ONECLASS_CANDIDATES:
        if only and only not in name:
            continue
        cfg, learner = _apply(spec.model, lspec, ONECLASS_BASE, mo, lo)
        t = time.perf_counter()
        sets = dict(fixed, **{"iris": iris_tasks(learner.headroom)})
        row = {}
        for tname, tasks in sets.items():
            r = ae.evaluate_tasks(tasks, cfg, learner, seeds, k, controls=False)
            row[tname] = {"roc_auc": r["roc_auc"], "roc_auc_worst": r["roc_auc_worst"],
                          "worst": r["worst_task"]}
        row["criterion"] = round(float(np.mean([v["roc_auc"] for v in row.values()])), 4)
        out[name] = row
        say("%-58s %.4f | %s  [%.0f s]" % (name, row["criterion"], "  ".join(
            "%s %.3f/%.3f" % (tn.split(",")[0].split(" (")[0] + ("" if "," not in tn else
                              "-" + tn.split(", ")[1].split()[0]), v["roc_auc"],
                              v["roc_auc_worst"])
            for tn, v in row.items() if tn != "criterion"), time.perf_counter() - t))
    best = max(out, key=lambda n: out[n]["criterion"]) if out else None
    say("chosen (highest mean over the four tasks): %s" % best)
    return {"seeds": list(seeds), "criterion": "mean over the validation tasks of their "
            "mean ROC AUC", "results": out, "chosen": best}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=("hapt", "oneclass"))
    p.add_argument("--only", metavar="TEXT", help="only candidates whose name contains TEXT")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    say = (lambda s: None) if args.json else (lambda s: print(s, flush=True))
    res = (run_hapt if args.which == "hapt" else run_oneclass)(say=say, only=args.only)
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
