"""``ffkit replay``: a recorded session (.ffl) replayed on the host, bit for bit.

    ffkit replay session.ffl --weights W.ffw [--out END.ffw] [--json]
                 [--runner numpy|reference|micropython] [--force]

The log's inputs go through the board's own request handlers (ffrt.replay) over a net
loaded from the starting weights: with the numpy kernels (fast), the reference kernels
(plain Python), or in the MicroPython unix port (viper kernels, the board's code as it
runs there). The result is ``identical`` or the first record where board and host
disagree: its index, byte offset, type, the field, the board's value and the host's.
``--out`` writes the replayed final weights (.ffw). Without ``--weights`` the starting
weights are looked up by their state CRC among models/*.ffw.

A log that fails its checks (truncated, corrupt, reordered, empty: ffrt.ffl.parse), a log
from another firmware version or model signature, or starting weights that are not the
log's are refused with the reason; ``--force`` replays the last two anyway and reports
where the replay diverges.
"""

import json
import struct
import tempfile
import time
from pathlib import Path

from ffkit import FFKitError

RUNNERS = ("numpy", "reference", "micropython")

# the micropython runner: firmware/tools/replay_run.py (its parameters in a JSON file)


def find_start(state_crc):
    """A models/*.ffw whose stored CRC is state_crc, or whose weights this ffrt would
    store with that CRC (a file written by an older release, with fewer signature fields:
    a board of this firmware that loaded it logs the CRC of the file it would write);
    None if there is none."""
    from ffrt import ffw
    from ffrt import ffw_ram
    from ffrt.ffw_write import stream_crc

    from ffkit import config
    for p in sorted(config.models_dir().glob("*.ffw")):
        data = p.read_bytes()
        if len(data) >= 4 and struct.unpack("<I", data[-4:])[0] == state_crc:
            return p
        try:
            if stream_crc(ffw_ram.load(data))[0] == state_crc:
                return p
        except ffw.FFWError:
            continue
    return None


def run(log, weights=None, out=None, runner="numpy", force=False):
    """Replay the log file; the result dict (module docstring). FFKitError on refusal."""
    import ffrt
    from ffrt import ffl, ffw
    from ffrt import ffw_ram
    from ffrt import replay as engine

    if runner not in RUNNERS:
        raise FFKitError("unknown runner %r (%s)" % (runner, ", ".join(RUNNERS)))
    log = Path(log)
    try:
        data = log.read_bytes()
    except OSError as e:
        raise FFKitError("cannot read %s: %s" % (log, e.strerror or e)) from None
    try:
        head, _ = ffl.parse_header(data)
    except ffl.FFLError as e:
        raise FFKitError("%s: %s" % (log, e)) from None
    if weights is None:
        weights = find_start(head["state_crc"])
        if weights is None:
            raise FFKitError("%s started from weights with state crc32 %08x, which no "
                             "models/*.ffw has: give --weights START.ffw"
                             % (log, head["state_crc"]))
    start = Path(weights).read_bytes()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ffkit-replay-") as tmp:
        if runner == "micropython":
            from ffkit.board import mpy
            sp = Path(tmp) / "start.ffw"
            sp.write_bytes(start)
            folder = Path(tmp) / "board"
            folder.mkdir()
            args = Path(tmp) / "args.json"
            args.write_text(json.dumps({
                "log": str(log.resolve()), "start": str(sp), "folder": str(folder),
                "force": bool(force), "version": ffrt.__version__,
                "out": str(Path(out).resolve()) if out else ""}))
            r = mpy.run_json(mpy.script("replay_run.py"), args=[str(args)], timeout=3600)
            if r.get("error"):
                raise FFKitError("%s: %s" % (log, r["error"]))
        else:
            if runner == "numpy":
                from ffkit.twins import kernels_np as kernels
            else:
                from ffrt import kernels_ref as kernels
            try:
                net = ffw_ram.load(start, kernels)
            except ffw.FFWError as e:
                raise FFKitError("%s: %s" % (weights, e)) from None
            import gc
            gc_was = gc.isenabled()
            gc.disable()  # a replay makes little garbage; a full heap's collections cost
            try:          # more than the replay in a process that holds many objects
                r = engine.replay(data, net, tmp, force=force, expect_version=ffrt.__version__)
            except ffl.FFLError as e:
                raise FFKitError("%s: %s" % (log, e)) from None
            finally:
                if gc_was:
                    gc.enable()
            if out and r.get("state_crc32") is not None:
                Path(out).write_bytes(bytes(ffw_ram.encode(net)))
    seconds = time.perf_counter() - t0
    res = {"log": str(log), "weights": str(weights), "runner": runner,
           "identical": r["identical"], "records": r["records"],
           "inputs": r.get("inputs"), "step": r.get("step"),
           "final_weights_crc32": "%08x" % r["state_crc32"]
           if r.get("state_crc32") is not None else None,
           "notes": r.get("notes", []), "seconds": round(seconds, 3),
           "firmware": head["version"]}
    if not r["identical"]:
        res["first_divergence"] = r["divergence"]
    if out and res["final_weights_crc32"] is not None:
        res["out"] = str(out)
    return res


def format_lines(r):
    lines = ["%s: %d records, replayed with the %s runner in %.2f s"
             % (r["log"], r["records"], r["runner"], r["seconds"])]
    for n in r["notes"]:
        lines.append("note: " + n)
    if r["identical"]:
        lines.append("IDENTICAL: every output and digest equals the board's; final state "
                     "crc32 %s, step %s" % (r["final_weights_crc32"], r["step"]))
    else:
        d = r["first_divergence"]
        lines.append("DIVERGES at record %d (byte %d, %s): %s is %s on the board, %s here"
                     % (d["index"], d["offset"], d["type"], d["field"], d["board"],
                        d["host"]))
    if r.get("out"):
        lines.append("wrote %s" % r["out"])
    return lines


def add_arguments(p):
    p.add_argument("log", type=Path, help="the session log (.ffl)")
    p.add_argument("--weights", type=Path, metavar="START.ffw",
                   help="the weights the session started from (default: the models/*.ffw "
                        "with the log's state CRC)")
    p.add_argument("--out", type=Path, metavar="END.ffw", help="write the replayed weights")
    p.add_argument("--runner", choices=RUNNERS, default="numpy",
                   help="numpy (default), reference (plain Python) or micropython (the "
                        "unix port)")
    p.add_argument("--force", action="store_true",
                   help="replay a log from another firmware version or model anyway")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args):
    r = run(args.log, args.weights, args.out, args.runner, args.force)
    if args.json:
        print(json.dumps(r))
    else:
        for line in format_lines(r):
            print(line)
    return 0 if r["identical"] else 1
