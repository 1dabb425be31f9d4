"""numpy twins of ffrt.kernels_ref: same signatures, same buffers, same bits, faster on a PC.

The buffers are the net's own bytearrays and arrays, seen through zero-copy numpy views,
so an FFNet built with these kernels is the very same engine as on a board.

The update kernel needs the exact xorshift32 draws of every row. Row i draws once per
non-zero input, in order; since xorshift is linear over GF(2), the t-th successor of a
state s is XOR over the set bits b of s of M**t e_b, with the 32 columns of M**t
precomputed once. That computes all draws of all active rows in 32 vector steps.
"""

import numpy as np

from ffrt.kernels_ref import HEAD_W_MAX, isqrt  # isqrt: the reference's, per call

_MASK32 = np.uint64(0xFFFFFFFF)


def _xs32(s):
    s = np.asarray(s, dtype=np.uint64)
    s ^= (s << np.uint64(13)) & _MASK32
    s ^= s >> np.uint64(17)
    s ^= (s << np.uint64(5)) & _MASK32
    return s


class _Powers:
    """Jump tables of xorshift32, grown on demand and kept.

    ``table[t, b]`` is xorshift32 applied t times to the word 1 << b (uint32). Since the
    step is linear over GF(2), the t-th successor of a state s is the XOR of table[t, b]
    over the set bits b of s. ``bytes_[k][t, v]`` folds eight of those columns: the XOR of
    table[t, 8k + b] over the set bits b of the byte value v, so a successor is four table
    gathers (one per byte of s) instead of 32 masked passes.
    """

    def __init__(self):
        # t = 0: the unit vectors themselves
        self.table = (np.uint32(1) << np.arange(32, dtype=np.uint32))[None, :]
        self.bytes_ = [self._fold(self.table, k) for k in range(4)]

    @staticmethod
    def _fold(table, k):
        out = np.zeros((table.shape[0], 256), dtype=np.uint32)
        for v in range(1, 256):
            low = v & -v  # the lowest set bit: v = (v without it) | low
            out[:, v] = out[:, v ^ low] ^ table[:, 8 * k + low.bit_length() - 1]
        return out

    def upto(self, t_max):
        """The tables with rows t = 0 .. at least t_max."""
        have = self.table.shape[0] - 1
        if t_max > have:
            t_new = max(t_max, 2 * have)  # grow geometrically: few rebuilds
            rows = [self.table]
            cur = self.table[-1].astype(np.uint64)
            for _ in range(t_new - have):
                cur = _xs32(cur.copy())
                rows.append(cur.astype(np.uint32)[None, :])
            new = np.concatenate(rows[1:])
            self.table = np.concatenate(rows)
            self.bytes_ = [np.concatenate([old, self._fold(new, k)])
                           for k, old in enumerate(self.bytes_)]
        return self.table


_POW = _Powers()


def xs32_successors(states, t_count):
    """(len(states), t_count) array: the 1st..t_count-th xorshift32 successors of each state."""
    _POW.upto(t_count)
    s = np.asarray(states, dtype=np.uint64).astype(np.uint32)
    out = None
    for k in range(4):
        tab = _POW.bytes_[k][1:t_count + 1]            # (T, 256)
        part = tab[:, (s >> np.uint32(8 * k)) & np.uint32(0xFF)].T  # (n, T)
        out = part if out is None else out ^ part
    if out is None or out.size == 0:
        return np.zeros((len(s), t_count), dtype=np.uint64)
    return out.astype(np.uint64)


def _u8(buf, n=None):
    a = np.frombuffer(buf, dtype=np.uint8)
    return a if n is None else a[:n]


def fc_relu(w, x, h, n_in, n_out, shift):
    W = _u8(w, n_in * n_out).reshape(n_out, n_in).astype(np.int32) - 128
    acc = W @ _u8(x, n_in).astype(np.int32)
    v = np.clip(acc >> shift, 0, 255)
    _u8(h)[:n_out] = v
    return int((v * v).sum())


def fc_acc(w, x, acc, n_in, n_out):
    W = _u8(w, n_in * n_out).reshape(n_out, n_in).astype(np.int32) - 128
    np.frombuffer(acc, dtype=np.int32)[:n_out] = W @ _u8(x, n_in).astype(np.int32)


def label_relu(w, acc, h, p):
    n_in, n_out, shift, col, step, count, value = (int(v) for v in p[:7])
    W = _u8(w, n_in * n_out).reshape(n_out, n_in)
    cols = col + step * np.arange(count)
    s = W[:, cols].astype(np.int32).sum(axis=1) - 128 * count
    v = np.clip((np.frombuffer(acc, dtype=np.int32)[:n_out] + value * s) >> shift, 0, 255)
    _u8(h)[:n_out] = v
    return int((v * v).sum())


def normalize(h, out, n, recip):
    v = (_u8(h, n).astype(np.int64) * recip) >> 16
    _u8(out)[:n] = np.minimum(v, 255)


def copy(dst, src, off, n):
    _u8(dst)[:n] = _u8(src)[off:off + n]


def update(w, x, h, rng, p):
    n_in, n_out, coef, shift, floor = (int(v) for v in p[:5])
    if coef == 0:
        return
    hv = np.maximum(_u8(h, n_out), np.uint8(min(floor, 255)))
    rows = np.nonzero(hv)[0]
    xv = _u8(x, n_in)
    cols = np.nonzero(xv)[0]
    if len(rows) == 0 or len(cols) == 0:
        return
    st = np.frombuffer(rng, dtype=np.uint16)
    s0 = (st[2 * rows].astype(np.uint64) << np.uint64(16)) | st[2 * rows + 1].astype(np.uint64)
    draws = xs32_successors(s0, len(cols))
    r = (draws >> np.uint64(32 - shift)).astype(np.int64)
    c = coef * hv[rows].astype(np.int64)
    d = (c[:, None] * xv[cols].astype(np.int64)[None, :] + r) >> shift
    W = _u8(w, n_in * n_out).reshape(n_out, n_in)
    blk = W[np.ix_(rows, cols)].astype(np.int64) + d
    W[np.ix_(rows, cols)] = np.clip(blk, 1, 255)
    last = draws[:, -1]
    st[2 * rows] = (last >> np.uint64(16)).astype(np.uint16)
    st[2 * rows + 1] = (last & np.uint64(0xFFFF)).astype(np.uint16)


def head_scores(wh, a, n_in, n_out, scores):
    W = np.frombuffer(wh, dtype=np.int16)[:n_in * n_out].reshape(n_out, n_in).astype(np.int64)
    s = W @ _u8(a, n_in).astype(np.int64)
    np.frombuffer(scores, dtype=np.int32)[:n_out] = s


def head_update(wh, a, rng, p):
    n_in, row, coef, shift = (int(v) for v in p[:4])
    av = _u8(a, n_in)
    cols = np.nonzero(av)[0]
    if len(cols) == 0:
        return
    st = np.frombuffer(rng, dtype=np.uint16)
    s0 = np.array([(int(st[0]) << 16) | int(st[1])], dtype=np.uint64)
    draws = xs32_successors(s0, len(cols))[0]
    r = (draws >> np.uint64(32 - shift)).astype(np.int64)
    d = (coef * av[cols].astype(np.int64) + r) >> shift
    W = np.frombuffer(wh, dtype=np.int16)[:n_in * (row + 1)]
    idx = row * n_in + cols
    W[idx] = np.clip(W[idx].astype(np.int64) + d, -HEAD_W_MAX, HEAD_W_MAX)
    st[0] = int(draws[-1]) >> 16
    st[1] = int(draws[-1]) & 0xFFFF


# ---- a composite for the host: every label's forward pass at once -------------------------

def _isqrt_rows(g):
    """floor(sqrt(g)) for an int64 vector g in 0..2**30 (float sqrt, then made exact)."""
    r = np.floor(np.sqrt(g.astype(np.float64))).astype(np.int64)
    r -= (r * r > g)
    r += ((r + 1) * (r + 1) <= g)
    return r


def goodness_labels(net, out):
    """out[c] = net._forward(c) for every label c, computed for all labels at once.

    The same integers as FFNet's per-label passes (ffrt.net, the reference): the first
    layer's products over everything but the label (the features and, in a recurrent
    model, the state) are formed once and each label adds its one-hot column; later
    layers take every label's normalised activities as one matrix (plus, recurrent, the
    products over their state, the same for every label). Sums are formed in float64,
    exact since every one is an integer below 2**30 (ffrt.model's bounds), which lets BLAS
    do the products. The net's working buffers (_h, _acts) are left as they were: only
    ``out`` is written, which is all that FFNet reads afterwards.
    """
    cfg = net.cfg
    nf, nc = cfg.n_features, cfg.n_classes
    n_in0, n0 = net.n_in[0], cfg.layers[0]
    W0 = _u8(net.weights[0], n_in0 * n0).reshape(n0, n_in0)
    rep = cfg.label_repeat
    x = _u8(net._x, n_in0).copy()
    x[nf:nf + rep * nc] = 0
    nz = np.flatnonzero(x)
    Wf = W0[:, nz].astype(np.float64)
    base = Wf @ x[nz].astype(np.float64) - 128.0 * float(x[nz].astype(np.int64).sum())
    lab = W0[:, nf:nf + rep * nc].astype(np.float64).reshape(n0, rep, nc).sum(1).T
    lab -= 128.0 * rep                                           # (C, n0)
    acc = (base[None, :] + cfg.label_value * lab).astype(np.int64)
    total = np.zeros(nc, dtype=np.int64)
    T = cfg.norm_target << 16
    for l in range(net.n_layers):
        if l:
            n_in, n_out, nb = net.n_in[l], cfg.layers[l], cfg.layers[l - 1]
            W = _u8(net.weights[l], n_in * n_out).reshape(n_out, n_in).astype(np.float64)
            W -= 128.0
            a = inp @ W[:, :nb].T
            if n_in > nb:  # the recurrent state, the same for every label
                a += W[:, nb:] @ _u8(net._inp[l], n_in)[nb:].astype(np.float64)
            acc = a.astype(np.int64)
        h = np.clip(acc >> cfg.act_shift[l], 0, 255)
        g = (h * h).sum(axis=1)
        if l >= cfg.goodness_from:
            total += g
        if l + 1 < net.n_layers:
            r = _isqrt_rows(g)
            recip = np.where(r > 0, T // np.maximum(r, 1), 0)
            inp = np.minimum((h * recip[:, None]) >> 16, 255).astype(np.float64)
    np.frombuffer(out, dtype=np.int32)[:nc] = total
