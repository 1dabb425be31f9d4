"""TFLite flatbuffers without TensorFlow: a small graph builder and a checking reader.

Both sit on the LiteRT schema's generated Python object API
(``ai_edge_litert.schema_py_generated``: ModelT, SubGraphT, OperatorT, TensorT, ...) and
``flatbuffers.Builder``; ``ffkit tflite export`` writes its models with `Graph`, the tests
build their own small models with it, and every ``.tflite`` that ffkit reads goes through
`read_model`, which names what is wrong with a file before any runtime sees it.

>>> import numpy as np
>>> g = Graph("two inputs, one weight")
>>> x = g.tensor("x", [1, 2], INT8, scale=0.5, zero_point=0)
>>> w = g.tensor("w", [1, 2], INT8, scale=1.0, zero_point=0, data=np.array([[3, -1]]))
>>> y = g.tensor("y", [1, 1], INT8, scale=1.0, zero_point=0)
>>> g.fully_connected(x, w, None, y)
>>> m = read_model(g.finish([x], [y]), "doc.tflite")
>>> [op_name(m, op) for op in m.subgraphs[0].operators]
['FULLY_CONNECTED']
>>> read_model(b"TFL3", "bad.tflite")
Traceback (most recent call last):
...
ffkit.interop.tflite_graph.TFLiteError: bad.tflite: not a TFLite model: 4 bytes, too short for a flatbuffer
"""

import struct

import flatbuffers
import numpy as np

from ffkit import FFKitError

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # the schema comes with ai-edge-litert (requirements.txt pins it)
    schema = None

INT8 = 9
INT16 = 7
INT32 = 2
FLOAT32 = 0
_NUMPY = {INT8: np.int8, INT16: np.int16, INT32: np.int32, FLOAT32: np.float32,
          3: np.uint8, 4: np.int64}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
               6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64"}
FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
_ALIGN = 16  # constant buffers start on 16 bytes, as the TFLite converter writes them


class TFLiteError(FFKitError, ValueError):
    """A .tflite file ffkit cannot use; the message names the file and the problem."""


def _schema():
    if schema is None:
        raise FFKitError("ffkit tflite needs the LiteRT schema: pip install ai-edge-litert "
                         "(requirements.txt pins the tested version)")
    return schema


def type_name(t):
    """'int8', 'float32', ... for a TensorType code."""
    return _TYPE_NAMES.get(t, "type %d" % t)


def builtin_names():
    """{BuiltinOperator code: name} from the schema."""
    s = _schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}


def _builtin(name):
    return getattr(_schema().BuiltinOperator, name)


class Graph:
    """One subgraph built tensor by tensor and op by op, packed by `finish`.

    Constant tensors get their own buffer (numpy data, stored little-endian); buffer 0 is
    the empty one that every activation tensor points at, as the schema asks.
    """

    def __init__(self, description=""):
        s = _schema()
        self.s = s
        self.description = description
        self.tensors = []
        self.buffers = [s.BufferT()]
        self.ops = []
        self.codes = []            # builtin codes in the order first used
        self.metadata = []         # (name, bytes)

    def tensor(self, name, shape, dtype, scale=None, zero_point=None, data=None, axis=None):
        """Add a tensor; returns its index. scale/zero_point: a number (per tensor) or a
        sequence (per channel along `axis`); data: a constant's values."""
        s = self.s
        t = s.TensorT()
        t.name = name
        t.shape = list(int(d) for d in shape)
        t.type = dtype
        t.buffer = 0
        if scale is not None:
            q = s.QuantizationParametersT()
            scales = [float(v) for v in np.atleast_1d(scale)]
            zps = [int(v) for v in np.atleast_1d(zero_point if zero_point is not None else 0)]
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            q.scale = scales
            q.zeroPoint = zps
            q.quantizedDimension = 0 if axis is None else int(axis)
            t.quantization = q
        if data is not None:
            arr = np.asarray(data).astype(_NUMPY[dtype]).reshape(-1)
            if arr.size != int(np.prod(t.shape)):
                raise ValueError("%s: %d values for shape %s" % (name, arr.size, t.shape))
            b = _AlignedBuffer()
            b.data = np.frombuffer(arr.astype(arr.dtype.newbyteorder("<")).tobytes(),
                                   dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name, inputs, outputs, options=None, options_type=None):
        """Add a builtin op by its schema name ('FULLY_CONNECTED', ...); -1 = no input."""
        s = self.s
        code = _builtin(name)
        if code not in self.codes:
            self.codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex = self.codes.index(code)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            o.builtinOptionsType = options_type
            o.builtinOptions = options
        self.ops.append(o)

    # the ops ffkit writes, with their options ---------------------------------------------

    def fully_connected(self, x, w, b, y, relu=False):
        s = self.s
        opt = s.FullyConnectedOptionsT()
        opt.fusedActivationFunction = (s.ActivationFunctionType.RELU if relu
                                       else s.ActivationFunctionType.NONE)
        self.op("FULLY_CONNECTED", [x, w, -1 if b is None else b], [y], opt,
                s.BuiltinOptions.FullyConnectedOptions)

    def l2_normalization(self, x, y):
        s = self.s
        self.op("L2_NORMALIZATION", [x], [y], s.L2NormOptionsT(), s.BuiltinOptions.L2NormOptions)

    def quantize(self, x, y):
        s = self.s
        self.op("QUANTIZE", [x], [y], s.QuantizeOptionsT(), s.BuiltinOptions.QuantizeOptions)

    def concatenation(self, xs, y, axis):
        s = self.s
        opt = s.ConcatenationOptionsT()
        opt.axis = axis
        self.op("CONCATENATION", xs, [y], opt, s.BuiltinOptions.ConcatenationOptions)

    def relu(self, x, y):
        self.op("RELU", [x], [y])

    def weights_sha256(self):
        """SHA-256 (hex) of the constant tensors added so far, as `weights_sha256` computes
        it on the finished model."""
        return _weights_sha256(self.tensors, self.buffers)

    def finish(self, inputs, outputs):
        """The model as .tflite bytes (schema version 3, file identifier TFL3)."""
        s = self.s
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.operators = self.ops
        sg.name = "main"
        m = s.ModelT()
        m.version = SCHEMA_VERSION
        m.description = self.description
        codes = []
        for c in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)  # the int8 field old readers use
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        m.subgraphs = [sg]
        buffers = list(self.buffers)
        meta = []
        for name, blob in self.metadata:
            b = _AlignedBuffer()
            b.data = np.frombuffer(bytes(blob), dtype=np.uint8)
            buffers.append(b)
            md = s.MetadataT()
            md.name = name
            md.buffer = len(buffers) - 1
            meta.append(md)
        m.buffers = buffers
        m.metadata = meta or None
        fb = flatbuffers.Builder(1024)
        fb.Finish(m.Pack(fb), file_identifier=FILE_IDENTIFIER)
        return bytes(fb.Output())


if schema is not None:
    class _AlignedBuffer(schema.BufferT):
        """BufferT whose data vector starts on a 16-byte boundary."""

        def Pack(self, builder):
            data = None
            if self.data is not None:
                payload = bytes(self.data)
                builder.StartVector(1, len(payload), _ALIGN)
                builder.head = builder.head - len(payload)
                builder.Bytes[builder.head:builder.head + len(payload)] = payload
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            return schema.BufferEnd(builder)
else:  # pragma: no cover - without ai-edge-litert, Graph() raises first
    _AlignedBuffer = None


# ---- reading -------------------------------------------------------------------------------

def read_model(data, name="model"):
    """Parse .tflite bytes into a ModelT, or raise TFLiteError naming the problem.

    Checks what the runtimes would otherwise report obscurely (or not at all): the file
    identifier, that the flatbuffer parses inside the file's bytes, one subgraph, tensor
    and buffer indices in range, constant data as long as its tensor's shape says.
    """
    s = _schema()
    data = bytes(data)
    n = len(data)
    if n < 8:
        raise TFLiteError("%s: not a TFLite model: %d bytes, too short for a flatbuffer"
                          % (name, n))
    if data[4:8] != FILE_IDENTIFIER:
        raise TFLiteError("%s: not a TFLite model: bytes 4-7 are %r, a .tflite file has %r"
                          % (name, data[4:8], FILE_IDENTIFIER))
    root = struct.unpack_from("<I", data, 0)[0]
    if root + 4 > n:
        raise TFLiteError("%s: truncated or corrupt: the root table is at byte %d of a "
                          "%d-byte file" % (name, root, n))
    try:
        m = s.ModelT.InitFromObj(s.Model.GetRootAs(bytearray(data), 0))
    except (struct.error, IndexError, ValueError, TypeError, AttributeError,
            UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise TFLiteError("%s: truncated or corrupt flatbuffer (%d bytes): %s: %s"
                          % (name, n, type(e).__name__, e)) from None
    if m.version != SCHEMA_VERSION:
        raise TFLiteError("%s: schema version %d, ffkit reads version %d"
                          % (name, m.version, SCHEMA_VERSION))
    if not m.subgraphs or len(m.subgraphs) != 1:
        raise TFLiteError("%s: %d subgraphs, ffkit reads models with exactly one"
                          % (name, len(m.subgraphs or ())))
    sg = m.subgraphs[0]
    tensors = sg.tensors or []
    buffers = m.buffers or []
    nt = len(tensors)
    for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
        if idx is None or len(idx) == 0:
            raise TFLiteError("%s: the subgraph has no %ss" % (name, what))
        for i in idx:
            if not 0 <= i < nt:
                raise TFLiteError("%s: %s tensor %d does not exist (%d tensors)"
                                  % (name, what, i, nt))
    codes = m.operatorCodes or []
    for k, op in enumerate(sg.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise TFLiteError("%s: operator %d has opcode index %d of %d"
                              % (name, k, op.opcodeIndex, len(codes)))
        for i in list(op.inputs if op.inputs is not None else []) + \
                list(op.outputs if op.outputs is not None else []):
            if not -1 <= i < nt:
                raise TFLiteError("%s: operator %d (%s) refers to tensor %d of %d"
                                  % (name, k, op_name(m, op), i, nt))
    for i, t in enumerate(tensors):
        if not 0 <= t.buffer < max(len(buffers), 1):
            raise TFLiteError("%s: tensor %d (%s) refers to buffer %d of %d"
                              % (name, i, tensor_name(t), t.buffer, len(buffers)))
        d = buffers[t.buffer].data if buffers else None
        if d is not None and len(d) and t.type in _NUMPY:
            want = int(np.prod(t.shape if t.shape is not None else [])) * \
                np.dtype(_NUMPY[t.type]).itemsize
            if len(d) != want:
                raise TFLiteError("%s: tensor %d (%s) has %d bytes of data, its shape %s "
                                  "of %s needs %d" % (name, i, tensor_name(t), len(d),
                                                      list(t.shape), type_name(t.type), want))
    return m


def tensor_name(t):
    v = t.name
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v or "unnamed"


def op_name(model, op):
    """The builtin name of an operator ('FULLY_CONNECTED'), or 'CUSTOM(name)'."""
    oc = model.operatorCodes[op.opcodeIndex]
    code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
    if code == _builtin("CUSTOM"):
        c = oc.customCode
        if isinstance(c, bytes):
            c = c.decode("utf-8", "replace")
        return "CUSTOM(%s)" % c
    return builtin_names().get(code, "builtin op %d" % code)


def const(model, index):
    """A constant tensor's values as a numpy array of its shape, or None."""
    sg = model.subgraphs[0]
    t = sg.tensors[index]
    d = model.buffers[t.buffer].data
    if d is None or len(d) == 0:
        return None
    arr = np.frombuffer(bytes(np.asarray(d, dtype=np.uint8)),
                        dtype=np.dtype(_NUMPY[t.type]).newbyteorder("<"))
    return arr.reshape(list(t.shape)).astype(_NUMPY[t.type])


def quant(t):
    """(scales, zero_points) of a tensor as lists, or (None, None) without quantisation."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None, None
    zps = list(q.zeroPoint) if q.zeroPoint is not None else [0] * len(q.scale)
    return [float(v) for v in q.scale], [int(v) for v in zps]


WEIGHTS_DIGEST = b"ffkit weights sha256 v1"


def _weights_sha256(tensors, buffers):
    """SHA-256 (hex) of a subgraph's constant tensors: for each tensor with data, in tensor
    order, its index, type, shape, scales (as f32) and zero points, and its buffer's bytes.
    TFLite files carry no checksum; ffkit's export records this in its metadata and ``ffkit
    tflite check`` recomputes it, so a weight changed after export does not pass."""
    import hashlib

    h = hashlib.sha256(WEIGHTS_DIGEST)
    for i, t in enumerate(tensors):
        if not 0 <= t.buffer < len(buffers):
            continue
        d = buffers[t.buffer].data
        if d is None or len(d) == 0:
            continue
        data = bytes(np.asarray(d, dtype=np.uint8))
        shape = [int(v) for v in (t.shape if t.shape is not None else [])]
        scales, zps = quant(t)
        scales, zps = scales or [], zps or []
        h.update(struct.pack("<IBI%di" % len(shape), i, t.type, len(shape), *shape))
        h.update(struct.pack("<I%df" % len(scales), len(scales), *scales))
        h.update(struct.pack("<I%dq" % len(zps), len(zps), *zps))
        h.update(struct.pack("<I", len(data)))
        h.update(data)
    return h.hexdigest()


def weights_sha256(model):
    """The digest of `model`'s (a ModelT from read_model) constant tensors; see
    `Graph.weights_sha256`."""
    return _weights_sha256(model.subgraphs[0].tensors or [], model.buffers or [])


def metadata(model, name):
    """The bytes of the named metadata entry, or None."""
    for md in model.metadata or []:
        n = md.name.decode() if isinstance(md.name, bytes) else md.name
        if n == name and 0 <= md.buffer < len(model.buffers):
            d = model.buffers[md.buffer].data
            return bytes(np.asarray(d, dtype=np.uint8)) if d is not None else b""
    return None
