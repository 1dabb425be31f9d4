"""``ffkit flash`` step 4 on the unix port, sent with mpremote exec --no-follow: reboots the
firmware in place (its soft reset would end the process) by dropping main and every ffrt
module from sys.modules and importing main again, which finds the flashed bundle in the
board's folder first. No parameters.
"""
import sys
for _k in list(sys.modules):
    if _k == 'main' or _k == 'ffrt' or _k.startswith('ffrt.'):
        del sys.modules[_k]
import gc
gc.collect()
import main
