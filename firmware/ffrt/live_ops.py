"""The protocol requests of the live learner (ffrt.live): SAMPLES and ADAPT.

ffrt.server loads this module on the first of them. The learner itself lives on the server
(`srv.live`, set here on first use), so it outlives this module when the server swaps
modules out; RESET (reload or fresh) starts it afresh too (ffrt.ops). Both requests need
a model of the 72 window features (ffrt.features) and answer E_BAD_STATE on any other
(an ADAPT query excepted).

SAMPLES  u8 flags, u8 k, k x u8 label, n x (6 x i16: ax ay az gx gy gz)
         -> u32 step, k x u8 predicted label

    flags: LEARN (1) learn the labelled windows; NEW_SESSION (2) reset the windower first
    (the next window is this frame's first 128 samples); CLEAR_BUFFER (4) empty the
    rehearsal buffer first. The k labels are those of the windows that complete within
    this frame, in order (0xFF: no label, e.g. a window that is no target; it is
    predicted, never learnt). The whole body is checked before anything changes: unknown
    flag bits or a label outside 0..n_classes-1 (E_BAD_VALUE), a length that is not
    2 + k + 12 n or a k other than the number of windows the n samples complete
    (E_BAD_LENGTH), LEARN while learning is off (E_BAD_STATE) or an export is open
    (E_BUSY). Then the rehearsal buffer is made if a window is to be learnt and there is
    none (its MemoryError, too, comes before any sample is used). n fits MAX_BODY: up to
    49 samples (fewer than 64 complete at most one window).

ADAPT    - | u8 per_class, u8 replay, u8 predict (0: goodness per label, 1: linear head)
             [, JSON {"lr_shift_schedule": [[learnt, shift], ...],
                      "theta_schedule": [[learnt, [theta per layer]], ...],
                      "guard": [every, patience, max_pinned_q8, save_every],
                      "sleep": [every, steps, positives]}]
         -> u8 per_class, u8 replay, u8 predict, u32 windows since reset, u32 RAM bytes
            held (the rehearsal buffer's from the first window learnt after a reset on),
            u8 lr_shift_schedule entries, u8 theta_schedule entries, u16 guard checks,
            u16 guard rollbacks (0, 0 without a guard)

    With a body: a new learner with these settings (per_class 0..255, 0 = no rehearsal
    buffer; replay 0..16; the schedules of ffrt.live, up to 16 entries each, counts
    ascending, values within ffrt.model's limits; sleep: ffrt.sleep's, every 0..65535
    windows learnt, steps 0..1024, positives 0..1, and only with per_class > 0), which
    starts a new stream with an empty buffer. Without one: the settings in force (0, 1,
    0 and zero counts before the first SAMPLES or ADAPT; the sleep setting is not in the
    reply: SLEEP 0 asks for its counts). The learning rate itself is a net setting: SET
    {"lr_shift": n}.
"""

import struct

from ffrt import proto as P
from ffrt.features import N_FEATURES, WINDOW, windows_done
from ffrt.proto import Reply

try:
    from micropython import const
except ImportError:  # CPython: every const() here is an int
    const = int  # type: ignore[assignment]

LEARN = const(1)
NEW_SESSION = const(2)
CLEAR_BUFFER = const(4)
_FLAGS = const(7)
SAMPLE_BYTES = const(12)  # bytes per sample: six int16
# ADAPT's reply (ffkit.board.client reads it by this name; the fields: the module docstring)
ADAPT_REPLY = "<BBBIIBBHH"


def _fits(srv):
    """Refuse a model that is not the window features' (E_BAD_STATE)."""
    cfg = srv.net.cfg
    if cfg.n_features != N_FEATURES or cfg.in_max != 255:
        raise Reply(P.E_BAD_STATE, "the model takes %d features in 0..%d; SAMPLES needs one "
                    "of the %d window features in 0..255" % (cfg.n_features, cfg.in_max,
                                                            N_FEATURES))


def _learner(srv):
    lv = getattr(srv, "live", None)  # the server has no such attribute until it is set
    if lv is None:
        from ffrt.live import LiveLearner
        lv = srv.live = LiveLearner(srv.net)
    return lv


def _i16(body, o):
    v = body[o] | (body[o + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _samples(srv, body):
    _fits(srv)
    if len(body) < 2:
        raise Reply(P.E_BAD_LENGTH, "SAMPLES takes at least 2 body bytes, got %d" % len(body))
    flags = body[0]
    k = body[1]
    rest = len(body) - 2 - k
    if rest < 0 or rest % SAMPLE_BYTES:
        raise Reply(P.E_BAD_LENGTH, "SAMPLES with %d label(s) takes 2 + %d + 12 n body bytes, "
                    "got %d" % (k, k, len(body)))
    if flags & ~_FLAGS:
        raise Reply(P.E_BAD_VALUE, "unknown SAMPLES flag bits 0x%02x" % (flags & ~_FLAGS))
    lv = _learner(srv)
    n = rest // SAMPLE_BYTES
    w = lv.windower
    due = WINDOW if flags & NEW_SESSION else w.due
    done = windows_done(n, due)
    if k != done:
        raise Reply(P.E_BAD_LENGTH, "these %d samples complete %d window(s) (%d more samples "
                    "to the next), got %d label(s)" % (n, done, due, k))
    nc = srv.net.cfg.n_classes
    for i in range(k):
        y = body[2 + i]
        if y != 0xFF and y >= nc:
            raise Reply(P.E_BAD_VALUE, "label %d of window %d is outside 0..%d (0xFF: none)"
                        % (y, i, nc - 1))
    learn = flags & LEARN
    if learn:
        if not srv.learning:
            raise Reply(P.E_BAD_STATE, 'learning is off (SET {"learning": true})')
        srv.still()
    # checked: from here on nothing fails (but a MemoryError making the buffer, first)
    if flags & CLEAR_BUFFER:
        lv.clear_buffer()
    if learn and k:
        lv.buffer()
    if flags & NEW_SESSION:
        lv.reset(False)
    lv.learning = bool(learn)
    out = srv.enc.body
    step = srv.net.step
    o = 2 + k
    j = 0
    fast = w.twin is not None
    while n > 0:
        if fast:  # up to the next window in one call (ffrt.features.push_block)
            c = w.due if w.due < n else n
            x = w.push_block(body, o, c)
        else:
            c = 1
            x = w.push(_i16(body, o), _i16(body, o + 2), _i16(body, o + 4),
                       _i16(body, o + 6), _i16(body, o + 8), _i16(body, o + 10))
        o += SAMPLE_BYTES * c
        n -= c
        if x is not None:
            y = body[2 + j]
            y = -1 if y == 0xFF else y
            out[4 + j] = pred = lv.window(x, y)
            srv.predictions += 1
            if y >= 0:
                srv.labelled += 1
                srv.correct += pred == y
            j += 1
    srv.learn_steps += srv.net.step - step
    srv.reply_step()
    return 4 + k


def _adapt(srv, body):
    n = len(body)
    if n != 0 and n < 3:
        raise Reply(P.E_BAD_LENGTH, "ADAPT takes 0 or at least 3 body bytes, got %d" % n)
    if n:
        _fits(srv)
        per_class, replay, head = body[0], body[1], body[2]
        from ffrt.rehearsal import PER_CLASS_MAX, REPLAY_MAX
        if replay > REPLAY_MAX or head > 1:
            raise Reply(P.E_BAD_VALUE, "ADAPT takes per_class 0..%d, replay 0..%d and "
                        "predict 0 (goodness) or 1 (head); got %d, %d, %d"
                        % (PER_CLASS_MAX, REPLAY_MAX, per_class, replay, head))
        lr_sched, theta_sched, guard, sleep = _schedules(srv, body) if n > 3 else \
            ((), (), None, None)
        if sleep is not None and not per_class:
            raise Reply(P.E_BAD_VALUE, "sleep learns from the rehearsal buffer: per_class "
                        "must be > 0")
        from ffrt.live import LiveLearner
        srv.live = None  # the old learner's buffers are garbage before the new ones exist
        lv = srv.live = LiveLearner(srv.net, per_class, replay, head)
        lv.set_schedules(lr_sched, theta_sched)
        if n > 3 and lv.schedules is None:  # ffrt.schedule parsed the JSON: not needed now
            from ffrt import unload
            unload("schedule")
        if sleep is not None:
            from ffrt.sleep import setup
            setup(lv, sleep)
        if guard is not None:
            from ffrt.guard import Guard
            lv.guard = Guard(srv.net, srv.storage, guard[0], guard[1], guard[2], guard[3])
    lv = getattr(srv, "live", None)
    b = srv.enc.body
    if lv is None:
        struct.pack_into(ADAPT_REPLY, b, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    else:
        sched = lv.schedules
        g = lv.guard
        struct.pack_into(ADAPT_REPLY, b, 0, lv.per_class, lv.replay,
                         1 if lv.predict_head else 0, lv.windows, lv.ram_bytes(),
                         len(sched[1]) if sched else 0, len(sched[2]) if sched else 0,
                         g.checks & 0xFFFF if g else 0, g.rollbacks & 0xFFFF if g else 0)
    return 17


def _schedules(srv, body):
    """The JSON after ADAPT's three bytes (ffrt.schedule.parse, loaded only for it)."""
    from ffrt.schedule import parse

    try:
        return parse(bytes(body[3:]), srv.net.cfg)
    except ValueError as e:
        raise Reply(P.E_BAD_VALUE, str(e))


HANDLERS = {P.SAMPLES: _samples, P.ADAPT: _adapt}
