"""Golden session logs (tests/replay/, recorded on the virtual board by tools/golden.py).

- Every tests/replay/*.ffl replays identically on the host (ffkit.sessions.replay.run: numpy, and
  MicroPython's unix port), from starting weights found among models/*.ffw, and learns on
  the way (a golden log whose net never changes would check little).
- tests/replay/README.md and docs/streaming.md state each log's records and bytes as
  they are; the docs' changed-rounding example diverges where the docs say.
- tools/golden.py run again into another folder writes the same bytes: the recording is
  deterministic, so `make golden` after a change of behaviour shows that change, and only
  it, as a diff.
"""

import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from ffkit import config
from ffkit.sessions import golden
from ffkit.sessions import replay as host_replay
from ffrt import ffl

GOLDEN = REPO_ROOT / "tests" / "replay"
LOGS = sorted(GOLDEN.glob("*.ffl"))


def test_the_golden_logs_are_there():
    assert GOLDEN == golden.default_out()
    assert {p.name for p in LOGS} == {name for name, _, _ in golden.LOGS}


@pytest.mark.parametrize("runner", ["numpy", pytest.param("micropython",
                                                          marks=pytest.mark.device)])
@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_golden_log_replays_identically(request, log, runner):
    if runner == "micropython":
        request.getfixturevalue("micropython")  # fails, not skips, without the unix port
    head, recs = ffl.parse(log.read_bytes())
    r = host_replay.run(log, runner=runner)
    assert r["identical"], r.get("first_divergence")
    assert "first_divergence" not in r and r["notes"] == []
    assert r["records"] == len(recs) > 0
    assert 0 < r["inputs"] < r["records"]
    # the starting weights: a committed model file, found by the log's state CRC
    start = host_replay.find_start(head["state_crc"])
    assert start is not None and start.parent == config.models_dir()
    assert r["weights"] == str(start)
    assert r["step"] > head["step"], "the session learnt nothing"


def test_readmes_state_each_log_as_it_is():
    text = (GOLDEN / "README.md").read_text()
    top = (REPO_ROOT / "docs" / "streaming.md").read_text()
    for log in LOGS:
        _, recs = ffl.parse(log.read_bytes())
        row = re.search(r"^\| %s \| (\S+) \| (\d+) \| (\d+) \|" % re.escape(log.name), text,
                        re.M)
        assert row, log.name
        assert (REPO_ROOT / row.group(1)).is_file()
        assert int(row.group(2)) == len(recs)
        assert int(row.group(3)) == log.stat().st_size
        # the figures table of docs/streaming.md: "hapt.ffl 192 / 57,987"
        assert "%s %d / %s" % (log.name, len(recs), format(log.stat().st_size, ",")) in top


@pytest.mark.device
def test_recording_again_gives_the_same_bytes(micropython, tmp_path):
    p = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "golden.py"), "--out",
                        str(tmp_path), "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    again = sorted(f.name for f in tmp_path.iterdir())
    assert again == sorted(f.name for f in GOLDEN.iterdir() if f.name != "__pycache__")
    for name in again:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), (
            "%s differs from tests/replay/%s: behaviour changed; if on purpose, run "
            "make golden and review the diff" % (name, name))


def test_docs_divergence_example(monkeypatch, capsys):
    """The docs' changed-rounding example prints what the docs show (but the time)."""
    from ffkit.twins import kernels_np

    text = (REPO_ROOT / "docs" / "streaming.md").read_text()
    m = [m for m in re.finditer(r"```python\n((?:(?!```).)*)```\n\n```\n(.*?)```", text, re.S)
         if "xs32_successors" in m.group(1)]
    assert len(m) == 1, "docs/streaming.md lost its divergence example"
    m = m[0]
    monkeypatch.setattr(kernels_np, "xs32_successors", kernels_np.xs32_successors)  # undone
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(m.group(1), "docs/streaming.md", "exec"), {})

    def untimed(s):
        return re.sub(r"in [\d.]+ s", "in _ s", s).strip()
    assert untimed(capsys.readouterr().out) == untimed(m.group(2))
