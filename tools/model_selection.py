"""Score variants of a model file on validation rows only: how models/digits.toml and
models/mnist.toml were chosen.

Each variant is the model file with some fields replaced (a JSON object of [model] fields
and [train] keys, e.g. '{"theta": [200000, 200000]}' or '{"epochs": 24,
"lr_shift_schedule": [[0, 23], [8, 24]]}'). It is trained with the board's integer rule
(ffkit.learning.train) and scored by goodness and by the head, with the untrained-net control
beside it when asked; the test split plays no part:

- a data set with its own validation split (MNIST) trains on the training split and is
  scored on the first ``--valid-rows`` validation rows;
- otherwise (digits) by k-fold cross-validation on the training split
  (StratifiedKFold(folds, shuffle=True, random_state=0)), accuracies pooled over the
  held-out rows.

    python tools/model_selection.py --config models/digits.toml '{}' '{"theta": [200000, 200000]}'
    python tools/model_selection.py --config models/mnist.toml --control '{}' '{"label_repeat": 1}'

About 15 s per digits variant (5 folds) and 5 minutes per MNIST variant on one core.
"""

import argparse
import json
import sys

import numpy as np

from ffrt.net import FFNet

from ffkit import config

from ffkit.data import datasets
from ffkit.learning.evaluate import accuracy_goodness, accuracy_head
from ffkit.twins.kernels import host_kernels
from ffkit.learning.train import train


def variant_spec(base_path, over):
    """The model file at base_path with the fields of ``over`` replaced."""
    import tomllib

    with open(base_path, "rb") as f:
        doc = tomllib.load(f)
    for k, v in over.items():
        table = "train" if k in ("epochs", "shuffle_seed", "lr_shift_schedule",
                                 "theta_schedule") else "model"
        doc.setdefault(table, {})[k] = v
    return config.parse(doc, "%s + %s" % (base_path, json.dumps(over)))


def _fit_score(spec, Xf, yf, Xv, yv, control, kernels):
    net = FFNet(spec.model, kernels=kernels)
    train(net, Xf, yf, epochs=spec.epochs, shuffle_seed=spec.shuffle_seed,
          lr_shift_schedule=spec.lr_shift_schedule, theta_schedule=spec.theta_schedule,
          progress=False)
    out = [accuracy_goodness(net, Xv, yv), accuracy_head(net, Xv, yv), None]
    if control:
        c = FFNet(spec.model, kernels=kernels)
        c.ff_learning = False
        train(c, Xf, yf, epochs=10, shuffle_seed=0, progress=False)
        out[2] = accuracy_head(c, Xv, yv)
    return out


def score(spec, data, folds=5, valid_rows=2000, control=False, kernels=None):
    """{"goodness", "head", "control" (or None), "rows", "validation"} for one spec."""
    kernels = kernels if kernels is not None else host_kernels()
    if data.X_valid is not None:
        Xv, yv = data.X_valid[:valid_rows], data.y_valid[:valid_rows]
        g, h, c = _fit_score(spec, data.X_train, data.y_train, Xv, yv, control, kernels)
        return {"goodness": g, "head": h, "control": c, "rows": len(yv),
                "validation": "the first %d rows of the data set's validation split"
                % len(yv)}
    from sklearn.model_selection import StratifiedKFold

    X, y = np.asarray(data.X_train), np.asarray(data.y_train)
    tot = np.zeros(3)
    n = 0
    for fit, val in StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y):
        g, h, c = _fit_score(spec, X[fit], y[fit], X[val], y[val], control, kernels)
        tot += np.array([g, h, c or 0.0]) * len(val)
        n += len(val)
    return {"goodness": tot[0] / n, "head": tot[1] / n,
            "control": tot[2] / n if control else None, "rows": n,
            "validation": "%d-fold cross-validation of the training split" % folds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the base model file")
    p.add_argument("--dataset", help="default: the model file's [data] dataset")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--valid-rows", type=int, default=2000)
    p.add_argument("--control", action="store_true", help="also the untrained-net control")
    p.add_argument("--json", action="store_true", help="one JSON object per variant")
    p.add_argument("variants", nargs="+", help="JSON objects of fields to replace")
    args = p.parse_args(argv)
    base = config.load(args.config)
    data = datasets.load(args.dataset or base.dataset)
    for v in args.variants:
        over = json.loads(v)
        r = score(variant_spec(args.config, over), data, args.folds, args.valid_rows,
                  args.control)
        r["variant"] = over
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print("%-60s goodness %.4f head %.4f control %s  (%s)" % (
                v, r["goodness"], r["head"],
                "-" if r["control"] is None else "%.4f" % r["control"], r["validation"]),
                flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
