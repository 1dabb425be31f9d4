"""ffkit flash: the .mpy bundle for every board profile, and flashing a virtual board.

The device tests flash a real VirtualBoard (the firmware in the MicroPython unix port on a
pty) with the real mpremote, then prove that it runs the flashed bundle: its INFO and
export are the flashed model's, the running modules are ``ffrt/*.mpy`` files in the
board's folder (asked through the REPL the firmware hands back), and a restarted board
boots the same bundle. The emulated Cortex-M3 (ffkit.board.qemu, skipped with one line where
QEMU is missing, except under CI=true) is flashed the same way: the armv7m bundle
replaces its frozen ffrt on littlefs, a soft reset boots it, and a bundle for another
arch is refused before anything on the board changes.
"""

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from ffkit import cli
from ffkit.board import builds, flash
from ffkit.board.client import connect
from ffkit.board.link import open_link
from ffkit.board.sim import VirtualBoard
from ffrt import ffw_ram
from ffrt.boards import PROFILES

MODEL = REPO_ROOT / "models" / "digits.ffw"


def run_main(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def expected_modules(board=None, native=False):
    """The bundle's modules: every firmware module, without the viper ones on a board
    whose MicroPython has no native emitter (builds.NO_NATIVE); with native, the native
    kernels too (ffrt/kernels_native.mpy: C, built for the board's arch)."""
    return sorted([p.stem + ".mpy" for p in builds.firmware_sources()
                   if board not in builds.NO_NATIVE or not p.stem.endswith("_viper")]
                  + (["kernels_native.mpy"] if native else []))


# ---- the bundle (--out) -------------------------------------------------------------------


@pytest.mark.parametrize("board", sorted(PROFILES))
def test_out_builds_the_bundle_for_every_board(board, tmp_path):
    out = tmp_path / board
    code, stdout, err = run_main("flash", "--board", board, "--out", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    arch = PROFILES[board][0]
    assert res["board"] == board and res["arch"] == arch
    modules = expected_modules(board)
    # the native kernels (C) for the board's arch: `make test` installs every compiler
    # but the ESP32's (xtensa-esp32-elf-gcc, not in Debian), so those are expected here
    native = board not in builds.NO_NATIVE and (
        arch != "xtensawin" or shutil.which("xtensa-esp32-elf-gcc") is not None)
    assert res["kernels"] == ("native" if native else
                              "pure" if board in builds.NO_NATIVE else "viper")
    extra = ["kernels_native.mpy"] if native else []
    assert sorted(p.name for p in (out / "ffrt").iterdir()) == sorted(modules + extra)
    assert ("kernels_viper.mpy" in modules) == (board != "cortex-m0")
    assert [f["path"] for f in res["files"]] == ["ffrt/" + m for m in modules + extra] \
        + ["main.py"]
    if native:
        assert builds.read_header(out / "ffrt" / "kernels_native.mpy")["arch"] == arch
    # main.py goes as source, unchanged: the board's own boot sequence runs it
    assert (out / "main.py").read_bytes() == (REPO_ROOT / "firmware" / "main.py").read_bytes()
    assert not (out / "model.ffw").exists()
    version, sub = builds.mpy_cross_version()
    for m in modules:
        head = (out / "ffrt" / m).read_bytes()[:4]
        assert head[:1] == b"M" and head[1] == version, (m, head)
        code = head[2] >> 2
        if m == "kernels_viper.mpy":   # viper: machine code for the profile's arch
            assert code == builds.MPY_ARCH_CODES[arch], (m, head)
            assert head[2] & 3 == sub
        else:                          # bytecode runs on any arch
            assert code in (0, builds.MPY_ARCH_CODES[arch]), (m, head)


def test_out_with_a_model_replaces_stale_files_as_on_a_board(tmp_path):
    out = tmp_path / "board"
    (out / "ffrt").mkdir(parents=True)
    (out / "ffrt" / "net.py").write_text("raise ImportError('stale source')\n")
    (out / "ffrt" / "gone.mpy").write_bytes(b"M\x06\x00\x1f")
    (out / "ckpt_a.bin").write_bytes(b"old checkpoint")
    (out / "notes.txt").write_text("the user's own file stays")
    code, stdout, err = run_main("flash", "--board", "rp2", "--out", out, "--model", MODEL)
    assert code == 0, err
    assert sorted(p.name for p in (out / "ffrt").iterdir()) == expected_modules(native=True)
    assert (out / "model.ffw").read_bytes() == MODEL.read_bytes()
    assert not (out / "ckpt_a.bin").exists()
    assert (out / "notes.txt").exists()
    assert "removed ckpt_a.bin" in stdout and "model.ffw" in stdout


def test_a_refused_model_or_board_builds_nothing(tmp_path):
    bad = tmp_path / "bad.ffw"
    bad.write_bytes(MODEL.read_bytes()[:-1] + b"\x00")
    code, _, err = run_main("flash", "--board", "rp2", "--out", tmp_path / "o", "--model", bad)
    assert code == 1 and "bad.ffw refused" in err, err
    assert not (tmp_path / "o").exists()
    code, _, err = run_main("flash", "--board", "z80", "--out", tmp_path / "o")
    assert code == 2 and "invalid choice" in err
    code, _, err = run_main("flash", "--board", "rp2", "--out", tmp_path / "o",
                            "--port", "/dev/null")
    assert code == 2 and "not allowed with" in err


def test_missing_mpremote_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("MPREMOTE", str(tmp_path / "no-mpremote"))
    code, _, err = run_main("flash", "--board", "unix", "--port", "/dev/pts/999999")
    assert code == 1 and "MPREMOTE" in err and "not an executable" in err


def _bundle(board, native=True):
    return {"board": board, "arch": builds.BOARDS[board], "mpy": (6, 3), "native": native}


def test_the_probe_refuses_what_the_board_cannot_run_and_names_both_sides():
    # what the emulated boards and the unix port report (sys.implementation._mpy)
    m3 = flash.target_of("qemu", 0x1b06, "mps2-an385 with Cortex-M3")
    m0 = flash.target_of("qemu", 0x306, "microbit with nRF51")
    unix = flash.target_of("linux", 0xb06, "linux [GCC 12.2.0] version")
    assert (m3["profile"], m3["mpy"], m3["native"]) == ("cortex-m3", "6.3", "armv7em")
    assert (m0["profile"], m0["native"]) == ("cortex-m0", None)
    assert unix["native"] == "x64"
    for t, board in ((m3, "cortex-m3"), (m0, "cortex-m0"), (unix, "unix")):
        assert flash.mismatch(t, _bundle(board, board != "cortex-m0")) is None
    why = flash.mismatch(m3, _bundle("cortex-m0", False))
    assert "the board is cortex-m3" in why and "armv7em" in why
    assert "--board cortex-m0 builds .mpy v6.3 for armv6m" in why
    assert "flash it with --board cortex-m3" in why
    why = flash.mismatch(unix, _bundle("rp2"))
    assert "the board is unix (sys.platform linux" in why and "for armv6m" in why
    # a board ffrt.boards does not know: judged by what its MicroPython loads
    other = flash.target_of("teensy", 0x306, "Teensy 4.0 (no native)")
    assert other["profile"] is None
    assert "viper code, which it cannot load" in flash.mismatch(other, _bundle("rp2"))
    assert flash.mismatch(other, _bundle("cortex-m0", False)) is None
    old = flash.target_of("teensy", 0x1405, "old")           # .mpy v5
    assert "use the mpy-cross of the board's MicroPython" in flash.mismatch(
        old, _bundle("cortex-m0", False))
    thumb2 = flash.target_of("teensy", 0x1b06, "M7")         # armv7em: runs armv6m code
    assert flash.mismatch(thumb2, _bundle("rp2")) is None
    assert "does not load there" in flash.mismatch(thumb2, _bundle("stm32"))  # armv7emsp
    assert "no sys.implementation._mpy" in flash.mismatch(
        flash.target_of("teensy", -1, "?"), _bundle("rp2"))


# ---- flashing a virtual board ---------------------------------------------------------------


def mpremote_exec(port, code):
    """Run code on the board's REPL with mpremote (resume: no soft reset); its stdout."""
    out = subprocess.run([flash.find_mpremote(), "connect", port, "resume", "exec", code],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def running_modules(port):
    """(main, ffrt.net, its kernels) files of the running firmware, via the REPL."""
    with connect(port) as board:
        board.repl()
    out = mpremote_exec(port, "import sys; m = sys.modules; print(m['main'].__file__, "
                              "m['ffrt.net'].__file__, "
                              "m['ffrt.net'].default_kernels().__file__)")
    return out.split()


@pytest.mark.device
def test_mpremote_mip_installs_the_bundle_from_its_package_json(tmp_path):
    """`--out` also writes package.json: the ffrt modules (the native kernels with them) as
    a mip package. mpremote mip installs it onto a running board from the folder, and the
    board, restarted, runs the installed modules with the native kernels."""
    out = tmp_path / "bundle"
    code, _, err = run_main("flash", "--board", "unix", "--out", out)
    assert code == 0, err
    pkg = json.loads((out / "package.json").read_text())
    remotes = [u for u, _ in pkg["urls"]]
    assert sorted(remotes) == ["ffrt/" + m for m in expected_modules(native=True)]
    assert all(u == dest for u, dest in pkg["urls"])   # relative URLs, same place
    d = tmp_path / "board"
    with VirtualBoard(d) as vb:
        with connect(vb.port, hello_timeout=10) as board:
            board.repl()
        r = subprocess.run([flash.find_mpremote(), "connect", vb.port, "resume", "mip",
                            "install", "--target", ".", str(out / "package.json")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        for remote in remotes:
            assert (d / remote).read_bytes() == (out / remote).read_bytes(), remote
        vb.restart()
        with connect(vb.port, hello_timeout=10) as board:
            assert board.info()["boot"] == "fresh"
        main, net, kernels = running_modules(vb.port)
        assert net.endswith("ffrt/net.mpy") and kernels.endswith("ffrt/kernels_native.mpy")


@pytest.mark.device
def test_flash_a_virtual_board_with_a_model(tmp_path):
    d = tmp_path / "board"
    with VirtualBoard(d) as vb:
        with connect(vb.port, hello_timeout=10) as board:
            info = board.info()
            assert info["boot"] == "fresh" and info["board"] == "unix"
            board.learn([0] * 64, 3)
            board.checkpoint()     # would boot before model.ffw: flash removes it
        assert (d / "ckpt_a.bin").exists() or (d / "ckpt_b.bin").exists()
        (d / "ffrt").mkdir()
        (d / "ffrt" / "zz_stale.py").write_text("x = 1\n")

        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port,
                                  "--model", MODEL)
        assert code == 0, err + out
        assert "handed the port back" in out
        assert "ckpt_" in out and "ffrt/zz_stale.py" in out   # named when removed
        assert "booted from model.ffw, step 21552" in out

        # the board's folder holds the bundle, and nothing stale
        assert sorted(p.name for p in (d / "ffrt").iterdir()) == expected_modules(native=True)
        assert (d / "model.ffw").read_bytes() == MODEL.read_bytes()
        assert not list(d.glob("ckpt_*.bin"))

        # it runs the flashed model: INFO and the export are the file's, byte for byte
        with connect(vb.port) as board:
            info = board.info()
            assert info["boot"] == "model.ffw"
            assert info["step"] == ffw_ram.load(MODEL.read_bytes()).step
            assert board.export() == MODEL.read_bytes()
        # ... with the flashed modules: the REPL it hands back names their files
        main, net, kernels = running_modules(vb.port)
        assert main == "main.py" and net.endswith("ffrt/net.mpy"), (main, net)
        assert kernels.endswith("ffrt/kernels_native.mpy")   # C for x64, flashed with them
        assert (d / net).is_file()   # relative to the board's folder, its cwd

        # a board that restarts (power cut, then boot) boots the same bundle
        vb.restart()
        with connect(vb.port, hello_timeout=10) as board:
            info = board.info()
            assert info["boot"] == "model.ffw" and info["step"] == 21552
        assert running_modules(vb.port)[1].endswith("ffrt/net.mpy")


@pytest.mark.device
def test_flash_tolerates_a_board_at_the_repl_and_names_errors(tmp_path, monkeypatch):
    d = tmp_path / "board"
    with VirtualBoard(d) as vb:
        with connect(vb.port, hello_timeout=10) as board:
            board.repl()           # the REPL owns the port: nobody answers HELLO
        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port, "--json")
        assert code == 0, err
        res = json.loads(out)
        assert res["was"] is None             # nothing answered, flashed anyway
        assert res["info"]["boot"] == "fresh" and res["info"]["board"] == "unix"
        assert res["files"][-1] == "main.py" and res["bytes"] > 0

        # a board that says it is something else gets no code for another arch
        code, out, err = run_main("flash", "--board", "rp2", "--port", vb.port)
        assert code == 1 and "says it is 'unix' (x64)" in err and "--board unix" in err
        assert "--board rp2 builds for armv6m" in err
        with connect(vb.port) as board:    # and it still serves
            assert board.info()["board"] == "unix"
            board.repl()
        # at the REPL no INFO says what it is: the REPL's probe does, before any change
        before = {p: p.read_bytes() for p in d.rglob("*.mpy")}
        code, out, err = run_main("flash", "--board", "rp2", "--port", vb.port)
        assert code == 1, out
        assert "the board is unix (sys.platform linux" in err and "for armv6m" in err, err
        assert "loads .mpy v6.3, native code for x64" in err
        assert "flash it with --board unix" in err
        assert before and {p: p.read_bytes() for p in d.rglob("*.mpy")} == before

        # a busy port
        with open_link(vb.port):
            code, _, err = run_main("flash", "--board", "unix", "--port", vb.port)
        assert code == 1 and "may be in use by another program" in err
    code, _, err = run_main("flash", "--board", "unix", "--port", str(tmp_path / "ttyNONE"))
    assert code == 1 and "no such port" in err


@pytest.mark.device
def test_a_firmware_that_does_not_start_fails_fast_and_keeps_the_board(tmp_path):
    bundle = builds.build_bundle("unix", tmp_path / "bundle")
    (tmp_path / "bundle" / "main.py").write_text("raise RuntimeError('broken main')\n")
    said = []
    with VirtualBoard(tmp_path / "board") as vb:
        f = flash.Flasher(vb.port, bundle, say=said.append, boot_timeout=30)
        t0 = time.monotonic()
        with pytest.raises(flash.FlashError) as info:
            f.run()
        assert time.monotonic() - t0 < 15   # the REPL's answer ends the wait, not the timeout
        assert "did not start after the restart" in str(info.value)
        assert "REPL answered" in str(info.value) and "ffkit sim" in str(info.value)
        assert "RuntimeError: broken main" in vb.console()
        assert vb.running                   # the probe did not soft-reset (end) the unix port
        # flashing a good bundle over it brings it back
        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port)
        assert code == 0, err
        assert "no ffkit firmware answers" in out


@pytest.mark.device
def test_flash_sim_url_boots_the_folder_for_the_flash(tmp_path):
    d = tmp_path / "board"
    code, out, err = run_main("flash", "--board", "unix", "--port", "sim://%s" % d,
                              "--model", MODEL)
    assert code == 0, err
    assert "booted from model.ffw" in out
    with VirtualBoard(d) as vb, connect(vb.port, hello_timeout=10) as board:
        assert board.info()["boot"] == "model.ffw"


@pytest.mark.device
def test_flash_the_emulated_cortex_m3_replaces_its_frozen_ffrt(qemu, tmp_path):
    """The armv7m bundle onto the QEMU Cortex-M3's littlefs (mpremote), a soft reset, and
    the board runs the flashed .mpy modules, not the frozen ones; other arches refused."""
    d = tmp_path / "board"
    d.mkdir()
    (d / "model.ffw").write_bytes(MODEL.read_bytes())   # as `ffkit sim --model` leaves it
    with qemu.QemuBoard(d, "cortex-m3", heap="192K") as vb:
        def modules():
            with connect(vb.port, hello_timeout=20) as board:
                board.repl()
            return mpremote_exec(vb.port, "import sys, os\nm = sys.modules\nprint(m['ffrt.net']"
                                          ".__file__, m['ffrt.net'].default_kernels().__file__,"
                                          " 'ffrt' in os.listdir())").split()

        # the frozen firmware runs; at its REPL the probe refuses a Cortex-M0 bundle (the
        # INFO check of step 1 would too), before anything on the board changes
        assert modules() == ["ffrt/net.py", "ffrt/kernels_viper.py", "False"]
        code, out, err = run_main("flash", "--board", "cortex-m0", "--port", vb.port)
        assert code == 1, out
        assert "the board is cortex-m3 (sys.platform qemu, mps2-an385 with Cortex-M3)" in err
        assert "native code for armv7em" in err and "for armv6m" in err, err
        assert "flash it with --board cortex-m3" in err
        assert "'ffrt' in os" not in out
        assert mpremote_exec(vb.port, "import os; print('ffrt' in os.listdir())").strip() \
            == "False"

        # the board's boot copies its host folder's model.ffw over the board's own: a
        # flashed model would last until the next boot, so flash says so and stops
        code, out, err = run_main("flash", "--board", "cortex-m3", "--port", vb.port,
                                  "--model", MODEL)
        assert code == 1, out
        assert "boot copies model.ffw from its folder on the host" in err, err
        (d / "model.ffw").unlink()

        code, out, err = run_main("flash", "--board", "cortex-m3", "--port", vb.port,
                                  "--model", MODEL, "--json")
        assert code == 0, err + out
        res = json.loads(out)
        assert res["target"]["profile"] == "cortex-m3" and res["target"]["mpy"] == "6.3"
        # the flashed board runs the native kernels (C for armv7m) from its filesystem
        assert res["kernels"] == "native"
        assert res["modules"] == {"ffrt.net": "ffrt/net.mpy",
                                  "ffrt.kernels_native": "ffrt/kernels_native.mpy"}
        assert res["restart"].startswith("soft reset")
        assert (res["info"]["board"], res["info"]["boot"]) == ("cortex-m3", "model.ffw")
        with connect(vb.port, hello_timeout=20) as board:
            assert board.export() == MODEL.read_bytes()
        # the serving firmware's modules are the flashed .mpy files on littlefs
        net, kernels, has_ffrt = modules()
        assert (net, kernels, has_ffrt) == ("ffrt/net.mpy", "ffrt/kernels_native.mpy", "True")
        head = mpremote_exec(vb.port, "print(open('ffrt/kernels_native.mpy', 'rb')"
                                      ".read(4).hex())").strip()
        assert bytes.fromhex(head)[2] >> 2 == builds.MPY_ARCH_CODES["armv7m"]

        # a power cut and a cold boot: the flash image keeps the bundle, which boots again
        vb.restart()
        with connect(vb.port, hello_timeout=20) as board:
            assert board.info()["boot"] == "model.ffw"
        assert modules()[0] == "ffrt/net.mpy"


def test_ffkit_flash_help_runs():
    out = subprocess.run([sys.executable, "-m", "ffkit.cli", "flash", "--help"],
                         capture_output=True, text=True, cwd=str(Path(REPO_ROOT)))
    assert out.returncode == 0 and "--board" in out.stdout and "--model" in out.stdout


# ---- a silent port, and learning kept across a flash (issue 15, item 4) -------------------


def test_flash_on_a_silent_port_fails_within_5_s(tmp_path):
    """A port on which nothing answers (neither firmware nor REPL) fails in seconds with
    what to check, instead of waiting out mpremote (64 s before)."""
    import os
    import pty

    master, slave = pty.openpty()     # the other end stays silent
    bundle = {"board": "unix", "arch": "x64", "files": []}   # nothing gets this far
    said = []
    try:
        port = os.ttyname(slave)
        t0 = time.monotonic()
        with pytest.raises(flash.FlashError) as info:
            flash.Flasher(port, bundle, say=said.append).run()
        assert time.monotonic() - t0 < 5
        msg = str(info.value)
        assert msg.startswith(port + " says nothing") and "no MicroPython REPL answered" in msg
        assert "powered" in msg
        code, _, err = run_main("flash", "--board", "unix", "--port", port)
        assert code == 1 and "says nothing" in err
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.device
def test_reflashing_without_a_model_keeps_what_the_board_learnt(tmp_path):
    """A board that learnt since its last checkpoint, re-flashed without --model, boots
    at the step it had reached (flash checkpoints it first); --drop-learning boots the
    last checkpoint; a board that cannot save is refused and keeps serving."""
    d = tmp_path / "board"
    with VirtualBoard(d) as vb:
        with connect(vb.port, hello_timeout=10) as board:
            board.learn([1] * 64, 1)
            board.learn([2] * 64, 2)
            board.checkpoint()                    # step 2 saved ...
            for y in (3, 4, 5):
                step, _, _ = board.learn([y] * 64, y)   # ... steps 3-5 only in RAM
            before = board.info()
        assert step == before["step"] == 5
        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port, "--json")
        assert code == 0, err
        res = json.loads(out)
        assert res["saved"]["step"] == 5
        assert (res["info"]["boot"], res["info"]["step"]) == ("checkpoint", 5)
        with connect(vb.port) as board:
            assert board.info()["step"] == before["step"]
            board.learn([6] * 64, 6)              # step 6, then dropped on request
        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port, "--json",
                                  "--drop-learning")
        assert code == 0, err
        res = json.loads(out)
        assert "saved" not in res and res["info"]["step"] == 5

        # a board that cannot write a checkpoint: refused, and it still serves
        with connect(vb.port) as board:
            board.learn([7] * 64, 7)
        for name in ("ckpt_a.bin", "ckpt_b.bin"):
            (d / name).unlink()
            (d / name).mkdir()                    # opening it for writing fails
        code, out, err = run_main("flash", "--board", "unix", "--port", vb.port)
        assert code == 1, out
        assert "at step 6" in err and "could not save it" in err and "--drop-learning" in err
        with connect(vb.port) as board:
            assert board.info()["step"] == 6
