"""Choose the sleep settings (ffrt.sleep) without the test subjects, then report them once.

Validation, as tools/hapt_splits.py --split validation does it: models/hapt.toml
bootstrapped on subjects 1-10 (ffkit.learning.train.train_spec), personalisation (ffkit.learning.protocols.personalise: frozen vs
adapted on each subject's last session, by goodness) of subjects 11-15 with the file's
[adapt] rehearsal (16 per class, lr_shift 27): learning interleaved (both phases per
window, replay 2) against learning awake and asleep for a grid of (every N windows
learnt, M sleep steps, positives in sleep or not), and a control that learns awake and
never sleeps (the positive phase alone). The choice is the least learning work among
the settings whose adapted mean is within TIE of the best one's. Then, once, subjects
16-30 with the shipped models/hapt.ffw: interleaved, the chosen setting, the best
setting whose sleep learns negatives only (chosen the same way among those), and the
control.

Work: the kernels are wrapped to count multiply-accumulates while the learner adapts
(prediction excluded): forward MACs (fc_relu, the head's scores, every label's pass of a
hardest negative) and weight-update MACs (update, head_update), per adapted window, in
units of one forward pass of the net with a label overlaid (sum of n_in * n_out over
the layers).

    python tools/sleep_validation.py [--weights BOOT.ffw] [--json]

--weights: the bootstrap on subjects 1-10 is read from that file if it exists, else
trained (about 2 minutes) and written there. About 1 minute more for the grid.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ffrt import ffw_ram
from ffrt.net import FFNet

from ffkit import config

from ffkit.data import hapt

from ffkit.learning import protocols

from ffkit.twins import kernels_np
from ffkit.learning.train import train_spec

BOOT = tuple(range(1, 11))
VALIDATE = tuple(range(11, 16))
TEST = protocols.TEST_SUBJECTS
# (every N windows learnt, M sleep steps, positives): M / N in 1/2, 1, 2, 3
GRID = [(n, m, pos) for pos in (False, True) for n in (1, 4, 16, 64)
        for m in (n // 2, n, 2 * n, 3 * n) if m]
AWAKE_ONLY = (0, 0, False)   # the control: the positive phase alone, never a sleep
TIE = 0.002                  # adapted means this close to the best count as a tie


class Counting:
    """kernels_np, counting the MACs of every call (forward and update apart)."""

    def __init__(self, k=kernels_np):
        self.k = k
        self.fwd = 0
        self.upd = 0
        if hasattr(k, "goodness_labels"):  # FFNet looks it up: only where k has it
            self.goodness_labels = self._goodness_labels

    def __getattr__(self, name):
        return getattr(self.k, name)

    def fc_relu(self, w, x, h, n_in, n_out, shift):
        self.fwd += n_in * n_out
        return self.k.fc_relu(w, x, h, n_in, n_out, shift)

    def fc_acc(self, w, x, acc, n_in, n_out):
        self.fwd += n_in * n_out
        return self.k.fc_acc(w, x, acc, n_in, n_out)

    def label_relu(self, w, acc, h, p):
        self.fwd += p[1] * p[5]  # n_out rows of the label's columns
        return self.k.label_relu(w, acc, h, p)

    def update(self, w, x, h, rng, p):
        self.upd += p[0] * p[1]
        return self.k.update(w, x, h, rng, p)

    def head_scores(self, wh, a, n_in, n_out, scores):
        self.fwd += n_in * n_out
        return self.k.head_scores(wh, a, n_in, n_out, scores)

    def head_update(self, wh, a, rng, p):
        self.upd += p[0]
        return self.k.head_update(wh, a, rng, p)

    def _goodness_labels(self, net, out):  # every label's pass at once (a host twin's)
        self.fwd += net.cfg.n_classes * sum(a * b for a, b in zip(net.n_in, net.cfg.layers))
        return self.k.goodness_labels(net, out)


def evaluate(weights, adapt, rec, subjects):
    """personalise with a counting learner: the result plus the work per adapted window."""
    k = Counting()
    fresh = protocols.adapt_factory(weights, adapt, kernels=k)
    frozen = protocols.adapt_factory(weights, adapt)()   # its predictions are not counted
    r = protocols.personalise(fresh, rec, subjects, frozen_learner=frozen)
    # personalise also predicts the test session with each adapted learner: take it out
    cfg = ffw_ram.decode_config(weights)
    net = FFNet(cfg, init=False)
    one = sum(a * b for a, b in zip(net.n_in, cfg.layers))
    n_test = sum(v["n_test"] for v in r["subjects"].values())
    n_adapt = sum(v["n_adapt"] for v in r["subjects"].values())
    fwd = k.fwd - n_test * cfg.n_classes * one
    return {"frozen_accuracy": r["frozen_accuracy"], "adapted_accuracy": r["adapted_accuracy"],
            "worst_subject_frozen": r["worst_subject_frozen"],
            "worst_subject_adapted": r["worst_subject_adapted"],
            "per_subject_adapted": {str(s): v["adapted"] for s, v in r["subjects"].items()},
            "forward_passes_per_window": round(fwd / n_adapt / one, 2),
            "update_passes_per_window": round(k.upd / n_adapt / one, 2)}


def name_of(sleep):
    if sleep is None:
        return "interleaved"
    if sleep == AWAKE_ONLY:
        return "awake, never asleep"
    return "sleep %d:%d%s" % (sleep[0], sleep[1], ":both" if sleep[2] else "")


def bootstrap(path, say):
    if path is not None and Path(path).is_file():
        return Path(path).read_bytes()
    spec = config.load(config.models_dir() / "hapt.toml")
    tr = hapt.windows(subjects=BOOT)
    net = FFNet(spec.model, kernels=kernels_np)
    say("bootstrapping models/hapt.toml on subjects 1-10 (%d windows) ..." % len(tr["y"]))
    train_spec(net, spec, tr["X"], tr["y"], progress=False)
    data = bytes(ffw_ram.encode(net))
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _line(name, r):
    return "%-22s frozen %.4f adapted %.4f worst %.3f (%d) -> %.3f (%d)  work %5.2f fwd + " \
           "%4.2f upd passes/window" % (
               name, r["frozen_accuracy"], r["adapted_accuracy"],
               r["worst_subject_frozen"]["accuracy"], r["worst_subject_frozen"]["subject"],
               r["worst_subject_adapted"]["accuracy"], r["worst_subject_adapted"]["subject"],
               r["forward_passes_per_window"], r["update_passes_per_window"])


def run(weights_path=None, say=print):
    rec = hapt.load()
    spec = config.load(config.models_dir() / "hapt.toml")
    base = dataclasses.replace(spec.adapt, sleep=None)
    boot = bootstrap(weights_path, say)
    val = {}
    say("validation: bootstrapped on 1-10, personalised 11-15, [adapt] %s" % (base,))
    for sleep in [None, AWAKE_ONLY] + GRID:
        r = evaluate(boot, dataclasses.replace(base, sleep=sleep), rec, VALIDATE)
        val[name_of(sleep)] = dict(r, sleep=list(sleep) if sleep else None)
        say(_line(name_of(sleep), r))
    best = choose(GRID, val)
    best_neg = choose([s for s in GRID if not s[2]], val)
    say("chosen on 11-15: %s (negatives only: %s)" % (name_of(best), name_of(best_neg)))
    w = (config.models_dir() / "hapt.ffw").read_bytes()
    test = {}
    say("test, once: models/hapt.ffw (bootstrapped on 1-15), subjects 16-30")
    for sleep in (None, best, best_neg, AWAKE_ONLY):
        r = evaluate(w, dataclasses.replace(base, sleep=sleep), rec, TEST)
        test[name_of(sleep)] = dict(r, sleep=list(sleep) if sleep else None)
        say(_line(name_of(sleep), r))
    return {"bootstrap_subjects": list(BOOT), "validation_subjects": list(VALIDATE),
            "test_subjects": list(TEST), "adapt": {"per_class": base.per_class,
                                                   "replay": base.replay,
                                                   "lr_shift": base.lr_shift,
                                                   "predict": base.predict},
            "tie": TIE, "validation": val, "chosen": list(best),
            "chosen_negatives_only": list(best_neg), "test": test}


def work(r):
    return r["forward_passes_per_window"] + r["update_passes_per_window"]


def choose(settings, val):
    """The least work among settings whose adapted mean is within TIE of the best."""
    top = max(val[name_of(s)]["adapted_accuracy"] for s in settings)
    near = [s for s in settings if val[name_of(s)]["adapted_accuracy"] >= top - TIE]
    return min(near, key=lambda s: (work(val[name_of(s)]), settings.index(s)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", metavar="BOOT.ffw",
                   help="the 1-10 bootstrap: read if it exists, else trained and written")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    res = run(args.weights, say=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
