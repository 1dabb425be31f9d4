#!/usr/bin/env python3
"""Measure the firmware's protocol server in the MicroPython unix port; print JSON.

    python tools/serve_bench.py [--pty] [--source] [--no-heap]

Starts `micropython main.py` (ffrt as .mpy cross-compiled for the port, as `ffkit flash`
puts it on a board; --source: compiled from source on the board) in a temporary folder
with models/digits.ffw as model.ffw, on pipes (--pty: a pseudo-terminal, as `ffkit sim`),
and reports:

- upload_bytes_per_s: IMPORT_CHUNK frames of 512 bytes sent back to back (pipelined), the
  wire bytes per second the board decodes and acknowledges;
- import_bytes_per_s / export_bytes_per_s: a 32 KB import / export, one chunk per round
  trip;
- learn_steps_per_s: LEARN, one sample per request; stream_samples_per_s: STREAM of 4
  labelled samples per frame (each predicted, then learnt); stream_predict_per_s: the same
  with learning off; hello_round_trips_per_s;
- min_heap_kb: the smallest `-X heapsize` (KB, bisected) in which the board boots
  ("boot"), and boots, imports, learns, exports and checkpoints ("all").

Timings are wall-clock on the machine at hand and vary; the heap sizes repeat exactly.
"""

import argparse
import json
import os
import pty
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tty
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "firmware")]

from ffkit.board import builds, mpy  # noqa: E402
from ffrt import proto as P  # noqa: E402
from ffrt import proto_host

DIGITS = (ROOT / "models" / "digits.ffw").read_bytes()


class Board:
    def __init__(self, firmware, heap=None, use_pty=False):
        self.dir = tempfile.mkdtemp(prefix="serve-bench-")
        Path(self.dir, "model.ffw").write_bytes(DIGITS)
        argv = [mpy.find_micropython()] + (["-X", "heapsize=%dK" % heap] if heap else [])
        argv.append(str(firmware / "main.py"))
        env = dict(os.environ, MICROPYPATH=str(firmware))
        io = {}
        if use_pty:
            master, slave = pty.openpty()
            tty.setraw(slave)
            io = dict(stdin=slave, stdout=slave)
        else:
            io = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stderr=subprocess.DEVNULL, **io)
        if use_pty:
            os.close(slave)
            self.rfd = self.wfd = master
        else:
            self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        self.dec = P.Decoder()
        self.seq = 0
        self.pending = bytearray()
        self.write(b"\x00")

    def write(self, data):
        mv = memoryview(data)
        while len(mv):
            mv = mv[os.write(self.wfd, mv):]

    def frame(self, t, body=b""):
        self.seq = (self.seq + 1) & 0xFF
        return proto_host.encode_frame(t, self.seq, body)

    def receive(self, timeout=20):
        end = time.monotonic() + timeout
        while True:
            for i, b in enumerate(self.pending):
                if self.dec.feed(b) == P.FRAME_OK:
                    del self.pending[:i + 1]
                    if self.dec.type == P.ERROR:
                        raise RuntimeError(bytes(self.dec.body()[1:]).decode())
                    return bytes(self.dec.body())
            self.pending.clear()
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise TimeoutError
            data = os.read(self.rfd, 65536)
            if not data:
                raise EOFError
            self.pending += data

    def ask(self, t, body=b""):
        self.write(self.frame(t, body))
        return self.receive()

    def close(self):
        self.proc.kill()
        self.proc.wait()
        if self.rfd == self.wfd:
            os.close(self.rfd)
        shutil.rmtree(self.dir)


def transfer(b, data, crc=None):
    b.ask(P.IMPORT_BEGIN, struct.pack("<II", len(data), zlib.crc32(data) if crc is None else crc))
    for off in range(0, len(data), P.CHUNK):
        b.ask(P.IMPORT_CHUNK, struct.pack("<I", off) + data[off:off + P.CHUNK])


def export(b):
    size = struct.unpack("<II", b.ask(P.EXPORT_BEGIN))[0]
    out = bytearray()
    while len(out) < size:
        n = min(P.CHUNK, size - len(out))
        out += b.ask(P.EXPORT_CHUNK, struct.pack("<IH", len(out), n))[4:]
    b.ask(P.EXPORT_END)
    return out


def rate(n, fn):
    t = time.perf_counter()
    fn()
    return round(n / (time.perf_counter() - t), 1)


def speeds(firmware, use_pty):
    b = Board(firmware, use_pty=use_pty)
    try:
        b.ask(P.HELLO)
        out = {}
        frames = []
        for _ in range(8):  # eight imports staged, never committed
            frames.append(b.frame(P.IMPORT_BEGIN, struct.pack("<II", len(DIGITS), 0)))
            frames += [b.frame(P.IMPORT_CHUNK, struct.pack("<I", o) + DIGITS[o:o + P.CHUNK])
                       for o in range(0, len(DIGITS), P.CHUNK)]
        wire = b"".join(frames)
        out["upload_bytes_per_s"] = rate(len(wire), lambda: (
            b.write(wire), [b.receive() for _ in frames]))
        out["import_bytes_per_s"] = rate(len(DIGITS), lambda: (
            transfer(b, DIGITS), b.ask(P.IMPORT_COMMIT)))
        out["export_bytes_per_s"] = rate(4 * len(DIGITS), lambda: [export(b) for _ in range(4)])
        rnd = random.Random(1)
        xs = [(bytes([rnd.randrange(10)]) + struct.pack("<64h", *(rnd.randrange(17)
                                                                  for _ in range(64))))
              for _ in range(400)]
        out["learn_steps_per_s"] = rate(100, lambda: [b.ask(P.LEARN, x) for x in xs[:100]])
        batches = [b"\x04" + b"".join(xs[i:i + 4]) for i in range(0, 400, 4)]
        out["stream_samples_per_s"] = rate(400, lambda: [b.ask(P.STREAM, s) for s in batches])
        b.ask(P.SET, b'{"learning": false}')
        out["stream_predict_per_s"] = rate(400, lambda: [b.ask(P.STREAM, s) for s in batches])
        out["hello_round_trips_per_s"] = rate(500, lambda: [b.ask(P.HELLO) for _ in range(500)])
        return out
    finally:
        b.close()


def works(firmware, heap, everything):
    b = Board(firmware, heap)
    try:
        b.ask(P.INFO)
        if everything:
            b.ask(P.HELLO)
            transfer(b, DIGITS)
            b.ask(P.IMPORT_COMMIT)
            b.ask(P.LEARN, bytes([3]) + struct.pack("<64h", *([1] * 64)))
            export(b)
            b.ask(P.CHECKPOINT)
            b.ask(P.STATS)
        return True
    except (RuntimeError, TimeoutError, EOFError, OSError):
        return False
    finally:
        b.close()


def min_heap(firmware, everything, lo=64, hi=256):
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if works(firmware, mid, everything) else (mid, hi)
    return hi


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pty", action="store_true", help="a pseudo-terminal instead of pipes")
    ap.add_argument("--source", action="store_true", help="ffrt from source, not .mpy")
    ap.add_argument("--no-heap", action="store_true", help="skip the heap bisection")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.source:
            firmware = mpy.firmware_dir()
        else:
            code = int(mpy.run("import sys\nprint(sys.implementation._mpy >> 10)").strip())
            arch = {v: k for k, v in builds.MPY_ARCH_CODES.items()}[code]
            firmware = Path(tmp)
            builds.build_mpy(arch, firmware)
            shutil.copy(mpy.firmware_dir() / "main.py", firmware / "main.py")
        out = {"transport": "pty" if args.pty else "pipe",
               "modules": "source" if args.source else ".mpy"}
        out.update(speeds(firmware, args.pty))
        if not args.no_heap:
            out["min_heap_kb"] = {"boot": min_heap(firmware, False),
                                  "all": min_heap(firmware, True)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
