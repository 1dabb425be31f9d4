"""ffkit stream: raw HAPT samples to a board that predicts and learns."""

from pathlib import Path

from ffrt.live import PREDICT_MODES
from ffrt.rehearsal import check_sizes

from ffkit import UsageError
from ffkit.argtypes import subject_range
from ffkit.commands._common import EXIT_FAIL, EXIT_OK, emit, warn_bootstrap_subjects
from ffkit.progress import progress_bar
from ffkit.weights import load_weights


DESCRIPTION = (
    "Stream raw HAPT IMU samples to a board (a virtual board by default): the board "
    "computes the window features, predicts and learns (ffrt.live); the host computes "
    "the same stream with the same code and compares predictions and final weights bit "
    "for bit. Prints frozen/adapted (personalise) or prequential accuracy, the "
    "previous-label bar, windows per second, and writes PNG plots.")


def add_arguments(p):
    p.description = DESCRIPTION
    p.add_argument("--dataset", default="hapt", choices=("hapt",), help="only hapt")
    p.add_argument("--weights", metavar="W.ffw", type=Path, required=True,
                   help="a HAPT model (72 features, 6 classes), e.g. from ffkit train "
                        "--dataset hapt")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--port", metavar="PORT",
                   help="a board running a model of the same shape (default: --sim)")
    g.add_argument("--sim", action="store_true",
                   help="a new virtual board booted from --weights (the default)")
    p.add_argument("--heap", metavar="SIZE", help="the virtual board's heap, e.g. 192K "
                   "(default: the unix port's 2M)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds to wait for each reply before resending (default "
                        "%(default)s; more per window a frame completes)")
    p.add_argument("--protocol", choices=("personalise", "prequential"),
                   default="personalise", help="default %(default)s")
    p.add_argument("--subjects", type=subject_range, default=tuple(range(16, 31)),
                   metavar="16-30", help="test subjects (default 16-30)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="at most N windows per session (the first N; for quick runs)")
    p.add_argument("--config", metavar="TOML", type=Path,
                   help="model file whose [adapt] table gives the defaults below "
                        "(default: W.toml beside --weights W.ffw if there is one, else "
                        "models/hapt.toml)")
    p.add_argument("--per-class", type=int, metavar="K",
                   help="rehearsal samples kept per class on the board (0: none)")
    p.add_argument("--replay", type=int, metavar="R",
                   help="stored samples learnt after each new labelled window")
    p.add_argument("--adapt-lr-shift", type=int, metavar="S",
                   help="lr_shift while adapting (set on the board before its checkpoint)")
    p.add_argument("--predict", choices=PREDICT_MODES,
                   help="prediction by goodness per label or by the linear head")
    p.add_argument("--sleep", metavar="N:M[:both] | off",
                   help="learn each window awake (its positive phase only, kept in the "
                        "rehearsal buffer) and sleep M negative steps on the buffer after "
                        "every N windows learnt (N = 0: never; ':both': a sleep step learns "
                        "both phases); 'off': both phases per window even if [adapt] "
                        "has sleep (default: [adapt] sleep, if any; ffrt.sleep)")
    p.add_argument("--plots", metavar="DIR", type=Path, default=Path("ffkit-plots"),
                   help="folder for the PNG plots (default %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument("--log", metavar="FILE.ffl", type=Path,
                   help="record the session log while streaming (ffkit replay replays it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _adapt_spec(args):
    """config [adapt] (--config; else the model file beside --weights, W.toml, as ffkit
    train writes it; else models/hapt.toml), overridden by the flags."""
    import dataclasses

    from ffkit import config

    path = args.config
    if path is None:
        beside = args.weights.with_suffix(".toml") if args.weights is not None else None
        path = beside if beside is not None and beside.is_file() else \
            config.default_model_file("hapt")
    spec = config.load(path).adapt if path is not None else config.AdaptSpec()
    over = {"per_class": args.per_class, "replay": args.replay,
            "lr_shift": args.adapt_lr_shift, "predict": args.predict}
    spec = dataclasses.replace(spec, **{k: v for k, v in over.items() if v is not None})
    if getattr(args, "sleep", None) is not None:
        spec = dataclasses.replace(spec, sleep=_sleep_arg(args.sleep))
    try:
        check_sizes(spec.per_class, spec.replay, 0)
    except ValueError as e:
        raise UsageError("--per-class / --replay: %s" % e) from None
    if spec.sleep is not None and not spec.per_class:
        raise UsageError("sleep learns from the rehearsal buffer: --per-class must be > 0")
    if spec.lr_shift is not None:
        from ffrt.model import Config
        try:
            Config(lr_shift=spec.lr_shift)
        except ValueError as e:
            raise UsageError("--adapt-lr-shift: %s" % e) from None
    return spec


def _sleep_arg(text):
    """--sleep: 'off' -> None, 'N:M' -> (N, M, False), 'N:M:both' -> (N, M, True)."""
    from ffrt.schedule import SLEEP_LIMITS

    if text == "off":
        return None
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "both"):
            raise ValueError
        every, steps = int(parts[0]), int(parts[1])
    except ValueError:
        raise UsageError("--sleep takes N:M, N:M:both or off (got %r)" % text) from None
    (lo_n, hi_n), (lo_m, hi_m) = SLEEP_LIMITS[:2]
    if not lo_n <= every <= hi_n or not lo_m <= steps <= hi_m:
        raise UsageError("--sleep N must be in %d..%d and M in %d..%d"
                         % (lo_n, hi_n, lo_m, hi_m))
    return every, steps, len(parts) == 3


def run(args):
    from ffkit.sessions import stream

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if args.port is not None and args.heap is not None:
        raise UsageError("--heap is for the virtual board, not --port")
    if args.heap is not None:
        from ffkit.board.sim import check_heap
        check_heap(args.heap)
    adapt = _adapt_spec(args)
    warn_bootstrap_subjects(args.subjects)
    weights = args.weights.read_bytes()
    stream.check_model(load_weights(args.weights).cfg)  # before any board is started
    board, close = stream.open_board(args, weights)
    bar = None
    try:
        port = board.link.name
        if not (args.json or args.no_progress):
            bar = progress_bar(0, "stream", "window")

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        result = stream.run(board, weights, adapt, args.subjects, protocol=args.protocol,
                            limit=args.limit, plots_dir=None if args.no_plots else args.plots,
                            progress=progress if bar is not None else None,
                            log_path=args.log)
    finally:
        if bar is not None:
            bar.close()
        close()
    result = {"weights": str(args.weights), "port": None if args.port is None else port,
              "board": "virtual" if args.port is None else "serial", **result}
    emit(args, result, stream.format_lines(result))
    return EXIT_OK if result["bit_identical"] else EXIT_FAIL
