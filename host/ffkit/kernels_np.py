"""numpy twins of ffrt.kernels_ref: same signatures, same buffers, same bits, faster on a PC.

The buffers are the net's own bytearrays and arrays, seen through zero-copy numpy views,
so an FFNet built with these kernels is the very same engine as on a board.

The update kernel needs the exact xorshift32 draws of every row. Row i draws once per
non-zero input, in order; since xorshift is linear over GF(2), the t-th successor of a
state s is XOR over the set bits b of s of M**t e_b, with the 32 columns of M**t
precomputed once. That computes all draws of all active rows in 32 vector steps.
"""

import numpy as np

from ffrt.kernels_ref import HEAD_W_MAX

_MASK32 = np.uint64(0xFFFFFFFF)


def _xs32(s):
    s = np.asarray(s, dtype=np.uint64)
    s ^= (s << np.uint64(13)) & _MASK32
    s ^= s >> np.uint64(17)
    s ^= (s << np.uint64(5)) & _MASK32
    return s


class _Powers:
    """POW[t, b] = xorshift32 applied t times to the word 1 << b (uint64, 32-bit values)."""

    def __init__(self):
        # t = 0: the unit vectors themselves
        self.table = (np.uint64(1) << np.arange(32, dtype=np.uint64))[None, :]

    def upto(self, t_max):
        """The table with rows t = 0 .. at least t_max, grown on demand and kept."""
        have = self.table.shape[0] - 1
        if t_max > have:
            rows = [self.table]
            cur = self.table[-1]
            for _ in range(t_max - have):
                cur = _xs32(cur.copy())
                rows.append(cur[None, :])
            self.table = np.concatenate(rows)
        return self.table


_POW = _Powers()


def xs32_successors(states, t_count):
    """(len(states), t_count) array: the 1st..t_count-th xorshift32 successors of each state."""
    pw = _POW.upto(t_count)[1:t_count + 1]  # (T, 32)
    out = np.zeros((len(states), t_count), dtype=np.uint64)
    s = np.asarray(states, dtype=np.uint64)
    for b in range(32):
        bit = ((s >> np.uint64(b)) & np.uint64(1)).astype(bool)
        if bit.any():
            out[bit] ^= pw[:, b]
    return out


def _u8(buf, n=None):
    a = np.frombuffer(buf, dtype=np.uint8)
    return a if n is None else a[:n]


def fc_relu(w, x, h, n_in, n_out, shift):
    W = _u8(w, n_in * n_out).reshape(n_out, n_in).astype(np.int32) - 128
    acc = W @ _u8(x, n_in).astype(np.int32)
    v = np.clip(acc >> shift, 0, 255)
    _u8(h)[:n_out] = v
    return int((v * v).sum())


def normalize(h, out, n, recip):
    v = (_u8(h, n).astype(np.int64) * recip) >> 16
    _u8(out)[:n] = np.minimum(v, 255)


def update(w, x, h, n_in, n_out, coef, shift, rng, floor):
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


def head_update(wh, a, n_in, row, coef, shift, rng):
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
