"""What the commands share: exit codes, data and port arguments, output."""

import importlib
import json
import os
import sys
from pathlib import Path

from ffkit import FFKitError, UsageError
from ffkit.progress import progress_bar


EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def library(module):
    """The module ffkit.<module> (its verb's library: "bench", "board.flash" ...); a clear
    error if this build does not have it."""
    verb = module.rsplit(".", 1)[-1]
    name = "ffkit." + module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise FFKitError("'ffkit %s' is not available in this build (no module %s)"
                         % (verb, name)) from None


def delegate_arguments(p, module):
    """A verb whose command line lives in ffkit.<module> (add_arguments, run_cli): its
    arguments, and its module docstring's first paragraph as the description."""
    mod = library(module)
    doc = (mod.__doc__ or "").strip().split("\n\n")[0]
    p.description = doc or None
    mod.add_arguments(p)


def add_data_args(p, default_help):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", metavar="NAME",
                   help="a built-in data set (digits, hapt, mnist, mnist14); default: "
                        + default_help)
    g.add_argument("--data", metavar="FILE", type=Path,
                   help="your data: FILE.npz (X (n, features) and y (n,), optional "
                        "X_test/y_test) or FILE.csv (a label column named label, class, "
                        "target or y, else the last); float features are quantised to "
                        "0..255 (fitted on the training split)")


def load_data(args, spec=None):
    """The data set of --data or --dataset (else the model file's [data] dataset), with
    the model file's [input] quantiser and class names applied when it has them."""
    from ffkit.data import datasets

    quantiser = classes = None
    if spec is not None:
        quantiser, classes = spec.quantiser, spec.classes
    if getattr(args, "frontend", None) is not None:
        if quantiser is not None:
            raise UsageError("%s quantises the data ([input] lo/hi); a front end takes the "
                             "raw features, so --frontend cannot be used with it"
                             % spec.source)
        quantiser = False  # the front end quantises its inputs itself
    if args.data is not None:
        return datasets.load_file(args.data, quantiser=quantiser, classes=classes)
    name = args.dataset or (spec.dataset if spec is not None else None)
    if name is None:
        raise UsageError("give --dataset NAME or --data FILE")
    return datasets.quantise(datasets.load(name), quantiser)


def load_spec(args):
    """The model file: --config, else models/<dataset>.toml for a built-in data set, else
    None: ffkit train then chooses one (ffkit.learning.autoconfig)."""
    from ffkit import config

    if args.config is not None:
        return config.load(args.config)
    if args.data is None and args.dataset is not None:
        path = config.default_model_file(args.dataset)
        return config.load(path) if path is not None else None
    if args.data is not None:
        return None
    path = config.default_model_file("digits")
    if path is None:
        raise UsageError("give --config and --dataset or --data")
    return config.load(path)


def add_frontend_arg(p):
    p.add_argument("--frontend", metavar="FRONT.ffe", type=Path,
                   help="a frozen front end (ffkit tflite import-frontend): the data's "
                        "features go through it, and its outputs (0..255) are the model's "
                        "inputs (n_features, in_max 255, in_scale 1)")


def through_frontend(args, data, cfg=None):
    """(data, cfg) with the features mapped through --frontend, when it is given."""
    if getattr(args, "frontend", None) is None:
        return data, cfg
    from ffkit.interop import frontend_import

    fe = frontend_import.load(args.frontend)
    data = frontend_import.through(fe, data, args.frontend.name)
    return data, cfg if cfg is None else frontend_import.config_behind(cfg, fe)


def quantiser_text(data, spec):
    if data.quantiser is None:
        return None
    if spec is not None and spec.quantiser is data.quantiser:
        return "[input] of %s" % spec.source
    return "fitted on the training split"


def shape(cfg):
    """'78-192-64'; a recurrent model's reads '78-192-64 (recurrent)'."""
    s = "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers))
    return s + " (recurrent)" if cfg.recurrent else s


def emit(args, result, lines):
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=False))
    else:
        print("\n".join(lines))


def add_port_args(p):
    p.add_argument("--port", metavar="PORT", default=os.environ.get("FFKIT_PORT"),
                   help="serial device, e.g. /dev/ttyACM0 or a virtual board's /dev/pts/N "
                        "(default: $FFKIT_PORT, else the only board attached)")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds to wait for each reply before resending (default %(default)s)")


def connect_board(args):
    from ffkit.board.client import connect

    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    return connect(args.port, timeout=args.timeout)


class Progress:
    """A transfer's progress(done, total) callback: a bar on stderr (ffkit.progress: on a
    terminal only), opened by the first call (so nothing shows when a check fails before
    any byte moves)."""

    def __init__(self, args, desc):
        self.off = args.json or args.no_progress
        self.desc = desc
        self.bar = None

    def __call__(self, done, total):
        if self.off:
            return
        if self.bar is None:
            self.bar = progress_bar(total, self.desc, "B", unit_scale=True)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def warn_bootstrap_subjects(subjects):
    """One line on stderr when --subjects (stream, demo) names a subject HAPT models bootstrap on: the run
    goes on (a check on seen data can be what one wants), but its accuracy is not a test."""
    from ffkit.data.hapt import TRAIN_SUBJECTS

    seen = [s for s in subjects if s in TRAIN_SUBJECTS]
    if seen:
        many = len(seen) > 1
        print("ffkit: warning: subject%s %s %s among the bootstrap subjects %d-%d (models/"
              "hapt.ffw and ffkit train --dataset hapt learn from them): accuracy on %s is "
              "not held-out" % ("s" if many else "", ",".join(map(str, seen)),
                                "are" if many else "is", TRAIN_SUBJECTS[0], TRAIN_SUBJECTS[-1],
                                "them" if many else "it"), file=sys.stderr)
