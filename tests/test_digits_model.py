"""The shipped digits model: reproducible from its config, and as accurate as the README says.

`ffkit train --dataset digits` must rebuild models/digits.ffw byte for byte (bootstrap is
deterministic integer arithmetic), and `ffkit eval` must find at least 0.97 held-out
accuracy predicting by goodness, at least 3 points over the untrained-net head control
reported beside it, and within 2 points of a float MLP. The wide-input model (MNIST)
behind --runslow.
"""

import json

import pytest

from conftest import REPO_ROOT
from ffkit import cli


def test_train_rebuilds_the_shipped_model_and_eval_reaches_097(tmp_path, capsys):
    out = tmp_path / "digits.ffw"
    assert cli.main(["train", "--dataset", "digits", "--out", str(out), "--no-progress",
                     "--json"]) == 0
    capsys.readouterr()
    assert out.read_bytes() == (REPO_ROOT / "models" / "digits.ffw").read_bytes()

    assert cli.main(["eval", "--dataset", "digits", "--weights", str(out), "--json",
                     "--baselines"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["predict"] == "goodness"
    assert rep["accuracy"] >= 0.97, rep
    assert rep["n_test"] == 450
    # the control is a head on features that never learned; it must be measured, and FF
    # learning must add at least 3 points over it, by goodness (FF's own prediction)
    assert 0.5 < rep["accuracy_head_untrained_control"] <= rep["accuracy_head"]
    assert rep["margin"] == rep["accuracy"] - rep["accuracy_head_untrained_control"]
    assert rep["margin"] >= 0.03, rep
    # and it comes within 2 points of a float MLP trained on the same split (by the head;
    # the README states both)
    b = rep["baselines"]
    assert 0.9 < b["logistic_regression"] < 1 and 0.9 < b["mlp_128"] < 1
    assert rep["gap_to_mlp"] == max(rep["accuracy"], rep["accuracy_head"]) - b["mlp_128"]
    assert rep["gap_to_mlp"] >= -0.02, rep


@pytest.mark.slow
def test_the_wide_input_model_beats_its_control_and_nears_an_mlp(tmp_path, capsys):
    """models/mnist.toml on MNIST (944-256-128, 100,000 learn steps: about 5 minutes):
    at least 3 points over its untrained-net control, within 2 of a float MLP."""
    out = tmp_path / "mnist.ffw"
    assert cli.main(["train", "--dataset", "mnist", "--out", str(out), "--no-progress",
                     "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--dataset", "mnist", "--weights", str(out), "--json",
                     "--baselines", "--no-progress"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_test"] == 10000
    assert round(rep["accuracy"], 4) == 0.9422  # the README's figures
    assert round(rep["accuracy_head_untrained_control"], 4) == 0.8641
    assert max(rep["margin"], rep["margin_head"]) >= 0.03
    assert rep["gap_to_mlp"] >= -0.02
