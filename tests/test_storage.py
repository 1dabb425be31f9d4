"""Tests for ffrt.storage (A/B checkpoints, the import stage) and ffw's streaming reader.

A power cut is modelled by what it leaves in the slot being written: a prefix of the new
file (LittleFS, or FAT that truncated first), the new file's prefix over the old file's
tail (FAT writing in place), or any one byte flipped. In every case boot takes the other
slot, and a refused slot never leaves a partially loaded net. The same checks run in the
MicroPython unix port.
"""

import io
import os
import zlib

import pytest

from ffkit.board import mpy
from ffrt import ffw, storage
from ffrt import ffw_write
from ffrt import ffw_ram
from ffrt.ffw import FFWError
from ffrt.model import Config
from ffrt.net import FFNet
from test_ffw import ALL_FAULTS, SMALL, SAMPLES, small_net

CFG = dict(n_features=4, n_classes=3, in_max=15, layers=(8, 6))


def _net(steps):
    net = FFNet(Config(**CFG))
    for i in range(steps):
        net.learn_one([(i * 5 + j) % 16 for j in range(4)], i % 3)
    return net


def _two_checkpoints(folder):
    """Slot A holds seq 1 (3 steps), slot B seq 2 (6 steps); returns both files' .ffw."""
    st = storage.Storage(str(folder))
    a, b = _net(3), _net(6)
    assert st.save(a) == (1, 0)
    assert st.save(b) == (2, 1)
    return bytes(ffw_ram.encode(a)), bytes(ffw_ram.encode(b))


def _slot(folder, i):
    return os.path.join(str(folder), storage.SLOTS[i])


def _boot(folder):
    """(seq, .ffw of the net) after load_newest into a fresh net, as at boot."""
    net = _net(1)
    seq = storage.Storage(str(folder)).load_newest(net)
    return seq, bytes(ffw_ram.encode(net))


def test_saves_alternate_slots_and_the_newest_wins(tmp_path):
    st = storage.Storage(str(tmp_path))
    assert st.newest() is None and st.load_newest(_net(0)) is None
    assert [st.save(_net(k)) for k in (1, 2, 3)] == [(1, 0), (2, 1), (3, 0)]
    fresh = storage.Storage(str(tmp_path))
    assert fresh.newest()[:2] == (3, 0) and fresh.save(_net(4)) == (4, 1)
    assert _boot(tmp_path) == (4, bytes(ffw_ram.encode(_net(4))))
    assert os.path.getsize(_slot(tmp_path, 0)) == 8 + ffw.file_size(Config(**CFG)) + 4


def test_a_checkpoint_carries_its_settings(tmp_path):
    net = _net(2)
    net.cfg = Config(**dict(CFG, lr_shift=20, theta=(500, 600)))  # as SET does
    storage.Storage(str(tmp_path)).save(net)
    seq, cfg = storage.Storage(str(tmp_path)).newest()[0::2]
    back = FFNet(cfg, init=False)
    assert storage.Storage(str(tmp_path)).load_newest(back) == seq == 1
    assert back.cfg.lr_shift == 20 and ffw_ram.encode(back) == ffw_ram.encode(net)


def _cut_positions(n):
    return sorted(set(range(0, n, 7)) | {1, 4, 7, 8, 9, 13, 22, n - 5, n - 4, n - 1})


def test_a_slot_cut_at_any_byte_is_skipped(tmp_path):
    a, b = _two_checkpoints(tmp_path)
    whole = open(_slot(tmp_path, 1), "rb").read()
    for k in _cut_positions(len(whole)):
        with open(_slot(tmp_path, 1), "wb") as f:  # the write of seq 2 died at byte k
            f.write(whole[:k])
        assert _boot(tmp_path) == (1, a), k


def test_a_slot_written_in_place_over_an_older_one_is_skipped(tmp_path):
    a, b = _two_checkpoints(tmp_path)
    old = open(_slot(tmp_path, 0), "rb").read()
    st = storage.Storage(str(tmp_path))
    st.save(_net(9))  # seq 3 into slot A
    new = open(_slot(tmp_path, 0), "rb").read()
    for k in _cut_positions(len(new)):
        with open(_slot(tmp_path, 0), "wb") as f:  # FAT: new bytes up to k, old ones after
            f.write(new[:k] + old[k:])
        assert _boot(tmp_path) == (2, b), k


def test_a_flipped_byte_anywhere_is_skipped_and_never_half_loads(tmp_path):
    a, b = _two_checkpoints(tmp_path)
    whole = open(_slot(tmp_path, 1), "rb").read()
    for k in range(0, len(whole), 3):
        bad = bytearray(whole)
        bad[k] ^= 0x04
        with open(_slot(tmp_path, 1), "wb") as f:
            f.write(bad)
        assert _boot(tmp_path) == (1, a), k
    with open(_slot(tmp_path, 0), "wb") as f:  # both slots bad: nothing loads, net untouched
        f.write(b"FFCK")
    net = _net(5)
    before = bytes(ffw_ram.encode(net))
    assert storage.Storage(str(tmp_path)).load_newest(net) is None
    assert bytes(ffw_ram.encode(net)) == before


def test_a_checkpoint_of_another_shape_is_not_loaded(tmp_path):
    storage.Storage(str(tmp_path)).save(FFNet(Config(**dict(CFG, layers=(8, 5)))))
    net = _net(2)
    before = bytes(ffw_ram.encode(net))
    assert storage.Storage(str(tmp_path)).load_newest(net) is None
    assert bytes(ffw_ram.encode(net)) == before
    assert storage.Storage(str(tmp_path)).newest()[0] == 1  # valid, just not this net's


def test_the_import_stage_commits_through_a_checkpoint(tmp_path):
    st = storage.Storage(str(tmp_path))
    st.save(_net(1))
    data = bytes(ffw_ram.encode(_net(7)))
    st.stage_open()
    for i in range(0, len(data), 100):
        st.stage_write(memoryview(data)[i:i + 100])
    net = _net(2)
    assert st.commit_stage(net, len(data)) == 2
    assert bytes(ffw_ram.encode(net)) == data
    assert _boot(tmp_path) == (2, data)
    assert not os.path.exists(os.path.join(str(tmp_path), storage.STAGE))


def test_a_refused_stage_leaves_net_and_checkpoints_alone(tmp_path):
    st = storage.Storage(str(tmp_path))
    st.save(_net(1))
    slot_a = open(_slot(tmp_path, 0), "rb").read()
    bad = bytearray(ffw_ram.encode(_net(7)))
    bad[100] ^= 1
    st.stage_open()
    st.stage_write(bad)
    net = _net(2)
    before = bytes(ffw_ram.encode(net))
    with pytest.raises(FFWError, match="CRC mismatch"):
        st.commit_stage(net, len(bad))
    assert bytes(ffw_ram.encode(net)) == before
    assert open(_slot(tmp_path, 0), "rb").read() == slot_a
    assert not os.path.exists(_slot(tmp_path, 1))
    assert st.newest()[0] == 1
    assert not os.path.exists(os.path.join(str(tmp_path), storage.STAGE))


# ---- ffw's streaming reader against load_into's table of faults -------------------------------

_HYPER = ("theta", "lr", "seed")  # load_stream takes a file's hyperparameters with it


@pytest.mark.parametrize("name, make, words", ALL_FAULTS, ids=[f[0] for f in ALL_FAULTS])
def test_stream_reader_refuses_what_load_into_refuses(name, make, words):
    bad = make()
    target = small_net(steps=3)
    before = bytes(ffw_ram.encode(target))
    if name in _HYPER:
        assert ffw.load_stream(target, io.BytesIO(bad), len(bad)) == len(bad)
        assert bytes(ffw_ram.encode(target)) == bad  # adopted whole, settings included
        return
    with pytest.raises(FFWError, match=words):
        ffw.check_stream(io.BytesIO(bad), target.cfg, len(bad))
    with pytest.raises(FFWError, match=words):
        ffw.load_stream(target, ffw_ram.BytesReader(bad), len(bad))
    assert bytes(ffw_ram.encode(target)) == before


def test_stream_reader_round_trip_and_encode_range():
    net = small_net(steps=4)
    data = bytes(ffw_ram.encode(net))
    f = io.BytesIO(b"xyz" + data + b"tail")
    f.seek(3)
    assert ffw.check_stream(f, net.cfg) == (net.cfg, len(data)) and f.tell() == 3 + len(data)
    other = FFNet(Config(**SMALL))
    f.seek(3)
    assert ffw.load_stream(other, f) == len(data)
    assert bytes(ffw_ram.encode(other)) == data
    assert [other.predict_one(x) for x, _ in SAMPLES] == [net.predict_one(x) for x, _ in SAMPLES]
    out = bytearray(600)
    for start in range(0, len(data), 41):
        n = min(len(out), len(data) - start)
        assert ffw_write.encode_range(net, start, out, n) == n
        assert bytes(out[:n]) == data[start:start + n]
    assert ffw_write.stream_crc(net)[1] == zlib.crc32(data)


_MPY_SCRIPT = """
import json, os
from ffrt import ffw, storage
from ffrt import ffw_write
from ffrt import ffw_ram
from ffrt.model import Config
from ffrt.net import FFNet
CFG = %r

def net_(steps):
    net = FFNet(Config(**CFG))
    for i in range(steps):
        net.learn_one([(i * 5 + j) %% 16 for j in range(4)], i %% 3)
    return net

def boot():
    net = net_(1)
    seq = storage.Storage().load_newest(net)
    return [seq, ffw_write.stream_crc(net)[1]]

st = storage.Storage()
out = {"saves": [list(st.save(net_(3))), list(st.save(net_(6)))], "boot": boot()}
whole = open(storage.SLOTS[1], "rb").read()
cuts = []
for k in range(0, len(whole), 11):
    f = open(storage.SLOTS[1], "wb")
    f.write(whole[:k])
    f.close()
    cuts.append(boot())
flips = []
for k in range(0, len(whole), 5):
    bad = bytearray(whole)
    bad[k] ^= 4
    f = open(storage.SLOTS[1], "wb")
    f.write(bad)
    f.close()
    flips.append(boot())
out["cuts"] = cuts
out["flips"] = flips
print(json.dumps(out))
"""


@pytest.mark.device
def test_same_checkpoints_in_micropython(micropython, tmp_path):
    out = mpy.run_json(_MPY_SCRIPT % (CFG,), cwd=str(tmp_path))
    a, b = zlib.crc32(bytes(ffw_ram.encode(_net(3)))), zlib.crc32(bytes(ffw_ram.encode(_net(6))))
    assert out["saves"] == [[1, 0], [2, 1]] and out["boot"] == [2, b]
    assert out["cuts"] and all(c == [1, a] for c in out["cuts"])
    assert out["flips"] and all(c == [1, a] for c in out["flips"])
    # the files MicroPython wrote are the ones CPython writes
    (tmp_path / "py").mkdir()
    _two_checkpoints(tmp_path / "py")
    assert open(_slot(tmp_path / "py", 0), "rb").read() == open(_slot(tmp_path, 0), "rb").read()
