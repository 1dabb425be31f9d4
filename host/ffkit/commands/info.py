"""ffkit info: what a board runs."""

import json

from ffkit.commands._common import EXIT_OK, add_port_args, connect_board, emit


DESCRIPTION = "What the board runs: firmware, model, step, memory."


def add_arguments(p):
    p.description = DESCRIPTION
    add_port_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _info_lines(info):
    lines = []
    for k, v in info.items():
        if k == "protocol":
            continue
        if k == "model" and isinstance(v, dict) and "layers" in v:
            shape = "-".join(str(n) for n in [v.get("n_features", 0) + v.get("n_classes", 0)]
                             + list(v["layers"]))
            v = "%s (%s features, %s classes)" % (shape, v.get("n_features"),
                                                  v.get("n_classes"))
        elif isinstance(v, (dict, list)):
            v = json.dumps(v)
        lines.append("%-12s %s" % (k, v))
    return lines


def run(args):
    board = connect_board(args)
    try:
        info = board.info()
        port = board.link.name
    finally:
        board.close()
    result = {"port": port, "protocol": board.protocol_version, **info}
    emit(args, result, ["%-12s %s" % ("port", port),
                        "%-12s %s" % ("protocol", board.protocol_version)]
         + _info_lines(info))
    return EXIT_OK
