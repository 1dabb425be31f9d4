#!/usr/bin/env python3
"""Type-check the board runtime (firmware/) with mypy against MicroPython's rp2 and esp32 stubs.

    python tools/typecheck.py [--board rp2|esp32] [PATH ...]

Checks `firmware/ffrt`, every `firmware/*.py` (main.py) and the scripts the host runs on
boards (`firmware/tools/*.py`) by default, once per board, prints mypy's errors and exits
1 if there is any, 2 if the stubs or mypy are missing. `make test` installs the stubs
(exact pins in the Makefile) into .stubs/rp2 and .stubs/esp32 and runs this through
tests/test_typecheck.py; `make typecheck` runs it alone.

Per board, the run is (mypy-firmware.ini explains each setting):

    MYPYPATH=.stubs/<board> python -m mypy --config-file mypy-firmware.ini \\
        --custom-typeshed-dir .stubs/<board> --platform <board> \\
        --cache-dir .stubs/mypy-cache/<board> -O json PATH ...

so `import machine` is the board's machine.pyi and the standard library is
micropython-stdlib-stubs, not CPython's. What this catches: a class, function, method or
keyword argument that the board's port modules (machine, micropython, select, gc, time,
rp2, esp32, ...) do not declare; a module the board lacks (`import termios`, `import
numpy`); wrong argument types and counts; viper pointer misuse (`ptr8("x")`). What it does
not: the standard-library stubs are a trimmed copy of CPython's typeshed that still
declares some names MicroPython lacks (e.g. os.makedirs), so a call to such a name passes.

Where the firmware does something right that mypy cannot see (the CPython fallback of
`try: from micropython import const`, a guarded `import termios`), the line says so with a
`# type: ignore[code]` of its own, so every error this prints is one to fix.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / ".stubs"
CONFIG = ROOT / "mypy-firmware.ini"
FIRMWARE = ROOT / "firmware"
BOARDS = ("rp2", "esp32")  # folder names under .stubs/, and the boards' sys.platform


def default_paths():
    """The runtime package, the top-level board scripts (main.py, when present) and the
    scripts the host tools run on boards (firmware/tools/*.py: ffkit.board.mpy.script)."""
    return ([FIRMWARE / "ffrt"] + sorted(FIRMWARE.glob("*.py"))
            + sorted((FIRMWARE / "tools").glob("*.py")))


def stubs_dir(board):
    """The board's stub folder; raises FileNotFoundError naming the fix when it is missing."""
    d = STUBS / board
    if not (d / "machine.pyi").is_file() or not (d / "stdlib" / "VERSIONS").is_file():
        raise FileNotFoundError(
            "MicroPython stubs for %s not found in %s: run `make test` or `make typecheck`, "
            "which install them (pinned in the Makefile)" % (board, d))
    return d


def run_mypy(board, paths):
    """Run mypy for one board over paths; returns mypy's messages as dicts (JSON output)."""
    d = stubs_dir(board)
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
           "--custom-typeshed-dir", str(d), "--platform", board,
           "--cache-dir", str(STUBS / "mypy-cache" / board), "-O", "json"]
    cmd += [_rel(p) for p in paths]
    env = dict(os.environ, MYPYPATH=str(d))
    env.pop("MYPY_CACHE_DIR", None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    messages, other = [], []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            messages.append(json.loads(line))
        elif line.strip():
            other.append(line)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not messages):
        raise RuntimeError("mypy failed (exit %d) for %s:\n%s\n%s" % (
            proc.returncode, board, "\n".join(other), proc.stderr))
    return messages


def _rel(p):
    p = Path(p).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def _path(msg):
    path = Path(msg["file"])
    return path if path.is_absolute() else ROOT / path


def check(board, paths=None):
    """mypy's errors for one board over paths (default: the firmware), as dicts."""
    messages = run_mypy(board, default_paths() if paths is None else paths)
    return [m for m in messages if m["severity"] == "error"]


def format_message(msg):
    """One message as mypy prints it: `file:line: error: text  [code]`, then its hint."""
    out = "%s:%d: %s: %s  [%s]" % (msg["file"], msg["line"], msg["severity"],
                                    msg["message"], msg["code"])
    for note in (msg.get("hint") or "").splitlines():
        out += "\n%s:%d: note: %s" % (msg["file"], msg["line"], note)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", choices=BOARDS, action="append",
                    help="board to check against (repeatable; default: all)")
    ap.add_argument("paths", nargs="*", type=Path,
                    help="default: firmware/ffrt firmware/*.py firmware/tools/*.py")
    args = ap.parse_args(argv)
    failed = False
    for board in args.board or BOARDS:
        try:
            real = check(board, args.paths or None)
        except (FileNotFoundError, RuntimeError) as e:
            print(e, file=sys.stderr)
            return 2
        for msg in real:
            print(format_message(msg))
        print("%s: %d error(s)" % (board, len(real)))
        failed = failed or bool(real)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
