"""The firmware as a whole: `micropython main.py` in a folder, driven over its stdio.

Each test starts the real firmware (firmware/main.py -> ffrt.app.run) in the MicroPython
unix port with stdin/stdout on pipes (one test on a pseudo-terminal, as the virtual board
runs) and a temporary folder as its filesystem, and speaks ffrt.proto to it. What the
board computes is held to a host FFNet doing the same steps, byte for byte.
"""

import json
import os
import pty
import random
import select
import shutil
import struct
import subprocess
import time
import tty
import zlib
from pathlib import Path

import pytest

from ffkit.board import builds, mpy

from ffkit.twins import kernels_np
from ffrt import ffw, kernels_ref
from ffrt import ffw_ram
from ffrt import proto as P
from ffrt import proto_host
from ffrt.model import Config
from ffrt.net import FFNet

pytestmark = pytest.mark.device

SMALL = Config(n_features=8, n_classes=4, in_max=15, layers=(16, 12), theta=(3000, 3000),
               act_shift=(6, 6), lr_shift=22)
_TIMEOUT_S = 20


class BoardError(Exception):
    def __init__(self, status, msg):
        super().__init__("%s: %s" % (proto_host.STATUS_NAMES.get(status, status), msg))
        self.status = status


class Board:
    """The firmware in a subprocess; request() sends a frame and returns the response body."""

    def __init__(self, folder, micropython, heapsize=None, use_pty=False, firmware=None):
        firmware = firmware or mpy.firmware_dir()  # a folder with main.py and ffrt/
        argv = [micropython] + (["-X", "heapsize=%s" % heapsize] if heapsize else [])
        argv.append(str(firmware / "main.py"))
        env = dict(os.environ, MICROPYPATH=str(firmware))
        if use_pty:
            master, slave = pty.openpty()
            tty.setraw(slave)
            self.proc = subprocess.Popen(argv, cwd=str(folder), env=env, stdin=slave,
                                         stdout=slave, stderr=subprocess.PIPE)
            os.close(slave)
            self._rfd = self._wfd = master
        else:
            self.proc = subprocess.Popen(argv, cwd=str(folder), env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self._rfd = self.proc.stdout.fileno()
            self._wfd = self.proc.stdin.fileno()
        self.dec = P.Decoder()
        self.seq = 0
        self._pending = bytearray()
        self.write(b"\x00")  # flush whatever came before (the decoder drops empty frames)

    def write(self, data):
        mv = memoryview(data)
        while len(mv):
            mv = mv[os.write(self._wfd, mv):]

    def send(self, t, body=b"", seq=None):
        if seq is None:
            self.seq = seq = (self.seq + 1) & 0xFF
        self.write(proto_host.encode_frame(t, seq, body))
        return self.receive(seq)

    def receive(self, seq):
        end = time.monotonic() + _TIMEOUT_S
        while True:
            while self._pending:
                b = self._pending.pop(0)
                if self.dec.feed(b) == P.FRAME_OK:
                    assert self.dec.seq == seq
                    return self.dec.type, bytes(self.dec.body())
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._rfd], [], [], left)[0]:
                raise TimeoutError("no response in %d s" % _TIMEOUT_S)
            data = os.read(self._rfd, 4096)
            if not data:
                raise EOFError(self.proc.stderr.read().decode())
            self._pending.extend(data)

    def request(self, t, body=b"", seq=None):
        rt, rb = self.send(t, body, seq)
        if rt == P.ERROR:
            raise BoardError(rb[0], rb[1:].decode())
        assert rt == t | P.RESPONSE
        return rb

    def json(self, t, body=b""):
        return json.loads(self.request(t, body))

    def export(self, chunk=P.CHUNK):
        size, crc = struct.unpack("<II", self.request(P.EXPORT_BEGIN))
        data = bytearray()
        while len(data) < size:
            body = self.request(P.EXPORT_CHUNK, struct.pack("<IH", len(data),
                                                            min(chunk, size - len(data))))
            assert struct.unpack_from("<I", body)[0] == len(data)
            data += body[4:]
        self.request(P.EXPORT_END)
        # BEGIN names the weights by the CRC the file stores, not CRC-32's residue
        assert zlib.crc32(data[:-4]) == crc and data[-4:] == struct.pack("<I", crc)
        return bytes(data)

    def import_(self, data, crc=None):
        self.request(P.IMPORT_BEGIN, struct.pack("<II", len(data), zlib.crc32(data)
                                                 if crc is None else crc))
        for off in range(0, len(data), P.CHUNK):
            part = data[off:off + P.CHUNK]
            ack = self.request(P.IMPORT_CHUNK, struct.pack("<I", off) + part)
            assert struct.unpack("<I", ack)[0] == off + len(part)
        return struct.unpack("<I", self.request(P.IMPORT_COMMIT))[0]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.request(P.REPL)
                self.proc.wait(_TIMEOUT_S)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        if self._rfd == self._wfd:
            os.close(self._rfd)
        else:
            self.proc.stdin.close()
            self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def start(micropython, tmp_path):
    """start(model=None, folder=tmp_path, **kw) -> a running Board; all closed at the end."""
    boards = []

    def _start(model=None, folder=tmp_path, **kw):
        if model is not None:
            (folder / "model.ffw").write_bytes(bytes(ffw_ram.encode(model)))
        b = Board(folder, micropython, **kw)
        boards.append(b)
        return b

    yield _start
    for b in boards:
        b.close()


def _samples(n, cfg=SMALL, seed=1):
    rnd = random.Random(seed)
    return [([rnd.randrange(cfg.in_max + 1) for _ in range(cfg.n_features)],
             rnd.randrange(cfg.n_classes)) for _ in range(n)]


def _x(x):
    return struct.pack("<%dh" % len(x), *x)


def _learn_body(x, y):
    return bytes([y]) + _x(x)


def _host(cfg=SMALL, steps=0, seed=1, kernels=kernels_ref):
    net = FFNet(cfg, kernels)
    for x, y in _samples(steps, cfg, seed):
        net.learn_one(x, y)
    return net


# ---- requests ----------------------------------------------------------------------------

def test_hello_and_info(start):
    b = start(_host())
    body = b.request(P.HELLO)
    assert body[0] == P.PROTOCOL_VERSION and body[1:].decode() == "0.1.0"
    info = b.json(P.INFO)
    # every field an import must share with the running net (ffw._SHAPE), so a host can
    # refuse an incompatible file before sending it
    assert info["model"] == {"n_features": 8, "n_classes": 4, "layers": [16, 12],
                             "goodness_from": 0, "pipeline": 0, "recurrent": 0,
                             "label_repeat": 1}
    assert set(info["model"]) == set(ffw._SHAPE)
    assert (info["board"], info["boot"], info["step"], info["learning"]) == (
        "unix", "model.ffw", 0, True)
    assert info["mem_free"] > 0 and info["checkpoint"] is None
    # the least free heap after a request (HELLO's, garbage counted as used)
    assert 0 < info["mem_free_min"] < info["mem_free"] + info["mem_alloc"]


def test_learn_then_predict_match_a_host_net(start):
    host = _host()
    b = start(host)
    L = len(SMALL.layers)
    for x, y in _samples(30):
        body = b.request(P.LEARN, _learn_body(x, y))
        host.learn_one(x, y)
        assert struct.unpack("<I%di" % (2 * L), body) == (
            host.step, *host.last_pos, *host.last_neg)
    for x, _ in _samples(5, seed=2):
        body = b.request(P.PREDICT, _x(x))
        assert body[0] == host.predict_one(x)
        assert list(struct.unpack("<4i", body[1:])) == list(host.goodness)
    assert b.export() == bytes(ffw_ram.encode(host))


def test_stream_predicts_then_learns(start):
    host = _host()
    b = start(host)
    samples = _samples(12)
    preds, correct = [], 0
    for i in range(0, 12, 4):
        batch = samples[i:i + 4]
        labels = [y if k != 2 else -1 for k, (_, y) in enumerate(batch)]  # one unlabelled
        body = bytes([len(batch)]) + b"".join(
            struct.pack("<b", lab) + _x(x) for lab, (x, _) in zip(labels, batch))
        out = b.request(P.STREAM, body)
        for lab, (x, _) in zip(labels, batch):
            p = host.predict_one(x)
            preds.append(p)
            if lab >= 0:
                correct += p == lab
                host.learn_one(x, lab)
        assert struct.unpack_from("<I", out)[0] == host.step
        assert list(out[4:]) == preds[-len(batch):]
    stats = b.json(P.STATS)
    assert (stats["learn_steps"], stats["predictions"], stats["labelled"], stats["correct"]) == (
        9, 12, 9, correct)
    assert len(stats["goodness_pos"]) == 2 and stats["goodness_pos"][1] > 0
    assert b.export() == bytes(ffw_ram.encode(host))


def test_import_another_net_then_export_gives_its_bytes(start, tmp_path):
    b = start(_host())
    other = _host(Config(**dict(SMALL.as_dict(), seed=7, lr_shift=21)), steps=9)
    data = bytes(ffw_ram.encode(other))
    assert b.import_(data) == 9
    assert b.export() == data
    assert b.json(P.INFO)["checkpoint"] == 1  # committed through a checkpoint
    assert not (tmp_path / "import.tmp").exists()
    x, y = _samples(1, seed=5)[0]
    b.request(P.LEARN, _learn_body(x, y))
    other.learn_one(x, y)  # with the imported settings (lr_shift 21)
    assert b.export() == bytes(ffw_ram.encode(other))


def _bad_files():
    good = bytearray(ffw_ram.encode(_host(steps=2)))
    flipped = bytearray(good)
    flipped[200] ^= 1
    shape = _host(Config(**dict(SMALL.as_dict(), layers=(16, 10))))
    return {"bad crc": (bytes(flipped), "CRC mismatch"),
            "wrong signature": (bytes(ffw_ram.encode(shape)),
                                r"model signature differs: layers is \(16, 10\)"),
            "truncated": (bytes(good[:-100]), "truncated")}


def test_bad_imports_are_refused_and_change_nothing(start, tmp_path):
    host = _host(steps=3)
    b = start(host)
    before = b.export()
    for name, (data, words) in _bad_files().items():
        with pytest.raises(BoardError, match=words) as e:
            b.import_(data)
        assert e.value.status == P.E_REFUSED, name
        assert b.export() == before, name
        assert not (tmp_path / "import.tmp").exists()  # what was staged is gone
    good = bytes(ffw_ram.encode(_host(steps=2)))
    with pytest.raises(BoardError, match="CRC mismatch") as e:  # the transfer's CRC
        b.import_(good, crc=zlib.crc32(good) ^ 1)
    assert e.value.status == P.E_REFUSED and b.export() == before
    assert not (tmp_path / "import.tmp").exists() and not (tmp_path / "ckpt_a.bin").exists()
    with pytest.raises(BoardError) as e:
        b.request(P.IMPORT_CHUNK, struct.pack("<I", 0) + b"x")
    assert e.value.status == P.E_BAD_STATE
    with pytest.raises(BoardError, match="size mismatch") as e:  # larger than any fit
        b.request(P.IMPORT_BEGIN, struct.pack("<II", len(before) + 1, 0))
    assert e.value.status == P.E_REFUSED


def test_import_chunks_resent_are_acknowledged_again(start):
    b = start(_host())
    data = bytes(ffw_ram.encode(_host(steps=4)))
    b.request(P.IMPORT_BEGIN, struct.pack("<II", len(data), zlib.crc32(data)))
    for off in range(0, len(data), 256):
        part = data[off:off + 256]
        for _ in range(2):  # the same chunk again with a new seq: staged once, acked twice
            ack = b.request(P.IMPORT_CHUNK, struct.pack("<I", off) + part)
            assert struct.unpack("<I", ack)[0] == off + len(part)
    with pytest.raises(BoardError) as e:
        b.request(P.IMPORT_CHUNK, struct.pack("<I", len(data) + 5) + b"x")
    assert e.value.status == P.E_BAD_STATE
    assert struct.unpack("<I", b.request(P.IMPORT_COMMIT))[0] == 4
    assert b.export() == data


def test_a_repeated_seq_is_answered_but_not_executed(start):
    host = _host()
    b = start(host)
    x, y = _samples(1)[0]
    first = b.send(P.LEARN, _learn_body(x, y), seq=42)
    assert b.send(P.LEARN, _learn_body(x, y), seq=42) == first
    assert b.json(P.INFO)["step"] == 1
    host.learn_one(x, y)
    assert b.export() == bytes(ffw_ram.encode(host))


def test_invalid_requests_get_status_codes(start):
    b = start(_host())
    cases = [((0x33, b""), P.E_UNKNOWN_TYPE), ((P.HELLO | P.RESPONSE, b""), P.E_UNKNOWN_TYPE),
             ((P.PREDICT, _x([1] * 7)), P.E_BAD_LENGTH), ((P.HELLO, b"x"), P.E_BAD_LENGTH),
             ((P.LEARN, _learn_body([1] * 8, 4)), P.E_BAD_VALUE),
             ((P.PREDICT, _x([1] * 7 + [16])), P.E_BAD_VALUE),
             ((P.PREDICT, _x([1] * 7 + [-1])), P.E_BAD_VALUE),
             ((P.STREAM, b"\x02" + b"\x00" + _x([1] * 8)), P.E_BAD_LENGTH),
             ((P.STREAM, b"\x01\x07" + _x([1] * 8)), P.E_BAD_VALUE),
             ((P.EXPORT_CHUNK, struct.pack("<IH", 0, 10)), P.E_BAD_STATE),
             ((P.IMPORT_COMMIT, b""), P.E_BAD_STATE), ((P.RESET, b"\x09"), P.E_BAD_VALUE),
             ((P.SET, b"not json"), P.E_BAD_VALUE), ((P.SET, b'{"lr_shift": 99}'), P.E_BAD_VALUE),
             ((P.SET, b'{"lr": true}'), P.E_BAD_VALUE), ((P.SET, b'{"seed": 3}'), P.E_BAD_VALUE),
             ((P.SET, b'{"theta": [1, 2, 3]}'), P.E_BAD_VALUE)]
    for (t, body), status in cases:
        rt, rb = b.send(t, body)
        assert (rt, rb[0]) == (P.ERROR, status), (t, body, rb)
        assert rb[1:].decode()  # every error names itself
    assert b.json(P.INFO)["step"] == 0


def test_garbage_then_hello_is_answered(start):
    b = start(_host())
    rnd = random.Random(3)
    b.write(bytes(rnd.randrange(256) for _ in range(3000)) + b"\x03\x03\x00")
    b.write(proto_host.encode_frame(P.HELLO, 9, b"")[:-1] + b"\x01\x00")  # a frame with bad COBS
    assert b.request(P.HELLO)[0] == P.PROTOCOL_VERSION
    assert b.json(P.STATS)["bad_frames"] >= 2


def test_set_learning_off_then_learn_changes_nothing(start):
    host = _host(steps=2)
    b = start(host)
    settings = b.json(P.SET, b'{"learning": false, "theta": 2500, "lr_shift": 21}')
    assert settings["learning"] is False and settings["theta"] == [2500, 2500]
    before = b.export()
    with pytest.raises(BoardError) as e:
        b.request(P.LEARN, _learn_body(*_samples(1)[0]))
    assert e.value.status == P.E_BAD_STATE
    x, y = _samples(1)[0]
    b.request(P.STREAM, b"\x01" + bytes([y]) + _x(x))  # predicts only
    assert b.export() == before
    host.cfg = Config(**dict(SMALL.as_dict(), theta=(2500, 2500), lr_shift=21))
    assert before == bytes(ffw_ram.encode(host))
    b.json(P.SET, b'{"learning": true}')
    b.request(P.LEARN, _learn_body(x, y))
    host.learn_one(x, y)
    assert b.export() == bytes(ffw_ram.encode(host))


def test_an_open_export_holds_the_weights(start):
    b = start(_host())
    b.request(P.EXPORT_BEGIN)
    for t, body in ((P.LEARN, _learn_body(*_samples(1)[0])), (P.SET, b'{"lr": 3}'),
                    (P.RESET, b"\x02"), (P.IMPORT_BEGIN, bytes(8))):
        rt, rb = b.send(t, body)
        assert (rt, rb[0]) == (P.ERROR, P.E_BUSY)
    assert b.json(P.SET, b'{"learning": true}')["lr"] == 4  # no Config change: allowed
    b.request(P.EXPORT_END)
    b.request(P.LEARN, _learn_body(*_samples(1)[0]))
    assert b.json(P.INFO)["step"] == 1


def test_checkpoint_survives_a_restart(start, tmp_path):
    host = _host()
    b = start(host)
    for x, y in _samples(5):
        b.request(P.LEARN, _learn_body(x, y))
        host.learn_one(x, y)
    b.json(P.SET, b'{"lr_shift": 20}')
    assert struct.unpack("<IB", b.request(P.CHECKPOINT)) == (1, 0)
    b.request(P.LEARN, _learn_body(*_samples(1, seed=9)[0]))  # after the checkpoint: lost
    b.close()
    b2 = start()
    info = b2.json(P.INFO)
    assert (info["boot"], info["step"], info["checkpoint"]) == ("checkpoint", 5, 1)
    host.cfg = Config(**dict(SMALL.as_dict(), lr_shift=20))
    assert b2.export() == bytes(ffw_ram.encode(host))
    assert struct.unpack("<IB", b2.request(P.CHECKPOINT)) == (2, 1)
    b2.request(P.LEARN, _learn_body(*_samples(1, seed=9)[0]))
    assert struct.unpack("<I", b2.request(P.RESET, b"\x01"))[0] == 5  # reload seq 2
    assert b2.export() == bytes(ffw_ram.encode(host))
    assert struct.unpack("<I", b2.request(P.RESET, b"\x02"))[0] == 0  # fresh from the seed
    assert b2.export() == bytes(ffw_ram.encode(FFNet(host.cfg, kernels_ref)))


def test_repl_hands_the_port_back(start):
    b = start(_host())
    assert b.request(P.REPL) == b""
    assert b.proc.wait(_TIMEOUT_S) == 0  # main.py returned: `micropython -i` would show >>>


def test_on_a_pseudo_terminal(start):
    host = _host()
    b = start(host, use_pty=True)
    x, y = [3] * 8, 3  # 0x03 bytes in the data: no KeyboardInterrupt
    b.request(P.LEARN, _learn_body(x, y))
    host.learn_one(x, y)
    assert b.export() == bytes(ffw_ram.encode(host))


@pytest.fixture(scope="module")
def mpy_firmware(tmp_path_factory):
    """firmware/ as `ffkit flash --board unix` puts it on a board: ffrt as .mpy for this
    port's arch, with the native kernels (C for x64), and main.py."""
    out = tmp_path_factory.mktemp("mpy-firmware")
    bundle = builds.build_bundle("unix", out)
    assert bundle["kernels"] == "native", bundle["kernels_note"]
    return out


# The whole firmware, as `ffkit flash` puts it on a board (ffrt as .mpy for this port's
# arch with the native kernels, in the board's own folder), on the virtual board with a
# small heap: boot from model.ffw, INFO, a 32 KB IMPORT, LEARN and STREAM, EXPORT,
# CHECKPOINT, STATS. The firmware's serving check (ffrt.app.SERVE_NEED: 12.5 KB free after
# boot, tests/test_wedge.py) draws the line: measured on the x64 unix port (whose 64-bit
# objects and 32-byte heap blocks are larger than a 32-bit board's), 106 KB serves this
# sequence and 105 KB boots with 12.2 KB free and says it will not serve (with the check
# lowered it served, but the import's commit was refused for want of heap); 104 KB served
# before issue 15's strict input checks (320 bytes more bytecode at boot); 102 KB served
# before the shared label pass and the engine's shorter methods (issue 14: 2.4 KB more
# bytecode and buffers at boot), 97 KB before the engine gained recurrent models, label
# repeats, the sleep phases and the two-field-longer signature. Heap sizes repeat
# exactly run to run on one machine, but the unix port scans its C stack conservatively,
# and where that stack starts moves with the process's environment and paths: two more
# environment variables, or the virtual board's own fixed environment (ffkit.board.sim),
# moved the smallest heap by 1 KB. The test runs at 108 KB: 106 KB serves this sequence,
# but at 107 KB tests/test_wedge.py's export after an abandoned import is refused for want
# of heap (cleanly; where the heap's pieces fall decides it), and 108-110 KB pass every
# check here and in tests/test_wedge.py, so a CI machine's paths cannot tip it.
_HEAP = "108K"


@pytest.mark.parametrize("chunk", [P.CHUNK, 32])
def test_digits_firmware_in_a_small_heap(repo_root, mpy_firmware, chunk, monkeypatch):
    """The digits net served from .mpy modules: boot, import, learn, export, checkpoint.

    Also with the 32-byte chunks a host falls back to on a lossy line: a thousand small
    requests must not fragment the heap the commit needs."""
    monkeypatch.setattr(P, "CHUNK", chunk)  # the host's largest chunk; the board any
    import tempfile

    from ffkit.board.client import connect
    from ffkit.board.sim import VirtualBoard

    digits = ffw_ram.load(open(repo_root / "models" / "digits.ffw", "rb").read(), kernels_np)
    # a short folder, as a board's paths are: the firmware's module paths are interned
    board = Path(tempfile.mkdtemp(prefix="vb"))
    try:
        shutil.copytree(mpy_firmware / "ffrt", board / "ffrt")  # DIR/ffrt wins (ffkit.board.sim)
        shutil.copy(mpy_firmware / "main.py", board / "main.py")
        (board / "model.ffw").write_bytes(bytes(ffw_ram.encode(digits)))
        # a generous timeout: a resend (a loaded CI machine) would change the sequence of
        # requests, and with it the heap's fragmentation, which this test pins exactly
        with VirtualBoard(board, heap=_HEAP) as vb, connect(vb.port, timeout=10.0) as b:
            info = b.info()
            assert info["boot"] == "model.ffw", vb.console()
            other = ffw_ram.load(bytes(ffw_ram.encode(digits)), kernels_np)
            for x, y in _samples(2, digits.cfg):
                other.learn_one(x, y)
            b.import_weights(bytes(ffw_ram.encode(other)))
            for x, y in _samples(3, digits.cfg, seed=4):
                b.learn(x, y)
                other.learn_one(x, y)
            b.stream([(x, None) for x, _ in _samples(2, digits.cfg, seed=5)])
            assert b.export() == bytes(ffw_ram.encode(other))
            assert b.checkpoint()[0] == 2
            assert b.stats()["mem_free"] > 0
            assert b.resends == 0
            assert not vb.console(), vb.console()  # it never stopped serving
        loaded = sorted(p.name for p in (board / "ffrt").iterdir())
        assert "ffw.mpy" in loaded and not any(n.endswith(".py") for n in loaded)
    finally:
        shutil.rmtree(board, ignore_errors=True)


# ---- the same server in CPython, in-process, without storage (imports staged in RAM) --------

class _Stdio:
    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd


def test_server_in_cpython_over_pipes(monkeypatch):
    from ffrt import port, server

    to_board, from_host = os.pipe()
    to_host, from_board = os.pipe()
    monkeypatch.setattr("sys.stdin", _Stdio(to_board))
    monkeypatch.setattr("sys.stdout", _Stdio(from_board))
    link = port.StdioPort()
    host = _host()
    srv = server.Server(_host(), link, None, {"board": "cpython"})
    dec = P.Decoder()
    seq = [0]

    def ask(t, body=b""):
        seq[0] += 1
        os.write(from_host, proto_host.encode_frame(t, seq[0], body))
        while True:
            assert srv.poll() != server.LEAVE or t == P.REPL
            if select.select([to_host], [], [], 0)[0]:
                for byte in os.read(to_host, 4096):
                    if dec.feed(byte) == P.FRAME_OK:
                        return dec.type, bytes(dec.body())

    try:
        assert ask(P.HELLO)[1][0] == P.PROTOCOL_VERSION
        info = json.loads(ask(P.INFO)[1])
        assert info["board"] == "cpython" and info["mem_free"] is None
        assert info["mem_free_min"] is None  # CPython has no gc.mem_free to read
        for x, y in _samples(4):
            assert ask(P.LEARN, _learn_body(x, y))[0] == P.LEARN | P.RESPONSE
            host.learn_one(x, y)
        other = bytes(ffw_ram.encode(_host(steps=6, seed=3)))
        for data, want in ((other[:-1], P.E_REFUSED), (other, None)):
            ask(P.IMPORT_BEGIN, struct.pack("<II", len(data), zlib.crc32(data)))
            for off in range(0, len(data), 300):
                ask(P.IMPORT_CHUNK, struct.pack("<I", off) + data[off:off + 300])
            t, body = ask(P.IMPORT_COMMIT)
            if want:
                assert (t, body[0]) == (P.ERROR, want)
                assert body[1:].decode().startswith("truncated")
            else:
                assert struct.unpack("<I", body) == (6,)
        size, crc = struct.unpack("<II", ask(P.EXPORT_BEGIN)[1])
        data = ask(P.EXPORT_CHUNK, struct.pack("<IH", 0, 400))[1][4:]
        t, body = ask(P.EXPORT_CHUNK, struct.pack("<IH", 0, P.CHUNK + 1))
        assert (t, body[0]) == (P.ERROR, P.E_BAD_VALUE)  # over CHUNK
        while len(data) < size:
            n = min(P.CHUNK, size - len(data))
            data += ask(P.EXPORT_CHUNK, struct.pack("<IH", len(data), n))[1][4:]
        assert data == other and zlib.crc32(data[:-4]) == crc
        assert data[-4:] == struct.pack("<I", crc)   # the CRC the file stores names it
        t, body = ask(P.CHECKPOINT)
        assert (t, body[0]) == (P.ERROR, P.E_STORAGE)
        srv.net.predict_one = lambda x: 1 // 0  # a bug in a handler: a status, not a crash
        t, body = ask(P.PREDICT, _x([1] * 8))
        assert (t, body[0], body[1:]) == (P.ERROR, P.E_INTERNAL,
                                          b"ZeroDivisionError: integer division or modulo by zero")
        del srv.net.predict_one
        assert ask(P.PREDICT, _x([1] * 8))[0] == P.PREDICT | P.RESPONSE
        assert ask(P.REPL)[0] == P.REPL | P.RESPONSE and srv.leave
        os.close(from_host)
        assert srv.poll() == server.LEAVE and not srv.leave  # the input ended
    finally:
        link.close()
        for fd in (to_board, to_host, from_board):
            os.close(fd)


class _FakeUart:
    """machine.UART's calls that UartPort makes (any, readinto, write, and a fileno for
    select.poll), over a pipe: the host writes frames into it, replies collect in `sent`."""

    def __init__(self):
        self.rx, self.host = os.pipe()
        self.sent = bytearray()

    def fileno(self):
        return self.rx

    def any(self):
        import fcntl
        import termios
        n = bytearray(4)
        fcntl.ioctl(self.rx, termios.FIONREAD, n)
        return struct.unpack("<i", bytes(n))[0]

    def readinto(self, buf, n):
        data = os.read(self.rx, n)
        buf[:len(data)] = data
        return len(data)

    def write(self, buf):
        take = min(len(buf), 7)  # a UART may take fewer bytes than offered
        self.sent += bytes(buf[:take])
        return take


def test_server_over_a_machine_uart():
    from ffrt import server
    from ffrt.port_uart import UartPort

    uart = _FakeUart()
    srv = server.Server(_host(), UartPort(uart), None, {"board": "uart"})
    dec = P.Decoder()
    replies = []
    for seq, (t, body) in enumerate(((P.HELLO, b""), (P.PREDICT, _learn_body(*_samples(1)[0])[1:]),
                                     (0x3E, b""))):
        os.write(uart.host, proto_host.encode_frame(t, seq, body))
        for _ in range(50):
            srv.poll()
            for b in bytes(uart.sent):
                if dec.feed(b) == P.FRAME_OK:
                    replies.append((dec.type, dec.seq, bytes(dec.body())))
            uart.sent.clear()
            if len(replies) > seq:
                break
    assert [(t, s) for t, s, _ in replies] == [(P.HELLO | P.RESPONSE, 0),
                                              (P.PREDICT | P.RESPONSE, 1), (P.ERROR, 2)]
    assert replies[0][2][0] == P.PROTOCOL_VERSION
    assert replies[2][2][0] == P.E_UNKNOWN_TYPE
