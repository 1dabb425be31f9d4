"""Named test vectors for the kernel twins (kernels_ref, kernels_np, kernels_viper).

Every vector is a dict:

- ``name``: unique, says what the vector is about (``fc_relu/w74x128``, ...);
- ``kernel``: the kernel's function name, one of `SIGNATURES`;
- ``args``: ``{arg name: value}`` with every argument of the kernel; buffers are the
  types the net uses (bytearray, ``array('h')`` head weights, ``array('H')`` PRNG states,
  ``array('i')`` scores). Treat them as read-only: run a kernel on `fresh_args` copies;
- ``expected``: what `kernels_ref` gives: ``{"ret": return value, "buffers": {arg name:
  bytes of the buffer after the call}}``. Every buffer argument is listed, so a twin that
  writes into an input, or past ``n_out`` into a longer buffer, is caught too.

Inputs are built from a tiny xorshift32 seeded per vector, so the table is the same on
every machine and Python version. The widths cover the viper twin's unrolled loop
(remainders 0..3 of ``n_in`` mod 4: 1, 3, 4, 5, 6, 7, 17, 74, 128) and the extremes that
the bounds in kernels_ref are about: zero and all-255 inputs, saturating weights (stored 1
and 255, i.e. -127 and +127), the largest learning coefficients of either sign, and the
update shifts 1, 16, 22 and 24.

    >>> v = by_name("fc_relu/w5x4")
    >>> v["kernel"], sorted(v["expected"]["buffers"])
    ('fc_relu', ['h', 'w', 'x'])
"""

from array import array

from ffrt import kernels_ref
from ffrt.fixedpoint import isqrt

# Argument names in call order; the buffers' types are in BUFFER_TYPES.
SIGNATURES = {
    "fc_relu": ("w", "x", "h", "n_in", "n_out", "shift"),
    "fc_acc": ("w", "x", "acc", "n_in", "n_out"),
    "label_relu": ("w", "acc", "h", "p"),
    "normalize": ("h", "out", "n", "recip"),
    "update": ("w", "x", "h", "rng", "p"),
    "head_scores": ("wh", "a", "n_in", "n_out", "scores"),
    "head_update": ("wh", "a", "rng", "p"),
    "isqrt": ("n",),
    "copy": ("dst", "src", "off", "n"),
}
# None: bytearray; otherwise an array typecode.
BUFFER_TYPES = {"w": None, "x": None, "h": None, "out": None, "a": None,
                "dst": None, "src": None,
                "wh": "h", "rng": "H", "scores": "i", "acc": "i", "p": "i"}

# The largest |coef| the net passes to update / head_update: (256 - 5) * 15 (Q8 sigmoid
# table minimum 5, lr and head_lr at most 15). kernels_ref allows |coef| < 2**12.
COEF_NET_MAX = (256 - 5) * 15
COEF_MAX = (1 << 12) - 1


class _Rand:
    """xorshift32 on a plain int: deterministic inputs, independent of `random`."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1
        for _ in range(8):
            self.next()

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def ints(self, n, lo, hi):
        """n ints uniform in [lo, hi]."""
        return [lo + self.below(hi - lo + 1) for _ in range(n)]

    def sparse(self, n, lo, hi, p_zero):
        """n ints in [lo, hi], each zero with probability p_zero (percent)."""
        return [0 if self.below(100) < p_zero else lo + self.below(hi - lo + 1)
                for _ in range(n)]

    def rng_states(self, n):
        """n xorshift32 states as (hi, lo) halves, never all zero."""
        out = []
        for _ in range(n):
            s = self.next() or 1
            out += [s >> 16, s & 0xFFFF]
        return out


def _buf(name, values):
    tc = BUFFER_TYPES[name]
    return bytearray(values) if tc is None else array(tc, values)


def copy_buffer(v):
    """A fresh copy of a buffer of any of the BUFFER_TYPES (ints are returned as they are)."""
    if isinstance(v, bytearray):
        return bytearray(v)
    if isinstance(v, array):
        return array(v.typecode, v)
    return v


def fresh_args(vec):
    """The vector's arguments in call order, buffers copied so the table stays pristine."""
    return [copy_buffer(vec["args"][n]) for n in SIGNATURES[vec["kernel"]]]


def outputs(vec, args, ret):
    """{"ret": ret, "buffers": {name: bytes}} after a kernel ran on `args` (call order)."""
    names = SIGNATURES[vec["kernel"]]
    bufs = {n: bytes(a) for n, a in zip(names, args) if n in BUFFER_TYPES}
    return {"ret": ret, "buffers": bufs}


def run(kernels, vec):
    """Run the vector through a kernel module; returns `outputs`."""
    args = fresh_args(vec)
    ret = getattr(kernels, vec["kernel"])(*args)
    return outputs(vec, args, ret)


# ---- the vectors --------------------------------------------------------------------------

_SPECS = []


def _vec(name, kernel, **args):
    assert set(args) == set(SIGNATURES[kernel]), (name, sorted(args))
    _SPECS.append({"name": name, "kernel": kernel, "args": args})


def _fc_relu(name, seed, n_in, n_out, shift, w=None, x=None, h_len=None, pad=0):
    r = _Rand(seed)
    w = r.ints(n_in * n_out, 1, 255) if w is None else w
    x = r.ints(n_in, 0, 255) if x is None else x
    # h starts as garbage so that a twin that skips an entry is caught; a longer h (and
    # w, x) must keep its tail untouched
    h = r.ints((h_len or n_out) + pad, 0, 255)
    _vec(name, "fc_relu", w=_buf("w", w + r.ints(pad, 1, 255)),
         x=_buf("x", x + r.ints(pad, 0, 255)), h=_buf("h", h),
         n_in=n_in, n_out=n_out, shift=shift)


def _fc_acc(name, seed, n_in, n_out, w=None, x=None, pad=0):
    r = _Rand(seed)
    w = r.ints(n_in * n_out, 1, 255) if w is None else w
    x = r.ints(n_in, 0, 255) if x is None else x
    _vec(name, "fc_acc", w=_buf("w", w + r.ints(pad, 1, 255)),
         x=_buf("x", x + r.ints(pad, 0, 255)),
         acc=_buf("acc", r.ints(n_out + pad, -(1 << 30) + 1, (1 << 30) - 1)),
         n_in=n_in, n_out=n_out)


def _label_relu(name, seed, n_in, n_out, shift, col, step, count, value, w=None, acc=None,
                pad=0):
    """acc: the shared sums of the other n_in - count columns at their 255 * 127 bound."""
    r = _Rand(seed)
    w = r.ints(n_in * n_out, 1, 255) if w is None else w
    bound = 127 * 255 * (n_in - count)
    acc = r.ints(n_out, -bound, bound) if acc is None else acc
    _vec(name, "label_relu", w=_buf("w", w + r.ints(pad, 1, 255)),
         acc=_buf("acc", acc + r.ints(pad, -bound, bound)),
         h=_buf("h", r.ints(n_out + pad, 0, 255)),
         p=_buf("p", [n_in, n_out, shift, col, step, count, value] + r.ints(pad, 0, 99)))


def _normalize(name, seed, n, target=None, recip=None, h=None, pad=0):
    r = _Rand(seed)
    h = r.ints(n, 0, 255) if h is None else h
    if recip is None:
        # as FFNet._normalize computes it
        norm = isqrt(sum(v * v for v in h))
        recip = (target << 16) // norm if norm else 0
    _vec(name, "normalize", h=_buf("h", h + r.ints(pad, 0, 255)),
         out=_buf("out", r.ints(n + pad, 0, 255)), n=n, recip=recip)


def _update(name, seed, n_in, n_out, coef, shift, w=None, x=None, h=None,
            p_zero=30, pad=0, floor=0):
    r = _Rand(seed)
    w = r.ints(n_in * n_out, 1, 255) if w is None else w
    x = r.sparse(n_in, 1, 255, p_zero) if x is None else x
    h = r.sparse(n_out, 1, 255, p_zero) if h is None else h
    _vec(name, "update", w=_buf("w", w + r.ints(pad, 1, 255)),
         x=_buf("x", x + r.ints(pad, 0, 255)), h=_buf("h", h + r.ints(pad, 0, 255)),
         rng=_buf("rng", r.rng_states(n_out + pad)),
         p=_buf("p", [n_in, n_out, coef, shift, floor] + r.ints(pad, 0, 99)))


def _head_scores(name, seed, n_in, n_out, wh=None, a=None, pad=0):
    r = _Rand(seed)
    hw = kernels_ref.HEAD_W_MAX
    wh = r.ints(n_in * n_out, -hw, hw) if wh is None else wh
    a = r.sparse(n_in, 1, 255, 20) if a is None else a
    _vec(name, "head_scores", wh=_buf("wh", wh + r.ints(pad, -hw, hw)),
         a=_buf("a", a + r.ints(pad, 0, 255)), n_in=n_in, n_out=n_out,
         scores=_buf("scores", r.ints(n_out + pad, -(1 << 30) + 1, (1 << 30) - 1)))


def _head_update(name, seed, n_in, n_out, row, coef, shift, wh=None, a=None):
    r = _Rand(seed)
    hw = kernels_ref.HEAD_W_MAX
    wh = r.ints(n_in * n_out, -hw, hw) if wh is None else wh
    a = r.sparse(n_in, 1, 255, 25) if a is None else a
    _vec(name, "head_update", wh=_buf("wh", wh), a=_buf("a", a),
         rng=_buf("rng", r.rng_states(1)), p=_buf("p", [n_in, row, coef, shift]))


WIDTHS = (1, 3, 4, 5, 6, 7, 17, 74, 128)


def _build():
    # fc_relu: every remainder of the unrolled loop, square and skinny layers
    for k, n_in in enumerate(WIDTHS):
        n_out = {1: 1, 3: 2, 4: 3, 5: 4, 74: 128, 128: 128}.get(n_in, 5)
        _fc_relu("fc_relu/w%dx%d" % (n_in, n_out), 100 + k, n_in, n_out, 8)
    _fc_relu("fc_relu/shift0", 120, 3, 4, 0, w=[127, 128, 129] * 4, x=[1, 0, 2])
    _fc_relu("fc_relu/shift6_digits", 121, 74, 16, 6)
    _fc_relu("fc_relu/shift24", 122, 128, 8, 24)
    _fc_relu("fc_relu/zero_x", 123, 17, 9, 0, x=[0] * 17)
    _fc_relu("fc_relu/x255_w255_saturates", 124, 74, 7, 6, w=[255] * (74 * 7), x=[255] * 74)
    _fc_relu("fc_relu/x255_w1_all_negative", 125, 74, 7, 6, w=[1] * (74 * 7), x=[255] * 74)
    _fc_relu("fc_relu/x255_w128_zero_weights", 126, 5, 3, 0, w=[128] * 15, x=[255] * 5)
    # a 128-wide layer of +-127 weights on all-255 inputs: the largest |acc| of the table,
    # 127 * 255 * 128 = 4145280 (>> 14 = 253, not clipped)
    _fc_relu("fc_relu/max_acc_w128", 127, 128, 2, 14, w=[255] * 256, x=[255] * 128)
    _fc_relu("fc_relu/min_acc_w128", 128, 128, 2, 0, w=[1] * 256, x=[255] * 128)
    _fc_relu("fc_relu/longer_buffers", 129, 6, 3, 7, pad=5)

    # fc_acc: fc_relu's sums (every remainder of the unrolled loop), signed, extremes
    for k, n_in in enumerate(WIDTHS):
        _fc_acc("fc_acc/w%dx%d" % (n_in, 5), 150 + k, n_in, 5)
    _fc_acc("fc_acc/digits_74x128", 160, 74, 128)
    _fc_acc("fc_acc/max_w255_x255", 161, 128, 2, w=[255] * 256, x=[255] * 128)
    _fc_acc("fc_acc/min_w1_x255", 162, 128, 2, w=[1] * 256, x=[255] * 128)
    _fc_acc("fc_acc/zero_x", 163, 17, 4, x=[0] * 17)
    _fc_acc("fc_acc/longer_buffers", 164, 6, 3, pad=4)

    # label_relu: the digits layout (64 features, 10 labels once), labels repeated, the
    # label's weights and the shared sums at their extremes, shift 0, no label columns
    for c in (0, 3, 9):
        _label_relu("label_relu/digits_label%d" % c, 170 + c, 74, 128, 6, 64 + c, 10, 1, 255)
    _label_relu("label_relu/repeat3", 180, 30, 16, 5, 12 + 2, 6, 3, 200)
    _label_relu("label_relu/w255_value255", 181, 20, 4, 8, 10, 5, 2, 255, w=[255] * 80)
    _label_relu("label_relu/w1_value255", 182, 20, 4, 8, 10, 5, 2, 255, w=[1] * 80)
    _label_relu("label_relu/acc_max", 183, 20, 3, 12, 16, 2, 2, 255,
                acc=[127 * 255 * 18] * 3, w=[255] * 60)
    _label_relu("label_relu/acc_min", 184, 20, 3, 0, 16, 2, 2, 255,
                acc=[-127 * 255 * 18] * 3, w=[1] * 60)
    _label_relu("label_relu/shift0", 185, 9, 5, 0, 7, 1, 2, 3)
    _label_relu("label_relu/no_label_columns", 186, 9, 5, 4, 0, 1, 0, 255)
    _label_relu("label_relu/value0", 187, 9, 5, 4, 2, 3, 2, 0)
    _label_relu("label_relu/longer_buffers", 188, 12, 3, 5, 8, 2, 2, 99, pad=3)

    # normalize: the net's own recip for several targets, zero input, clipping
    for k, n in enumerate(WIDTHS):
        _normalize("normalize/n%d" % n, 200 + k, n, target=1024)
    _normalize("normalize/target1", 220, 17, target=1)
    _normalize("normalize/target16383", 221, 17, target=16383)
    _normalize("normalize/one_active_clips", 222, 5, target=16383, h=[0, 0, 9, 0, 0])
    _normalize("normalize/all255", 223, 128, target=1024, h=[255] * 128)
    _normalize("normalize/all255_target16383", 224, 74, target=16383, h=[255] * 74)
    _normalize("normalize/zero_h", 225, 7, target=1024, h=[0] * 7)
    _normalize("normalize/recip_max", 226, 4, recip=(1 << 30) // 256, h=[255, 1, 0, 128])
    _normalize("normalize/longer_buffers", 227, 5, target=700, pad=4)

    # update: widths, both signs, every shift the net may use at its extremes
    for k, n_in in enumerate(WIDTHS):
        n_out = {74: 128, 128: 128}.get(n_in, 4)
        coef = (-1 if k % 2 else 1) * (50 + 300 * k)
        _update("update/w%dx%d" % (n_in, n_out), 300 + k, n_in, n_out, coef, 22)
    for k, shift in enumerate((1, 16, 22, 24)):
        for sign in (1, -1):
            _update("update/shift%d_coef%s" % (shift, "+" if sign > 0 else "-"),
                    320 + 2 * k + (sign < 0), 17, 6, sign * COEF_NET_MAX, shift)
    _update("update/coef+1", 330, 17, 6, 1, 22)
    _update("update/coef-1", 331, 17, 6, -1, 22)
    _update("update/coef_max+", 332, 17, 6, COEF_MAX, 16)
    _update("update/coef_max-", 333, 17, 6, -COEF_MAX, 16)
    _update("update/coef0_noop", 334, 17, 6, 0, 22)
    _update("update/zero_x_keeps_rng", 335, 17, 6, 900, 22, x=[0] * 17)
    _update("update/zero_h_keeps_rng", 336, 17, 6, 900, 22, h=[0] * 6)
    _update("update/w255_stays_at_top", 337, 17, 6, COEF_NET_MAX, 16, w=[255] * 102,
            x=[255] * 17, h=[255] * 6)
    _update("update/w1_stays_at_bottom", 338, 17, 6, -COEF_NET_MAX, 16, w=[1] * 102,
            x=[255] * 17, h=[255] * 6)
    _update("update/saturate_shift1_x255", 339, 74, 8, -COEF_NET_MAX, 1, x=[255] * 74,
            h=[255] * 8)
    _update("update/digits_all_active_shift24", 340, 128, 128, COEF_NET_MAX, 24,
            p_zero=0)
    _update("update/longer_buffers", 341, 6, 3, -777, 22, pad=3)
    # the positive-pass gradient floor: silent units learn as if h were the floor
    _update("update/floor1", 342, 17, 6, 900, 16, floor=1)
    _update("update/floor1_zero_h", 343, 17, 6, 900, 16, h=[0] * 6, floor=1)
    _update("update/floor3_neg", 344, 74, 16, -COEF_NET_MAX, 22, floor=3)
    _update("update/floor255", 345, 17, 6, 500, 22, floor=255)

    # head_scores: widths, extremes of the bound (514 inputs, |w| = 4095, a = 255)
    for k, n_in in enumerate(WIDTHS):
        _head_scores("head_scores/w%d" % n_in, 400 + k, n_in, 10)
    hw = kernels_ref.HEAD_W_MAX
    _head_scores("head_scores/zero_a", 420, 17, 3, a=[0] * 17)
    _head_scores("head_scores/max_bound_514", 421, 514, 2,
                 wh=[hw] * 514 + [-hw] * 514, a=[255] * 514)
    _head_scores("head_scores/longer_buffers", 422, 5, 3, pad=4)

    # head_update: rows, both signs, shifts, saturation at +-HEAD_W_MAX
    for k, n_in in enumerate(WIDTHS):
        coef = (-1 if k % 2 else 1) * (40 + 400 * k)
        _head_update("head_update/w%d" % n_in, 500 + k, n_in, 10, k % 10, coef, 14)
    for k, shift in enumerate((1, 14, 24)):
        for sign in (1, -1):
            _head_update("head_update/shift%d_coef%s" % (shift, "+" if sign > 0 else "-"),
                         520 + 2 * k + (sign < 0), 17, 3, 2, sign * COEF_NET_MAX, shift)
    _head_update("head_update/zero_a_keeps_rng", 530, 17, 3, 1, 900, 14, a=[0] * 17)
    _head_update("head_update/coef0", 531, 17, 3, 1, 0, 14)
    _head_update("head_update/saturate_top", 532, 17, 2, 1, COEF_MAX, 1,
                 wh=[hw - 3] * 34, a=[255] * 17)
    _head_update("head_update/saturate_bottom", 533, 17, 2, 0, -COEF_MAX, 1,
                 wh=[-hw + 3] * 34, a=[255] * 17)
    _head_update("head_update/max_inputs_514", 534, 514, 2, 1, -COEF_NET_MAX, 10)

    # isqrt (a normalisation's): powers of four and their neighbours, the top of its range
    for n in (0, 1, 2, 3, 4, 5, 15, 16, 17, 255, 65025, 65536, (1 << 28) - 1, 1 << 28,
              (1 << 30) - 1):
        _vec("isqrt/%d" % n, "isqrt", n=n)
    r = _Rand(600)
    for k in range(8):
        _vec("isqrt/random%d" % k, "isqrt", n=r.below(1 << 30))

    # copy: a stored sample out of a rehearsal buffer (72 features, slot 5), edges
    r = _Rand(700)
    src = _buf("src", r.ints(72 * 8, 0, 255))
    _vec("copy/slot5_of_72", "copy", dst=_buf("dst", [0] * 72), src=src, off=72 * 5, n=72)
    _vec("copy/last_byte", "copy", dst=_buf("dst", [7] * 3), src=src, off=72 * 8 - 1, n=1)
    _vec("copy/none", "copy", dst=_buf("dst", [9] * 4), src=src, off=0, n=0)
    _vec("copy/longer_dst", "copy", dst=_buf("dst", [5] * 20), src=src, off=3, n=17)

    names = [s["name"] for s in _SPECS]
    assert len(names) == len(set(names)), "vector names must be unique"
    for spec in _SPECS:
        spec["expected"] = run(kernels_ref, spec)
    return _SPECS


VECTORS = _build()
NAMES = tuple(v["name"] for v in VECTORS)


def by_name(name):
    """The vector called `name` (KeyError when there is none)."""
    for v in VECTORS:
        if v["name"] == name:
            return v
    raise KeyError(name)


def to_json(vec):
    """A JSON-able form of a vector's arguments: [[kind, value], ...] in call order.

    kind is "int", "bytes" (value: hex), or an array typecode (value: list of ints); the
    MicroPython side rebuilds the buffers from it (see tests/test_kernels.py).
    """
    out = []
    for n in SIGNATURES[vec["kernel"]]:
        v = vec["args"][n]
        if isinstance(v, bytearray):
            out.append(["bytes", bytes(v).hex()])
        elif isinstance(v, array):
            out.append([v.typecode, list(v)])
        else:
            out.append(["int", v])
    return out
