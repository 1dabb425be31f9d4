"""ffkit log: start, stop, inspect and download a board's session log (.ffl).

    ffkit log start --port P [--segment BYTES] [--digest-every N]
    ffkit log status --port P
    ffkit log stop --port P
    ffkit log download --port P -o FILE.ffl [--newest]
    ffkit log --port P -o FILE.ffl              # the same as download (the older form)
"""

from pathlib import Path

from ffkit import UsageError
from ffkit.commands._common import EXIT_OK, add_port_args, connect_board, emit


DESCRIPTION = (
    "A board's session log (.ffl: every request that read or changed its net, its "
    "answers and state digests), kept in a ring of two segments on its filesystem. "
    "start: a new log (the old one is gone; a live learner starts afresh). stop: logging "
    "off, the log stays readable. status: on or off, the records held, whether the ring "
    "has overwritten the oldest. download (the default): the log to a file, for ffkit "
    "replay; after the ring has wrapped, --newest writes the records from the first state "
    "digest still held. ffkit stream --log starts and drains one as it streams.")

ACTIONS = ("download", "start", "stop", "status")


def add_arguments(p):
    p.description = DESCRIPTION
    p.add_argument("action", nargs="?", choices=ACTIONS, default="download",
                   help="download (default), start, stop or status")
    add_port_args(p)
    p.add_argument("-o", "--out", metavar="FILE.ffl", type=Path,
                   help="download: the file to write")
    p.add_argument("--newest", action="store_true",
                   help="download: if the ring has overwritten the log's start, write the "
                        "records from the first state digest it still holds (a replay "
                        "needs the weights of that state)")
    p.add_argument("--segment", type=int, metavar="BYTES",
                   help="start: bytes of each of the ring's two segments (1024..16777216; "
                        "default 65536)")
    p.add_argument("--digest-every", type=int, metavar="N",
                   help="start: a state DIGEST every N logged requests (0: none; "
                        "default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _check(args):
    a = args.action
    if a == "download" and args.out is None:
        raise UsageError("ffkit log download needs -o FILE.ffl (other actions: start, "
                         "stop, status)")
    if a != "download" and (args.out is not None or args.newest):
        raise UsageError("-o and --newest are options of ffkit log download, not %s" % a)
    if a != "start" and (args.segment is not None or args.digest_every is not None):
        raise UsageError("--segment and --digest-every are options of ffkit log start, "
                         "not %s" % a)
    if a == "start":
        if args.segment is not None and not 1024 <= args.segment <= 1 << 24:
            raise UsageError("--segment must be 1024..16777216 bytes, not %d" % args.segment)
        if args.digest_every is not None and not 0 <= args.digest_every <= 0xFFFF:
            raise UsageError("--digest-every must be 0..65535, not %d" % args.digest_every)


def _state(r):
    """'on, records 0..79 held' and the like, for a status dict."""
    if not r["exists"]:
        return "no log"
    held = ("no records" if r["held"] == 0 else
            "records %d..%d held" % (r["first"], r["next"] - 1))
    s = "%s, %s" % ("on" if r["on"] else "off", held)
    if r["wrapped"]:
        s += " (the ring overwrote records 0..%d)" % (r["first"] - 1)
    if r["lost"]:
        s += ", %d record(s) lost to write errors" % r["lost"]
    return s


def run(args):
    from ffkit.sessions import logs

    _check(args)
    board = connect_board(args)
    try:
        port = board.link.name
        if args.action == "download":
            result = logs.download(board, args.out, newest=args.newest)
        elif args.action == "start":
            result = logs.start(board,
                                65536 if args.segment is None else args.segment,
                                64 if args.digest_every is None else args.digest_every)
        elif args.action == "stop":
            result = logs.stop(board)
        else:
            result = logs.status(board)
        result["port"] = port
        result["action"] = args.action
    finally:
        board.close()
    if args.action == "download":
        lines = _download_lines(result)
    elif args.action == "start":
        old = result["replaced"]
        lines = ["log started on %s: segments of %d bytes, a DIGEST every %s request(s), "
                 "step %d%s" % (port, result["segment"], result["digest_every"] or "no",
                                result["start_step"],
                                "; replaced the old log (%d record(s))" % old["next"]
                                if old["exists"] else "")]
    elif args.action == "stop":
        lines = ["log %s on %s: %s" % ("stopped" if result["was_on"] else "was already off",
                                       port, _state(result))]
    elif result["exists"]:
        lines = ["log on %s: %s; started at step %d (state crc32 %s), firmware %s"
                 % (port, _state(result), result["start_step"],
                    result["start_state_crc32"], result["firmware"])]
    else:
        lines = ["no log on %s (ffkit log start)" % port]
    emit(args, result, lines)
    return EXIT_OK


def _download_lines(r):
    lines = ["wrote %s from %s: %d records, %d bytes (logging %s%s)"
             % (r["log"], r["port"], r["records"], r["bytes"],
                "on" if r["logging"] else "off",
                ", %d record(s) lost to write errors" % r["lost"] if r["lost"] else "")]
    for n in r["notes"]:
        lines.append("note: " + n)
    if r["complete"]:
        lines.append("next            ffkit replay %s --weights START.ffw" % r["log"])
    else:
        lines.append("next            ffkit replay %s --weights W.ffw   # W: the state at "
                     "step %d, crc32 %s" % (r["log"], r["start_step"],
                                            r["start_state_crc32"]))
    return lines
