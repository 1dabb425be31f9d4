"""A session log replayed in the MicroPython unix port (``ffkit replay --runner micropython``):
ffrt.replay over a net loaded from the starting weights, with the board's own kernels.

    micropython replay_run.py ARGS.json

sys.argv[1] names a JSON file of the parameters (a file, not the arguments themselves:
the unix port takes no argument over 255 bytes, and these are paths): {"log": the
session log (.ffl), "start": the starting weights (.ffw), "folder": an empty folder for
the board's files, "force": true to replay a log of another firmware or model anyway,
"version": the firmware version the log must be from, "out": where to write the replayed
weights ("" for nowhere)}. Prints ffrt.replay.replay's result as one JSON object, or
{"error": reason} for a refused log.
"""
import json
import sys

from ffrt import ffw_ram, replay

with open(sys.argv[1]) as f:
    A = json.load(f)
data = open(A['log'], 'rb').read()
net = ffw_ram.load(open(A['start'], 'rb').read())
try:
    r = replay.replay(data, net, A['folder'], A['force'], A['version'])
except ValueError as e:  # ffl.FFLError: a refused log
    r = {'error': str(e)}
if A['out'] and r.get('state_crc32') is not None:
    open(A['out'], 'wb').write(ffw_ram.encode(net))
print(json.dumps(r))
