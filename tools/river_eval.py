"""FFClassifier beside two River classifiers on River's ImageSegments, River's way.

``python tools/river_eval.py [--json]`` runs ``river.evaluate.progressive_val_score`` (predict,
then learn, one pass in the data set's order) with ``metrics.Accuracy`` on
``river.datasets.ImageSegments`` (2,310 samples, 18 float features, 7 classes; it ships
inside the river package) for:

- ``FFClassifier()``: the defaults, chosen before this data set was looked at (the digits
  model of models/digits.toml, 64 input slots, ``scale="minmax"``); nothing here was tuned
  on ImageSegments;
- ``preprocessing.StandardScaler() | linear_model.LogisticRegression()`` wrapped one-vs-rest
  (River's LogisticRegression is binary), and
- ``tree.HoeffdingTreeClassifier()``, River's defaults,

and prints each model's accuracy and its wall-clock seconds.
"""

import argparse
import json
import platform
import sys
import time

from river import datasets, evaluate, linear_model, metrics, multiclass, preprocessing, tree

from ffkit.learning.river_model import FFClassifier


def models():
    return {
        "FFClassifier()": FFClassifier(),
        "StandardScaler | OneVsRest(LogisticRegression)":
            preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
                linear_model.LogisticRegression()),
        "HoeffdingTreeClassifier()": tree.HoeffdingTreeClassifier(),
    }


def evaluate_all():
    """[(name, accuracy, seconds)] for the three models on ImageSegments."""
    rows = []
    for name, model in models().items():
        t0 = time.perf_counter()
        acc = evaluate.progressive_val_score(datasets.ImageSegments(), model,
                                             metrics.Accuracy()).get()
        rows.append((name, acc, time.perf_counter() - t0))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    rows = evaluate_all()
    if args.json:
        print(json.dumps({"dataset": "river.datasets.ImageSegments",
                          "protocol": "progressive_val_score, Accuracy",
                          "machine": platform.machine(), "python": platform.python_version(),
                          "results": [{"model": n, "accuracy": round(a, 4),
                                       "seconds": round(s, 2)} for n, a, s in rows]}))
    else:
        print("ImageSegments (2310 samples), progressive_val_score, Accuracy")
        for name, acc, secs in rows:
            print("  %-48s %.4f  %6.1f s" % (name, acc, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
