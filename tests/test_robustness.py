"""Transfers over a lossy serial line: a virtual board behind tests/relay.py.

The host opens the relay's pty; the relay copies bytes to and from the virtual board's
port and loses LOSS of them in each direction (half dropped, half with one bit flipped;
seeded). The 32 KB digits model must still go both ways whole: the board's state after
the import is the file byte for byte, and an export over the same line gives exactly what
a clean export gives. The protocol is untouched; only the host's per-attempt timeout and
retry count are tuned for the test (a pty's round trip is well under a millisecond).

The client sizes its chunks to the line (ffkit.board.client.Board._chunk_done): at 1% byte
errors a frame of n bytes arrives whole with probability 0.99**n, so a 512-byte chunk (a
526-byte frame) gets through about once in 200 attempts (measured: 11 to 688 attempts per
chunk before the client adapted), while its chunks shrink towards MIN_CHUNK, which
arrive whole about half the time. The chunk size reached is printed with the
retransmission counts.
"""

import os

import pytest

from ffkit.board import client
from ffkit.board.client import Board
from ffkit.board.link import open_link
from ffkit.board.sim import VirtualBoard
from ffrt import proto
from ffrt import ffw_ram

from relay import LossyRelay

pytestmark = pytest.mark.device

LOSS = 0.01          # of the bytes, in each direction: half dropped, half flipped
TIMEOUT = 0.005      # seconds per attempt: a 64-byte chunk's round trip is about 0.3 ms
RETRIES = 2000       # resends before a request gives up (10 s at TIMEOUT)
SLOW_TIMEOUT = 0.25  # per attempt for the commit (it writes a checkpoint): about 20 ms


def _seed():
    return int(os.environ.get("FFKIT_LOSSY_SEED", "7"))


@pytest.fixture(scope="module")
def digits_file(repo_root):
    data = (repo_root / "models" / "digits.ffw").read_bytes()
    assert len(data) == 32138
    return data


@pytest.fixture
def vb(tmp_path):
    with VirtualBoard(tmp_path / "board") as b:
        yield b


def clean_export(vb):
    with Board(open_link(vb.port)) as board:
        return board.export(), board.stats()


def lossy_board(line):
    return Board(open_link(line.port), timeout=TIMEOUT, retries=RETRIES,
                 hello_timeout=TIMEOUT)


def test_import_and_export_over_a_lossy_line(vb, digits_file, monkeypatch, request):
    monkeypatch.setattr(client, "SLOW_TIMEOUT", SLOW_TIMEOUT)
    before, s0 = clean_export(vb)                      # a fresh board: not the file
    assert before != digits_file and len(before) == len(digits_file)
    half = LOSS / 2
    with LossyRelay(vb.port, drop=half, flip=half, seed=_seed()) as line:
        with lossy_board(line) as board:
            counts = {"hello_resends": board.resends}
            assert board.import_weights(digits_file) == ffw_ram.load(digits_file).step
            counts["import_resends"] = board.resends - counts["hello_resends"]
            r0 = board.resends
            exported = board.export()
            counts["export_resends"] = board.resends - r0
            counts.update(host_bad_frames=board.bad_frames, stale_replies=board.stale,
                          chunk_reached=board.chunk)
            assert board.chunk < proto.CHUNK  # the client adapted to the line
        wire = line.stats()
        assert line.error is None
    after, s1 = clean_export(vb)
    assert after == digits_file                       # the import landed exactly
    assert exported == after                          # the export: the board's true state
    counts["board_bad_frames"] = s1["bad_frames"] - s0["bad_frames"]
    down, up = wire["host->board"], wire["board->host"]
    # the line did lose about LOSS of the bytes each way, and both ends saw the damage
    for d in (down, up):
        assert 0.5 * LOSS < (d["dropped"] + d["flipped"]) / d["bytes_in"] < 1.5 * LOSS, d
    assert counts["board_bad_frames"] > 0 and counts["host_bad_frames"] > 0
    assert counts["export_resends"] > 0 and counts["import_resends"] > 0
    print("\nlossy line (%.1f%% each way, seed %d): %s; wire %s"
          % (100 * LOSS, _seed(), counts, wire))
    request.node.user_properties.append(("lossy", dict(counts, wire=wire)))


def test_relay_without_loss_is_transparent(vb):
    """The tap alone: every byte passes, and it counts them."""
    with LossyRelay(vb.port) as line:
        line.record()
        with Board(open_link(line.port)) as board:
            data = board.export()
            assert board.resends == 0 and board.bad_frames == 0
        st = line.stats()
    assert data == clean_export(vb)[0]
    for d in st.values():
        assert d["bytes_in"] == d["bytes_out"] > 0 and d["dropped"] == d["flipped"] == 0
    assert len(line.down.data) == st["host->board"]["bytes_in"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", [0.001, 0.003])
def test_default_chunks_over_a_mildly_lossy_line(vb, digits_file, loss, monkeypatch):
    """Lighter noise, the client's defaults but for the per-attempt timeout."""
    monkeypatch.setattr(client, "SLOW_TIMEOUT", SLOW_TIMEOUT)
    with LossyRelay(vb.port, drop=loss / 2, flip=loss / 2, seed=_seed()) as line:
        with Board(open_link(line.port), timeout=0.01, retries=RETRIES,
                   hello_timeout=0.01) as board:
            board.import_weights(digits_file)
            assert board.export() == digits_file
            print("\n%.1f%% loss: %d resends, %d bad frames seen by the host, chunk %d"
                  % (100 * loss, board.resends, board.bad_frames, board.chunk))
    assert clean_export(vb)[0] == digits_file
