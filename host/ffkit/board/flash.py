"""``ffkit flash``: cross-compile ffrt for a board and copy it there with mpremote.

    ffkit flash --board rp2 --out build/rp2                   # build the bundle only
    ffkit flash --board rp2 --port /dev/ttyACM0 --model models/digits.ffw
    ffkit flash --board unix --port /dev/pts/5                # a virtual board (ffkit sim)
    ffkit flash --board cortex-m3 --port /dev/pts/7           # an emulated one (--machine)

The bundle (ffkit.board.builds.build_bundle): ``ffrt/<module>.mpy`` for every firmware module,
compiled by mpy-cross for the board's arch (no viper modules for a board without a
native emitter: cortex-m0), ``main.py`` as source, and with ``--model`` the weight file
as ``model.ffw``. ``--out DIR`` writes it into DIR as the board's filesystem would hold it
(so ``--out`` on a virtual board's folder flashes it offline).

Flashing a board over ``--port`` takes five steps:

1. hand the port back: a HELLO, then the protocol's REPL request, makes the firmware
   leave its serve loop (ffkit.board.client.Board.repl); the REPL then owns the port.
   Without ``--model`` the flashed firmware boots the board's newest checkpoint, so a
   serving board's state is checkpointed first (CHECKPOINT; not for a fresh board that
   never learnt, nor with ``--drop-learning``); a board that cannot save it is refused
   and keeps serving. A board that does not answer HELLO (already at the REPL, or
   running something else) gets mpremote's Ctrl-C, Ctrl-A (`wake_repl`): a REPL that
   answers is flashed; a port that says nothing fails within about 4 s, naming what to
   check, instead of waiting out mpremote. The probing HELLO is sent with a
   sequence number whose frame holds no Ctrl-B/C/D/E (`quiet_seq`), so a REPL that gets
   it collects junk that nothing runs, and is not soft-reset by a Ctrl-D. A firmware
   whose INFO names another board profile than ``--board`` is refused here and keeps
   serving;
2. probe and prepare (``mpremote connect PORT resume exec``): the REPL reports
   ``sys.platform``, ``sys.implementation._machine`` and ``_mpy`` (the .mpy format and
   native arch its MicroPython loads); a board whose profile (ffrt.boards.detect) has
   another arch than ``--board``, whose MicroPython loads another .mpy version, or that
   cannot load the bundle's viper code, is refused before anything on it changes, naming
   both sides (a board handed back in step 1 is restarted as it was). Then make
   ``:ffrt``, remove files in it that the bundle does not have (a stale ``ffrt/x.py``
   would be imported before ``ffrt/x.mpy``) and, with ``--model``, the checkpoints
   (``ckpt_a.bin``, ``ckpt_b.bin``, ``import.tmp``): a checkpoint boots before
   ``model.ffw``, so the flashed model would never run. Export what the board has learned
   first if you want to keep it;
3. copy (``mpremote connect PORT resume fs cp ...``): every file, one mpremote run; then
   a trial import at the REPL (the running firmware's modules dropped first) must load
   ``ffrt.net`` and its default kernels from the flashed .mpy files (their ``__file__``
   is reported), so a bundle the board cannot load, or that another module on
   ``sys.path`` would shadow, fails here with the board's own error, not as a dead boot;
4. restart: a real board is reset (``mpremote ... reset``: machine.reset(), after which its
   boot runs main.py). The unix port has no reset that keeps the process (its soft reset
   ends it), so a virtual board (``--board unix``) reboots in place: ``mpremote ... exec
   --no-follow`` drops ``main`` and every ``ffrt`` module from sys.modules and imports
   main again, which now finds the flashed bundle in the board's folder first. Restarting
   the sim (``ffkit sim`` again, ``--restart`` after a power cut) boots the bundle too.
   An emulated board (``cortex-m3``, ``cortex-m0``: ffkit.board.qemu) gets a soft reset, a
   Ctrl-D at its friendly REPL: the port's main loop runs the frozen ``_boot.py`` (which
   mounts littlefs again) and the filesystem's ``main.py``, whose ``ffrt`` is the
   flashed one since the filesystem comes before the frozen modules on sys.path; its
   machine.reset() would end QEMU (semihosting exit);
5. check: HELLO and INFO until the board answers (a board that resets re-enumerates
   its USB port, so the port may vanish for a while); a REPL that answers instead means
   the new firmware did not start, and ends the wait at once. With ``--model`` the board
   must report ``boot: model.ffw`` and the model's step.

``mpremote resume`` is used throughout: without it mpremote soft-resets the board first,
which on the unix port ends the process (and on any port skips main.py: a soft reset from
the raw REPL stays there). Errors say what failed: mpremote missing, no port or a busy
one, a board of another architecture or .mpy version than ``--board`` (refused before
anything is copied), a bundle the board cannot import, a firmware that does not start
after the restart (and where to see its traceback).

Size (over 500 lines): one flash is one transaction of several steps (probe the board,
refuse a bundle it cannot load, copy, trial import, restart, check the model, import it
again), each with its own message; the MicroPython it sends is in firmware/tools/.
"""

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ffkit import FFKitError, UsageError
from ffkit.board.mpy import script as tool_script
from ffkit.board.mpy import with_args

MPREMOTE_TIMEOUT = 60.0     # seconds per mpremote run (plus per file while copying)
BOOT_TIMEOUT = 20.0         # seconds for a board to answer again after the restart
HANDBACK_TIMEOUT = 0.5      # seconds per HELLO attempt when asking the firmware to leave
# seconds for a REPL to answer mpremote's Ctrl-C, Ctrl-A when no firmware answered HELLO:
# a port that says nothing in this time fails here, not after mpremote's own waits (60 s)
WAKE_TIMEOUT = 2.5
# what a REPL shows when it takes the port back: the friendly prompt, or the raw REPL's end
# of an exec (a firmware that was re-imported from a raw REPL, step 4, returns there)
_REPL_PROMPTS = (b">>> ", b"\x04>")
# what a REPL prints when the firmware is not running (step 5 then stops waiting)
_REPL_SIGNS = (b"raw REPL; CTRL-B to exit", b">>> ", b"Traceback (most recent call last)")
_HAZARDS = frozenset((2, 3, 4, 5))  # Ctrl-B, C, D, E: see quiet_seq

# What runs on the board at its REPL (mpremote exec), from firmware/tools/: flash_probe.py
# (step 2: what the board's MicroPython is and loads, and on an emulated board which host
# files its boot copies onto it), flash_prepare.py (step 2: make :ffrt, remove stale files;
# its parameters in a JSON header line, ffkit.board.mpy.with_args), flash_trial.py (step 3: a
# trial import of the flashed bundle) and flash_reimport.py (step 4 on the unix port).

# boards that restart with a soft reset at the friendly REPL (step 4): ffkit.board.qemu's
SOFT_RESET_BOARDS = frozenset(("cortex-m3", "cortex-m4", "cortex-m0"))

class FlashError(FFKitError):
    """A flash step failed; the message names the step and what mpremote or the board said."""


def find_mpremote():
    """Path of mpremote: ``$MPREMOTE``, next to ``sys.executable``, then ``PATH``."""
    from ffkit.board.mpy import find_tool

    try:
        return find_tool("mpremote", "MPREMOTE", "mpremote")
    except FileNotFoundError as e:
        raise FlashError(str(e)) from None


def quiet_seq(ftype, body=b""):
    """A sequence number whose frame for (ftype, body) holds no Ctrl-B, C, D or E.

    The probe must be harmless to a board that sits at the REPL. There a Ctrl-D soft-resets
    (on an empty line; the unix port then exits) or runs what was typed, Ctrl-E starts
    paste mode and Ctrl-B leaves the raw REPL. HELLO's own type byte is 0x01, Ctrl-A: it
    puts a REPL in raw mode, where the rest of such a frame is only collected as a line
    that nothing runs (mpremote's Ctrl-C clears it before it takes over).

    >>> from ffrt import proto, proto_host
    >>> s = quiet_seq(proto.HELLO)
    >>> set(proto_host.encode_frame(proto.HELLO, s, b"")) & _HAZARDS
    set()
    """
    from ffrt import proto_host

    for seq in range(256):
        if not set(proto_host.encode_frame(ftype, seq, body)) & _HAZARDS:
            return seq
    return 0   # cannot happen for HELLO (most numbers qualify)


class Flasher:
    """Flashes one bundle (builds.build_bundle) over one port; `say` prints progress."""

    def __init__(self, port, bundle, say=print, timeout=1.0, restart=True,
                 boot_timeout=BOOT_TIMEOUT, mpremote=None, drop_learning=False):
        self.port = port
        self.drop_learning = drop_learning
        self.bundle = bundle
        self.say = say
        self.timeout = timeout
        self.restart = restart
        self.boot_timeout = boot_timeout
        self.mpremote = mpremote or find_mpremote()
        self.model = any(r == "model.ffw" for _, r in bundle["files"])
        self.result = {"port": port, "board": bundle["board"], "arch": bundle["arch"],
                       "kernels": bundle.get("kernels")}

    # ---- the steps -----------------------------------------------------------------------

    def run(self):
        """All five steps; returns a dict for ``--json`` (also in self.result)."""
        t0 = time.perf_counter()
        self.hand_back()
        self.probe()
        self.prepare()
        self.copy()
        self.trial()
        if self.restart:
            self.reboot()
            self.check()
        else:
            self.say("[4/5] restart skipped (--no-restart): the board runs the old firmware "
                     "until it is reset")
        self.result["seconds"] = round(time.perf_counter() - t0, 3)
        return self.result

    def hand_back(self):
        """Step 1: ask a running firmware to leave its serve loop; tolerate one that does
        not answer (at the REPL, or not ffkit)."""
        from ffkit.board.client import Board, BoardTimeout
        from ffkit.board.sim_port import open_port
        from ffrt import proto

        link = open_port(self.port)   # LinkError: no such port, or busy (says so)
        try:
            board = Board(link, timeout=HANDBACK_TIMEOUT, retries=1, hello=False)
            board._seq = (quiet_seq(proto.HELLO) - 1) & 0xFF   # see quiet_seq
            try:
                board.hello()
            except BoardTimeout:
                self.result["was"] = None
                if not wake_repl(link):
                    raise FlashError(silent_port(self.port)) from None
                self.say("[1/5] %s: no ffkit firmware answers; its MicroPython REPL does "
                         "(mpremote takes it from here)" % self.port)
                return
            except FFKitError as e:   # another protocol version: its REPL request may work
                self.say("[1/5] %s: %s; asking it to leave anyway" % (self.port, e))
            try:
                info = board.info()
            except FFKitError:
                info = {}
            self._check_arch(info.get("board"))
            if not self.model and not self.drop_learning:
                saved = keep_learning(board, info, self.port, "the flashed firmware")
                if saved is not None:
                    self.result["saved"] = saved
                    self.say("[1/5] %s: saved the board's state at step %s as checkpoint "
                             "%d (slot %d), which the flashed firmware boots "
                             "(--drop-learning skips this)" % (self.port, saved["step"],
                                                              saved["checkpoint"],
                                                              saved["slot"]))
            try:
                board.repl()
            except FFKitError as e:
                self.say("[1/5] %s: the REPL request failed (%s); mpremote will interrupt "
                         "the firmware" % (self.port, e))
                return
            self.result["was"] = {k: info.get(k) for k in ("firmware", "board", "boot",
                                                          "step")}
            self.say("[1/5] %s: ffkit %s (board %s, booted from %s, step %s) handed the "
                     "port back to the REPL" % (self.port, info.get("firmware", "?"),
                                                info.get("board", "?"),
                                                info.get("boot", "?"), info.get("step", "?")))
            # mpremote's Ctrl-A must reach the REPL, not the firmware: wait for the prompt
            # (it may have come with the reply, then the port falls quiet at once)
            _read_until(link, _REPL_PROMPTS, 2.0, quiet=0.2)
        finally:
            link.close()

    def _check_arch(self, running):
        """Refuse to put code for another architecture on a board that says what it is."""
        from ffkit.board.builds import BOARDS

        if running in BOARDS and BOARDS[running] != self.bundle["arch"]:
            raise FlashError(
                "the board says it is %r (%s); --board %s builds for %s: flash it with "
                "--board %s" % (running, BOARDS[running], self.bundle["board"],
                                self.bundle["arch"], running))

    def probe(self):
        """Step 2, first: what the board's MicroPython is and which .mpy files it loads;
        FlashError (naming both sides) unless it can run the bundle. Nothing on the
        board changes before this passes; a firmware handed back in step 1 is restarted."""
        out = self._mpremote(["exec", tool_script("flash_probe.py")], "probe the board")
        line = next((ln for ln in out.splitlines() if ln.startswith("FFKIT-PROBE ")), None)
        if line is None:
            raise FlashError("probe the board: no answer from its REPL (it printed %r)"
                             % out.strip()[-300:])
        _, platform, mpy, machine = (line.split(" ", 3) + ["?", "?", "?"])[:4]
        try:
            mpy = int(mpy)
        except ValueError:
            mpy = -1
        probe = target_of(platform, mpy, machine.strip())
        self.result["target"] = probe
        why = mismatch(probe, self.bundle)
        copies = set()
        for ln in out.splitlines():
            if ln.startswith("FFKIT-COPIES"):
                copies.update(ln.split()[1:])
        undone = sorted(copies & {r for _, r in self.bundle["files"]})
        if why is None and undone:
            why = ("the board's boot copies %s from its folder on the host (ffkit sim --dir) "
                   "over the board's own, which would undo this flash: remove %s from the "
                   "folder and flash again, or write the bundle into the folder with "
                   "--out DIR (its next boot copies it)"
                   % (", ".join(undone), "it" if len(undone) == 1 else "them"))
        if why is not None:
            if self.result.get("was") and self.restart:
                try:   # leave it serving, as it was before the REPL request
                    self.reboot(quiet=True)
                except FlashError:
                    pass
            raise FlashError(why)
        self.say("[2/5] the board: %s" % describe_target(probe))

    def prepare(self):
        """Step 2: make :ffrt, remove stale modules and (with a model) the checkpoints."""
        from ffkit.board.builds import STALE_ON_MODEL

        keep = sorted(Path(r).name for _, r in self.bundle["files"] if r.startswith("ffrt/"))
        drop = list(STALE_ON_MODEL) if self.model else []
        out = self._mpremote(["exec", with_args(tool_script("flash_prepare.py"),
                                                [keep, drop])], "prepare :ffrt")
        gone = []
        for line in out.splitlines():
            if line.startswith("FFKIT-REMOVED"):
                gone = line.split()[1:]
        self.result["removed"] = gone
        self.say("[2/5] prepared :ffrt/%s" % (
            "; removed " + ", ".join(gone) if gone else " (nothing stale to remove)"))

    def copy(self):
        """Step 3: every file of the bundle, in one mpremote run, one line per file."""
        files = self.bundle["files"]
        total = sum(p.stat().st_size for p, _ in files)
        args = []
        for local, remote in files:
            if args:
                args.append("+")
            args += ["fs", "cp", str(local), ":" + remote]
        self.say("[3/5] copying %d files, %d bytes" % (len(files), total))
        sizes = {str(p): p.stat().st_size for p, _ in files}
        done = [0]

        def line(text):   # mpremote prints "cp SRC :DST" as it starts each file
            if text.startswith("cp ") and " :" in text:
                src, dst = text[3:].rsplit(" :", 1)
                done[0] += 1
                self.say("      [%2d/%d] %-24s %6d bytes" % (done[0], len(files), dst,
                                                             sizes.get(src, 0)))

        self._mpremote(args, "copy the bundle", on_line=line,
                       timeout=MPREMOTE_TIMEOUT + 2.0 * len(files))
        if done[0] != len(files):
            raise FlashError("mpremote copied %d of %d files" % (done[0], len(files)))
        self.result["files"] = [r for _, r in files]
        self.result["bytes"] = total

    def trial(self):
        """Step 3, last: the board imports ffrt.net and its kernels from the copied .mpy
        files (FlashError with the board's own error otherwise)."""
        out = self._mpremote(["exec", tool_script("flash_trial.py")],
                             "trial import of the bundle")
        for line in out.splitlines():
            if line.startswith("FFKIT-FAILS"):
                raise FlashError("the board cannot import the flashed bundle: %s (the "
                                 "files stay on it; flash a bundle it loads)"
                                 % line.split(" ", 1)[-1])
            if line.startswith("FFKIT-LOADS "):
                net, kname, kfile = (line.split(" ")[1:] + ["?", "?"])[:3]
                if not net.endswith(".mpy"):
                    raise FlashError("the board imports ffrt.net from %s, not from the "
                                     "flashed ffrt/net.mpy: something earlier on its "
                                     "sys.path shadows the bundle" % net)
                self.result["modules"] = {"ffrt.net": net, kname: kfile}
                self.say("      the board loads them: ffrt.net from %s, kernels %s from %s"
                         % (net, kname, kfile))
                return
        raise FlashError("trial import of the bundle: no answer (the board printed %r)"
                         % out.strip()[-300:])

    def reboot(self, quiet=False):
        """Step 4: re-import main on the unix port, a soft reset at the friendly REPL on
        an emulated board, machine.reset() on a real one."""
        board = self.bundle["board"]
        if board == "unix":
            self._mpremote(["exec", "--no-follow", tool_script("flash_reimport.py")],
                           "restart the firmware")
            how = "re-imported main in the running unix port (its soft reset would end it)"
        elif board in SOFT_RESET_BOARDS:
            self._soft_reset()
            how = ("soft reset at the friendly REPL (Ctrl-D: _boot.py, then the "
                   "filesystem's main.py; machine.reset() would end QEMU)")
        else:
            self._mpremote(["reset"], "reset the board")
            how = "reset the board (machine.reset)"
        if not quiet:
            self.result["restart"] = how
            self.say("[4/5] " + how)

    def _soft_reset(self):
        """Ctrl-D at the friendly REPL: Ctrl-C twice (stop whatever runs), Ctrl-B (leave
        a raw REPL), then Ctrl-D on the empty line once the prompt shows."""
        from ffkit.board.sim_port import open_port

        link = open_port(self.port)
        try:
            link.write(b"\r\x03\x03\x02")
            got = _read_until(link, (b">>> ",), 5.0)
            if b">>> " not in got:
                raise FlashError("restart: no REPL prompt on %s (it printed %r)"
                                 % (self.port, got[-200:]))
            _read_until(link, None, 0.5, quiet=0.1)   # the rest of the banner
            link.write(b"\x04")
            got = _read_until(link, (b"soft reboot",), 5.0)
            if b"soft reboot" not in got:
                raise FlashError("restart: the REPL did not soft-reset on Ctrl-D (it "
                                 "printed %r)" % got[-200:])
        finally:
            link.close()

    def check(self):
        """Step 5: the board answers HELLO and INFO; with a model it booted model.ffw."""
        info = self._await_board()
        self.result["info"] = info
        if self.model:
            from ffrt import ffw_ram
            blob = next(p for p, r in self.bundle["files"] if r == "model.ffw").read_bytes()
            want = ffw_ram.load(blob).step
            if info.get("boot") != "model.ffw" or info.get("step") != want:
                raise FlashError(
                    "the board booted from %s at step %s, not from model.ffw at step %d "
                    "(did the firmware refuse the file?)" % (info.get("boot"),
                                                             info.get("step"), want))
        self.say("[5/5] %s answers: ffkit %s, board %s, booted from %s, step %s" % (
            self.port, info.get("firmware"), info.get("board"), info.get("boot"),
            info.get("step")))

    def _await_board(self):
        """INFO from the rebooted board. Waits out a port that is gone for a while (a
        board that resets re-enumerates its USB port) and a board that is still booting;
        gives up at once when a REPL answers instead (the boot failed)."""
        from ffkit.board.client import Board, BoardTimeout
        from ffkit.board.link import LinkError
        from ffkit.board.sim_port import open_port
        from ffrt import proto

        if self.bundle["board"] != "unix":
            time.sleep(0.5)   # machine.reset() comes 100 ms after mpremote lets go
        deadline = time.monotonic() + self.boot_timeout
        seq = (quiet_seq(proto.HELLO) - 1) & 0xFF
        while True:
            link = None
            try:
                link = _Tap(open_port(self.port))
                board = Board(link, timeout=self.timeout, retries=0, hello=False)
                while True:
                    board._seq = seq   # a REPL must not take the probe as Ctrl-D
                    try:
                        board.hello()
                        return board.info()
                    except BoardTimeout:
                        if any(m in link.seen for m in _REPL_SIGNS):
                            raise FlashError(self._no_boot("a REPL answered instead of "
                                                           "the firmware", link)) from None
                        if time.monotonic() > deadline:
                            raise FlashError(self._no_boot(
                                "no answer within %.0f s" % self.boot_timeout, link)) from None
            except LinkError as e:
                if time.monotonic() > deadline:
                    raise FlashError("%s did not come back after the restart: %s"
                                     % (self.port, e)) from None
                time.sleep(0.2)
            finally:
                if link is not None:
                    link.close()

    def _no_boot(self, why, link):
        text = link.text()
        shown = ""
        if "Traceback" in text or "Error" in text:
            shown = "; it printed:\n" + text
        where = ("`ffkit sim` shows the traceback of a virtual board's failed boot"
                 if self.bundle["board"] == "unix" else
                 "`mpremote connect %s resume repl` shows what the board prints" % self.port)
        return "the firmware did not start after the restart (%s)%s; %s" % (why, shown, where)

    # ---- mpremote --------------------------------------------------------------------------

    def _mpremote(self, args, what, on_line=None, timeout=MPREMOTE_TIMEOUT):
        """Run ``mpremote connect PORT resume ARGS``; its stdout, or FlashError."""
        argv = [self.mpremote, "connect", self.port, "resume"] + args
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, errors="replace")
        except OSError as e:
            raise FlashError("cannot run mpremote (%s): %s" % (self.mpremote, e)) from None
        out, err = [], []
        expired = threading.Event()

        def kill():   # a hung mpremote must not hang ffkit: killed at the deadline
            expired.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        drain.start()
        try:
            for text in proc.stdout:
                out.append(text)
                if on_line is not None:
                    on_line(text.rstrip("\n"))
            proc.wait()
            drain.join(1.0)
        finally:
            watchdog.cancel()
        if expired.is_set():
            raise FlashError("mpremote did not finish (%s) within %.0f s" % (what, timeout))
        if proc.returncode != 0:
            msg = ("".join(err) + "".join(out)).strip() or "exit code %d" % proc.returncode
            hint = ""
            if "could not enter raw repl" in msg:
                hint = (" (the board did not give mpremote its REPL: is ffkit firmware "
                        "running that did not answer, or another program on the port?)")
            raise FlashError("%s: mpremote failed: %s%s" % (what, msg.splitlines()[-1]
                                                            if msg else msg, hint))
        return "".join(out)


class _Tap:
    """A Link that keeps the last bytes it read, to show what a board printed."""

    def __init__(self, link, keep=4096):
        self.link = link
        self.name = link.name
        self.keep = keep
        self.seen = bytearray()

    def write(self, data):
        self.link.write(data)

    def read(self, n, timeout):
        data = self.link.read(n, timeout)
        self.seen += data
        del self.seen[:-self.keep]
        return data

    def text(self, limit=1500):
        """The printable text among the bytes read (frames and echoes are mostly not)."""
        raw = bytes(self.seen) + _read_until(self.link, None, 1.0, quiet=0.2)
        text = "".join(c for c in raw.decode("utf-8", "replace")
                       if c == "\n" or " " <= c <= "~")
        return text.strip()[-limit:]

    def close(self):
        self.link.close()


def keep_learning(board, info, port, who):
    """Checkpoint a serving board (its INFO: info) before it leaves its serve loop.

    A restarted firmware (`who` boots: the flashed one, or the board after ffkit repl)
    boots the board's newest checkpoint: what it learnt since would be lost. INFO does not
    say whether the newest checkpoint holds the running state, so it is saved (a state one
    already holds costs one slot write); nothing is saved for a board that booted fresh
    and never learnt (None is returned). Returns {"step", "checkpoint", "slot"}; a board
    that cannot save raises FlashError (it still serves: it was not asked to leave).
    """
    from ffkit.board.client import SLOW_TIMEOUT

    step = info.get("step")
    if info.get("boot") == "fresh" and not step:
        return None
    try:
        board.timeout = max(board.timeout, SLOW_TIMEOUT)
        seq, slot = board.checkpoint()
    except FFKitError as e:
        raise FlashError(
            "%s: the board is at step %s (booted from %s) and could not save it (%s); %s "
            "would boot without what it learnt since its last checkpoint: export it first "
            "(ffkit export -o board.ffw, then flash with --model board.ffw), or pass "
            "--drop-learning to lose it. The board still serves"
            % (port, step, info.get("boot", "?"), e, who)) from None
    return {"step": step, "checkpoint": seq, "slot": slot}


def wake_repl(link, timeout=WAKE_TIMEOUT):
    """Whether a MicroPython REPL answers on link: mpremote's own first bytes (Ctrl-C:
    interrupt what runs; Ctrl-A: the raw REPL, which prints its banner from either REPL),
    then Ctrl-B back to the friendly REPL. For a port whose firmware did not answer HELLO:
    a port that says nothing within timeout seconds returns False (the caller fails at
    once instead of waiting out mpremote); any answer returns True (a board that prints
    something else is left to mpremote, which names what it got)."""
    try:
        link.write(b"\r\x03\x03")
        link.write(b"\r\x01")
    except FFKitError:
        return False
    got = _read_until(link, (b"raw REPL; CTRL-B to exit",), timeout)
    if b"raw REPL; CTRL-B to exit" in got:
        link.write(b"\x02")
        _read_until(link, (b">>> ",), 1.0)   # the friendly banner, not left for mpremote
    return bool(got)


def silent_port(port):
    """The message for a port on which neither ffkit firmware nor a REPL answers."""
    return ("%s says nothing: no ffkit firmware answered HELLO and no MicroPython REPL "
            "answered Ctrl-C, Ctrl-A within %.1f s (is it the board's port? is the board "
            "powered and running, not in its bootloader? a program that turned Ctrl-C off "
            "needs a reset: press the board's reset button and try again)"
            % (port, HANDBACK_TIMEOUT * 2 + WAKE_TIMEOUT))


def _read_until(link, markers, timeout, quiet=None):
    """Bytes from link until one of markers shows, nothing came for `quiet` seconds (after
    something came, or from the start when quiet is given), or timeout seconds passed."""
    got = b""
    now = time.monotonic()
    deadline = now + timeout
    last = now
    while now < deadline:
        try:
            chunk = link.read(4096, min(0.05, deadline - now))
        except FFKitError:
            break
        now = time.monotonic()
        got += chunk
        if chunk:
            last = now
            if markers is not None and any(m in got for m in markers):
                break
        elif quiet is not None and now - last >= quiet:
            break
    return got


# ---- is this bundle for this board? ---------------------------------------------------------

def target_of(platform, mpy, machine):
    """What the probe (step 2) says of a board: its profile (None when ffrt.boards knows
    no such platform), platform, machine and the .mpy files it loads."""
    from ffkit.board.builds import decode_sys_mpy
    from ffrt import boards

    try:
        profile = boards.detect(platform, machine)
    except ValueError:
        profile = None
    t = {"profile": profile, "platform": platform, "machine": machine, "sys_mpy": mpy}
    if mpy >= 0:
        d = decode_sys_mpy(mpy)
        t.update(mpy="%d.%d" % (d["version"], d["sub_version"]), native=d["arch"])
    else:
        t.update(mpy=None, native=None)
    return t


def describe_target(t):
    return "%s (sys.platform %s, %s): loads .mpy v%s, %s" % (
        t["profile"] or "no known profile", t["platform"], t["machine"], t["mpy"] or "?",
        "native code for %s" % t["native"] if t["native"] else "no native code")


def mismatch(t, bundle):
    """Why the bundle cannot go on the board the probe describes, or None."""
    from ffkit.board.builds import BOARDS, loads_native

    board, arch = bundle["board"], bundle["arch"]
    version, sub = bundle.get("mpy") or (None, None)
    ours = "--board %s builds .mpy v%s.%s for %s" % (board, version, sub, arch)
    them = "the board is %s" % describe_target(t)
    if t["profile"] is not None and BOARDS.get(t["profile"]) != arch:
        return "%s; %s: flash it with --board %s" % (them, ours, t["profile"])
    if t["mpy"] is None:
        return ("%s; it does not say which .mpy files it loads (no sys.implementation._mpy: "
                "a MicroPython older than the .mpy v%s of %s)" % (them, version, board))
    v, s = (int(p) for p in t["mpy"].split("."))
    if version is not None and v != version:
        return ("%s; %s: use the mpy-cross of the board's MicroPython, or update its "
                "MicroPython" % (them, ours))
    if bundle.get("native", True):
        if t["native"] is None:
            return "%s; %s with viper code, which it cannot load" % (them, ours)
        if not loads_native(t["native"], arch) or (sub is not None and s != sub):
            return "%s; %s: its native code does not load there" % (them, ours)
    return None


# ---- the bundle on the host -----------------------------------------------------------------

def write_out(board, out_dir, model=None):
    """``--out``: the bundle in out_dir, as a board's filesystem holds it after flashing
    (with a model, checkpoints there are removed, as on a board)."""
    from ffkit.board.builds import STALE_ON_MODEL, build_bundle

    bundle = build_bundle(board, out_dir, model=model)
    removed = []
    if model is not None:
        for name in STALE_ON_MODEL:
            p = Path(out_dir) / name
            if p.exists():
                p.unlink()
                removed.append(name)
    return bundle, removed


def flash(port, board, model=None, say=print, timeout=1.0, restart=True,
          boot_timeout=BOOT_TIMEOUT, drop_learning=False):
    """Build the bundle for board in a temporary folder and flash it over port.

    port may be ``sim://DIR``: that folder's virtual board is booted for the flash and
    stopped afterwards. Returns the result dict (see Flasher.run).
    """
    from ffkit.board.builds import build_bundle

    mpremote = find_mpremote()   # before anything is built or any port opened
    with tempfile.TemporaryDirectory(prefix="ffkit-flash-") as tmp:
        bundle = build_bundle(board, tmp, model=model)
        _say_bundle(say, bundle)
        sim = None
        if port.startswith("sim://"):
            from ffkit.board.sim_port import open_port
            link = open_port(port)      # boots the folder's board (ffkit.board.sim_port)
            sim = link.board
            link.serial.close()         # mpremote and our sessions open its pty themselves
            port = sim.port
        try:
            return Flasher(port, bundle, say=say, timeout=timeout, restart=restart,
                           boot_timeout=boot_timeout, mpremote=mpremote,
                           drop_learning=drop_learning).run()
        finally:
            if sim is not None:
                sim.stop()


def _say_bundle(say, bundle):
    from ffkit.board.builds import find_mpy_cross, mpy_cross_version

    files = bundle["files"]
    n = sum(1 for _, r in files if r.startswith("ffrt/"))
    size = sum(p.stat().st_size for p, _ in files)
    extra = [r for _, r in files if not r.startswith("ffrt/")]
    say("built %s bundle: %d ffrt modules as .mpy (mpy-cross -march=%s, format v%d.%d) + %s, "
        "%d bytes" % (bundle["board"], n, bundle["arch"], *mpy_cross_version(find_mpy_cross()),
                      " + ".join(extra), size))
    kernels = bundle.get("kernels")
    if kernels == "native":
        say("kernels: native (C for %s, ffrt/kernels_native.mpy)" % bundle["arch"])
    elif kernels is not None:
        say("kernels: %s (no native kernels: %s)" % (kernels, bundle["kernels_note"]))


# ---- ffkit flash -----------------------------------------------------------------------------

def add_arguments(p):
    from ffkit.board.builds import BOARDS

    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="board profile: its mpy-cross -march (firmware/ffrt/boards.py)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--port", metavar="PORT", default=None,
                   help="serial device or a virtual board's /dev/pts/N, or sim://DIR "
                        "(default: $FFKIT_PORT, else the only board attached)")
    g.add_argument("--out", metavar="DIR", type=Path,
                   help="only build: write the bundle into DIR (as the board would hold it)")
    p.add_argument("--model", metavar="W.ffw", type=Path,
                   help="also flash this weight file as model.ffw (the board's checkpoints "
                        "are removed: they would boot first)")
    p.add_argument("--drop-learning", action="store_true",
                   help="without --model, do not checkpoint a serving board first: it boots "
                        "its last checkpoint, losing what it learnt since")
    p.add_argument("--no-restart", action="store_true",
                   help="copy only; do not restart the firmware")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds per protocol reply (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")


def run_cli(args):
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    say = (lambda *a: None) if args.json else (lambda s: print(s, flush=True))
    if args.out is not None:
        bundle, removed = write_out(args.board, args.out, model=args.model)
        _say_bundle(say, bundle)
        files = [{"path": r, "bytes": p.stat().st_size} for p, r in bundle["files"]]
        for f in files:
            say("  %-24s %6d bytes" % (f["path"], f["bytes"]))
        if removed:
            say("removed %s (a checkpoint would boot before model.ffw)" % ", ".join(removed))
        say("wrote %s (ffkit flash --board %s --port PORT%s copies the same files to a board)"
            % (args.out, args.board, " --model %s" % args.model if args.model else ""))
        result = {"board": args.board, "arch": bundle["arch"], "out": str(args.out),
                  "kernels": bundle["kernels"], "files": files,
                  "bytes": sum(f["bytes"] for f in files), "removed": removed}
    else:
        from ffkit.board.link import choose_port
        port = choose_port(args.port or os.environ.get("FFKIT_PORT"))
        result = flash(port, args.board, model=args.model, say=say, timeout=args.timeout,
                       restart=not args.no_restart, drop_learning=args.drop_learning)
        say("flashed %s in %.1f s" % (port, result["seconds"]))
    if args.json:
        print(json.dumps(result, default=str))
    return 0


__all__ = ["FlashError", "Flasher", "find_mpremote", "flash", "mismatch", "quiet_seq",
           "keep_learning", "silent_port", "target_of", "wake_repl", "write_out"]
