"""Reference kernels in plain Python: the semantics every twin must reproduce bit for bit.

Buffers (all preallocated by the caller):
- `w`: int8 weights stored offset-binary in a bytearray, `w[i*n_in + j] = weight + 128`,
  weights kept in [-127, 127] (stored 1..255). Offset-binary lets the viper twin load
  bytes without sign extension: sum((ws - 128) * x) = sum(ws * x) - 128 * sum(x).
- `x`, `h`, `out`, `a`: uint8 activities in bytearrays.
- `wh`: int16 head weights in array('h'), kept in [-HEAD_W_MAX, HEAD_W_MAX].
- `rng`: array('H') of xorshift32 states as (hi, lo) halves, see fixedpoint.

These run unchanged on any MicroPython (no memoryview, no f-strings, no walrus), so
they also serve the smallest boards that lack viper.

>>> w = bytearray([128 + 2, 128 - 1]); x = bytearray([10, 4]); h = bytearray(1)
>>> fc_relu(w, x, h, 2, 1, 2), h[0]      # acc = 2*10 - 4 = 16, h = 16 >> 2 = 4
(16, 4)
"""

from ffrt.fixedpoint import isqrt, xs_next  # isqrt: a kernel too (a normalisation's root)

HEAD_W_MAX = 4095  # bound: 514 inputs * 255 * 4095 < 2**29 for head scores (model.py)


def fc_relu(w, x, h, n_in, n_out, shift):
    """h[i] = clip((sum_j W[i,j] * x[j]) >> shift, 0, 255); returns goodness sum(h**2).

    Bounds: |acc| <= 127 * 255 * n_in < 2**30 for n_in < 33,000 (the viper twin's
    offset-binary sum reaches 255 * 255 * n_in < 2**30 for n_in < 16,500); goodness
    <= 255**2 * n_out < 2**30 for n_out < 16,500 (checked when a net is built).
    """
    g = 0
    base = 0
    for i in range(n_out):
        acc = 0
        for j in range(n_in):
            acc += (w[base + j] - 128) * x[j]
        base += n_in
        v = acc >> shift
        if v < 0:
            v = 0
        elif v > 255:
            v = 255
        h[i] = v
        g += v * v
    return g


def fc_acc(w, x, acc, n_in, n_out):
    """acc[i] = sum_j W[i,j] * x[j]: fc_relu's sums, before the shift and the clip
    (|acc| <= 127 * 255 * n_in < 2**30, as there). With a net's label columns zero in x,
    these are the products every label's pass shares (see label_relu)."""
    base = 0
    for i in range(n_out):
        a = 0
        for j in range(n_in):
            a += (w[base + j] - 128) * x[j]
        acc[i] = a
        base += n_in


# label_relu's parameters, in the array('i') p it reads (one argument, not seven: a call
# with many arguments from a net's method makes that method's frame too large for
# MicroPython's stack, and it is then allocated on the heap at every call)
P_N_IN, P_N_OUT, P_SHIFT, P_COL, P_STEP, P_COUNT, P_VALUE = 0, 1, 2, 3, 4, 5, 6
P_LEN = 7


def label_relu(w, acc, h, p):
    """h[i] = clip((acc[i] + value * sum_r W[i, col + r * step]) >> shift, 0, 255); returns
    sum(h**2). With acc from fc_acc over an input whose label columns were zero, this is
    fc_relu over that input with `value` in the `count` columns col, col + step, ...: one
    label's layer-1 pass at the cost of its label columns alone (p: P_* above)."""
    n_in = p[0]
    step = p[4]
    count = p[5]
    value = p[6]
    g = 0
    base = p[3]
    for i in range(p[1]):
        s = 0
        for r in range(count):
            s += w[base + r * step] - 128
        v = (acc[i] + value * s) >> p[2]
        if v < 0:
            v = 0
        elif v > 255:
            v = 255
        h[i] = v
        g += v * v
        base += n_in
    return g


def normalize(h, out, n, recip):
    """out[i] = min(255, (h[i] * recip) >> 16): scale h to a fixed length.

    The caller computes recip = (target << 16) // isqrt(sum(h**2)); since every
    h[i] <= isqrt(sum(h**2)), h[i] * recip <= target << 16 < 2**30 for target < 2**14.
    """
    for i in range(n):
        v = (h[i] * recip) >> 16
        out[i] = 255 if v > 255 else v


def copy(dst, src, off, n):
    """dst[0:n] = src[off:off + n], bytes, without the slice a copy would allocate: a
    stored sample into the buffer a replay learns from (ffrt.rehearsal)."""
    for i in range(n):
        dst[i] = src[off + i]


# update's parameters, in the array('i') p it reads (U_*), and head_update's (H_*): as
# for label_relu, one argument keeps the calling method's frame on MicroPython's stack
U_N_IN, U_N_OUT, U_COEF, U_SHIFT, U_FLOOR = 0, 1, 2, 3, 4
U_LEN = 5
H_N_IN, H_ROW, H_COEF, H_SHIFT = 0, 1, 2, 3
H_LEN = 4


def update(w, x, h, rng, p):
    """W[i,j] += (coef * max(h[i], floor) * x[j] + r) >> shift, stochastic rounding, with
    n_in, n_out, coef, shift, floor = p[U_N_IN], p[U_N_OUT], p[U_COEF], ...

    With floor = 0 only active units (h[i] > 0) learn, as the gradient says. A floor of 1
    on positive passes lets silent units creep towards the data they never fire for, so
    no unit stays dead (the integer counterpart of a leaky ReLU's gradient).

    coef is the signed Q8 loss coefficient times the learning rate (|coef| < 2**12);
    r is drawn from row i's own xorshift32 in rng, one draw per (i, j) with h[i] and
    x[j] both non-zero, so rows stay independent and the numpy twin can vectorise.
    Bound: |coef * h * x| < 2**12 * 255 * 255 < 2**28, plus r < 2**28 (lr_shift <= 28): below 2**30.
    """
    coef = p[2]
    if coef == 0:
        return
    n_in = p[0]
    n_out = p[1]
    shift = p[3]
    floor = p[4]
    base = 0
    for i in range(n_out):
        hi_ = h[i]
        if hi_ < floor:
            hi_ = floor
        if hi_:
            c = coef * hi_
            for j in range(n_in):
                xj = x[j]
                if xj:
                    v = w[base + j] + ((c * xj + xs_next(rng, i, shift)) >> shift)
                    if v < 1:
                        v = 1
                    elif v > 255:
                        v = 255
                    w[base + j] = v
        base += n_in


def head_scores(wh, a, n_in, n_out, scores):
    """scores[c] = sum_k wh[c, k] * a[k] (linear head; |score| < 2**29, see HEAD_W_MAX)."""
    base = 0
    for c in range(n_out):
        s = 0
        for k in range(n_in):
            s += wh[base + k] * a[k]
        scores[c] = s
        base += n_in


def head_update(wh, a, rng, p):
    """wh[row, k] += (coef * a[k] + r) >> shift, clipped to +-HEAD_W_MAX, with n_in, row,
    coef, shift = p[H_N_IN], p[H_ROW], p[H_COEF], p[H_SHIFT].

    r comes from the single xorshift32 in rng[0:2], one draw per non-zero a[k].
    """
    n_in = p[0]
    coef = p[2]
    shift = p[3]
    base = p[1] * n_in
    for k in range(n_in):
        ak = a[k]
        if ak:
            v = wh[base + k] + ((coef * ak + xs_next(rng, 0, shift)) >> shift)
            if v < -HEAD_W_MAX:
                v = -HEAD_W_MAX
            elif v > HEAD_W_MAX:
                v = HEAD_W_MAX
            wh[base + k] = v
