"""``ffkit flash`` step 3, sent with mpremote exec: a trial import of the flashed bundle.
The running firmware's modules are dropped, ffrt.net and its default kernels loaded from
the filesystem: prints ``FFKIT-LOADS <net file> <kernels> <kernels file>`` or
``FFKIT-FAILS <error>``, then drops the ffrt modules again. No parameters.
"""
import sys
for _k in list(sys.modules):
    if _k == 'main' or _k == 'ffrt' or _k.startswith('ffrt.'):
        del sys.modules[_k]
import gc
gc.collect()
try:
    from ffrt import net as _n
    _k = _n.default_kernels()
    print('FFKIT-LOADS', _n.__file__, _k.__name__, getattr(_k, '__file__', '?'))
except Exception as _e:
    print('FFKIT-FAILS', repr(_e))
for _k in list(sys.modules):
    if _k == 'ffrt' or _k.startswith('ffrt.'):
        del sys.modules[_k]
gc.collect()
