"""ffkit repl: stop serving and hand the port back to the board's MicroPython REPL.

    ffkit repl --port /dev/ttyACM0       # or: ffkit repl /dev/ttyACM0
    mpremote connect /dev/ttyACM0 resume exec "import os; print(os.listdir())"

While ffrt serves, the REPL does not own the port (the firmware turned Ctrl-C off), so
``mpremote`` gets no answer. This sends the protocol's REPL request (a HELLO first, then
INFO to say what was running; ffkit.board.client.Board.repl), waits for the REPL's prompt and
prints the next step. A serving board's state is checkpointed first, as ``ffkit flash``
does (ffkit.board.flash.keep_learning): restarting the firmware boots its newest checkpoint;
``--drop-learning`` skips it. A board already at the REPL (no firmware answers HELLO) is
left there, after mpremote's own Ctrl-C, Ctrl-A shows a REPL answers; a port that says
nothing fails within about 4 s.

Use ``mpremote connect PORT resume ...``: without ``resume`` mpremote soft-resets the
board first (on the unix port of a virtual board that ends its process). To serve again,
restart the firmware: reset the board (``mpremote connect PORT resume reset``), or
``ffkit flash`` (which restarts it), or start ``ffkit sim`` again for a virtual board.
"""

import json
import os

from ffkit import FFKitError, UsageError
from ffkit.commands._common import EXIT_OK, add_port_args

DESCRIPTION = ("Stop serving and hand the port back to the board's MicroPython REPL "
               "(for mpremote).")


def add_arguments(p):
    p.description = DESCRIPTION
    add_port_args(p)
    # mpremote's habit, `ffkit repl PORT`, as well as the --port every verb takes
    p.add_argument("port_arg", nargs="?", metavar="PORT", help="the same as --port PORT")
    p.add_argument("--drop-learning", action="store_true",
                   help="do not checkpoint the board first (a restart then boots its last "
                        "checkpoint, losing what it learnt since)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def hand_back(port, timeout=1.0, drop_learning=False):
    """Ask the firmware on port to leave its serve loop; returns {"port", "was", "saved"}.

    "was" is INFO's firmware, board, boot and step (None: no firmware answered, a REPL
    did); "saved" the checkpoint written first (None: none). FFKitError otherwise.
    """
    from ffkit.board.client import Board, BoardTimeout
    from ffkit.board import flash as fl
    from ffkit.board.sim_port import open_port
    from ffrt import proto

    result = {"port": port, "was": None, "saved": None}
    link = open_port(port)   # LinkError: no such port, or busy (says so)
    try:
        board = Board(link, timeout=timeout, retries=1, hello=False)
        board._seq = (fl.quiet_seq(proto.HELLO) - 1) & 0xFF   # harmless to a REPL
        try:
            board.hello()
        except BoardTimeout:
            if not fl.wake_repl(link):
                raise FFKitError(fl.silent_port(port)) from None
            return result
        info = board.info()
        result["was"] = {k: info.get(k) for k in ("firmware", "board", "boot", "step",
                                                  "checkpoint")}
        if not drop_learning:
            result["saved"] = fl.keep_learning(board, info, port,
                                               "the board, once restarted,")
        board.repl()
        # the prompt: read with the reply (the session keeps what followed it), or soon
        got = bytes(board._pending)
        if not any(m in got for m in fl._REPL_PROMPTS):
            got += fl._read_until(link, fl._REPL_PROMPTS, 3.0)
        result["prompt"] = any(m in got for m in fl._REPL_PROMPTS)
    finally:
        link.close()
    return result


def run(args):
    from ffkit.board.link import choose_port

    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if args.port_arg is not None:
        if args.port is not None and args.port != args.port_arg \
                and args.port != os.environ.get("FFKIT_PORT"):
            raise UsageError("two ports: %s and --port %s" % (args.port_arg, args.port))
        args.port = args.port_arg
    port = choose_port(args.port)
    result = hand_back(port, args.timeout, args.drop_learning)
    result["next"] = "mpremote connect %s resume" % port
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    was, saved = result["was"], result["saved"]
    if was is None:
        print("%s: no ffkit firmware answers; the MicroPython REPL does (left as it was)"
              % port)
    else:
        print("%s: ffkit %s (board %s, booted from %s, step %s) stopped serving and handed "
              "the port back to the REPL" % (port, was.get("firmware", "?"),
                                             was.get("board", "?"), was.get("boot", "?"),
                                             was.get("step", "?")))
        if not result["prompt"]:
            print("(no REPL prompt showed within 3 s: a board whose main.py does not end "
                  "in the REPL may need a reset)")
        if saved is not None:
            print("saved its state at step %s as checkpoint %d (slot %d): a restart boots "
                  "it" % (saved["step"], saved["checkpoint"], saved["slot"]))
    print("next:  %s            (the REPL; Ctrl-] leaves)" % result["next"])
    print("       %s exec \"print(1 + 1)\"   (or fs ls, fs cp, run ...)" % result["next"])
    print("always with resume: without it mpremote soft-resets the board first")
    print("to serve again, restart the firmware: %s reset, or ffkit flash (a virtual "
          "board: ffkit sim again)" % result["next"])
    return EXIT_OK
