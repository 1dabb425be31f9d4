"""Model files ``models/NAME.toml``: the model's Config, how to train it, on which data.

Three tables::

    [model]   # ffrt.model.Config fields; lists become tuples,
              # neg_mode may be "hardest" / "random" / "mix" (or 1 / 0 / 2)
    [train]   # epochs (int), shuffle_seed (int), context (a recurrent model: windows
              # of state rebuilt before each learn step, default 4; train_sequences),
              # lr_shift_schedule = [[epoch, lr_shift], ...]: from that epoch on (0-based)
              # cfg.lr_shift is that value; the last one reached stays in the saved model;
              # theta_schedule = [[epoch, [theta per layer]], ...] likewise for cfg.theta
    [data]    # dataset = "digits" (a name that ffkit.data.datasets.load knows)
    [adapt]   # how a board keeps learning after bootstrap (HAPT personalisation, stream):
              # per_class (rehearsal samples kept per class, 0 = none), replay (stored
              # samples learnt after each new one), lr_shift (used while adapting; absent:
              # the trained model's), predict = "goodness" | "head",
              # lr_shift_schedule / theta_schedule = [[windows learnt, value], ...]
              # (ffrt.schedule: counted from the board's last reset, applied by ffrt.live),
              # guard = {every, patience, max_pinned_q8, save_every} (ffrt.guard: roll back
              # to the newest checkpoint when learning saturates or collapses),
              # sleep = {every, steps, positives} (ffrt.sleep: each window learnt awake,
              # positive phase only; `steps` sleep steps on the rehearsal buffer after
              # every `every` windows, every = 0: only on request; positives = true: a
              # sleep step learns both phases; needs per_class > 0)

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

from ffrt.live import PREDICT_MODES
from ffrt.model import FIELDS, NEG_MODES, Config
from ffrt.rehearsal import check_sizes
from ffrt.schedule import check, value_at

from ffkit import FFKitError


class ConfigError(FFKitError, ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


_TRAIN_KEYS = ("epochs", "shuffle_seed", "lr_shift_schedule", "theta_schedule",
               "head_epochs_control", "context")
_DATA_KEYS = ("dataset",)
_ADAPT_KEYS = ("per_class", "replay", "lr_shift", "predict", "lr_shift_schedule",
               "theta_schedule", "guard", "sleep")
_INPUT_KEYS = ("lo", "hi", "classes")
_TABLES = ("model", "train", "data", "adapt", "input")


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
    sleep: tuple | None = None     # ffrt.sleep's (every, steps, positives): learn awake
    #                                (positive phase), sleep `steps` steps every `every`
    #                                windows learnt; None: both phases at once


@dataclass
class ModelSpec:
    """A parsed model file: the engine Config plus training and data settings."""

    model: Config
    source: str = "<defaults>"          # the file it came from
    epochs: int = 10
    shuffle_seed: int = 0
    lr_shift_schedule: tuple = ()       # ((epoch, lr_shift), ...), epochs ascending
    theta_schedule: tuple = ()          # ((epoch, (theta per layer)), ...)
    context: int = 4                    # a recurrent model: windows of state before each step
    dataset: str | None = None
    extra: dict = field(default_factory=dict)  # accepted but unused keys (head_epochs_control)
    adapt: AdaptSpec = AdaptSpec()
    quantiser: object = None            # [input] lo/hi: a datasets.Quantiser, or None
    classes: tuple | None = None        # [input] classes: label names, or None


def models_dir():
    """The shipped ``models/`` folder: the repository's in a checkout, the installed copy in
    a wheel (ffkit.shipped, the one lookup)."""
    from ffkit import shipped
    return shipped.models_dir()


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
    context = _int(train.get("context", 4), "[train] context", bad)
    if context < 0:
        raise bad("[train] context must be >= 0")

    data = doc.get("data", {})
    unknown = sorted(set(data) - set(_DATA_KEYS))
    if unknown:
        raise bad("unknown [data] key(s): " + ", ".join(unknown))
    dataset = data.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise bad("[data] dataset must be a name (a string)")

    adapt = _adapt(doc.get("adapt", {}), model, bad)
    quantiser, classes = _input(doc.get("input", {}), model, bad)
    extra = {k: train[k] for k in ("head_epochs_control",) if k in train}
    return ModelSpec(model=model, source=source, epochs=epochs, shuffle_seed=shuffle_seed,
                     lr_shift_schedule=schedule, theta_schedule=theta_schedule,
                     context=context, dataset=dataset, extra=extra, adapt=adapt,
                     quantiser=quantiser,
                     classes=classes)


def _input(table, model, bad):
    """[input]: (Quantiser or None, classes tuple or None)."""
    from ffkit.data.dataset import QUANT_MAX, Quantiser

    if not isinstance(table, dict):
        raise bad("[input] must be a table")
    unknown = sorted(set(table) - set(_INPUT_KEYS))
    if unknown:
        raise bad("unknown [input] key(s): " + ", ".join(unknown))
    quantiser = None
    if ("lo" in table) != ("hi" in table):
        raise bad("[input] needs both lo and hi, or neither")
    if "lo" in table:
        for k in ("lo", "hi"):
            v = table[k]
            if not isinstance(v, list) or any(isinstance(e, bool) or
                                              not isinstance(e, (int, float)) for e in v):
                raise bad("[input] %s must be a list of numbers" % k)
            if len(v) != model.n_features:
                raise bad("[input] %s has %d values, the model has %d features"
                          % (k, len(v), model.n_features))
        try:
            quantiser = Quantiser(tuple(table["lo"]), tuple(table["hi"]))
        except ValueError as e:
            raise bad("[input] %s" % e) from None
        if model.in_max != QUANT_MAX:
            raise bad("[input] lo/hi quantise features to 0..%d, so [model] in_max must be "
                      "%d (got %d)" % (QUANT_MAX, QUANT_MAX, model.in_max))
    classes = table.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise bad("[input] classes must be a list of strings")
        if len(set(classes)) != len(classes):
            raise bad("[input] classes has a name twice")
        if not 2 <= len(classes) <= model.n_classes:
            raise bad("[input] classes has %d names, the model has %d classes"
                      % (len(classes), model.n_classes))
        classes = tuple(classes)
    return quantiser, classes


def _adapt(table, model, bad):
    unknown = sorted(set(table) - set(_ADAPT_KEYS))
    if unknown:
        raise bad("unknown [adapt] key(s): " + ", ".join(unknown))
    per_class = _int(table.get("per_class", 0), "[adapt] per_class", bad)
    replay = _int(table.get("replay", 1), "[adapt] replay", bad)
    try:
        check_sizes(per_class, replay, 0)
    except ValueError as e:
        raise bad("[adapt] %s" % e) from None
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
    sleep = table.get("sleep")
    if sleep is not None:
        from ffrt.schedule import SLEEP_FIELDS, SLEEP_LIMITS
        if not isinstance(sleep, dict) or set(sleep) - set(SLEEP_FIELDS):
            raise bad("[adapt] sleep is a table of %s" % ", ".join(SLEEP_FIELDS))
        if "steps" not in sleep:
            raise bad("[adapt] sleep needs steps (sleep steps each time)")
        pos = sleep.get("positives", False)
        if not isinstance(pos, bool):
            raise bad("[adapt] sleep positives must be true or false (got %r)" % (pos,))
        sleep = (_int(sleep.get("every", 0), "[adapt] sleep every", bad),
                 _int(sleep["steps"], "[adapt] sleep steps", bad), pos)
        for k, v, (lo, hi) in zip(SLEEP_FIELDS[:2], sleep, SLEEP_LIMITS):
            if not lo <= v <= hi:
                raise bad("[adapt] sleep %s must be in %d..%d" % (k, lo, hi))
        if not per_class:
            raise bad("[adapt] sleep learns from the rehearsal buffer: per_class must be > 0")
    return AdaptSpec(per_class, replay, lr_shift, predict, lr_sched, theta_sched, guard,
                     sleep)


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


# ---- writing a model file ------------------------------------------------------------------

def _toml_value(v):
    """A TOML literal for an int, float, str or a list/tuple of them (floats exactly:
    repr is the shortest text that reads back as the same double)."""
    import json
    import math

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML model files take finite numbers (got %r)" % v)
        return repr(v)
    if isinstance(v, str):  # JSON's escapes are TOML's, except DEL, raw in JSON
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(e) for e in v) + "]"
    raise TypeError("no TOML literal for %r" % (v,))


def _toml_list(key, values, per_line=8):
    """``key = [...]`` with ``per_line`` values a line (784 numbers stay readable)."""
    if len(values) <= per_line:
        return "%s = %s" % (key, _toml_value(list(values)))
    rows = [", ".join(_toml_value(v) for v in values[i:i + per_line])
            for i in range(0, len(values), per_line)]
    return "%s = [\n    %s,\n]" % (key, ",\n    ".join(rows))


def dumps(spec, comment="", dataset=None):
    """A model file (TOML text) that `parse` reads back to ``spec``'s Config, [train]
    settings, [adapt], [input] and ``dataset``; ``comment`` lines go first, each after
    ``# ``. (What a hand-written file says in comments is not kept.)

    >>> spec = load(models_dir() / "hapt.toml")
    >>> again = parse(tomllib.loads(dumps(spec, "made by a doctest", "hapt")))
    >>> again.model == spec.model, again.lr_shift_schedule == spec.lr_shift_schedule
    (True, True)
    >>> again.adapt == spec.adapt, again.dataset
    (True, 'hapt')
    """
    out = ["# " + line if line else "#" for line in comment.splitlines()]
    if out:
        out.append("")
    out.append("[model]")
    for name, v in spec.model.as_dict().items():
        if name == "neg_mode":
            v = NEG_MODES[v]
        out.append("%s = %s" % (name, _toml_value(v)))
    out += ["", "[train]", "epochs = %d" % spec.epochs, "shuffle_seed = %d" % spec.shuffle_seed]
    if spec.model.recurrent or spec.context != 4:
        out.append("context = %d" % spec.context)
    if spec.lr_shift_schedule:
        out.append("lr_shift_schedule = " + _toml_value([list(e) for e in
                                                         spec.lr_shift_schedule]))
    if spec.theta_schedule:
        out.append("theta_schedule = " + _toml_value([[a, list(t)] for a, t in
                                                      spec.theta_schedule]))
    for k, v in spec.extra.items():
        out.append("%s = %s" % (k, _toml_value(v)))
    if dataset is not None:
        out += ["", "[data]", "dataset = " + _toml_value(dataset)]
    a = spec.adapt
    if a != AdaptSpec():
        out += ["", "[adapt]", "per_class = %d" % a.per_class, "replay = %d" % a.replay,
                "predict = " + _toml_value(a.predict)]
        if a.lr_shift is not None:
            out.append("lr_shift = %d" % a.lr_shift)
        if a.lr_shift_schedule:
            out.append("lr_shift_schedule = " + _toml_value([list(e) for e in
                                                             a.lr_shift_schedule]))
        if a.theta_schedule:
            out.append("theta_schedule = " + _toml_value([[t, list(v)] for t, v in
                                                          a.theta_schedule]))
        if a.guard is not None:
            from ffrt.schedule import GUARD_FIELDS
            out.append("guard = {%s}" % ", ".join("%s = %d" % kv
                                                  for kv in zip(GUARD_FIELDS, a.guard)))
        sleep = getattr(a, "sleep", None)  # (every, steps, positives)
        if sleep is not None:
            out.append("sleep = {every = %d, steps = %d, positives = %s}"
                       % (sleep[0], sleep[1], _toml_value(bool(sleep[2]))))
    if spec.quantiser is not None or spec.classes is not None:
        out += ["", "[input]"]
        if spec.quantiser is not None:
            out.append("# q = clip(round((x - lo) * 255 / (hi - lo)), 0, 255) per feature; "
                       "hi == lo: 0")
            out.append(_toml_list("lo", spec.quantiser.lo))
            out.append(_toml_list("hi", spec.quantiser.hi))
        if spec.classes is not None:
            out.append("classes = " + _toml_value(list(spec.classes)))
    return "\n".join(out) + "\n"
