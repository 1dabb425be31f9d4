"""The protocol client against an in-process fake board (tests/fake_board.py).

The fake runs in a thread at the far end of a socketpair; its knobs drop or corrupt
responses, so retries are tested deterministically: a lost response makes the host send
the same frame again, and the board answers from its cache instead of executing twice.
"""

import select
import socket
import struct
import threading
import time

import pytest

from fake_board import FakeBoard
from ffkit import FFKitError
from ffkit.board.client import (Board, BoardTimeout, DeviceError, IncompatibleModel,
                          ProtocolError, check_ffw)
from ffkit.board.link import Link
from ffrt import proto
from ffrt import proto_host
from ffrt import ffw_ram
from ffrt.model import Config
from ffrt.net import FFNet

CFG = Config(n_features=4, n_classes=3, in_max=15, layers=(8, 6), lr_shift=20)
SAMPLES = [([15, 0, 0, 15], 0), ([0, 15, 15, 0], 1), ([15, 15, 0, 0], 2), ([3, 4, 5, 6], 1)]


class SockLink(Link):
    """A Link over one end of a socketpair."""

    def __init__(self, sock):
        self.sock = sock
        self.name = "socketpair"
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))
        self.sock.sendall(data)

    def read(self, n, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return self.sock.recv(n) if r else b""

    def close(self):
        self.sock.close()


class Served:
    """A FakeBoard answering on a thread; `mute` makes it swallow everything."""

    def __init__(self, board):
        self.board = board
        self.mute = False
        self.host, self.dev = socket.socketpair()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                data = self.dev.recv(4096)
            except OSError:
                return
            if not data:
                return
            if self.mute:
                continue
            with self.lock:
                out = self.board.feed(data)
            if self.board.delay:
                time.sleep(self.board.delay)
            if out:
                self.dev.sendall(out)

    def close(self):
        self.host.close()
        self.dev.close()


@pytest.fixture
def served():
    s = Served(FakeBoard(FFNet(CFG)))
    yield s
    s.close()


def make_board(served, **kw):
    kw.setdefault("timeout", 0.2)
    return Board(SockLink(served.host), **kw)


def test_session_starts_with_flush_and_hello(served):
    board = make_board(served)
    assert board.link.written[0] == b"\x00"
    assert board.firmware == "fake-0" and board.protocol_version == proto.PROTOCOL_VERSION
    info = board.info()
    assert info["model"]["layers"] == [8, 6]


def test_lost_response_resends_same_seq_and_executes_once(served):
    board = make_board(served)
    x, y = SAMPLES[0]
    host = FFNet(CFG)
    host.learn_one(x, y)
    served.board.drop_responses = 1
    n_frames = len(board.link.written)
    step, gpos, gneg = board.learn(x, y)
    sent = board.link.written[n_frames:]
    assert len(sent) == 2 and sent[0] == sent[1]       # the very same frame, same seq
    assert board.resends == 1
    assert served.board.executed[proto.LEARN] == 1     # one execution, a cached replay
    assert served.board.counters["replayed"] == 1
    assert step == 1 == host.step
    assert gpos == list(host.last_pos) and gneg == list(host.last_neg)


def test_corrupt_response_is_counted_and_retried(served):
    board = make_board(served)
    served.board.corrupt_responses = 1
    label, good = board.predict(SAMPLES[1][0])
    assert board.bad_frames == 1 and board.resends == 1
    assert served.board.executed[proto.PREDICT] == 1
    assert len(good) == 3 and label == max(range(3), key=lambda c: (good[c], -c))


def test_stale_replies_are_ignored(served):
    board = make_board(served)
    # a late reply to an old request arrives before the current one
    served.dev.sendall(proto_host.encode_frame(proto.INFO | proto.RESPONSE, board._seq, b"{}"))
    served.dev.sendall(b"garbage\x00")
    assert board.hello() == "fake-0"
    assert board.stale == 1


def test_error_reply_raises_device_error(served):
    board = make_board(served)
    with pytest.raises(DeviceError) as e:
        board.learn([16, 0, 0, 0], 0)     # in_max is 15
    assert e.value.status == proto.E_BAD_VALUE
    assert e.value.status_name == "bad value"
    assert "LEARN" in str(e.value) and "out of range" in str(e.value)
    with pytest.raises(DeviceError) as e:
        board.request(0x3E)
    assert e.value.status == proto.E_UNKNOWN_TYPE


def test_silent_board_times_out_naming_the_request(served):
    board = make_board(served, retries=2, timeout=0.1)
    served.mute = True
    t0 = time.monotonic()
    with pytest.raises(BoardTimeout) as e:
        board.info()
    took = time.monotonic() - t0
    assert "INFO" in str(e.value) and "3 attempt" in str(e.value)
    assert isinstance(e.value, TimeoutError) and isinstance(e.value, FFKitError)
    assert took >= 0.29                    # three attempts, each waited out in full
    assert board.resends == 2


def test_hello_retries_while_board_boots(served):
    served.mute = True
    threading.Timer(0.25, lambda: setattr(served, "mute", False)).start()
    board = make_board(served, timeout=0.1, retries=10)
    assert board.firmware == "fake-0" and board.resends >= 1


def test_learn_stream_match_the_host_net(served):
    board = make_board(served)
    host = FFNet(CFG)
    for x, y in SAMPLES[:2]:
        step, gp, gn = board.learn(x, y)
        host.learn_one(x, y)
        assert (step, gp, gn) == (host.step, list(host.last_pos), list(host.last_neg))
    stream = SAMPLES * 20 + [(SAMPLES[0][0], None)]   # 81 samples: several frames
    step, preds = board.stream(stream)
    want = []
    for x, y in stream:
        want.append(host.predict_one(x))
        if y is not None:
            host.learn_one(x, y)
    assert preds == want and step == host.step
    per = 1 + 2 * CFG.n_features
    assert served.board.executed[proto.STREAM] == -(-len(stream) // ((proto.MAX_BODY - 1)
                                                                      // per))


def test_export_is_the_ffw_of_the_board_net(served):
    board = make_board(served)
    for x, y in SAMPLES:
        board.learn(x, y)
    seen = []
    data = board.export(progress=lambda d, t: seen.append((d, t)))
    assert data == bytes(ffw_ram.encode(served.board.net))
    assert seen[-1] == (len(data), len(data)) and len(seen) == -(-len(data) // proto.CHUNK)
    assert served.board.export is None        # EXPORT_END was sent


def test_export_with_lost_chunk_replies(served):
    big = FFNet(Config(n_features=8, n_classes=3, in_max=15, layers=(64, 32)))
    served.board.net = big
    board = make_board(served)
    served.board.drop_responses = 1
    data1 = board.export()
    assert data1 == bytes(ffw_ram.encode(big)) and len(data1) > 3 * proto.CHUNK
    assert board.resends == 1

    # drop a reply in the middle of the transfer
    orig = served.board.on_frame

    def drop_third_chunk(t, s, b, count=[0]):
        out = orig(t, s, b)
        if t == proto.EXPORT_CHUNK:
            count[0] += 1
            if count[0] == 3:
                return b""
        return out
    served.board.on_frame = drop_third_chunk
    before = served.board.executed[proto.EXPORT_CHUNK]
    assert board.export() == data1
    assert board.resends == 2
    # every chunk once, and the third once more: the repeated seq was answered from the
    # board's cached reply (the fake counts executions, not replays)
    assert served.board.executed[proto.EXPORT_CHUNK] > before


def test_chunks_shrink_on_a_lossy_line_and_grow_back():
    from ffkit.board.client import MIN_CHUNK

    b = Board.__new__(Board)  # the adaptation alone, no link
    b.chunk, b._clean, b.resends = proto.CHUNK, 0, 0

    def chunk(resends):
        before = b.resends
        b.resends += resends
        b._chunk_done(before)
        return b.chunk

    assert chunk(1) == proto.CHUNK // 2
    assert [chunk(3) for _ in range(10)][-1] == MIN_CHUNK  # never below the floor
    grown = [chunk(0) for _ in range(100)]
    assert grown[-1] == proto.CHUNK and sorted(grown) == grown  # back up, step by step
    assert grown.count(MIN_CHUNK) == 7  # doubles only after 8 clean chunks in a row


def test_export_end_sent_when_transfer_fails(served):
    board = make_board(served, timeout=0.1, retries=1)
    orig = served.board.on_frame

    def refuse_chunks(t, s, b):
        if t == proto.EXPORT_CHUNK:
            served.board.executed[t] = served.board.executed.get(t, 0) + 1
            return proto_host.encode_frame(proto.ERROR, s, bytes([proto.E_BAD_STATE]) + b"no")
        return orig(t, s, b)
    served.board.on_frame = refuse_chunks
    with pytest.raises(DeviceError):
        board.export()
    assert served.board.executed.get(proto.EXPORT_END) == 1


def test_export_crc_mismatch_is_refused(served):
    board = make_board(served)
    orig = served.board.handle

    def bad_crc(t, body):
        r = orig(t, body)
        if t == proto.EXPORT_BEGIN:
            size, crc = struct.unpack("<II", r)
            return struct.pack("<II", size, crc ^ 1)
        return r
    served.board.handle = bad_crc
    with pytest.raises(FFKitError, match="CRC mismatch"):
        board.export()


def test_import_round_trip_and_retry(served):
    board = make_board(served)
    donor = FFNet(CFG)
    for x, y in SAMPLES * 3:
        donor.learn_one(x, y)
    data = bytes(ffw_ram.encode(donor))
    served.board.drop_responses = 1   # the first reply (INFO) is lost once
    seen = []
    step = board.import_weights(data, progress=lambda d, t: seen.append(d))
    assert step == donor.step
    assert bytes(ffw_ram.encode(served.board.net)) == data
    assert board.export() == data
    assert seen[-1] == len(data)
    assert served.board.executed[proto.IMPORT_COMMIT] == 1


def test_import_refuses_bad_file_before_sending(served):
    board = make_board(served)
    data = bytearray(ffw_ram.encode(FFNet(CFG)))
    data[-1] ^= 1
    with pytest.raises(FFKitError, match="refused: CRC mismatch"):
        board.import_weights(bytes(data))
    assert proto.IMPORT_BEGIN not in served.board.executed


def test_import_refuses_other_model_naming_the_field(served):
    board = make_board(served)
    other = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8, 7), lr_shift=20))
    with pytest.raises(IncompatibleModel, match=r"layers is \(8, 7\) in the file, "
                                                r"\(8, 6\) on the board"):
        board.import_weights(bytes(ffw_ram.encode(other)))
    assert proto.IMPORT_BEGIN not in served.board.executed


def test_check_ffw_returns_config():
    data = bytes(ffw_ram.encode(FFNet(CFG)))
    assert check_ffw(data) == CFG
    with pytest.raises(FFKitError, match="x refused: truncated"):
        check_ffw(data[:100], what="x")


def test_small_requests(served):
    board = make_board(served)
    assert board.set(learning=False) == {"learning": False}
    assert board.stats()["requests"] >= 2
    assert board.checkpoint() == (1, 1)
    assert board.reset("fresh") == 0
    with pytest.raises(ValueError):
        board.reset("everything")
    with pytest.raises(ValueError):
        board.request(proto.INFO, bytes(proto.MAX_BODY + 1))


def test_malformed_reply_is_a_protocol_error(served):
    board = make_board(served)
    orig = served.board.handle
    served.board.handle = lambda t, b: b"\x01\x02" if t == proto.LEARN else orig(t, b)
    with pytest.raises(ProtocolError, match="LEARN reply of 2 bytes"):
        board.learn(*SAMPLES[0])


def test_the_console_quote_is_the_firmwares_not_the_repls_answer_to_hello():
    """A virtual board whose main.py refused to serve sits in the REPL (``-i``), which takes
    the HELLO frames as typed input; seen in CI: the REPL's NameError for a name made of
    frame bytes was quoted instead of the firmware's reason."""
    from ffkit.board.client import _console_says

    class Link:
        def __init__(self, text):
            self.text = text

        def console(self):
            return self.text

    refused = "ffrt: not serving: 46432 bytes of heap free after boot, 4768 short\n"
    repl = ("MicroPython 9458e3a23f on 2026-07-05; linux [GCC 14.2.1] version\r\n"
            "Type \"help()\" for more information.\r\n>>> \r\n")
    said = _console_says(Link(refused + repl + "NameError: name '\x01Iq' isn't defined\r\n"))
    assert said == "; its console says: " + refused.strip()
    crash = "Traceback (most recent call last):\nMemoryError: memory allocation failed\n"
    assert _console_says(Link(crash + repl)).endswith("MemoryError: memory allocation failed")
    # with nothing of the firmware's own before the prompt, the REPL's answer is all there is
    assert "NameError" in _console_says(Link(repl + "NameError: name 'x' isn't defined\r\n"))
    assert _console_says(Link(repl)) == ""
    assert _console_says(object()) == ""
