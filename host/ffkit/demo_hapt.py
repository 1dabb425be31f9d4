"""The main job, on a virtual board: bootstrap on HAPT, flash, personalise, export, show.

    ffkit demo                       # make demo: about 3 minutes on two cores
    ffkit demo --no-bootstrap        # use models/hapt.ffw as it is (about 1 minute)
    ffkit demo --subjects 19,20 --plots out/

Steps (`run_hapt_demo` returns the figures it prints):

1. bootstrap: `ffkit train --dataset hapt --config models/hapt.toml` in-process, the
   integer FF rule on the 72 window features of subjects 1-15 (numpy kernels,
   bit-identical to a board); the result is compared byte for byte with the committed
   models/hapt.ffw, which it rebuilds;
2. a virtual board (ffkit.board.sim.VirtualBoard): the firmware in the MicroPython unix port on
   a pty, 192 KB of heap (about a Raspberry Pi Pico's), then ``ffkit flash --board unix``
   onto it (ffrt cross-compiled to x64 .mpy, copied with mpremote, restarted);
3. personalisation (`ffkit.sessions.stream`, protocol personalise): the bootstrapped weights are
   imported and checkpointed; per held-out subject the board is reset to that checkpoint,
   streamed the subject's last session as raw int16 IMU samples with learning off
   (frozen), the earlier session(s) with their labels and learning on (through the
   rehearsal buffer of models/hapt.toml's [adapt]), and the last session again with
   learning off (adapted). The board computes every window's features itself
   (ffrt.features); the host computes the same stream in CPython and compares;
4. export: the board's weights after the last subject, written to a .ffw and compared
   byte for byte with the host's computation;
5. the table (frozen vs adapted per subject, mean and worst) and the plots' paths.
"""

import tempfile
import time
from pathlib import Path

from ffkit import UsageError

DEFAULT_SUBJECTS = tuple(range(16, 31))
DEFAULT_PLOTS = "ffkit-plots"


def bootstrap(spec, say=print, progress=True):
    """Train the HAPT model of ``spec`` (a config.ModelSpec) as `ffkit train` does; .ffw bytes."""
    from ffrt import ffw_ram
    from ffrt.net import FFNet

    from ffkit.data import datasets
    from ffkit.twins.kernels import host_kernels
    from ffkit.learning.train import train_spec

    data = datasets.load("hapt")
    data.check_model(spec.model)
    net = FFNet(spec.model, kernels=host_kernels())
    res = train_spec(net, spec, data.X_train, data.y_train, progress=progress)
    say("      %d windows x %d epochs (%d learn steps) in %.0f s"
        % (len(data.y_train), spec.epochs, res.steps, res.seconds))
    return bytes(ffw_ram.encode(net))


def run_hapt_demo(subjects=DEFAULT_SUBJECTS, limit=None, bootstrap_model=True,
                  heap="192K", plots_dir=DEFAULT_PLOTS, out=None, say=print, progress=True,
                  timeout=2.0):
    """The demo (module docstring); returns a dict of what it measured.

    bootstrap_model: train the model (step 1) rather than take models/hapt.ffw as it is.
    limit: at most this many windows per session (tests). out: where the board's export
    goes (default <plots_dir>/hapt-board-export.ffw). The verdict ``bit_identical`` is
    computed by ffkit.sessions.stream: the board's export and every prediction equal the host's.
    """
    from ffkit import config
    from ffkit.sessions import stream
    from ffkit.demo import flashed_board

    t_start = time.perf_counter()
    spec = config.load(config.models_dir() / "hapt.toml")
    committed = config.models_dir() / "hapt.ffw"
    res = {"subjects": list(subjects), "limit": limit, "heap": heap}

    def step(n, text):
        say("[%d/5] %s" % (n, text))

    # 1. bootstrap
    if bootstrap_model:
        step(1, "bootstrap: ffkit train --dataset hapt --config models/hapt.toml "
                "(subjects 1-15, %s, %d epochs)" % ("-".join(
                    str(n) for n in (spec.model.n_in,) + tuple(spec.model.layers)),
                    spec.epochs))
        weights = bootstrap(spec, say=lambda s: say(s), progress=progress)
        same = committed.is_file() and committed.read_bytes() == weights
        res["bootstrap_equals_committed"] = same
        say("      %s models/hapt.ffw" % ("byte for byte equal to the committed"
                                         if same else "DIFFERENT from the committed"))
    else:
        if not committed.is_file():
            raise UsageError("no models/hapt.ffw: run without --no-bootstrap")
        weights = committed.read_bytes()
        res["bootstrap_equals_committed"] = None
        step(1, "bootstrap skipped: models/hapt.ffw as committed (ffkit train --dataset hapt "
                "rebuilds it)")
    adapt = spec.adapt

    plots_dir = Path(plots_dir)
    out = Path(out) if out is not None else plots_dir / "hapt-board-export.ffw"
    with tempfile.TemporaryDirectory(prefix="ffkit-demo-") as tmp:
        # 2. the virtual board, flashed
        vb, board = flashed_board(Path(tmp) / "board", heap, weights, say,
                                  lambda n, text: step(2, text) if n == 1
                                  else say("      " + text), timeout)
        try:
            # 3. personalise
            step(3, "personalise %d held-out subject(s) on the board: frozen test, learn "
                    "the earlier session(s) (rehearsal %d per class, replay %d, lr_shift "
                    "%s), adapted test" % (len(subjects), adapt.per_class, adapt.replay,
                                           adapt.lr_shift))
            r = stream.run(board, weights, adapt, subjects, protocol="personalise",
                           limit=limit, plots_dir=plots_dir,
                           say=lambda s: say("      " + s))
            # 4. export
            exported = board.export()
        finally:
            board.close()
            vb.stop()
    from ffrt import ffw_ram
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(exported)
    res["export"] = str(out)
    res["export_equals_host"] = "%08x" % ffw_ram.weights_crc32(ffw_ram.load(exported)) == \
        r["host_weights_crc32"]
    step(4, "ffkit export: %d bytes to %s; board vs host %s (weights crc32 %s / %s)"
         % (len(exported), out, "BIT-IDENTICAL" if r["bit_identical"] else "DIFFERENT",
            r["board_weights_crc32"], r["host_weights_crc32"]))
    # 5. the table
    step(5, "frozen vs adapted accuracy on each subject's last session (board's predictions)")
    for line in table(r):
        say("      " + line)
    for p in r["plots"]:
        say("      plot: %s" % p)
    for k in ("frozen_accuracy", "adapted_accuracy", "worst_subject_frozen",
              "worst_subject_adapted", "previous_label_accuracy", "windows", "samples",
              "windows_per_s", "bit_identical", "board_weights_crc32", "host_weights_crc32",
              "per_subject", "plots", "adapt"):
        res[k] = r[k]
    res["seconds"] = round(time.perf_counter() - t_start, 1)
    say("done in %.0f s: mean accuracy %s frozen -> %s adapted on the board, which "
        "%s the host's computation" % (res["seconds"], _f4(r["frozen_accuracy"]),
                                       _f4(r["adapted_accuracy"]),
                                       "equals" if r["bit_identical"] else "DIFFERS from"))
    return res


def _f4(v):
    return "-" if v is None else "%.4f" % v


def table(r):
    """Per subject frozen, adapted and the change; then the mean and the worst subject. A
    session too short to score (--limit) shows - instead of an accuracy, as ffkit stream."""
    def acc(v, width):
        return "%*.3f" % (width, v) if v is not None else "%*s" % (width, "-")

    def change(a, f):
        return "%+6.3f" % (a - f) if a is not None and f is not None else "%6s" % "-"

    lines = ["subject  frozen  adapted  change"]
    for s, v in r["per_subject"].items():
        lines.append("%7s  %s  %s  %s" % (s, acc(v["frozen"], 6), acc(v["adapted"], 7),
                                          change(v["adapted"], v["frozen"])))
    lines.append("   mean  %s  %s  %s" % (
        acc(r["frozen_accuracy"], 6), acc(r["adapted_accuracy"], 7),
        change(r["adapted_accuracy"], r["frozen_accuracy"])))
    wf, wa = r["worst_subject_frozen"], r["worst_subject_adapted"]
    if wf is not None and wa is not None:
        lines.append("  worst  %6.3f  %7.3f  (subject %d frozen, subject %d adapted)"
                     % (wf["accuracy"], wa["accuracy"], wf["subject"], wa["subject"]))
    return lines
