"""ffrt's native kernels (C, ffrt/kernels_native.mpy; ffkit.board.native): built per arch,
picked by default where they load, checked arguments, nothing allocated per call.

Their bits are held to the reference by tests/test_kernels.py (the kernel vectors) and
tests/test_parity.py (whole learning runs: micropython-native, qemu-cortex-m3-native).
"""

import shutil

import pytest

from ffkit.board import builds, mpy, native

pytestmark = pytest.mark.device

# `make test` installs every compiler these need (ffkit.board.qemu.ensure_toolchain); the
# ESP32's xtensa-esp32-elf-gcc is not in Debian, so xtensawin is only built where present
BUILT_HERE = ("x64", "armv6m", "armv7m", "armv7emsp", "rv32imc")


@pytest.mark.parametrize("arch", BUILT_HERE)
def test_each_arch_builds_a_native_module_for_itself(arch):
    path = native.build(arch)
    head = builds.read_header(path)
    assert head["arch"] == arch
    assert (head["version"], head["sub_version"]) == builds.mpy_cross_version()
    assert native.build(arch) == path   # cached by sources, arch and compiler


def test_an_arch_without_its_compiler_is_named(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(native.NativeError, match="xtensa-esp32-elf-gcc.*ESP-IDF"):
        native.build("xtensawin")
    with pytest.raises(native.NativeError, match="apt-get install gcc-riscv64-unknown-elf"):
        native.build("rv32imc")
    with pytest.raises(native.NativeError, match="no native kernels for arch 'mips'"):
        native.compiler("mips")


_PICKS = """
from ffrt import net
print(net.default_kernels().__name__)
"""


def _ffrt_copy(tmp_path, kernels_mpy=None):
    """A MICROPYPATH folder: firmware/ffrt's sources, and the given native .mpy."""
    dest = tmp_path / "fw" / "ffrt"
    shutil.copytree(mpy.firmware_dir() / "ffrt", dest,
                    ignore=shutil.ignore_patterns("__pycache__", "native"))
    if kernels_mpy is not None:
        shutil.copyfile(kernels_mpy, dest / "kernels_native.mpy")
    return {"MICROPYPATH": str(dest.parent)}


def test_default_kernels_pick_native_where_it_loads(micropython, tmp_path):
    env = _ffrt_copy(tmp_path, native.build("x64"))
    assert mpy.run(_PICKS, env_extra=env).strip() == "ffrt.kernels_native"


def test_a_native_module_of_another_arch_falls_back_to_viper(micropython, tmp_path):
    """An armv7m .mpy on the x64 port: the import raises ValueError (incompatible .mpy
    arch), and the viper kernels run instead."""
    env = _ffrt_copy(tmp_path, native.build("armv7m"))
    assert mpy.run(_PICKS, env_extra=env).strip() == "ffrt.kernels_viper"
    with pytest.raises(mpy.MicroPythonError, match="ValueError: incompatible .mpy arch"):
        mpy.run("from ffrt import kernels_native\n", env_extra=env)


_CHECKS = """
from array import array
from ffrt import kernels_native as K
w = bytearray(range(1, 201)); x = bytearray(20); h = bytearray(10)
rng = array("H", [1, 2] * 10); wh = array("h", [0] * 60); sc = array("i", [0] * 3)
before = bytes(w) + bytes(h) + bytes(rng) + bytes(wh)
calls = (
    ("fc_relu n_in too wide for w", lambda: K.fc_relu(w, x, h, 21, 10, 4)),
    ("fc_relu n_out too wide for h", lambda: K.fc_relu(w, x, bytearray(9), 20, 10, 4)),
    ("update rng too short", lambda: K.update(w, x, h, array("H", [1] * 19),
                                              array("i", [20, 10, 99, 16, 0]))),
    ("update negative size", lambda: K.update(w, x, h, rng, array("i", [-1, 10, 99, 16, 0]))),
    ("update shift 0", lambda: K.update(w, x, h, rng, array("i", [20, 10, 99, 0, 0]))),
    ("update coef 2**12", lambda: K.update(w, x, h, rng, array("i", [20, 10, 4096, 16, 0]))),
    ("update p too short", lambda: K.update(w, x, h, rng, array("i", [20, 10, 99, 16]))),
    ("head_update row past wh", lambda: K.head_update(wh, x, rng, array("i", [20, 3, 99, 8]))),
    ("label_relu column past n_in", lambda: K.label_relu(
        w, array("i", [0] * 10), h, array("i", [20, 10, 4, 18, 2, 2, 255]))),
    ("head_scores scores too short", lambda: K.head_scores(wh, x, 20, 3, array("i", [0] * 2))),
    ("normalize out too short", lambda: K.normalize(h, bytearray(9), 10, 5)),
    ("fc_relu an int as w", lambda: K.fc_relu(5, x, h, 20, 10, 4)),
    ("fc_relu into bytes", lambda: K.fc_relu(w, x, bytes(10), 20, 10, 4)),
)
for name, call in calls:
    try:
        call()
        print("ACCEPTED", name)
    except (ValueError, TypeError) as e:
        print("REFUSED", type(e).__name__, name)
print("UNCHANGED", before == bytes(w) + bytes(h) + bytes(rng) + bytes(wh))
"""


def test_native_kernels_refuse_buffers_shorter_than_their_sizes(micropython):
    """C would write past a short buffer: each call checks first, and raises before
    anything is written (the viper twin trusts its caller, the net)."""
    out = mpy.run(_CHECKS, env_extra={"MICROPYPATH": str(native.native_firmware_dir("x64"))})
    lines = out.split("\n")
    assert not [ln for ln in lines if ln.startswith("ACCEPTED")], out
    assert sum(ln.startswith("REFUSED ValueError") for ln in lines) == 11, out
    assert "REFUSED TypeError fc_relu an int as w" in out
    assert "REFUSED TypeError fc_relu into bytes" in out   # read-only: not written
    assert "UNCHANGED True" in out


_ALLOC = """
import gc, micropython
from array import array
from ffrt import kernels_native as K
N = 64
w = bytearray(b"\\x90" * (N * N)); x = bytearray(b"\\x07" * N); h = bytearray(N); o = bytearray(N)
rng = array("H", [3, 5] * N); wh = array("h", [1] * (N * 4)); sc = array("i", [0] * 4)
up = array("i", [N, N, 250, 16, 1]); hp = array("i", [N, 2, -250, 12])
acc = array("i", [0] * N); lp = array("i", [N, N, 6, 40, 10, 2, 255])
def run(n):
    for i in range(n):
        K.fc_relu(w, x, h, N, N, 6)
        K.normalize(h, o, N, 300)
        K.update(w, x, h, rng, up)
        K.head_scores(wh, o, N, 4, sc)
        K.head_update(wh, o, rng, hp)
        K.fc_acc(w, x, acc, N, N)
        K.label_relu(w, acc, h, lp)
def counted(n):
    a0 = gc.mem_alloc(); t0 = micropython.mem_total()
    run(n)  # run's own frame (over the stack limit) and range: the same for any n
    return gc.mem_alloc() - a0, micropython.mem_total() - t0
run(2)
gc.collect()
gc.disable()
a, t = counted(100)
a0, t0 = counted(0)
print(a - a0, t - t0)
gc.collect()
a0 = gc.mem_alloc(); t0 = micropython.mem_total()
keep = [[i] for i in range(100)]
print(gc.mem_alloc() - a0, micropython.mem_total() - t0)
"""


def test_native_kernels_allocate_nothing_per_call(micropython):
    """700 calls: no byte kept (gc.mem_alloc) and none allocated and freed at once
    (micropython.mem_total); the control line shows both counters see allocation."""
    out = mpy.run(_ALLOC, env_extra={"MICROPYPATH": str(native.native_firmware_dir("x64"))})
    calls, control = [[int(v) for v in ln.split()] for ln in out.split("\n") if ln.strip()]
    assert calls == [0, 0]
    assert control[0] > 0 and control[1] >= control[0]
