"""``ffkit demo``: a virtual board keeps learning, and the host proves every bit of it.

    ffkit demo                       # make demo: the HAPT main job (ffkit.demo_hapt)
    ffkit demo --digits              # digits on a board: about 5 s on two cores
    ffkit demo --digits --stream 300 --heap 140K --keep board1
    ffkit demo --host                # the host-only tour: evaluate, explain predictions

Without --digits or --host, `ffkit demo` is the main job of ffkit.demo_hapt: bootstrap on
HAPT, flash a virtual board, personalise it to the held-out subjects from raw IMU samples,
export, and show frozen vs adapted accuracy and the plots.

The digits board demo, step by step (`run_board_demo` returns the figures it prints):

1. a virtual board (ffkit.board.sim.VirtualBoard) in a temporary folder: the repo's firmware,
   compiled from source, in the MicroPython unix port on a pty with a 192 KB heap (about
   a Raspberry Pi Pico's), booted with fresh weights;
2. ``ffkit flash --board unix`` onto it (ffkit.board.flash): ffrt cross-compiled to x64 .mpy,
   copied with mpremote, the firmware restarted from the flashed bundle;
3. ``ffkit import models/digits.ffw``: the bootstrapped weights (trained on the host with
   the integer rule), checked on the host, staged, checked again, committed atomically;
4. accuracy before learning: the board predicts the evaluation digits (STREAM without
   labels: prediction only, the weights hold still);
5. learning: the board is streamed labelled digits it has never seen. STREAM (ffrt.net_ops)
   predicts each sample, then learns it (learn_one), sample by sample in order, so each
   prediction comes from the weights after the samples before it;
6. accuracy after learning, on the same evaluation digits;
7. the board's weights are exported (.ffw) and compared byte for byte with the host's own
   computation: ``ffw_ram.load(models/digits.ffw)`` with the numpy kernels, then for every
   streamed digit predict_one and learn_one in the same order. The .ffw holds every bit
   of state (weights, head, PRNG streams, step), so equal files mean equal nets.

The data: scikit-learn's digits, split as everywhere in ffkit (stratified 75/25,
random_state=0). The model was trained on the 1,347 training digits; the board learns
from the first ``n_stream`` of the 450 held-out digits (new data, as a device in the
field sees it: streaming the training split again would re-teach what the model already
knows) and is scored on the rest, which neither the host nor the board ever learns from.
The accuracy change is small and noisy (the model keeps its slow final rate, lr_shift 27,
and 150 evaluation digits are 0.0067 each); the point is that the board learns on its
own and that its result is exactly the host's.
"""

import re
import tempfile
import time
from pathlib import Path

from ffkit import FFKitError, UsageError

_FILE_LINE = re.compile(r"^\s+\[\s*\d+/\d+\]")   # flash's per-file lines


def _learn_one(net, x, y):
    net.learn_one(x, y)


def first_difference(a, b):
    """The first offset where two byte strings differ, or None when they are equal.

    >>> first_difference(b"abc", b"abc"), first_difference(b"abc", b"abd"), \\
    ...     first_difference(b"ab", b"abc")
    (None, 2, 2)
    """
    for i, (p, q) in enumerate(zip(a, b)):
        if p != q:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


DEMO_HEAP = "192K"   # about a Raspberry Pi Pico's heap (firmware/ffrt/boards.py)


def start_and_flash(vb, say, step, timeout=2.0):
    """Steps 1 and 2 of both demos: start the virtual board, flash ffrt onto it.

    step(n, text) announces each; returns the seconds the flash took.
    """
    from ffkit.board.builds import build_bundle
    from ffkit.board.flash import Flasher

    vb.start()
    step(1, "virtual board: the firmware (ffrt from source) in the MicroPython unix port, "
            "on %s, filesystem %s%s" % (vb.port, vb.dir,
                                        ", heap %s" % vb.heap if vb.heap else ""))
    step(2, "ffkit flash --board unix --port %s: ffrt as x64 .mpy, copied with mpremote"
         % vb.port)
    with tempfile.TemporaryDirectory(prefix="ffkit-flash-") as btmp:
        bundle = build_bundle("unix", btmp)
        t0 = time.perf_counter()
        Flasher(vb.port, bundle, timeout=timeout,
                say=lambda s: None if _FILE_LINE.match(s) else say("      flash " + s)).run()
        return round(time.perf_counter() - t0, 3)


def flashed_board(folder, heap, weights, say, step, timeout=2.0):
    """(VirtualBoard, Board): a virtual board in `folder` that boots from `weights`
    (model.ffw, so its net has their shape), flashed, with a host session on it."""
    from ffkit.board.client import Board
    from ffkit.board.link import open_link
    from ffkit.board.sim import VirtualBoard

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.ffw").write_bytes(weights)
    vb = VirtualBoard(folder, heap=heap)
    try:
        start_and_flash(vb, say, step, timeout)
        link = open_link(vb.port)
        try:
            return vb, Board(link, timeout=timeout, hello_timeout=timeout)
        except BaseException:
            link.close()
            raise
    except BaseException:
        vb.stop()
        raise


def run_board_demo(n_stream=300, n_eval=None, model=None, heap=DEMO_HEAP, say=print,
                   host_learn=None, keep=None, timeout=2.0):
    """The board demo (module docstring); returns a dict of what it measured.

    n_stream: held-out digits the board learns from; n_eval: how many of the remaining
    held-out digits to score (default all of them). model: the .ffw to import (default
    models/digits.ffw). heap: the virtual board's heap (``-X heapsize``; None: the unix
    port's 2 MB). keep: a folder
    to use (and keep) as the board's filesystem instead of a temporary one.
    host_learn(net, x, y): the host's learn step (default net.learn_one); anything else
    is a different computation, and the verdict ``identical`` is then False.

    The result's ``identical`` is computed: the board's export equals, byte for byte,
    ``ffw_ram.encode`` of the host's net after the same steps.
    """
    from ffrt import ffw_ram

    from ffkit import config

    from ffkit.data import datasets

    from ffkit.twins import kernels_np
    from ffkit.board.client import Board
    from ffkit.data.datasets import as_labels, as_rows
    from ffkit.board.link import open_link
    from ffkit.board.sim import VirtualBoard

    t_start = time.perf_counter()
    host_learn = host_learn or _learn_one
    model = Path(model) if model is not None else config.models_dir() / "digits.ffw"
    blob = model.read_bytes()
    data = datasets.load("digits")
    X, y = as_rows(data.X_test), as_labels(data.y_test)
    if not 0 < n_stream < len(y):
        raise UsageError("--stream must be in 1..%d (the held-out split has %d digits)"
                         % (len(y) - 1, len(y)))
    rest = len(y) - n_stream
    n_eval = rest if n_eval is None else n_eval
    if not 0 < n_eval <= rest:
        raise UsageError("--eval must be in 1..%d" % rest)
    stream_x, stream_y = X[:n_stream], y[:n_stream]
    eval_x, eval_y = X[n_stream:n_stream + n_eval], y[n_stream:n_stream + n_eval]
    res = {"model": str(model), "n_stream": n_stream, "n_eval": n_eval, "heap": heap}

    def step(n, text):
        say("[%d/7] %s" % (n, text))

    def acc(preds, labels):
        return sum(int(p == t) for p, t in zip(preds, labels)) / len(labels)

    tmp = None
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="ffkit-demo-")
        folder = Path(tmp.name) / "board"
    else:
        folder = Path(keep)
    vb = VirtualBoard(folder, heap=heap)
    try:
        res["flash_seconds"] = start_and_flash(vb, say, step, timeout)
        link = open_link(vb.port)
        try:
            board = Board(link, timeout=timeout, hello_timeout=timeout)
            # 3. import the bootstrapped weights
            t0 = time.perf_counter()
            step_after = board.import_weights(blob)
            info = board.info()
            res["import_seconds"] = round(time.perf_counter() - t0, 3)
            step(3, "ffkit import %s: %d bytes checked on the host, staged, checked on the "
                    "board, committed as checkpoint %s; the board runs it at step %d"
                    % (model.name, len(blob), info.get("checkpoint"), step_after))
            host = ffw_ram.load(blob, kernels=kernels_np)
            # 4. frozen accuracy
            _, frozen = board.stream([(x, None) for x in eval_x])
            host_frozen = [host.predict_one(x) for x in eval_x]
            res["accuracy_frozen"] = acc(frozen, eval_y)
            step(4, "before learning: the board predicts %d held-out digits (no labels sent, "
                    "so nothing is learned): accuracy %.4f"
                 % (n_eval, res["accuracy_frozen"]))
            # 5. the board learns; the host replays the same steps
            t0 = time.perf_counter()
            step_end, seen = board.stream(list(zip(stream_x, stream_y)))
            res["board_stream_seconds"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            host_seen = []
            for xv, yv in zip(stream_x, stream_y):   # what ffrt.net_ops STREAM does, in order
                host_seen.append(host.predict_one(xv))
                host_learn(host, xv, yv)
            res["host_replay_seconds"] = round(time.perf_counter() - t0, 3)
            res["accuracy_prequential"] = acc(seen, stream_y)
            res["steps"] = step_end - step_after
            step(5, "learning: %d labelled digits it never saw, streamed; the board predicts "
                    "each, then learns it (%.4f predicted right before learning), step %d -> "
                    "%d, %.2f s on the board" % (n_stream, res["accuracy_prequential"],
                                                 step_after, step_end,
                                                 res["board_stream_seconds"]))
            # 6. accuracy after learning
            _, learned = board.stream([(x, None) for x in eval_x])
            host_learned = [host.predict_one(x) for x in eval_x]
            res["accuracy_learned"] = acc(learned, eval_y)
            step(6, "after learning: the same %d held-out digits: accuracy %.4f (was %.4f; "
                    "%+d digits)" % (n_eval, res["accuracy_learned"], res["accuracy_frozen"],
                                     sum(int(p == t) for p, t in zip(learned, eval_y))
                                     - sum(int(p == t) for p, t in zip(frozen, eval_y))))
            # 7. export and compare with the host's computation
            exported = board.export()
        finally:
            link.close()
        mine = bytes(ffw_ram.encode(host))
        board_net = ffw_ram.load(exported, kernels=kernels_np)
        res["identical"] = exported == mine
        res["first_difference"] = first_difference(exported, mine)
        res["predictions_identical"] = (list(frozen) == host_frozen and list(seen) == host_seen
                                        and list(learned) == host_learned)
        res["board_step"] = board_net.step
        res["host_step"] = host.step
        res["board_weights_crc32"] = "%08x" % ffw_ram.weights_crc32(board_net)
        res["host_weights_crc32"] = "%08x" % ffw_ram.weights_crc32(host)
        res["export_bytes"] = len(exported)
        verdict = ("IDENTICAL: all %d bytes equal" % len(exported) if res["identical"] else
                   "DIFFERENT: first differing byte at offset %s" % res["first_difference"])
        step(7, "ffkit export, compared with the host's replay (ffw_ram.load(%s), numpy kernels, "
                "predict_one then learn_one per streamed digit, same order):"
             % model.name)
        say("      board  step %d, weights crc32 %s" % (board_net.step,
                                                        res["board_weights_crc32"]))
        say("      host   step %d, weights crc32 %s" % (host.step, res["host_weights_crc32"]))
        say("      %s; the %d + %d + %d predictions %s" % (
            verdict, n_eval, n_stream, n_eval,
            "agree too" if res["predictions_identical"] else "do NOT all agree"))
    finally:
        vb.stop()
        if tmp is not None:
            tmp.cleanup()
    res["seconds"] = round(time.perf_counter() - t_start, 3)
    say("done in %.1f s: accuracy %.4f frozen, %.4f after learning on the board; export "
        "%s the host's computation" % (res["seconds"], res["accuracy_frozen"],
                                       res["accuracy_learned"],
                                       "equals" if res["identical"] else "DIFFERS from"))
    return res


# ---- the host-only tour (ffkit demo --host) -----------------------------------------------

_SHADES = " .:-=+*#%@"


def _digit_art(row):
    """An 8x8 digit (values 0..16) as text."""
    out = []
    for r in range(8):
        out.append("".join(_SHADES[min(9, v * 10 // 17)] * 2 for v in row[8 * r:8 * r + 8]))
    return out


def host_demo(args):
    """Load models/digits.ffw (or train briefly), evaluate it, explain a few predictions."""
    from ffrt.net import FFNet

    from ffkit import config

    from ffkit.data import datasets

    from ffkit.twins import kernels_np
    from ffkit.data.datasets import as_labels, as_rows
    from ffkit.learning.evaluate import report
    from ffkit.learning.train import train_spec
    from ffkit.weights import load_weights

    def shape(cfg):
        return "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers))

    data = datasets.load("digits")
    saved = config.models_dir() / "digits.ffw"
    spec_path = config.default_model_file("digits")
    if saved.is_file() and not args.retrain:
        net = load_weights(saved)
        print("model     %s (%s)" % (saved, shape(net.cfg)))
    else:
        if spec_path is None:
            raise FFKitError("models/digits.toml not found next to the package")
        spec = config.load(spec_path)
        net = FFNet(spec.model, kernels=kernels_np)
        print("model     %s from %s; training %d epochs on %d digits ..."
              % (shape(net.cfg), spec_path, args.epochs, len(data.y_train)))
        res = train_spec(net, spec, data.X_train, data.y_train, args.epochs,
                         progress=not args.no_progress)
        print("trained   %d steps in %.1f s (integer FF rule, numpy kernels)"
              % (res.steps, res.seconds))
    rep = report(net, data, control_epochs=max(1, args.epochs), kernels=kernels_np)
    print("held out  %d digits (%s)" % (rep["n_test"], data.split))
    print("  accuracy by goodness (FF)          %.4f" % rep["accuracy"])
    print("  accuracy of the linear head        %.4f" % rep["accuracy_head"])
    print("  head on an untrained net (control) %.4f" % rep["accuracy_head_untrained_control"])
    print()
    rows, labels = as_rows(data.X_test), as_labels(data.y_test)
    for k in range(min(args.samples, len(rows))):
        x, t = rows[k], labels[k]
        g = list(net.goodness_per_label(x))
        order = sorted(range(len(g)), key=lambda c: -g[c])
        pred = order[0]
        art = _digit_art(x)
        lines = ["test digit %d: true label %d, predicted %d%s"
                 % (k, t, pred, "" if pred == t else "  (wrong)"),
                 "goodness with each label overlaid (the most wins):"]
        top = max(g) or 1
        for c in order[:5]:
            lines.append("  %d  %8d %s" % (c, g[c], "#" * max(1, 20 * g[c] // top)))
        lines.append("  linear head says %d" % net.predict_head(x))
        for i in range(max(len(art), len(lines))):
            left = art[i] if i < len(art) else " " * 16
            right = lines[i] if i < len(lines) else ""
            print("  %s   %s" % (left, right))
        print()
    return 0


__all__ = ["first_difference", "flashed_board", "host_demo", "run_board_demo",
           "start_and_flash"]
