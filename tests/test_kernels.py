"""The kernel twins against the reference, vector by vector (tests/kernel_vectors.py).

- CPython: kernels_np gives the same return value and the same bytes in every buffer
  (mutated ones: weights, PRNG states, h, out, scores; and the inputs, left unchanged).
- MicroPython (device, parity): kernels_ref, kernels_viper and kernels_native (C, built
  for x64 by ffkit.board.native) run the same vectors in the unix port; their CRC32s per
  buffer must equal those of kernels_ref in CPython.
- Bounds: the reference kernels, recompiled so that every arithmetic result passes through
  a recorder (an AST rewrite of their own source), run on extreme inputs at moderate
  widths: no value reaches 2**30 (MicroPython's small-int limit on 32-bit boards), the
  largest one is the bound formula that kernels_ref states, and that formula is then
  evaluated at the widest layers Config allows (running 16000-wide layers would be slow).
"""

import ast
import copy
import inspect
import json
import types
import zlib

import pytest

from ffkit.board import mpy

from ffkit.twins import kernels_np
from ffrt import fixedpoint, kernels_ref
from ffrt import net as net_module
from ffrt.model import Config

import kernel_vectors as kv

SMALL_INT = 1 << 30


# ---- CPython: numpy twin --------------------------------------------------------------------

@pytest.mark.parametrize("name", kv.NAMES)
def test_np_twin_matches_reference(name):
    vec = kv.by_name(name)
    got = kv.run(kernels_np, vec)
    exp = vec["expected"]
    assert got["ret"] == exp["ret"]
    for buf, data in exp["buffers"].items():
        assert got["buffers"][buf] == data, "%s: buffer %r differs" % (name, buf)


@pytest.mark.parametrize("name", kv.NAMES)
def test_c_twin_matches_reference(name):
    """The C twin (ffkit.twins.kernels_c), built here with the system's compiler: CI has one,
    so it must build (a missing compiler fails this test rather than skipping it)."""
    from ffkit.twins import kernels_c

    vec = kv.by_name(name)
    got = kv.run(kernels_c.load(), vec)
    exp = vec["expected"]
    assert got["ret"] == exp["ret"]
    for buf, data in exp["buffers"].items():
        assert got["buffers"][buf] == data, "%s: buffer %r differs" % (name, buf)


@pytest.mark.parametrize("name", kv.NAMES)
def test_reference_is_deterministic(name):
    vec = kv.by_name(name)
    assert kv.run(kernels_ref, vec) == vec["expected"]


def test_table_covers_the_brief():
    kernels = {v["kernel"] for v in kv.VECTORS}
    assert kernels == set(kv.SIGNATURES)
    widths = {v["args"]["n_in"] for v in kv.VECTORS if "n_in" in v["args"]}
    assert {1, 3, 4, 5, 17, 74, 128} <= widths
    shifts = {v["args"]["p"][3] for v in kv.VECTORS if v["kernel"] == "update"}
    assert {1, 16, 22, 24} <= shifts
    coefs = [v["args"]["p"][2] for v in kv.VECTORS if v["kernel"] == "update"]
    assert min(coefs) < 0 < max(coefs)
    # every update vector that can move a weight moves one, or saturates, as named
    moved = [v["name"] for v in kv.VECTORS if v["kernel"] == "update"
             and v["expected"]["buffers"]["w"] != bytes(v["args"]["w"])]
    assert len(moved) >= 20


# ---- MicroPython: reference and viper twins -------------------------------------------------

_MPY_SCRIPT = """
import json, binascii, sys
from array import array

twins = []
for label in sys.argv[1].split(","):
    twins.append((label, __import__("ffrt.kernels_" + label, None, None, ["x"])))

def build(spec):
    out = []
    for kind, v in spec:
        if kind == "int":
            out.append(v)
        elif kind == "bytes":
            out.append(bytearray(binascii.unhexlify(v)))
        else:
            out.append(array(kind, v))
    return out

def digest(args, ret):
    return [ret, [None if isinstance(a, int) else binascii.crc32(a) for a in args]]

with open("vectors.json") as f:
    vectors = json.load(f)
result = {}
for name, kernel, spec in vectors:
    r = {}
    for label, mod in twins:
        args = build(spec)
        ret = getattr(mod, kernel)(*args)
        r[label] = digest(args, ret)
    result[name] = r
print(json.dumps(result))
"""


def _cpython_digest(vec):
    exp = vec["expected"]
    crcs = [zlib.crc32(exp["buffers"][n]) if n in exp["buffers"] else None
            for n in kv.SIGNATURES[vec["kernel"]]]
    return [exp["ret"], crcs]


@pytest.fixture(scope="module")
def mpy_results(micropython, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kernel-vectors")
    data = [[v["name"], v["kernel"], kv.to_json(v)] for v in kv.VECTORS]
    (folder / "vectors.json").write_text(json.dumps(data))
    return mpy.run_json(_MPY_SCRIPT, args=["ref,viper"], cwd=folder)


@pytest.fixture(scope="module")
def native_results(micropython, tmp_path_factory):
    """The native module (C, built here for x64: `make test` installs the compiler, so a
    missing one fails rather than skips) over the same vectors in the unix port."""
    from ffkit.board import native

    folder = tmp_path_factory.mktemp("kernel-vectors-native")
    data = [[v["name"], v["kernel"], kv.to_json(v)] for v in kv.VECTORS]
    (folder / "vectors.json").write_text(json.dumps(data))
    path = native.native_firmware_dir("x64")
    return mpy.run_json(_MPY_SCRIPT, args=["native"], cwd=folder,
                        env_extra={"MICROPYPATH": str(path)})


@pytest.mark.device
@pytest.mark.parity
@pytest.mark.parametrize("twin", ["ref", "viper"])
@pytest.mark.parametrize("name", kv.NAMES)
def test_micropython_twins_match_cpython_reference(mpy_results, name, twin):
    vec = kv.by_name(name)
    ret, crcs = mpy_results[name][twin]
    exp_ret, exp_crcs = _cpython_digest(vec)
    assert ret == exp_ret
    for arg, got, want in zip(kv.SIGNATURES[vec["kernel"]], crcs, exp_crcs):
        assert got == want, "%s in MicroPython (%s): buffer %r differs" % (name, twin, arg)


@pytest.mark.device
@pytest.mark.parity
@pytest.mark.parametrize("name", kv.NAMES)
def test_native_kernels_match_cpython_reference(native_results, name):
    vec = kv.by_name(name)
    ret, crcs = native_results[name]["native"]
    exp_ret, exp_crcs = _cpython_digest(vec)
    assert ret == exp_ret
    for arg, got, want in zip(kv.SIGNATURES[vec["kernel"]], crcs, exp_crcs):
        assert got == want, "%s in MicroPython (native): buffer %r differs" % (name, arg)


@pytest.fixture(scope="module")
def cortex_m4_results(qemu):
    """The native module built for armv7emsp (its dot product in the DSP extension's
    SMLAD) over the same vectors on the emulated Cortex-M4 (QEMU mps2-an386), flashed as
    `ffkit flash --board cortex-m4` flashes it."""
    from ffkit.board import builds

    files = builds.bundle_files("cortex-m4")
    assert "ffrt/kernels_native.mpy" in files
    data = [[v["name"], v["kernel"], kv.to_json(v)] for v in kv.VECTORS]
    files["vectors.json"] = json.dumps(data).encode()
    script = _MPY_SCRIPT.replace('sys.argv[1].split(",")', '["native"]')
    return qemu.run_json("cortex-m4", script, files=files, timeout=600)


@pytest.mark.device
@pytest.mark.parity
@pytest.mark.parametrize("name", kv.NAMES)
def test_dsp_kernels_on_the_emulated_cortex_m4_match_cpython_reference(cortex_m4_results,
                                                                       name):
    assert cortex_m4_results[name]["native"] == _cpython_digest(kv.by_name(name)), name


# ---- bounds: every intermediate below 2**30 -------------------------------------------------

class Peak:
    """Records the largest |value| passed to it, and the source line that formed it."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.value = 0
        self.line = None

    def __call__(self, v, line):
        if isinstance(v, int) and abs(v) > self.value:  # not lists, e.g. [0] * n
            self.value = abs(v)
            self.line = line
        return v


class _Instrument(ast.NodeTransformer):
    """Wrap every arithmetic result (binary, unary minus, augmented assignment) in _peak()."""

    def _wrap(self, node, lineno):
        return ast.Call(func=ast.Name("_peak", ast.Load()),
                        args=[node, ast.Constant(lineno)], keywords=[])

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return ast.copy_location(self._wrap(node, node.lineno), node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            return ast.copy_location(self._wrap(node, node.lineno), node)
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        load = copy.deepcopy(node.target)
        for n in ast.walk(load):
            if hasattr(n, "ctx"):
                n.ctx = ast.Load()
        value = self._wrap(ast.BinOp(left=load, op=node.op, right=node.value), node.lineno)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value), node)


def instrumented(module, peak, **replace):
    """A copy of `module` whose every arithmetic result goes through `peak`.

    replace: globals to swap in after loading (e.g. the instrumented fixedpoint helpers).
    """
    tree = _Instrument().visit(ast.parse(inspect.getsource(module)))
    ast.fix_missing_locations(tree)
    ns = {"__name__": module.__name__ + "__instrumented", "_peak": peak}
    exec(compile(tree, module.__file__, "exec"), ns)
    ns.update(replace)
    return types.SimpleNamespace(**{k: v for k, v in ns.items() if not k.startswith("__")})


PEAK = Peak()
FP_I = instrumented(fixedpoint, PEAK)
REF_I = instrumented(kernels_ref, PEAK, xs_next=FP_I.xs_next, isqrt=FP_I.isqrt)


def _run_peak(fn, *args):
    PEAK.reset()
    ret = fn(*args)
    return PEAK.value, ret


def test_instrumentation_sees_every_operation():
    src = "def f(a, b):\n    c = 5 * 51\n    c += a * b\n    return -(c >> 1)\n"
    mod = types.ModuleType("m")
    exec(src, mod.__dict__)
    peak = Peak()
    tree = _Instrument().visit(ast.parse(src))
    ast.fix_missing_locations(tree)
    ns = {"_peak": peak}
    exec(compile(tree, "m", "exec"), ns)
    assert ns["f"](1000, 1000) == mod.f(1000, 1000) == -((255 + 10 ** 6) >> 1)
    assert peak.value == 10 ** 6 + 255 and peak.line == 3
    # the instrumented kernels compute what the real ones do
    for name in ("fc_relu/w74x128", "update/w17x4", "head_update/w17"):
        vec = kv.by_name(name)
        assert kv.run(REF_I, vec) == vec["expected"]


# Config.check allows layers 1..16000 wide; the head reads at most 514 activities.
MAX_WIDTH = 16000
MAX_HEAD_IN = 514


def fc_bound(n_in, n_out):
    """kernels_ref.fc_relu: |acc| <= 127 * 255 * n_in, goodness <= 255**2 * n_out."""
    return max(127 * 255 * n_in, 255 * 255 * n_out)


def test_fc_relu_bound_formula_is_tight_and_holds_at_config_limits():
    n_in, n_out = 128, 96
    goodness = {}
    for stored, shift in ((255, 0), (1, 0), (255, 14)):
        w = bytearray([stored] * (n_in * n_out))
        x = bytearray([255] * n_in)
        h = bytearray(n_out)
        peak, g = _run_peak(REF_I.fc_relu, w, x, h, n_in, n_out, shift)
        # the largest value formed is the accumulator or, when h saturates, the goodness
        assert peak == max(127 * 255 * n_in, g), (stored, shift)
        assert peak <= fc_bound(n_in, n_out)
        goodness[stored, shift] = g
    assert goodness[255, 0] == 255 * 255 * n_out  # every unit saturated: the goodness bound
    assert goodness[255, 14] == 253 * 253 * n_out  # 127 * 255 * 128 >> 14 = 253
    assert goodness[1, 0] == 0
    assert fc_bound(MAX_WIDTH, MAX_WIDTH) < SMALL_INT


def test_shared_label_pass_bounds_are_fc_relus():
    """fc_acc forms fc_relu's sums; label_relu adds value * (the label columns' weights) to
    them: together the sum of fc_relu over the whole input, within its bound."""
    n_in, n_out, count, step, col = 40, 6, 3, 5, 20
    for stored in (255, 1):
        w = bytearray([stored] * (n_in * n_out))
        x = bytearray([0 if j in (col, col + step, col + 2 * step) else 255
                       for j in range(n_in)])  # the label columns zero
        acc = kv._buf("acc", [0] * n_out)
        peak, _ = _run_peak(REF_I.fc_acc, w, x, acc, n_in, n_out)
        assert peak == 127 * 255 * (n_in - count) <= fc_bound(n_in, n_out)
        p = kv._buf("p", [n_in, n_out, 0, col, step, count, 255])
        h = bytearray(n_out)
        peak, g = _run_peak(REF_I.label_relu, w, acc, h, p)
        assert peak <= fc_bound(n_in, n_out) < SMALL_INT
        assert g == (255 * 255 * n_out if stored == 255 else 0)


def test_normalize_bound_with_the_nets_recipe():
    # FFNet._normalize: recip = (target << 16) // isqrt(g); worst case: one active unit
    # at 255 and the largest target, so h * recip comes to just below target << 16.
    target = (1 << 14) - 1  # Config: norm_target < 2**14
    h = bytearray([0, 255, 0, 0])
    PEAK.reset()
    norm = FP_I.isqrt(255 * 255)
    recip = (target << 16) // norm
    out = bytearray(4)
    peak, _ = _run_peak(REF_I.normalize, h, out, 4, recip)
    assert out[1] == 255
    assert peak == 255 * recip <= target << 16 < SMALL_INT


def test_isqrt_bound_at_its_largest_argument():
    peak, r = _run_peak(FP_I.isqrt, SMALL_INT - 1)
    assert r == 32767
    assert peak < SMALL_INT


def test_update_bound_at_extremes():
    # |coef| < 2**12 (kernels_ref.update); h = x = 255; the xorshift halves form at most
    # 0xFFFF << 13; the largest shift adds r < 2**24.
    bound = max(((1 << 12) - 1) * 255 * 255 + (1 << 24), 0xFFFF << 13)
    assert bound < SMALL_INT
    n_in, n_out = 74, 16
    for coef, shift, stored in ((kv.COEF_MAX, 24, 1), (-kv.COEF_MAX, 24, 255),
                                (kv.COEF_NET_MAX, 1, 128), (-kv.COEF_NET_MAX, 22, 128)):
        w = bytearray([stored] * (n_in * n_out))
        x = bytearray([255] * n_in)
        h = bytearray([255] * n_out)
        rng = kv.by_name("update/w74x128")["args"]["rng"][:2 * n_out]
        p = kv._buf("p", [n_in, n_out, coef, shift, 255])
        peak, _ = _run_peak(REF_I.update, w, x, h, rng, p)
        assert abs(coef) * 255 * 255 <= peak <= bound, (coef, shift, PEAK.line)


def test_head_scores_bound_at_the_widest_head():
    hw = kernels_ref.HEAD_W_MAX
    wh = kv._buf("wh", [hw] * MAX_HEAD_IN + [-hw] * MAX_HEAD_IN)
    a = bytearray([255] * MAX_HEAD_IN)
    scores = kv._buf("scores", [0, 0])
    peak, _ = _run_peak(REF_I.head_scores, wh, a, MAX_HEAD_IN, 2, scores)
    assert list(scores) == [MAX_HEAD_IN * 255 * hw, -MAX_HEAD_IN * 255 * hw]
    assert peak == MAX_HEAD_IN * 255 * hw < SMALL_INT


def test_head_update_bound_at_extremes():
    hw = kernels_ref.HEAD_W_MAX
    bound = max(((1 << 12) - 1) * 255 + (1 << 24), 0xFFFF << 13)
    for coef, shift, start in ((kv.COEF_MAX, 24, hw), (-kv.COEF_MAX, 1, -hw)):
        wh = kv._buf("wh", [start] * 64)
        a = bytearray([255] * 32)
        rng = kv._buf("rng", [0x1234, 0x5678])
        peak, _ = _run_peak(REF_I.head_update, wh, a, rng, kv._buf("p", [32, 1, coef, shift]))
        assert peak <= bound < SMALL_INT
        assert list(wh[32:]) == [start] * 32  # saturated at +-HEAD_W_MAX


# ---- the net's own arithmetic around the kernels --------------------------------------------

def _instrumented_net():
    return instrumented(net_module, PEAK, fp=FP_I)


def _net_peak(cfg, steps, prepare=None):
    """Peak |value| (and its line in net.py or a kernel) over reset + learn + predict."""
    NI = _instrumented_net()
    PEAK.reset()
    n = NI.FFNet(cfg, kernels=REF_I)
    if prepare:
        prepare(n)
    x = [cfg.in_max] * cfg.n_features
    for i in range(steps):
        n.learn_one(x, i % cfg.n_classes)
        n.predict_one(x)
        n.predict_head(x)
    return PEAK.value, PEAK.line


def test_net_arithmetic_below_small_int_at_extreme_hyperparameters():
    cfg = Config(n_features=6, n_classes=3, in_max=15, in_scale=17, layers=(40, 24),
                 act_shift=(0, 0), theta=((1 << 24) - 1, 0), gshift=(0, 24),
                 norm_target=(1 << 14) - 1, lr=15, lr_shift=1, head_lr=15, head_shift=1,
                 head_gshift=0, init_range=127, seed=12345)
    peak, line = _net_peak(cfg, 4)
    assert peak < SMALL_INT, "line %s" % line


def test_net_reset_below_small_int_at_the_largest_seed():
    cfg = Config(n_features=4, n_classes=2, in_max=15, layers=(4,), seed=SMALL_INT - 1)
    peak, line = _net_peak(cfg, 0)
    assert peak < SMALL_INT, "line %s" % line


def test_net_head_margin_below_small_int_at_the_widest_head():
    cfg = Config(n_features=4, n_classes=2, in_max=15, in_scale=17, layers=(MAX_HEAD_IN,),
                 act_shift=(0,), norm_target=(1 << 14) - 1)
    hw = kernels_ref.HEAD_W_MAX

    def saturate(n):
        # every unit at 255 after normalising, head rows at +-HEAD_W_MAX: a state that
        # learning can reach, since weights and head weights saturate by design
        w = n.weights[0]
        for i in range(len(w)):
            w[i] = 255
        for k in range(MAX_HEAD_IN):
            n.head[k] = hw
            n.head[MAX_HEAD_IN + k] = -hw
    peak, line = _net_peak(cfg, 1, saturate)
    assert peak < SMALL_INT, "line %s" % line


def test_net_peaks_at_the_32_bit_limits_the_emulated_boards_run():
    """The variants tests/test_qemu_limits.py runs on the emulated boards (16,000-wide
    layers, weights at the rails, the head at +-HEAD_W_MAX, every hyperparameter at its
    bound, each row's first rounding draw at its largest), through the instrumented
    reference: their largest intermediate is the one the bounds name, below 2**30 (the
    head's margin, -2 * 514 * 255 * 4095, and a 16,000-unit layer's goodness, 255**2 *
    16,000, come close: tests/test_qemu_limits.py checks that they are reached)."""
    import test_qemu_limits as lim

    ns = lim.namespace()
    NI = _instrumented_net()
    peaks = {}
    for name, fields, weights, samples in lim.variants("cortex-m3"):
        cfg = Config(**fields)
        net = NI.FFNet(cfg, kernels=ns["wrapped"](REF_I))
        ns["rails"](net, weights)
        value, label = samples[0]
        x = [value] * cfg.n_features
        PEAK.reset()
        net.learn_one(x, label)
        net.predict_one(x)
        net.predict_head(x)
        peaks[name] = (PEAK.value, PEAK.line)
    # the largest: norm_target << 16 (net.py _normalize), 65,536 below 2**30
    target = ((1 << 14) - 1) << 16
    assert {v for v, _ in peaks.values()} == {target}, peaks
    assert SMALL_INT - target == 1 << 16
    assert 2 * MAX_HEAD_IN * 255 * kernels_ref.HEAD_W_MAX < target
    assert 255 * 255 * MAX_WIDTH < target
