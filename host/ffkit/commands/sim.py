"""ffkit sim: a virtual board (the firmware in the unix port, or an emulated
microcontroller under QEMU) on a pty, until Ctrl-C (ffkit.board.sim, ffkit.board.qemu)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from ffkit.board.sim import check_heap


def add_arguments(p):
    from ffkit.board import sim
    p.description = sim.__doc__.strip().split("\n\n")[0]   # as ffkit.board.sim's docstring says
    p.add_argument("--dir", required=True, type=Path,
                   help="the board's filesystem (created if missing; checkpoints live here)")
    p.add_argument("--heap", metavar="SIZE",
                   help="MicroPython heap, e.g. 192K (default: the unix port's 2M; the repo "
                        "firmware, compiled from source on the board, needs about 160K)")
    p.add_argument("--json", action="store_true",
                   help="first stdout line {\"port\", \"pid\", ...}; then one JSON line per event")
    p.add_argument("--restart", action="store_true",
                   help="boot the firmware again when it exits or is killed (a power cut); "
                        "default: report it and exit 1")
    p.add_argument("--model", metavar="W.ffw", type=Path,
                   help="copy this weight file into --dir as model.ffw first: the board "
                        "boots it unless it has a checkpoint (a board's model, its shape "
                        "included, comes with it)")
    p.add_argument("--machine", choices=("unix", "cortex-m3", "cortex-m4", "cortex-m0"),
                   default="unix",
                   help="unix (default): the firmware in the MicroPython unix port; "
                        "cortex-m3 / cortex-m4 / cortex-m0: MicroPython built for an "
                        "emulated microcontroller (QEMU mps2-an385 / mps2-an386 / "
                        "microbit) with ffrt frozen, its "
                        "flash a littlefs image in --dir (ffkit.board.qemu; the first run builds "
                        "the image, about 30 s)")


class _Stop(Exception):
    pass


def _on_signal(signum, frame):
    raise _Stop(signum)


def _say(args, event, text):
    if args.json:
        print(json.dumps(event), flush=True)
    else:
        print(text, flush=True)


def _report_console(args, vb, seen):
    """Print a traceback the firmware wrote (once), on stderr, or as a JSON event."""
    relay = vb._relay
    if relay is None or relay.text_serial == seen:
        return seen
    text = vb.console()
    at = text.rfind("Traceback (most recent call last)")
    if at >= 0:
        tb = text[at:].split(">>> ")[0].split("\nMicroPython ")[0].rstrip()
        if args.json:
            print(json.dumps({"event": "traceback", "text": tb}), flush=True)
        else:
            print("firmware stopped serving:\n" + tb, file=sys.stderr, flush=True)
        relay.text.clear()
    return relay.text_serial


def run(args):
    heap = check_heap(args.heap)
    if getattr(args, "model", None) is not None:
        from ffrt import ffw
        from ffrt import ffw_ram
        from ffkit import FFKitError
        data = Path(args.model).read_bytes()
        try:
            ffw_ram.decode_config(data)
        except ffw.FFWError as e:
            raise FFKitError("%s: refused: %s" % (args.model, e)) from None
        args.dir.mkdir(parents=True, exist_ok=True)
        (args.dir / "model.ffw").write_bytes(data)
    from ffkit.board.sim_port import make_board
    vb = make_board(args.dir, getattr(args, "machine", "unix"), heap=heap, register=True)
    # SIGINT too: a shell starts background jobs with SIGINT ignored
    stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    old = {s: signal.signal(s, _on_signal) for s in stops}
    try:
        vb.start()
        e = vb.entry()
        _say(args, e, "virtual board%s on %s (firmware pid %d, dir %s%s)\n"
             "use --port %s; Ctrl-C stops it"
             % ("" if e.get("machine") is None else " (%s, QEMU)" % e["machine"], vb.port,
                vb.pid, vb.dir, ", heap %s" % heap if heap else "", vb.port))
        seen = 0
        while True:
            try:
                code = vb.wait(0.2)
            except subprocess.TimeoutExpired:
                seen = _report_console(args, vb, seen)
                continue
            seen = _report_console(args, vb, seen)
            what = "killed by signal %d" % -code if code < 0 else "exited with code %d" % code
            if not args.restart:
                _say(args, {"event": "exited", "returncode": code},
                     "firmware %s; stopping (use --restart to boot it again)" % what)
                return 1
            time.sleep(0.05)  # a crash loop must not spin the CPU
            vb.start()
            _say(args, {"event": "restarted", "pid": vb.pid, "after": code,
                        "boots": vb.boots},
                 "firmware %s; booted again (pid %d)" % (what, vb.pid))
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        vb.stop()


