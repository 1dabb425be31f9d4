"""The ffkit CLI: train and eval on a small model, exit codes, errors without tracebacks."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ffkit import cli
from ffrt import ffw_ram

SMALL_TOML = """
[model]
n_features = 64
n_classes = 10
in_max = 16
in_scale = 15
layers = [32, 32]
act_shift = [8, 7]
theta = [100000, 100000]
gshift = [11, 11]
lr_shift = 22
neg_mode = "random"

[train]
epochs = 2
shuffle_seed = 0
lr_shift_schedule = [[0, 23], [1, 24]]
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small model file, 600 digits as an .npz, and one trained .ffw (trained once)."""
    d = tmp_path_factory.mktemp("cli")
    toml = d / "small.toml"
    toml.write_text(SMALL_TOML)
    X, y = load_digits(return_X_y=True)
    npz = d / "digits600.npz"
    np.savez(npz, X=X[:600].astype(np.int16), y=y[:600].astype(np.int64))
    out = d / "small.ffw"
    code, stdout, stderr = run_main("train", "--data", str(npz), "--config", str(toml),
                                    "--out", str(out), "--json")
    assert code == 0, stderr
    return {"dir": d, "toml": toml, "npz": npz, "ffw": out, "train": json.loads(stdout)}


def run_main(*argv):
    """cli.main in this process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as e:  # argparse's usage errors and --help
            code = e.code
    return code, out.getvalue(), err.getvalue()


def _run_python(*args):
    """A separate Python process with the checkout's packages on its path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(root, "host"), os.path.join(root, "firmware"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=120)


def run_ffkit(*argv):
    """The CLI as a separate process, as a user runs it."""
    return _run_python("-m", "ffkit.cli", *argv)


def test_train_writes_the_ffw_and_reports_in_json(small):
    rep = small["train"]
    for key in ("dataset", "split", "n_train", "epochs", "train_accuracy", "seconds",
                "file_bytes", "weights_crc32", "out"):
        assert key in rep
    assert rep["dataset"] == "digits600" and rep["split"].startswith("stratified 75/25")
    assert rep["n_train"] == 450 and rep["epochs"] == 2 and rep["steps"] == 900
    assert rep["lr_shift_per_epoch"] == [23, 24]
    data = small["ffw"].read_bytes()
    assert len(data) == rep["file_bytes"]
    net = ffw_ram.load(data)
    assert net.cfg.layers == (32, 32) and net.step == 900
    assert net.cfg.lr_shift == 24  # the schedule's last value is saved
    assert "%08x" % ffw_ram.weights_crc32(net) == rep["weights_crc32"]
    assert not [p for p in small["dir"].iterdir() if ".tmp" in p.name]  # atomic write


def test_training_is_reproducible(small):
    out = small["dir"] / "again.ffw"
    code, stdout, _ = run_main("train", "--data", str(small["npz"]), "--config",
                               str(small["toml"]), "--out", str(out), "--json")
    assert code == 0
    assert json.loads(stdout)["weights_crc32"] == small["train"]["weights_crc32"]
    assert out.read_bytes() == small["ffw"].read_bytes()


def test_eval_json_has_the_keys_and_the_model_learned(small):
    code, stdout, stderr = run_main("eval", "--data", str(small["npz"]), "--weights",
                                    str(small["ffw"]), "--json", "--control-epochs", "1")
    assert code == 0, stderr
    rep = json.loads(stdout)
    for key in ("accuracy", "accuracy_head", "accuracy_head_untrained_control", "dataset",
                "split", "n_test", "predict"):
        assert key in rep
    assert rep["predict"] == "goodness" and rep["n_test"] == 150
    assert rep["accuracy"] > 0.5  # measured 0.87 (random negatives, 2 epochs of 450)
    assert 0.0 <= rep["accuracy_head_untrained_control"] <= 1.0


def test_eval_text_without_control(small):
    code, stdout, _ = run_main("eval", "--data", str(small["npz"]), "--weights",
                               str(small["ffw"]), "--no-control")
    assert code == 0
    assert "accuracy (by goodness, FF)" in stdout and "skipped (--no-control)" in stdout


def test_usage_errors_exit_2():
    code, _, stderr = run_main("train", "--dataset", "digits")  # no --out
    assert code == 2 and "--out" in stderr
    code, _, stderr = run_main("frobnicate")
    assert code == 2 and "invalid choice" in stderr
    code, _, stderr = run_main()
    assert code == 2
    # no --config: ffkit.learning.autoconfig chooses the model, so --data alone is no usage error;
    # a missing file is the user's error (exit 1), named
    code, _, stderr = run_main("train", "--data", "x.npz", "--out", "w.ffw")
    assert code == 1 and stderr.startswith("ffkit: x.npz: No such file")


def test_corrupt_ffw_exits_1_with_a_message_and_no_traceback(small, tmp_path):
    data = bytearray(small["ffw"].read_bytes())
    data[200] ^= 0x01
    bad = tmp_path / "bad.ffw"
    bad.write_bytes(bytes(data))
    r = run_ffkit("eval", "--data", str(small["npz"]), "--weights", str(bad), "--json")
    assert r.returncode == 1
    assert r.stderr.startswith("ffkit: ") and "CRC mismatch" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["eval", "--weights", "{dir}/missing.ffw"], "No such file or directory"),
    (["train", "--data", "{npz}", "--config", "{dir}/missing.toml", "--out", "{dir}/w.ffw"],
     "missing.toml"),
    (["train", "--dataset", "digits", "--config", "{bad_toml}", "--out", "{dir}/w.ffw"],
     "unknown [model] field(s): lyers"),
    (["train", "--data", "{narrow}", "--config", "{toml}", "--out", "{dir}/w.ffw"],
     "has 5 features, the model takes 64"),
])
def test_user_errors_exit_1_with_ffkit_message(small, tmp_path, argv, message):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[model]\nlyers = [8]\n")
    narrow = tmp_path / "narrow.npz"
    np.savez(narrow, X=np.zeros((40, 5), int), y=np.arange(40) % 2)
    names = {"dir": tmp_path, "npz": small["npz"], "toml": small["toml"], "bad_toml": bad_toml,
             "narrow": narrow}
    code, stdout, stderr = run_main(*[a.format(**names) for a in argv])
    assert code == 1
    assert stderr.startswith("ffkit: ") and message in stderr, stderr
    assert "Traceback" not in stderr


def test_json_output_is_one_valid_object(small):
    code, stdout, _ = run_main("eval", "--data", str(small["npz"]), "--weights",
                               str(small["ffw"]), "--json", "--no-control")
    assert code == 0
    assert stdout.count("\n") == 1
    rep = json.loads(stdout)
    assert rep["accuracy_head_untrained_control"] is None


def test_verbs_are_a_table_and_other_modules_load_lazily():
    import importlib
    for v in cli.VERBS:   # one module per verb in ffkit.commands, one convention
        mod = importlib.import_module("ffkit.commands." + v.name.replace("import", "import_"))
        assert callable(mod.add_arguments) and callable(mod.run), v.name
    assert {"train", "eval", "demo", "parity", "bench"} <= {v.name for v in cli.VERBS}
    probe = ("import sys; from ffkit import cli; cli.build_parser(['train']); "
             "print(sorted(m for m in ('ffkit.parity', 'ffkit.bench', 'river') "
             "if m in sys.modules))")
    r = _run_python("-c", probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
