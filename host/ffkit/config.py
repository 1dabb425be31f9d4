"""Model files ``models/NAME.toml``: the model's Config, how to train it, on which data.

Three tables::

    [model]   # ffrt.model.Config fields; lists become tuples,
              # neg_mode may be "hardest" / "random" / "mix" (or 1 / 0 / 2)
    [train]   # epochs (int), shuffle_seed (int),
              # lr_shift_schedule = [[epoch, lr_shift], ...]: from that epoch on (0-based)
              # cfg.lr_shift is that value; the last one reached stays in the saved model;
              # theta_schedule = [[epoch, [theta per layer]], ...] likewise for cfg.theta
    [data]    # dataset = "digits" (a name that ffkit.datasets.load knows)
    [adapt]   # how a board keeps learning after bootstrap (HAPT personalisation, stream):
              # per_class (rehearsal samples kept per class, 0 = none), replay (stored
              # samples learnt after each new one), lr_shift (used while adapting; absent:
              # the trained model's), predict = "goodness" | "head",
              # lr_shift_schedule / theta_schedule = [[windows learnt, value], ...]
              # (ffrt.schedule: counted from the board's last reset, applied by ffrt.live),
              # guard = {every, patience, max_pinned_q8, save_every} (ffrt.guard: roll back
              # to the newest checkpoint when learning saturates or collapses)

Unknown keys are refused by name, so a typo does not silently fall back to a default.

>>> spec = load(models_dir() / "digits.toml")
>>> spec.model.layers, spec.dataset
((128, 128), 'digits')
>>> parse({"model": {"n_features": 4, "n_classes": 2, "in_max": 15, "neg_mode": "random"}},
...       "inline").model.neg_mode
0
"""

from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package (not a requirement)
    import tomli as tomllib

from ffrt.model import FIELDS, NEG_MODES, Config
from ffrt.schedule import check, value_at

import ffkit
from ffkit import FFKitError


class ConfigError(FFKitError, ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


_TRAIN_KEYS = ("epochs", "shuffle_seed", "lr_shift_schedule", "theta_schedule",
               "head_epochs_control")
_DATA_KEYS = ("dataset",)
_ADAPT_KEYS = ("per_class", "replay", "lr_shift", "predict", "lr_shift_schedule",
               "theta_schedule", "guard")
_TABLES = ("model", "train", "data", "adapt")
PREDICT_MODES = ("goodness", "head")


@dataclass(frozen=True)
class AdaptSpec:
    """How a board learns on after bootstrap: rehearsal buffer, learning rate, prediction."""

    per_class: int = 0          # rehearsal samples kept per class; 0: plain learn_one
    replay: int = 1             # stored samples learnt after each new labelled one
    lr_shift: int | None = None  # None: the model's own
    predict: str = "goodness"   # "goodness" (FFNet.predict_one) or "head" (predict_head)
    lr_shift_schedule: tuple = ()  # ((windows learnt, lr_shift), ...), ffrt.schedule
    theta_schedule: tuple = ()     # ((windows learnt, (theta per layer)), ...)
    guard: tuple | None = None     # ffrt.guard.Guard's (every, patience, max_pinned_q8,
    #                                save_every); None: no guard rails


@dataclass
class ModelSpec:
    """A parsed model file: the engine Config plus training and data settings."""

    model: Config
    source: str = "<defaults>"          # the file it came from
    epochs: int = 10
    shuffle_seed: int = 0
    lr_shift_schedule: tuple = ()       # ((epoch, lr_shift), ...), epochs ascending
    theta_schedule: tuple = ()          # ((epoch, (theta per layer)), ...)
    dataset: str | None = None
    extra: dict = field(default_factory=dict)  # accepted but unused keys (head_epochs_control)
    adapt: AdaptSpec = AdaptSpec()


def models_dir():
    """The repository's ``models/`` folder, found from the package (an editable install)."""
    return Path(ffkit.__file__).resolve().parents[2] / "models"


def default_model_file(name):
    """``models/NAME.toml`` if it exists, else None."""
    p = models_dir() / (name + ".toml")
    return p if p.is_file() else None


def load(path):
    """Read and validate a model file; raises ConfigError naming the file and the field."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("%s is not valid TOML: %s" % (path, e)) from None
    return parse(doc, str(path))


def parse(doc, source="<dict>"):
    """Build a ModelSpec from a TOML document already read into a dict."""
    def bad(msg):
        return ConfigError("%s: %s" % (source, msg))

    unknown = sorted(set(doc) - set(_TABLES))
    if unknown:
        raise bad("unknown table(s) " + ", ".join("[%s]" % t for t in unknown))
    if "model" not in doc:
        raise bad("no [model] table")
    model = _model_config(doc["model"], bad)

    train = doc.get("train", {})
    unknown = sorted(set(train) - set(_TRAIN_KEYS))
    if unknown:
        raise bad("unknown [train] key(s): " + ", ".join(unknown))
    epochs = _int(train.get("epochs", 10), "[train] epochs", bad)
    if epochs < 0:
        raise bad("[train] epochs must be >= 0")
    shuffle_seed = _int(train.get("shuffle_seed", 0), "[train] shuffle_seed", bad)
    schedule = check_schedule(train.get("lr_shift_schedule", ()), bad)
    theta_schedule = check_theta_schedule(train.get("theta_schedule", ()), model, bad,
                                          "[train] theta_schedule")

    data = doc.get("data", {})
    unknown = sorted(set(data) - set(_DATA_KEYS))
    if unknown:
        raise bad("unknown [data] key(s): " + ", ".join(unknown))
    dataset = data.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise bad("[data] dataset must be a name (a string)")

    adapt = _adapt(doc.get("adapt", {}), model, bad)
    extra = {k: train[k] for k in ("head_epochs_control",) if k in train}
    return ModelSpec(model=model, source=source, epochs=epochs, shuffle_seed=shuffle_seed,
                     lr_shift_schedule=schedule, theta_schedule=theta_schedule,
                     dataset=dataset, extra=extra, adapt=adapt)


def _adapt(table, model, bad):
    unknown = sorted(set(table) - set(_ADAPT_KEYS))
    if unknown:
        raise bad("unknown [adapt] key(s): " + ", ".join(unknown))
    per_class = _int(table.get("per_class", 0), "[adapt] per_class", bad)
    replay = _int(table.get("replay", 1), "[adapt] replay", bad)
    if not 0 <= per_class <= 255 or not 0 <= replay <= 16:  # ffrt.rehearsal's limits
        raise bad("[adapt] per_class must be in 0..255 and replay in 0..16")
    lr_shift = table.get("lr_shift")
    if lr_shift is not None:
        lr_shift = _int(lr_shift, "[adapt] lr_shift", bad)
        try:
            Config(lr_shift=lr_shift)
        except ValueError as e:
            raise bad("[adapt] %s (got %d)" % (e, lr_shift)) from None
    predict = table.get("predict", "goodness")
    if predict not in PREDICT_MODES:
        raise bad("[adapt] predict must be one of %s (got %r)"
                  % (", ".join(PREDICT_MODES), predict))
    lr_sched = check_schedule(table.get("lr_shift_schedule", ()), bad,
                              "[adapt] lr_shift_schedule")
    theta_sched = check_theta_schedule(table.get("theta_schedule", ()), model, bad,
                                       "[adapt] theta_schedule")
    guard = table.get("guard")
    if guard is not None:
        from ffrt.schedule import GUARD_FIELDS, GUARD_LIMITS
        if not isinstance(guard, dict) or set(guard) - set(GUARD_FIELDS):
            raise bad("[adapt] guard is a table of %s" % ", ".join(GUARD_FIELDS))
        defaults = (64, 3, 64, 0)  # ffrt.guard.Guard's own
        guard = tuple(_int(guard.get(k, d), "[adapt] guard " + k, bad)
                      for k, d in zip(GUARD_FIELDS, defaults))
        for k, v, (lo, hi) in zip(GUARD_FIELDS, guard, GUARD_LIMITS):
            if not lo <= v <= hi:
                raise bad("[adapt] guard %s must be in %d..%d" % (k, lo, hi))
    return AdaptSpec(per_class, replay, lr_shift, predict, lr_sched, theta_sched, guard)


def _int(v, what, bad):
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad("%s must be an integer (got %r)" % (what, v))
    return v


def _model_config(table, bad):
    known = {name for name, _ in FIELDS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise bad("unknown [model] field(s): " + ", ".join(unknown))
    kw = {}
    for name, v in table.items():
        if name == "neg_mode" and isinstance(v, str):
            if v not in NEG_MODES:
                raise bad("neg_mode must be one of %s (got %r)" % (", ".join(NEG_MODES), v))
            v = NEG_MODES.index(v)  # NEG_RANDOM = 0, NEG_HARDEST = 1, NEG_MIX = 2
        elif isinstance(v, list):
            v = tuple(_int(e, "[model] " + name, bad) for e in v)
        else:
            v = _int(v, "[model] " + name, bad)
        kw[name] = v
    try:
        return Config(**kw)
    except ValueError as e:  # Config names the field; add the file
        raise bad(str(e)) from None


def check_schedule(schedule, bad=None, what="lr_shift_schedule"):
    """Validate ``[[at, lr_shift], ...]`` (ffrt.schedule); returns ((at, lr_shift), ...)."""
    def shift(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("values are integers (got %r)" % (v,))
        Config(lr_shift=v)  # the limits of lr_shift live in ffrt.model, nowhere else
        return v
    return _schedule(schedule, shift, bad, what)


def check_theta_schedule(schedule, model, bad=None, what="theta_schedule"):
    """Validate ``[[at, [theta per layer]], ...]`` against the model's layers."""
    def theta(v):
        if not isinstance(v, (list, tuple)) or \
                any(isinstance(t, bool) or not isinstance(t, int) for t in v):
            raise ValueError("values are lists of integers, one per layer (got %r)" % (v,))
        Config(**dict(model.as_dict(), theta=tuple(v)))  # count and range: ffrt.model
        return tuple(v)
    return _schedule(schedule, theta, bad, what)


def _schedule(schedule, check_value, bad, what):
    if bad is None:
        def bad(msg):
            return ConfigError(msg)
    if not isinstance(schedule, (list, tuple)):
        raise bad("%s must be a list of [at, value] pairs" % what)
    try:
        return check(schedule, check_value, what)
    except ValueError as e:
        msg = str(e)
        raise bad(msg if msg.startswith(what) else "%s: %s" % (what, msg)) from None


def lr_shift_at(schedule, epoch, default):
    """The lr_shift that the schedule sets for ``epoch`` (ffrt.schedule.value_at).

    >>> [lr_shift_at(((0, 23), (4, 24)), e, 22) for e in range(6)]
    [23, 23, 23, 23, 24, 24]
    """
    return value_at(schedule, epoch, default)
