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
# Free heap after boot that serving every request takes, for as long as the board runs
# (ffrt.app refuses to serve with less): unloading a .mpy module leaves its interned
# names in the heap (about 5 KB once every request has been served), and an export then
# still loads its code. Measured with `ffkit fuzz` (100,000 frames, digits net as .mpy
# on x64): at 100K (20 units free after boot) a run can end with the board unable to
# export; 101K (22 units) and up passed every run. A board's main.py may lower it.
SERVE_NEED = 22
_UNIT = struct.calcsize("P") << 6 if globals().get("__file__", "").endswith(".mpy") else 0


def short_of(need):
    """The bytes of free heap short of `need` units (_UNIT) after a collection; 0 when
    there is that much, or when ffrt was not loaded from .mpy."""
    if not _UNIT:
        return 0
    gc.collect()
    return max(0, need * _UNIT - gc.mem_free())


def room(need):
    """Refuse (MemoryError) to load code that takes `need` units (_UNIT) of free heap when
    there is less: an import that fails half-way keeps some of what it had built, and a
    board that tried could be left without the heap to answer INFO."""
    if short_of(need):
        raise MemoryError("too little heap to load its code")


def unload(name):
    """Forget module ffrt.<name>: once nothing refers to it, its code is garbage."""
    if sys.modules.pop("ffrt." + name, None) is not None:
        g = globals()
        if name in g:
            del g[name]
        gc.collect()
