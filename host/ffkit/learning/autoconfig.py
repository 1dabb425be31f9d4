"""A model file for data that has none: ``ffkit train --data FILE --out W.ffw`` without --config.

What it decides, and from what (the training split only; the test split has no say in
any of it, so a test accuracy measured afterwards is still a held-out one):

- `infer`: n_features and n_classes from the training split; in_max from it too (255 for
  quantised features), and the largest in_scale with ``in_max * in_scale <= 255``, so
  every input reaches the first layer on the same 0..255 scale as the label overlay.
- `candidates`: a short list of model dicts (layers, epochs, lr_shift_schedule, and any
  other Config field or [train] key); act_shift and theta, when a dict leaves them out,
  come from `calibrate_act_shift` and `theta_for`. The list is one function, meant to be
  edited as experiments show what works.
- `calibrate_act_shift`: the shipped act_shift (8, 7) suits 74 inputs of 0..240; with
  794 inputs the first layer would saturate from the start and FF learns little. Per
  layer, in order, the shift that gives the fresh net's pre-activations on ~256 training
  rows the spread the hand-tuned models have (`SPREAD_TARGET`).
- `choose`: each candidate trains with ``ffkit.learning.train.train`` (the board's integer rule)
  on the fitting rows and is scored by goodness accuracy (``FFNet.predict_one``) on the
  validation rows: the data's own validation split when it has one (MNIST's), else a
  stratified 20% carved from the training split (random_state=0). Validation runs are
  capped at `VALIDATION_STEPS` learn steps (fewer epochs, the schedule compressed), and
  score at most `VALIDATION_ROWS` rows, so big data stays quick. The winner is the
  model; the caller retrains it on the whole training split with its full settings.
- `model_file_text`: the chosen model as a TOML model file (ffkit.config reads it back to
  the same Config and [train] settings), with comments saying how it was made, every
  candidate's validation score, and the data's quantiser in ``[input]``.

>>> from ffkit.data.datasets import Dataset
>>> X = np.array([[0, 3], [1, 2], [3, 0], [2, 1]] * 5)
>>> d = Dataset("toy", X, np.array([0, 0, 1, 1] * 5), X[:4], np.array([0, 0, 1, 1]), "-")
>>> infer(d)
{'n_features': 2, 'n_classes': 2, 'in_max': 3, 'in_scale': 85}
>>> theta_for((128, 64)), lr_shift_schedule(4)
((100096, 50048), ((0, 23), (1, 24), (2, 25), (3, 26)))
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from ffrt.model import FIELDS, NEG_MODES, Config
from ffrt.net import FFNet
from ffrt.schedule import value_at

from ffkit.config import ModelSpec, check_schedule, check_theta_schedule
from ffkit.data.datasets import QUANT_MAX, DataError, as_labels, as_rows
from ffkit.learning.evaluate import default_kernels
from ffkit.progress import progress_bar

__all__ = ["infer", "theta_for", "lr_shift_schedule", "candidates", "label_repeat_for",
           "calibrate_act_shift",
           "build_config", "choose", "AutoResult", "model_file_text", "THETA_PER_UNIT",
           "TRAIN_STEPS", "VALIDATION_STEPS", "VALIDATION_ROWS", "CALIBRATION_ROWS",
           "SPREAD_TARGET"]

THETA_PER_UNIT = 782      # theta = 782 * width: an RMS activity of about 28 (sqrt(782));
#                           the shipped models' 100000 for 128 units
TRAIN_STEPS = 40000       # learn steps the final training aims at (epochs = this // rows,
#                           1..16): digits' 1,347 rows get 16 epochs, MNIST's 10,000 get 4
VALIDATION_STEPS = 8000   # at most this many learn steps per candidate while choosing
VALIDATION_ROWS = 2000    # at most this many validation rows scored per candidate
CALIBRATION_ROWS = 256    # training rows whose pre-activation spread sets act_shift
SPREAD_TARGET = (40, 110)  # that spread, >> act_shift, in the first layer and the others
VALIDATION_TEXT = "stratified 20% of the training split, random_state=0"

_TRAIN_KEYS = ("epochs", "shuffle_seed", "lr_shift_schedule", "theta_schedule")


def infer(data, in_max=None):
    """The data's shape and input range, from the training split only.

    ``in_max``: given instead of measured (255 behind a front end, whose outputs span
    0..255 whatever the training split shows).
    """
    X = np.asarray(data.X_train)
    y = np.asarray(data.y_train)
    if in_max is not None:
        pass
    elif data.quantiser is not None:
        in_max = QUANT_MAX
    else:
        lo, in_max = int(X.min()), int(X.max())
        if lo < 0 or in_max > QUANT_MAX:
            raise DataError("%s has feature values in %d..%d; the engine takes 0..255 "
                            "(ffkit.data.datasets.quantise maps them)" % (data.name, lo, in_max))
        in_max = max(in_max, 1)
    n_classes = len(data.classes) if data.classes is not None else int(y.max()) + 1
    return {"n_features": int(X.shape[1]), "n_classes": max(n_classes, 2),
            "in_max": in_max, "in_scale": QUANT_MAX // in_max}


def theta_for(layers):
    """theta per layer: `THETA_PER_UNIT` * width."""
    return tuple(THETA_PER_UNIT * w for w in layers)


def lr_shift_schedule(epochs, start=23, stop=27):
    """lr_shift rising from ``start`` to ``stop`` (each step a half of the one before) in
    equal parts of the run: about digits' hand-made schedule, stretched to ``epochs``."""
    out = []
    for e in range(epochs):
        v = min(stop, start + (stop - start + 1) * e // epochs)
        if not out or out[-1][1] != v:
            out.append((e, v))
    return tuple(out)


def candidates(data):
    """The models tried, as dicts: Config fields (layers, act_shift, theta, ...) and
    [train] keys (epochs, lr_shift_schedule, ...). act_shift and theta left out are
    calibrated (`calibrate_act_shift`, `theta_for`); everything else not given is
    ffrt.model's default (the digits model's). Edit freely: the first of the best
    validation scores wins, so put the cheaper model first."""
    n = len(data.y_train)
    epochs = max(1, min(16, TRAIN_STEPS // max(n, 1)))
    sched = lr_shift_schedule(epochs)
    rep = label_repeat_for(data.X_train.shape[1])
    return [
        {"layers": (64, 64), "epochs": epochs, "lr_shift_schedule": sched,
         "label_repeat": rep},
        {"layers": (128, 128), "epochs": epochs, "lr_shift_schedule": sched,
         "label_repeat": rep},
        {"layers": (256, 128), "epochs": epochs, "lr_shift_schedule": sched,
         "label_repeat": rep},
    ]


def label_repeat_for(n_features):
    """How many times to overlay the one-hot label: one copy per 48 features, 1..16.

    With one copy the label is one input among hundreds on a wide input and hardly moves
    a unit, so goodness barely depends on it (MNIST's 784 pixels, 128-128, 6 epochs, by
    goodness on its validation split: 0.912 with one copy, 0.931 with eight; 16 copies
    and 10 epochs: 0.939). On 64-78 features one copy is best or as good: digits' 5-fold
    cross-validation gives 0.970 with one, 0.973 with two; HAPT with four scored below one
    on its validation subjects (adapted 0.958 against 0.962).

    >>> label_repeat_for(64), label_repeat_for(196), label_repeat_for(784)
    (1, 4, 16)
    """
    return max(1, min(16, n_features // 48))


def _split_candidate(cand):
    known = {name for name, _ in FIELDS}
    model = {k: v for k, v in cand.items() if k in known}
    train = {k: v for k, v in cand.items() if k in _TRAIN_KEYS}
    unknown = sorted(set(cand) - set(model) - set(train))
    if unknown:
        raise ValueError("candidate has unknown key(s): " + ", ".join(unknown))
    return model, train


def _mean_goodness(net, rows, labels):
    # goodness_of sums the layers from goodness_from on; the probe net's last layer is
    # its goodness_from, so this is that layer's goodness alone
    return sum(net.goodness_of(x, y) for x, y in zip(rows, labels)) / len(rows)


def calibrate_act_shift(cfg, X, y, kernels=None, rows=CALIBRATION_ROWS):
    """act_shift per layer (a tuple) for Config ``cfg``'s fresh weights on data (X, y).

    Layer by layer, in order (layer l's input comes from layers 0..l-1 with the shifts
    already chosen): the shift that brings the spread (standard deviation over ``rows``
    training rows, a seeded sample, each with its true label overlaid, and over units) of
    the layer's pre-activations ``sum_j W[i, j] x[j]`` to `SPREAD_TARGET` activity units:
    ``round(log2(spread / target))``. The fresh weights are uniform in +-init_range, so the
    spread grows with the square root of the fan-in and with the input's size; the
    targets are those of the hand-tuned digits model (74 inputs of 0..240: (8, 7)). HAPT
    (78 inputs of 0..255) gets (8, 7) too, and MNIST's 794 inputs (10, 7), the best of
    the first-layer shifts 9, 10 and 11 tried on its validation split. Layers after the first read length-normalised activities (length
    norm_target), whatever the data, so their shift hardly depends on it.
    """
    kernels = kernels if kernels is not None else default_kernels()
    X = np.asarray(X)
    pick = np.random.RandomState(0).permutation(len(X))[:rows]
    xs, ys = as_rows(X[pick]), as_labels(np.asarray(y)[pick])
    net = FFNet(Config(**cfg.as_dict()), kernels=kernels)  # the weights cfg starts with
    shifts = list(cfg.act_shift)
    for l in range(len(cfg.layers)):
        n_in, n_out = net.n_in[l], cfg.layers[l]
        inputs = np.zeros((len(xs), n_in), dtype=np.float64)
        for r, (x, t) in enumerate(zip(xs, ys)):
            net.goodness_of(x, t)  # a pass with the shifts chosen so far
            inputs[r] = np.frombuffer(bytes(net.layer_input(l)), dtype=np.uint8)
        W = np.frombuffer(bytes(net.weights[l]), dtype=np.uint8).reshape(n_out, n_in)
        acc = inputs @ (W.astype(np.float64) - 128.0).T
        spread = float(acc.std())
        target = SPREAD_TARGET[0 if l == 0 else 1]
        s = int(round(np.log2(spread / target))) if spread > 0 else 0
        shifts[l] = max(0, min(24, s))
        net.cfg.act_shift = tuple(shifts)
    return tuple(shifts)


def build_config(cand, shape, X, y, kernels=None):
    """(Config, [train] dict) of candidate ``cand`` for data of ``shape`` (`infer`),
    calibrating act_shift on (X, y) when the candidate does not give it."""
    model, train = _split_candidate(cand)
    kw = dict(shape)
    kw.update(model)
    layers = tuple(kw.get("layers", dict(FIELDS)["layers"]))
    kw["layers"] = layers
    kw.setdefault("theta", theta_for(layers))
    if isinstance(kw.get("neg_mode"), str):
        kw["neg_mode"] = NEG_MODES.index(kw["neg_mode"])
    calibrate = "act_shift" not in kw
    if calibrate:
        kw["act_shift"] = (0,) * len(layers)
    cfg = Config(**kw)
    if calibrate:
        cfg = Config(**dict(cfg.as_dict(), act_shift=calibrate_act_shift(cfg, X, y, kernels)))
    return cfg, train


def _compress(schedule, epochs, to_epochs):
    """A schedule over ``epochs`` squeezed into ``to_epochs`` (the first value wins when
    two entries land in one epoch)."""
    out = []
    for at, v in schedule:
        e = at * to_epochs // max(epochs, 1)
        if e < to_epochs and (not out or out[-1][0] != e):
            out.append((e, v))
    return tuple(out)


@dataclass
class AutoResult:
    """What `choose` found: the model file's contents and how each candidate scored."""

    spec: ModelSpec
    chosen: int                 # index into scores
    scores: list                # one dict per candidate (its settings and val. accuracy)
    validation: str             # which rows scored the candidates
    n_fit: int                  # rows the candidates trained on
    n_validation: int           # rows they were scored on
    seconds: float
    notes: list = field(default_factory=list)

    def as_json(self):
        return {"candidates": self.scores, "chosen": self.chosen,
                "validation": self.validation, "n_fit": self.n_fit,
                "n_validation": self.n_validation, "seconds": round(self.seconds, 3)}


def _progress_bar(total, progress):
    """Candidates done, on stderr and only when it is a terminal (as ffkit.learning.train's bar,
    which shows each candidate's training below it)."""
    return progress_bar(total, "choosing a model", "candidate", enabled=progress)


def _fit_and_validation(data):
    """(X_fit, y_fit, X_val, y_val, text): the data's validation split, else a
    stratified 80/20 split of the training split (random_state=0)."""
    if data.X_valid is not None:
        return (data.X_train, data.y_train, data.X_valid, data.y_valid,
                "the data set's own validation split")
    from sklearn.model_selection import train_test_split

    X, y = np.asarray(data.X_train), np.asarray(data.y_train)
    try:
        Xf, Xv, yf, yv = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
        text = VALIDATION_TEXT
    except ValueError:  # a class with one sample: no stratified split exists
        Xf, Xv, yf, yv = train_test_split(X, y, test_size=0.2, random_state=0)
        text = "20% of the training split, random_state=0 (not stratified: a class has " \
               "a single sample)"
    return Xf, yf, Xv, yv, text


def choose(data, kernels=None, progress=True, cands=None, in_max=None,
           validation_steps=VALIDATION_STEPS, validation_rows=VALIDATION_ROWS):
    """Train each candidate on the fitting rows, score it on the validation rows, and
    return an `AutoResult` whose spec is the best one (not trained: its ``epochs`` and
    schedule are for the whole training split). Uses nothing of ``data``'s test split.

    ``cands``: the candidate dicts (default `candidates(data)`); ``in_max``: see `infer`;
    ``kernels``: default ffkit's host kernels (bit-identical to the board's).
    """
    from ffkit.learning.train import train

    t0 = time.perf_counter()
    kernels = kernels if kernels is not None else default_kernels()
    shape = infer(data, in_max)
    cands = candidates(data) if cands is None else cands
    if not cands:
        raise ValueError("no candidates")
    Xf, yf, Xv, yv, text = _fit_and_validation(data)
    Xv, yv = np.asarray(Xv)[:validation_rows], np.asarray(yv)[:validation_rows]
    n_fit_rows = min(len(yf), validation_steps)
    Xf, yf = np.asarray(Xf)[:n_fit_rows], np.asarray(yf)[:n_fit_rows]
    scores, configs = [], []
    shifts = {}  # calibration per (layers, theta, ...): candidates often share one
    with _progress_bar(len(cands), progress) as bar:
        for i, cand in enumerate(cands):
            t1 = time.perf_counter()
            model, _ = _split_candidate(cand)
            key = repr(sorted((k, v) for k, v in model.items()))
            if key in shifts and "act_shift" not in model:
                cand = dict(cand, act_shift=shifts[key])
            cfg, tr = build_config(cand, shape, Xf, yf, kernels)
            shifts.setdefault(key, cfg.act_shift)
            epochs = int(tr.get("epochs", 10))
            sched = check_schedule(tr.get("lr_shift_schedule", ()))
            theta_sched = check_theta_schedule(tr.get("theta_schedule", ()), cfg)
            v_epochs = max(1, min(epochs, validation_steps // max(len(yf), 1)))
            net = FFNet(Config(**cfg.as_dict()), kernels=kernels)
            bar.set_postfix_str("layers %s" % "-".join(str(w) for w in cfg.layers))
            train(net, Xf, yf, epochs=v_epochs, shuffle_seed=int(tr.get("shuffle_seed", 0)),
                  lr_shift_schedule=_compress(sched, epochs, v_epochs),
                  theta_schedule=_compress(theta_sched, epochs, v_epochs), progress=progress)
            rows, labels = as_rows(Xv), as_labels(yv)
            acc = sum(net.predict_one(r) == t for r, t in zip(rows, labels)) / len(rows)
            configs.append((cfg, tr, epochs, sched, theta_sched))
            scores.append({
                "index": i, "layers": list(cfg.layers), "act_shift": list(cfg.act_shift),
                "theta": list(cfg.theta), "epochs": epochs,
                "lr_shift_schedule": [list(e) for e in sched],
                "validation_epochs": v_epochs, "validation_steps": v_epochs * len(yf),
                "validation_accuracy": round(acc, 4),
                "seconds": round(time.perf_counter() - t1, 3),
            })
            bar.update(1)
    chosen = max(range(len(scores)), key=lambda i: (scores[i]["validation_accuracy"], -i))
    cfg, tr, epochs, sched, theta_sched = configs[chosen]
    if sched:  # the model file states the rate the schedule ends at (what a board keeps)
        cfg = Config(**dict(cfg.as_dict(), lr_shift=value_at(sched, epochs - 1, cfg.lr_shift)))
    spec = ModelSpec(model=cfg, source="<autoconfig>", epochs=epochs,
                     shuffle_seed=int(tr.get("shuffle_seed", 0)), lr_shift_schedule=sched,
                     theta_schedule=theta_sched, quantiser=data.quantiser,
                     classes=data.classes)
    return AutoResult(spec, chosen, scores, text, len(yf), len(yv),
                      time.perf_counter() - t0)


def model_file_text(auto, data, source, dataset=None):
    """The chosen model as a commented TOML model file (see ffkit.config.dumps).

    ``source``: how the data was given (a path or a data set name), for the comments;
    ``dataset``: a built-in data set's name, written as ``[data] dataset``.
    """
    from ffkit.config import dumps

    lines = [
        "Generated by `ffkit train` (ffkit.learning.autoconfig) for %s: no model file was given." %
        source,
        "Data: %s; %d training rows (%s)%s." % (
            data.name, len(data.y_train), data.split,
            "; features quantised to 0..255 by [input] (fitted on the training split)"
            if data.quantiser is not None else ""),
        "Chosen on %s: trained on %d rows, scored by goodness accuracy on %d rows "
        "(the test split was not used)." % (auto.validation, auto.n_fit, auto.n_validation),
    ]
    for s in auto.scores:
        lines.append("  candidate %d: layers %s, act_shift %s, %d epoch(s) (%d in "
                     "validation): validation accuracy %.4f%s"
                     % (s["index"], s["layers"], s["act_shift"], s["epochs"],
                        s["validation_epochs"], s["validation_accuracy"],
                        "  <- chosen" if s["index"] == auto.chosen else ""))
    lines += [
        "The final model was trained on the whole training split with the settings below.",
        "You may edit this file and retrain: ffkit train --config THIS_FILE --data ... "
        "--out W.ffw",
    ]
    return dumps(auto.spec, comment="\n".join(lines), dataset=dataset)
