"""The ``ffkit`` command: a table of verbs, each a parser builder and a handler.

    ffkit train --dataset digits --out digits.ffw
    ffkit eval --dataset digits --weights digits.ffw --json
    ffkit demo                          # flash a virtual board, learn, compare with the host
    ffkit flash --board rp2 --port /dev/ttyACM0 --model models/digits.ffw
    ffkit sim --dir board1 &            # a virtual board; then, as with any board:
    ffkit info
    ffkit export -o b.ffw
    ffkit import b.ffw
    ffkit monitor
    ffkit tflite export --weights digits.ffw -o digits.tflite

Exit codes: 0 ok, 1 failed, 2 usage. Errors meant for the user (FFKitError, a refused
.ffw file, a file that cannot be opened) print ``ffkit: message`` on stderr, never a
traceback. ``--json`` prints one JSON object on stdout that mirrors the human text.

Board verbs (ports, info, export, import, monitor, sim, flash, repl) take ``--port`` (a
device path, a virtual board's /dev/pts/N, or a pyserial URL; default ``$FFKIT_PORT``, else
the one board attached, see ffkit.board.link.choose_port). No board, a busy port, a board
that does not answer and an incompatible model exit 1 with a message saying which; several
boards and no ``--port`` exit 2 with the list.

Each verb is a module ``ffkit.commands.<verb>`` (``import_`` for import) with
``add_arguments(parser)``, which also sets the parser's description, and
``run(args) -> int``; this module only lists them in VERBS (name and one-line help) and
assembles the parser. Only the chosen verb's module is imported and its parser built in
full, and a commands module imports heavy libraries inside run(), so a verb's library
(``ffkit.parity``, ``ffkit.bench``, ...) is imported only when that verb runs. Library
modules never import from ffkit.cli or ffkit.commands.
"""

import argparse
from dataclasses import dataclass
import importlib
import os
import sys

import ffkit
from ffkit import FFKitError, UsageError
from ffkit.commands._common import EXIT_FAIL, EXIT_OK, EXIT_USAGE


@dataclass(frozen=True)
class Verb:
    name: str
    help: str            # shown in `ffkit --help`, without importing the verb's module
    add_parser: object   # add_parser(sub) -> argparse.ArgumentParser (the full subparser)
    run: object          # run(args) -> int


_MODULES = {"import": "import_"}   # a verb that is a Python keyword


def _command(name):
    """The module ffkit.commands.<name> (import_ for the verb import)."""
    return importlib.import_module("ffkit.commands." + _MODULES.get(name, name))


def _verb(name, summary):
    def add_parser(sub):
        p = sub.add_parser(name)
        _command(name).add_arguments(p)
        return p

    def run(args):
        return _command(name).run(args)

    add_parser.__name__ = "add_%s_parser" % name
    run.__name__ = "cmd_" + name
    return Verb(name, summary, add_parser, run)


VERBS = (
    _verb("train", "bootstrap a model on the host (integer FF rule) and write its .ffw"),
    _verb("eval", "held-out accuracy by goodness, the head's, and the untrained control"),
    _verb("demo", "a virtual board is flashed, learns digits, and matches the host bit for bit"),
    _verb("parity", "hold every runner (CPython, numpy, MicroPython) bit-identical"),
    _verb("bench", "speed and memory of the engine on each runner"),
    # boards (over a serial port or a virtual board's pty)
    _verb("ports", "list serial ports and running virtual boards"),
    _verb("info", "what a board runs: firmware, model, step, memory"),
    _verb("export", "copy a board's weights into a .ffw file"),
    _verb("import", "send a .ffw file to a board (checked, staged, committed atomically)"),
    _verb("monitor", "a live line per interval: steps, accuracy, goodness margin, heap"),
    _verb("sim", "a virtual board: the firmware in the MicroPython unix port on a pty"),
    _verb("flash", "cross-compile ffrt for a board and copy it there with mpremote"),
    _verb("repl", "stop serving and hand the port back to the MicroPython REPL (for mpremote)"),
    _verb("baseline", "float baselines (River, MLP, float FF) under the HAPT protocols"),
    _verb("stream", "raw HAPT samples to a board that predicts and learns; checked bit for bit"),
    _verb("log", "start, stop, inspect or download a board's session log (.ffl)"),
    _verb("fuzz", "hostile frames at a board; reports crashes, hangs, state changes, wedges"),
    _verb("replay", "replay a session log on the host and report the first difference"),
    _verb("tflite", "TFLite interop: a .ffw as an int8 .tflite (checked in LiteRT and TFLite "
          "Micro); a TFLite model as a front end"),
)


def _chosen_verb(argv):
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(argv=()):
    """The parser; only the verb named in argv gets its full subparser (lazy imports)."""
    parser = argparse.ArgumentParser(
        prog="ffkit", description="Host toolkit for ffrt, the integer Forward-Forward runtime.")
    parser.add_argument("--version", action="version", version="ffkit " + ffkit.__version__)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    chosen = _chosen_verb(argv)
    for v in VERBS:
        if v.name == chosen:
            p = v.add_parser(sub)
        else:
            p = sub.add_parser(v.name, help=v.help)
        p.set_defaults(_run=v.run, _parser=p)
    return parser


def _user_errors():
    errors = (FFKitError, OSError)
    try:
        from ffrt import ffw
    except ImportError:
        return errors
    return errors + (ffw.FFWError,)


def main(argv=None):
    """Entry point of the ``ffkit`` console script; returns (and exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv)
    except FFKitError as e:  # a delegated verb's module is missing
        print("ffkit: %s" % e, file=sys.stderr)
        return EXIT_FAIL
    args = parser.parse_args(argv)  # usage errors: argparse prints them and exits 2
    try:
        code = args._run(args)
    except BrokenPipeError:
        # the reader went away (`ffkit info | head -1`): not an error of ffkit's; point
        # stdout at nothing so the interpreter's flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
    except UsageError as e:
        args._parser.print_usage(sys.stderr)
        print("ffkit: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except _user_errors() as e:
        print("ffkit: %s" % _describe(e), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("ffkit: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK if code is None else int(code)


def _describe(e):
    if isinstance(e, OSError) and e.filename is not None:
        return "%s: %s" % (e.filename, e.strerror or e)
    return str(e)


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
