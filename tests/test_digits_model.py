"""The shipped digits model: reproducible from its config, and as accurate as the README says.

`ffkit train --dataset digits` must rebuild models/digits.ffw byte for byte (bootstrap is
deterministic integer arithmetic), and `ffkit eval` must find at least 0.97 held-out
accuracy predicting by goodness, with the untrained-net head control reported beside it.
"""

import json

from conftest import REPO_ROOT
from ffkit import cli


def test_train_rebuilds_the_shipped_model_and_eval_reaches_097(tmp_path, capsys):
    out = tmp_path / "digits.ffw"
    assert cli.main(["train", "--dataset", "digits", "--out", str(out), "--no-progress",
                     "--json"]) == 0
    capsys.readouterr()
    assert out.read_bytes() == (REPO_ROOT / "models" / "digits.ffw").read_bytes()

    assert cli.main(["eval", "--dataset", "digits", "--weights", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["predict"] == "goodness"
    assert rep["accuracy"] >= 0.97, rep
    assert rep["n_test"] == 450
    # the control is a head on features that never learned; it must be measured, and the
    # FF-trained net must not be worse than it
    assert 0.5 < rep["accuracy_head_untrained_control"] <= rep["accuracy_head"]
