"""ffrt: the ffkit runtime that runs on the board (and, unchanged, in CPython).

Engine modules (no I/O): fixedpoint, kernels_ref / kernels_viper, model, net, ffw.
"""

__version__ = "0.1.0"
