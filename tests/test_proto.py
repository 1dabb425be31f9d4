"""Tests for ffrt.proto: COBS, frames, the Decoder's statuses, in CPython and MicroPython.

Named tables of vectors: COBS encodings (the published examples, delimiter included) and
whole frames pinned as wire bytes, each decoded whole and again byte by byte; then every
Decoder status, the Encoder's buffers against encode_frame, and the same tables run in the
MicroPython unix port.
"""

import json
import struct
import zlib

import pytest

from ffkit.board import mpy
from ffrt import proto as P
from ffrt import proto_host

# name -> (raw bytes, COBS encoding with the 0x00 delimiter): the examples on Wikipedia's
# "Consistent Overhead Byte Stuffing" page and the block-boundary cases around 254 bytes.
# Where a packet ends right after a full 254-byte block, proto's encoder closes it with an
# empty block (0x01) that canonical COBS leaves out: one byte longer, decoded the same
# (test_decoder_accepts_canonical_cobs holds that).
COBS = {
    "zero": (b"\x00", b"\x01\x01\x00"),
    "two zeros": (b"\x00\x00", b"\x01\x01\x01\x00"),
    "zero-11-zero": (b"\x00\x11\x00", b"\x01\x02\x11\x01\x00"),
    "zero inside": (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33\x00"),
    "no zero": (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44\x00"),
    "trailing zeros": (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01\x00"),
    "254 non-zero": (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01\x00"),
    "zero then 254": (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255)) + b"\x01\x00"),
    "255 non-zero": (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff\x00"),
    "254 then zero": (bytes(range(2, 256)) + b"\x00",
                      b"\xff" + bytes(range(2, 256)) + b"\x01\x01\x00"),
    "253, zero, one": (bytes(range(3, 256)) + b"\x00\x01",
                       b"\xfe" + bytes(range(3, 256)) + b"\x02\x01\x00"),
}

# name -> (type, seq, body, wire bytes): pinned, so neither side's codec can drift
FRAMES = {
    "hello": (P.HELLO, 7, b"", "0701071db6a6c600"),
    "learn": (P.LEARN, 1, b"\x03\x00\x00\x01\x00\xff\xff", "0404010301020107ffff3b2a3d4000"),
    "error": (P.ERROR, 255, b"\x05bad", "0b7fff05626164e0c966cb00"),
    "zeros": (P.PREDICT | P.RESPONSE, 0, bytes(4), "02830101010105d5c7e62900"),
}
BIG_BODIES = {"chunk": bytes(range(256)) * 2 + bytes(4),       # 516 bytes, zeros inside
              "max body": bytes([7]) * P.MAX_BODY}              # 600 non-zero bytes


def _feed_all(dec, data):
    """Feed byte by byte; return the statuses of the frames that ended."""
    return [s for s in (dec.feed(b) for b in data) if s is not None]


def _decode(wire):
    """Decode one frame whole, then again byte by byte (None until its 0x00); both agree."""
    dec = P.Decoder()
    assert _feed_all(dec, wire) == [P.FRAME_OK]
    whole = dec.type, dec.seq, bytes(dec.body())
    dec = P.Decoder()
    for b in wire[:-1]:
        assert dec.feed(b) is None
    assert dec.feed(wire[-1]) == P.FRAME_OK
    assert (dec.type, dec.seq, bytes(dec.body())) == whole
    return whole


@pytest.mark.parametrize("name", COBS)
def test_cobs_vectors(name):
    raw, wire = COBS[name]
    out = bytearray(len(raw) + len(raw) // 254 + 2)
    assert bytes(out[:P.cobs_encode_into(raw, len(raw), out)]) == wire


@pytest.mark.parametrize("name", COBS)
def test_cobs_vectors_as_bodies_decode_whole_and_byte_by_byte(name):
    body = COBS[name][0]
    wire = proto_host.encode_frame(P.IMPORT_CHUNK, 3, body)
    assert _decode(wire) == (P.IMPORT_CHUNK, 3, body)
    dec = P.Decoder()  # two frames back to back
    assert _feed_all(dec, wire + wire) == [P.FRAME_OK, P.FRAME_OK]
    assert bytes(dec.body()) == body


@pytest.mark.parametrize("name", FRAMES)
def test_frame_vectors(name):
    t, seq, body, wire = FRAMES[name]
    assert proto_host.encode_frame(t, seq, body).hex() == wire
    assert _decode(bytes.fromhex(wire)) == (t, seq, body)


def _cobs_decode(wire):
    """An independent COBS decoder (no delimiter handling beyond the final 0x00)."""
    out = bytearray()
    i = 0
    data = wire[:-1]
    while i < len(data):
        code = data[i]
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


@pytest.mark.parametrize("name", FRAMES)
def test_frame_layout_is_type_seq_body_crc(name):
    t, seq, body, wire = FRAMES[name]
    raw = _cobs_decode(bytes.fromhex(wire))
    assert raw[:2] == bytes([t, seq]) and raw[2:-4] == body
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])


@pytest.mark.parametrize("name", BIG_BODIES)
def test_large_bodies_round_trip(name):
    body = BIG_BODIES[name]
    wire = proto_host.encode_frame(P.EXPORT_CHUNK | P.RESPONSE, 9, body)
    assert len(wire) <= P.MAX_WIRE and 0 not in wire[:-1]
    assert _decode(wire) == (P.EXPORT_CHUNK | P.RESPONSE, 9, body)


def test_decoder_accepts_canonical_cobs():
    """A 254-byte frame without zeros, encoded canonically (no empty last block) and by proto."""
    body = bytes(range(1, 249))
    seq = next(q for q in range(1, 256)
               if 0 not in struct.pack("<I", zlib.crc32(bytes([P.LEARN, q]) + body)))
    head = bytes([P.LEARN, seq]) + body
    raw = head + struct.pack("<I", zlib.crc32(head))
    assert len(raw) == 254
    ours = proto_host.encode_frame(P.LEARN, seq, body)
    assert ours == b"\xff" + raw + b"\x01\x00"
    for wire in (ours, b"\xff" + raw + b"\x00"):
        assert _decode(wire) == (P.LEARN, seq, body)


def _cobs(raw):
    out = bytearray(len(raw) + len(raw) // 254 + 2)
    return bytes(out[:P.cobs_encode_into(raw, len(raw), out)])


def _bad_crc():
    raw = b"\x01\x05" + b"\x00\x00\x00\x00"
    return _cobs(raw)


STATUS = {
    "bad crc": (_bad_crc(), P.FRAME_BAD_CRC),
    "bad cobs": (b"\x05\x01\x02\x00", P.FRAME_BAD_COBS),
    "too short": (_cobs(b"\x01\x02\x03\x04\x05"), P.FRAME_TOO_SHORT),
    "too long": (proto_host.encode_frame(P.STREAM, 1, bytes([1]) * (P.MAX_BODY + 1)), P.FRAME_TOO_LONG),
}


@pytest.mark.parametrize("name", STATUS)
def test_bad_frames_get_a_status_and_are_counted(name):
    wire, status = STATUS[name]
    dec = P.Decoder()
    good = proto_host.encode_frame(P.HELLO, 1, b"")
    assert _feed_all(dec, wire + good) == [status, P.FRAME_OK]
    assert dec.errors == 1 and dec.frames == 1
    assert (dec.type, dec.seq) == (P.HELLO, 1)


def test_empty_frames_are_ignored_and_a_flipped_byte_is_caught():
    dec = P.Decoder()
    assert _feed_all(dec, b"\x00\x00\x00") == [] and dec.errors == 0
    wire = bytearray(proto_host.encode_frame(P.LEARN, 4, bytes(range(1, 40))))
    for i in range(len(wire) - 1):
        bad = bytearray(wire)
        bad[i] ^= 0x01 if bad[i] != 0x01 else 0x02
        st = _feed_all(P.Decoder(), bytes(bad))
        assert st and st[-1] != P.FRAME_OK, i


@pytest.mark.parametrize("name", FRAMES)
def test_encoder_buffers_equal_encode_frame(name):
    t, seq, body, wire = FRAMES[name]
    enc = P.Encoder()
    enc.body[:len(body)] = body
    assert bytes(enc.frame(t, seq, len(body))).hex() == wire
    for big in BIG_BODIES.values():
        enc.body[:len(big)] = big
        assert bytes(enc.frame(t, seq, len(big))) == proto_host.encode_frame(t, seq, big)


_MPY_SCRIPT = """
import json
from ffrt import proto as P
from ffrt import proto_host
frames = json.loads(%r)
out = []
enc = P.Encoder()
for t, seq, body in frames:
    body = bytes.fromhex(body)
    enc.body[:len(body)] = body
    wire = bytes(enc.frame(t, seq, len(body)))
    assert wire == proto_host.encode_frame(t, seq, body)
    dec = P.Decoder()
    st = [s for s in (dec.feed(b) for b in wire) if s is not None]
    out.append([wire.hex(), st, dec.type, dec.seq, bytes(dec.body()).hex()])
bad = []
for w in json.loads(%r):
    dec = P.Decoder()
    bad.append([s for s in (dec.feed(b) for b in bytes.fromhex(w)) if s is not None])
print(json.dumps([out, bad]))
"""


@pytest.mark.device
def test_same_vectors_in_micropython(micropython):
    frames = [(t, s, b) for t, s, b, _ in FRAMES.values()]
    frames += [(P.IMPORT_CHUNK, 3, raw) for raw, _ in COBS.values()]
    frames += [(P.EXPORT_CHUNK | P.RESPONSE, 9, b) for b in BIG_BODIES.values()]
    js = json.dumps([[t, s, b.hex()] for t, s, b in frames])
    bad = json.dumps([w.hex() for w, _ in STATUS.values()])
    out, statuses = mpy.run_json(_MPY_SCRIPT % (js, bad))
    for (t, s, b), (wire, st, dt, ds, db) in zip(frames, out):
        assert wire == proto_host.encode_frame(t, s, b).hex()
        assert st == [P.FRAME_OK] and (dt, ds, db) == (t, s, b.hex())
    assert statuses == [[status] for _, status in STATUS.values()]
