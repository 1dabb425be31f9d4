"""ffkit import: send a .ffw file to a board (`import` is a keyword: import_)."""

from pathlib import Path
import time

from ffkit.commands._common import (EXIT_OK, Progress, add_port_args, connect_board, emit,
                                    shape)


DESCRIPTION = (
    "Send a .ffw file to the board. It is checked on the host first (every .ffw check, "
    "and its model signature against the board's), then staged on the board, checked "
    "again and committed atomically: a refused or interrupted import leaves the "
    "running weights untouched.")


def add_arguments(p):
    p.description = DESCRIPTION
    p.add_argument("file", metavar="W.ffw", type=Path, help="weight file to send")
    add_port_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ffkit.board.client import check_ffw

    data = args.file.read_bytes()
    cfg = check_ffw(data, what=str(args.file))   # before any port is opened
    t0 = time.perf_counter()
    board = connect_board(args)
    try:
        with Progress(args, "import") as progress:
            step = board.import_weights(data, progress=progress)
        port = board.link.name
    finally:
        board.close()
    result = {"port": port, "file": str(args.file), "file_bytes": len(data),
              "shape": shape(cfg), "step": step,
              "seconds": round(time.perf_counter() - t0, 3)}
    emit(args, result, ["imported %s into %s: %d bytes, model %s, now at step %d (%.1f s)"
                        % (args.file, port, len(data), result["shape"], step,
                           result["seconds"])])
    return EXIT_OK
