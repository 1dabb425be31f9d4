"""firmware/ type-checks against MicroPython's own stubs for rp2 and esp32 (mypy).

A call that a board's `machine` (or `micropython`, `select`, ...) module lacks fails here,
in CI, instead of on the board. `make test` installs the stubs first, with exact pins (see
the Makefile): micropython-rp2-rpi-pico-stubs and micropython-esp32-stubs 1.29.0.post1,
each with micropython-stdlib-stubs 1.29.0.post2, via `pip install --target` into
.stubs/rp2 and .stubs/esp32. tools/typecheck.py then runs, per board:

    MYPYPATH=.stubs/rp2 python -m mypy --config-file mypy-firmware.ini \\
        --custom-typeshed-dir .stubs/rp2 --platform rp2 -O json firmware/ffrt firmware/*.py

`--custom-typeshed-dir` swaps mypy's bundled CPython standard library for the
micropython-stdlib-stubs copy in .stubs/rp2/stdlib (its builtins declare the viper types
ptr8/ptr16/ptr32/uint, so kernels_viper.py is checked like any other module); MYPYPATH adds
the port modules (machine.pyi, micropython.pyi, select.pyi, rp2/, ...) that sit at the top
of the folder without py.typed. mypy-firmware.ini explains the other settings. Each mypy
run takes about 0.5 s cold and 0.1 s with its cache in .stubs/mypy-cache/<board>.

The probes prove the stubs are really in use: an unknown UART method fails on both boards,
and a machine class that only one port has fails on the other board alone. Nothing is
set aside: where the firmware is right in a way mypy cannot see, the line carries its own
`# type: ignore[code]`.
"""

import importlib.util
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _load_tool():
    spec = importlib.util.spec_from_file_location("tools_typecheck",
                                                  REPO_ROOT / "tools" / "typecheck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tc = _load_tool()


@pytest.fixture(scope="module", autouse=True)
def _stubs_and_mypy():
    """Fail, not skip, when the environment is incomplete: a skip would hide it in CI."""
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: run `make test` (requirements.txt pins it)",
                    pytrace=False)
    for board in tc.BOARDS:
        try:
            tc.stubs_dir(board)
        except FileNotFoundError as e:
            pytest.fail(str(e), pytrace=False)


def _report(real):
    return "\n".join(tc.format_message(m) for m in real)


def _probe(tmp_path, body):
    path = tmp_path / "typecheck_probe.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("board", tc.BOARDS)
def test_firmware_typechecks(board):
    paths = tc.default_paths()
    assert paths[0].name == "ffrt" and (paths[0] / "kernels_viper.py").is_file()
    real = tc.check(board, paths)
    assert not real, "mypy (%s stubs) reports:\n%s" % (board, _report(real))


@pytest.mark.parametrize("board", tc.BOARDS)
def test_unknown_uart_method_fails(board, tmp_path):
    path = _probe(tmp_path, """\
        import machine


        def send():
            uart = machine.UART(0, baudrate=115200)
            uart.write(b"ok")
            uart.no_such_method()
        """)
    real = tc.check(board, [path])
    assert [(m["line"], m["code"]) for m in real] == [(7, "attr-defined")], _report(real)
    assert "no_such_method" in real[0]["message"]


@pytest.mark.parametrize("board, missing, present", [
    ("rp2", "machine.TouchPad(machine.Pin(4))", "machine.USBDevice()"),
    ("esp32", "machine.USBDevice()", "machine.TouchPad(machine.Pin(4))"),
])
def test_stubs_are_the_boards_own(board, missing, present, tmp_path):
    """esp32 has touch pads and no USB device stack, the Pico the other way round."""
    path = _probe(tmp_path, """\
        import machine


        def board_only():
            %s
            %s
        """ % (present, missing))
    real = tc.check(board, [path])
    assert [(m["line"], m["code"]) for m in real] == [(6, "attr-defined")], _report(real)


@pytest.mark.parametrize("board", tc.BOARDS)
def test_runtime_apis_are_declared(board, tmp_path):
    """What the device side of ffrt relies on is declared by both boards' stubs."""
    path = _probe(tmp_path, """\
        import gc
        import os
        import select
        import sys
        import time

        import machine
        import micropython
        from micropython import const

        _N = const(4)


        def serve():
            uart = machine.UART(1, baudrate=115200, timeout=0)
            buf = bytearray(_N)
            n = uart.readinto(buf) if uart.any() else 0
            uart.write(memoryview(buf)[:n])
            i2c = machine.I2C(0, freq=400000)
            i2c.writeto_mem(0x68, 0x6B, b"\\x00")
            i2c.readfrom_mem_into(0x68, 0x3B, buf)
            poller = select.poll()
            poller.register(sys.stdin, select.POLLIN)
            micropython.kbd_intr(-1)
            if poller.poll(0):
                sys.stdin.buffer.readinto(buf)
            sys.stdout.buffer.write(buf)
            micropython.kbd_intr(3)
            os.sync()
            gc.collect()
            t0 = time.ticks_ms()
            return gc.mem_alloc() + gc.mem_free() + time.ticks_diff(time.ticks_ms(), t0)


        @micropython.viper
        def bump(a: ptr8, n: int) -> int:
            p = ptr8(uint(a) + 1)
            p[0] = a[0] + n
            return int(p[0])
        """)
    real = tc.check(board, [path])
    assert not real, _report(real)


