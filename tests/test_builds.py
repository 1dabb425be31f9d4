"""ffkit.board.builds: the board runtime cross-compiles to .mpy for every board architecture."""

import shutil

import pytest

from ffkit.board import builds, mpy

ARCHS = ["armv6m", "armv7emsp", "xtensawin", "rv32imc"]


@pytest.fixture(scope="module")
def mpy_version():
    return builds.mpy_cross_version()


def test_board_profiles():
    assert builds.BOARDS == {"rp2": "armv6m", "esp32": "xtensawin", "esp32s3": "xtensawin",
                             "esp32c3": "rv32imc", "stm32": "armv7emsp", "unix": "x64",
                             "cortex-m3": "armv7m", "cortex-m4": "armv7emsp",
                             "cortex-m0": "armv6m"}
    assert all(a in builds.MPY_ARCH_CODES for a in builds.BOARDS.values())


@pytest.mark.parametrize("arch", ARCHS)
def test_every_module_compiles(arch, tmp_path, mpy_version):
    sources = builds.firmware_sources()
    paths = builds.build_mpy(arch, tmp_path)
    assert [p.stem for p in paths] == [s.stem for s in sources]
    assert "kernels_viper" in {p.stem for p in paths}
    version, sub = mpy_version
    assert version == 6  # the .mpy format of MicroPython 1.22 and newer
    for p in paths:
        assert p.parent == tmp_path / "ffrt"
        data = p.read_bytes()
        assert len(data) > 4, p
        assert data[:1] == b"M" and data[1] == version, (p, data[:4])
        h = builds.read_header(p)
        if p.stem == "kernels_viper":  # native code: the header names the target arch
            assert h["arch"] == arch and h["sub_version"] == sub, h
        else:
            assert h["arch"] in (None, arch), h


def test_board_name_selects_arch(tmp_path):
    paths = builds.build_mpy("esp32c3", tmp_path)
    viper = next(p for p in paths if p.stem == "kernels_viper")
    assert builds.read_header(viper)["arch"] == "rv32imc"


def test_syntax_error_names_the_file(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(builds.firmware_sources()[0].parent, src,
                    ignore=shutil.ignore_patterns("__pycache__"))
    bad = src / "model.py"
    bad.write_text(bad.read_text() + "\ndef broken(:\n    pass\n")
    with pytest.raises(builds.BuildError) as info:
        builds.build_mpy("armv6m", tmp_path / "out", src_dir=src)
    msg = str(info.value)
    assert str(bad) in msg and "SyntaxError" in msg and "armv6m" in msg


def test_unknown_target_and_missing_compiler(tmp_path, monkeypatch):
    with pytest.raises(builds.BuildError, match="unknown board or arch 'z80'"):
        builds.build_mpy("z80", tmp_path)
    monkeypatch.setenv("MPY_CROSS", str(tmp_path / "no-such-mpy-cross"))
    with pytest.raises(builds.BuildError, match="MPY_CROSS"):
        builds.build_mpy("armv6m", tmp_path)


@pytest.mark.device
def test_unix_build_runs_in_the_unix_port(tmp_path, micropython):
    """The x64 build imports from .mpy (not source) and learns like the source does."""
    builds.build_mpy("unix", tmp_path)
    script = (
        "import ffrt.net, ffrt.kernels_viper as kv\n"
        "from ffrt.model import Config\n"
        "net = ffrt.net.FFNet(Config(n_features=4, n_classes=3, in_max=15, in_scale=17,\n"
        "    layers=(16, 16), theta=(2000, 2000), act_shift=(5, 5)), kernels=kv)\n"
        "data = (([15, 0, 0, 15], 0), ([0, 15, 15, 0], 1), ([15, 15, 0, 0], 2))\n"
        "for _ in range(30):\n"
        "    for x, y in data:\n"
        "        net.learn_one(x, y)\n"
        "print(ffrt.net.__file__, kv.__file__)\n"
        "print([net.predict_one(x) for x, _ in data])\n"
    )
    out = mpy.run(script, env_extra={"MICROPYPATH": str(tmp_path)}).splitlines()
    assert out[-2].split() == [str(tmp_path / "ffrt" / "net.mpy"),
                               str(tmp_path / "ffrt" / "kernels_viper.mpy")]
    assert out[-1] == "[0, 1, 2]"
