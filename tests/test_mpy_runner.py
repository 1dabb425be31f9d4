"""Tests for ffkit.board.mpy: running scripts in the real MicroPython unix port."""

import pytest

from ffkit.board import mpy

pytestmark = pytest.mark.device


def test_runs_in_micropython(micropython):
    out = mpy.run("import sys\nprint(sys.implementation.name)\n")
    assert out.strip().splitlines()[-1] == "micropython"


def test_find_micropython_matches_fixture(micropython):
    assert mpy.find_micropython() == micropython


def test_run_json_parses_last_line(micropython):
    script = "import json\nprint('progress...')\nprint(json.dumps({'a': [1, 2], 'b': 2 ** 20}))\n"
    assert mpy.run_json(script) == {"a": [1, 2], "b": 2 ** 20}


def test_run_json_rejects_non_json(micropython):
    with pytest.raises(ValueError, match="not JSON"):
        mpy.run_json("print('hello')")


def test_failing_script_raises_naming_the_exception(micropython):
    with pytest.raises(mpy.MicroPythonError) as info:
        mpy.run("raise ValueError('boom from the board')\n")
    assert info.value.returncode == 1
    assert "ValueError" in str(info.value)
    assert "boom from the board" in str(info.value)


def test_micropypath_reaches_firmware(micropython):
    out = mpy.run("import sys\nprint(sys.path)\n")
    assert str(mpy.firmware_dir()) in out
    assert ".frozen" in out


def test_heapsize_limits_heap(micropython):
    script = (
        "try:\n"
        "    b = bytearray(200_000)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    assert mpy.run(script, heapsize="64K").strip() == "MemoryError"
    # The same allocation fits in the default 2 MiB heap: the limit is what made it fail.
    assert mpy.run(script).strip() == "allocated"


def test_viper_function_runs(micropython):
    script = (
        "import micropython\n"
        "@micropython.viper\n"
        "def dot(a: ptr8, b: ptr8, n: int) -> int:\n"
        "    s = 0\n"
        "    for i in range(n):\n"
        "        s += a[i] * b[i]\n"
        "    return s\n"
        "print(dot(bytearray([1, 2, 3]), bytearray([4, 5, 6]), 3))\n"
    )
    assert mpy.run(script, heapsize="64K").strip() == "32"


def test_timeout_raises(micropython):
    with pytest.raises(mpy.MicroPythonTimeout):
        mpy.run("while True:\n    pass\n", timeout=1)
