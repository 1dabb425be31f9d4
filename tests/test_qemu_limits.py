"""The engine at its 32-bit limits: the emulated boards give CPython's bits there.

On x86-64 MicroPython has 63-bit small ints and 64-bit viper words, so a bound in
ffrt.model that only holds below 2**62 would never show. On a microcontroller an
intermediate of 2**30 or more becomes a heap long int (allocating on every step) and a
viper word wraps at 2**32. This test drives every value to the largest the Config limits
allow and runs the same script in CPython (the reference kernels) and on the emulated
boards (ffkit.board.qemu): viper on the Cortex-M3, the pure kernels on the Cortex-M0.

The variants (`variants`), each run on a freshly booted board:

- "wide-in": the first layer reads 16,000 inputs (Config's widest), all 255 (in_max *
  in_scale = 255, the label overlaid at label_value 255), its rows at the weight rails
  +127 and -127: the reference's accumulator reaches 127 * 255 * 15,999 and the viper
  twin's offset-binary sum 255 * 255 * 15,999 (1.04e9); act_shift 21 makes h = 247, so a
  wrong accumulator would show. The next layer is the widest the head reads (514 units,
  saturated) and the head sits at +-4095: scores +-514 * 255 * 4095 and a margin of the
  true label over its rival of -1.07e9, 278,524 above -2**30;
- "wide-out": the widest first layer the board's heap holds (16,000 units on the
  Cortex-M3; 10,000 on the Cortex-M0, whose 192 KB held 11,000 and not 12,000 since the
  shared label pass keeps 4 bytes a first-layer unit: 13,000 and not 14,000 before) all at
  255: goodness 255**2 * width (1.04e9 at 16,000), the largest sigmoid_q8 and isqrt see;
  act_shift 24, theta 2**24 - 1, gshift 24 and 0, lr_shift and head_shift 1 (weights slam
  into the rails), mixed negatives;
- "recurrent": 64 label repeats, the recurrent state at 255.

Everywhere lr and head_lr 15 (coefficients up to 251 * 15), lr_shift and head_shift 28
unless said, theta 0 and 2**24 - 1, gshift 0 and 24, grad_floor 255, norm_target 2**14 - 1
(norm_target << 16, 65,536 below 2**30, is the largest intermediate: tests/test_kernels.py
finds it with the instrumented reference on these variants), seed 2**30 - 1, init_range
127, and every PRNG state set before each update to the pre-image of 0xFFFFFFFF, so each
row's first stochastic-rounding draw is 2**shift - 1, its largest. Each variant reports
its state's CRC32 after every step, each layer's goodness, the head's scores and the
predictions, which must equal CPython's; and the bytes allocated (gc disabled) over
learn, predict and advance steps at the extremes, which must be 0 on both boards (an
intermediate that became a long int would allocate; a control shows that one does).

Skipped with one line where QEMU is missing, except under CI=true (conftest.qemu).
"""

import json

import pytest

from ffrt import kernels_ref

SMALL_INT = 1 << 30
HEAD_W_MAX = kernels_ref.HEAD_W_MAX


def _xs32(s):
    m = 0xFFFFFFFF
    s ^= (s << 13) & m
    s ^= s >> 17
    return s ^ ((s << 5) & m)


def _pre_image(y):
    """The xorshift32 state whose next state is y (each step is invertible)."""
    def un_shl(v, k):
        x = v
        for _ in range(32 // k + 1):
            x = v ^ ((x << k) & 0xFFFFFFFF)
        return x

    def un_shr(v, k):
        x = v
        for _ in range(32 // k + 1):
            x = v ^ (x >> k)
        return x
    return un_shl(un_shr(un_shl(y, 5), 17), 13)


PRE = _pre_image(0xFFFFFFFF)
assert _xs32(PRE) == 0xFFFFFFFF

# The extremes of every hyperparameter, as ffrt.model.Config.check allows them.
EXTREME = dict(in_max=255, in_scale=1, label_value=255, norm_target=(1 << 14) - 1,
               lr=15, lr_shift=28, grad_floor=255, head_lr=15, head_shift=28,
               init_range=127, seed=(1 << 30) - 1)


# The widest first layer of "wide-out" each board's heap holds (its largest: the
# Cortex-M0's 192 KB held 11,000 and not 12,000; net.py builds each PRNG array from a
# temporary bytes object, so a layer costs 8 bytes per unit for a moment, and the shared
# label pass keeps 4 bytes per first-layer unit).
WIDE_OUT = {"cortex-m3": 16000, "cortex-m0": 10000}
WIDE_IN = 16000  # Config's widest layer input: 15,998 features and 2 labels


def variants(machine):
    """(name, Config fields, each layer's weights, samples) for a board: weights "plus"
    (every one +127) or "alternate" (rows at +127 and -127); the head's rows alternate
    +-4095; samples are (every input's value, label)."""
    return [
        ("wide-in",
         # act_shift 21: h = (127 * 255 * 15,999) >> 21 = 247, so the accumulator's top
         # bits show in the goodness instead of saturating
         dict(EXTREME, n_features=WIDE_IN - 2, n_classes=2, layers=(4, 514),
              act_shift=(21, 0), theta=(0, (1 << 24) - 1), gshift=(0, 24), head_gshift=0,
              goodness_from=1, neg_mode=1),
         ["alternate", "plus"], [(255, 1), (255, 0), (0, 1)]),
        ("wide-out",
         dict(EXTREME, n_features=1, n_classes=2, layers=(WIDE_OUT[machine], 2),
              act_shift=(0, 24), theta=((1 << 24) - 1, 0), gshift=(24, 0), lr_shift=1,
              head_shift=1, head_gshift=24, goodness_from=1, neg_mode=2),
         ["plus", "plus"], [(255, 0), (255, 1), (0, 0)]),
        ("recurrent",
         dict(EXTREME, n_features=8, n_classes=3, label_repeat=64, layers=(32, 32),
              act_shift=(0, 0), theta=(0, (1 << 24) - 1), gshift=(0, 24), head_gshift=0,
              recurrent=1, neg_mode=1),
         ["alternate", "plus"], [(255, 2), (255, 0), (0, 1)]),
    ]


# Runs in CPython (exec) and on the boards (MicroPython): no f-strings.
DRIVER = r'''
import gc
import json
from binascii import crc32

from ffrt.model import Config
from ffrt.net import FFNet

PRE_HI = %d
PRE_LO = %d
HW = %d  # kernels_ref.HEAD_W_MAX


def wrapped(K):
    """K's kernels, every update starting each row's PRNG at the pre-image of all ones."""
    class W:
        pass

    def update(w, x, h, rng, p):
        for i in range(p[1]):  # n_out rows
            rng[2 * i] = PRE_HI
            rng[2 * i + 1] = PRE_LO
        K.update(w, x, h, rng, p)

    def head_update(wh, a, rng, p):
        rng[0] = PRE_HI
        rng[1] = PRE_LO
        K.head_update(wh, a, rng, p)

    W.fc_relu = K.fc_relu
    W.fc_acc = K.fc_acc
    W.label_relu = K.label_relu
    W.normalize = K.normalize
    W.isqrt = K.isqrt
    W.copy = K.copy
    W.head_scores = K.head_scores
    W.update = update
    W.head_update = head_update
    return W


def rails(net, weights):
    for l in range(net.n_layers):
        w = net.weights[l]
        n_in = net.n_in[l]
        for i in range(net.cfg.layers[l]):
            v = 255 if (weights[l] == "plus" or i %% 2 == 0) else 1  # +127 / -127
            base = i * n_in
            for j in range(n_in):
                w[base + j] = v
    n = net.n_head
    for c in range(net.cfg.n_classes):
        v = HW if c %% 2 == 0 else -HW
        for k in range(n):
            net.head[c * n + k] = v
    for td in net._td:  # the recurrent state at its largest
        for i in range(len(td)):
            td[i] = 255


def state_crc(net):
    c = 0
    for w in net.weights:
        c = crc32(w, c)
    c = crc32(net.head, c)
    for r in net.rngs:
        c = crc32(r, c)
    c = crc32(net.head_rng, c)
    c = crc32(net.rng, c)
    return c & 0xFFFFFFFF


def allocated():
    f = getattr(gc, "mem_alloc", None)
    return f() if f is not None else 0


def run(K, fields, weights, samples):
    cfg = Config(**fields)
    net = FFNet(cfg, kernels=wrapped(K))
    rails(net, weights)
    nf = cfg.n_features
    xs = {}
    for v, _ in samples:  # one buffer per input value (16,000 bytes each at the widest)
        if v not in xs:
            xs[v] = b = bytearray(nf)
            for j in range(nf):
                b[j] = v
    out = {"goodness": [], "scores": [], "pos": [], "neg": [], "predict": [],
           "crc": []}
    gc.collect()
    gc.disable()
    a0 = allocated()
    for i in range(len(samples)):
        x = xs[samples[i][0]]
        y = samples[i][1]
        net.learn_one(x, y)
        out["pos"].append(list(net.last_pos))
        out["neg"].append(list(net.last_neg))
        out["scores"].append(list(net._scores))
        out["predict"].append([net.predict_one(x), net.predict_head(x)])
        out["goodness"].append(list(net.goodness))
        out["scores"].append(list(net._scores))
        net.advance()
        out["crc"].append(state_crc(net))
    gc.enable()
    gc.collect()
    # allocation over steps alone: learn, predict, advance, nothing recorded
    x = xs[samples[0][0]]
    net.learn_one(x, 1)  # a first call may allocate what later ones reuse
    gc.collect()
    gc.disable()
    a1 = allocated()
    for i in range(2):
        net.learn_one(x, i)
        net.predict_one(x)
        net.predict_head(x)
        net.advance()
    a2 = allocated()
    gc.enable()
    out["crc"].append(state_crc(net))
    out["alloc_steps"] = a2 - a1
    out["step"] = net.step
    out["alloc_recorded"] = a0
    return out


def control():
    """Bytes one long int costs: what an intermediate of 2**30 would allocate."""
    gc.collect()
    gc.disable()
    t = 1 << 29
    a = allocated()
    t = t + t
    b = allocated()
    gc.enable()
    return b - a


def main(K, jobs):
    res = {"control_long_int_bytes": control()}
    for name, fields, weights, samples in jobs:
        res[name] = run(K, fields, weights, samples)
        gc.collect()
    return res
'''


def _source():
    return DRIVER % (PRE >> 16, PRE & 0xFFFF, HEAD_W_MAX)


def driver(jobs, kernels):
    """The script for a board: run the variants with `kernels` and print the JSON."""
    return _source() + (
        "\nimport %s as _K\nprint(json.dumps(main(_K, json.loads(%r))))\n"
        % (kernels, json.dumps(jobs)))


def namespace():
    """The driver's functions in CPython (tests/test_kernels.py uses its rails)."""
    ns = {"__name__": "ffkit_limits_driver"}
    exec(compile(_source(), "<limits driver>", "exec"), ns)
    return ns


def on_cpython(jobs):
    return json.loads(json.dumps(namespace()["main"](kernels_ref,
                                                     json.loads(json.dumps(jobs)))))


BOARDS = [("cortex-m3", "ffrt.kernels_viper"), ("cortex-m0", "ffrt.kernels_ref")]
_ALLOC = ("alloc_steps", "alloc_recorded")


@pytest.mark.parametrize("machine,kernels", BOARDS)
def test_the_emulated_boards_give_cpythons_bits_at_the_limits(qemu, machine, kernels):
    for v in variants(machine):
        name, fields = v[0], v[1]
        want = on_cpython([v])[name]
        # each variant on a freshly booted board: the widest layers its heap holds
        got = qemu.run_json(machine, driver([v], kernels), timeout=900)
        assert got["control_long_int_bytes"] > 0   # the check below sees a long int
        board = got[name]
        assert board["alloc_steps"] == 0, (machine, name, board["alloc_steps"])
        for key in want:
            if key not in _ALLOC:
                assert board[key] == want[key], (machine, name, key)
        assert board["step"] == len(v[3]) + 3   # learnt, a warm-up, then two measured

        # ... and the run did reach the limits (CPython's figures, the boards' too)
        if name == "wide-in":
            top = 514 * 255 * HEAD_W_MAX                  # the head's largest score
            assert want["scores"][0] == [top, -top]
            margin = want["scores"][0][1] - want["scores"][0][0]    # label 1's margin
            assert -SMALL_INT < margin == -2 * top < -(SMALL_INT - (1 << 19))
            acc = 127 * 255 * (WIDE_IN - 1)               # reference accumulator
            assert 255 * 255 * (WIDE_IN - 1) > 1 << 29    # the viper twin's sum
            assert want["pos"][0] == [2 * (acc >> 21) ** 2, 255 ** 2 * 514]
        elif name == "wide-out":
            assert want["pos"][0][0] == 255 ** 2 * fields["layers"][0]
            assert want["neg"][-1][0] == 255 ** 2 * fields["layers"][0]
        else:
            assert max(max(g) for g in want["goodness"]) > 0
