"""Model configuration: shape and hyperparameters, the model's signature in .ffw files.

One place for the fields, their defaults and their limits, so board and host agree.

>>> cfg = Config(n_features=4, n_classes=3, in_max=15, layers=(8, 8))
>>> cfg.n_in, cfg.act_shift
(7, (8, 7))
>>> Config(n_features=4, n_classes=3, in_max=300)
Traceback (most recent call last):
...
ValueError: in_max * in_scale must be at most 255 (got 300 * 15)
"""

NEG_RANDOM = 0
NEG_HARDEST = 1
NEG_MIX = 2       # per step, one PRNG bit picks the hardest or a random wrong label
NEG_MODES = ("random", "hardest", "mix")

# Field order is the order in the .ffw signature; each is (name, default).
# Tuples are per hidden layer. Defaults are those of the digits model.
FIELDS = (  # type: tuple
    ("n_features", 64),
    ("n_classes", 10),
    ("in_max", 16),       # inputs are integers in [0, in_max]
    ("in_scale", 15),     # input x is fed as x * in_scale (uint8)
    ("label_value", 255),  # one-hot label overlay value
    ("layers", (128, 128)),
    ("act_shift", (8, 7)),  # h = clip(acc >> act_shift, 0, 255)
    ("theta", (100000, 100000)),  # goodness threshold per layer
    ("gshift", (11, 11)),  # sigmoid temperature: 8 << gshift goodness units per logit
    ("norm_target", 1024),  # length of the normalised activity vector
    ("lr", 4),            # learning rate multiplier (1..15) ...
    ("lr_shift", 27),     # ... over 2**lr_shift (bootstrap schedules it down from 23)
    ("grad_floor", 1),    # positive passes update silent units as if h were this (0: off)
    ("neg_mode", NEG_HARDEST),
    ("goodness_from", 0),  # first layer whose goodness / activities predict
    ("head_lr", 4),
    ("head_shift", 14),
    ("head_gshift", 10),
    ("init_range", 24),   # initial weights uniform in [-init_range, init_range]
    ("pipeline", 0),      # feature pipeline id (0: inputs used as given)
    ("seed", 1),
    # Fields added after format 1's first 21 keep their defaults in older files (ffrt.ffw).
    ("recurrent", 0),     # 1: each layer but the last also reads the layer above's
    #                       normalised activities from the previous time step (advance)
    ("label_repeat", 1),  # the one-hot label is overlaid this many times (wide inputs:
    #                       so that the label is not drowned by hundreds of features)
)
_LAYER_FIELDS = ("act_shift", "theta", "gshift")


def no_int(v):
    """True for a v that is no integer on any runner, though not of type int: a bool
    (CPython counts it as an int, MicroPython does not; numpy's bool_ too), a float, a
    string (they have no __index__). Integer types of other libraries pass (numpy's).
    The one rule: as_int and FFNet.check_x ask it, after a `type(v) is not int` test."""
    return v is True or v is False or type(v).__name__ == "bool_" \
        or not hasattr(v, "__index__")


def as_int(v, what):
    """v as an int, or ValueError naming what (no_int's rule): config fields, labels and
    input values, the same on every runner."""
    if type(v) is not int:
        if no_int(v):
            raise ValueError("%s %r is not an integer" % (what, v))
        v = v.__index__()
    return v


class Config:
    """A validated model configuration; raises ValueError naming the bad field."""

    # The fields, declared for type checkers (set from FIELDS in __init__). Bare
    # annotations compile to nothing in MicroPython and cost no RAM.
    n_features: int
    n_classes: int
    in_max: int
    in_scale: int
    label_value: int
    layers: "tuple[int, ...]"
    act_shift: "tuple[int, ...]"
    theta: "tuple[int, ...]"
    gshift: "tuple[int, ...]"
    norm_target: int
    lr: int
    lr_shift: int
    grad_floor: int
    neg_mode: int
    goodness_from: int
    head_lr: int
    head_shift: int
    head_gshift: int
    init_range: int
    pipeline: int
    seed: int
    recurrent: int
    label_repeat: int

    def __init__(self, **kw):
        for name, default in FIELDS:
            v = kw.pop(name, None)
            if v is None:
                v = default
                # a per-layer default for another depth: its first value for every layer
                if name in _LAYER_FIELDS and len(v) != len(self.layers):
                    v = (v[0],) * len(self.layers)
            if name == "layers" or name in _LAYER_FIELDS:
                v = tuple(as_int(e, name) for e in v)
            else:
                v = as_int(v, name)
            setattr(self, name, v)
        if kw:
            raise ValueError("unknown config field(s): " + ", ".join(sorted(kw)))
        self.check()

    @property
    def n_in(self):
        """Width of the first layer's input from below: features, then the one-hot label
        label_repeat times."""
        return self.n_features + self.label_repeat * self.n_classes

    def layer_inputs(self):
        """Input width of each layer: what the layer below gives (the features and the
        label for the first), plus, in a recurrent model, the width of the layer above
        (its activities at the previous time step)."""
        below = (self.n_in,) + tuple(self.layers[:-1])
        if not self.recurrent:
            return below
        return tuple(b + a for b, a in zip(below, tuple(self.layers[1:]) + (0,)))

    def check(self):
        if not self.layers:
            raise ValueError("a model needs at least one layer")
        for name in _LAYER_FIELDS:
            if len(getattr(self, name)) != len(self.layers):
                raise ValueError(name + " needs one value per layer")
        if self.n_features < 1 or self.n_classes < 2:
            raise ValueError("need n_features >= 1 and n_classes >= 2")
        if self.in_max < 1 or self.in_scale < 1 or self.in_max * self.in_scale > 255:
            raise ValueError("in_max * in_scale must be at most 255 (got %d * %d)"
                             % (self.in_max, self.in_scale))
        if not 1 <= self.label_value <= 255:
            raise ValueError("label_value must be in 1..255")
        for n_in, n_out in zip(self.layer_inputs(), self.layers):
            # |acc| <= 127 * 255 * n_in and goodness <= 255**2 * n_out stay below 2**30
            if not 1 <= n_in <= 16000 or not 1 <= n_out <= 16000:
                raise ValueError("layer widths must be in 1..16000")
        for s in self.act_shift:
            if not 0 <= s <= 24:
                raise ValueError("act_shift must be in 0..24")
        for t in self.theta:
            if not 0 <= t < 1 << 24:
                raise ValueError("theta must be in 0..2**24")
        for s in self.gshift:
            if not 0 <= s <= 24:
                raise ValueError("gshift must be in 0..24")
        if not 1 <= self.norm_target < 1 << 14:
            raise ValueError("norm_target must be in 1..16383")
        # shifts up to 28: the rounding term r < 2**28 plus |coef * h * x| < 2**28 < 2**30
        if not 1 <= self.lr <= 15 or not 1 <= self.lr_shift <= 28:
            raise ValueError("lr must be in 1..15 and lr_shift in 1..28")
        if not 0 <= self.grad_floor <= 255:
            raise ValueError("grad_floor must be in 0..255")
        if not 1 <= self.head_lr <= 15 or not 1 <= self.head_shift <= 28:
            raise ValueError("head_lr must be in 1..15 and head_shift in 1..28")
        if not 0 <= self.head_gshift <= 24:
            raise ValueError("head_gshift must be in 0..24")
        if self.neg_mode not in (NEG_RANDOM, NEG_HARDEST, NEG_MIX):
            raise ValueError("neg_mode must be 0 (random), 1 (hardest) or 2 (mix)")
        if not 0 <= self.goodness_from < len(self.layers):
            raise ValueError("goodness_from must name a layer")
        if not 0 <= self.init_range <= 127:
            raise ValueError("init_range must be in 0..127")
        # |score| <= 514 * 255 * 4095 < 2**29, so the margin of two scores is < 2**30
        if self.head_inputs() > 514:
            raise ValueError("the head sees at most 514 activities")
        if not 0 <= self.seed < 1 << 30:
            raise ValueError("seed must be in 0..2**30")
        if not 1 <= self.label_repeat <= 64:
            raise ValueError("label_repeat must be in 1..64")
        if self.recurrent not in (0, 1):
            raise ValueError("recurrent must be 0 or 1")
        if self.recurrent and len(self.layers) < 2:
            raise ValueError("a recurrent model needs at least two layers")

    def head_inputs(self):
        """Number of activities the linear head reads (layers from goodness_from on)."""
        return sum(self.layers[self.goodness_from:])

    def as_dict(self):
        return {name: getattr(self, name) for name, _ in FIELDS}

    def __eq__(self, other):
        return isinstance(other, Config) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Config(" + ", ".join("%s=%r" % kv for kv in self.as_dict().items()) + ")"
