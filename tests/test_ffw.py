"""Tests for ffrt.ffw, the .ffw weight-file codec, and ffrt.crc32.

Round trips (small and digits-sized nets), the layout read back independently with struct,
every refusal named in a table of faults (each also checked to leave the target net byte for
byte as it was), the CRC fallback against zlib, and the same bytes from MicroPython.
"""

import io
import struct
import zlib

import pytest

from ffrt import ffw
from ffrt import ffw_write
from ffrt import ffw_ram
from ffrt.crc32_py import crc32 as crc32_py
from ffrt.ffw import FFWError
from ffrt.model import FIELDS, Config
from ffrt.net import FFNet

SMALL = dict(n_features=4, n_classes=3, in_max=15, in_scale=17, layers=(16, 16),
             theta=(2000, 2000), act_shift=(5, 5), lr_shift=22)
SAMPLES = (([15, 0, 0, 15], 0), ([0, 15, 15, 0], 1), ([15, 15, 0, 0], 2))


def small_net(steps=10, **over):
    net = FFNet(Config(**dict(SMALL, **over)))
    for _ in range(steps):
        for x, y in SAMPLES:
            net.learn_one(x, y)
    return net


def snapshot(net):
    """Everything load_into may write, as bytes (for byte-for-byte comparison)."""
    return ([bytes(w) for w in net.weights], [bytes(r) for r in net.rngs], bytes(net.head),
            bytes(net.rng), bytes(net.head_rng), net.step)


def reseal(buf):
    """Recompute the trailing CRC, so a deliberate edit reaches the check behind the CRC."""
    buf = bytearray(buf)
    struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])))
    return bytes(buf)


def state_offset(cfg):
    return ffw.file_size(cfg) - 4 - ffw._tensor_size(cfg) - ffw.STATE


# ---- round trips ---------------------------------------------------------------------------

def test_round_trip_small():
    net = small_net()
    data = ffw_ram.encode(net)
    assert len(data) == ffw.file_size(net.cfg) == 826
    other = ffw_ram.load(data)
    assert ffw_ram.encode(other) == data
    assert snapshot(other) == snapshot(net)
    assert other.cfg == net.cfg
    assert ([other.predict_one(x) for x, _ in SAMPLES] == [net.predict_one(x) for x, _ in SAMPLES]
            == [0, 1, 2])
    assert [other.predict_head(x) for x, _ in SAMPLES] == [net.predict_head(x) for x, _ in SAMPLES]
    # learning goes on identically from the loaded state
    for n in (net, other):
        n.learn_one([15, 0, 15, 0], 1)
    assert ffw_ram.encode(other) == ffw_ram.encode(net)


def test_load_into_replaces_state():
    net = small_net()
    target = small_net(steps=0)
    assert snapshot(target) != snapshot(net)
    ffw_ram.load_into(target, ffw_ram.encode(net))
    assert snapshot(target) == snapshot(net)


def test_round_trip_digits_shape():
    net = FFNet(Config())  # 74-128-128, 10 classes: the digits model
    x = [(7 * j) % 17 for j in range(64)]
    net.learn_one(x, 3)
    data = ffw_ram.encode(net)
    assert len(data) == 32138
    other = ffw_ram.load(data)
    assert ffw_ram.encode(other) == data
    assert snapshot(other) == snapshot(net)
    assert other.predict_head(x) == net.predict_head(x)
    assert list(other.goodness_per_label(x)) == list(net.goodness_per_label(x))


def test_inputs_as_memoryview_and_bytes_are_left_alone():
    net = small_net()
    data = bytes(ffw_ram.encode(net))
    kept = bytes(data)
    assert ffw_ram.encode(ffw_ram.load(memoryview(data))) == data
    ffw_ram.load_into(small_net(steps=0), memoryview(data))
    assert data == kept


def test_write_and_encode_into_give_the_same_bytes():
    net = small_net()
    data = ffw_ram.encode(net)
    f = io.BytesIO()
    assert ffw_write.write(net, f) == len(data)
    assert f.getvalue() == data
    buf = bytearray(len(data) + 7)
    assert ffw_ram.encode_into(net, buf) == len(data)
    assert buf[:len(data)] == data
    with pytest.raises(FFWError, match="size mismatch: the buffer holds"):
        ffw_ram.encode_into(net, bytearray(len(data) - 1))


# ---- the layout, read back with struct alone ---------------------------------------------

def test_layout_read_independently():
    net = small_net()
    cfg = net.cfg
    data = bytes(ffw_ram.encode(net))
    magic, version, length, dtypes, n_fields = struct.unpack_from("<4sHI3sB", data, 0)
    assert (magic, version, length, dtypes, n_fields) == (b"FFKW", 1, len(data), b"bHh",
                                                          len(FIELDS))
    off = 14
    for name, _ in FIELDS:
        v = getattr(cfg, name)
        if name == "layers":
            assert data[off] == len(v)
            assert struct.unpack_from("<%dH" % len(v), data, off + 1) == v
            off += 1 + 2 * len(v)
        elif isinstance(v, tuple):
            assert data[off] == len(v)
            assert struct.unpack_from("<%di" % len(v), data, off + 1) == v
            off += 1 + 4 * len(v)
        else:
            assert struct.unpack_from("<i", data, off)[0] == v, name
            off += 4
    assert off == state_offset(cfg)
    assert struct.unpack_from("<I4H", data, off) == (net.step, *net.rng, *net.head_rng)
    off += 12
    for l, (n_in, n_out) in enumerate(zip(cfg.layer_inputs(), cfg.layers)):
        w = struct.unpack_from("<%db" % (n_in * n_out), data, off)  # plain int8
        assert list(w) == [b - 128 for b in net.weights[l]]
        off += n_in * n_out
        assert struct.unpack_from("<%dH" % (2 * n_out), data, off) == tuple(net.rngs[l])
        off += 4 * n_out
    n_head = cfg.n_classes * cfg.head_inputs()
    assert struct.unpack_from("<%dh" % n_head, data, off) == tuple(net.head)
    assert any(net.head)
    off += 2 * n_head
    assert struct.unpack_from("<I", data, off)[0] == zlib.crc32(data[:off])
    assert off + 4 == len(data)


def test_weights_crc32_is_the_tensor_section():
    net = small_net()
    data = bytes(ffw_ram.encode(net))
    start = state_offset(net.cfg) + 12
    assert ffw_ram.weights_crc32(net) == zlib.crc32(data[start:-4])
    net.learn_one([1, 2, 3, 4], 0)
    assert ffw_ram.weights_crc32(net) != zlib.crc32(data[start:-4])


def test_head_w_max_matches_the_kernels():
    from ffrt.kernels_ref import HEAD_W_MAX
    assert ffw._HEAD_W_MAX == HEAD_W_MAX


# ---- decode_config ----------------------------------------------------------------------

def test_decode_config_reads_the_header_alone():
    net = small_net()
    data = ffw_ram.encode(net)
    s = state_offset(net.cfg)
    assert ffw_ram.decode_config(data) == net.cfg
    assert ffw_ram.decode_config(data[:s]) == net.cfg
    with pytest.raises(FFWError, match="truncated: %d bytes, header says %d" % (s - 1, len(data))):
        ffw_ram.decode_config(data[:s - 1])
    with pytest.raises(FFWError, match="bad magic"):
        ffw_ram.decode_config(b"NOPE" + bytes(data[4:]))


@pytest.mark.parametrize("field, value, words", [
    ("lr", 99, "lr must be in 1..15"),
    ("seed", -1, "seed must be in"),
    ("neg_mode", 7, "neg_mode must be"),
    ("in_max", 300, "in_max * in_scale"),
])
def test_decode_config_names_an_out_of_range_field(field, value, words):
    net = small_net(steps=0)
    off = 14
    for name, _ in FIELDS:  # all fields before these are scalars or lists; find the offset
        if name == field:
            break
        v = getattr(net.cfg, name)
        off += 4 if not isinstance(v, tuple) else 1 + (2 if name == "layers" else 4) * len(v)
    data = bytearray(ffw_ram.encode(net))
    struct.pack_into("<i", data, off, value)
    data = reseal(data)
    before = snapshot(net)
    for f in (ffw_ram.decode_config, ffw_ram.load, lambda d: ffw_ram.load_into(net, d)):
        with pytest.raises(FFWError, match="bad model signature: .*" + words.replace("*", r"\*")):
            f(data)
    assert snapshot(net) == before


# ---- refusals: each named, each leaving the target net untouched --------------------------

def _good():
    return bytes(ffw_ram.encode(small_net()))


def _set(fmt, at, value, seal=True):
    """A good file with struct fmt written at offset `at` (a callable of cfg, or an int)."""
    def make():
        data = bytearray(_good())
        off = at(Config(**SMALL)) if callable(at) else at
        struct.pack_into(fmt, data, off, value)
        return reseal(data) if seal else bytes(data)
    return make


def _other(**over):
    return lambda: bytes(ffw_ram.encode(small_net(steps=1, **over)))


# offsets in a SMALL file (callables of a Config, for _set)
def _S(cfg):   # the state: step, rng, head_rng
    return state_offset(cfg)


def _W0(cfg):  # the first weight
    return _S(cfg) + 12


def _R0(cfg):  # layer 0's PRNG states
    return _W0(cfg) + cfg.n_in * cfg.layers[0]


def _H0(cfg):  # the head
    return ffw.file_size(cfg) - 4 - 2 * cfg.n_classes * cfg.head_inputs()


N = ffw.file_size(Config(**SMALL))  # 826; test_round_trip_small holds it

FAULTS = [
    ("empty", lambda: b"", "empty file"),
    ("magic", lambda: b"FFKX" + _good()[4:], "bad magic"),
    ("magic short", lambda: b"FX", "bad magic"),
    ("version", _set("<H", 4, 2, seal=False),
     r"unsupported format version 2 \(this reader knows 1\)"),
    ("version sealed", _set("<H", 4, 9), r"unsupported format version 9 \(this reader knows 1\)"),
    ("field count", _set("<B", 13, 19), "model signature differs: the file has 19 fields"),
    ("dtypes", _set("<3s", 10, b"bHi"), "model signature differs: dtypes"),
    ("layers", _other(layers=(16, 8), theta=(2000, 2000), act_shift=(5, 5)),
     r"model signature differs: layers is \(16, 8\) in the file, \(16, 16\) in the model"),
    ("theta", _other(theta=(2000, 2001)),
     r"model signature differs: theta is \(2000, 2001\) in the file, \(2000, 2000\) in the model"),
    ("lr", _other(lr=5), "model signature differs: lr is 5 in the file, 4 in the model"),
    ("seed", _other(seed=2), "model signature differs: seed is 2 in the file, 1 in the model"),
    ("pipeline", _other(pipeline=3), "model signature differs: pipeline is 3 in the file, 0 in"),
    ("n_classes", _other(n_classes=4), "model signature differs: n_classes is 4 in the file"),
    ("trailing byte", lambda: _good() + b"\0",
     "size mismatch: %d bytes, header says %d" % (N + 1, N)),
    ("length vs signature",  # header says N + 2, two bytes added, CRC recomputed
     lambda: reseal(_set("<I", 6, N + 2, seal=False)()[:-4] + bytes(6)),
     "size mismatch: the signature needs %d bytes, header says %d" % (N, N + 2)),
    ("tiny length", lambda: b"FFKW\x01\x00\x0c\x00\x00\x00" + b"\0\0",
     "size mismatch: header says 12 bytes, too few"),
    ("weight -128", _set("<b", _W0, -128), "value out of range: layer 0 weight 0 is -128"),
    ("head 4096", _set("<h", _H0, 4096), "value out of range: head weight 0 is 4096"),
    ("head -4096", _set("<h", _H0, -4096), "value out of range: head weight 0 is -4096"),
    ("unit rng zero", _set("<I", _R0, 0),
     "value out of range: layer 0 unit 0 PRNG state is zero"),
    ("rng zero", _set("<I", lambda c: _S(c) + 4, 0), "value out of range: rng state is zero"),
]


def _length_words(m):
    if m > N:
        return "truncated: %d bytes, header says %d" % (N, m)
    return "size mismatch: %d bytes, header says %d" % (N, m)


# one byte flipped anywhere: the header fields before the CRC'd part say what they are,
# everything after the length field is caught by the CRC
FLIPS = [
    (0, "bad magic"), (3, "bad magic"), (4, "unsupported format version"),
    (5, "unsupported format version"),
] + [(p, _length_words(N ^ (0x10 << 8 * (p - 6)))) for p in (6, 7, 9)
] + [(p, "CRC mismatch") for p in (
    10, 13, 14, 20, 60, _S(Config(**SMALL)), _S(Config(**SMALL)) + 5, _W0(Config(**SMALL)),
    _W0(Config(**SMALL)) + 33, _R0(Config(**SMALL)) - 1, _R0(Config(**SMALL)) + 3,
    _H0(Config(**SMALL)) - 1, _H0(Config(**SMALL)), N - 5, N - 4, N - 1)]
TRUNCATIONS = (1, 3, 4, 5, 9, 10, 13, 14, 40, _S(Config(**SMALL)) + 12, N // 2, N - 4, N - 1)


def _flip(pos):
    def make():
        data = bytearray(_good())
        data[pos] ^= 0x10
        return bytes(data)
    return make


def _cut(n):
    return lambda: _good()[:n]


def _cut_words(n):
    return ("truncated: %d bytes, the fixed header alone is 14" % n if n < 10
            else "truncated: %d bytes, header says %d" % (n, N))


ALL_FAULTS = (FAULTS
              + [("flip %d" % p, _flip(p), w) for p, w in FLIPS]
              + [("cut %d" % n, _cut(n), _cut_words(n)) for n in TRUNCATIONS])


@pytest.mark.parametrize("name, make, words", ALL_FAULTS, ids=[f[0] for f in ALL_FAULTS])
def test_fault_is_named_and_net_untouched(name, make, words):
    bad = make()
    target = small_net(steps=3)
    before = snapshot(target)
    cfg_before = target.cfg.as_dict()
    with pytest.raises(FFWError, match=words):
        ffw_ram.load_into(target, bad)
    assert snapshot(target) == before
    assert target.cfg.as_dict() == cfg_before
    if "in the model" not in words and "in the file" not in words:  # a file fault: load too
        with pytest.raises(FFWError, match=words):
            ffw_ram.load(bad)


def test_faults_are_value_errors():
    assert issubclass(FFWError, ValueError)


def test_step_beyond_u32_is_refused():
    net = small_net(steps=0)
    net.step = 1 << 32
    with pytest.raises(FFWError, match="step"):
        ffw_ram.encode(net)


# ---- CRC-32 -----------------------------------------------------------------------------

CRC_VECTORS = [  # (data, initial crc)
    (b"", 0), (b"a", 0), (b"123456789", 0), (bytes(range(256)) * 3, 0),
    (b"\xff" * 100, 0), (b"chained", 0xCBF43926), (b"x", 0xFFFFFFFF), (b"abc", 0x80000000),
]


@pytest.mark.parametrize("data, crc", CRC_VECTORS)
def test_crc32_fallback_matches_zlib(data, crc):
    assert crc32_py(data, crc) == zlib.crc32(data, crc) == ffw.crc32(data, crc)
    assert crc32_py(bytearray(data), crc) == crc32_py(memoryview(data), crc)


def test_crc32_fallback_chains():
    data = bytes((i * 37 + 11) & 0xFF for i in range(1000))
    assert crc32_py(data[600:], crc32_py(data[:600])) == zlib.crc32(data)


# ---- the same bytes in MicroPython -----------------------------------------------------------

_MPY_SCRIPT = """
import json, io, binascii
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt import ffw
from ffrt import ffw_write
from ffrt import ffw_ram
from ffrt.crc32_py import crc32 as crc32_py
net = FFNet(Config(**%(kw)r))
for _ in range(%(steps)d):
    for x, y in %(samples)r:
        net.learn_one(x, y)
data = ffw_ram.encode(net)
f = io.BytesIO()
ffw_write.write(net, f)
host = binascii.unhexlify(%(host_hex)r)
other = FFNet(Config(**%(kw)r))
ffw_ram.load_into(other, host)
bad = bytearray(host)
bad[len(bad) // 2] ^= 1
try:
    ffw_ram.load_into(other, bad)
    fault = None
except ffw.FFWError as e:
    fault = str(e)
print(json.dumps({
    "hex": binascii.hexlify(data).decode(),
    "write_same": f.getvalue() == data,
    "crc": ffw_ram.weights_crc32(net),
    "crc_py": crc32_py(data),
    "crc_c": ffw.crc32(data),
    "reencoded_hex": binascii.hexlify(ffw_ram.encode(other)).decode(),
    "fault": fault,
    "kernels": net.k.__name__,
}))
"""


@pytest.mark.device
@pytest.mark.parametrize("steps", [0, 2])
def test_micropython_writes_and_reads_the_same_bytes(micropython, steps):
    from ffkit.board import mpy

    kw = dict(SMALL, seed=7)
    host_net = FFNet(Config(**kw))
    for _ in range(steps):
        for x, y in SAMPLES:
            host_net.learn_one(x, y)
    host = bytes(ffw_ram.encode(host_net))
    # a different state to send the other way: one more step on the host
    sent = FFNet(Config(**kw))
    ffw_ram.load_into(sent, host)
    sent.learn_one([3, 1, 4, 1], 2)
    sent_bytes = bytes(ffw_ram.encode(sent))
    out = mpy.run_json(_MPY_SCRIPT % dict(kw=kw, steps=steps, samples=SAMPLES,
                                           host_hex=sent_bytes.hex()))
    board = bytes.fromhex(out["hex"])
    assert board == host
    assert out["write_same"]
    assert out["crc"] == ffw_ram.weights_crc32(host_net)
    assert out["crc_py"] == out["crc_c"] == zlib.crc32(board)
    assert bytes.fromhex(out["reencoded_hex"]) == sent_bytes
    assert out["fault"].startswith("CRC mismatch")
    assert ffw_ram.encode(ffw_ram.load(board)) == board


@pytest.mark.device
def test_micropython_without_binascii_crc32_uses_the_fallback(micropython):
    from ffkit.board import mpy

    script = (
        "import sys, json\n"
        "class NoCrc:\n    pass\n"
        "sys.modules['binascii'] = NoCrc()  # as on a port built without binascii.crc32\n"
        "from ffrt import crc32, ffw_ram\n"
        "from ffrt.model import Config\n"
        "from ffrt.net import FFNet\n"
        "net = FFNet(Config(**%r))\n"
        "data = ffw_ram.encode(net)\n"
        "from ffrt import crc32_py\n"
        "print(json.dumps([crc32.crc32 is crc32_py.crc32, ffw_ram.encode(ffw_ram.load(data)) == data,"
        " crc32.crc32(data)]))\n" % SMALL)
    fallback, round_trip, crc = mpy.run_json(script)
    assert fallback and round_trip
    assert crc == zlib.crc32(bytes(ffw_ram.encode(FFNet(Config(**SMALL)))))


# ---- files of the first release (21 signature fields) --------------------------------------

def _drop_last_fields(data, k):
    """The file as a reader with k fewer fields would have written it: the signature's
    last k (scalar) fields cut, the count, length and CRC set to match."""
    data = bytes(data)
    n_fields = data[13]
    cut = 4 * k  # the fields appended after the first release are scalars (i32)
    off = state_offset(ffw_ram.decode_config(data))
    body = bytearray(data[:off - cut] + data[off:-4])
    body[13] = n_fields - k
    struct.pack_into("<I", body, 6, len(body) + 4)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_a_first_release_file_loads_with_the_new_fields_at_their_defaults():
    net = small_net()
    for _ in range(3):
        net.learn_one([1, 2, 3, 4], 1)
    old = _drop_last_fields(ffw_ram.encode(net), len(FIELDS) - 21)
    assert old[13] == 21 and len(old) == len(ffw_ram.encode(net)) - 4 * (len(FIELDS) - 21)
    back = ffw_ram.load(old)
    assert back.cfg == net.cfg and back.cfg.recurrent == 0
    assert back.weights == net.weights and back.head == net.head and back.step == net.step
    f = io.BytesIO(old)
    assert ffw.check_stream(f, net.cfg) == (net.cfg, len(old))
    # written again, it carries every field (and so equals the new file)
    assert bytes(ffw_ram.encode(back)) == bytes(ffw_ram.encode(net))
    assert ffw.signature_config(old[13:state_offset(net.cfg) - 4 * (len(FIELDS) - 21)]) == net.cfg


def test_too_few_or_too_many_fields_are_refused_by_count():
    net = small_net()
    data = ffw_ram.encode(net)
    for k in (20, len(FIELDS) + 1):
        bad = bytearray(data)
        bad[13] = k
        struct.pack_into("<I", bad, len(bad) - 4, zlib.crc32(bytes(bad[:-4])))
        with pytest.raises(FFWError, match="the file has %d fields, this reader knows %d"
                           % (k, len(FIELDS))):
            ffw_ram.load(bytes(bad))


def test_a_recurrent_model_round_trips():
    cfg = Config(**dict(SMALL, recurrent=1))
    assert cfg.layer_inputs() == (cfg.n_in + 16, 16)
    net = FFNet(cfg)
    net.learn_one([1, 2, 3, 4], 2)
    net.advance()
    data = ffw_ram.encode(net)
    back = ffw_ram.load(data)
    assert back.cfg == cfg and back.weights == net.weights
    with pytest.raises(FFWError, match="recurrent is 1 in the file, 0 in the model"):
        ffw_ram.load_into(FFNet(Config(**SMALL)), data)
