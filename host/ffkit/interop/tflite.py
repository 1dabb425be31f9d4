"""ffkit tflite: learned nets out to .tflite, and TFLite models in as frozen front ends.

    ffkit tflite export --weights models/digits.ffw -o digits.tflite
    ffkit tflite check --weights models/digits.ffw --model digits.tflite --dataset digits --json
    ffkit tflite import-frontend --model front.tflite -o front.ffe

``export`` writes the one-pass inference path (FFNet.predict_head) as an int8 .tflite built
without TensorFlow (ffkit.interop.tflite_export: the graph, the quantisation mapping and its
approximations). ``check`` runs that model in LiteRT (``ai_edge_litert``) and in TFLite
Micro (``tflite_micro``'s Python interpreter) on a data set's held-out split, and compares
every sample with ffkit's own predict_head: ``agreement`` (the fraction where the TFLite
class, the argmax of its scores, equals ffkit's), ``accuracy_tflite``, ``accuracy_ffkit``,
and ``max_score_diff`` (the largest |TFLite score - ffkit score| over samples and classes,
in ffkit's head-score units: the integer sum of head weight x normalised activity; also in
steps of the model's int16 output, ``max_score_diff_lsb``). ``import-frontend`` converts an
int8 model of FULLY_CONNECTED and RELU ops into a frozen ffrt front end (.ffe,
ffkit.interop.frontend_import) that runs on a board ahead of the FF layers; ``ffkit train
--frontend FRONT.ffe`` trains FF layers behind it.

A file that is not a TFLite model, a truncated one, and a model with an op ffkit does not
read are refused with a message that names the problem (exit 1). TFLite files carry no
checksum: ``export`` records a SHA-256 of the model's constant tensors (and the .ffw's
CRCs) in its metadata, and ``check`` refuses a model whose weights no longer match it
(exit 1); a model without that record (an older export) is checked with a note saying so
(``weights_digest``: "verified" or "absent").
"""

import contextlib
import json
import os
from pathlib import Path
import sys
import tempfile

import numpy as np

from ffkit import FFKitError, UsageError
from ffkit.interop import tflite_graph as tg

RUNTIMES = ("litert", "tflm")
# the ops ffkit's export writes; check compares only such models with ffkit
CHECK_OPS = ("FULLY_CONNECTED", "L2_NORMALIZATION", "QUANTIZE", "CONCATENATION")


# ---- runtimes ---------------------------------------------------------------------------------

class _LiteRT:
    """LiteRT's interpreter (ai_edge_litert). Not tflite_runtime, the package it replaces:
    its last release (2.14) does not import under numpy 2, and under numpy 1.26 it refuses
    the export's QUANTIZE node (issue 15)."""

    def __init__(self, blob):
        try:
            from ai_edge_litert.interpreter import Interpreter
            import ai_edge_litert
            self.backend = "ai_edge_litert %s" % ai_edge_litert.__version__
        except ImportError:
            raise FFKitError("no LiteRT runtime: pip install ai-edge-litert") from None
        try:
            with _without_delegate_banner():
                self.it = Interpreter(model_content=bytes(blob))
                self.it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise tg.TFLiteError("LiteRT refused the model: %s" % _first_line(e)) from None
        self.inp = self.it.get_input_details()[0]["index"]
        self.out = self.it.get_output_details()[0]["index"]

    def run(self, q):
        self.it.set_tensor(self.inp, q[None])
        self.it.invoke()
        return np.array(self.it.get_tensor(self.out)[0])


XNNPACK_BANNER = b"Created TensorFlow Lite XNNPACK delegate for CPU."


@contextlib.contextmanager
def _without_delegate_banner():
    """LiteRT's C++ side prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    on file descriptor 2 when it allocates tensors, into ffkit's output. XNNPACK stays on
    (it is what LiteRT runs on a PC: without it the digits export's scores moved by up to
    120 output steps on random inputs, so the figures would no longer be LiteRT's): fd 2
    goes to a temporary file meanwhile, and every other line is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                rest = [line for line in tmp.read().splitlines(keepends=True)
                        if XNNPACK_BANNER not in line]
                if rest:
                    sys.stderr.write(b"".join(rest).decode(errors="replace"))
                    sys.stderr.flush()
    finally:
        os.close(saved)


class _TFLM:
    """TFLite Micro's Python interpreter (tflite_micro.python.tflite_micro.runtime)."""

    def __init__(self, blob):
        try:
            from tflite_micro.python.tflite_micro import runtime
            from tflite_micro.python.tflite_micro import _version
            self.backend = "tflite_micro %s" % getattr(_version, "__version__", "?")
        except ImportError:
            raise FFKitError("no TFLite Micro runtime: pip install tflite-micro") from None
        try:
            self.it = runtime.Interpreter.from_bytes(bytes(blob))
        except (ValueError, RuntimeError) as e:
            raise tg.TFLiteError("TFLite Micro refused the model: %s"
                                 % _first_line(e)) from None

    def run(self, q):
        self.it.set_input(q[None], 0)
        self.it.invoke()
        return np.array(self.it.get_output(0)[0])


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def open_runtime(name, blob):
    """An object with .run(int8 input row) -> output row, and .backend (its version)."""
    if name == "litert":
        return _LiteRT(blob)
    if name == "tflm":
        return _TFLM(blob)
    raise UsageError("unknown runtime %r (litert or tflm)" % name)


# ---- check ------------------------------------------------------------------------------------

def check_model(model, cfg, name):
    """Raise TFLiteError unless `model` (a ModelT) is an ffkit export for Config `cfg`."""
    sg = model.subgraphs[0]
    for k, op in enumerate(sg.operators or []):
        op_ = tg.op_name(model, op)
        if op_ not in CHECK_OPS:
            raise tg.TFLiteError(
                "%s: operator %d is %s, which ffkit tflite check does not support (an "
                "ffkit export uses %s)" % (name, k, op_, ", ".join(CHECK_OPS)))
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise tg.TFLiteError("%s: %d inputs and %d outputs; an ffkit export has one of each"
                             % (name, len(sg.inputs), len(sg.outputs)))
    t_in = sg.tensors[sg.inputs[0]]
    t_out = sg.tensors[sg.outputs[0]]
    want_in = [1, cfg.n_features]
    if t_in.type != tg.INT8 or list(t_in.shape) != want_in:
        raise tg.TFLiteError("%s: input is %s %s; the weights take int8 %s"
                             % (name, tg.type_name(t_in.type), list(t_in.shape), want_in))
    want_out = [1, cfg.n_classes]
    if t_out.type not in (tg.INT8, tg.INT16) or list(t_out.shape) != want_out:
        raise tg.TFLiteError("%s: output is %s %s; scores for these weights are int8/int16 %s"
                             % (name, tg.type_name(t_out.type), list(t_out.shape), want_out))
    for t in (t_in, t_out):
        if tg.quant(t)[0] is None:
            raise tg.TFLiteError("%s: tensor %s has no quantisation parameters"
                                 % (name, tg.tensor_name(t)))


def ffkit_scores(net, X):
    """(classes, scores) of net.predict_head for every row of X."""
    classes = np.zeros(len(X), dtype=np.int64)
    scores = np.zeros((len(X), net.cfg.n_classes), dtype=np.int64)
    for i, row in enumerate(np.asarray(X).tolist()):
        classes[i] = net.predict_head(row)
        scores[i] = list(net._scores)
    return classes, scores


def check(net, blob, X, y, runtimes=RUNTIMES, name="model.tflite"):
    """Run the .tflite `blob` in each runtime on X and compare with ffkit (module doc)."""
    from ffkit.interop.tflite_export import quantize_features
    from ffrt import ffw_ram

    model = tg.read_model(blob, name)
    cfg = net.cfg
    check_model(model, cfg, name)
    meta = _export_meta(model, name)
    digest = verify_weights(model, meta, name)
    sg = model.subgraphs[0]
    out_scale, out_zp = tg.quant(sg.tensors[sg.outputs[0]])
    if len(out_scale) != 1:
        raise tg.TFLiteError("%s: the output is quantised per channel; scores need one scale"
                             % name)
    y = np.asarray(y)
    ref_cls, ref_scores = ffkit_scores(net, X)
    Q = quantize_features(X, cfg.in_scale)
    result = {
        "n_test": int(len(y)),
        "accuracy_ffkit": float((ref_cls == y).mean()),
        "score_units": "ffkit head-score units (sum of int16 head weight x normalised "
                       "activity 0..255)",
        "score_lsb": out_scale[0],
        "max_abs_score_ffkit": int(np.abs(ref_scores).max()) if len(y) else 0,
        "weights_crc32": "%08x" % ffw_ram.weights_crc32(net),
        "exported_from_crc32": meta.get("weights_crc32"),
        "exported_from_ffw_crc32": meta.get("ffw_crc32"),
        "weights_digest": digest,
        "runtimes": {},
    }
    for rt in runtimes:
        r = open_runtime(rt, blob)
        out = np.stack([r.run(q) for q in Q]).astype(np.int64)
        scores = (out - out_zp[0]) * out_scale[0]
        cls = np.argmax(out, axis=1)  # ties: the lowest class, as ffkit's predict_head
        diff = float(np.abs(scores - ref_scores).max()) if len(y) else 0.0
        result["runtimes"][rt] = {
            "backend": r.backend,
            "agreement": float((cls == ref_cls).mean()),
            "disagreements": int((cls != ref_cls).sum()),
            "accuracy_tflite": float((cls == y).mean()),
            "accuracy_ffkit": result["accuracy_ffkit"],
            "max_score_diff": round(diff, 1),
            "max_score_diff_lsb": round(diff / out_scale[0], 2),
        }
    return result


def _export_meta(model, name):
    """The "ffkit" metadata of an export (a dict; {} when there is none)."""
    raw = tg.metadata(model, "ffkit")
    if raw is None:
        return {}
    try:
        meta = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict):
        raise tg.TFLiteError("%s: its ffkit metadata is damaged (not a JSON object): the file "
                             "was changed after export" % name)
    return meta


def verify_weights(model, meta, name):
    """"verified" when the model's constant tensors are the ones its export recorded
    (metadata weights_sha256), "absent" when it records none (an export by an ffkit before
    the digest, or not an ffkit export); TFLiteError when they differ."""
    want = meta.get("weights_sha256")
    if want is None:
        return "absent"
    got = tg.weights_sha256(model)
    if got != want:
        raise tg.TFLiteError(
            "%s: its weights were changed after export: the export recorded weights_sha256 "
            "%s, its constant tensors now give %s (a .tflite carries no checksum of its own; "
            "export it again: ffkit tflite export)" % (name, want, got))
    return "verified"


# ---- the CLI ----------------------------------------------------------------------------------

def add_arguments(parser):
    sub = parser.add_subparsers(dest="tflite_cmd", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("export", help="write a .ffw's predict_head path as an int8 .tflite",
                       description="Write the one-pass inference path (predict_head) of a "
                                   ".ffw as an int8 .tflite model (ffkit.interop.tflite_export).")
    p.add_argument("--weights", metavar="W.ffw", type=Path, required=True)
    p.add_argument("-o", "--out", metavar="M.tflite", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = sub.add_parser("check", help="run a .tflite in LiteRT and TFLite Micro against ffkit",
                       description="Run an exported model in LiteRT and TFLite Micro on a "
                                   "data set's held-out split and compare with ffkit's "
                                   "predict_head: agreement, accuracies, largest score "
                                   "difference (head-score units).")
    p.add_argument("--weights", metavar="W.ffw", type=Path, required=True)
    p.add_argument("--model", metavar="M.tflite", type=Path, required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--dataset", metavar="NAME", help="digits or hapt (the test split)")
    g.add_argument("--data", metavar="FILE.npz", type=Path,
                   help="integer X/y (and X_test/y_test); the test split is used")
    p.add_argument("--runtime", choices=RUNTIMES + ("both",), default="both",
                   help="litert, tflm or both (default)")
    p.add_argument("--limit", type=int, metavar="N", help="the first N test samples only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = sub.add_parser("import-frontend",
                       help="an int8 FULLY_CONNECTED/RELU .tflite as an ffrt front end (.ffe)",
                       description="Convert an int8 model made of FULLY_CONNECTED and RELU "
                                   "ops into a frozen ffrt front end (.ffe) that runs on a "
                                   "board ahead of the FF layers, bit for bit as TFLite "
                                   "Micro computes it (ffkit.interop.frontend_import).")
    p.add_argument("--model", metavar="F.tflite", type=Path, required=True)
    p.add_argument("-o", "--out", metavar="FRONT.ffe", type=Path,
                   help="file to write (default: the model's path with .ffe)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args):
    return {"export": _cmd_export, "check": _cmd_check,
            "import-frontend": _cmd_import_frontend}[args.tflite_cmd](args)


def _emit(args, result, lines):
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))


def _cmd_export(args):
    from ffkit.files import write_atomic
    from ffkit.interop.tflite_export import export
    from ffkit.weights import load_weights
    from ffrt import ffw_ram

    net = load_weights(args.weights)
    blob = export(net)
    write_atomic(args.out, blob)
    model = tg.read_model(blob, str(args.out))
    ops = [tg.op_name(model, op) for op in model.subgraphs[0].operators]
    cfg = net.cfg
    result = {"weights": str(args.weights), "out": str(args.out), "bytes": len(blob),
              "shape": "-".join(str(n) for n in (cfg.n_in,) + tuple(cfg.layers)),
              "weights_crc32": "%08x" % ffw_ram.weights_crc32(net), "ops": ops}
    _emit(args, result, [
        "wrote   %s (%d bytes, int8; head 16x8, int16 scores)" % (args.out, len(blob)),
        "model   %s from %s (weights crc32 %s)" % (result["shape"], args.weights,
                                                   result["weights_crc32"]),
        "ops     %s" % " -> ".join(ops),
        "next    ffkit tflite check --weights %s --model %s --dataset NAME"
        % (args.weights, args.out),
    ])
    return 0


def _cmd_check(args):
    from ffkit.data import datasets
    from ffkit.weights import load_weights

    net = load_weights(args.weights)
    data = datasets.load_npz(args.data) if args.data is not None else \
        datasets.load(args.dataset)
    data.check_model(net.cfg)
    X, y = data.X_test, data.y_test
    if args.limit is not None:
        if args.limit < 1:
            raise UsageError("--limit must be at least 1")
        X, y = X[:args.limit], y[:args.limit]
    runtimes = RUNTIMES if args.runtime == "both" else (args.runtime,)
    blob = args.model.read_bytes()
    res = check(net, blob, X, y, runtimes, name=str(args.model))
    res = {"weights": str(args.weights), "model": str(args.model), "dataset": data.name,
           "split": data.split, **res}
    lines = ["%s on %s (%s test samples, %s)" % (args.model, data.name, res["n_test"],
                                                 data.split),
             "ffkit predict_head accuracy %.4f; its largest |score| %d head-score units"
             % (res["accuracy_ffkit"], res["max_abs_score_ffkit"])]
    if res["weights_digest"] == "absent":
        lines.append("note: %s carries no weight digest (an export by an older ffkit): a "
                     "weight changed after its export cannot be detected; export it again "
                     "to add one" % args.model)
    if res["exported_from_crc32"] not in (None, res["weights_crc32"]):
        lines.append("note: the model was exported from weights crc32 %s, %s has %s"
                     % (res["exported_from_crc32"], args.weights, res["weights_crc32"]))
    for rt, r in res["runtimes"].items():
        lines.append("%-6s (%s): agreement %.4f (%d differ), accuracy %.4f, largest score "
                     "difference %.0f head-score units (%.2f output steps)"
                     % (rt, r["backend"], r["agreement"], r["disagreements"],
                        r["accuracy_tflite"], r["max_score_diff"], r["max_score_diff_lsb"]))
    _emit(args, res, lines)
    return 0


def _cmd_import_frontend(args):
    from ffkit.interop import frontend_import

    out = args.out if args.out is not None else args.model.with_suffix(".ffe")
    res = frontend_import.import_file(args.model, out)
    _emit(args, res, frontend_import.format_lines(res))
    return 0
