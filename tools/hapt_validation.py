"""Check the HAPT model choice without the test subjects (README, "How the settings were chosen").

models/hapt.toml was picked by scores on subjects 16-30, the ones the README reports. This
script repeats the comparison where those subjects play no part: bootstrap on subjects
1-10, personalise subjects 11-15 (frozen vs adapted on each one's last session, the
`[adapt]` rehearsal of models/hapt.toml), for the chosen model and the 78-128-128 one it
replaced, predicting by goodness and by the linear head. About 6 minutes on one core.

    python tools/hapt_validation.py [--json]
"""

import argparse
import dataclasses
import json
import sys

from ffrt import ffw
from ffrt.net import FFNet

from ffkit import config, hapt, kernels_np, protocols
from ffkit.train import train_spec

BOOT = tuple(range(1, 11))
VALIDATE = tuple(range(11, 16))
VARIANTS = {
    "78-128-128, 8 epochs (replaced)": {
        "model": {"layers": [128, 128], "theta": [100000, 100000]},
        "train": {"epochs": 8, "lr_shift_schedule": [[0, 23], [3, 24], [5, 25], [7, 26]]}},
    "78-192-64, 12 epochs (models/hapt.toml)": {},
}


def run(say=print):
    import tomllib

    rec = hapt.load()
    tr = hapt.windows(subjects=BOOT, recording=rec)
    path = config.models_dir() / "hapt.toml"
    out = {}
    for name, over in VARIANTS.items():
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        for table in ("model", "train"):
            doc[table].update(over.get(table, {}))
        spec = config.parse(doc, str(path) + " + " + json.dumps(over))
        net = FFNet(spec.model, kernels=kernels_np)
        train_spec(net, spec, tr["X"], tr["y"], progress=False)
        data = bytes(ffw.encode(net))
        for predict in ("goodness", "head"):
            fresh = protocols.adapt_factory(data, dataclasses.replace(spec.adapt,
                                                                      predict=predict))
            r = protocols.personalise(fresh, rec, VALIDATE)
            row = {k: r[k] for k in ("frozen_accuracy", "adapted_accuracy",
                                     "worst_subject_frozen", "worst_subject_adapted")}
            out["%s, by %s" % (name, predict)] = row
            say("%-52s frozen %.4f adapted %.4f (worst %.3f -> %.3f)" % (
                "%s, by %s" % (name, predict), row["frozen_accuracy"],
                row["adapted_accuracy"], row["worst_subject_frozen"]["accuracy"],
                row["worst_subject_adapted"]["accuracy"]))
    return {"bootstrap_subjects": list(BOOT), "validation_subjects": list(VALIDATE),
            "results": out}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    res = run(say=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
