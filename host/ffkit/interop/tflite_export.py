"""ffkit's one-pass inference path as an int8 TFLite model, built without TensorFlow.

The graph is `FFNet.predict_head` (firmware/ffrt/net.py) in standard TFLite int8 ops,
each of which LiteRT and TFLite Micro both run:

    features (int8)                    real value = the feature x; q = x * in_scale - 128
      -> FULLY_CONNECTED (+RELU)       layer 0: the feature columns of W0; the neutral label
                                       overlay is a constant, folded into the bias
      -> L2_NORMALIZATION              h / |h|, int8 with scale 1/128 (TFLite's fixed output)
      -> QUANTIZE                      to ffkit's normalised activities 0..255 (scale
                                       1/norm_target, zero point -128): min(255, 8 v)
      -> FULLY_CONNECTED (+RELU) ...   the next layer, and so on
      -> CONCATENATION                 the layers from goodness_from on (the head's input)
      -> QUANTIZE                      to int16 (the same values: zero point 0)
      -> FULLY_CONNECTED               the int16 head as per-channel int8 weights, 16x8
                                       (int16 in, int16 out) -> "scores" [1, n_classes]

The class is the argmax of the scores (ties: the lowest class, as in ffkit). ARG_MAX is
not in the graph: LiteRT's ARG_MAX takes no int16 input, and int8 scores (256 steps)
flipped close calls (HAPT: 0.996 agreement instead of 0.998).

The quantisation mapping, layer by layer:

- Activities uint8 0..255 are int8 with zero point -128 (q = h - 128), so int8 saturation
  at -128..127 is ffkit's clip to 0..255 and the ReLU costs nothing extra.
- Weights int8 (ffkit stores w + 128) are int8 with scale 1 and zero point 0, per tensor:
  TFLite's int32 accumulator is then ffkit's accumulator, exactly.
- act_shift s is the output scale: input scale x 2**s, so the requantisation multiplier is
  exactly 2**-s (0.5 in Q31 and a shift). TFLite rounds to nearest where ffkit shifts
  (floor); the bias carries `round_offset(s)` (-2**(s-1) - 1) so that TFLite Micro's
  rounding (a rounding doubling multiply, then a rounding shift) gives floor(acc / 2**s)
  for every acc: its layer outputs are ffkit's exactly, until the first normalisation.
  LiteRT rounds once (XNNPACK in float, to even), so there an output is one less where
  acc mod 2**s is 0 or 1 (no offset suits both). Negative results are clipped anyway.
- The input's scale is 1 / in_scale, so its real value is the feature itself.

Approximations (no exact TFLite op exists for these):

- Length normalisation. ffkit computes out = min(255, h * ((T << 16) // isqrt(g)) >> 16)
  with g = sum(h**2) and T = norm_target: one integer square root and one reciprocal.
  TFLite's L2_NORMALIZATION (int8) outputs round(128 h / |h|) with a fixed scale of 1/128,
  which QUANTIZE rescales to ffkit's T: 7 bits where ffkit keeps 8 (steps of T/128 = 8
  units instead of 1), rounded where ffkit floors. MUL and RSQRT could rebuild ffkit's
  formula, but the sum of squares would pass through an int8 tensor and lose more.
- The head's int16 weights (up to +-4095) become int8 per output class (scale = the
  row's largest |weight| / 127): about 7 bits of each row's range.
- The scores are int16; their scale comes from a bound that holds for every input (each
  normalised layer has length at most T, so |score_c| <= sum over layers of
  T * |head row c on that layer|), so they never saturate. Their real value is ffkit's
  score in its own units.

`ffkit tflite check` measures what these cost: the argmax of the scores against ffkit's
predict_head on a data set's held-out split (digits: every one of 450 equal).
"""

import json
import struct

import numpy as np

import ffrt
from ffrt import ffw_ram

from ffkit.interop import tflite_graph as tg

FORMAT = "ffkit-predict-head"
FORMAT_VERSION = 1
SCORE_QMAX = 32767


def round_offset(shift):
    """The bias term that turns TFLite's rounding of (acc + b) / 2**shift into a floor.

    TFLite requantises with a multiplier of 2**-shift as two roundings (half away from
    zero): a doubling high multiply by 0.5 (Q31) and a rounding shift by shift - 1. With
    b = -2**(shift-1) - 1, for acc = q * 2**shift + r (0 <= r < 2**shift, q >= 0) the first
    rounding gives q * 2**(shift-1) - 2**(shift-2) + floor(r / 2) (when shift >= 2), and
    the second turns that into exactly q. For shift 0 and 1 (multipliers 1 and 1/2) see
    the code. tests/test_tflite.py checks it against both runtimes for every acc in range.
    """
    if shift == 0:
        return 0
    if shift == 1:  # SRDHM(acc - 1, 0.5) = round-half-away((acc - 1) / 2) = floor(acc / 2)
        return -1
    return -(1 << (shift - 1)) - 1


def _f32(v):
    return float(np.float32(v))


def _weights(net, l):
    cfg = net.cfg
    n_in = net.n_in[l]
    return np.frombuffer(bytes(net.weights[l]), dtype=np.uint8).reshape(
        cfg.layers[l], n_in).astype(np.int64) - 128


def _head(net):
    cfg = net.cfg
    return np.frombuffer(bytes(net.head), dtype=np.int16).astype(np.int64).reshape(
        cfg.n_classes, net.n_head)


def score_bound(net):
    """An upper bound of |score| over every input: sum over the head's layers of
    norm_target * |head row on that layer| (each normalised layer has length <= T)."""
    cfg = net.cfg
    wh = _head(net).astype(np.float64)
    b = np.zeros(cfg.n_classes)
    off = 0
    for l in range(cfg.goodness_from, len(cfg.layers)):
        n = cfg.layers[l]
        b += cfg.norm_target * np.sqrt((wh[:, off:off + n] ** 2).sum(1))
        off += n
    return float(b.max())


def export(net, weights_crc32=None):
    """The .tflite bytes of `net`'s predict_head path (see the module docstring).

    Its metadata "ffkit" (JSON) records what was exported: the .ffw's CRC (``ffw_crc32``,
    the file's own trailing CRC-32), its tensor section's (``weights_crc32``) and a SHA-256
    of the model's constant tensors as written (``weights_sha256``,
    ffkit.interop.tflite_graph.weights_sha256), which ``ffkit tflite check`` verifies."""
    cfg = net.cfg
    if cfg.recurrent:  # its first layer also reads the previous window's activities
        raise tg.TFLiteError("a recurrent model carries a state from one sample to the next; "
                             "the export takes feed-forward models only")
    nf, nc = cfg.n_features, cfg.n_classes
    T = cfg.norm_target
    shape = "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers))
    g = tg.Graph("ffkit %s: one-pass inference (FFNet.predict_head) of a %s integer "
                 "Forward-Forward net, int8" % (ffrt.__version__, shape))
    s_in = _f32(1.0 / cfg.in_scale)
    x = g.tensor("features", [1, nf], tg.INT8, scale=s_in, zero_point=-128)
    s_nv = _f32(1.0 / T)
    inp, s_inp = x, s_in
    nvs = []
    for l, n_out in enumerate(cfg.layers):
        W = _weights(net, l)
        bias = np.full(n_out, round_offset(cfg.act_shift[l]), dtype=np.int64)
        if l == 0:  # the neutral label overlay is constant: its products join the bias
            neutral = cfg.label_value // nc
            bias += W[:, nf:].sum(1) * neutral
            W = W[:, :nf]
        w = g.tensor("layer%d/weights" % l, W.shape, tg.INT8, scale=1.0, zero_point=0,
                     data=W)
        b = g.tensor("layer%d/bias" % l, [n_out], tg.INT32, scale=s_inp, zero_point=0,
                     data=bias)
        s_h = _f32(s_inp * 2.0 ** cfg.act_shift[l])  # exact: a power of two times s_inp
        h = g.tensor("layer%d/relu" % l, [1, n_out], tg.INT8, scale=s_h, zero_point=-128)
        g.fully_connected(inp, w, b, h, relu=True)
        u = g.tensor("layer%d/l2norm" % l, [1, n_out], tg.INT8, scale=1.0 / 128,
                     zero_point=0)
        g.l2_normalization(h, u)
        nv = g.tensor("layer%d/normalised" % l, [1, n_out], tg.INT8, scale=s_nv,
                      zero_point=-128)
        g.quantize(u, nv)
        nvs.append(nv)
        inp, s_inp = nv, s_nv
    head_in = nvs[cfg.goodness_from:]
    if len(head_in) == 1:
        a = head_in[0]
    else:
        a = g.tensor("head/input", [1, net.n_head], tg.INT8, scale=s_nv, zero_point=-128)
        g.concatenation(head_in, a, axis=1)
    a16 = g.tensor("head/input16", [1, net.n_head], tg.INT16, scale=s_nv, zero_point=0)
    g.quantize(a, a16)  # int16 (value = nv, exactly): the head runs 16x8, scores in int16
    WH = _head(net)
    row_max = np.abs(WH).max(1)
    # real weight = head weight * T, so that the real score is ffkit's score
    w_scales = [_f32(T * m / 127.0) if m else _f32(T / 127.0) for m in row_max]
    q = np.round(WH * 127.0 / np.maximum(row_max, 1)[:, None]).astype(np.int64)
    wh = g.tensor("head/weights", WH.shape, tg.INT8, scale=w_scales, zero_point=0, data=q,
                  axis=0)
    s_score = _f32(score_bound(net) / SCORE_QMAX) or 1.0
    scores = g.tensor("scores", [1, nc], tg.INT16, scale=s_score, zero_point=0)
    g.fully_connected(a16, wh, None, scores)
    if weights_crc32 is None:
        weights_crc32 = ffw_ram.weights_crc32(net)
    ffw_crc32 = struct.unpack("<I", bytes(ffw_ram.encode(net))[-4:])[0]
    g.metadata.append(("ffkit", json.dumps({
        "format": FORMAT, "version": FORMAT_VERSION, "ffkit": ffrt.__version__,
        "shape": shape, "n_features": nf, "n_classes": nc, "in_max": cfg.in_max,
        "in_scale": cfg.in_scale, "weights_crc32": "%08x" % weights_crc32,
        "ffw_crc32": "%08x" % ffw_crc32, "weights_sha256": g.weights_sha256(),
        "score_scale": s_score, "outputs": ["scores"],
    }, sort_keys=True).encode()))
    return g.finish([x], [scores])


def quantize_features(X, in_scale):
    """Features (n, n_features) as the model's int8 input: x * in_scale - 128."""
    return (np.asarray(X, dtype=np.int64) * in_scale - 128).astype(np.int8)
