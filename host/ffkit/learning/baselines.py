"""Float baselines for HAPT under the same features and protocols as the integer FF (issue 4).

Every baseline sees the same 72 integer window features (``hapt.windows``), is bootstrapped
on subjects 1-15 (all sessions), and is then scored per held-out subject with
`ffkit.learning.protocols`: frozen and adapted accuracy on the subject's last session
(`personalise`) and test-then-train accuracy over all its sessions (`prequential`, a fresh
copy of the bootstrapped learner per subject). Settings are in `SETTINGS` and printed with
the results. Learners:

- ``river_softmax``: River ``StandardScaler | SoftmaxRegression`` (default SGD, lr 0.01)
- ``river_ovr_logreg``: River ``StandardScaler | OneVsRestClassifier(LogisticRegression())``
- ``river_arf``: River ``forest.ARFClassifier`` (10 trees, seed 0)
- ``sklearn_mlp``: scikit-learn ``MLPClassifier`` (128, 128), Adam, fit on subjects 1-15
  (features standardised with the bootstrap set's mean and deviation), then ``partial_fit``
  one window at a time
- ``sklearn_mlp_rehearsal``: the same MLP learning through a class-balanced reservoir
  buffer (`FloatRehearsal`, the float twin of ``ffrt.rehearsal``)
- ``float_ff``: a float Forward-Forward net in numpy, the integer model's shape (72
  features + one-hot label overlay, then the layers of models/hapt.toml), ReLU, goodness = mean square activity,
  logistic loss around a threshold, hardest wrong label as the negative, Adam
- ``float_ff_rehearsal``: the float FF through the same rehearsal buffer

Passing integer-FF weights (`run(weights=...)`, ``ffkit baseline --weights``) adds
``int_ff``, ``int_ff_rehearsal`` and ``int_ff_sleep`` (``ffrt`` with the numpy kernels,
bit-identical to a board) under the same protocol; ``int_ff_sleep`` learns awake and
asleep (ffrt.sleep: the [adapt] sleep, else SLEEP_VALIDATED).

The rehearsal rows, float and integer, use one buffer setting: the model file's
``[adapt]`` per_class and replay (`ffkit.config.AdaptSpec`; models/hapt.toml: 16 and 2).
``int_ff_rehearsal`` also takes its lr_shift and prediction from there.
"""

import copy
import dataclasses
import time

import numpy as np

from ffkit.learning import protocols

__all__ = ["SETTINGS", "BASELINES", "QUICK_BASELINES", "run", "FloatFF", "FloatRehearsal",
           "format_table"]

BOOT_SUBJECTS = tuple(range(1, 16))
# the int_ff_sleep row's (every, steps, positives) when [adapt] has no sleep: chosen
# without the test subjects by tools/sleep_validation.py (bootstrap 1-10, subjects 11-15)
SLEEP_VALIDATED = (64, 32, True)
ADAPT_LR_MLP = 1e-4

SETTINGS = {
    "bootstrap_subjects": "1-15, all sessions",
    "features": "72 integer window features (ffrt.features, 0..255)",
    "river_softmax": "StandardScaler | SoftmaxRegression(optimizer=SGD(0.01)), "
                     "2 shuffled passes (seed 0)",
    "river_ovr_logreg": "StandardScaler | OneVsRestClassifier(LogisticRegression("
                        "optimizer=SGD(0.01))), 2 shuffled passes (seed 0)",
    "river_arf": "ARFClassifier(n_models=10, seed=0), 1 shuffled pass (seed 0)",
    "sklearn_mlp": "MLPClassifier((128, 128), relu, adam, learning_rate_init=0.001, "
                   "alpha=1e-4, max_iter=60, random_state=0) on standardised features; "
                   "adaptation: partial_fit one window at a time (adam state continues, "
                   "learning_rate_init lowered to 0.0001)",
    "sklearn_mlp_rehearsal": "sklearn_mlp learning through FloatRehearsal(per_class={pc}, "
                             "replay={rp})",
    "float_ff": "78-{layers} FF (standardised features + one-hot label), relu, goodness "
                "mean(h^2), theta 2.0, hardest negative, length-normalised layer input; "
                "Adam lr 0.001, batch 32, 20 epochs (seed 0); adaptation: one Adam step "
                "per window, lr 0.0001",
    "float_ff_rehearsal": "float_ff learning through FloatRehearsal(per_class={pc}, "
                          "replay={rp})",
    "int_ff": "ffrt FFNet from the given .ffw (numpy kernels), learn_one per window, "
              "the file's lr_shift",
    "int_ff_rehearsal": "int_ff learning through ffrt.rehearsal.Rehearsal(per_class={pc}, "
                        "replay={rp}), lr_shift {lr} while adapting, predicting by {pred} "
                        "(models/hapt.toml [adapt])",
    "int_ff_sleep": "int_ff_rehearsal learning awake and asleep (ffrt.sleep): each window's "
                    "positive phase, {sl_steps} sleep steps ({sl_kind}) after every "
                    "{sl_every} windows ({sl_from})",
    "prequential": "delay 0, every window labelled, a fresh bootstrapped copy per subject",
}

BASELINES = ("river_softmax", "river_ovr_logreg", "river_arf", "sklearn_mlp",
             "sklearn_mlp_rehearsal", "float_ff", "float_ff_rehearsal")
QUICK_BASELINES = ("river_softmax", "float_ff")


# ---- the class-balanced replay buffer, float side ------------------------------------------

class FloatRehearsal:
    """Any learner behind a class-balanced reservoir buffer (per_class per class).

    After each new labelled sample the learner also learns ``replay`` stored ones, taken
    from the classes in turn, as ``ffrt.rehearsal.Rehearsal`` does for the integer net.
    """

    def __init__(self, learner, n_classes=6, per_class=8, replay=1, seed=0):
        self.learner = learner
        self.per_class, self.replay = per_class, replay
        self.buf = [[] for _ in range(n_classes)]
        self.seen = [0] * n_classes
        self.next = 0
        self.rng = np.random.default_rng(seed)

    def predict_one(self, x):
        return self.learner.predict_one(x)

    def learn_one(self, x, y):
        self.learner.learn_one(x, y)
        self.seen[y] += 1
        b = self.buf[y]
        if len(b) < self.per_class:
            b.append(list(x))
        else:
            j = int(self.rng.integers(self.seen[y]))
            if j < self.per_class:
                b[j] = list(x)
        for _ in range(self.replay):
            n = len(self.buf)
            for k in range(n):
                c = (self.next + k) % n
                if self.buf[c]:
                    break
            else:
                return
            self.next = (c + 1) % n
            slot = self.buf[c][int(self.rng.integers(len(self.buf[c])))]
            self.learner.learn_one(slot, c)


# ---- a float Forward-Forward net in numpy ---------------------------------------------------

class FloatFF:
    """A small float FF net with the integer model's shape and label overlay, Adam."""

    def __init__(self, n_features=72, n_classes=6, layers=(128, 128), theta=2.0, lr=1e-3,
                 seed=0):
        rng = np.random.default_rng(seed)
        self.nc, self.theta, self.lr = n_classes, theta, lr
        sizes = (n_features + n_classes,) + tuple(layers)
        self.W = [rng.normal(0, 1 / np.sqrt(a), (a, b)) for a, b in zip(sizes, sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]
        self.m = [np.zeros_like(p) for p in self.W + self.b]
        self.v = [np.zeros_like(p) for p in self.W + self.b]
        self.t = 0
        self.rng = rng
        self.mean, self.std = 0.0, 255.0   # input scaling; `fit` sets the data's

    def _overlay(self, X, labels):
        X = (np.asarray(X, dtype=float) - self.mean) / self.std
        oh = np.zeros((len(X), self.nc))
        oh[np.arange(len(X)), labels] = 1.0
        return np.hstack([X, oh])

    def _goodness(self, Z):
        """Per layer: the layer input, pre-activation and goodness, for rows Z."""
        out, inp = [], Z
        for W, b in zip(self.W, self.b):
            pre = inp @ W + b
            h = np.maximum(pre, 0)
            g = (h * h).mean(axis=1)
            out.append((inp, pre, h, g))
            inp = h / (np.linalg.norm(h, axis=1, keepdims=True) + 1e-6)
        return out

    def goodness_all(self, X):
        X = np.atleast_2d(np.asarray(X, dtype=float))
        n = len(X)
        rows = np.repeat(X, self.nc, axis=0)
        labels = np.tile(np.arange(self.nc), n)
        g = sum(layer[3] for layer in self._goodness(self._overlay(rows, labels)))
        return g.reshape(n, self.nc)

    def predict(self, X):
        return self.goodness_all(X).argmax(axis=1)

    def predict_one(self, x):
        return int(self.predict([x])[0])

    def step(self, X, y, lr=None):
        """One Adam step on a batch: true label positive, hardest wrong label negative."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        y = np.asarray(y, dtype=int).reshape(-1)
        g = self.goodness_all(X)
        g[np.arange(len(y)), y] = -np.inf
        neg = g.argmax(axis=1)
        Z = np.vstack([self._overlay(X, y), self._overlay(X, neg)])
        sign = np.concatenate([np.ones(len(y)), -np.ones(len(y))])
        grads = []
        for inp, pre, h, gl in self._goodness(Z):
            # loss softplus(-sign * (g - theta)); dL/dg = -sign * sigmoid(-sign * (g - theta))
            dg = -sign / (1 + np.exp(np.clip(sign * (gl - self.theta), -50, 50)))
            dpre = dg[:, None] * 2 * h / h.shape[1] * (pre > 0)
            grads.append((inp.T @ dpre / len(Z), dpre.mean(axis=0)))
        gw = [a for a, _ in grads] + [b for _, b in grads]
        params = self.W + self.b
        self.t += 1
        lr = self.lr if lr is None else lr
        b1, b2 = 0.9, 0.999
        for p, gr, m, v in zip(params, gw, self.m, self.v):
            m *= b1
            m += (1 - b1) * gr
            v *= b2
            v += (1 - b2) * gr * gr
            mh = m / (1 - b1 ** self.t)
            vh = v / (1 - b2 ** self.t)
            p -= lr * mh / (np.sqrt(vh) + 1e-8)

    def fit(self, X, y, epochs=20, batch=32, seed=0, standardise=True):
        rng = np.random.default_rng(seed)
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=int)
        if standardise:
            self.mean, self.std = X.mean(axis=0), X.std(axis=0) + 1e-6
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for i in range(0, len(X), batch):
                j = order[i:i + batch]
                self.step(X[j], y[j])
        return self


class FloatFFLearner:
    """FloatFF adapting with one Adam step per window at ``lr``."""

    def __init__(self, ff, lr=1e-4):
        self.ff, self.lr = ff, lr

    def predict_one(self, x):
        return self.ff.predict_one(x)

    def learn_one(self, x, y):
        self.ff.step([x], [y], lr=self.lr)


# ---- scikit-learn and River behind the learner interface -----------------------------------

class MLPLearner:
    def __init__(self, mlp, mean, std):
        self.mlp, self.mean, self.std = mlp, mean, std

    def _z(self, x):
        return ((np.asarray(x, dtype=float) - self.mean) / self.std).reshape(1, -1)

    def predict_one(self, x):
        return int(self.mlp.predict(self._z(x))[0])

    def learn_one(self, x, y):
        self.mlp.partial_fit(self._z(x), [int(y)])


class RiverLearner:
    def __init__(self, model):
        self.model = model

    def predict_one(self, x):
        p = self.model.predict_one(dict(enumerate(float(v) for v in x)))
        return -1 if p is None else int(p)

    def learn_one(self, x, y):
        self.model.learn_one(dict(enumerate(float(v) for v in x)), int(y))


def _river_boot(model, X, y, passes, seed=0, quick=False):
    passes = 1 if quick else passes
    rng = np.random.default_rng(seed)
    rows = X.tolist()
    for _ in range(passes):
        for i in rng.permutation(len(rows)).tolist():
            model.learn_one(dict(enumerate(float(v) for v in rows[i])), int(y[i]))
    return RiverLearner(model)


def _bootstrap(name, X, y, quick=False, adapt=None, layers=(128, 128)):
    """The bootstrapped learner for a baseline name (fit on subjects 1-15).

    ``quick`` (tests only): one River pass, 5 float-FF epochs, 10 MLP iterations.
    ``adapt``: the AdaptSpec whose per_class and replay the rehearsal rows use.
    """
    def rehearsed(learner):
        return FloatRehearsal(learner, per_class=adapt.per_class or 8, replay=adapt.replay)

    if name.startswith("river_"):
        from river import forest, linear_model, multiclass, optim, preprocessing
        if name == "river_softmax":
            m = preprocessing.StandardScaler() | linear_model.SoftmaxRegression(
                optimizer=optim.SGD(0.01))
            return _river_boot(m, X, y, 2, quick=quick)
        if name == "river_ovr_logreg":
            m = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
                linear_model.LogisticRegression(optimizer=optim.SGD(0.01)))
            return _river_boot(m, X, y, 2, quick=quick)
        if name == "river_arf":
            return _river_boot(forest.ARFClassifier(n_models=10, seed=0), X, y, 1)
    if name.startswith("sklearn_mlp"):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        Xf = X.astype(float)
        mean, std = Xf.mean(axis=0), Xf.std(axis=0) + 1e-6
        mlp = MLPClassifier((128, 128), learning_rate_init=1e-3, alpha=1e-4,
                            max_iter=10 if quick else 60, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit((Xf - mean) / std, y)
        mlp._optimizer.learning_rate_init = ADAPT_LR_MLP   # partial_fit reuses this Adam
        learner = MLPLearner(mlp, mean, std)
        return rehearsed(learner) if name.endswith("_rehearsal") else learner
    if name.startswith("float_ff"):
        ff = FloatFF(layers=layers, seed=0).fit(X, y, epochs=5 if quick else 20)
        learner = FloatFFLearner(ff)
        return rehearsed(learner) if name.endswith("_rehearsal") else learner
    raise ValueError("unknown baseline %r" % name)


def _wrapped_copy(learner):
    """fresh() for a bootstrapped learner; rehearsal wrappers start with empty buffers."""
    return lambda: copy.deepcopy(learner)


def evaluate(fresh, rec, subjects, frozen_learner=None):
    t0 = time.perf_counter()
    p = protocols.personalise(fresh, rec, subjects, frozen_learner=frozen_learner)
    q = protocols.prequential(fresh, rec, subjects)
    return {
        "frozen_accuracy": p["frozen_accuracy"],
        "adapted_accuracy": p["adapted_accuracy"],
        "prequential_accuracy": q["accuracy"],
        "worst_subject_frozen": p["worst_subject_frozen"],
        "worst_subject_adapted": p["worst_subject_adapted"],
        "per_subject": {str(s): {"frozen": v["frozen"], "adapted": v["adapted"],
                                 "prequential": q["subjects"][s]}
                        for s, v in p["subjects"].items()},
        "eval_seconds": round(time.perf_counter() - t0, 2),
    }


def run(names=BASELINES, subjects=protocols.TEST_SUBJECTS, rec=None, weights=None,
        log=None, quick=False, spec=None, boot_subjects=BOOT_SUBJECTS):
    """Bootstrap and evaluate each baseline; returns the JSON-shaped result.

    ``boot_subjects``: whose windows (all sessions) bootstrap every learner (default 1-15;
    the integer FF's are those its ``weights`` were trained on, which the caller states).

    ``quick``: shortened bootstraps for tests (see `_bootstrap`), stated in the settings.
    ``spec``: the ModelSpec whose layers the float FF takes and whose [adapt] the
    rehearsal rows take (default models/hapt.toml).
    """
    from ffkit import config
    from ffkit.data import hapt

    if spec is None:
        spec = config.load(config.models_dir() / "hapt.toml")
    adapt = spec.adapt

    t_all = time.perf_counter()
    rec = rec if rec is not None else hapt.load()
    subjects = tuple(int(s) for s in subjects)
    boot_subjects = tuple(int(s) for s in boot_subjects)
    if set(boot_subjects) & set(subjects):
        raise ValueError("the bootstrap and test subjects overlap: %s"
                         % sorted(set(boot_subjects) & set(subjects)))
    boot = hapt.windows(subjects=boot_subjects, recording=rec)
    X, y = np.asarray(boot["X"]), np.asarray(boot["y"]).astype(int)
    models = {}
    for name in names:
        t0 = time.perf_counter()
        learner = _bootstrap(name, X, y, quick, adapt, spec.model.layers)
        boot_s = time.perf_counter() - t0
        r = evaluate(_wrapped_copy(learner), rec, subjects)
        r["bootstrap_seconds"] = round(boot_s, 2)
        models[name] = r
        if log:
            log("%s: %.1f s" % (name, boot_s + r["eval_seconds"]))
    if weights is not None:
        data = bytes(weights)
        plain = protocols.ff_factory(data)
        rehearsed = protocols.adapt_factory(data, adapt)
        sleeping = protocols.adapt_factory(data, dataclasses.replace(
            adapt, sleep=adapt.sleep or SLEEP_VALIDATED)) if adapt.per_class else None
        for name, fresh in (("int_ff", plain), ("int_ff_rehearsal", rehearsed),
                            ("int_ff_sleep", sleeping)):
            if fresh is None:
                continue
            frozen = plain() if name == "int_ff" else None
            r = evaluate(fresh, rec, subjects, frozen_learner=frozen)
            r["bootstrap_seconds"] = 0.0
            models[name] = r
            if log:
                log("%s: %.1f s" % (name, r["eval_seconds"]))
    sl = adapt.sleep or SLEEP_VALIDATED
    fill = {"sl_every": sl[0], "sl_steps": sl[1],
            "sl_kind": "both phases" if sl[2] else "negatives",
            "sl_from": "[adapt] sleep" if adapt.sleep else
            "tools/sleep_validation.py's choice on subjects 11-15",
            "pc": adapt.per_class or 8, "rp": adapt.replay, "pred": adapt.predict,
            "lr": adapt.lr_shift if adapt.lr_shift is not None else "(the file's)",
            "layers": "-".join(str(n) for n in spec.model.layers)}
    settings = {k: v.format(**fill) for k, v in SETTINGS.items()
                if k in models or k in ("bootstrap_subjects", "features", "prequential")}
    settings["bootstrap_subjects"] = _ranges(boot_subjects) + ", all sessions"
    settings["adapt_from"] = spec.source
    settings["test_subjects"] = list(subjects)
    if quick:
        settings["quick"] = ("shortened bootstraps for tests: 1 River pass, 5 float-FF "
                             "epochs, 10 MLP iterations; not the reported figures")
    settings["n_bootstrap_windows"] = int(len(y))
    return {
        "models": models,
        "previous_label_accuracy": protocols.previous_label_accuracy(rec, subjects),
        "settings": settings,
        "seconds": round(time.perf_counter() - t_all, 1),
    }


def _ranges(subjects):
    """'1-10, 12' for (1, ..., 10, 12)."""
    out, run_ = [], []
    for s in sorted(subjects):
        if run_ and s != run_[-1] + 1:
            out.append(run_)
            run_ = []
        run_.append(s)
    if run_:
        out.append(run_)
    return ", ".join("%d-%d" % (r[0], r[-1]) if len(r) > 1 else str(r[0]) for r in out)


def format_table(result):
    lines = ["%-24s %7s %8s %8s %12s %12s %7s" % (
        "model", "frozen", "adapted", "preq", "worst frozen", "worst adapt", "time s")]
    for name, r in result["models"].items():
        wf, wa = r["worst_subject_frozen"], r["worst_subject_adapted"]
        lines.append("%-24s %7.4f %8.4f %8.4f %7.4f (%2d) %7.4f (%2d) %7.1f" % (
            name, r["frozen_accuracy"], r["adapted_accuracy"], r["prequential_accuracy"],
            wf["accuracy"], wf["subject"], wa["accuracy"], wa["subject"],
            r["bootstrap_seconds"] + r["eval_seconds"]))
    lines.append("%-24s %7s %8s %8.4f" % ("previous window's label", "", "",
                                         result["previous_label_accuracy"]))
    lines.append("")
    lines.append("settings:")
    for k, v in result["settings"].items():
        lines.append("  %s: %s" % (k, v))
    lines.append("total %.1f s" % result["seconds"])
    return lines
