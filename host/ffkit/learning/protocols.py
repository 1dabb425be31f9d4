"""Learner-agnostic evaluation protocols for HAPT (issue 4): personalisation and prequential.

A learner is anything with ``predict_one(x) -> label`` and ``learn_one(x, y)``, where x is
a sequence of ints (the 72 window features) and labels are 0..5. ``fresh()`` returns a new
learner in its bootstrapped state; every subject gets its own, as a fresh board would.

- `personalise`: per subject, frozen accuracy on the subject's last session (no learning);
  then a fresh learner learns the subject's earlier session(s) in time order with their
  labels and is tested on the same last session (no learning during the test).
- `prequential`: test-then-train over each subject's sessions in time order (a fresh
  learner per subject), optionally with labels delayed by ``delay`` windows (window t's
  label is learnt only after window t + delay was predicted) and only 1 window in
  ``label_every`` labelled (windows 0, k, 2k, ... of each subject's stream).
- `previous_label_accuracy`: the score of predicting each window's label as the previous
  window's (within a session); the bar any stream learner has to clear.

>>> class Last:                      # remembers the last label it was taught
...     def __init__(self): self.y = 0
...     def predict_one(self, x): return self.y
...     def learn_one(self, x, y): self.y = y
>>> stream = [([0], 1), ([0], 1), ([0], 1), ([0], 2), ([0], 2)]
>>> prequential_stream(Last(), stream)           # misses the first window and the change
0.6
>>> prequential_stream(Last(), stream, delay=1)  # window t is predicted as y[t - 2]
0.2
"""

import copy
import os

import numpy as np

from ffrt.live import Learner

__all__ = ["personalise", "prequential", "prequential_stream", "previous_label_accuracy",
           "FFLearner", "ff_factory", "adapt_factory", "subject_streams", "TEST_SUBJECTS"]

TEST_SUBJECTS = tuple(range(16, 31))


def _rows(X):
    return [list(map(int, r)) for r in np.asarray(X).tolist()]


def _windows(rec, subjects, sessions):
    from ffkit.data import hapt
    return hapt.windows(subjects=subjects, sessions=sessions, recording=rec)


def subject_streams(rec, subjects, sessions=None):
    """{subject: (rows, labels, session)} in time order (session, then window start).

    ``rec`` is a ``hapt.Recording`` (None: ``hapt.load()``), or already such a dict of
    streams (synthetic data in tests), from which the sessions asked for are picked.
    """
    if isinstance(rec, dict):
        out = {}
        for s in subjects:
            xs, ys, ss = rec[int(s)]
            last = max(ss)
            keep = [i for i in range(len(ys)) if sessions is None
                    or (sessions == "last" and ss[i] == last)
                    or (sessions == "earlier" and ss[i] != last)]
            out[int(s)] = ([list(xs[i]) for i in keep], [int(ys[i]) for i in keep],
                           [int(ss[i]) for i in keep])
        return out
    w = _windows(rec, subjects, sessions)
    out = {}
    for s in subjects:
        m = np.flatnonzero(w["subject"] == s)
        order = m[np.lexsort((w["start"][m], w["session"][m]))]
        out[int(s)] = (_rows(w["X"][order]), w["y"][order].astype(int).tolist(),
                       w["session"][order].astype(int).tolist())
    return out


def _accuracy(learner, rows, labels):
    if not rows:
        return float("nan")
    return sum(int(learner.predict_one(x) == y) for x, y in zip(rows, labels)) / len(rows)


def _worst(per, key):
    s = min(per, key=lambda k: per[k][key])
    return {"subject": s, "accuracy": per[s][key]}


def personalise(fresh, rec=None, subjects=TEST_SUBJECTS, frozen_learner=None):
    """Frozen vs adapted accuracy on each subject's last session.

    ``fresh()`` gives a bootstrapped learner; the frozen score uses one that never learns
    (``frozen_learner`` if given, so an expensive learner need not be copied for it).
    Returns {"subjects": {s: {"frozen", "adapted", "n_test", "n_adapt"}},
    "frozen_accuracy", "adapted_accuracy" (means over subjects), "worst_subject_frozen",
    "worst_subject_adapted" ({"subject", "accuracy"})}.
    """
    subjects = tuple(int(s) for s in subjects)
    last = subject_streams(rec, subjects, "last")
    earlier = subject_streams(rec, subjects, "earlier")
    frozen_net = frozen_learner if frozen_learner is not None else fresh()
    per = {}
    for s in subjects:
        xt, yt, _ = last[s]
        xa, ya, _ = earlier[s]
        frozen = _accuracy(frozen_net, xt, yt)
        learner = fresh()
        for x, y in zip(xa, ya):
            learner.learn_one(x, y)
        per[s] = {"frozen": frozen, "adapted": _accuracy(learner, xt, yt),
                  "n_test": len(yt), "n_adapt": len(ya)}
    return {
        "subjects": per,
        "frozen_accuracy": float(np.mean([per[s]["frozen"] for s in subjects])),
        "adapted_accuracy": float(np.mean([per[s]["adapted"] for s in subjects])),
        "worst_subject_frozen": _worst(per, "frozen"),
        "worst_subject_adapted": _worst(per, "adapted"),
    }


def prequential_stream(learner, stream, delay=0, label_every=1):
    """Test-then-train over one stream of (x, y); returns the fraction predicted right.

    Every window is predicted before anything is learnt from it. Window t is labelled when
    ``t % label_every == 0``; its label is learnt right after window ``t + delay`` was
    predicted (delay 0: right after its own prediction). Labels still pending at the end
    are never learnt (nothing is left to predict).
    """
    if delay < 0 or label_every < 1:
        raise ValueError("delay must be >= 0 and label_every >= 1")
    hits = n = 0
    stream = list(stream)
    for t, (x, y) in enumerate(stream):
        hits += int(learner.predict_one(x) == y)
        n += 1
        u = t - delay
        if u >= 0 and u % label_every == 0:
            xu, yu = stream[u]
            learner.learn_one(xu, yu)
    return hits / n if n else float("nan")


def prequential(fresh, rec=None, subjects=TEST_SUBJECTS, delay=0, label_every=1):
    """`prequential_stream` over each subject's sessions in time order, a fresh learner each.

    The stream of a subject is all its sessions in order; accuracy is pooled over windows
    (``accuracy``) and averaged over subjects (``mean_subject_accuracy``).
    """
    subjects = tuple(int(s) for s in subjects)
    streams = subject_streams(rec, subjects)
    per, hits, n = {}, 0.0, 0
    for s in subjects:
        xs, ys, _ = streams[s]
        acc = prequential_stream(fresh(), zip(xs, ys), delay, label_every)
        per[s] = acc
        hits += acc * len(ys)
        n += len(ys)
    return {"subjects": per, "accuracy": hits / n,
            "mean_subject_accuracy": float(np.mean(list(per.values()))),
            "delay": delay, "label_every": label_every}


def previous_label_accuracy(rec=None, subjects=TEST_SUBJECTS):
    """Predict each window's label as the previous window's in the same session.

    The first window of each session has no previous window and counts as a miss, which is
    what a prequential learner that memorises the last label gets on a stream that starts
    a session (pooled over windows).
    """
    streams = subject_streams(rec, tuple(int(s) for s in subjects))
    hits = n = 0
    for xs, ys, sess in streams.values():
        for t in range(len(ys)):
            n += 1
            if t > 0 and sess[t] == sess[t - 1] and ys[t] == ys[t - 1]:
                hits += 1
    return hits / n


# ---- the integer FF (ffrt) as a learner ----------------------------------------------------

class FFLearner(Learner):
    """The integer FF net with a board's learning policy (ffrt.live.Learner: schedules,
    then rehearsal or the net, then the guard) over precomputed feature rows.

    ``rehearsal``: (per_class, replay) of the buffer, or None for plain learning.
    ``lr_schedule`` / ``theta_schedule``: ((samples learnt, value), ...) applied as a
    board's live learner applies them (ffrt.schedule.step before each learn).
    ``sleep``: (every, steps, positives) of ffrt.sleep, as a board's live learner sleeps
    (each sample learnt awake, its positive phase, and kept in the buffer; `steps` sleep
    steps after every `every` samples); needs the rehearsal buffer. `sleep(n)` sleeps now.
    ``guard``: ffrt.guard.Guard's (every, patience, max_pinned_q8, save_every), rolling
    back to the starting weights, as a board's guard rolls back to the checkpoint it was
    given them in (`twin_guard`).
    """

    def __init__(self, net, rehearsal=None, predict="goodness", lr_schedule=(),
                 theta_schedule=(), sleep=None, guard=None):
        per_class, replay = rehearsal if rehearsal is not None else (0, 1)
        super().__init__(net, per_class, replay, predict == "head")
        self.set_schedules(lr_schedule, theta_schedule)
        if sleep is not None:
            from ffrt.sleep import setup
            setup(self, sleep)
        if guard is not None:
            self.guard = twin_guard(net, guard)

    def predict_one(self, x):
        return self.predict(x)

    def learn_one(self, x, y):
        self.learn(x, y)

    def sleep(self, n):
        """n sleep steps now (ffrt.sleep); returns the steps done."""
        from ffrt import sleep
        return sleep.sleep(self, n)


def twin_guard(net, guard, folder=None):
    """An ffrt.guard.Guard over net with guard's (every, patience, max_pinned_q8,
    save_every), its checkpoints in folder (a fresh temporary one if None) holding net as
    it is now: what a board's guard rolls back to is its newest checkpoint, the weights
    it started adapting from (ffkit.sessions.stream checkpoints them)."""
    import tempfile

    from ffrt.guard import Guard
    from ffrt.storage import Storage
    if folder is None:
        folder = tempfile.mkdtemp(prefix="ffkit-twin-")
    st = Storage(folder)
    for name in ("ckpt_a.bin", "ckpt_b.bin"):
        try:
            os.remove(st.path(name))
        except OSError:
            pass
    st.save(net)
    return Guard(net, st, *guard)


def ff_factory(weights_bytes, per_class=None, replay=1, kernels=None, lr_shift=None,
               predict="goodness", lr_shift_schedule=(), theta_schedule=(), sleep=None,
               guard=None):
    """fresh() for the integer FF: a reload of the .ffw bytes (numpy kernels by default).

    ``per_class``: None for plain learning, else a rehearsal buffer of per_class samples
    per class and replay replays (ffrt.rehearsal).
    ``lr_shift``: the learning-rate shift used while adapting (default: the file's).
    ``predict``: "goodness" (`FFNet.predict_one`) or "head" (`FFNet.predict_head`).
    ``lr_shift_schedule`` / ``theta_schedule`` / ``sleep`` / ``guard``: as a board's
    [adapt] (`FFLearner`).
    """
    from ffrt import ffw_ram
    if kernels is None:
        from ffkit.twins.kernels import host_kernels
        kernels = host_kernels()
    data = bytes(weights_bytes)

    def fresh():
        net = ffw_ram.load(data, kernels)
        if lr_shift is not None:
            net.cfg.lr_shift = lr_shift
        reh = (per_class, replay) if per_class is not None else None
        return FFLearner(net, reh, predict, lr_shift_schedule, theta_schedule, sleep, guard)
    return fresh


def adapt_factory(weights_bytes, adapt, kernels=None):
    """`ff_factory` with a model file's [adapt] (a config.AdaptSpec): its buffer, rate,
    prediction, schedules, sleep and guard, as a board running that file adapts."""
    return ff_factory(weights_bytes, per_class=adapt.per_class or None, replay=adapt.replay,
                      kernels=kernels, lr_shift=adapt.lr_shift, predict=adapt.predict,
                      lr_shift_schedule=adapt.lr_shift_schedule,
                      theta_schedule=adapt.theta_schedule, sleep=adapt.sleep,
                      guard=adapt.guard)


def copy_factory(learner):
    """fresh() as a deep copy of a bootstrapped learner (for float baselines)."""
    return lambda: copy.deepcopy(learner)


# ---- the board's own learner over precomputed windows ------------------------------------

def live_factory(weights_bytes, adapt=None, kernels=None):
    """fresh() for `personalise_live`: an ``ffrt.live.LiveLearner`` (the board's learner,
    the same class ``ffkit stream`` runs on both ends) over a reload of the .ffw bytes,
    set up from a model file's [adapt] (a config.AdaptSpec; None: plain learning, the
    file's lr_shift, predicting by goodness)."""
    from ffrt import ffw_ram
    from ffrt.live import LiveLearner
    if kernels is None:
        from ffkit.twins.kernels import host_kernels
        kernels = host_kernels()
    data = bytes(weights_bytes)

    def fresh():
        net = ffw_ram.load(data, kernels)
        if adapt is None:
            return LiveLearner(net)
        if adapt.lr_shift is not None:
            net.cfg.lr_shift = adapt.lr_shift
        live = LiveLearner(net, adapt.per_class, adapt.replay, adapt.predict == "head")
        live.set_schedules(adapt.lr_shift_schedule, adapt.theta_schedule)
        sleep = getattr(adapt, "sleep", None)
        if sleep is not None:
            from ffrt.sleep import setup
            setup(live, sleep)
        if getattr(adapt, "guard", None) is not None:
            live.guard = twin_guard(net, adapt.guard)
        return live
    return fresh


def _session_windows(rec, subject, sessions):
    """[(X rows, labels)] per session in time order: every window of the stream, labels -1
    where HAPT has no target (a board predicts those, learns none, and a recurrent net's
    state moves on through them)."""
    from ffkit.data import hapt
    w = hapt.windows(subjects=(subject,), sessions=sessions, targets_only=False,
                     recording=rec)
    out = []
    for sess in sorted(set(w["session"].tolist())):
        m = np.flatnonzero(w["session"] == sess)
        m = m[np.argsort(w["start"][m], kind="stable")]
        out.append((_rows(w["X"][m]), w["y"][m].astype(int).tolist()))
    return out


def _stream_sessions(live, sessions, learning):
    """Every window through live.window, a new session (NEW_SESSION) for each; returns
    (hits, labelled) over the labelled windows."""
    live.learning = learning
    hits = n = 0
    for rows, labels in sessions:
        live.reset(False)
        for x, y in zip(rows, labels):
            p = live.window(x, y)
            if y >= 0:
                hits += p == y
                n += 1
    return hits, n


def personalise_live(fresh, rec=None, subjects=TEST_SUBJECTS):
    """`personalise` as ``ffkit stream --protocol personalise`` runs it on a board, over
    precomputed window features: per subject a fresh ``LiveLearner`` (``fresh()``, e.g.
    `live_factory`) gets the last session with learning off (frozen), another fresh one
    the earlier session(s) with learning on and then the last with learning off
    (adapted). Every window of each session is streamed in time order (the ones without
    a target are predicted, never learnt or scored), so a recurrent model's state sees
    the stream a board sees. Same result dict as `personalise`."""
    from ffkit.data import hapt
    rec = rec if rec is not None else hapt.load()
    subjects = tuple(int(s) for s in subjects)
    per = {}
    for s in subjects:
        last = _session_windows(rec, s, "last")
        earlier = _session_windows(rec, s, "earlier")
        h, n = _stream_sessions(fresh(), last, False)
        live = fresh()
        _, n_adapt = _stream_sessions(live, earlier, True)
        h2, _ = _stream_sessions(live, last, False)
        per[s] = {"frozen": h / n, "adapted": h2 / n, "n_test": n, "n_adapt": n_adapt}
    return {
        "subjects": per,
        "frozen_accuracy": float(np.mean([per[s]["frozen"] for s in subjects])),
        "adapted_accuracy": float(np.mean([per[s]["adapted"] for s in subjects])),
        "worst_subject_frozen": _worst(per, "frozen"),
        "worst_subject_adapted": _worst(per, "adapted"),
    }
