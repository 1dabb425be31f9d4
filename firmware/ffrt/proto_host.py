"""The host's helpers of ffrt.proto, imported by name (`from ffrt import proto_host`), so a
board never holds them.

    encode_frame(type, seq, body)   the wire bytes of one frame (a new bytes object)
    NAMES          request type -> its name ("HELLO"), from proto's own names
    STATUS_NAMES   status code -> its words ("bad length"), from proto's E_* names

>>> from ffrt import proto as P
>>> NAMES[P.IMPORT_CHUNK], STATUS_NAMES[P.E_BAD_LENGTH]
('IMPORT_CHUNK', 'bad length')
"""

import struct

from ffrt import proto as P
from ffrt.crc32 import crc32

NAMES = {getattr(P, k): k for k in (
    "HELLO INFO PREDICT LEARN STREAM EXPORT_BEGIN EXPORT_CHUNK EXPORT_END IMPORT_BEGIN"
    " IMPORT_CHUNK IMPORT_COMMIT CHECKPOINT SET STATS RESET REPL SAMPLES ADAPT LOG SLEEP"
    " ERROR").split()}
STATUS_NAMES = {getattr(P, k): k[2:].lower().replace("_", " ") for k in dir(P)
                if k[:2] == "E_"}


def encode_frame(ftype, seq, body):
    """The wire bytes of one frame (the board uses proto.Encoder's buffers)."""
    raw = bytearray(P.HEAD + len(body) + P.CRC)
    raw[0] = ftype
    raw[1] = seq & 0xFF
    raw[2:2 + len(body)] = body
    struct.pack_into("<I", raw, 2 + len(body), crc32(raw[:2 + len(body)]))
    out = bytearray(len(raw) + len(raw) // 254 + 2)
    n = P.cobs_encode_into(raw, len(raw), out)
    return bytes(out[:n])
