"""ffkit export: copy a board's weights into a .ffw file."""

from pathlib import Path
import time

from ffkit import UsageError
from ffkit.commands._common import (EXIT_OK, Progress, add_port_args, connect_board, emit,
                                    shape)
from ffkit.files import write_atomic


DESCRIPTION = (
    "Copy the board's weights into a .ffw file (chunked, retried, CRC and every .ffw "
    "check verified on the host; the file is written atomically).")


def add_arguments(p):
    p.description = DESCRIPTION
    add_port_args(p)
    p.add_argument("-o", "--out", metavar="W.ffw", type=Path, required=True,
                   help="file to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ffrt import ffw_ram
    folder = args.out.parent   # checked before the transfer, which it would otherwise waste
    if not folder.is_dir():
        raise UsageError("-o %s: no folder %s (create it first)" % (args.out, folder))
    t0 = time.perf_counter()
    board = connect_board(args)
    try:
        with Progress(args, "export") as progress:
            data = board.export(progress=progress)   # every .ffw check passed
        port = board.link.name
    finally:
        board.close()
    write_atomic(args.out, data)
    from ffrt.net import FFNet
    cfg = ffw_ram.decode_config(data)
    net = FFNet(cfg, init=False)
    ffw_ram.load_into(net, data)
    crc = ffw_ram.weights_crc32(net)
    result = {"port": port, "out": str(args.out), "file_bytes": len(data), "step": net.step,
              "shape": shape(cfg), "weights_crc32": "%08x" % crc,
              "seconds": round(time.perf_counter() - t0, 3)}
    emit(args, result, [
        "exported %s from %s: %d bytes, model %s, step %d, weights crc32 %08x (%.1f s)"
        % (args.out, port, len(data), result["shape"], net.step, crc, result["seconds"])])
    return EXIT_OK
