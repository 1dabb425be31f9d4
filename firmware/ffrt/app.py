"""The firmware's main loop: boot the net, serve the protocol, hand the REPL back.

`run()` loads the net from the newest valid checkpoint in the current folder, else from
the flashed `model.ffw`, else builds a fresh digits-shaped net from Config(); picks the
board profile (ffrt.boards, from sys.platform unless named), opens its port and answers
requests until a REPL request (or the end of input on a unix pipe), then restores the
port and returns: `micropython -i main.py` lands in the REPL, and `mpremote` can deploy
again. Nothing is printed while it serves: the protocol owns stdout (a host skips what
comes before its first frame). A board left with less free heap after boot than serving
every request takes (SERVE_NEED with ffrt as .mpy, SERVE_NEED_SOURCE compiled from .py)
prints one line saying so and returns instead of serving for a while and then failing;
a main.py may set them lower first.

    from ffrt import app    # firmware/main.py
    app.run()

With a sensor, its samples go to the live learner (ffrt.live: features, prediction)
between requests; a board's own main.py passes one, e.g. on a Pico:

    from machine import I2C, Pin
    from ffrt import app
    from ffrt.imu_mpu6050 import MPU6050      # or imu_lsm6ds.LSM6DS, adc_source.AdcSource
    app.run(sensor=MPU6050(I2C(0, scl=Pin(5), sda=Pin(4), freq=400_000)))

The learner is the server's (`srv.live`: ADAPT sets it up, ADAPT's reply counts its
windows), so a host's SAMPLES frames would go to the same windower: stream from a host
or read a sensor, not both at once. Windows from the sensor carry no label, so they are
predicted (`srv.live.last`) and not learnt; a label source (a button, a host) would pass
its label to `LiveLearner.read`.

Memory: modules are loaded one at a time with a collection after each, the engine first,
then the net (its 16 KB weight buffer needs one free piece of heap), then the server.
Loading a module leaves garbage behind; collecting it at once keeps what stays packed at
the bottom of the heap. What is needed once is dropped after boot: the board profiles
(ffrt.boards) and this module's boot functions (so run() runs once per boot, as
main.py does). The server loads the rest on demand (ffrt.server). Measured on the
virtual board (x64 unix port) with ffrt as `ffkit flash` ships it (.mpy, native kernels),
the serving check asks for 106 KB (104 KB before issue 15's strict input checks, 102 KB
before issue 14's shared label pass and shorter methods), in which the digits net runs boot, import, learn, export and checkpoint
(tests/test_server.py, tests/test_wedge.py; the host's paths move such figures by up to
1 KB).
"""

import gc

MODEL = "model.ffw"
# Free heap after boot (units of ffrt.room) that serving every request takes for as long
# as the board runs; with less, run() says so and returns. Unloading a .mpy module leaves
# its interned names in the heap (about 5 KB once every request has been served), and an
# export must still load its code then. Measured with `ffkit fuzz` (100,000 frames,
# digits net as .mpy on x64): at 100K (20 units free after boot) a run could end with the
# board unable to export; 101K (22 units) and up passed every run. ffrt compiled from .py
# on the board compiles each request module when it is first asked for, which takes far
# more: SERVE_NEED_SOURCE units of 64 words (the same runs: 128K, 36 KB free after boot,
# could end refusing SET; 134K, 42 KB, and 140K passed). A board's main.py may set them
# lower before run() (tests/test_wedge.py does, to serve at 100K). Those runs were made
# before issue 14 (2.4 KB more at boot since): the same 11 KB free after boot now take a
# 104K heap, and from source 136K. Issue 15's strict input checks (320 bytes more at boot)
# moved where the heap's pieces fall: at 105K (12.2 KB free after boot) an import's commit
# found no piece for its code (refused, cleanly), so the check asks 25 units (12.5 KB):
# from 106K (13.2 KB free), which passed 100,000 fuzzed frames with and without imports.
SERVE_NEED = 25
SERVE_NEED_SOURCE = 82
_IDLE_MS = 20  # the longest wait for input while there is nothing else to do


def _serve_need():
    """Bytes of free heap after boot that serving takes: SERVE_NEED units with ffrt as
    .mpy, SERVE_NEED_SOURCE units with ffrt compiled from .py on this board, none when it
    is frozen into the firmware (or in CPython)."""
    import ffrt
    if ffrt.UNIT:
        return SERVE_NEED * ffrt.UNIT
    import sys
    if sys.implementation.name != "micropython":
        return 0
    import os
    try:
        os.stat(ffrt.__file__)   # a frozen module's path names no file on the board
    except (OSError, TypeError):
        return 0
    import struct
    return SERVE_NEED_SOURCE * (struct.calcsize("P") << 6)


def _load(names):
    for name in names:
        __import__("ffrt." + name)
        gc.collect()


def boot(st):
    """(net, where it came from): the newest checkpoint, else model.ffw, else fresh."""
    from ffrt import ffw
    from ffrt.model import Config
    from ffrt.net import FFNet
    found = st.newest()  # every check of both slots
    if found is not None:
        gc.collect()
        net = FFNet(found[2], init=False)
        try:
            st.load(net, found[1])
            return net, "checkpoint"
        except (OSError, ffw.FFWError):  # changed since it was checked: the next source
            net = None
    try:
        with open(MODEL, "rb") as f:
            cfg = ffw.check_stream(f)[0]
            gc.collect()
            net = FFNet(cfg, init=False)
            f.seek(0)
            ffw.load_stream(net, f)
            return net, MODEL
    except (OSError, ffw.FFWError):  # none flashed, or refused: a fresh net
        pass
    gc.collect()
    return FFNet(Config()), "fresh"


def open_port(spec):
    """The port for a profile's "port" entry: "stdio", or (uart id, tx, rx, baud)."""
    if spec == "stdio":
        from ffrt import port
        return port.StdioPort()
    from machine import UART, Pin
    from ffrt.port_uart import UartPort
    uart, tx, rx, baud = spec
    return UartPort(UART(uart, baudrate=baud, tx=Pin(tx), rx=Pin(rx)))


def run(board=None, sensor=None, log=None):
    """Serve until a REPL request; sensor: a source with read_into (module docstring);
    log: start a session log at boot with segments of this many bytes (ffrt.log_ops:
    requests and the sensor's samples, for ffkit log and ffkit replay)."""
    _load(("crc32", "model", "fixedpoint", "net", "ffw", "storage"))
    from ffrt import storage
    st = storage.Storage()
    net, origin = boot(st)
    gc.collect()
    _load(("proto", "server"))
    from ffrt import boards, server, unload
    prof = boards.profile(board)
    del boards
    unload("boards")  # the other profiles are not needed again
    link = open_port(prof["port"])
    srv = server.Server(net, link, st, {"board": prof["name"], "boot": origin})
    g = globals()
    for name in ("boot", "open_port", "_load"):  # needed once: their code becomes garbage
        del g[name]
    if sensor is not None:
        from ffrt.live import LiveLearner
        srv.live = LiveLearner(net)
    if log:
        from ffrt import log_ops
        log_ops.start(srv, log)
    gc.collect()
    short = _serve_need() - gc.mem_free()
    if short > 0:  # it would answer for a while, then fail its requests (SERVE_NEED)
        link.close()
        print("ffrt: not serving: %d bytes of heap free after boot, %d short of what serving "
              "every request takes (a larger heap, a smaller model, or ffrt frozen into "
              "the firmware)" % (gc.mem_free(), short))
        return
    try:
        while True:
            r = srv.poll()
            if r == server.LEAVE:
                break
            if sensor is not None and srv.live.read(sensor):  # requests answered between
                continue
            if r == server.IDLE:
                link.wait(_IDLE_MS)
    finally:
        link.close()
