"""Shared pytest setup: the --runslow switch and fixtures for the repo and MicroPython.

Markers (declared in pyproject.toml): ``device`` (real MicroPython unix port), ``parity``,
``slow`` (skipped unless ``--runslow``; ``make test PYTEST_ARGS=--runslow``).
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False,
        help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def micropython() -> str:
    """Path of the MicroPython unix-port binary (see ffkit.board.mpy.find_micropython).

    Fails rather than skips when it is missing: the device and parity tiers are part of
    the suite, and a silent skip would hide a broken environment.
    """
    from ffkit.board.mpy import find_micropython

    try:
        return find_micropython()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def qemu():
    """ffkit.board.qemu, when QEMU, the ARM cross-compiler and the MicroPython source are here.

    Elsewhere the emulated-board tests skip with one line naming what to install; under
    CI=true they fail instead (CI installs the toolchain: `make test`)."""
    from ffkit.board import qemu as q

    if not q.available():
        msg = ("emulated boards: apt-get install %s (and the MicroPython source in "
               "../shared/micropython or $MICROPYTHON_SRC)" % " ".join(q.PACKAGES))
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return q
