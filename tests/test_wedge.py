"""The board stays serviceable at its smallest heap after a MemoryError (issue 12, item 1).

An independent fuzzer found that four frames (IMPORT_BEGIN, one IMPORT_CHUNK, SAMPLES, LOG
STATUS) sent to the .mpy firmware at its smallest heap left INFO, EXPORT_BEGIN,
IMPORT_COMMIT, CHECKPOINT and RESET answering MemoryError for good: the open import kept
the transfer code loaded, and SAMPLES and LOG loaded theirs besides. After a MemoryError
the server now frees what it can (ffrt.server.Server.free: the open import or export is
dropped, a running log stops, every request module is unloaded), so the next requests
have the heap they had after boot.
"""

import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from ffkit.twins import kernels_np
from ffrt import ffw_ram
from ffrt import proto as P
from ffrt.crc32 import crc32
from test_server import _HEAP, mpy_firmware  # noqa: F401 (a fixture: the firmware as .mpy)

pytestmark = pytest.mark.device


def _board(repo_root, mpy_firmware, heap, model=None):
    """A folder with the .mpy firmware and the digits model. At a heap below what serving
    takes (100K: ffrt.app.SERVE_NEED) its main.py lowers the check to 0 first, as a board's
    own main.py may: the firmware then serves where the fuzzer found it wedged."""
    board = Path(tempfile.mkdtemp(prefix="vb"))  # a short path, as a board's (test_server)
    shutil.copytree(mpy_firmware / "ffrt", board / "ffrt")
    main = (mpy_firmware / "main.py").read_text()
    if heap != _HEAP:
        main = main.replace("app.run()", "app.SERVE_NEED = 0  # serve below the heap it takes\n"
                            "app.run()")
        assert "SERVE_NEED" in main
    (board / "main.py").write_text(main)
    (board / "model.ffw").write_bytes(model or (repo_root / "models" / "digits.ffw").read_bytes())
    return board


# _HEAP: the smallest heap of tests/test_server.py's import, learn, export and checkpoint
# sequence (with 1 KB to spare); 100K: where the fuzzer found the board wedged (98K then;
# the firmware takes 2.4 KB more at boot since issue 14; with the serving check off it
# boots there and answers INFO and RESET; an export needs more)
@pytest.mark.parametrize("heap", [_HEAP, "100K"])
def test_the_board_recovers_from_a_memory_error_at_its_smallest_heap(repo_root, mpy_firmware,
                                                                     heap):
    from ffkit.board.client import DeviceError, connect
    from ffkit.board.sim import VirtualBoard

    digits = bytes(ffw_ram.encode(ffw_ram.load(open(repo_root / "models" / "digits.ffw", "rb").read(),
                                       kernels_np)))
    board = _board(repo_root, mpy_firmware, heap, digits)
    try:
        with VirtualBoard(board, heap=heap) as vb, connect(vb.port, timeout=10.0) as b:
            info = b.info()
            assert info["boot"] == "model.ffw", vb.console()
            step = info["step"]
            # the fuzzer's four frames: each may be refused (a MemoryError among them)
            for t, body in [(P.IMPORT_BEGIN, struct.pack("<II", len(digits), crc32(digits))),
                            (P.IMPORT_CHUNK, struct.pack("<I", 0) + digits[:P.CHUNK]),
                            (P.SAMPLES, b"\x00\x00" + bytes(12 * 8)),
                            (P.LOG, b"\x05")]:
                try:
                    b.request(t, body)
                except DeviceError:
                    pass
            info = b.info()
            assert info["step"] == step and info["mem_free"] > 0
            b.reset()
            assert b.stats()["requests"] == 1   # RESET counters ran; then this STATS
            if heap == _HEAP:
                assert b.export() == digits          # the weights as they were
                assert b.checkpoint()[0] >= 1
            assert not vb.console(), vb.console()  # it never stopped serving
    finally:
        shutil.rmtree(board, ignore_errors=True)


@pytest.mark.parametrize("heap", [_HEAP, "100K"])
def test_info_answers_after_set_found_no_heap_for_its_json_reader(repo_root, mpy_firmware,
                                                                   heap):
    """SET loads its JSON reader (ffrt.strictjson) beside net_ops. At 100K there is not the
    heap for it, and loading it anyway ran out half-way and kept about 2 KB of what it had
    built: every INFO after was refused for want of heap (12 in a row, and after a RESET).
    The reader is now loaded only with the room it takes (ffrt.room), like the
    request modules, so SET is refused cleanly and INFO answers; at the firmware's
    smallest heap SET is never refused."""
    from ffkit.board.client import DeviceError, connect
    from ffkit.board.sim import VirtualBoard

    board = _board(repo_root, mpy_firmware, heap)
    try:
        with VirtualBoard(board, heap=heap) as vb, connect(vb.port, timeout=10.0) as b:
            step = b.info()["step"]
            refused = []
            for _ in range(3):
                try:
                    b.set()   # SET {}: changes nothing; may be refused for want of heap
                except DeviceError as e:
                    assert "MemoryError" in str(e), e
                    refused.append(e)
                assert b.info()["step"] == step, refused   # at once, every time
            if heap == _HEAP:
                assert not refused
            assert not vb.console(), vb.console()
    finally:
        shutil.rmtree(board, ignore_errors=True)


def test_info_and_reset_answer_once_every_request_module_has_been_loaded(repo_root,
                                                                        mpy_firmware):
    """Unloading a .mpy module leaves its interned names in the heap: once a 98K board had
    served every kind of request about 3 KB stayed free, and INFO and RESET, which shared a
    module with the learning requests (5 KB), were refused for good after the next
    MemoryError (`ffkit fuzz` found it after about 7,000 frames). They now live in a small
    module of their own (ffrt.ops) that finds room to load again, and a running log is
    stopped with its code unloaded: INFO may be refused once, never twice in a row. The
    test runs at 101K: the engine's shorter call frames (issue 14) took 200 B of code, and
    at 98K INFO then found no room twice in a row (the old firmware fails at 99K too);
    the shared label pass and the frames that stay off the heap took 2.4 KB more."""
    from ffkit.board.client import DeviceError, connect
    from ffkit.board.sim import VirtualBoard

    board = _board(repo_root, mpy_firmware, "101K")
    x = struct.pack("<64h", *range(64))
    try:
        with VirtualBoard(board, heap="101K") as vb, connect(vb.port, timeout=10.0) as b:
            step = b.info()["step"]
            every = [(P.PREDICT, x), (P.SET, b"{}"), (P.EXPORT_BEGIN, b""), (P.EXPORT_END, b""),
                     (P.IMPORT_BEGIN, struct.pack("<II", 100, 0)), (P.SAMPLES, b"\x00\x00"),
                     (P.LOG, struct.pack("<BIH", 0, 4096, 0)), (P.LOG, b"\x05"),
                     (P.SLEEP, b"\x01\x00"), (P.CHECKPOINT, b""), (P.STATS, b"")]
            refused = 0
            for rnd in range(3):
                for t, body in every:
                    try:
                        b.request(t, body)
                    except DeviceError as e:
                        refused += "MemoryError" in str(e)
                    info = _info_after_one_refusal(b)
                    assert info["step"] == step and info["mem_free"] > 0
                try:
                    b.reset()
                except DeviceError as e:   # the same: once, for want of heap
                    assert "MemoryError" in str(e), e
                    b.reset()
            assert refused, "the heap never ran out: the test no longer tests this"
            assert not vb.console(), vb.console()
    finally:
        shutil.rmtree(board, ignore_errors=True)


def _info_after_one_refusal(b):
    """INFO, asked again if the board refused it for want of heap: a request may find the
    heap full (a running log holds its code), but its MemoryError frees what it can."""
    from ffkit.board.client import DeviceError
    try:
        return b.info()
    except DeviceError as e:
        assert "MemoryError" in str(e), e
        return b.info()


def test_a_board_without_the_heap_to_serve_says_so(repo_root, mpy_firmware):
    """Below ffrt.app.SERVE_NEED free after boot (100K here) the firmware does not serve for a
    while and then fail: it prints one line and returns to the REPL, and the host's error
    quotes it."""
    from ffkit.board.client import BoardTimeout, connect

    board = _board(repo_root, mpy_firmware, _HEAP)   # the stock main.py
    try:
        with pytest.raises(BoardTimeout) as e:
            connect("sim://%s?heap=100K" % board, timeout=1.0)
        assert "its console says: ffrt: not serving: " in str(e.value), e.value
        assert "short of what serving every request takes" in str(e.value)
    finally:
        shutil.rmtree(board, ignore_errors=True)


def test_a_log_stopped_by_a_memory_error_stays_readable(tmp_path):
    """After a MemoryError the server stops a running log and unloads its code (ffrt.log_ops
    and ffrt.ffl hold 11 KB on x64); the next LOG request reopens it from its files: the
    same records, logging off, nothing logged meanwhile."""
    import sys

    from ffrt.model import Config
    from ffrt.net import FFNet
    from ffrt.server import Server
    from ffrt.storage import Storage

    net = FFNet(Config(n_features=4, n_classes=2, in_max=15, layers=(8,)))
    srv = Server(net, None, Storage(str(tmp_path)))

    def log(body):
        n = srv._handler(P.LOG)(srv, memoryview(body))
        return bytes(srv.enc.body[:n])

    log(struct.pack("<BIH", 0, 4096, 2))                  # START, a digest every 2
    learn = srv._handler(P.LEARN)
    for i in range(5):
        body = bytes([i & 1]) + struct.pack("<4h", i, 1, 2, 3)
        srv.log.log(srv, P.LEARN, body, learn(srv, memoryview(body)))
    status = struct.unpack("<BIII", log(b"\x05"))
    records = log(struct.pack("<BIH", 3, 0, 400))
    header = log(b"\x02")
    assert status[0] == 1 and status[2] > 5

    srv.free()                                           # as after a MemoryError
    assert "ffrt.log_ops" not in sys.modules and "ffrt.ffl" not in sys.modules
    assert srv.log is None
    learn = srv._handler(P.LEARN)
    learn(srv, memoryview(b"\x01" + struct.pack("<4h", 9, 9, 9, 9)))   # not logged
    assert struct.unpack("<BIII", log(b"\x05")) == (0,) + status[1:]
    assert log(struct.pack("<BIH", 3, 0, 400)) == records
    assert log(b"\x02") == header


def test_source_firmware_without_the_heap_to_serve_says_so(repo_root, mpy_firmware):
    """ffrt compiled from .py on the board compiles each request module when first asked:
    at 128K it booted with 36 KB free and a long fuzz run ended with SET refused for good
    (a module's compile finds no block big enough); the check asks SERVE_NEED_SOURCE of
    it (41 KB free after boot). Since issue 14 the sources need 135 KB to compile at
    all, and boot with about that much free: measured here, 134.25-134.75 KB boots and
    refuses, 135 KB serves, less does not compile the engine. That window is narrower
    than the 1 KB the host's paths move such figures, and the compile's peak itself moves:
    at 140 KB a CI run once failed to compile (MemoryError allocating 4,672 bytes) where 200
    runs here all booted with 45.6 KB free. So the board boots from sources at 192 KB, with
    57 KB of room over the compile's peak (98 KB free after boot), and its main.py raises
    the check to 150 KB (as a board's own main.py may set it): it refuses, says so, and the
    host quotes it. The .mpy firmware serves at that heap."""
    from ffkit.board.client import BoardTimeout, connect
    from ffkit.board.mpy import firmware_dir

    board = Path(tempfile.mkdtemp(prefix="vb"))
    try:
        shutil.copytree(firmware_dir() / "ffrt", board / "ffrt",
                        ignore=shutil.ignore_patterns("__pycache__", "native"))
        main = (firmware_dir() / "main.py").read_text()
        assert "app.run()" in main
        (board / "main.py").write_text(main.replace(
            "app.run()", "app.SERVE_NEED_SOURCE = 300  # 150 KB: see the docstring\napp.run()"))
        shutil.copy(repo_root / "models" / "digits.ffw", board / "model.ffw")
        with pytest.raises(BoardTimeout) as e:
            connect("sim://%s?heap=192K" % board, timeout=1.0)
        assert "its console says: ffrt: not serving: " in str(e.value), e.value
        mpy = _board(repo_root, mpy_firmware, _HEAP)
        try:
            with connect("sim://%s?heap=192K" % mpy, timeout=5.0) as b:
                assert b.info()["mem_free"] > 0
        finally:
            shutil.rmtree(mpy, ignore_errors=True)
    finally:
        shutil.rmtree(board, ignore_errors=True)
