"""ffkit demo: the HAPT main job (ffkit.demo_hapt), the digits board demo (--digits) or the
host-only tour (--host) of ffkit.demo."""

import json
from pathlib import Path

from ffkit import FFKitError, UsageError
from ffkit.argtypes import subject_range
from ffkit.commands._common import library, warn_bootstrap_subjects


def add_arguments(p):
    demo = library("demo")
    from ffkit import demo_hapt

    p.description = (demo.__doc__ or "").strip().split("\n\n")[0] or None
    g = p.add_argument_group("the HAPT demo (default)")
    g.add_argument("--subjects", type=subject_range, default=demo_hapt.DEFAULT_SUBJECTS,
                   metavar="16-30", help="held-out subjects to personalise (default 16-30)")
    g.add_argument("--limit", type=int, metavar="N",
                   help="at most N windows per session (a short run)")
    g.add_argument("--no-bootstrap", action="store_true",
                   help="take models/hapt.ffw as it is instead of training it (saves about "
                        "2 minutes)")
    g.add_argument("--plots", type=Path, default=Path(demo_hapt.DEFAULT_PLOTS), metavar="DIR",
                   help="where the plots and the board's export go (default %(default)s)")
    g = p.add_argument_group("the digits board demo (--digits)")
    g.add_argument("--digits", action="store_true",
                   help="the digits board demo instead of the HAPT one")
    g.add_argument("--stream", type=int, default=300, metavar="N",
                   help="held-out digits the board learns from (default %(default)s; the "
                        "rest of the 450 are scored)")
    g.add_argument("--eval", type=int, metavar="N",
                   help="held-out digits to score (default: all not streamed)")
    g.add_argument("--model", type=Path, metavar="W.ffw",
                   help="weights to import (default models/digits.ffw)")
    g.add_argument("--keep", type=Path, metavar="DIR",
                   help="use DIR as the board's filesystem and keep it (default: a "
                        "temporary folder)")
    p.add_argument("--heap", metavar="SIZE", default=demo.DEMO_HEAP,
                   help="the virtual board's heap (default %(default)s, about a Raspberry Pi "
                        "Pico's; the unix port's own default is 2M)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (the figures) instead of the steps")
    g = p.add_argument_group("host-only tour (--host)")
    g.add_argument("--host", action="store_true",
                   help="no board: evaluate models/digits.ffw and explain a few predictions")
    g.add_argument("--epochs", type=int, default=3,
                   help="epochs when training (default %(default)s)")
    g.add_argument("--retrain", action="store_true",
                   help="train even if models/digits.ffw exists")
    g.add_argument("--samples", type=int, default=3, help="predictions to explain")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Exit 0 when the board's result equals the host's computation, 1 when it does not."""
    demo = library("demo")
    if args.host:
        return demo.host_demo(args)
    if not args.digits:
        return _hapt(args)
    say = (lambda s: None) if args.json else (lambda s: print(s, flush=True))
    res = demo.run_board_demo(n_stream=args.stream, n_eval=args.eval, model=args.model,
                              heap=args.heap, say=say, keep=args.keep)
    if args.json:
        print(json.dumps(res))
    return 0 if res["identical"] else 1


def _hapt(args):
    """The HAPT main job (ffkit.demo_hapt.run_hapt_demo)."""
    from ffkit import demo_hapt

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    warn_bootstrap_subjects(args.subjects)
    say = (lambda s: None) if args.json else (lambda s: print(s, flush=True))
    try:
        res = demo_hapt.run_hapt_demo(subjects=args.subjects, limit=args.limit,
                                      bootstrap_model=not args.no_bootstrap, heap=args.heap,
                                      plots_dir=args.plots, say=say,
                                      progress=not (args.json or args.no_progress))
    except OSError as e:
        raise FFKitError("demo: %s" % e) from None
    if args.json:
        print(json.dumps(res))
    return 0 if res["bit_identical"] else 1
