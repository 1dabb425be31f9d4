"""The protocol requests that run and tune the net: PREDICT, LEARN, STREAM and SET
(ffrt.server loads this module on the first of them; INFO, STATS, CHECKPOINT and RESET
live in ffrt.ops, which is kept small).

Each handler takes the server and the request body, fills srv.enc.body with the response
and returns its length (ffrt.server calls them). Features arrive as int16 and are checked
against the model's input range before the net sees them; a STREAM batch is checked
whole before any of its samples is used, so a bad sample changes nothing.
"""

import struct

from ffrt import proto as P
from ffrt.proto import Reply

# The replies (struct formats; ffkit.board.client reads them with these names). The board packs
# each int on its own ("<i"), so that no tuple is built.
PREDICT_REPLY = "<B%di"   # % n_classes: u8 label, then i32 goodness per label
LEARN_REPLY = "<I%di"     # % (2 * layers): u32 step, i32 goodness pos per layer, then neg
STREAM_MAX = 255          # samples in one STREAM body (its u8 count)

_EMA = 4  # STATS goodness: running means over about 2**_EMA learn steps
# SET may change these Config fields (not the shape, the input pipeline or the seed)
TUNABLE = ("lr", "lr_shift", "theta", "act_shift", "gshift", "grad_floor", "neg_mode",
           "head_lr", "head_shift", "head_gshift", "norm_target")


def _feats(srv, body, o):
    """The int16 features at body[o:] in srv.x, checked by the net's own input rule
    (a ValueError, which the server answers with E_BAD_VALUE)."""
    x = srv.x
    for j in range(len(x)):
        v = body[o + 2 * j] | (body[o + 2 * j + 1] << 8)
        x[j] = v - 0x10000 if v & 0x8000 else v
    srv.net.check_x(x)
    return x


def _label(srv, y):
    return srv.net.check_label(y)


def learn(srv, x, y):
    """One learn step, counted in the server's STATS (running means of goodness).

    x None: learn the sample just predicted (net.learn_last: the same bits as learn_one,
    without recomputing the goodness of every label).
    """
    net = srv.net
    if x is None:
        net.learn_last(y)
    else:
        net.learn_one(x, y)
    srv.learn_steps += 1
    first = srv.learn_steps == 1
    p = srv.gpos
    q = srv.gneg
    for l in range(net.n_layers):
        g = net.last_pos[l]
        p[l] = g if first else p[l] + ((g - p[l]) >> _EMA)
        g = net.last_neg[l]
        q[l] = g if first else q[l] + ((g - q[l]) >> _EMA)


def _predict(srv, body):
    net = srv.net
    srv.need(body, 2 * len(srv.x))
    b = srv.enc.body
    b[0] = net.predict_one(_feats(srv, body, 0))
    srv.predictions += 1
    for c in range(net.cfg.n_classes):
        struct.pack_into("<i", b, 1 + 4 * c, net.goodness[c])
    return 1 + 4 * net.cfg.n_classes


def _learn(srv, body):
    srv.need(body, 1 + 2 * len(srv.x))
    if not srv.learning:
        raise Reply(P.E_BAD_STATE, 'learning is off (SET {"learning": true})')
    srv.still()
    net = srv.net
    learn(srv, _feats(srv, body, 1), _label(srv, body[0]))
    b = srv.enc.body
    L = net.n_layers
    for l in range(L):
        struct.pack_into("<i", b, 4 + 4 * l, net.last_pos[l])
        struct.pack_into("<i", b, 4 + 4 * (L + l), net.last_neg[l])
    srv.reply_step()
    return 4 + 8 * L


def _stream(srv, body):
    """Predict each sample, then learn the labelled ones when learning is allowed."""
    per = 1 + 2 * len(srv.x)
    n = body[0] if len(body) else 0
    if len(body) != 1 + n * per:
        raise Reply(P.E_BAD_LENGTH, "STREAM of %d samples takes %d body bytes, got %d"
                    % (n, 1 + n * per, len(body)))
    for i in range(n):  # every sample checked before any is used: a batch is atomic
        y = body[1 + i * per]
        if y != 0xFF:
            _label(srv, y if y < 128 else y - 256)
        _feats(srv, body, 2 + i * per)
    may_learn = srv.learning_allowed()
    out = srv.enc.body
    for i in range(n):
        y = body[1 + i * per]
        x = _feats(srv, body, 2 + i * per)
        out[4 + i] = pred = srv.net.predict_one(x)
        srv.predictions += 1
        if y != 0xFF:
            srv.labelled += 1
            srv.correct += pred == y
            if may_learn:
                learn(srv, None, y)
    srv.reply_step()
    return 4 + n


def _set(srv, body):
    # ffrt.strictjson, not json.loads: MicroPython's json takes malformed text (a missing
    # colon, trailing bytes) and deep nesting costs it KBs. Loaded for this body only and
    # dropped before the rest: a 104K heap has a few KB free while ops is loaded.
    req = {}
    if len(body):
        if body[0] != 0x7B and body[0] not in b" \t\n\r":  # strictjson's answer, unloaded
            raise Reply(P.E_BAD_VALUE, "SET takes a JSON object (byte 0: '{' expected)")
        from ffrt import STRICTJSON_NEED, room, unload
        room(STRICTJSON_NEED)
        from ffrt import strictjson

        try:
            req = strictjson.loads(body)
        except ValueError as e:
            raise Reply(P.E_BAD_VALUE, "SET takes a JSON object (%s)" % e)
        finally:
            del strictjson  # the last reference: unload frees its code
            unload("strictjson")
    net = srv.net
    d = net.cfg.as_dict()
    for k, v in req.items():
        if k in ("learning", "ff_learning"):
            if not isinstance(v, bool):
                raise Reply(P.E_BAD_VALUE, "%s must be true or false" % k)
            continue
        if k not in TUNABLE:
            raise Reply(P.E_BAD_VALUE, "unknown setting %r (settable: learning, ff_learning, "
                        "%s)" % (k, ", ".join(TUNABLE)))
        srv.still()  # a new Config changes the file an open export is reading
        per_layer = isinstance(d[k], tuple)
        if per_layer and not isinstance(v, list):
            v = [v] * net.n_layers  # one value for every layer
        for e in v if per_layer else (v,):
            if isinstance(e, bool) or not isinstance(e, int):
                raise Reply(P.E_BAD_VALUE, "%s takes integers, got %r" % (k, e))
        d[k] = tuple(v) if per_layer else v
    net.cfg = type(net.cfg)(**d)  # Config's limits: a ValueError, and nothing has changed
    srv.learning = req.get("learning", srv.learning)
    net.ff_learning = req.get("ff_learning", net.ff_learning)
    d = {"learning": srv.learning, "ff_learning": net.ff_learning}
    for k in TUNABLE:
        v = getattr(net.cfg, k)
        d[k] = list(v) if isinstance(v, tuple) else v
    return srv.reply_json(d)


HANDLERS = {P.PREDICT: _predict, P.LEARN: _learn, P.STREAM: _stream, P.SET: _set}
