"""Step schedules: from count ``at`` on, a setting takes a value.

One rule for both places a net's learning rate or threshold changes over time: host
bootstrapping counts epochs (``[train] lr_shift_schedule``, ``theta_schedule``), a board
adapting counts the windows it has learnt since its learner was reset (``[adapt]
lr_shift_schedule``, ``theta_schedule``, applied by ffrt.live). A schedule is a tuple of
``(at, value)`` pairs, ``at`` ascending; the value is an lr_shift (int) or a theta per
layer (tuple of ints). Before the first ``at`` the setting keeps its own value.

>>> s = ((0, 23), (4, 24))
>>> [value_at(s, t, 22) for t in range(6)]
[23, 23, 23, 23, 24, 24]
>>> changed_at(s, 4), changed_at(s, 5)
(24, None)
"""


def value_at(schedule, t, default):
    """The value the schedule gives at count t (``default`` before its first entry)."""
    value = default
    for at, v in schedule:
        if t >= at:
            value = v
    return value


def changed_at(schedule, t):
    """The value that starts exactly at count t, else None: what a learner applies as it
    counts up one step at a time (no allocation, a few compares per step)."""
    for at, v in schedule:
        if at == t:
            return v
    return None


def step(net, lr_schedule, theta_schedule, t):
    """Before learn step t (counted from 0): set net.cfg's lr_shift and theta to the
    values that start at t, if any (ffrt.live on a board, ffkit.learning.protocols on a host)."""
    v = changed_at(lr_schedule, t)
    if v is not None:
        net.cfg.lr_shift = v
    v = changed_at(theta_schedule, t)
    if v is not None:
        net.cfg.theta = v


def check(schedule, check_value, what="schedule"):
    """A tuple of (at, value) pairs, ``at`` integers >= 0 ascending, each value passed
    through check_value(v) (which raises ValueError naming the fault and returns v)."""
    out: list = []
    for entry in schedule:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or \
                isinstance(entry[0], bool) or not isinstance(entry[0], int):
            raise ValueError("%s entries are [at, value] pairs (got %r)" % (what, entry))
        at = entry[0]
        if at < 0 or (out and at <= out[-1][0]):
            raise ValueError("%s counts must be >= 0 and ascending (got %r)"
                             % (what, list(schedule)))
        out.append((at, check_value(entry[1])))
    return tuple(out)


GUARD_FIELDS = ("every", "patience", "max_pinned_q8", "save_every")
GUARD_LIMITS = ((1, 65535), (1, 255), (0, 256), (0, 65535))
SLEEP_FIELDS = ("every", "steps", "positives")
SLEEP_LIMITS = ((0, 65535), (0, 1024), (0, 1))


def parse(text, cfg):
    """(lr_shift schedule, theta schedule, guard, sleep) from the JSON a host sends with
    ADAPT (ffrt.live_ops): ``{"lr_shift_schedule": [[at, shift], ...], "theta_schedule":
    [[at, [theta per layer]], ...], "guard": [every, patience, max_pinned_q8, save_every],
    "sleep": [every, steps, positives]}``, each key optional; up to 16 schedule entries
    each, values within ffrt.model's limits for ``cfg`` (a Config); guard (ffrt.guard.Guard's
    settings) and sleep (ffrt.sleep's: SLEEP_LIMITS) None when absent. Raises ValueError
    naming the fault. The JSON is read by ffrt.strictjson (loaded for it, dropped after)."""
    from ffrt import STRICTJSON_NEED, room, unload
    room(STRICTJSON_NEED)
    from ffrt import strictjson

    try:
        req = strictjson.loads(text)
        bad = ""
    except ValueError as e:
        req = None
        bad = " (%s)" % e
    finally:
        del strictjson  # the last reference: unload frees its code
        unload("strictjson")
    if req is None or \
            any(k not in ("lr_shift_schedule", "theta_schedule", "guard", "sleep")
                for k in req):
        raise ValueError("ADAPT's settings are a JSON object with lr_shift_schedule, "
                         "theta_schedule, guard and sleep" + bad)
    d = cfg.as_dict()
    cls = type(cfg)

    def shift(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("an lr_shift is an integer, got %r" % (v,))
        d2 = dict(d)
        d2["lr_shift"] = v
        cls(**d2)  # ffrt.model's limits
        return v

    def theta(v):
        if not isinstance(v, list) or \
                any(isinstance(t, bool) or not isinstance(t, int) for t in v):
            raise ValueError("a theta is a list of integers, got %r" % (v,))
        d2 = dict(d)
        d2["theta"] = tuple(v)
        cls(**d2)
        return tuple(v)

    out: list = []
    for key, value in (("lr_shift_schedule", shift), ("theta_schedule", theta)):
        sched = req.get(key, [])
        if not isinstance(sched, list) or len(sched) > 16:
            raise ValueError("%s takes up to 16 [at, value] pairs" % key)
        out.append(check(sched, value, key))
    guard = _ints(req.get("guard"), GUARD_LIMITS, "guard takes [every 1..65535, patience "
                  "1..255, max_pinned_q8 0..256, save_every 0..65535]")
    sleep = _ints(req.get("sleep"), SLEEP_LIMITS, "sleep takes [every 0..65535, steps "
                  "0..1024, positives 0..1]")
    return out[0], out[1], guard, sleep


def _ints(v, limits, msg):
    """v as a tuple of ints within limits ((lo, hi) each), None for None; else ValueError."""
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != len(limits) or any(
            isinstance(e, bool) or not isinstance(e, int) or not lo <= e <= hi
            for e, (lo, hi) in zip(v, limits)):
        raise ValueError(msg)
    return tuple(v)
