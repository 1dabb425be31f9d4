"""ffrt: the ffkit runtime that runs on the board (and, unchanged, in CPython).

Engine modules (no I/O): fixedpoint, kernels_ref / kernels_viper, model, net, ffw.

Code loaded on demand (ffrt.server's request modules, ffrt.strictjson for a SET or ADAPT
body) is loaded with `room` and dropped with `unload`, here in the package every module
already holds, so that no module imports the server for them.
"""

import gc
import struct
import sys

__version__ = "0.1.0"

# Loading a module from .mpy takes about 1.5 times its file size of free heap on x64
# (units of 64 words, 512 bytes there), and an import that runs out half-way keeps some
# of what it had built (measured in the unix port, up to 10 KB): it is not tried without
# that room. Frozen modules (whose __file__ names their .py source) take little heap to
# load: no check.
STRICTJSON_NEED = 9  # ffrt.strictjson (a SET or ADAPT body): 3.5-4 KB measured on x64
UNIT = struct.calcsize("P") << 6 if globals().get("__file__", "").endswith(".mpy") else 0


def room(need):
    """Refuse (MemoryError) to load code that takes `need` units (UNIT) of free heap when
    there is less: an import that fails half-way keeps some of what it had built, and a
    board that tried could be left without the heap to answer INFO."""
    if UNIT:
        gc.collect()
        if gc.mem_free() < need * UNIT:
            raise MemoryError("too little heap to load its code")


def unload(name):
    """Forget module ffrt.<name>: once nothing refers to it, its code is garbage."""
    if sys.modules.pop("ffrt." + name, None) is not None:
        g = globals()
        if name in g:
            del g[name]
        gc.collect()
