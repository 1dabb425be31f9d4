"""HAPT on a virtual board: a person the model never met wears the sensor; the board adapts.

    python examples/hapt_virtual_board.py                 # subject 21, 40 windows a session
    python examples/hapt_virtual_board.py --subject 25 --limit 0   # every window

A virtual board (the real firmware in the MicroPython unix port, on a pseudo-terminal)
boots the bootstrapped HAPT model. Raw accelerometer and gyroscope samples of one held-out
subject of the UCI HAPT set (it ships inside ffkit) stream to it: the board cuts them into
windows, computes the features, predicts, and learns from the labelled ones (personalise
protocol: the subject's first session adapts, the second is scored frozen and adapted).
The host computes the same stream with the same code and checks every prediction and the
final weights bit for bit; the board's session log is then replayed on the host.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from ffkit import config
from ffkit.board import builds
from ffkit.board.client import connect
from ffkit.board.sim import VirtualBoard
from ffkit.sessions import replay, stream


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subject", type=int, default=21, help="a held-out subject, 16-30")
    ap.add_argument("--limit", type=int, default=40,
                    help="windows per session (0: all; default 40)")
    args = ap.parse_args(argv)
    model = config.models_dir() / "hapt.ffw"
    weights = model.read_bytes()
    adapt = config.load(config.models_dir() / "hapt.toml").adapt
    with tempfile.TemporaryDirectory(prefix="vb") as folder:
        builds.build_bundle("unix", folder, model=model)
        log = Path(folder) / "session.ffl"
        with VirtualBoard(folder) as vb, connect(vb.port, timeout=5.0) as board:
            result = stream.run(board, weights, adapt, [args.subject],
                                limit=args.limit or None, parallel=False, log_path=log)
        for line in stream.format_lines(result):
            print(line)
        again = replay.run(log, weights=model)
        for line in replay.format_lines(again):
            print(line)
    return 0 if result["bit_identical"] and again["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
