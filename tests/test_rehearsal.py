"""The class-balanced rehearsal buffer: reservoir per class, replay in turn, same bits
everywhere, nothing allocated per step on the board."""

import pytest

from ffkit.board import mpy

from ffkit.twins import kernels_np
from ffrt import kernels_ref
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.rehearsal import Rehearsal

CFG = dict(n_features=6, n_classes=3, in_max=15, in_scale=17, layers=(12, 12), lr_shift=22)


def _stream(n, blocks=True):
    """Labels in long blocks (as a day of activities), features derived from the label."""
    out = []
    for i in range(n):
        y = (i // 40) % 3 if blocks else i % 3
        x = [(y * 5 + j * (i % 7)) % 16 for j in range(6)]
        out.append((x, y))
    return out


def _state(net):
    return [bytes(w) for w in net.weights], bytes(net.head), bytes(net.rngs[0]), net.step


def test_buffer_is_class_balanced_and_a_reservoir():
    net = FFNet(Config(**CFG))
    r = Rehearsal(net, per_class=4, replay=0)
    for x, y in _stream(300):
        r.learn_one(x, y)
    assert [r.stored(c) for c in range(3)] == [4, 4, 4]
    assert [r.seen(c) for c in range(3)] == [120, 100, 80]
    # kept samples come from the whole stream of their class, not just its start or end
    firsts = {tuple(x) for x, y in _stream(300)[:4] if y == 0}
    kept = {bytes(r.sample(j)) for j in range(4)}
    assert kept != {bytes(t) for t in firsts}
    assert r.ram_bytes() == 3 * 4 * 6 + 6 + 3 + 12 + 4


def test_replay_adds_learn_steps_in_turn_over_classes():
    net = FFNet(Config(**CFG))
    r = Rehearsal(net, per_class=2, replay=3)
    for x, y in _stream(10):  # only class 0 so far: replays stay in class 0
        r.learn_one(x, y)
    assert net.step == 10 + 30
    assert r.stored(1) == r.stored(2) == 0


def test_a_bad_sample_is_neither_learnt_nor_stored():
    net = FFNet(Config(**CFG))
    r = Rehearsal(net, per_class=2, replay=1)
    r.learn_one([1] * 6, 1)
    before = (_state(net), bytes(r._buf), list(r._seen))
    with pytest.raises(ValueError):
        r.learn_one([1] * 6, 7)
    with pytest.raises(ValueError):
        r.learn_one([99] * 6, 1)
    assert (_state(net), bytes(r._buf), list(r._seen)) == before


def test_same_bits_with_every_kernel_twin():
    runs = []
    for k in (kernels_ref, kernels_np):
        net = FFNet(Config(**CFG), kernels=k)
        r = Rehearsal(net, per_class=3, replay=2)
        for x, y in _stream(150):
            r.learn_one(x, y)
        runs.append((_state(net), bytes(r._buf)))
    assert runs[0] == runs[1]


_MPY = """
import gc, json
from ffrt.model import Config
from ffrt.net import FFNet
from ffrt.rehearsal import Rehearsal
net = FFNet(Config(**%r))
r = Rehearsal(net, per_class=3, replay=2)
xs = [bytearray([(y * 5 + j * (i %% 7)) %% 16 for j in range(6)]) for i, y in
      enumerate([(i // 40) %% 3 for i in range(150)])]
ys = [(i // 40) %% 3 for i in range(150)]
def run(a, b):
    for i in range(a, b):
        r.learn_one(xs[i], ys[i])
def measure():
    run(0, 100)
    gc.collect()
    m = gc.mem_alloc()
    run(100, 150)
    return gc.mem_alloc() - m
alloc = measure()
import binascii
print(json.dumps({"alloc": alloc, "crc": binascii.crc32(bytes(net.weights[0]) +
      bytes(net.weights[1]) + bytes(net.head) + bytes(r._buf)), "step": net.step}))
"""


@pytest.mark.device
def test_micropython_same_bits_and_no_allocation():
    import zlib

    got = mpy.run_json(_MPY % (CFG,))
    net = FFNet(Config(**CFG))
    r = Rehearsal(net, per_class=3, replay=2)
    for x, y in _stream(150):
        r.learn_one(bytearray(x), y)
    want = zlib.crc32(bytes(net.weights[0]) + bytes(net.weights[1]) + bytes(net.head)
                      + bytes(r._buf))
    assert (got["crc"], got["step"]) == (want, net.step)
    assert got["alloc"] == 0
