"""Kernel calls for callgrind's instruction counts (ffkit.bench.measure_callgrind): an
N x N layer (weights, inputs and units all non-zero), then kernels_viper.fc_relu,
kernels_ref.fc_relu and kernels_viper.update called the given numbers of times. The host
counts the instructions of a run with counts and of one with none, and divides the
difference by the multiply-accumulates.

    valgrind --tool=callgrind micropython bench_callgrind.py N FC_VIPER FC_PURE UPDATE_VIPER

sys.argv: N, the layer size; then the calls of each kernel. Prints nothing.
"""
import sys
from array import array

from ffrt import kernels_ref, kernels_viper

N = int(sys.argv[1])
COUNTS = {"fc_viper": int(sys.argv[2]), "fc_pure": int(sys.argv[3]),
          "update_viper": int(sys.argv[4])}
w = bytearray(N * N)
x = bytearray(N)
h = bytearray(N)
rng = array("H", [0x1234, 0x5678] * N)
s = 12345
for i in range(N * N):
    s = (s * 1103515245 + 12345) & 0x3FFFFFFF
    w[i] = 1 + (s >> 8) % 255
for i in range(N):
    x[i] = 1 + (i * 37) % 255
    h[i] = 1 + (i * 91) % 255
f = kernels_viper.fc_relu
for _ in range(COUNTS["fc_viper"]):
    f(w, x, h, N, N, 8)  # type: ignore[arg-type]  # viper takes a bytearray as ptr8
f = kernels_ref.fc_relu
for _ in range(COUNTS["fc_pure"]):
    f(w, x, h, N, N, 8)
f = kernels_viper.update
for i in range(COUNTS["update_viper"]):
    f(w, x, h, N, N, 400 if i & 1 else -400, 22, rng, 0)  # type: ignore[arg-type]  # as ptr8/16
