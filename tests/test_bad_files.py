"""Bad weight files: refused by `ffkit import` before anything is sent, and by the board.

Each bad file is made from the digits model (models/digits.ffw) by one fault: wrong magic,
version, signature, sizes, CRC, value ranges, truncated, empty. Then:

- the CLI (``ffkit import FILE --port ...``) exits 1 with ``ffkit: FILE refused: <fault>``
  and nothing reaches the board: the port is a tap (tests/relay.py, no loss) that records
  every byte the host sends, and a file fault shows before the port is even opened. A
  file of another model is refused after HELLO and INFO, still without an IMPORT_* frame;
- sent anyway, as raw IMPORT_BEGIN / IMPORT_CHUNK / IMPORT_COMMIT frames that skip the
  host's checks, the board answers ERROR E_REFUSED naming the fault;
- either way the board's weights (its export), its checkpoints and its folder stay as
  they were.
"""

import contextlib
import io
import struct
import subprocess
import sys

import pytest

from ffkit import cli

from ffkit.twins import kernels_np
from ffkit.board.client import Board, DeviceError
from ffkit.board.link import open_link
from ffkit.board.sim import VirtualBoard
from ffrt import ffw_ram
from ffrt import proto as P
from ffrt.crc32 import crc32
from ffrt.model import FIELDS, Config
from ffrt.net import FFNet

from relay import LossyRelay

pytestmark = pytest.mark.device

_FIXED = 14    # ffw: magic, version, length, dtypes, field count


def fix_crc(data):
    data = bytearray(data)
    struct.pack_into("<I", data, len(data) - 4, crc32(data[:-4]))
    return bytes(data)


def field_offset(cfg, name):
    """Offset of a signature field's value in a .ffw of Config cfg (ffrt/ffw.py layout)."""
    off = _FIXED
    for n, default in FIELDS:
        if n == name:
            return off
        if n == "layers":
            off += 1 + 2 * len(cfg.layers)
        elif isinstance(default, tuple):
            off += 1 + 4 * len(getattr(cfg, n))
        else:
            off += 4
    raise KeyError(name)


def tensors_offset(cfg):
    return field_offset(cfg, FIELDS[-1][0]) + 4 + 12  # the last field, step and PRNG states


def _put(data, off, fmt, value, crc=True):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return fix_crc(b) if crc else bytes(b)


def bad_files(good):
    """(name, bytes, what the host says, what the board says) for each fault."""
    cfg = ffw_ram.decode_config(good)
    n = len(good)
    t = tensors_offset(cfg)
    lay = field_offset(cfg, "layers")
    other = bytes(ffw_ram.encode(FFNet(Config(layers=(64, 64), act_shift=(8, 7)),
                                   kernels=kernels_np)))
    return [
        ("empty", b"", "empty file", "empty file"),
        ("magic", b"FFKX" + good[4:], "bad magic", "bad magic"),
        ("magic-ffck", b"FFCK" + good[4:], "bad magic", "bad magic"),  # a checkpoint slot
        ("version", _put(good, 4, "<H", 2), "unsupported format version 2",
         "unsupported format version 2"),
        ("dtypes", fix_crc(good[:10] + b"bhh" + good[13:]), "model signature differs: dtypes",
         "model signature differs: dtypes"),
        ("field-count", _put(good, 13, "<B", len(FIELDS) + 1), "model signature differs: the "
         "file has %d fields" % (len(FIELDS) + 1), "fields"),
        ("signature-value", _put(good, field_offset(cfg, "lr_shift"), "<i", 99),
         "bad model signature", "bad model signature"),
        ("layer-count", _put(good, field_offset(cfg, "act_shift"), "<B", 3),
         "bad model signature", "bad model signature"),
        ("layer-width", _put(good, lay + 3, "<H", 127),
         "size mismatch: the signature needs", "model signature differs: layers"),
        ("length-plus-one", _put(good, 6, "<I", n + 1), "truncated: %d bytes, header says %d"
         % (n, n + 1), "truncated"),
        ("length-minus-one", _put(good, 6, "<I", n - 1), "size mismatch: %d bytes, header "
         "says %d" % (n, n - 1), "size mismatch"),
        ("trailing-byte", good + b"\x00", "size mismatch", "size mismatch"),
        ("crc-field", _put(good, n - 4, "<I", crc32(good[:-4]) ^ 1, crc=False), "CRC mismatch",
         "CRC mismatch"),
        ("flipped-weight", good[:t + 100] + bytes([good[t + 100] ^ 0x10]) + good[t + 101:],
         "CRC mismatch", "CRC mismatch"),
        ("truncated-half", good[:n // 2], "truncated: %d bytes" % (n // 2), "truncated"),
        ("truncated-header", good[:9], "truncated", "truncated"),
        ("truncated-crc", good[:-1], "truncated", "truncated"),
        ("weight-minus-128", _put(good, t + 7, "<B", 0x80), "value out of range: layer 0 "
         "weight 7 is -128", "value out of range: layer 0 weight 7"),
        ("zero-prng", _put(good, t - 8, "<I", 0), "value out of range: rng state is zero",
         "value out of range: rng state is zero"),
        ("other-model", other, None, "model signature differs: layers"),
        ("goodness-from", bytes(ffw_ram.encode(FFNet(Config(goodness_from=1), kernels=kernels_np))),
         None, "goodness_from"),
    ]


@pytest.fixture(scope="module")
def good(repo_root):
    """The digits model, written by this ffrt (every signature field: the offsets below
    assume them all, whichever release wrote the committed file)."""
    return bytes(ffw_ram.encode(ffw_ram.load((repo_root / "models" / "digits.ffw").read_bytes())))


@pytest.fixture(scope="module")
def cases(good):
    return bad_files(good)


@pytest.fixture
def vb(tmp_path, good):
    with VirtualBoard(tmp_path / "board") as b:
        with Board(open_link(b.port)) as board:
            board.import_weights(good)   # a checkpoint to keep
        yield b


def _state(vb):
    with Board(open_link(vb.port)) as board:
        data = board.export()
    files = {p.name: p.read_bytes() for p in sorted(vb.dir.iterdir())}
    return data, files


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _requests(data):
    dec = P.Decoder()
    return [dec.type for b in data if dec.feed(b) == P.FRAME_OK]


def test_every_fault_is_named_by_the_host_checks(cases):
    """The bad files are bad for the reason each case names (ffkit.board.client.check_ffw)."""
    from ffkit import FFKitError
    from ffkit.board.client import check_ffw
    for name, data, host, _ in cases:
        if host is None:
            check_ffw(data)   # a good file, of another model
            continue
        with pytest.raises(FFKitError) as e:
            check_ffw(data, what=name)
        assert str(e.value).startswith(name + " refused: ") and host in str(e.value), \
            (name, str(e.value))


def test_cli_refuses_bad_files_before_sending(vb, cases, tmp_path):
    before = _state(vb)
    with LossyRelay(vb.port) as tap:
        for name, data, host, _ in cases:
            path = tmp_path / (name + ".ffw")
            path.write_bytes(data)
            tap.record()
            code, out, err = run_cli("import", str(path), "--port", tap.port, "--json")
            sent = bytes(tap.down.data)
            assert (name, code, out) == (name, 1, ""), err
            assert err.startswith("ffkit: ") and err.count("\n") == 1, (name, err)
            if host is not None:
                assert err.startswith("ffkit: %s refused: " % path) and host in err, (name, err)
                assert sent == b"", "%s: the CLI sent %d bytes" % (name, len(sent))
            else:   # a good file of another model: refused after INFO names the field
                assert "model signature differs" in err, (name, err)
                assert _requests(sent) == [P.HELLO, P.INFO], (name, _requests(sent))
        tap.record(False)
        with Board(open_link(tap.port)) as board:   # through the tap: nothing lost on it
            assert board.stats()["bad_frames"] == 0
    assert _state(vb) == before


def test_the_ffkit_command_itself_exits_1(vb, cases, tmp_path):
    name, data, host, _ = next(c for c in cases if c[0] == "flipped-weight")
    path = tmp_path / "bad.ffw"
    path.write_bytes(data)
    p = subprocess.run([sys.executable, "-m", "ffkit.cli", "import", str(path), "--port",
                        vb.port], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("ffkit: %s refused: CRC mismatch" % path), p.stderr


def test_board_refuses_bad_files_sent_anyway(vb, cases):
    before = _state(vb)
    with Board(open_link(vb.port)) as board:
        s0 = board.stats()
        for name, data, _, fault in cases:
            with pytest.raises(DeviceError) as e:
                board.request(P.IMPORT_BEGIN, struct.pack("<II", len(data), crc32(data)))
                for off in range(0, len(data), P.CHUNK):
                    board.request(P.IMPORT_CHUNK, struct.pack("<I", off)
                                  + data[off:off + P.CHUNK])
                board.request(P.IMPORT_COMMIT)
            assert e.value.status == P.E_REFUSED, (name, e.value)
            assert fault in e.value.message, (name, e.value.message)
        # the transfer's own CRC (IMPORT_BEGIN's) against the bytes that came
        good = before[0]
        board.request(P.IMPORT_BEGIN, struct.pack("<II", len(good), crc32(good) ^ 1))
        for off in range(0, len(good), P.CHUNK):
            board.request(P.IMPORT_CHUNK, struct.pack("<I", off) + good[off:off + P.CHUNK])
        with pytest.raises(DeviceError) as e:
            board.request(P.IMPORT_COMMIT)
        assert e.value.status == P.E_REFUSED and "CRC mismatch" in e.value.message
        s1 = board.stats()
    assert s1["learn_steps"] == s0["learn_steps"] and s1["bad_frames"] == s0["bad_frames"]
    assert _state(vb) == before   # weights, checkpoints, and no import.tmp left
