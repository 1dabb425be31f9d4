"""Build ffrt's native kernels (``ffrt/kernels_native.mpy``, compiled C) for a board's arch.

The kernels are C (``firmware/ffrt/native/kernels.h``, the MicroPython glue beside it in
``kernels_native.c``) built as a MicroPython dynamic native module: MicroPython's
``py/dynruntime.mk`` compiles them with the arch's cross compiler and ``tools/mpy_ld.py``
(which needs pyelftools) links them into a .mpy that a board of that arch imports like
any module. One .mpy per arch:

    arch        boards                        compiler (Debian package)
    x64         the unix port (virtual board) x86_64-linux-gnu-gcc (gcc)
    armv6m      RP2040, nRF51 (Cortex-M0/M0+) arm-none-eabi-gcc (gcc-arm-none-eabi)
    armv7m      Cortex-M3                      arm-none-eabi-gcc
    armv7emsp   Cortex-M4F/M7 (DSP: SMLAD)     arm-none-eabi-gcc
    rv32imc     ESP32-C3, RP2350 (RISC-V)      riscv64-unknown-elf-gcc (gcc-riscv64-unknown-elf,
                                               picolibc-riscv64-unknown-elf)
    xtensawin   ESP32, ESP32-S3                xtensa-esp32-elf-gcc (ESP-IDF; not in Debian)

A board whose arch has no .mpy here (no compiler, or no native-code loader) runs the
viper twins, or the pure ones: ``ffrt.net.default_kernels`` picks the first that loads.
Builds are cached under ``$FFKIT_CACHE`` (else ``~/.cache/ffkit``) by a hash of the
sources, the arch and the compiler's version; the MicroPython tree (``$MICROPYTHON_SRC``,
else ``../shared/micropython``, as for the emulated boards) is only read.

    >>> path = build("armv7m")                              # doctest: +SKIP
    >>> from ffkit.board.builds import read_header
    >>> read_header(path)["arch"]                           # doctest: +SKIP
    'armv7m'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

from ffkit import FFKitError

__all__ = ["ARCHS", "MODULE", "NativeError", "available", "build", "compiler", "source_dir",
           "native_firmware_dir", "sources", "run_cli", "add_arguments"]

MODULE = "kernels_native"  # ffrt/kernels_native.mpy: `from ffrt import kernels_native`

# arch -> (compiler dynruntime.mk runs, Debian packages that provide it, or None)
ARCHS = {
    "x64": ("x86_64-linux-gnu-gcc", ("gcc",)),
    "armv6m": ("arm-none-eabi-gcc", ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi")),
    "armv7m": ("arm-none-eabi-gcc", ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi")),
    "armv7emsp": ("arm-none-eabi-gcc", ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi")),
    "rv32imc": ("riscv64-unknown-elf-gcc", ("gcc-riscv64-unknown-elf",
                                            "picolibc-riscv64-unknown-elf")),
    "xtensawin": ("xtensa-esp32-elf-gcc", None),
}

_TIMEOUT_S = 300


class NativeError(FFKitError):
    """The native kernels cannot be built for an arch here; the message says what is missing."""


def native_dir() -> Path:
    """firmware/ffrt/native: the C sources and their Makefile."""
    from ffkit.board.mpy import firmware_dir
    return firmware_dir() / "ffrt" / "native"


def sources(src_dir=None) -> list[Path]:
    """The files a build reads (hashed into the cache key): every file of src_dir
    (default firmware/ffrt/native: the Makefile, kernels.h, kernels_native.c)."""
    d = Path(src_dir) if src_dir is not None else native_dir()
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix in ("", ".c", ".h"))


def compiler(arch: str) -> str:
    """The compiler's path for ``arch``; NativeError naming what to install when missing."""
    if arch not in ARCHS:
        raise NativeError("no native kernels for arch %r (archs: %s)"
                          % (arch, ", ".join(ARCHS)))
    cc, packages = ARCHS[arch]
    path = shutil.which(cc)
    if path is None:
        how = ("Debian: apt-get install %s" % " ".join(packages) if packages
               else "not packaged by Debian: the ESP-IDF toolchain provides it")
        raise NativeError("the %s native kernels need %s (%s); the board runs the viper "
                          "kernels instead" % (arch, cc, how))
    return path


def _mpy_ld_ready() -> None:
    try:
        import elftools  # noqa: F401  (MicroPython's tools/mpy_ld.py reads the ELF with it)
    except ImportError:
        raise NativeError("building native kernels needs pyelftools (pip install "
                          "pyelftools; requirements.txt pins it)") from None


def source_dir() -> Path:
    """The MicroPython source tree: $MICROPYTHON_SRC, else ../shared/micropython beside
    the repository (the emulated boards build from it too: ffkit.board.qemu). An installed
    ffkit has no repository to stand beside: there the folder is ``micropython`` in the
    current one, and the error that it is missing names $MICROPYTHON_SRC."""
    env = os.environ.get("MICROPYTHON_SRC")
    if env:
        return Path(env)
    from ffkit import shipped
    root = shipped.checkout_root()
    if root is None:
        return Path.cwd() / "micropython"
    return root.parent / "shared" / "micropython"


def _tree() -> Path:
    tree = source_dir()
    if not (tree / "py" / "dynruntime.mk").is_file():
        raise NativeError("no MicroPython source tree at %s (set $MICROPYTHON_SRC): the "
                          "native kernels build with its py/dynruntime.mk" % tree)
    return tree


def _key(arch: str, cc: str, src_dir) -> str:
    h = hashlib.sha256(arch.encode())
    for f in sources(src_dir):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    v = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    h.update(v.stdout.encode())
    src = _tree() / "SOURCE.md"
    h.update(src.read_bytes() if src.is_file() else str(_tree()).encode())
    return h.hexdigest()[:16]


def build(arch: str, src_dir=None, module: str = MODULE) -> Path:
    """``kernels_native.mpy`` for ``arch`` (cached); NativeError when it cannot be built.
    src_dir and module: another native module's folder (its Makefile names MOD = module),
    e.g. the plain C loops `ffkit bench` counts beside the kernels."""
    cc = compiler(arch)
    _mpy_ld_ready()
    tree = _tree()
    from ffkit.data.pkgdata import cache_dir
    out = cache_dir() / "native" / ("%s-%s-%s.mpy" % (module, arch, _key(arch, cc, src_dir)))
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ffkit-native-") as tmp:
        for f in sources(src_dir):
            shutil.copyfile(f, Path(tmp) / f.name)
        env = dict(os.environ)
        env.pop("CFLAGS", None)
        # dynruntime.mk runs `$(CROSS)gcc` and `$(PYTHON) tools/mpy_ld.py`: this Python,
        # which has pyelftools
        r = subprocess.run(["make", "-s", "MPY_DIR=%s" % tree, "ARCH=%s" % arch,
                            "PYTHON=%s" % sys.executable], cwd=tmp, env=env,
                           capture_output=True, text=True, timeout=_TIMEOUT_S)
        built = Path(tmp) / (module + ".mpy")
        if r.returncode != 0 or not built.is_file():
            raise NativeError("building %s for %s failed: %s"
                              % (module, arch, (r.stderr or r.stdout).strip()[-600:]))
        fd, part = tempfile.mkstemp(suffix=".part", dir=out.parent)
        os.close(fd)
        shutil.copyfile(built, part)
        os.replace(part, out)  # atomic: a concurrent build writes the same bytes
    return out


def available(arch: str) -> tuple[bool, str]:
    """(True, path) when the .mpy for arch builds here, else (False, the reason)."""
    try:
        return True, str(build(arch))
    except NativeError as e:
        return False, str(e)


def native_firmware_dir(arch: str = "x64") -> Path:
    """A folder to put on MICROPYPATH in place of firmware/: ``ffrt/`` holding links to
    every firmware/ffrt/*.py and the native kernels for arch, so the unix port (x64)
    imports ``ffrt.kernels_native`` beside the sources. Cached like the build."""
    from ffkit.board.mpy import firmware_dir
    mpy = build(arch)
    src = firmware_dir() / "ffrt"
    h = hashlib.sha256(str(mpy).encode() + str(src.resolve()).encode())
    from ffkit.data.pkgdata import cache_dir
    top = cache_dir() / "native" / ("fw-%s-%s" % (arch, h.hexdigest()[:12]))
    pkg = top / "ffrt"
    if not (pkg / (MODULE + ".mpy")).is_file():
        tmp = Path(tempfile.mkdtemp(prefix="fw-", dir=top.parent))
        (tmp / "ffrt").mkdir()
        for f in sorted(src.glob("*.py")):
            os.symlink(f.resolve(), tmp / "ffrt" / f.name)
        shutil.copyfile(mpy, tmp / "ffrt" / (MODULE + ".mpy"))
        try:
            os.replace(tmp, top)
        except OSError:  # another process made it first: the same content
            shutil.rmtree(tmp, ignore_errors=True)
    # modules added to firmware/ffrt since the folder was made
    for f in sorted(src.glob("*.py")):
        link = pkg / f.name
        if not link.exists():
            try:
                os.symlink(f.resolve(), link)
            except FileExistsError:
                pass
    return top


# ---- CLI -------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("arch", nargs="*", help="archs to build (default: every arch %s)"
                        % ", ".join(ARCHS))
    parser.add_argument("--out", default="out/native",
                        help="folder for <arch>/ffrt/kernels_native.mpy (default %(default)s)")


def run_cli(args) -> int:
    """0 when every arch asked for was built; 1 when one could not be (the reason printed).
    With no arch given, the archs without a compiler here are listed and skipped (0)."""
    archs = args.arch or list(ARCHS)
    failed = 0
    for arch in archs:
        try:
            path = build(arch)
        except NativeError as e:
            print("%-10s not built: %s" % (arch, e), file=sys.stderr)
            failed += 1 if args.arch else 0
            continue
        dest = Path(args.out) / arch / "ffrt" / (MODULE + ".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        print("%-10s %s  %d bytes" % (arch, dest, dest.stat().st_size))
    return 1 if failed else 0


def main(argv=None) -> int:
    """``python -m ffkit.board.native [ARCH ...] [--out DIR]``: build and copy them."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m ffkit.board.native",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
