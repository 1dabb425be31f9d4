"""Golden session logs: compact .ffl logs recorded on virtual boards, for tests/replay/.

    python tools/golden.py [--out tests/replay] [--json]          (make golden)

Each log is a real session of the firmware in the MicroPython unix port (ffkit.board.sim), as
``ffkit log`` / ``ffkit stream --log`` record it, from a committed model file, with fixed
inputs (nothing random, no seed that varies), so recording again writes the same bytes.
tests/test_golden.py replays every tests/replay/*.ffl and regenerates them into a
temporary folder; after a deliberate change of behaviour ``make golden`` rewrites them and
the diff is what a reviewer reads. ``ffkit bench`` replays a fresh `record_hapt` log for
``replay_speedup_vs_realtime``.

- hapt.ffl (`record_hapt`): ``ffkit stream``'s personalise protocol (ffkit.sessions.stream.run)
  with models/hapt.ffw and models/hapt.toml's [adapt], subjects HAPT_SUBJECTS, the first
  HAPT_LIMIT windows of each session (chosen so that both subjects learn some labelled
  windows and are tested on some): SET, CHECKPOINT, ADAPT, RESET reload, raw IMU samples
  in SAMPLES frames.
- digits.ffl (`record_digits`): models/digits.ffw imported to a board booted with it;
  LEARN, STREAM with and without labels, PREDICT, SET lr_shift, LEARN, CHECKPOINT, RESET
  reload, LEARN.

The folder's README.md is written with them: what each log holds, its records and bytes,
the command that made it.
"""

import argparse
import contextlib
import json
import sys
import types
from pathlib import Path

from ffkit import FFKitError

HAPT_SUBJECTS = (21, 25)
HAPT_LIMIT = 10          # windows per session: 128 + 64 * 9 = 704 samples
DIGITS_LEARN = 12        # LEARN requests in each of the three LEARN phases
DIGITS_STREAM = 16       # samples in each STREAM request (labelled, then unlabelled)
DIGITS_PREDICT = 6
DIGITS_LR_SHIFT = 25     # SET while logging: two steps larger than the file's 27
DIGEST_EVERY = 8         # digits.ffl: a DIGEST record every 8 logged requests


def default_out():
    """The repository's tests/replay/ folder (golden logs belong to a checkout's tests)."""
    from ffkit import shipped
    root = shipped.checkout_root()
    if root is None:
        raise FFKitError("golden logs go to a checkout's tests/replay/, and this ffkit is "
                         "an installed one: give the folder with --out")
    return root / "tests" / "replay"


@contextlib.contextmanager
def virtual_board(weights):
    """A connected ffkit.board.client.Board on a fresh virtual board booted from weights."""
    from ffkit.sessions import stream

    board, close = stream.open_board(types.SimpleNamespace(port=None, heap=None, timeout=5.0),
                                     weights)
    try:
        yield board
    finally:
        close()


def record_hapt(path):
    """The HAPT personalise protocol on a virtual board, logged to path; its summary."""
    from ffkit import config
    from ffkit.sessions import stream

    models = config.models_dir()
    weights = (models / "hapt.ffw").read_bytes()
    adapt = config.load(models / "hapt.toml").adapt
    with virtual_board(weights) as board:
        r = stream.run(board, weights, adapt, HAPT_SUBJECTS, limit=HAPT_LIMIT,
                       parallel=False, log_path=path)
    if not r["bit_identical"]:
        raise FFKitError("golden: the board and its host twin differ (%s)" % r["first_mismatch"])
    return {"start": "models/hapt.ffw", "samples": r["samples"], "windows": r["windows"],
            "records": r["log"]["records"], "bytes": r["log"]["bytes"]}


def record_digits(path):
    """The digits session on a virtual board, logged to path; its summary."""
    from ffkit import config
    from ffkit.sessions.logs import Recorder
    from ffkit.parity import digits_split

    weights = (config.models_dir() / "digits.ffw").read_bytes()
    n = 3 * DIGITS_LEARN + 2 * DIGITS_STREAM + DIGITS_PREDICT
    X, y, _, _ = digits_split(n, 1)   # one fixed shuffle of scikit-learn's digits
    xs = [[int(v) for v in row] for row in X]
    ys = [int(v) for v in y]
    batches = iter(range(0, 3 * DIGITS_LEARN, DIGITS_LEARN))

    def learn(board, rec):
        a = next(batches)
        for i in range(a, a + DIGITS_LEARN):
            board.learn(xs[i], ys[i])
        rec.drain()

    with virtual_board(weights) as board:
        board.import_weights(weights)   # a checkpoint of the starting weights to reload
        rec = Recorder(board, path, digest_every=DIGEST_EVERY)
        learn(board, rec)
        a = 3 * DIGITS_LEARN
        board.stream(list(zip(xs[a:a + DIGITS_STREAM], ys[a:a + DIGITS_STREAM])))
        a += DIGITS_STREAM
        board.stream([(x, None) for x in xs[a:a + DIGITS_STREAM]])
        a += DIGITS_STREAM
        for x in xs[a:a + DIGITS_PREDICT]:
            board.predict(x)
        board.set(lr_shift=DIGITS_LR_SHIFT)
        learn(board, rec)
        board.checkpoint()
        board.reset("reload")
        learn(board, rec)
        summary = rec.close()
    return {"start": "models/digits.ffw", "samples": n, "records": summary["records"],
            "bytes": summary["bytes"]}


LOGS = (
    ("hapt.ffl", record_hapt,
     "HAPT personalise protocol (ffkit.sessions.stream.run, as `ffkit stream` runs it): "
     "models/hapt.ffw imported, models/hapt.toml's [adapt] (SET lr_shift 27, CHECKPOINT, "
     "ADAPT), subjects %s, the first %d windows of each session; per subject a RESET reload, "
     "the last session frozen, the earlier one learnt, the last one again; raw IMU samples "
     "in SAMPLES frames; a DIGEST every 64 requests and at the end"
     % (" and ".join(map(str, HAPT_SUBJECTS)), HAPT_LIMIT)),
    ("digits.ffl", record_digits,
     "digits: a board booted with models/digits.ffw imports it; %d LEARN, a STREAM of %d "
     "labelled and one of %d unlabelled samples, %d PREDICT, SET lr_shift %d, %d LEARN, "
     "CHECKPOINT, RESET reload, %d LEARN; a DIGEST every %d requests and at the end"
     % (DIGITS_LEARN, DIGITS_STREAM, DIGITS_STREAM, DIGITS_PREDICT, DIGITS_LR_SHIFT,
        DIGITS_LEARN, DIGITS_LEARN, DIGEST_EVERY)),
)

README = """\
# Golden session logs

Session logs (`.ffl`, firmware/ffrt/ffl.py) recorded on the virtual board (the firmware in
the MicroPython unix port) by `tools/golden.py` (ffkit.sessions.golden). `tests/test_golden.py`
replays each one (`ffkit.sessions.replay.run`, numpy and micropython runners) and expects every
output and digest to be identical, and records them again into a temporary folder to check
that the recording is the same byte for byte.

This file is written by tools/golden.py with the logs. Regenerate them on purpose, after a
deliberate change of behaviour, and review the diff:

    make golden            # .venv/bin/python tools/golden.py (--out DIR: elsewhere)

Replay one by hand (the starting weights are found by their CRC among models/*.ffw):

    ffkit replay tests/replay/hapt.ffl

| log | starting weights | records | bytes | what it holds |
|---|---|---|---|---|
%s
"""


def write(out):
    """Record every log of LOGS into out and write its README.md; {log: summary}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result, rows = {}, []
    for name, record, what in LOGS:
        s = result[name] = record(out / name)
        rows.append("| %s | %s | %d | %d | %s |"
                    % (name, s["start"], s["records"], s["bytes"], what))
    (out / "README.md").write_text(README % "\n".join(rows))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/golden.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the logs and README.md (default: the repo's tests/replay)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        out = args.out if args.out is not None else default_out()
        result = write(out)
    except FFKitError as e:
        print("golden: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for name, s in result.items():
            print("%s: %d records, %d bytes, from %s"
                  % (out / name, s["records"], s["bytes"], s["start"]))
    return 0
