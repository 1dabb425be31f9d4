"""Kernel calls for callgrind's instruction counts (ffkit.bench.measure_callgrind): an
N x N layer (weights, inputs and units all non-zero), then kernels_viper.fc_relu,
kernels_ref.fc_relu, kernels_viper.update, kernels_native.fc_relu and .update (C), and
the plain C loops of bench_cloop (firmware/tools/cloop) called the given numbers of
times. The host counts the instructions of a run with counts and of one with none, and
divides the difference by the multiply-accumulates.

    valgrind --tool=callgrind micropython bench_callgrind.py N FC_VIPER FC_PURE UPDATE_VIPER \
        FC_NATIVE UPDATE_NATIVE FC_CLOOP UPDATE_CLOOP

sys.argv: N, the layer size; then the calls of each kernel (a module whose count is 0 is
not imported: the native ones need ffrt/kernels_native.mpy and bench_cloop.mpy on the
path). Prints nothing.
"""
import sys
from array import array

from ffrt import kernels_ref, kernels_viper

N = int(sys.argv[1])
KEYS = ("fc_viper", "fc_pure", "update_viper", "fc_native", "update_native", "fc_cloop",
        "update_cloop")
COUNTS = {k: int(v) for k, v in zip(KEYS, sys.argv[2:])}
w = bytearray(N * N)
x = bytearray(N)
h = bytearray(N)
rng = array("H", [0x1234, 0x5678] * N)
P = array("i", [N, N, 400, 22, 0])  # update's n_in, n_out, coef, shift, floor
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
    P[2] = 400 if i & 1 else -400
    f(w, x, h, rng, P)  # type: ignore[arg-type]  # viper takes the buffers as pointers
if COUNTS.get("fc_native") or COUNTS.get("update_native"):
    from ffrt import kernels_native  # type: ignore[attr-defined]  # a .mpy, built per arch
    f = kernels_native.fc_relu
    for _ in range(COUNTS["fc_native"]):
        f(w, x, h, N, N, 8)
    for i in range(N):  # every unit active again: fc_relu rewrote h
        h[i] = 1 + (i * 91) % 255
    f = kernels_native.update
    for i in range(COUNTS["update_native"]):
        P[2] = 400 if i & 1 else -400
        f(w, x, h, rng, P)
if COUNTS.get("fc_cloop") or COUNTS.get("update_cloop"):
    import bench_cloop  # type: ignore[import-not-found]  # a .mpy beside this script
    f = bench_cloop.fc_plain
    for _ in range(COUNTS["fc_cloop"]):
        f(w, x, h, N, N, 8)
    for i in range(N):
        h[i] = 1 + (i * 91) % 255
    f = bench_cloop.update_plain
    for i in range(COUNTS["update_cloop"]):
        P[2] = 400 if i & 1 else -400
        f(w, x, h, rng, P)
