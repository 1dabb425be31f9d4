"""``ffkit stream``: raw HAPT samples to a board, which computes features, predicts and learns.

    ffkit stream --dataset hapt --weights hapt.ffw --json                # a virtual board
    ffkit stream --dataset hapt --weights hapt.ffw --port /dev/ttyACM0 --protocol prequential

The host sends each session's int16 IMU samples (ffkit.data.hapt: 4096 LSB/g, 2048 LSB/(rad/s))
in SAMPLES frames of 48; the board's live learner (ffrt.live.LiveLearner, the
ffrt.features windower, the net, the rehearsal buffer) makes a window of every 128
samples with a hop of 64 from each session's first sample, predicts it, and learns the
windows whose label the host sent (activities 1-6; other windows are predicted and never
learnt or scored). Protocols, as ffkit.learning.protocols states them for host-only learners:

- personalise: W is imported and checkpointed once (with the [adapt] lr_shift, set by
  SET before the checkpoint); per subject a RESET reload (a fresh board: the checkpoint,
  an empty windower and rehearsal buffer), the last session streamed with learning off
  (frozen accuracy), the earlier session(s) with learning on, the last session again
  with learning off (adapted accuracy).
- prequential: per subject a RESET reload, then every session in time order with
  learning on; each window is predicted before it is learnt (prequential accuracy).

With [adapt] sleep (or ``--sleep EVERY:STEPS``: ffrt.sleep), board and twin learn each
window awake (its positive phase) and sleep STEPS negative steps on the rehearsal buffer
after every EVERY windows learnt; ``sleep_steps`` counts the twin's.

Beside them, previous_label_accuracy (ffkit.learning.protocols) on the same windows: the bar a
stream learner has to clear. The host runs the same LiveLearner class in CPython (numpy
kernels, the windows' features from ffkit.twins.features_np, which is bit-identical to the
board's ffrt.features) on the same stream from the same checkpoint; ``bit_identical`` is
true when the board's exported weights after the last subject equal the host's byte for
byte and every one of the board's predictions equals the host's.

Plots (ffkit.plots, PNG): accuracy per subject, accuracy over the stream, goodness of
positive and negative data per layer over the stream (from the host's twin).

Size (over 500 lines): the two protocols (personalise, prequential), the host twin that
checks every window bit for bit, and the report share one session loop.
"""

import dataclasses
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffkit import FFKitError

PROTOCOLS = ("personalise", "prequential")
NO_LABEL = -1


@dataclass
class Session:
    """What is streamed of one recorded session: its samples and their windows."""

    subject: int
    session: int
    samples: np.ndarray   # (n, 6) int16, as the board receives them
    y: np.ndarray         # label 0..5 of each window the samples make, NO_LABEL if none
    X: np.ndarray         # (windows, 72) uint8 features (features_np), for the host's twin

    @property
    def targets(self):
        return int((self.y >= 0).sum())


def subject_sessions(rec, subject, limit=None):
    """The sessions of a subject in time order, each cut to its first `limit` windows."""
    from ffkit.data import hapt
    from ffkit.twins import features_np

    out = []
    for s in sorted(np.flatnonzero(rec.subject == subject), key=lambda s: rec.session[s]):
        a, b = rec.session_range(s)
        n = b - a
        if limit is not None:
            n = min(n, features_np.WINDOW + features_np.HOP * (limit - 1))
        samples = rec.samples[a:a + n]
        starts = features_np.window_starts(n)
        act = hapt.window_activity(rec.labels[a:a + n], starts, features_np.WINDOW)
        y = np.where((act >= 1) & (act <= 6), act - 1, NO_LABEL)
        out.append(Session(int(subject), int(rec.session[s]), samples, y,
                           features_np.features(samples, starts)))
    return out


def target_streams(plan):
    """{subject: (features, labels, session)} of the target windows of {subject: sessions},
    in time order: the streams ffkit.learning.protocols takes (subjects without one left out)."""
    out = {}
    for s, sessions in plan.items():
        xs, ys, ss = [], [], []
        for sess in sessions:
            m = sess.y >= 0
            xs += sess.X[m].tolist()
            ys += sess.y[m].tolist()
            ss += [sess.session] * int(m.sum())
        if ys:
            out[s] = (xs, ys, ss)
    return out


def phases(protocol, sessions):
    """[(name, session, learn)] for one subject under a protocol."""
    if protocol == "personalise":
        last = sessions[-1]
        return ([("frozen", last, False)] + [("adapt", s, True) for s in sessions[:-1]]
                + [("adapted", last, False)])
    return [("prequential", s, True) for s in sessions]


class HostTwin:
    """The board's computation on the host: ffrt.live.LiveLearner over FFNet with numpy
    kernels, loaded from the same checkpoint bytes; with track, the goodness of every
    learnt window per layer with its label (positive) and with the hardest wrong label
    (negative), measured before it is learnt."""

    def __init__(self, start, adapt, track=False):
        self.start = bytes(start)
        self.adapt = adapt
        self.track = track
        self.g_pos = []
        self.g_neg = []
        self.net = self.live = None
        self._folder = None   # the guard's checkpoints, when there is a guard

    def fresh(self):
        from ffrt import ffw_ram
        from ffrt.live import LiveLearner

        from ffkit.twins import kernels_np

        self.net = ffw_ram.load(self.start, kernels_np)
        self.live = LiveLearner(self.net, self.adapt.per_class, self.adapt.replay,
                                self.adapt.predict == "head")
        self.live.set_schedules(self.adapt.lr_shift_schedule, self.adapt.theta_schedule)
        if self.adapt.sleep is not None:
            from ffrt.sleep import setup
            setup(self.live, self.adapt.sleep)
        if self.adapt.guard is not None:
            # the board's guard rolls back to its newest checkpoint, which is the start
            # (stream.run checkpoints it): the twin keeps that checkpoint in a folder
            from ffkit.learning.protocols import twin_guard
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="ffkit-twin-")
            self.live.guard = twin_guard(self.net, self.adapt.guard, self._folder)

    def subject(self, plan):
        """A fresh twin through one subject's phases [(name, session, learn)]; returns
        the predictions of each phase."""
        self.fresh()
        return [self.run(sess, learn) for _, sess, learn in plan]

    def run(self, sess, learn):
        live = self.live
        live.reset(False)
        live.learning = learn
        preds = []
        for x, y in zip(sess.X, sess.y.tolist()):
            x = x.tobytes()
            if learn and y >= 0 and self.track:
                self._goodness(x, y)
            preds.append(live.window(x, y))
        return preds

    def _goodness(self, x, y):
        net = self.net
        rec = _Recording(net.k)
        net.k = rec  # FFNet.goodness_of, with each layer's goodness kept on the way
        try:
            total = [net.goodness_of(x, c) for c in range(net.cfg.n_classes)]
        finally:
            net.k = rec.kernels
        L = net.n_layers
        neg = max((c for c in range(len(total)) if c != y), key=lambda c: total[c])
        self.g_pos.append(rec.g[y * L:(y + 1) * L])
        self.g_neg.append(rec.g[neg * L:(neg + 1) * L])


class _Recording:
    """Kernels that keep what fc_relu returns (a layer's goodness), and are otherwise the
    kernels they wrap: the host reads per-layer goodness without a second forward pass."""

    def __init__(self, kernels):
        self.kernels = kernels
        self.g = []

    def __getattr__(self, name):
        return getattr(self.kernels, name)

    def fc_relu(self, *args):
        g = self.kernels.fc_relu(*args)
        self.g.append(int(g))
        return g


def twin_subject(start, adapt, track, plan):
    """`HostTwin.subject` in a worker process: (predictions per phase, goodness of
    positive and of negative data per learnt window, the twin's .ffw afterwards, seconds,
    sleep steps).

    A process, not a thread: the twin's Python would hold the GIL that the virtual board's
    relay thread needs, and the board would wait on it."""
    from ffrt import ffw_ram

    t0 = time.perf_counter()
    twin = HostTwin(start, adapt, track)
    preds = twin.subject(plan)
    return preds, twin.g_pos, twin.g_neg, bytes(ffw_ram.encode(twin.net)), \
        time.perf_counter() - t0, twin.live.slept


def start_bytes(weights, lr_shift):
    """The checkpoint the board reloads: W, with lr_shift set as SET sets it."""
    from ffrt import ffw_ram
    from ffrt.model import Config

    net = ffw_ram.load(bytes(weights))
    if lr_shift is not None and lr_shift != net.cfg.lr_shift:
        net.cfg = Config(**dict(net.cfg.as_dict(), lr_shift=lr_shift))
    return bytes(ffw_ram.encode(net))


def check_model(cfg):
    from ffrt.features import N_FEATURES

    from ffkit.data import hapt
    if cfg.n_features != N_FEATURES or cfg.in_max != 255 or cfg.n_classes != len(hapt.TARGETS):
        raise FFKitError("the weights take %d features in 0..%d and %d classes; streaming HAPT "
                         "needs the %d window features (ffrt.features) in 0..255 and %d "
                         "classes (train one: ffkit train --dataset hapt)"
                         % (cfg.n_features, cfg.in_max, cfg.n_classes, N_FEATURES,
                            len(hapt.TARGETS)))


def _mean(vals):
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def _acc(preds, y):
    m = y >= 0
    if not m.any():
        return None
    return float((np.asarray(preds)[m] == y[m]).mean())


def _worst(per, key):
    have = [s for s in per if per[s].get(key) is not None]
    if not have:
        return None
    s = min(have, key=lambda k: per[k][key])
    return {"subject": s, "accuracy": per[s][key]}


def run(board, weights, adapt, subjects, protocol="personalise", limit=None, rec=None,
        plots_dir=None, progress=None, say=None, parallel=True, log_path=None,
        log_digest_every=64):
    """Stream the protocol to `board` (a connected ffkit.board.client.Board); returns the result
    dict (the module docstring; ``ffkit stream --json`` prints it).

    weights: the .ffw bytes; adapt: a config.AdaptSpec; plots_dir: write the PNGs there
    (None: no plots); progress(windows done, windows in all); say(text): a line of news.
    parallel: the host's twin runs in a worker process (multiprocessing "spawn": a script
    calling this needs the ``if __name__ == "__main__":`` guard), else after each subject.
    log_path: record the board's session log there (ffkit.sessions.logs.Recorder), from right after
    the import, with a DIGEST every log_digest_every logged requests: ``ffkit replay
    log_path --weights W`` replays it.
    """
    from ffrt import ffw_ram

    from ffkit.data import hapt

    from ffkit.learning import protocols

    if protocol not in PROTOCOLS:
        raise FFKitError("unknown protocol %r (%s)" % (protocol, ", ".join(PROTOCOLS)))
    if limit is not None and limit < 1:
        raise FFKitError("--limit must be at least 1 window")
    cfg = ffw_ram.decode_config(bytes(weights))
    check_model(cfg)
    if adapt.guard is not None and adapt.guard[3]:
        raise FFKitError("a guard that saves checkpoints (save_every %d) would replace the "
                         "checkpoint each subject starts from: stream with save_every 0"
                         % adapt.guard[3])
    rec = rec if rec is not None else hapt.load()
    subjects = tuple(int(s) for s in subjects)
    plan = {s: subject_sessions(rec, s, limit) for s in subjects}
    total = sum(len(x.y) for s in subjects for _, x, _ in phases(protocol, plan[s]))

    # the board: W imported (a checkpoint), the adapt lr_shift, checkpointed again
    board.import_weights(bytes(weights))
    recorder = None
    if log_path is not None:
        from ffkit.sessions.logs import Recorder
        recorder = Recorder(board, log_path, digest_every=log_digest_every)
    if adapt.lr_shift is not None:
        board.set(lr_shift=adapt.lr_shift)
        board.checkpoint()
    board.adapt(adapt.per_class, adapt.replay, adapt.predict, adapt.lr_shift_schedule,
                adapt.theta_schedule, adapt.guard, adapt.sleep)
    start = start_bytes(weights, adapt.lr_shift)
    track = plots_dir is not None

    tally = _Tally()
    board_s = host_s = 0.0
    done = slept = 0
    host_file = None
    # the host's twin computes each subject in a worker process while the board streams it
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) \
        if parallel else None
    try:
        for s in subjects:
            plan_s = phases(protocol, plan[s])
            job = (start, adapt, track, [(n, dataclasses.replace(x, samples=None), learn)
                                         for n, x, learn in plan_s])
            twin_done = pool.submit(twin_subject, *job) if pool is not None else None
            board.reset("reload")
            got = []
            for name, sess, learn in plan_s:
                t0 = time.perf_counter()
                got.append(board.stream_session(
                    sess.samples, sess.y.tolist(), learn=learn,
                    after_frame=recorder.maybe_drain if recorder is not None else None)[1])
                board_s += time.perf_counter() - t0
                done += len(sess.y)
                if progress is not None:
                    progress(done, total)
            want, g_pos, g_neg, host_file, seconds, twin_slept = \
                twin_done.result() if twin_done is not None else twin_subject(*job)
            host_s += seconds
            slept += twin_slept
            tally.g_pos += g_pos
            tally.g_neg += g_neg
            row = tally.subject(s, protocol, plan_s, got, want)
            if say is not None:
                say("subject %d: %s" % (s, ", ".join(
                    "%s %.3f" % (k, row[k]) for k in ("frozen", "adapted", "prequential")
                    if row.get(k) is not None)))
    finally:
        if pool is not None:
            pool.shutdown()

    log = recorder.close() if recorder is not None else None
    live = board.adapt()  # its RAM now that the rehearsal buffer is held
    t0 = time.perf_counter()
    exported = board.export()
    export_s = time.perf_counter() - t0
    # the least free heap the board read (ffrt.server; garbage counted as used); None
    # from a board that cannot tell (ffrt under CPython)
    min_free = board.info().get("mem_free_min")
    board_net = ffw_ram.load(exported)
    host_net = ffw_ram.load(host_file)
    weights_identical = exported == host_file

    per, hits = tally.per, tally.hits
    streams = target_streams(plan)
    prev = protocols.previous_label_accuracy(streams, tuple(streams)) if streams else None

    result = {
        "dataset": "hapt",
        "protocol": protocol,
        "subjects": list(subjects),
        "limit": limit,
        "guard_rollbacks": live.get("guard_rollbacks", 0),
        "adapt": {"per_class": adapt.per_class, "replay": adapt.replay,
                  "lr_shift": adapt.lr_shift if adapt.lr_shift is not None
                  else cfg.lr_shift, "predict": adapt.predict,
                  "lr_shift_schedule": [list(e) for e in adapt.lr_shift_schedule],
                  "theta_schedule": [[a, list(v)] for a, v in adapt.theta_schedule],
                  "guard": list(adapt.guard) if adapt.guard is not None else None,
                  "sleep": None if adapt.sleep is None else
                  {"every": adapt.sleep[0], "steps": adapt.sleep[1],
                   "positives": bool(adapt.sleep[2])}},
        "sleep_steps": slept,
        "live_ram_bytes": live["ram_bytes"],
        "min_free_heap_bytes": min_free,
        "frozen_accuracy": _mean(per[s].get("frozen") for s in subjects),
        "adapted_accuracy": _mean(per[s].get("adapted") for s in subjects),
        "worst_subject_frozen": _worst(per, "frozen"),
        "worst_subject_adapted": _worst(per, "adapted"),
        "prequential_accuracy": (float(np.mean(hits)) if hits else None)
        if protocol == "prequential" else None,
        "previous_label_accuracy": prev,
        "samples": tally.samples,
        "windows": tally.windows,
        "windows_per_s": round(tally.windows / board_s, 1) if board_s > 0 else None,
        "board_seconds": round(board_s, 3),
        "host_seconds": round(host_s, 3),
        "export_seconds": round(export_s, 3),
        "bit_identical": weights_identical and tally.mismatches == 0,
        "weights_identical": weights_identical,
        "prediction_mismatches": tally.mismatches,
        "first_mismatch": tally.first,
        "board_step": board_net.step,
        "host_step": host_net.step,
        "board_weights_crc32": "%08x" % ffw_ram.weights_crc32(board_net),
        "host_weights_crc32": "%08x" % ffw_ram.weights_crc32(host_net),
        "per_subject": {str(s): per[s] for s in subjects},
        "plots": [],
        "log": log,
    }
    if plots_dir is not None:
        from ffkit import plots
        result["plots"] = plots.write_all(plots_dir, result, hits, tally.starts,
                                          tally.g_pos, tally.g_neg, list(cfg.theta))
    return result


class _Tally:
    """The board's predictions scored, and held to the host's twin, subject by subject."""

    def __init__(self):
        self.per = {}        # subject -> its row of the per-subject table
        self.hits = []       # 1/0 per learnt target window, stream order (predicted first)
        self.starts = []     # where in hits each subject starts
        self.g_pos = []      # the twin's goodness per layer of those windows, positive
        self.g_neg = []      # ... and hardest negative
        self.mismatches = 0
        self.first = None    # the first prediction where board and host differ
        self.samples = self.windows = 0

    def subject(self, s, protocol, plan, got, want):
        """Score one subject's phases (board predictions got, host's want); its row."""
        row = {"windows": 0}
        self.starts.append(len(self.hits))
        pooled = []
        for (name, sess, learn), g, w in zip(plan, got, want):
            self._compare(s, name, sess, g, w)
            self.samples += len(sess.samples)
            self.windows += len(g)
            row["windows"] += len(g)
            if name in ("frozen", "adapted"):
                row[name] = _acc(g, sess.y)
                row["n_test"] = sess.targets
            if learn:
                m = sess.y >= 0
                pooled += (np.asarray(g)[m] == sess.y[m]).astype(int).tolist()
                row["n_adapt"] = row.get("n_adapt", 0) + sess.targets
        self.hits += pooled
        if protocol == "prequential":
            row["prequential"] = float(np.mean(pooled)) if pooled else None
        self.per[s] = row
        return row

    def _compare(self, s, name, sess, got, want):
        if got == want:
            return
        bad = [i for i, (p, q) in enumerate(zip(got, want)) if p != q]
        self.mismatches += len(bad) + abs(len(got) - len(want))
        if self.first is None:
            i = bad[0] if bad else min(len(got), len(want))
            self.first = {"subject": s, "session": sess.session, "phase": name, "window": i,
                          "board": got[i] if i < len(got) else None,
                          "host": want[i] if i < len(want) else None}


def format_lines(r):
    """The human text of a result (what --json prints as an object)."""
    def f(v):
        return "-" if v is None else "%.4f" % v

    def worst(w):
        return "-" if w is None else "%.4f (subject %d)" % (w["accuracy"], w["subject"])

    a = r["adapt"]
    lines = [
        "hapt, protocol %s, subjects %s%s" % (
            r["protocol"], _ranges(r["subjects"]),
            "" if r["limit"] is None else ", at most %d windows per session" % r["limit"]),
        "adapt: rehearsal %d per class, replay %d, lr_shift %d, predict by %s "
        "(live learner RAM %d bytes)" % (a["per_class"], a["replay"], a["lr_shift"],
                                         a["predict"], r["live_ram_bytes"]),
    ]
    if a.get("sleep") is not None:
        sl = a["sleep"]
        lines.append("sleep: each window learnt awake (positive phase), %d sleep steps%s "
                     "every %s windows learnt: %d sleep steps in all"
                     % (sl["steps"], " (both phases)" if sl["positives"] else "",
                        sl["every"] or "(never: only on request)", r["sleep_steps"]))
    if r["protocol"] == "personalise":
        lines += ["frozen accuracy          %s   worst %s" % (f(r["frozen_accuracy"]),
                                                             worst(r["worst_subject_frozen"])),
                  "adapted accuracy         %s   worst %s" % (f(r["adapted_accuracy"]),
                                                             worst(r["worst_subject_adapted"]))]
    else:
        lines.append("prequential accuracy     %s" % f(r["prequential_accuracy"]))
    lines += [
        "previous-label accuracy  %s   (predict each window as the one before: the bar)"
        % f(r["previous_label_accuracy"]),
        "streamed %d samples, %d windows: %s windows/s on the board (link included)"
        % (r["samples"], r["windows"], r["windows_per_s"]),
    ]
    if r.get("min_free_heap_bytes") is not None:
        lines.append("heap headroom: at least %d bytes free (the least the board read)"
                     % r["min_free_heap_bytes"])
    lines += [
        "board vs host: %s (weights crc32 %s / %s, step %d / %d, %d prediction "
        "mismatch(es))" % ("BIT-IDENTICAL" if r["bit_identical"] else "DIFFERENT",
                          r["board_weights_crc32"], r["host_weights_crc32"], r["board_step"],
                          r["host_step"], r["prediction_mismatches"]),
        "per subject: " + ", ".join(
            "%s %s" % (s, "/".join(f(v.get(k)) for k in ("frozen", "adapted", "prequential")
                                   if k in v))
            for s, v in r["per_subject"].items()),
    ]
    for p in r["plots"]:
        lines.append("plot: %s" % p)
    return lines


def _ranges(xs):
    """[16, 17, 18, 20] -> '16-18,20'."""
    out = []
    for x in xs:
        if out and x == out[-1][1] + 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ",".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in out)


def open_board(args, weights):
    """(board, closer): a connected Board on --port, or on a new virtual board that boots
    from the weights (so its net has their shape) in a temporary folder."""
    from ffkit.board.client import connect

    if args.port is not None:
        board = connect(args.port, timeout=args.timeout)
        return board, board.close
    from ffkit.board.sim import VirtualBoard

    tmp = tempfile.TemporaryDirectory(prefix="ffkit-stream-")
    folder = Path(tmp.name) / "board"
    folder.mkdir()
    (folder / "model.ffw").write_bytes(weights)
    vb = VirtualBoard(folder, heap=args.heap)
    vb.start()
    try:
        board = connect(vb.port, timeout=args.timeout, hello_timeout=10.0)
    except BaseException:
        vb.stop()
        tmp.cleanup()
        raise

    def close():
        try:
            board.close()
        finally:
            vb.stop()
            tmp.cleanup()
    return board, close
