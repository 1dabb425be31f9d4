"""``ffkit flash`` step 2, sent with mpremote exec: make ``ffrt`` on the board's filesystem,
remove its files that the bundle does not have and the files to drop (the checkpoints,
when a model is flashed). Prints ``FFKIT-REMOVED <paths>``.

Parameters: ``ARGS``, a JSON string [keep, drop] that the host writes as the first line
of what it sends (ffkit.board.mpy.with_args): keep, the names in the bundle's ffrt/; drop, the
files to remove if present.
"""
import json
import os

ARGS: str  # the host's header line (ffkit.board.mpy.with_args)


def _ffkit_prepare(keep, drop):
    try:
        os.mkdir('ffrt')
    except OSError:
        pass
    gone = []
    for f in os.listdir('ffrt'):
        if f not in keep:
            os.remove('ffrt/' + f)
            gone.append('ffrt/' + f)
    for f in drop:
        try:
            os.remove(f)
            gone.append(f)
        except OSError:
            pass
    print('FFKIT-REMOVED', ' '.join(gone))


_ffkit_prepare(*json.loads(ARGS))
