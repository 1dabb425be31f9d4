"""ffkit tflite import-frontend: an int8 TFLite model of FULLY_CONNECTED and RELU ops as a
frozen ffrt front end (.ffe, ffrt.frontend), bit for bit what TFLite Micro computes.

    ffkit tflite import-frontend --model front.tflite -o front.ffe
    ffkit train --dataset digits --frontend front.ffe --out behind.ffw

What is accepted: one subgraph, one int8 input [1, n] (or [n]) and one output, a chain of
FULLY_CONNECTED ops (int8 weights, symmetric, per tensor or per output channel; an
optional int32 bias; no fused activation, or RELU, RELU6, RELU_N1_TO_1: a clamp) and RELU
ops, every activation int8 with per-tensor quantisation. Anything else is refused with a
message naming it: another op (by its TFLite name), a float or int16 tensor, a tensor
without quantisation, an activation zero point outside -128..127, weights with a zero
point, shapes that do not chain, a bias whose scale is not input scale x weight scale, a
layer wider than 4096 inputs, or one whose accumulator could reach 2**28 (the small-int
bound of ffrt.frontend_ref).

How TFLite Micro's arithmetic is carried over (checked against its interpreter by
tests/test_frontend.py on random models and every test sample):

- the requantisation multiplier of each output, input scale x weight scale / output scale
  in double precision, is TFLite's QuantizeMultiplier: a Q31 significand m in
  [2**30, 2**31) and a shift, stored as two 15-bit halves of m - 2**30 and the shift;
- the activation clamp is TFLite's CalculateActivationRangeQuantized (zero point +
  round(limit / scale) in float32), the separate RELU's multiplier input scale / output
  scale and clamp max(-128, output zero point);
- the input zero point is folded into the bias (ffrt.frontend.fc_stage).

The inputs of a front end are the TFLite model's int8 inputs. `quantize` maps a data set's
features to them with the model's input scale and zero point, round(x / scale) + zero
point, clipped to int8, as one quantises a TFLite input; `features` runs the front end
over many rows at once (numpy, the same bits as ffrt.frontend.Frontend.run).
"""

import math
from pathlib import Path
import struct
import zlib

import numpy as np

from ffrt import frontend as F

from ffkit.twins import frontend_np
from ffkit.interop import tflite_graph as tg
from ffkit.interop.tflite_graph import TFLiteError

SUPPORTED = ("FULLY_CONNECTED", "RELU")
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def quantize_multiplier(m):
    """TFLite's QuantizeMultiplier: (Q31 significand, shift), m = q / 2**31 * 2**shift."""
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = math.floor(q * (1 << 31) + 0.5)  # TfLiteRound: halves away from zero (q > 0)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def _quantize_limit(value, scale, zp):
    """zero point + round(value / scale), in float32 as TFLite computes it."""
    r = np.float32(value) / np.float32(scale)
    return zp + int(math.copysign(math.floor(abs(float(r)) + 0.5), float(r)))


def activation_range(act, scale, zp, name):
    """TFLite's CalculateActivationRangeQuantized for an int8 output."""
    if act == 0:
        return -128, 127
    if act == 1:
        return max(-128, _quantize_limit(0.0, scale, zp)), 127
    if act == 3:
        return max(-128, _quantize_limit(0.0, scale, zp)), min(127, _quantize_limit(6.0, scale, zp))
    if act == 2:
        return max(-128, _quantize_limit(-1.0, scale, zp)), min(127, _quantize_limit(1.0, scale, zp))
    raise TFLiteError("%s: fused activation %s is not supported (NONE, RELU, RELU6, "
                      "RELU_N1_TO_1 are)" % (name, _ACTIVATIONS.get(act, "code %d" % act)))


def _split(q_fixed, shift, where):
    if q_fixed == 0:
        raise TFLiteError("%s: requantisation multiplier is 0 (a zero scale, or below 2**-31)"
                          % where)
    if shift < -29:
        raise TFLiteError("%s: requantisation multiplier 2**%d is below what a front end "
                          "supports (2**-30)" % (where, shift - 1))
    rest = q_fixed - (1 << 30)
    return (rest >> 15, rest & 0x7FFF), shift


def _act_tensor(model, index, name, what):
    """(tensor, scale, zero point) of an int8 per-tensor-quantised activation."""
    t = model.subgraphs[0].tensors[index]
    tname = "%s: %s tensor '%s'" % (name, what, tg.tensor_name(t))
    if t.type != tg.INT8:
        raise TFLiteError("%s is %s; a front end is an int8 model (quantise it fully, with "
                          "int8 inputs and outputs)" % (tname, tg.type_name(t.type)))
    scales, zps = tg.quant(t)
    if scales is None:
        raise TFLiteError("%s has no quantisation parameters" % tname)
    if len(scales) != 1:
        raise TFLiteError("%s is quantised per channel; activations need one scale" % tname)
    if not scales[0] > 0:
        raise TFLiteError("%s has scale %r" % (tname, scales[0]))
    if not -128 <= zps[0] <= 127:
        raise TFLiteError("%s has zero point %d; an int8 tensor's is -128..127"
                          % (tname, zps[0]))
    return t, scales[0], zps[0]


def _width(t, name, what):
    shape = list(t.shape if t.shape is not None else [])
    if len(shape) == 2 and shape[0] == 1:
        return int(shape[1])
    if len(shape) == 1:
        return int(shape[0])
    raise TFLiteError("%s: %s tensor '%s' has shape %s; a front end takes [1, n] or [n]"
                      % (name, what, tg.tensor_name(t), shape))


def convert(blob, name="model.tflite"):
    """(.ffe bytes, description dict) for a .tflite model; TFLiteError names a refusal."""
    model = tg.read_model(blob, name)
    sg = model.subgraphs[0]
    ops = sg.operators or []
    if not ops:
        raise TFLiteError("%s: the model has no operators" % name)
    for k, op in enumerate(ops):
        op_ = tg.op_name(model, op)
        if op_ not in SUPPORTED:
            raise TFLiteError("%s: operator %d is %s; a front end takes FULLY_CONNECTED and "
                              "RELU only" % (name, k, op_))
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise TFLiteError("%s: %d inputs and %d outputs; a front end has one of each"
                          % (name, len(sg.inputs), len(sg.outputs)))
    t_in, s_in, zp_in = _act_tensor(model, sg.inputs[0], name, "input")
    n_in = _width(t_in, name, "input")
    cur, s_cur, zp_cur, width = sg.inputs[0], s_in, zp_in, n_in
    stages, desc = [], []
    for k, op in enumerate(ops):
        op_ = tg.op_name(model, op)
        where = "%s: operator %d (%s)" % (name, k, op_)
        inputs = list(op.inputs)
        if not inputs or inputs[0] != cur:
            raise TFLiteError("%s does not take the previous operator's output; a front end "
                              "is a chain" % where)
        if len(op.outputs) != 1:
            raise TFLiteError("%s has %d outputs" % (where, len(op.outputs)))
        t_out, s_out, zp_out = _act_tensor(model, op.outputs[0], name, "output")
        n_out = _width(t_out, name, "output")
        if op_ == "FULLY_CONNECTED":
            st, d = _fc(model, op, where, width, s_cur, zp_cur, n_out, s_out, zp_out)
        else:
            if len(inputs) != 1:
                raise TFLiteError("%s has %d inputs" % (where, len(inputs)))
            if n_out != width:
                raise TFLiteError("%s: %d inputs, %d outputs" % (where, width, n_out))
            (m1, m0), shift = _split(*quantize_multiplier(s_cur / s_out), where)
            if not shift <= 19:
                raise TFLiteError("%s: input scale / output scale 2**%d is too large"
                                  % (where, shift))
            st = F.relu_stage(width, zp_cur, m1, m0, shift, zp_out, max(-128, zp_out), 127)
            d = {"op": "RELU", "n": width, "requantises": (s_cur, zp_cur) != (s_out, zp_out)}
        stages.append(st)
        desc.append(d)
        cur, s_cur, zp_cur, width = op.outputs[0], s_out, zp_out, n_out
    if cur != sg.outputs[0]:
        raise TFLiteError("%s: the last operator's output is not the model's output" % name)
    crc = zlib.crc32(bytes(blob)) & 0xFFFFFFFF
    data = F.encode(stages, n_in, crc, (_f32_bits(s_in), zp_in), (_f32_bits(s_cur), zp_cur))
    try:
        F.load(data, kernels=frontend_np)  # every check the board makes, here first
    except F.FrontendError as e:
        raise TFLiteError("%s: %s" % (name, e)) from None
    info = {"n_in": n_in, "n_out": width, "stages": desc, "tflite_crc32": "%08x" % crc,
            "input_scale": s_in, "input_zero_point": zp_in,
            "output_scale": s_cur, "output_zero_point": zp_cur}
    return data, info


def _fc(model, op, where, width, s_in, zp_in, n_out, s_out, zp_out):
    sg = model.subgraphs[0]
    inputs = list(op.inputs)
    if len(inputs) not in (2, 3):
        raise TFLiteError("%s has %d inputs" % (where, len(inputs)))
    opt = op.builtinOptions
    act = getattr(opt, "fusedActivationFunction", 0) if opt is not None else 0
    if opt is not None and getattr(opt, "weightsFormat", 0) != 0:
        raise TFLiteError("%s: shuffled weights are not supported" % where)
    wt = sg.tensors[inputs[1]]
    W = tg.const(model, inputs[1])
    if W is None:
        raise TFLiteError("%s: the weights are not a constant" % where)
    if wt.type != tg.INT8:
        raise TFLiteError("%s: weights are %s; a front end takes int8 weights"
                          % (where, tg.type_name(wt.type)))
    if W.ndim != 2 or W.shape != (n_out, width):
        raise TFLiteError("%s: weights of shape %s; [%d, %d] would chain"
                          % (where, list(W.shape), n_out, width))
    if width > F._N_IN_MAX:
        raise TFLiteError("%s: %d inputs; a front-end layer takes at most %d"
                          % (where, width, F._N_IN_MAX))
    ws, wzp = tg.quant(wt)
    if ws is None:
        raise TFLiteError("%s: the weights have no quantisation parameters" % where)
    if any(z != 0 for z in wzp):
        raise TFLiteError("%s: weight zero points %s; int8 weights are symmetric (0)"
                          % (where, sorted(set(wzp))))
    if len(ws) == 1:
        ws = ws * n_out
    elif len(ws) != n_out or (wt.quantization.quantizedDimension or 0) != 0:
        raise TFLiteError("%s: %d weight scales for %d outputs" % (where, len(ws), n_out))
    bias = np.zeros(n_out, dtype=np.int64)
    if len(inputs) == 3 and inputs[2] >= 0:
        bt = sg.tensors[inputs[2]]
        b = tg.const(model, inputs[2])
        if b is None or bt.type != tg.INT32 or b.shape != (n_out,):
            raise TFLiteError("%s: the bias must be a constant int32 [%d]" % (where, n_out))
        bs, _ = tg.quant(bt)
        for c in range(n_out):
            s_b = bs[c if len(bs) > 1 else 0] if bs else s_in * ws[c]
            # TFLite's own check (GetQuantizedConvolutionMultipler)
            if abs(s_in * ws[c] - s_b) / s_out > 0.02:
                raise TFLiteError("%s: bias scale %g is not input scale x weight scale %g"
                                  % (where, s_b, s_in * ws[c]))
        bias = b.astype(np.int64)
    lo, hi = activation_range(act, s_out, zp_out, where)
    mq, shifts = [], []
    for c in range(n_out):
        (m1, m0), shift = _split(*quantize_multiplier(s_in * ws[c] / s_out),
                                 "%s, output %d" % (where, c))
        mq.append((m1, m0))
        shifts.append(shift)
    W = W.astype(np.int64)
    bound = (510 * np.abs(W).sum(1) + np.abs(bias - (128 + zp_in) * W.sum(1)))
    bound = bound << np.maximum(np.array(shifts), 0)
    if bound.max() >= F._ACC_MAX:
        c = int(bound.argmax())
        raise TFLiteError("%s, output %d: the accumulator could reach %d, beyond the "
                          "2**28 a front end keeps to" % (where, c, int(bound[c])))
    st = F.fc_stage(width, n_out, W.tolist(), bias.tolist(), zp_in, mq, shifts, zp_out, lo, hi)
    d = {"op": "FULLY_CONNECTED", "n_in": width, "n_out": n_out,
         "activation": _ACTIVATIONS.get(act, str(act)),
         "per_channel": len(set(ws)) > 1, "clamp": [lo, hi]}
    return st, d


def import_file(model_path, out_path):
    """Convert model_path (.tflite) and write out_path (.ffe); returns the description."""
    from ffkit.files import write_atomic

    blob = Path(model_path).read_bytes()
    data, info = convert(blob, str(model_path))
    write_atomic(out_path, data)
    return {"model": str(model_path), "out": str(out_path), "bytes": len(data), **info}


def format_lines(res):
    lines = ["wrote   %s (%d bytes) from %s (crc32 %s)" % (res["out"], res["bytes"],
                                                          res["model"], res["tflite_crc32"])]
    for k, st in enumerate(res["stages"]):
        if st["op"] == "FULLY_CONNECTED":
            lines.append("stage %d FULLY_CONNECTED %d -> %d, activation %s%s"
                         % (k, st["n_in"], st["n_out"], st["activation"],
                            ", per-channel weights" if st["per_channel"] else ""))
        else:
            lines.append("stage %d RELU %d%s" % (k, st["n"],
                                                 " (requantises)" if st["requantises"] else ""))
    lines.append("inputs  %d int8 (scale %g, zero point %d); outputs %d features 0..255"
                 % (res["n_in"], res["input_scale"], res["input_zero_point"], res["n_out"]))
    lines.append("next    ffkit train --frontend %s ..." % res["out"])
    return lines


# ---- the host's use of a front end: data through it ------------------------------------------

def load(path):
    """A Frontend from a .ffe file with numpy kernels; FFKitError naming a refused file."""
    data = Path(path).read_bytes()
    try:
        return F.load(data, kernels=frontend_np)
    except F.FrontendError as e:
        raise TFLiteError("%s: refused: %s" % (path, e)) from None


def _f32_bits(x):
    """The bit pattern of x as an f32 (how a .ffe stores a scale: ffrt.frontend)."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def input_scale(fe):
    """(scale, zero point) of the front end's input tensor, from the .ffe's f32 bits."""
    _, bits, zp, _, _ = fe.meta
    return struct.unpack("<f", struct.pack("<I", bits))[0], zp


def quantize(fe, X):
    """Features (n, n_in) as the front end's inputs, offset-binary uint8 (q + 128)."""
    s_in, zp_in = input_scale(fe)
    q = np.round(np.asarray(X, dtype=np.float64) / np.float32(s_in)) + zp_in
    return (np.clip(q, -128, 127) + 128).astype(np.uint8)


def features(fe, U):
    """The front end's outputs (n, n_out), uint8 0..255, for inputs U (n, n_in) uint8:
    the same bits as fe.run on each row, computed for all rows at once."""
    x = np.asarray(U, dtype=np.int64)
    for st in fe.stages:
        if st[0] == F.KIND_FC:
            _, n_in, n_out, zo, lo, hi, w, bias, mq, sh, _out = st
            W = np.frombuffer(bytes(w), np.uint8).reshape(n_out, n_in).astype(np.int64) - 128
            acc = x @ W.T + np.array(bias, dtype=np.int64)
            q = np.array(mq, dtype=np.int64)
            x = np.clip(zo + frontend_np.mbqm(acc, q[0::2], q[1::2], np.array(sh)), lo, hi)
        else:
            _, n, _n, zo, lo, hi, off, m1, m0, shift, _out = st
            x = np.clip(zo + frontend_np.mbqm(x - off, m1, m0, shift), lo, hi)
    return x.astype(np.uint8)


def through(fe, data, name):
    """A copy of Dataset `data` whose features are the front end's outputs (0..255)."""
    from ffkit.data.datasets import Dataset

    return Dataset("%s via %s" % (data.name, name),
                   features(fe, quantize(fe, data.X_train)).astype(np.int64), data.y_train,
                   features(fe, quantize(fe, data.X_test)).astype(np.int64), data.y_test,
                   data.split)


def config_behind(cfg, fe):
    """cfg for FF layers behind the front end: its outputs are the features, 0..255."""
    from ffrt.model import Config

    return Config(**{**cfg.as_dict(), "n_features": fe.n_out, "in_max": 255, "in_scale": 1})
