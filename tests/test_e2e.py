"""End to end: the real firmware on virtual boards, driven by ffkit's client over pyserial.

Each board is firmware/main.py in the MicroPython unix port on a pty (ffkit.board.sim), its
filesystem a temporary folder; the host opens /dev/pts/N with pyserial as it would a USB
board. What a board computes is held to a host FFNet doing the same steps, byte for byte.
"""

import contextlib
import io

import pytest

from ffkit import FFKitError, cli

from ffkit.twins import kernels_np
from ffkit.board.client import Board, BoardTimeout, DeviceError, IncompatibleModel, connect
from ffkit.board.link import open_link
from ffkit.board.sim import VirtualBoard
from ffrt import proto
from ffrt import ffw_ram
from ffrt.model import Config
from ffrt.net import FFNet

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def digits():
    from ffkit.data import datasets
    d = datasets.load("digits")
    X = [[int(v) for v in row] for row in d.X_train[:120]]
    y = [int(v) for v in d.y_train[:120]]
    return X, y


@pytest.fixture
def vb(tmp_path):
    with VirtualBoard(tmp_path / "board") as b:
        yield b


def host_net():
    """The net a fresh board boots with (no checkpoint, no model.ffw): Config()."""
    return FFNet(Config(), kernels=kernels_np)


def test_hello_and_info(vb):
    with connect(vb.port) as board:
        assert board.protocol_version == proto.PROTOCOL_VERSION
        info = board.info()
    assert info["firmware"] == board.firmware
    assert info["model"] == {"n_features": 64, "n_classes": 10, "layers": [128, 128],
                             "goodness_from": 0, "pipeline": 0, "recurrent": 0,
                             "label_repeat": 1}
    assert info["boot"] == "fresh" and info["step"] == 0 and info["mem_free"] > 0


def test_board_learns_the_same_bits_as_the_host(vb, digits):
    X, y = digits
    host = host_net()
    with connect(vb.port) as board:
        for i in range(20):                       # LEARN, one request per step
            got = board.learn(X[i], y[i])
            host.learn_one(X[i], y[i])
            assert got == (host.step, list(host.last_pos), list(host.last_neg))
        samples = list(zip(X[20:], y[20:])) + [(X[0], None)]
        step, preds = board.stream(samples)      # STREAM: predict, then learn
        want = []
        for x, t in samples:
            want.append(host.predict_one(x))
            if t is not None:
                host.learn_one(x, t)
        assert (step, preds) == (host.step, want)
        label, good = board.predict(X[3])
        assert (label, good) == (host.predict_one(X[3]), list(host.goodness))
        assert board.export() == bytes(ffw_ram.encode(host))
        stats = board.stats()
    assert stats["learn_steps"] == host.step and stats["bad_frames"] == 0


def test_export_a_import_b_predict_alike(tmp_path, digits):
    X, y = digits
    with VirtualBoard(tmp_path / "a") as va, VirtualBoard(tmp_path / "b") as vb_:
        with connect(va.port) as a, connect(vb_.port) as b:
            a.stream(list(zip(X[:60], y[:60])))
            b.stream(list(zip(X[60:80], y[60:80])))       # B starts elsewhere
            data = a.export()
            assert b.export() != data
            seen = []
            step = b.import_weights(data, progress=lambda d, t: seen.append((d, t)))
            assert step == 60 and seen[-1] == (len(data), len(data))
            assert b.export() == data                      # right after the import
            for x in X[80:100]:
                assert a.predict(x) == b.predict(x)
            assert b.info()["step"] == 60


def test_import_refusals_leave_the_weights(vb):
    other = FFNet(Config(n_features=64, n_classes=10, layers=(64, 64), act_shift=(8, 7)))
    with connect(vb.port) as board:
        before = board.export()
        with pytest.raises(IncompatibleModel, match=r"layers is \(64, 64\) in the file, "
                                                    r"\(128, 128\) on the board"):
            board.import_weights(bytes(ffw_ram.encode(other)))
        # every shape field is in INFO, so the host refuses before sending ...
        net = FFNet(Config(goodness_from=1), kernels=kernels_np)
        with pytest.raises(IncompatibleModel, match="goodness_from"):
            board.import_weights(bytes(ffw_ram.encode(net)))
        # ... and a file sent anyway is refused by the board itself, at commit
        with pytest.raises(DeviceError) as e:
            board.import_weights(bytes(ffw_ram.encode(net)), check_signature=False)
        assert e.value.status == proto.E_REFUSED and "goodness_from" in str(e.value)
        assert board.export() == before
        # hyperparameters come with the file (as SET may change them on the board)
        data = bytes(ffw_ram.encode(FFNet(Config(seed=7, theta=(90000, 90000)),
                                      kernels=kernels_np)))
        assert board.import_weights(data) == 0
        assert board.export() == data


def test_power_cut_boots_from_checkpoint(vb, digits):
    X, y = digits
    with connect(vb.port, timeout=0.3) as board:
        board.stream(list(zip(X[:30], y[:30])))
        seq, slot = board.checkpoint()
        saved = board.export()
        board.stream(list(zip(X[30:40], y[30:40])))       # not checkpointed
        assert board.info()["step"] == 40
        vb.power_cut()
        # the host's port stays open through the power cut; a request sent while the
        # board is off is lost, never executed later
        with pytest.raises(BoardTimeout, match="LEARN"):
            board.request(proto.LEARN, bytes([y[0]]) + bytes(128), retries=0)
        vb.start()
        board.hello(timeout=2.0)
        info = board.info()
        assert info["boot"] == "checkpoint" and info["checkpoint"] == seq
        assert info["step"] == 30
        assert board.export() == saved


def test_busy_port_and_timeout_messages(vb):
    with connect(vb.port) as board:
        with pytest.raises(FFKitError, match="may be in use by another program"):
            connect(vb.port)
        board.repl()                 # the board now runs the REPL, not the protocol
    with pytest.raises(BoardTimeout, match="no reply to HELLO"):
        link = open_link(vb.port)
        try:
            Board(link, timeout=0.2, retries=1)
        finally:
            link.close()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["info", "--port", vb.port, "--timeout", "0.1"])
    assert code == 1 and "ffkit: no reply to HELLO from %s" % vb.port in err.getvalue()
