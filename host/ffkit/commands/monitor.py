"""ffkit monitor: a live line per interval from a board's counters."""

import json
import time

from ffkit import UsageError
from ffkit.commands._common import EXIT_OK, add_port_args, connect_board
from ffkit.board.monitor import monitor_line, monitor_sample


DESCRIPTION = (
    "A live line per interval from the board's counters: steps, accuracy, goodness "
    "margin (positive minus negative) per layer, free heap. Reads only; Ctrl-C stops.")


def add_arguments(p):
    p.description = DESCRIPTION
    add_port_args(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between lines (default %(default)s)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N lines")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args):
    if args.interval <= 0:
        raise UsageError("--interval must be > 0")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be >= 1")
    board = connect_board(args)
    prev, n = None, 0
    try:
        if not args.json:
            print("monitoring %s every %g s (Ctrl-C stops); margin = goodness of positive "
                  "minus negative passes, running mean per layer" % (board.link.name,
                                                                     args.interval),
                  flush=True)
        next_at = time.monotonic()
        while True:
            cur = monitor_sample(board)
            print(json.dumps(cur) if args.json else monitor_line(cur, prev), flush=True)
            prev, n = cur, n + 1
            if args.count is not None and n >= args.count:
                break
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
    return EXIT_OK
