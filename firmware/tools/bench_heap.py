# The heap the digits net needs (ffkit.bench.measure_heap): build it, learn and predict
# streaming samples through one record buffer, tracking the highest gc.mem_alloc() between
# steps. The host runs it under ``-X heapsize=`` in a bisection; a MemoryError is a heap
# too small.
#
#     micropython -X heapsize=64K bench_heap.py SAMPLES LEARN PREDICT
#
# sys.argv: SAMPLES, a parity sample file (ffkit.parity.write_samples); LEARN and PREDICT,
# the samples learnt, then predicted. Prints ``HEAP_OK <peak> <live>`` (bytes). The
# arguments are read where they are used, as the strings the port already holds and small
# ints, so reading them allocates nothing the figures would count.
#
# (A comment, not a docstring: MicroPython keeps a module's docstring on the heap, and
# every byte this script holds is in the figures.)
import sys
import gc
gc.collect()
_peak = gc.mem_alloc()


def mark():
    global _peak
    a = gc.mem_alloc()
    if a > _peak:
        _peak = a


from ffrt import kernels_viper
from ffrt.model import Config
from ffrt.net import FFNet

mark()
net = FFNet(Config(), kernels=kernels_viper)
mark()
f = open(sys.argv[1], "rb")
f.read(10)
rec = bytearray(net.cfg.n_features + 1)
x = memoryview(rec)[:net.cfg.n_features]
for i in range(int(sys.argv[2])):
    f.readinto(rec)
    net.learn_one(x, rec[-1])
    mark()
for i in range(int(sys.argv[3])):
    f.readinto(rec)
    net.predict_one(x)
    net.predict_head(x)
    mark()
f.close()
gc.collect()
print("HEAP_OK %d %d" % (_peak, gc.mem_alloc()))
