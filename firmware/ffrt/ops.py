"""The protocol requests that report on, save and reset the board: INFO, STATS, CHECKPOINT
and RESET (ffrt.server loads this module on the first of them; PREDICT, LEARN, STREAM and
SET live in ffrt.net_ops).

Small on purpose: INFO and RESET are how a host finds out what state a board is in and
puts it right, so after a MemoryError (ffrt.server.Server.free unloads the request
modules) loading this one again takes little heap. That matters once a board has served
every kind of request: a .mpy module's interned names stay in the heap when its code is
unloaded, about 5 KB in all, and at 98K (below ffrt.app.SERVE_NEED, with the check
lowered; 100K since issue 14's 2.4 KB) what is left holds this module and not the
learning requests' code as well (tests/test_wedge.py).

Each handler takes the server and the request body, fills srv.enc.body with the response
and returns its length (ffrt.server calls them). INFO's "model" holds every field an
imported file must share with the running net (ffw._SHAPE), so a host can refuse an
incompatible file before sending it.
"""

import gc
import struct

import ffrt
from ffrt import proto as P
from ffrt.proto import Reply

CHECKPOINT_REPLY = "<IB"   # u32 checkpoint sequence number, u8 slot

def _mem():
    """(free, allocated) heap bytes after a collection; (None, None) on CPython."""
    f = getattr(gc, "mem_free", None)
    gc.collect()
    return (f(), gc.mem_alloc()) if f else (None, None)


def _info(srv, body):
    srv.need(body, 0)
    cfg = srv.net.cfg
    free, alloc = _mem()
    d = {"firmware": ffrt.__version__, "protocol": P.PROTOCOL_VERSION,
         "model": {"n_features": cfg.n_features, "n_classes": cfg.n_classes,
                   "layers": list(cfg.layers), "goodness_from": cfg.goodness_from,
                   "pipeline": cfg.pipeline, "recurrent": cfg.recurrent,
                   "label_repeat": cfg.label_repeat},
         "step": srv.net.step, "learning": srv.learning, "mem_free": free, "mem_alloc": alloc,
         "mem_free_min": free if srv.mem_low < 0 else min(free, srv.mem_low),
         "checkpoint": srv.storage.seq if srv.storage else None}
    d.update(srv.info)
    return srv.reply_json(d)


def _stats(srv, body):
    srv.need(body, 0)
    return srv.reply_json({
        "requests": srv.requests, "bad_frames": srv.dec.errors,
        "learn_steps": srv.learn_steps, "predictions": srv.predictions,
        "labelled": srv.labelled, "correct": srv.correct,
        "goodness_pos": list(srv.gpos), "goodness_neg": list(srv.gneg),
        "mem_free": _mem()[0]})


def _checkpoint(srv, body):
    srv.need(body, 0)
    if srv.storage is None:
        raise Reply(P.E_STORAGE, "this board has no checkpoint storage")
    seq, slot = srv.storage.save(srv.net)
    struct.pack_into(CHECKPOINT_REPLY, srv.enc.body, 0, seq, slot)
    return 5


def _reset(srv, body):
    srv.need(body, 1)
    what = body[0]
    if what == P.RESET_COUNTERS:
        srv.reset_counters()
    elif what == P.RESET_FRESH:
        srv.still()
        _live_reset(srv)
        srv.net.reset()
    elif what == P.RESET_RELOAD:
        srv.still()
        st = srv.storage
        best = st.newest(srv.net.cfg) if st is not None else None
        if best is None:
            raise Reply(P.E_BAD_STATE, "no valid checkpoint to reload")
        _live_reset(srv)  # first: the reload may use the heap its buffer held
        st.load(srv.net, best[1])
    else:
        raise Reply(P.E_BAD_VALUE, "RESET takes 0 (counters), 1 (reload) or 2 (fresh)")
    return srv.reply_step()


def _live_reset(srv):
    """As on a fresh board: the live learner has no samples of a window, an empty buffer."""
    live = getattr(srv, "live", None)  # set by ffrt.live_ops or ffrt.app, if at all
    if live is not None:
        live.reset()
        gc.collect()


HANDLERS = {P.INFO: _info, P.STATS: _stats, P.CHECKPOINT: _checkpoint, P.RESET: _reset}
