"""ffkit log: download a board's session log (.ffl)."""

from pathlib import Path

from ffkit.commands._common import EXIT_OK, add_port_args, connect_board, emit


DESCRIPTION = (
    "Download the board's session log (.ffl: every request that read or changed its "
    "net, its answers and state digests) to a file, for ffkit replay. A board logs "
    "after LOG START (ffkit stream --log starts and drains one as it streams).")


def add_arguments(p):
    p.description = DESCRIPTION
    add_port_args(p)
    p.add_argument("-o", "--out", metavar="FILE.ffl", type=Path, required=True,
                   help="file to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from ffkit.sessions import logs

    board = connect_board(args)
    try:
        result = logs.download(board, args.out)
        result["port"] = board.link.name
    finally:
        board.close()
    emit(args, result, [
        "wrote %s from %s: %d records, %d bytes (logging %s%s)"
        % (result["log"], result["port"], result["records"], result["bytes"],
           "on" if result["logging"] else "off",
           ", %d record(s) lost to write errors" % result["lost"] if result["lost"] else ""),
        "next            ffkit replay %s --weights START.ffw" % result["log"]])
    return EXIT_OK
