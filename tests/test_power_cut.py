"""Power cuts on a virtual board: after any cut, the board holds the old or the new weights.

A power cut is SIGKILL to the firmware process (ffkit.board.sim: no Python cleanup runs; what
was written to its folder stays, what was not never happened). After each cut the board
boots again on the same folder and its export must equal, byte for byte, the weights it
held before the operation ("old") or the ones the operation was putting in place ("new"),
and "new" whenever the operation had been answered before the cut.

Two ways to choose the moment:

- at random: the operation (an import of a 32 KB file; a checkpoint after a few learn
  steps) is timed first, then cut at a uniformly random offset within that time, CUTS
  times each (``--runslow``: SLOW_CUTS; FFKIT_POWER_CUTS=N sets it; the seed is
  FFKIT_POWER_CUT_SEED). Each trial starts from whatever the previous cut left behind, so
  half-written slots and stale stage files are part of the test.
- at a stage: the board's folder gets a main.py (HOOK_MAIN) that runs the real firmware
  with ffrt.storage's `open` and `os` wrapped; a plan file names the moment (after the Nth
  byte written to a file, after its close, before or after an os call) and the firmware
  kills itself there (``kill -9 $PPID`` via os.system: nothing else runs in between).
  These cases also say which of old and new each stage must give.
"""

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from ffkit.twins import kernels_np
from ffkit.board.client import Board
from ffkit.board.link import Link, open_link
from ffkit.board.sim import VirtualBoard
from ffrt import ffw_ram
from ffrt.model import Config

pytestmark = pytest.mark.device

CUTS = 50           # random moments per operation in CI
SLOW_CUTS = 500     # with --runslow
SLOT_HEAD = 8       # ffrt.storage: magic and sequence number before the .ffw, CRC after
PLAN = "cut.plan"

HOOK_MAIN = r'''
# The firmware with a power cut at a planned moment of its storage work (tests/test_power_cut.py).
# The plan file (JSON), read at every storage call: {"op": "write", "file": PREFIX, "at": N}
# dies once N bytes are written to a file whose name starts with PREFIX; {"op": "close",
# "file": PREFIX} right after closing it; {"op": "call", "name": F, "when": "before"|"after"}
# around os.F.
import json
import os


def _plan():
    try:
        with open("cut.plan") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def _die():
    os.system("kill -9 $PPID")  # the shell's parent: this firmware
    while True:
        pass


class _File:
    def __init__(self, f, name):
        self._f = f
        self._name = name.split("/")[-1]
        self._n = 0

    def _mine(self, p, op):
        return p is not None and p["op"] == op and self._name.startswith(p["file"])

    def write(self, b):
        p = _plan()
        if self._mine(p, "write") and self._n + len(b) >= p["at"]:
            k = p["at"] - self._n
            if k > 0:
                self._f.write(bytes(b)[:k])
            _die()
        self._n += len(b)
        return self._f.write(b)

    def close(self):
        self._f.close()
        if self._mine(_plan(), "close"):
            _die()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _open(name, mode="r", *rest):
    f = open(name, mode, *rest)
    if "w" in mode or "a" in mode or "+" in mode:
        return _File(f, name)
    return f


class _Os:
    def __getattr__(self, name):
        v = getattr(os, name)
        p = _plan()
        if p is None or p["op"] != "call" or p["name"] != name:
            return v

        def call(*a):
            if p["when"] == "before":
                _die()
            v(*a)
            _die()
        return call


from ffrt import storage  # noqa: E402

storage.open = _open
storage.os = _Os()

from ffrt import app  # noqa: E402

app.run()
'''


class PowerCut(Exception):
    """The firmware died while a request waited for its answer."""


class CutLink(Link):
    """A link whose read gives up once the board's firmware is dead, so a request cut by
    a power cut raises PowerCut at once instead of waiting out its timeouts and retries.
    Bytes the board sent before it died are still delivered first."""

    def __init__(self, inner, vb):
        self.inner = inner
        self.vb = vb
        self.name = inner.name

    def write(self, data):
        self.inner.write(data)

    def read(self, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            data = self.inner.read(n, max(0.0, min(0.005, left)))
            if data:
                return data
            if not self.vb.running:
                raise PowerCut()
            if left <= 0:
                return b""

    def close(self):
        self.inner.close()


def _rng_samples(rnd, n):
    cfg = Config()
    return [([rnd.randrange(cfg.in_max + 1) for _ in range(cfg.n_features)],
             rnd.randrange(cfg.n_classes)) for _ in range(n)]


@pytest.fixture(scope="module")
def files(repo_root):
    """Two weight files of the board's shape: the digits model, and it after 20 steps."""
    a = (repo_root / "models" / "digits.ffw").read_bytes()
    net = ffw_ram.load(a, kernels=kernels_np)
    for x, y in _rng_samples(random.Random(5), 20):
        net.learn_one(x, y)
    b = bytes(ffw_ram.encode(net))
    assert a != b and len(a) == len(b)
    return a, b


def _cuts(request):
    env = os.environ.get("FFKIT_POWER_CUTS")
    if env:
        return int(env)
    return SLOW_CUTS if request.config.getoption("--runslow") else CUTS


def _seed():
    return int(os.environ.get("FFKIT_POWER_CUT_SEED", "1"))


class Rig:
    """A virtual board, a CutLink to its port and a Board session on that link."""

    def __init__(self, d, main=None):
        d.mkdir(parents=True, exist_ok=True)
        if main is not None:
            (d / "main.py").write_text(main)
        self.vb = VirtualBoard(d).start()
        self.link = CutLink(open_link(self.vb.port), self.vb)
        self.board = Board(self.link, hello_timeout=0.5)

    def start(self):
        self.vb.start()

    def reboot(self):
        """Power on again after a cut; returns the board's export."""
        self.vb.power_cut()   # reaps the process (it is already dead)
        self.start()
        self.board = Board(self.link, hello_timeout=0.5)
        info = self.board.info()
        assert info["boot"] == "checkpoint", info
        return self.board.export()

    def close(self):
        self.link.close()
        self.vb.stop()


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(main=None):
        r = Rig(tmp_path / ("board%d" % len(made)), main)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def _offsets(rnd, n, duration):
    """n offsets in [0, duration): uniform, one in each of n equal strata, shuffled."""
    out = [(i + rnd.random()) * duration / n for i in range(n)]
    rnd.shuffle(out)
    return out


def _timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def _run_cut(rig, op, offset):
    """op() with SIGKILL offset seconds after it starts; (answered, kill offset seen)."""
    pid = rig.vb.pid
    when = []

    def kill():
        when.append(time.monotonic())
        os.kill(pid, signal.SIGKILL)
    timer = threading.Timer(offset, kill)
    t0 = time.monotonic()
    timer.start()
    try:
        op()
        done = time.monotonic() - t0
    except PowerCut:
        done = None
    timer.join()
    return done, when[0] - t0


def _report(request, name, trials, duration, rig):
    olds = sum(1 for t in trials if t[2] == "old")
    answered = sum(1 for t in trials if t[1] is not None)
    offs = sorted(t[0] * 1000 for t in trials)
    print("\n%s: %d cuts over a %.1f ms operation, at %.2f..%.2f ms (median %.2f): "
          "%d old, %d new (%d answered before the cut)"
          % (name, len(trials), duration * 1000, offs[0], offs[-1], offs[len(offs) // 2],
             olds, len(trials) - olds, answered))
    request.node.user_properties.append((name, {
        "cuts": len(trials), "duration_ms": round(duration * 1000, 2), "old": olds,
        "new": len(trials) - olds, "answered": answered,
        "kill_ms": [round(o, 2) for o in offs]}))


def test_power_cuts_at_random_moments_of_an_import(rig, files, request):
    a, b = files
    r = rig()
    r.board.import_weights(a)
    # the operation's duration: the slowest of a few uncut imports
    duration = max(_timed(lambda f=f: r.board.import_weights(f)) for f in (b, a, b, a))
    state = r.board.export()
    assert state == a
    rnd = random.Random(_seed())
    trials = []
    for offset in _offsets(rnd, _cuts(request), duration):
        new = b if state == a else a
        done, killed_at = _run_cut(r, lambda: r.board.import_weights(new), offset)
        got = r.reboot()
        assert got in (state, new), "neither old nor new after a cut %.2f ms into an import" \
            % (killed_at * 1000)
        if done is not None and done < killed_at:
            assert got == new, "an import answered before the cut was lost"
        trials.append((killed_at, done, "old" if got == state else "new"))
        state = got
    _report(request, "power cuts during import", trials, duration, r)
    # most cuts strike before the commit's checkpoint is whole (the stage test below has
    # the "new" cases for certain); the cuts covered the operation
    assert any(t[2] == "old" and t[1] is None for t in trials)
    assert max(t[0] for t in trials) > 0.9 * duration


def test_power_cuts_at_random_moments_of_a_checkpoint(rig, files, request):
    a, _ = files
    r = rig()
    r.board.import_weights(a)
    rnd = random.Random(_seed() + 1)
    samples = _rng_samples(rnd, 64)
    durations = []
    for i in range(4):   # timed as the trials run it: after a learn step and an export
        r.board.learn(*samples[i])
        r.board.export()
        durations.append(_timed(r.board.checkpoint))
    duration = max(durations)
    state = r.board.export()
    trials = []
    for i, offset in enumerate(_offsets(rnd, _cuts(request), duration)):
        for k in range(rnd.randrange(1, 4)):   # weights that differ from the checkpoint's
            r.board.learn(*samples[(3 * i + k) % len(samples)])
        new = r.board.export()
        assert new != state
        done, killed_at = _run_cut(r, r.board.checkpoint, offset)
        got = r.reboot()
        assert got in (state, new), "neither old nor new after a cut %.2f ms into a " \
            "checkpoint" % (killed_at * 1000)
        if done is not None and done < killed_at:
            assert got == new, "a checkpoint answered before the cut was lost"
        trials.append((killed_at, done, "old" if got == state else "new"))
        state = got
    _report(request, "power cuts during checkpoint", trials, duration, r)
    assert any(t[2] == "old" and t[1] is None for t in trials)
    assert max(t[0] for t in trials) > 0.9 * duration


# ---- cuts at chosen stages ---------------------------------------------------------------------

def _slot_bytes(size):
    return SLOT_HEAD + size + 4


def _stage_cases(size):
    total = _slot_bytes(size)
    imp = [
        ({"op": "write", "file": "import.tmp", "at": 0}, "old"),
        ({"op": "write", "file": "import.tmp", "at": 5000}, "old"),
        ({"op": "write", "file": "import.tmp", "at": size}, "old"),   # all staged, unanswered
        ({"op": "close", "file": "import.tmp"}, "old"),              # the commit begins
    ]
    slot = [
        ({"op": "write", "file": "ckpt_", "at": 0}, "old"),          # the slot just truncated
        ({"op": "write", "file": "ckpt_", "at": SLOT_HEAD}, "old"),  # its header alone
        ({"op": "write", "file": "ckpt_", "at": SLOT_HEAD + 5000}, "old"),
        ({"op": "write", "file": "ckpt_", "at": total - 4}, "old"),  # all but its CRC
        ({"op": "write", "file": "ckpt_", "at": total - 1}, "old"),
        ({"op": "write", "file": "ckpt_", "at": total}, "new"),      # whole, not yet closed
        ({"op": "close", "file": "ckpt_"}, "new"),
    ]
    after = [
        ({"op": "call", "name": "remove", "when": "before"}, "new"),  # import.tmp still there
        ({"op": "call", "name": "remove", "when": "after"}, "new"),
    ]
    return [("import",) + c for c in imp + slot + after] + [("checkpoint",) + c for c in slot]


def _label(case):
    op, plan, _ = case
    return "%s-%s-%s-%s" % (op, plan["op"], plan.get("file", plan.get("name")),
                            plan.get("at", plan.get("when", "")))


def test_power_cuts_at_each_stage(rig, files, request):
    """Every stage case in one board, one after the other: each names its outcome."""
    a, b = files
    r = rig(HOOK_MAIN)
    r.board.import_weights(a)
    state = r.board.export()
    samples = _rng_samples(random.Random(3), 40)
    plan_path = r.vb.dir / PLAN
    seen = []
    for i, case in enumerate(_stage_cases(len(a))):
        op, plan, want = case
        if op == "import":
            new = b if state == a else a
            run = lambda: r.board.import_weights(new)  # noqa: E731
        else:
            r.board.learn(*samples[i % len(samples)])
            new = r.board.export()
            run = r.board.checkpoint
        plan_path.write_text(json.dumps(plan))
        try:
            with pytest.raises(PowerCut):
                run()
            assert r.vb.returncode == -signal.SIGKILL, _label(case)
            if plan["op"] == "write":
                name = plan["file"]
                sizes = [p.stat().st_size for p in r.vb.dir.iterdir()
                         if p.name.startswith(name)]
                assert plan["at"] in sizes, (_label(case), sizes)  # cut where planned
            elif plan["op"] == "call":   # the stage file, still there or just removed
                assert (r.vb.dir / "import.tmp").exists() == (plan["when"] == "before")
        finally:
            plan_path.unlink()
        got = r.reboot()
        assert got in (state, new), "neither old nor new: " + _label(case)
        assert got == (state if want == "old" else new), "%s gave %s weights, not %s" % (
            _label(case), "old" if got == state else "new", want)
        seen.append(_label(case))
        state = got
    print("\npower cuts at %d stages: %s" % (len(seen), ", ".join(seen)))
    request.node.user_properties.append(("stages", seen))


def test_plan_hook_is_inert_without_a_plan(rig, files):
    """The hook main.py alone changes nothing: import, checkpoint, reboot as usual."""
    a, b = files
    r = rig(HOOK_MAIN)
    r.board.import_weights(b)
    r.board.checkpoint()
    r.vb.power_cut()
    r.start()
    board = Board(r.link, hello_timeout=0.5)
    assert board.export() == b
    assert sorted(p.name for p in Path(r.vb.dir).iterdir()) == \
        ["ckpt_a.bin", "ckpt_b.bin", "main.py"]


# ---- the host's view: a cut during IMPORT_COMMIT on a board that restarts --------------------

class RestartLink(Link):
    """A link to a board that boots again by itself when its firmware dies, as `ffkit sim
    --restart` does (the plan file goes first, so the boot does not cut itself again)."""

    def __init__(self, inner, vb, plan):
        self.inner = inner
        self.vb = vb
        self.plan = plan
        self.name = inner.name

    def write(self, data):
        self.inner.write(data)

    def read(self, n, timeout):
        if not self.vb.running:
            if self.plan.exists():
                self.plan.unlink()
            self.vb.power_cut()
            self.vb.start()
        return self.inner.read(n, timeout)

    def close(self):
        self.inner.close()


@pytest.mark.parametrize("plan, want", [
    ({"op": "call", "name": "remove", "when": "before"}, "new"),   # committed, unanswered
    ({"op": "write", "file": "ckpt_", "at": "total"}, "new"),
    ({"op": "close", "file": "import.tmp"}, "old"),                # the commit had begun
], ids=["remove-before", "slot-written", "stage-closed"])
def test_a_cut_commit_retried_after_the_restart_says_what_the_board_holds(
        rig, files, monkeypatch, plan, want):
    """Issue 12 item 5: the retried IMPORT_COMMIT reaches the restarted board, which
    answers "no import open"; the host then asks the board what it holds."""
    from ffkit.board import client
    from ffkit.board.client import ImportIncomplete

    monkeypatch.setattr(client, "SLOW_TIMEOUT", 1.5)  # the retry comes sooner
    a, b = files
    r = rig(HOOK_MAIN)
    r.board.import_weights(a)
    plan = dict(plan)
    if plan.get("at") == "total":
        plan["at"] = _slot_bytes(len(a))
    plan_path = r.vb.dir / PLAN
    plan_path.write_text(json.dumps(plan))
    board = Board(RestartLink(r.link.inner, r.vb, plan_path), timeout=1.5, hello_timeout=0.5)
    boots = r.vb.boots
    if want == "new":
        assert board.import_weights(b) == ffw_ram.load(b, kernels=kernels_np).step
        assert r.vb.boots == boots + 1                 # it did restart in between
        assert board.export() == b
    else:
        with pytest.raises(ImportIncomplete) as e:
            board.import_weights(b)
        assert r.vb.boots == boots + 1
        assert "did not complete" in str(e.value) and "previous weights" in str(e.value)
        assert "no import open" not in str(e.value)
        assert board.export() == a


@pytest.mark.parametrize("plan, want", [
    ({"op": "call", "name": "remove", "when": "before"}, "new"),
    ({"op": "close", "file": "import.tmp"}, "old"),
], ids=["remove-before", "stage-closed"])
def test_ffkit_import_across_a_restart_says_what_the_board_holds(
        rig, files, tmp_path, monkeypatch, plan, want):
    """`ffkit import` against a board that restarts by itself (`ffkit sim --restart`) when
    the power is cut during IMPORT_COMMIT: "imported" when the new weights are in, else
    exit 1 saying the import did not complete, never "no import open"."""
    from ffkit.board import client
    from test_cli import run_main

    monkeypatch.setattr(client, "SLOW_TIMEOUT", 1.5)
    a, b = files
    r = rig(HOOK_MAIN)
    r.board.import_weights(a)
    r.link.close()                      # the CLI opens the port itself
    plan_path = r.vb.dir / PLAN
    plan_path.write_text(json.dumps(plan))
    f = tmp_path / "new.ffw"
    f.write_bytes(b)
    boots = r.vb.boots
    stop = threading.Event()

    def restarter():                    # what `ffkit sim --restart` does
        while not stop.wait(0.01):
            if not r.vb.running:
                plan_path.unlink()
                r.vb.power_cut()
                r.vb.start()
    t = threading.Thread(target=restarter, daemon=True)
    t.start()
    try:
        code, out, err = run_main("import", str(f), "--port", r.vb.port, "--no-progress")
    finally:
        stop.set()
        t.join()
    assert r.vb.boots == boots + 1
    assert "no import open" not in err and "Traceback" not in err, err
    if want == "new":
        assert code == 0 and "imported %s" % f in out, (code, out, err)
    else:
        assert code == 1 and "the import did not complete" in err, (code, out, err)
    with Board(open_link(r.vb.port), hello_timeout=0.5) as board:
        assert board.export() == (b if want == "new" else a)
