"""HAPT personalisation on three subject splits: how a model file's settings were chosen,
the headline, and the headline's mirror image.

- ``validation``: bootstrap on subjects 1-10, personalise 11-15; ``cv``: that and its two
  rotations (bootstrap on 1-5 and 11-15, personalise 6-10; on 6-15, personalise 1-5), so
  that every one of subjects 1-15 is a validation subject once (means over the 15).
  Settings are chosen here, and only here: subjects 16-30 play no part in any choice.
- ``headline``: bootstrap on 1-15, personalise 16-30 (the README's figures; the committed
  .ffw is this bootstrap).
- ``swap``: bootstrap on 16-30, personalise 1-15: does the choice hold when the people
  are exchanged?

For each split the model file is bootstrapped with ``ffkit.learning.train.train_spec`` (the board's
integer rule, bit-identical to a board) and personalised with
``ffkit.learning.protocols.personalise_live`` (the board's ``ffrt.live.LiveLearner`` over every
window of each session: what ``ffkit stream`` runs), predicting by goodness and by the
linear head, beside float baselines bootstrapped on the same subjects
(``ffkit.learning.baselines``; the float FF is the model's shape, trained in float with Adam).

    python tools/hapt_splits.py                          # validation, headline, swap
    python tools/hapt_splits.py --split cv --config my.toml --baselines ''   # choosing

About 20 s per split for the integer FF of models/hapt.toml on 2 cores (a whole cv of
models/hapt-tiny.toml: 10 s), plus about 2 minutes per float baseline.
"""

import argparse
import dataclasses
import json
from pathlib import Path
import sys
import time

from ffrt import ffw_ram
from ffrt.net import FFNet

from ffkit import config

from ffkit.data import hapt

from ffkit.learning import baselines, protocols
from ffkit.twins.kernels import host_kernels
from ffkit.learning.train import train_spec

SPLITS = {
    "validation": (tuple(range(1, 11)), tuple(range(11, 16))),
    "cv2": (tuple(range(1, 6)) + tuple(range(11, 16)), tuple(range(6, 11))),
    "cv3": (tuple(range(6, 16)), tuple(range(1, 6))),
    "headline": (tuple(range(1, 16)), tuple(range(16, 31))),
    "swap": (tuple(range(16, 31)), tuple(range(1, 16))),
}
DEFAULT_BASELINES = ("float_ff_rehearsal", "river_softmax")


def bootstrap(spec, subjects, rec):
    """The model file's net, trained on every session of ``subjects``: .ffw bytes."""
    net = FFNet(spec.model, kernels=host_kernels())
    if spec.model.recurrent:
        w = hapt.windows(subjects=subjects, targets_only=False, recording=rec)
        groups = w["subject"] * 16 + w["session"]
        train_spec(net, spec, w["X"], w["y"], progress=False, groups=groups)
    else:
        w = hapt.windows(subjects=subjects, recording=rec)
        train_spec(net, spec, w["X"], w["y"], progress=False)
    return bytes(ffw_ram.encode(net))


def _row(r):
    return {k: r[k] for k in ("frozen_accuracy", "adapted_accuracy", "worst_subject_frozen",
                              "worst_subject_adapted")}


def run_split(name, spec, rec, predicts=("goodness", "head"), names=DEFAULT_BASELINES,
              say=print, save=None):
    boot, test = SPLITS[name]
    t0 = time.perf_counter()
    blob = bootstrap(spec, boot, rec)
    if save is not None:  # e.g. for ffkit baseline --weights on the same split
        save.mkdir(parents=True, exist_ok=True)
        (save / (name + ".ffw")).write_bytes(blob)
    out = {"bootstrap": list(boot), "personalise": list(test),
           "bootstrap_seconds": round(time.perf_counter() - t0, 1), "models": {}}
    for predict in predicts:
        adapt = dataclasses.replace(spec.adapt, predict=predict)
        r = protocols.personalise_live(protocols.live_factory(blob, adapt), rec, test)
        out["models"]["int_ff_by_" + predict] = _row(r)
        say(_line(name, "int_ff_by_" + predict, r))
    if names:
        b = baselines.run(names, test, rec=rec, spec=spec, boot_subjects=boot)
        for k, r in b["models"].items():
            out["models"][k] = _row(r)
            say(_line(name, k, r))
        out["previous_label_accuracy"] = b["previous_label_accuracy"]
    return out


def cv_means(splits):
    """Per model, the means over the validation subjects of every split given (each
    split's mean weighted by its subjects) and the worst subject."""
    out = {}
    for r in splits.values():
        for model, m in r["models"].items():
            o = out.setdefault(model, {"n": 0, "frozen": 0.0, "adapted": 0.0,
                                       "worst_frozen": 1.0, "worst_adapted": 1.0})
            k = len(r["personalise"])
            o["n"] += k
            o["frozen"] += k * m["frozen_accuracy"]
            o["adapted"] += k * m["adapted_accuracy"]
            o["worst_frozen"] = min(o["worst_frozen"], m["worst_subject_frozen"]["accuracy"])
            o["worst_adapted"] = min(o["worst_adapted"],
                                     m["worst_subject_adapted"]["accuracy"])
    return {model: {"frozen_accuracy": o["frozen"] / o["n"],
                    "adapted_accuracy": o["adapted"] / o["n"],
                    "worst_frozen": o["worst_frozen"], "worst_adapted": o["worst_adapted"],
                    "subjects": o["n"]} for model, o in out.items()}


def _line(split, model, r):
    return "%-10s %-22s frozen %.4f adapted %.4f  worst %.3f (%d) -> %.3f (%d)" % (
        split, model, r["frozen_accuracy"], r["adapted_accuracy"],
        r["worst_subject_frozen"]["accuracy"], r["worst_subject_frozen"]["subject"],
        r["worst_subject_adapted"]["accuracy"], r["worst_subject_adapted"]["subject"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(config.models_dir() / "hapt.toml"),
                   help="the model file (default models/hapt.toml)")
    p.add_argument("--split", choices=tuple(SPLITS) + ("cv", "all"), default="all",
                   help="cv: validation, cv2 and cv3 (subjects 1-15 only); all: "
                        "validation, headline and swap")
    p.add_argument("--predict", default="goodness,head",
                   help="comma list of goodness, head")
    p.add_argument("--baselines", default=",".join(DEFAULT_BASELINES),
                   help="comma list of ffkit.learning.baselines names ('' for none)")
    p.add_argument("--save", metavar="DIR", type=Path,
                   help="write each split's bootstrapped weights as DIR/SPLIT.ffw")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    spec = config.load(args.config)
    rec = hapt.load()
    names = tuple(n for n in args.baselines.split(",") if n)
    predicts = tuple(n for n in args.predict.split(",") if n)
    say = (lambda s: None) if args.json else (lambda s: print(s, flush=True))
    splits = {"all": ("validation", "headline", "swap"),
              "cv": ("validation", "cv2", "cv3")}.get(args.split, (args.split,))
    res = {"config": args.config, "splits": {}}
    for s in splits:
        res["splits"][s] = run_split(s, spec, rec, predicts, names, say, args.save)
    if args.split == "cv":
        res["cv"] = cv_means(res["splits"])
        for model, r in res["cv"].items():
            say("%-10s %-22s frozen %.4f adapted %.4f  worst %.3f -> %.3f (15 subjects)" % (
                "cv", model, r["frozen_accuracy"], r["adapted_accuracy"],
                r["worst_frozen"], r["worst_adapted"]))
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
