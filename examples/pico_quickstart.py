"""Pico quick start: from a bare Raspberry Pi Pico to a board that learns and keeps what it learnt.

1. Put MicroPython on the Pico: hold BOOTSEL while plugging it in, then copy the
   Raspberry Pi Pico .uf2 from https://micropython.org/download/RPI_PI_PICO/ onto the
   RPI-RP2 drive that appears. `ffkit ports` then lists it (e.g. /dev/ttyACM0).
2. Run this script with its port:

       python examples/pico_quickstart.py --port /dev/ttyACM0

   It runs the four ffkit commands a new user runs, printing each first:
   `ffkit flash` (ffrt cross-compiled for armv6m, copied with mpremote, with the
   bootstrapped HAPT model), `ffkit stream` (a held-out person's recorded IMU samples:
   the board cuts windows, computes features, predicts and learns; the host checks it
   bit for bit), `ffkit export` (what the board learnt, to pico.ffw: it must never die
   with the board) and `ffkit info`.
3. Wire an MPU-6050 for live samples: VCC to 3V3, GND to GND, SCL to GP5, SDA to GP4
   (I2C0, the rp2 profile in ffrt.boards), and give the board this main.py
   (`mpremote cp main.py :main.py`; ffkit repl --port P first if ffrt is serving):

       from machine import I2C, Pin
       from ffrt import app
       from ffrt.imu_mpu6050 import MPU6050
       app.run(sensor=MPU6050(I2C(0, scl=Pin(5), sda=Pin(4), freq=400_000)))

   The board then predicts the wearer's activity from the sensor between requests
   (steps 1 and 3 need the hardware: the test runs step 2 only).

Without a Pico, leave out --port: the same steps run on the built-in virtual board (the
real firmware in the MicroPython unix port on a pseudo-terminal, started with `ffkit sim
--restart` and kept running, as a plugged-in Pico keeps running between commands):

    python examples/pico_quickstart.py
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile

from ffkit import config


def ffkit(*args):
    """Run one ffkit command as a user would type it; stop the walk-through if it fails."""
    print("$ ffkit " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    r = subprocess.run([sys.executable, "-m", "ffkit.cli", *map(str, args)])
    if r.returncode != 0:
        raise SystemExit(r.returncode)


def walk_through(port, board, subject, limit, out):
    model = config.models_dir() / "hapt.ffw"
    ffkit("flash", "--board", board, "--port", port, "--model", model)
    ffkit("stream", "--port", port, "--weights", model, "--subjects", subject,
          "--limit", limit, "--no-plots", "--no-progress")
    ffkit("export", "--port", port, "-o", out)
    ffkit("info", "--port", port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", help="the Pico's serial port (default: a virtual board)")
    ap.add_argument("--board", help="board profile for ffkit flash (default rp2 with --port, "
                    "else unix)")
    ap.add_argument("--subject", type=int, default=21, help="held-out HAPT subject, 16-30")
    ap.add_argument("--limit", type=int, default=20, help="windows per session (default 20)")
    ap.add_argument("--out", default="pico.ffw", help="where the learnt weights go")
    args = ap.parse_args(argv)
    if args.port:
        walk_through(args.port, args.board or "rp2", args.subject, args.limit, args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="vb") as folder:
        sim = subprocess.Popen([sys.executable, "-m", "ffkit.cli", "sim", "--dir", folder,
                                "--restart", "--json"], stdout=subprocess.PIPE, text=True)
        try:
            port = json.loads(sim.stdout.readline())["port"]
            print("virtual board on %s (ffkit sim --dir %s --restart)" % (port, folder))
            walk_through(port, args.board or "unix", args.subject, args.limit, args.out)
        finally:
            sim.terminate()
            sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
