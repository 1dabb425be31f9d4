"""examples/: each script runs, on the built-in virtual board, to the end it promises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ffrt import ffw_ram

from ffkit.twins import kernels_np

pytestmark = pytest.mark.device


def _run(repo_root, tmp_path, script, *args):
    env = dict(os.environ)
    for name in ("MICROPYTHON", "MPY_CROSS", "MPREMOTE"):   # `make test` passes relative ones
        if env.get(name):
            env[name] = os.path.abspath(env[name])
    r = subprocess.run([sys.executable, str(repo_root / "examples" / script), *args],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_pico_quickstart_exports_what_the_board_learnt(repo_root, tmp_path):
    out = _run(repo_root, tmp_path, "pico_quickstart.py", "--limit", "10")
    for verb in ("flash", "stream", "export", "info"):
        assert "$ ffkit %s " % verb in out
    assert "board vs host: BIT-IDENTICAL" in out
    shipped = ffw_ram.load((repo_root / "models" / "hapt.ffw").read_bytes(), kernels_np)
    learnt = ffw_ram.load((tmp_path / "pico.ffw").read_bytes(), kernels_np)
    # the export holds the steps learnt while streaming, not the flashed model's
    assert learnt.step > shipped.step
    assert "step         %d" % learnt.step in out


def test_digits_on_a_board_matches_the_host(repo_root, tmp_path):
    out = _run(repo_root, tmp_path, "digits_on_a_board.py", "--learn", "40", "--test", "30")
    assert "after learning 40 digits on the board" in out
    assert "board and host weights after learning: BIT-IDENTICAL" in out


def test_hapt_on_a_virtual_board_streams_and_replays(repo_root, tmp_path):
    out = _run(repo_root, tmp_path, "hapt_virtual_board.py", "--subject", "25", "--limit", "12")
    assert "subjects 25" in out
    assert "board vs host: BIT-IDENTICAL" in out
    assert "IDENTICAL: every output and digest equals the board's" in out


def test_the_examples_index_names_every_script(repo_root):
    index = (repo_root / "examples" / "README.md").read_text()
    scripts = sorted(p.name for p in (repo_root / "examples").glob("*.py"))
    assert scripts and all("(%s)" % s in index for s in scripts), scripts
    tested = Path(__file__).read_text()
    assert all('"%s"' % s in tested for s in scripts), "a script no test runs"
