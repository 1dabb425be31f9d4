"""ffkit baseline: float baselines under the HAPT protocols."""

from pathlib import Path
import sys

from ffkit import UsageError
from ffkit.argtypes import subject_range
from ffkit.commands._common import EXIT_OK, emit
from ffkit.weights import load_weights


DESCRIPTION = (
    "Float baselines (River, scikit-learn MLP, float FF in numpy, two with a "
    "class-balanced rehearsal buffer) on the HAPT features, bootstrapped on subjects "
    "1-15, under the integer FF's protocols: frozen and adapted accuracy on each test "
    "subject's last session, and prequential accuracy. About 5 minutes on 2 cores; "
    "--weights adds about 70 s.")


def add_arguments(p):
    p.description = DESCRIPTION
    p.add_argument("--dataset", default="hapt", choices=("hapt",), help="only hapt")
    p.add_argument("--subjects", type=subject_range, default=None, metavar="16-30",
                   help="test subjects (default 16-30; with --quick 16)")
    p.add_argument("--bootstrap-subjects", type=subject_range, default=tuple(range(1, 16)),
                   metavar="1-15", help="the subjects every float baseline is "
                   "bootstrapped on (default 1-15; --weights should be trained on them too)")
    p.add_argument("--models", metavar="A,B", default=None,
                   help="a comma list of baselines (default all)")
    p.add_argument("--weights", metavar="W.ffw", type=Path, default=None,
                   help="also evaluate this integer FF (int_ff, int_ff_rehearsal)")
    p.add_argument("--config", metavar="TOML", type=Path, default=None,
                   help="the model file whose layers the float FF takes and whose [adapt] "
                        "the rehearsal rows take (default models/hapt.toml)")
    p.add_argument("--quick", action="store_true",
                   help="for tests: subject 16, two baselines (river_softmax, float_ff), "
                        "shortened bootstraps")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from ffkit.learning import baselines

    names = baselines.QUICK_BASELINES if args.quick else baselines.BASELINES
    if args.models:
        names = tuple(n.strip() for n in args.models.split(",") if n.strip())
        bad = [n for n in names if n not in baselines.BASELINES]
        if bad:
            raise UsageError("unknown baseline(s) %s; choose from %s"
                             % (", ".join(bad), ", ".join(baselines.BASELINES)))
    subjects = args.subjects
    if subjects is None:
        subjects = (16,) if args.quick else tuple(range(16, 31))
    weights = args.weights.read_bytes() if args.weights is not None else None
    if weights is not None:
        load_weights(args.weights)   # refuse a bad file before the long run
    from ffkit import config
    spec = config.load(args.config if args.config is not None
                       else config.models_dir() / "hapt.toml")
    if set(subjects) & set(args.bootstrap_subjects):
        raise UsageError("--subjects and --bootstrap-subjects overlap")
    result = baselines.run(names, subjects, weights=weights, quick=args.quick, spec=spec,
                           boot_subjects=args.bootstrap_subjects,
                           log=None if args.json else
                           (lambda m: print(m, file=sys.stderr, flush=True)))
    emit(args, result, baselines.format_table(result))
    return EXIT_OK
