"""Digits on a board: a board learns handwritten digits one at a time, and the host checks it.

    python examples/digits_on_a_board.py                      # a virtual board of its own
    python examples/digits_on_a_board.py --port /dev/ttyACM0  # a board flashed with
                                                              # ffkit flash --model models/digits.ffw

The board (ffrt, integer arithmetic only) starts from the bootstrapped digits model,
predicts digits it has not seen, learns others one by one over the serial protocol, and
predicts the unseen ones again. The host runs the same learning steps in numpy and checks
that the board's exported weights are the same bytes.
"""

import argparse
import sys
import tempfile

from sklearn.datasets import load_digits

from ffkit import config
from ffkit.board import builds
from ffkit.board.client import connect
from ffkit.board.sim import VirtualBoard
from ffkit.twins import kernels_np
from ffrt import ffw_ram


def accuracy(board, xs, ys):
    return sum(board.predict(x)[0] == y for x, y in zip(xs, ys)) / len(ys)


def run(board, n_learn, n_test):
    X, y = load_digits(return_X_y=True)          # 1,797 8x8 images, values 0..16
    xs = [[int(v) for v in row] for row in X]
    ys = [int(v) for v in y]
    test = slice(len(xs) - n_test, len(xs))       # held out: never learnt
    before = accuracy(board, xs[test], ys[test])
    host = ffw_ram.load(board.export(), kernels_np)   # the board's weights, on the host
    for x, label in zip(xs[:n_learn], ys[:n_learn]):
        board.learn(x, label)                    # one labelled sample, learnt on the board
        host.learn_one(x, label)                 # the same step in numpy
    after = accuracy(board, xs[test], ys[test])
    same = board.export() == bytes(ffw_ram.encode(host))
    print("held-out accuracy %.3f before, %.3f after learning %d digits on the board"
          % (before, after, n_learn))
    print("board and host weights after learning: %s" % ("BIT-IDENTICAL" if same else "DIFFERENT"))
    return same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", help="a board running the digits model (default: a virtual board)")
    ap.add_argument("--learn", type=int, default=300, help="digits learnt (default 300)")
    ap.add_argument("--test", type=int, default=200, help="held-out digits (default 200)")
    args = ap.parse_args(argv)
    if args.port:
        with connect(args.port, timeout=5.0) as board:
            return 0 if run(board, args.learn, args.test) else 1
    with tempfile.TemporaryDirectory(prefix="vb") as folder:
        builds.build_bundle("unix", folder, model=config.models_dir() / "digits.ffw")
        with VirtualBoard(folder) as vb, connect(vb.port, timeout=5.0) as board:
            print("virtual board on %s (the firmware in the MicroPython unix port)" % vb.port)
            return 0 if run(board, args.learn, args.test) else 1


if __name__ == "__main__":
    sys.exit(main())
