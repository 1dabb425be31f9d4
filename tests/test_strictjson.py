"""ffrt.strictjson: the strict reader of SET and ADAPT bodies, in CPython and MicroPython.

Issue 12 (an independent fuzzer): MicroPython's json.loads accepted ``{"lr_shift" 26}`` and
``{"lr_shift": 26}\\x00``, so a malformed SET replied success and changed the model, and
590 ``[`` cost it 4-8 KB of heap (MemoryError replies at 192K). Every malformed body here
is refused, every body the host sends is read as json.loads reads it, the same in both
implementations; a malformed SET over the protocol is refused and changes nothing.
"""

import json
import struct
import sys
import types

import pytest

from ffkit.board import mpy
from ffkit.board.client import Board, DeviceError
from ffrt import proto as P
from ffrt import strictjson

# (body, words in the error)
MALFORMED = [
    (b'{"lr_shift" 26}', "':' expected"),                    # the fuzzer's missing colon
    (b'{"lr_shift": 26}\x00', "the end expected"),          # the fuzzer's trailing NUL
    (b'[' * 590, "'{' expected"),                              # the fuzzer's deep nesting
    (b'{"a": ' + b'[' * 590, "nested deeper than 4"),
    (b'{"a": [[[[1]]]]}', "nested deeper than 4"),
    (b'{"lr_shift": 26} x', "the end expected"),
    (b'{"lr_shift": 26}{}', "the end expected"),
    (b'{}}', "the end expected"),
    (b'{"lr_shift": 26}\n\x00', "the end expected"),
    (b'{"lr": 1 "theta": 2}', "',' or '}' expected"),          # missing commas
    (b'{"a": [1 2]}', "',' or ']' expected"),
    (b'{"lr": 1,, "theta": 2}', "a string expected"),
    (b'{"lr": 1,}', "a string expected"),                                  # trailing commas
    (b'{"a": [1,]}', "a value expected"),
    (b'{,}', "a string expected"),
    (b'{"lr" "theta": 1}', "':' expected"),
    (b'{"lr":: 1}', "a value expected"),
    (b'{"lr": 1, "lr": 2}', "a key is repeated"),             # duplicate keys
    (b'{"lr": 1.5}', "no floats"),                             # floats, however written
    (b'{"lr": 1e3}', "no floats"),
    (b'{"lr": 1E3}', "no floats"),
    (b'{"lr": 1e999}', "no floats"),
    (b'{"lr": -0.0}', "no floats"),
    (b'{"lr": .5}', "a value expected"),
    (b'{"lr": 01}', "no leading zero"),
    (b'{"lr": -}', "1 to 9 digits"),
    (b'{"lr": +1}', "a value expected"),
    (b'{"lr": 1234567890}', "1 to 9 digits"),                 # no big ints either
    (b'{"lr": ' + b'9' * 80 + b'}', "1 to 9 digits"),
    (b'{"lr": NaN}', "a value expected"),
    (b'{"lr": Infinity}', "a value expected"),
    (b'{"lr": tru}', "a value expected"),
    (b'{"lr": True}', "a value expected"),
    (b'{"lr": nul}', "a value expected"),
    (b'{"lr": falsey}', "',' or '}' expected"),
    (b"{'lr': 1}", "a string expected"),
    (b'{lr: 1}', "a string expected"),
    (b'{1: 1}', "a string expected"),
    (b'{"l\\u0072": 1}', "no escapes"),
    (b'{"lr\\"": 1}', "no escapes"),
    (b'{"\xc3\xa9": 1}', "printable ASCII, no escapes"),
    (b'{"a\nb": 1}', "printable ASCII, no escapes"),
    (b'{"' + b'k' * 33 + b'": 1}', "at most 32 bytes"),
    (b'{"a": {"b": 1}}', "a value expected"),                  # no nested objects
    (b'{"a": ["x"]}', "']', '[' or a value expected"),                     # no strings in arrays
    (b'{"a": [' + b'1,' * 16 + b'1]}', "more than 16 items"),
    (b'{' + b','.join(b'"k%d": 1' % i for i in range(17)) + b'}', "more than 16 items"),
    (b'{"a": [' + b','.join([b'[' + b','.join([b'[]'] * 16) + b']'] * 4) + b']}',
     "more than 64 objects and arrays"),
    (b'{"a": ' + b' ' * 600 + b'1}', "more than 600 bytes"),
    (b'\xef\xbb\xbf{}', "'{' expected"),
    (b'', "ends early"),
    (b'   ', "ends early"),
    (b'{', "ends early"),
    (b'{"lr": 3', "ends early"),
    (b'{"lr', "ends early"),
    (b'{"lr":', "ends early"),
    (b'[1]', "'{' expected"),
    (b'"learning"', "'{' expected"),
    (b'3', "'{' expected"),
    (b'null', "'{' expected"),
    (b'not json', "'{' expected"),
]


def _host_bodies():
    """The SET and ADAPT JSON bodies ffkit.board.client.Board builds (captured from its requests),
    and the ADAPT body ffrt.log_ops logs (json.dumps' default separators)."""
    sent = []

    def request(t, body=b"", timeout=None):
        sent.append(bytes(body))
        if t == P.SET:
            return b"{}"
        return struct.pack("<BBBIIBBHH", 0, 1, 0, 0, 0, 0, 0, 0, 0)

    b = Board(types.SimpleNamespace(write=lambda data: None), hello=False)
    b.request = request
    for settings in ({}, {"learning": False}, {"learning": True}, {"lr_shift": 26},
                     {"theta": [2500, 3000]}, {"theta": 2500}, {"ff_learning": False},
                     {"learning": True, "lr": 3, "lr_shift": 21, "act_shift": [6, 6],
                      "gshift": [0, 1], "neg_mode": 2, "head_lr": 4, "head_shift": 20,
                      "head_gshift": 2, "grad_floor": 0, "norm_target": 1024}):
        b.set(**settings)
    b.adapt(4, 1, "goodness", ((0, 22), (5, 24)))
    b.adapt(2, 1, "head", (), ((10, (1800, 1400)),), guard=(64, 3, 128, 0),
            sleep=(2, 3, True))
    # the largest: 16 entries in each schedule, 2 layers
    b.adapt(255, 16, "head", tuple((i * 64, 1 + i) for i in range(16)),
            tuple((i * 64, (3000 + i, 2000 + i)) for i in range(16)),
            guard=(65535, 255, 256, 65535), sleep=(65535, 1024, True))
    bodies = [s if i < 8 else s[3:] for i, s in enumerate(sent)]
    assert bodies[0] == b"{}" and 500 < len(sent[-1]) <= P.MAX_BODY
    bodies.append(json.dumps({"lr_shift_schedule": [[0, 22]], "theta_schedule": [],
                              "guard": [64, 3, 128, 0], "sleep": [6, 10, 0]}).encode())
    return bodies


VALID = _host_bodies() + [
    b' {\n\t"lr" : 1 ,\r\n "x" : null , "y":false,"s":"ok"} \n',
    b'{"a": [999999999, -999999999, 0, -0, []], "' + b'k' * 32 + b'": 1}',
    b'{"a": [' + b'1,' * 15 + b'1]}',
    b'{' + b','.join(b'"k%d": 1' % i for i in range(16)) + b'}',
    b'{"a": [[[1, true, null]], [[]]]}',
    b'{"a": [' + b','.join(b'[' + b','.join([b'[]'] * m) + b']' for m in (15, 15, 14, 14))
    + b']}',  # 64 objects and arrays
    b'{"a": ' + b' ' * 592 + b'1}',   # 600 bytes
]


def _outcomes(bodies, loads):
    out = []
    for body in bodies:
        try:
            out.append(["ok", loads(body)])
        except ValueError as e:
            out.append(["err", str(e)])
    return out


def test_the_fuzzers_bodies_and_every_malformed_one_are_refused():
    for body, words in MALFORMED:
        with pytest.raises(ValueError) as e:
            strictjson.loads(body)
        assert words in str(e.value), (body, str(e.value))
        assert str(e.value).startswith(("byte ", "more than 600", "a key is repeated"))
    with pytest.raises(ValueError, match="byte 12: ':' expected"):
        strictjson.loads(b'{"lr_shift" 26}')
    with pytest.raises(ValueError, match="byte 16: the end expected"):
        strictjson.loads(b'{"lr_shift": 26}\x00')


def test_the_bodies_the_host_sends_read_as_json_reads_them():
    for body in VALID:
        assert strictjson.loads(body) == json.loads(body), body
        assert strictjson.loads(memoryview(bytearray(body))) == json.loads(body)
    got = strictjson.loads(b'{"lr": 3, "l": false, "t": [1, [2]], "n": null}')
    assert type(got["lr"]) is int and got["l"] is False and got["n"] is None


@pytest.mark.device
def test_micropython_reads_them_the_same_and_allocates_little(micropython):
    bodies = [b for b, _ in MALFORMED] + VALID
    script = ("import gc, json\nfrom ffrt.strictjson import loads\n"
              "bodies = %r\nout = []\nheap = []\n"
              "for b in bodies:\n"
              "    gc.collect()\n"
              "    a = gc.mem_alloc()\n"
              "    try:\n"
              "        x = loads(b)\n"
              "        heap.append(gc.mem_alloc() - a)\n"
              "        out.append(['ok', x])\n"
              "    except ValueError as e:\n"
              "        heap.append(gc.mem_alloc() - a)\n"
              "        out.append(['err', str(e)])\n"
              "print(json.dumps([out, heap]))\n" % (bodies,))
    got, heap = mpy.run_json(script)
    want = json.loads(json.dumps(_outcomes(bodies, strictjson.loads)))
    for b, g, w in zip(bodies, got, want):
        assert g == w, b
    # bytes allocated, garbage included (x64 unix port: 64-bit objects, 16-byte blocks;
    # about half on a 32-bit board). A refusal costs the reader, the error and what was
    # read before it; 590 '[' cost MicroPython's json 46 KB here (4-8 KB on a board).
    caps = [i for i, (_, words) in enumerate(MALFORMED) if "more than" in words]
    assert max(h for i, h in enumerate(heap[:len(MALFORMED)]) if i not in caps) <= 1536
    for deep in (b'[' * 590, b'{"a": ' + b'[' * 590):
        assert heap[bodies.index(deep)] <= 1536
    assert max(heap) <= 6144, max(heap)   # 64 lists at most: the largest ADAPT holds 53


def test_the_board_loads_it_only_for_a_body():
    """Not imported at boot or with ffrt.net_ops / ffrt.schedule; dropped after each body."""
    from ffrt import net_ops, schedule, server
    from ffrt.model import Config
    from ffrt.net import FFNet

    sys.modules.pop("ffrt.strictjson", None)
    for name in ("ffrt.net_ops", "ffrt.schedule", "ffrt.server"):
        src = open(sys.modules[name].__file__).read()
        assert "\nimport ffrt.strictjson" not in src and "\nfrom ffrt import strictjson" \
            not in src and "\nfrom ffrt.strictjson" not in src, name
    srv = server.Server(FFNet(Config()), None)
    before = srv.net.cfg.as_dict()
    with pytest.raises(P.Reply) as e:
        net_ops.HANDLERS[P.SET](srv, memoryview(b'{"lr_shift" 26}'))
    assert e.value.status == P.E_BAD_VALUE and "SET takes a JSON object (byte 12" in str(e.value)
    assert srv.net.cfg.as_dict() == before and "ffrt.strictjson" not in sys.modules
    with pytest.raises(P.Reply) as e:  # not an object: refused before loading the reader
        net_ops.HANDLERS[P.SET](srv, memoryview(b'[1]'))
    want = _outcomes([b'[1]'], strictjson.loads)[0][1]   # the reader's own answer
    assert str(e.value) == "SET takes a JSON object (%s)" % want
    n = net_ops.HANDLERS[P.SET](srv, memoryview(b'{"lr_shift": 26}'))
    assert json.loads(bytes(srv.enc.body[:n]))["lr_shift"] == 26 == srv.net.cfg.lr_shift
    assert "ffrt.strictjson" not in sys.modules
    with pytest.raises(ValueError, match="JSON object with .* the end expected"):
        schedule.parse(b'{"lr_shift_schedule": [[0, 25]]}\x00', srv.net.cfg)
    assert "ffrt.strictjson" not in sys.modules


@pytest.mark.device
def test_a_malformed_set_on_a_virtual_board_is_refused_and_changes_nothing(tmp_path):
    from ffkit.board.client import connect
    from ffkit.board.sim import VirtualBoard

    bad = [b'{"lr_shift" 26}', b'{"lr_shift": 26}\x00', b'{"lr_shift": 26}{"lr": 3}',
           b'{"lr_shift": 26 "lr": 3}', b'{"lr_shift": 26, "lr_shift": 25}',
           b'{"lr_shift": 26,}', b'{"theta": [3000, 3000,]}', b'{"lr": 3.0}',
           b'[' * 590, b'{"theta": ' + b'[' * 290 + b']' * 290 + b'}']
    with VirtualBoard(tmp_path / "board") as vb, connect(vb.port, timeout=10.0) as b:
        before = b.set()
        assert before["lr_shift"] != 26 and before["lr"] != 3
        for body in bad:
            with pytest.raises(DeviceError) as e:
                b.request(P.SET, body)
            assert e.value.status == P.E_BAD_VALUE, (body, e.value)
            assert "SET takes a JSON object (" in e.value.message, (body, e.value)
            assert b.set() == before, body
        assert b.set(lr_shift=26)["lr_shift"] == 26   # a well-formed SET still applies
        assert not vb.console(), vb.console()


@pytest.mark.device
def test_sets_at_the_smallest_heap(repo_root):
    """The .mpy firmware with the digits net at the heap tests/test_server.py pins (_HEAP):
    ffrt.net_ops leaves a few KB free, in pieces, and each SET body loads ffrt.strictjson and
    drops it again; twenty SETs, well-formed or not, all answer as they should."""
    import shutil
    import tempfile

    from ffkit.board import builds
    from ffkit.board.client import connect
    from ffkit.board.sim import VirtualBoard

    board = tempfile.mkdtemp(prefix="vb")   # a short folder, as in tests/test_server.py
    try:
        builds.build_bundle("unix", board, model=repo_root / "models" / "digits.ffw")
        from test_server import _HEAP
        with VirtualBoard(board, heap=_HEAP) as vb, connect(vb.port, timeout=10.0) as b:
            before = b.set()
            for _ in range(4):
                assert b.set(lr_shift=26)["lr_shift"] == 26
                assert b.set(**before) == before
                for body in (b'{"lr_shift" 26}', b'[' * 590, b'{"lr_shift": 26}\x00'):
                    with pytest.raises(DeviceError) as e:
                        b.request(P.SET, body)
                    assert e.value.status == P.E_BAD_VALUE, e.value
            assert b.set() == before and b.info()["mem_free"] > 0
            assert not vb.console(), vb.console()
    finally:
        shutil.rmtree(board, ignore_errors=True)
