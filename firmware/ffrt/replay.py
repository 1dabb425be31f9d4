"""Replay a session log (ffrt.ffl) through the board's own request handlers.

The inputs of the log go, in order, to the very functions that answered them on the
board (ffrt.ops, ffrt.net_ops, ffrt.live_ops: a `Server` without a port, its checkpoints
in a folder of its own), over a net loaded from the log's starting weights. After each input the
replay builds the OUTPUT it would have logged and compares it with the board's, field by
field; each DIGEST is compared with the replayed net's step, state CRC and PRNG. The
first difference stops the replay and is reported with the record's index, its byte
offset, the field, the board's value and the replay's. Runs in CPython (any kernels) and
in MicroPython (ffkit.sessions.replay's micropython runner), so the same log checks every runner.

Not compared: the body of a CHECKPOINT reply (the slot sequence numbers belong to the
board's filesystem, not to the session); its goodness fields are. A SET reply (JSON) is
compared setting by setting, since key order differs between ports.

    r = replay(log_bytes, net, folder)     # net: loaded from the starting weights
    r["identical"], r["records"], r.get("divergence")
"""

import struct

from ffrt import ffl
from ffrt import proto as P

_STEP_THEN_LABELS = (P.STREAM, P.SAMPLES)   # replies: u32 step, then one label per item


def _fields(t, body, n_layers, n_classes):
    """[(name, value)] of an OUTPUT body, in order."""
    r = struct.unpack_from("<H", body, 1)[0]
    reply = body[3:3 + r]
    out = []
    if t in _STEP_THEN_LABELS and r >= 4:
        out.append(("step", struct.unpack_from("<I", reply, 0)[0]))
        for i in range(4, r):
            out.append(("prediction of item %d" % (i - 4), reply[i]))
    elif t == P.PREDICT and r >= 1:
        out.append(("prediction", reply[0]))
        for c in range((r - 1) // 4):
            out.append(("reply goodness of label %d" % c,
                        struct.unpack_from("<i", reply, 1 + 4 * c)[0]))
    elif t == P.LEARN and r == 4 + 8 * n_layers:  # step, then goodness + per layer, - per layer
        out.append(("step", struct.unpack_from("<I", reply, 0)[0]))
        for i in range(2 * n_layers):
            out.append(("reply goodness of layer %d, %s" % (i % n_layers, "negative"
                        if i >= n_layers else "positive"),
                        struct.unpack_from("<i", reply, 4 + 4 * i)[0]))
    elif t in (P.LEARN, P.RESET) and r >= 4:
        out.append(("step", struct.unpack_from("<I", reply, 0)[0]))
        for i in range(4, r, 4):
            out.append(("reply word %d" % (i // 4), struct.unpack_from("<i", reply, i)[0]))
    elif t == P.SLEEP and r == 14:
        for name, v in zip(("sleep steps done", "step", "sleep steps since the buffer was "
                            "emptied", "guard checks", "guard rollbacks"),
                           struct.unpack_from("<HIIHH", reply, 0)):
            out.append((name, v))
    elif t == P.SET:  # a JSON object: its key order is the port's dict order, not data
        import json
        try:
            d = json.loads(bytes(reply))
            for k in sorted(d):
                out.append(("setting " + k, d[k]))
        except ValueError:
            out.append(("reply", bytes(reply)))
    elif t != P.CHECKPOINT:
        for i in range(r):
            out.append(("reply byte %d" % i, reply[i]))
    o = 3 + r
    names = []
    for l in range(n_layers):
        names.append("goodness of layer %d, last positive" % l)
        names.append("goodness of layer %d, last negative" % l)
    for c in range(n_classes):
        names.append("goodness of label %d" % c)
    for name in names:  # a forced replay of another model's log may hold fewer
        if o + 4 > len(body):
            out.append(("output length", len(body)))
            break
        out.append((name, struct.unpack_from("<i", body, o)[0]))
        o += 4
    return out


def _digest_fields(body):
    step, crc, r0, r1 = struct.unpack("<IIHH", body)
    return [("step", step), ("state crc32", crc), ("prng", (r0 << 16) | r1)]


def _same_model(sig, net):
    """True when a log's signature block, written with fewer fields than this firmware
    knows (an older ffkit), is this net's model (ffrt.ffw: missing fields default)."""
    from ffrt import ffw
    try:
        return ffw.signature_config(sig) == net.cfg
    except ffw.FFWError:
        return False


def replay(data, net, folder, force=False, expect_version=None):
    """Replay log bytes over net (loaded from the log's starting weights); a result dict:
    identical, records, inputs, step, state_crc32, and divergence (index, offset, type,
    field, board, host) at the first difference. FFLError for a log that fails its checks
    (ffrt.ffl.parse) or whose starting weights, firmware version (expect_version) or model
    signature are not these, unless force (then they are reported, and the replay runs)."""
    from ffrt.log_ops import _signature, state_crc
    from ffrt.server import Server
    from ffrt.storage import Storage

    head, recs = ffl.parse(data, net.n_layers)
    notes = []
    if head["signature"] != _signature(net) and not _same_model(head["signature"], net):
        msg = "the log's model signature is not this model's"
        if not force:
            raise ffl.FFLError("byte 8: " + msg + " (--force replays it anyway)")
        notes.append(msg)
    if expect_version is not None and head["version"] != expect_version:
        msg = "the log is from firmware %s, this is %s" % (head["version"], expect_version)
        if not force:
            raise ffl.FFLError("byte 8: " + msg + " (--force replays it anyway)")
        notes.append(msg)
    start = state_crc(net)
    if start != head["state_crc"]:
        msg = ("the starting weights are not the log's: state crc32 %08x, the log "
               "started from %08x" % (start, head["state_crc"]))
        if not force:
            raise ffl.FFLError(msg)
        notes.append(msg)
    storage = Storage(folder)
    if head["checkpoint_crc"] == start:
        storage.save(net)  # the board's newest checkpoint was its starting state
    elif head["checkpoint_crc"]:
        notes.append("the board's newest checkpoint when logging started (crc32 %08x) is "
                     "not the starting state; a RESET reload before a logged CHECKPOINT "
                     "cannot be replayed" % head["checkpoint_crc"])
    srv = Server(net, None, storage)
    nl, nc = net.n_layers, net.cfg.n_classes
    mine = None
    last_t = 0
    inputs = 0
    result = {"identical": True, "records": len(recs), "notes": notes}
    for t, idx, body, off in recs:
        if t in ffl.INPUTS:
            inputs += 1
            srv.dec.type = t
            h = srv._handler(t)
            try:
                n = h(srv, memoryview(body))
            except Exception as e:  # the board ran it: a refusal here is a difference
                return _diverged(result, idx, off, t, "request", "answered",
                                 "refused: %s" % e)
            mine = ffl.output_body(t, srv.enc.body, n, net)
            last_t = t
        elif t == ffl.OUTPUT:
            if mine is None or body[0] != last_t:
                return _diverged(result, idx, off, t, "record order",
                                 "OUTPUT of %s" % ffl.NAMES.get(body[0], body[0]),
                                 "no request to answer" if mine is None else
                                 "OUTPUT of %s" % ffl.NAMES[last_t])
            a = _fields(last_t, body, nl, nc)
            b = _fields(last_t, mine, nl, nc)
            if a != b:
                for (name, va), (_, vb) in zip(a, b):
                    if va != vb:
                        return _diverged(result, idx, off, t, name, va, vb)
                return _diverged(result, idx, off, t, "reply length", len(a), len(b))
            mine = None
        else:  # DIGEST
            b = [("step", net.step), ("state crc32", state_crc(net)),
                 ("prng", (net.rng[0] << 16) | net.rng[1])]
            for (name, va), (_, vb) in zip(_digest_fields(body), b):
                if va != vb:
                    return _diverged(result, idx, off, t, name, va, vb)
    result["inputs"] = inputs
    result["step"] = net.step
    result["state_crc32"] = state_crc(net)
    return result


def _diverged(result, idx, off, t, field, board, host):
    result["identical"] = False
    result["divergence"] = {"index": idx, "offset": off, "type": ffl.NAMES.get(t, t),
                            "field": field, "board": board, "host": host}
    return result
