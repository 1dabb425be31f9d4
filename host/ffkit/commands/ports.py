"""ffkit ports: serial ports that may hold a board, and running virtual boards."""

from ffkit.commands._common import EXIT_OK, emit


DESCRIPTION = (
    "Serial ports that may hold a board, and running virtual boards (ffkit sim).")


def add_arguments(p):
    p.description = DESCRIPTION
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from ffkit.board.link import list_ports

    ports = list_ports()
    lines = ["%-16s %-7s %s%s" % (p["port"], p["kind"], p["description"],
                                  "" if p["auto"] else "  (not auto-detected: use --port)")
             for p in ports]
    if not ports:
        lines = ["no boards found (plug one in, or start a virtual board: ffkit sim --dir DIR)"]
    emit(args, {"ports": ports}, lines)
    return EXIT_OK
