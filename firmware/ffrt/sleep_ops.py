"""The SLEEP request: n sleep steps now on the live learner's rehearsal buffer (ffrt.sleep).

ffrt.server loads this module on the first SLEEP request (a board that only sleeps on its
schedule never holds it).

SLEEP   u16 n (0..1024; 0 asks only)
        -> u16 steps done (fewer than n only when the buffer is empty), u32 step,
           u32 sleep steps since the buffer was emptied, u16 guard checks, u16 guard
           rollbacks
        A live learner with a rehearsal buffer is needed (E_BAD_STATE), learning on
        (E_BAD_STATE) and no export open (E_BUSY); a body other than 2 bytes is
        E_BAD_LENGTH, n > 1024 E_BAD_VALUE. n = 0 changes nothing. The steps are those
        of a scheduled sleep (the learner's positives setting included; a learner that
        does not sleep on a schedule learns negatives).
"""

import struct

from ffrt import proto as P
from ffrt.proto import Reply

MAX_STEPS = 1024  # per request: a board answers within its host's timeout
SLEEP_REPLY = "<HIIHH"  # the reply's fields (module docstring; ffkit.board.client reads it so)


def _sleep(srv, body):
    srv.need(body, 2)
    n = body[0] | (body[1] << 8)
    if n > MAX_STEPS:
        raise Reply(P.E_BAD_VALUE, "SLEEP takes 0..%d steps, got %d" % (MAX_STEPS, n))
    lv = getattr(srv, "live", None)  # no attribute until live_ops sets it (server.py)
    done = 0
    if n:
        if lv is None or not lv.per_class:
            raise Reply(P.E_BAD_STATE, "sleep learns from the rehearsal buffer: none "
                        "(ADAPT with per_class > 0 first)")
        if not srv.learning:
            raise Reply(P.E_BAD_STATE, 'learning is off (SET {"learning": true})')
        srv.still()
        step = srv.net.step
        from ffrt.sleep import sleep
        done = sleep(lv, n)
        srv.learn_steps += srv.net.step - step
    g = lv.guard if lv is not None else None
    struct.pack_into(SLEEP_REPLY, srv.enc.body, 0, done, srv.net.step,
                     lv.slept if lv is not None else 0,
                     g.checks & 0xFFFF if g else 0, g.rollbacks & 0xFFFF if g else 0)
    return 14


HANDLERS = {P.SLEEP: _sleep}
