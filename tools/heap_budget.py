#!/usr/bin/env python3
"""Where a board's heap goes when it streams: each part of the firmware, in bytes, as an
emulated microcontroller measures it; print JSON (and a table with --table).

    python tools/heap_budget.py                                  # cortex-m0, hapt-tiny
    python tools/heap_budget.py --machine cortex-m3 --model models/hapt.ffw --per-class 16 \
        --heap 192K --table

Boots the machine's image (ffkit.board.qemu: ffrt frozen) with a 64 KB heap (--heap) and
models/hapt-tiny.ffw (or --model) as model.ffw, then builds what a board streaming HAPT
holds, one part at a time, reading gc.mem_free() after a collection before and after
each: the boot (littlefs on the flash image, the boot script), the engine's modules
(ffrt.model, ffrt.kernels_ref, ffrt.net; the viper kernels too where the image has
them), the net loaded from model.ffw (its buffers and Python objects beside the bytes
of its tensors, `FFNet.ram_bytes`), the live learner's modules and objects (ffrt.live:
the windower's 2 KB ring, the rehearsal buffer: per_class windows a class, from the
model's [adapt] or --per-class), and the protocol server's modules (ffrt.server,
ffrt.ops, ffrt.net_ops, ffrt.live_ops, ffrt.transfer, ffrt.storage: each loaded on its
first request). Imports are made in that order, so each part counts what it adds to the parts before it. The figures repeat
exactly for one image; they are what a smaller profile has to cut (issue 16: a 10 KB
heap).
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host"))

# runs on the board: prints one JSON list of [part, bytes] (and the net's and learner's
# own count of their buffers)
_SCRIPT = """\
import gc, json
out = []
last = [0]
def part(name):
    gc.collect()
    m = gc.mem_free()
    out.append([name, last[0] - m])
    last[0] = m
gc.collect()
last[0] = gc.mem_free()
out.append(["boot", gc.mem_free() + gc.mem_alloc() - last[0]])
from ffrt import model, kernels_ref, net
from ffrt.net import default_kernels
default_kernels()
part("engine modules")
from ffrt import ffw
part("ffw module")
with open("model.ffw", "rb") as f:  # as ffrt.app.boot loads it
    cfg = ffw.check_stream(f)[0]
    nt = net.FFNet(cfg, init=False)
    f.seek(0)
    ffw.load_stream(nt, f)
part("net")
from ffrt import live
part("live learner modules")
L = live.LiveLearner(nt, per_class=%(per_class)d, replay=%(replay)d)
part("live learner (windower)")
L.buffer()
part("rehearsal buffer")
from ffrt import server, ops, net_ops, live_ops
part("server, requests")
from ffrt import transfer, storage
part("import, export, checkpoints")
gc.collect()
print(json.dumps({"parts": out, "free": gc.mem_free(), "heap": gc.mem_free() + gc.mem_alloc(),
                  "net_ram_bytes": nt.ram_bytes(), "live_ram_bytes": L.ram_bytes()}))
"""


def measure(machine="cortex-m0", model=None, per_class=None, replay=None, heap="64K"):
    """{"parts": [[name, bytes], ...], "free", "heap", "net_ram_bytes", "live_ram_bytes"};
    per_class and replay default to the [adapt] of the model's .toml beside it."""
    from ffkit import config
    from ffkit.board import qemu

    model = Path(model) if model else config.models_dir() / "hapt-tiny.ffw"
    if per_class is None or replay is None:
        toml = model.with_suffix(".toml")
        adapt = config.load(toml).adapt if toml.is_file() else None
        per_class = per_class if per_class is not None else adapt.per_class if adapt else 2
        replay = replay if replay is not None else adapt.replay if adapt else 2
    script = _SCRIPT % {"per_class": per_class, "replay": replay}
    r = qemu.run_json(machine, script, files={"model.ffw": model.read_bytes()}, heap=heap,
                      timeout=300)
    r.update(machine=machine, model=model.name, per_class=per_class, replay=replay)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--machine", default="cortex-m0")
    ap.add_argument("--model", help="a .ffw (default: models/hapt-tiny.ffw)")
    ap.add_argument("--per-class", type=int, help="default: the model's [adapt]")
    ap.add_argument("--replay", type=int, help="default: the model's [adapt]")
    ap.add_argument("--heap", default="64K", help="the board's heap (default 64K)")
    ap.add_argument("--table", action="store_true", help="a table, not JSON")
    a = ap.parse_args(argv)
    r = measure(a.machine, a.model, a.per_class, a.replay, a.heap)
    if not a.table:
        print(json.dumps(r))
        return
    print("%s, %s, rehearsal %d per class: heap %d bytes" % (
        r["machine"], r["model"], r["per_class"], r["heap"]))
    total = 0
    for name, n in r["parts"]:
        total += n
        print("  %-30s %6d   (%6d in all)" % (name, n, total))
    print("  %-30s %6d" % ("free", r["free"]))
    print("net tensors and buffers (FFNet.ram_bytes) %d, live learner's buffers %d" % (
        r["net_ram_bytes"], r["live_ram_bytes"]))


if __name__ == "__main__":
    main()
