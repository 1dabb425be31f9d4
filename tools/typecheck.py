#!/usr/bin/env python3
"""Type-check the board runtime (firmware/) with mypy against MicroPython's rp2 and esp32 stubs.

    python tools/typecheck.py [--board rp2|esp32] [--show-known] [PATH ...]

Checks `firmware/ffrt` and every `firmware/*.py` (main.py) by default, once per board,
prints mypy's errors and exits 1 if there is any that is not a known false positive (below),
2 if the stubs or mypy are missing. `make test` installs the stubs (exact pins in the
Makefile) into .stubs/rp2 and .stubs/esp32 and runs this through tests/test_typecheck.py;
`make typecheck` runs it alone.

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

Known false positives: mypy reports errors in today's firmware that are artefacts of code
which runs correctly on every port. The rules in KNOWN set them aside, each saying why it
is harmless and how the firmware could make it unnecessary (the rule then simply stops
matching; `--show-known` lists what each rule set aside). Two rules are general and decided
per board: an `except ImportError:` fallback that the board never runs (the `try:` only
imports, and the board's stubs have all of it), and an import of something the board lacks
inside a `try:` that handles ImportError. The others each match one pattern of one module.
"""

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / ".stubs"
CONFIG = ROOT / "mypy-firmware.ini"
FIRMWARE = ROOT / "firmware"
BOARDS = ("rp2", "esp32")  # folder names under .stubs/, and the boards' sys.platform


def default_paths():
    """The runtime package and the top-level board scripts (main.py, when present)."""
    return [FIRMWARE / "ffrt"] + sorted(FIRMWARE.glob("*.py"))


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


def _config_fields():
    sys.path.insert(0, str(FIRMWARE))
    try:
        from ffrt.model import FIELDS
    finally:
        sys.path.remove(str(FIRMWARE))
    return {name for name, _ in FIELDS}


# ---- import guards: `try: import x / except ImportError: <fallback>` ------------------------

_CATCH_IMPORT = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
_guards_cache = {}


def _catches_import_error(handler):
    t = handler.type
    names = t.elts if isinstance(t, ast.Tuple) else [t]
    return t is None or any(isinstance(n, ast.Name) and n.id in _CATCH_IMPORT for n in names)


def _guards(path):
    """[(import statements of the try body, whether the body is imports only,
    line ranges of its ImportError handlers)] for each such try in the file."""
    if path not in _guards_cache:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                handlers = [(h.lineno, h.end_lineno) for h in node.handlers
                            if _catches_import_error(h)]
                imports = [(n.lineno, n.end_lineno) for n in node.body
                           if isinstance(n, (ast.Import, ast.ImportFrom))]
                if handlers and imports:
                    found.append((imports, len(imports) == len(node.body), handlers))
        _guards_cache[path] = found
    return _guards_cache[path]


def _within(line, ranges):
    return any(a <= line <= b for a, b in ranges)


def _is_failed_import(msg):
    return (msg["code"] == "import-not-found"
            or (msg["code"] == "attr-defined" and msg["message"].startswith('Module "')))


def _is_guarded_import(msg, messages):
    return _is_failed_import(msg) and any(
        _within(msg["line"], imports) for imports, _, _ in _guards(_path(msg)))


def _is_board_skipped_fallback(msg, messages):
    path = _path(msg)
    failed = [m["line"] for m in messages
              if _is_failed_import(m) and _path(m) == path]
    return any(only_imports and _within(msg["line"], handlers)
               and not any(_within(line, imports) for line in failed)
               for imports, only_imports, handlers in _guards(path))


# ---- single patterns in today's firmware ----------------------------------------------------

def _is_config_field(msg, messages):
    m = re.fullmatch(r'"Config" has no attribute "(\w+)"', msg["message"])
    return (msg["code"] == "attr-defined" and msg["file"].endswith("ffrt/model.py")
            and m is not None and m.group(1) in _config_fields())


def _pattern(suffix, codes, regex):
    def test(msg, messages):
        return (msg["file"].endswith(suffix) and msg["code"] in codes
                and re.search(regex, msg["message"]) is not None)
    return test


# (name, test, why it is not a bug, how the firmware could make the rule unnecessary)
KNOWN = (
    ("board-skips-fallback", _is_board_skipped_fallback,
     "the error is in the `except ImportError:` fallback of a `try:` that only imports, and "
     "every import there resolves in this board's stubs, so the board never runs the "
     "fallback: it is CPython's (e.g. `def const(x): return x` after `from micropython "
     "import const`, `micropython = None`, `from time import monotonic`)",
     "a `# type: ignore[code]` comment on each such line of the fallback"),
    ("guarded-import", _is_guarded_import,
     "a module or name this board lacks is imported inside a `try:` whose handler catches "
     "ImportError, so its absence is expected and handled (e.g. termios, unix port only)",
     "`# type: ignore[import-not-found]` on that import"),
    ("config-fields", _is_config_field,
     "Config.__init__ sets one attribute per FIELDS entry with setattr(), which mypy cannot "
     "see; only names that are in ffrt.model.FIELDS are set aside, a misspelt one is still "
     "an error",
     "declare them for checkers in the class body: `TYPE_CHECKING = False` at module level, "
     "then `if TYPE_CHECKING:` with one `name = 0  # type: int` (or `# type: tuple[int, ...]`)"
     " line per field; MicroPython never runs that block"),
    ("config-defaults",
     _pattern("ffrt/model.py", ("arg-type", "index", "union-attr"),
              r"int \| tuple\[int(, int)*\]"),
     "FIELDS mixes int and tuple defaults, so mypy types a default as `int | tuple`; the "
     "code calls len()/indexes/iterates it only for the per-layer (tuple) fields",
     "`# type: ignore[arg-type,index,union-attr]` on those lines of Config.__init__"),
    ("crc-table",
     _pattern("ffrt/crc32.py", ("index",),
              r'^Value of type "array\[int\] \| None" is not indexable$'),
     "crc32_py calls _table() to fill the module globals _T_HI/_T_LO when they are None; "
     "mypy does not track that side effect and keeps them Optional",
     "let _table() return (t_hi, t_lo) and write `t_hi, t_lo = _T_HI, _T_LO; if t_hi is "
     "None or t_lo is None: t_hi, t_lo = _table()`"),
    ("profiles-table",
     _pattern("ffrt/boards.py", ("index", "call-overload"), r'"object"'),
     "PROFILES mixes str, int, dict and None values, so mypy types each profile as "
     "dict[str, object] and then refuses p[\"platform\"] and dict(p)",
     "`PROFILES = {  # type: dict` (a type comment: the values become Any)"),
    ("ticks-init",
     _pattern("ffrt/server.py", ("assignment",),
              r'^Incompatible types in assignment \(expression has type "_TicksMs", '
              r'variable has type "int"\)$'),
     "Server._touched starts as 0 and later holds ticks_ms(); the stubs make ticks an "
     "opaque type (for ticks_diff/ticks_add only), and ticks_diff reads _touched only while "
     "a session is open, which set it",
     "initialise the attribute with ticks_ms() instead of 0"),
    ("stage-file",
     _pattern("ffrt/storage.py", ("union-attr",), r'^Item "None" of "Any \| None" has no '
              r'attribute "write"$'),
     "Storage._stage is None until stage_open(); its callers (the import session in "
     "server/transfer) write only while an import is open, which called stage_open()",
     "`f = self._stage` then `if f is None: raise OSError(...)` before f.write(data), which "
     "also names the error if a caller ever breaks the rule"),
)


def classify(messages):
    """Split mypy's errors into (real, known); known is a list of (rule name, message)."""
    real, known = [], []
    for msg in messages:
        if msg["severity"] != "error":
            continue
        for name, test, _, _ in KNOWN:
            if test(msg, messages):
                known.append((name, msg))
                break
        else:
            real.append(msg)
    return real, known


def check(board, paths=None):
    """(real errors, known false positives) of one board over paths (default: firmware)."""
    _guards_cache.clear()  # the files may have changed since the last run
    return classify(run_mypy(board, default_paths() if paths is None else paths))


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
    ap.add_argument("--show-known", action="store_true",
                    help="also list the known false positives that were set aside")
    ap.add_argument("paths", nargs="*", type=Path, help="default: firmware/ffrt firmware/*.py")
    args = ap.parse_args(argv)
    failed = False
    for board in args.board or BOARDS:
        try:
            real, known = check(board, args.paths or None)
        except (FileNotFoundError, RuntimeError) as e:
            print(e, file=sys.stderr)
            return 2
        for msg in real:
            print(format_message(msg))
        if args.show_known:
            for name, msg in known:
                print("[known: %s] %s" % (name, format_message(msg)))
        print("%s: %d error(s), %d known false positive(s) set aside" % (
            board, len(real), len(known)))
        failed = failed or bool(real)
    if args.show_known:
        for name, _, why, fix in KNOWN:
            print("\n%s: %s.\n  fix in firmware: %s." % (name, why, fix))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
