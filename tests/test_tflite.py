"""ffkit tflite export / check: the digits model in LiteRT and TFLite Micro, the quantisation
mapping checked against both runtimes, and bad .tflite files refused by name."""

import json

import numpy as np
import pytest

from conftest import REPO_ROOT
from ffkit.data import datasets
from ffkit.interop import tflite
from ffkit.twins import kernels_np
from ffkit.interop import tflite_export as te
from ffkit.interop import tflite_graph as tg
from ffrt import ffw_ram
from test_cli import run_main

DIGITS = REPO_ROOT / "models" / "digits.ffw"


@pytest.fixture(scope="module")
def digits():
    net = ffw_ram.load(DIGITS.read_bytes(), kernels=kernels_np)
    return {"net": net, "blob": te.export(net), "data": datasets.load("digits")}


def test_digits_model_agrees_in_litert_and_tflite_micro(digits):
    d = digits["data"]
    res = tflite.check(digits["net"], digits["blob"], d.X_test, d.y_test)
    assert res["n_test"] == 450
    assert set(res["runtimes"]) == {"litert", "tflm"}
    for rt, r in res["runtimes"].items():
        assert r["agreement"] >= 0.99, (rt, r)
        assert abs(r["accuracy_tflite"] - res["accuracy_ffkit"]) <= 0.005, (rt, r)
        # the approximations move scores, but by far less than the scores themselves
        assert 0 < r["max_score_diff"] < 0.05 * res["max_abs_score_ffkit"], (rt, r)
    assert res["accuracy_ffkit"] == pytest.approx(0.98, abs=1e-4)  # README's figure
    assert res["exported_from_crc32"] == res["weights_crc32"]


def test_export_is_the_documented_graph(digits):
    m = tg.read_model(digits["blob"], "digits.tflite")
    sg = m.subgraphs[0]
    ops = [tg.op_name(m, op) for op in sg.operators]
    layer = ["FULLY_CONNECTED", "L2_NORMALIZATION", "QUANTIZE"]
    assert ops == layer + layer + ["CONCATENATION", "QUANTIZE", "FULLY_CONNECTED"]
    t_in, t_out = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
    assert (t_in.type, list(t_in.shape)) == (tg.INT8, [1, 64])
    assert tg.quant(t_in) == ([pytest.approx(1 / 15)], [-128])
    assert (t_out.type, list(t_out.shape)) == (tg.INT16, [1, 10])
    # every tensor between input and scores is int8 with ffkit's zero point for activities
    for t in sg.tensors:
        name = tg.tensor_name(t)
        if name.endswith("/relu") or name.endswith("/normalised"):
            assert t.type == tg.INT8 and tg.quant(t)[1] == [-128], name
    # layer 0's bias holds the neutral label overlay and the rounding offset
    net = digits["net"]
    W = np.frombuffer(bytes(net.weights[0]), np.uint8).reshape(128, 74).astype(int) - 128
    bias = [i for i, t in enumerate(sg.tensors) if tg.tensor_name(t) == "layer0/bias"][0]
    want = W[:, 64:].sum(1) * (255 // 10) + te.round_offset(net.cfg.act_shift[0])
    assert np.array_equal(tg.const(m, bias), want)
    assert json.loads(tg.metadata(m, "ffkit"))["weights_crc32"] == "%08x" % \
        ffw_ram.weights_crc32(net)


@pytest.mark.parametrize("layers, goodness_from, norm_target", [
    ((48, 32, 24), 1, 700),   # three layers, the head on the last two, T not a power of 2
    ((40,), 0, 1024),         # one layer: no CONCATENATION
])
def test_other_shapes_export_and_agree(digits, layers, goodness_from, norm_target):
    from ffkit.learning.train import train
    from ffrt.model import Config
    from ffrt.net import FFNet

    n = len(layers)
    cfg = Config(n_features=64, n_classes=10, in_max=16, in_scale=15, layers=layers,
                 act_shift=(8,) + (7,) * (n - 1), theta=(50000,) * n, gshift=(10,) * n,
                 lr_shift=23, goodness_from=goodness_from, norm_target=norm_target)
    net = FFNet(cfg, kernels=kernels_np)
    d = digits["data"]
    train(net, d.X_train[:600], d.y_train[:600], epochs=1, shuffle_seed=0)
    blob = te.export(net)
    m = tg.read_model(blob, "small.tflite")
    ops = [tg.op_name(m, op) for op in m.subgraphs[0].operators]
    assert ops.count("L2_NORMALIZATION") == n
    assert ("CONCATENATION" in ops) == (n - goodness_from > 1)
    res = tflite.check(net, blob, d.X_test, d.y_test)
    for rt, r in res["runtimes"].items():  # measured: 0.993-0.998
        assert r["agreement"] >= 0.98, (rt, r)


def test_export_is_deterministic(digits):
    assert te.export(digits["net"]) == digits["blob"]


@pytest.mark.parametrize("shift", [0, 1, 2, 5, 8, 9])
def test_first_layer_equals_ffkit_in_tflite_micro_for_every_accumulator(shift):
    """A one-input FULLY_CONNECTED with ffkit's mapping (multiplier 2**-shift, bias +
    round_offset) over accumulators -600..1900: TFLite Micro gives clip(acc >> shift, 0,
    255) for every one. LiteRT rounds once (XNNPACK: in float, to even) and is at most one
    lower, only where acc mod 2**shift is 0 or 1: the offset suits TFLite Micro's rounding."""
    n = 64
    ks = np.arange(n) * 37 - 600
    g = tg.Graph()
    x = g.tensor("x", [1, 1], tg.INT8, scale=1.0, zero_point=-128)
    w = g.tensor("w", [n, 1], tg.INT8, scale=1.0, zero_point=0, data=np.ones((n, 1)))
    b = g.tensor("b", [n], tg.INT32, scale=1.0, zero_point=0, data=ks + te.round_offset(shift))
    y = g.tensor("y", [1, n], tg.INT8, scale=float(2 ** shift), zero_point=-128)
    g.fully_connected(x, w, b, y, relu=True)
    blob = g.finish([x], [y])
    q = np.arange(-128, 128)
    acc = (q + 128)[:, None] + ks[None, :]
    want = np.clip(acc >> shift, 0, 255)
    got = {}
    for rt in tflite.RUNTIMES:
        r = tflite.open_runtime(rt, blob)
        got[rt] = np.stack([r.run(np.array([v], np.int8)) for v in q]).astype(int) + 128
    assert np.array_equal(got["tflm"], want)
    d = want - got["litert"]
    assert set(np.unique(d)) <= {0, 1}
    assert not d[acc % (1 << shift) > 1].any()


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _tanh_model():
    g = tg.Graph("an op ffkit does not read")
    x = g.tensor("x", [1, 64], tg.INT8, scale=1 / 15, zero_point=-128)
    y = g.tensor("y", [1, 64], tg.INT8, scale=1 / 128, zero_point=0)
    g.op("TANH", [x], [y])
    return g.finish([x], [y])


@pytest.mark.parametrize("case, message", [
    ("truncated", "truncated or corrupt"),
    ("random", "not a TFLite model"),
    ("short", "too short"),
    ("unsupported op", "operator 0 is TANH"),
    ("wrong input", "the weights take int8 [1, 64]"),
])
def test_bad_models_are_refused_naming_the_problem(digits, tmp_path, case, message):
    blob = digits["blob"]
    data = {
        "truncated": blob[:len(blob) // 2],
        "random": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "short": b"\x00\x01",
        "unsupported op": _tanh_model(),
        "wrong input": te.export(ffw_ram.load((REPO_ROOT / "models" / "hapt.ffw").read_bytes())),
    }[case]
    path = _write(tmp_path, "bad.tflite", data)
    with pytest.raises(tg.TFLiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        d = digits["data"]
        tflite.check(digits["net"], data, d.X_test[:5], d.y_test[:5], name=str(path))
    code, out, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                              str(path), "--dataset", "digits", "--json")
    assert code == 1 and out == ""
    assert err.startswith("ffkit: %s: " % path) and message in err, err
    assert "Traceback" not in err


def test_every_truncation_is_refused_before_a_runtime_sees_it(digits):
    blob = digits["blob"]
    for n in list(range(0, 64, 7)) + list(range(64, len(blob), 997)):
        with pytest.raises(tg.TFLiteError):
            tg.read_model(blob[:n], "cut.tflite")


def test_cli_export_then_check(tmp_path):
    out = tmp_path / "digits.tflite"
    code, stdout, err = run_main("tflite", "export", "--weights", str(DIGITS), "-o", str(out),
                                 "--json")
    assert code == 0, err
    rep = json.loads(stdout)
    assert rep["bytes"] == out.stat().st_size and rep["shape"] == "74-128-128"
    code, stdout, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                                 str(out), "--dataset", "digits", "--runtime", "tflm",
                                 "--limit", "50", "--json")
    assert code == 0, err
    rep = json.loads(stdout)
    assert rep["n_test"] == 50 and list(rep["runtimes"]) == ["tflm"]
    assert rep["runtimes"]["tflm"]["agreement"] >= 0.98
    code, stdout, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                                 str(out), "--dataset", "digits", "--limit", "20")
    assert code == 0, err
    assert "litert (ai_edge_litert" in stdout and "tflm   (tflite_micro" in stdout
    assert "head-score units" in stdout


def test_a_recurrent_model_is_refused_by_name():
    from ffrt.model import Config
    from ffrt.net import FFNet

    from ffkit.interop import tflite_export
    from ffkit.interop.tflite_graph import TFLiteError

    net = FFNet(Config(layers=(16, 8), recurrent=1))
    with pytest.raises(TFLiteError, match="a recurrent model carries a state"):
        tflite_export.export(net)


# ---- what was exported: the weight digest in the model's metadata (issue 12 item 3b) ----------

def _layer0_offset(digits):
    """Where layer 0's int8 weights start in the exported file."""
    net = digits["net"]
    W = np.frombuffer(bytes(net.weights[0]), np.uint8).reshape(128, 74).astype(int) - 128
    at = digits["blob"].find(W[:, :64].astype(np.int8).tobytes())
    assert at > 0
    return at


def _without_metadata(blob):
    """The model as an export from before the digest: no metadata at all."""
    import flatbuffers
    m = tg.read_model(blob, "m.tflite")
    keep = len(m.buffers) - len(m.metadata)   # the metadata buffers come last
    m.metadata = None
    m.buffers = m.buffers[:keep]
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=tg.FILE_IDENTIFIER)
    return bytes(fb.Output())


def test_export_records_the_ffw_crc_and_a_digest_of_its_weight_buffers(digits):
    m = tg.read_model(digits["blob"], "digits.tflite")
    meta = json.loads(tg.metadata(m, "ffkit"))
    data = DIGITS.read_bytes()
    assert meta["ffw_crc32"] == "%08x" % int.from_bytes(data[-4:], "little")
    assert meta["weights_sha256"] == tg.weights_sha256(m)
    assert len(meta["weights_sha256"]) == 64


def test_a_weight_byte_changed_after_export_fails_the_check(digits, tmp_path):
    blob = bytearray(digits["blob"])
    at = _layer0_offset(digits) + 100
    blob[at] ^= 0x01                      # one weight, one bit: the runtimes agree anyway
    path = _write(tmp_path, "changed.tflite", bytes(blob))
    d = digits["data"]
    with pytest.raises(tg.TFLiteError, match="changed after export"):
        tflite.check(digits["net"], bytes(blob), d.X_test[:5], d.y_test[:5], name=str(path))
    code, out, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                              str(path), "--dataset", "digits", "--limit", "20")
    assert code == 1 and out == "", (code, out)
    assert err.startswith("ffkit: %s: " % path) and "changed after export" in err, err
    assert "weights_sha256" in err and "Traceback" not in err


def test_an_export_without_a_digest_is_checked_with_a_note(digits, tmp_path):
    old = _without_metadata(digits["blob"])
    assert tg.read_model(old, "old.tflite").metadata is None
    path = _write(tmp_path, "old.tflite", old)
    code, out, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                              str(path), "--dataset", "digits", "--runtime", "tflm",
                              "--limit", "20")
    assert code == 0, err
    assert "carries no weight digest" in out, out
    code, out, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                              str(path), "--dataset", "digits", "--runtime", "tflm",
                              "--limit", "20", "--json")
    assert code == 0 and json.loads(out)["weights_digest"] == "absent"
    path = _write(tmp_path, "new.tflite", digits["blob"])
    code, out, err = run_main("tflite", "check", "--weights", str(DIGITS), "--model",
                              str(path), "--dataset", "digits", "--runtime", "tflm",
                              "--limit", "20", "--json")
    assert code == 0 and json.loads(out)["weights_digest"] == "verified"
