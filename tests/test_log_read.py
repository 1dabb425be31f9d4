"""Every record a board logs can be downloaded (issue 12, item 4).

A LOG READ reply holds at most 592 bytes of records, and a record larger than that (one
SAMPLES frame of the client's MAX_SAMPLES_PER_FRAME samples, a long SET) was never read:
"record 0 does not fit a LOG READ reply". LOG READ now also takes a byte offset and then
answers a part of one record (ffrt.log_ops), which ffkit.sessions.logs reassembles; a request
without the offset is answered as before.
"""

import contextlib
import io
import json
import struct

import numpy as np
import pytest

from ffkit import cli, config

from ffkit.sessions import logs
from ffkit.board.client import MAX_SAMPLES_PER_FRAME, P_LOG_READ, connect
from ffkit.board.sim import VirtualBoard
from ffrt import ffl
from ffrt.features import HOP, WINDOW
from ffrt import proto as P

HAPT_W = config.models_dir() / "hapt.ffw"


def _windows(n):
    """Windows that n samples complete."""
    return 0 if n < WINDOW else 1 + (n - WINDOW) // HOP


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv) + ["--json"])
    assert code == 0, err.getvalue()
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.device
def test_records_larger_than_a_reply_are_downloaded_and_replay(tmp_path):
    w = HAPT_W.read_bytes()
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "model.ffw").write_bytes(w)
    rng = np.random.default_rng(3)
    n = MAX_SAMPLES_PER_FRAME   # 49 samples: a 601-byte SAMPLES body
    with VirtualBoard(folder) as vb:
        with connect(vb.port, timeout=5.0, hello_timeout=10.0) as b:
            b.log_start(digest_every=2)
            done = 0
            for i in range(6):
                s = rng.integers(-3000, 3000, size=(n, 6)).astype(np.int16)
                k = _windows(done + n) - _windows(done)
                done += n
                b.samples(s, learn=True, labels=[(i + j) % 6 for j in range(k)])
            # a SET of 600 body bytes
            body = b'{"lr_shift": 26' + b" " * (P.MAX_BODY - 16) + b"}"
            assert len(body) == P.MAX_BODY
            b.request(P.SET, body)
            b.log_digest()
            exported = b.export()
            nxt = b.log_status()["next"]
        code, res = _cli("log", "--port", vb.port, "-o", str(tmp_path / "s.ffl"))
        assert code == 0 and res["records"] == nxt
        with connect(vb.port, timeout=5.0) as b:
            # a request without the offset is answered as before: no record fits
            first, end, data = b.log_read(0)
            assert (first, end, data) == (0, nxt, b"")
            # a part of record 0, from its byte 5
            r = b.request(P.LOG, struct.pack("<BIHI", 3, 0, P_LOG_READ, 5))
            assert len(r) == 8 + P_LOG_READ
    data = (tmp_path / "s.ffl").read_bytes()
    head, recs = ffl.parse(data)
    sizes = [len(r[2]) for r in recs if r[0] in (P.SAMPLES, P.SET)]
    assert max(sizes) == P.MAX_BODY and min(sizes) + ffl.REC_HEAD + 4 > P_LOG_READ
    assert data[ffl.parse_header(data)[1]:][5:5 + P_LOG_READ] == bytes(r[8:])
    code, res = _cli("replay", str(tmp_path / "s.ffl"), "--weights", str(HAPT_W),
                     "--out", str(tmp_path / "end.ffw"))
    assert code == 0 and res["identical"], res
    assert (tmp_path / "end.ffw").read_bytes() == exported


def test_a_ring_reads_one_record_in_parts(tmp_path):
    ring = ffl.Ring(str(tmp_path), segment=4096)
    ring.start(ffl.header(b"t", b"", 1, 0, 0, (0, 1)))
    bodies = [bytes(range(i, i + 200)) * 4 for i in range(3)]   # 811-byte records
    for b in bodies:
        ring.append(P.SET, b)
    out = bytearray(592)
    assert ring.read(1, out) == 0   # whole records only: none fits
    got = b""
    while True:
        k = ring.read(1, out, len(got))
        if not k:
            break
        got += bytes(out[:k])
    assert got == ffl.record(P.SET, 1, bodies[1])
    assert ring.read(1, out, 3) == 592 and bytes(out) == got[3:595]
    with pytest.raises(ffl.FFLError, match="the ring holds"):
        ring.read(4, out, 0)


def test_a_firmware_without_parts_is_named(tmp_path):
    from ffkit import FFKitError
    from ffkit.board.client import DeviceError

    class Old:
        def request(self, t, body=b""):
            raise DeviceError(P.E_BAD_LENGTH, "request 0x%02x takes 7 body bytes" % t)

    with pytest.raises(FFKitError, match="reads no record in parts"):
        logs._read_parts(Old(), 0)
