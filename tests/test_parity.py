"""Parity tier: the same seeded learning run gives the same bits in every runner.

CPython reference, numpy and C kernels, MicroPython unix port with pure, viper and native
(C .mpy, built here for x64) kernels (ffkit.parity) over 500 steps; the emulated microcontrollers (QEMU Cortex-M3 with viper
and pure kernels, Cortex-M0 pure: 32-bit words, 31-bit small ints) against the CPython
reference over fewer steps, since their pure runners take about 0.13 s per learn step
(skipped with one line where QEMU is missing, except under CI=true). Negative controls
check that a perturbed runner is caught and named.
"""

import argparse
import json
import time
import types

import pytest

from ffrt import kernels_ref
from ffrt.model import Config

from ffkit import parity

pytestmark = [pytest.mark.parity, pytest.mark.device]


def _args(**kw):
    p = argparse.ArgumentParser()
    parity.add_arguments(p)
    argv = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    return p.parse_args(argv)


def test_all_runners_identical_after_500_steps(micropython):
    t0 = time.monotonic()
    rep = parity.run_parity(steps=500, runners=parity.default_runners(qemu=False))
    elapsed = time.monotonic() - t0
    print("parity: 500 steps in 6 runners took %.1f s (%s)" % (
        elapsed, ", ".join("%s %.2f s" % (n, r["seconds"]) for n, r in rep["per_runner"].items())))
    assert rep["runners"] == ["cpython-reference", "cpython-numpy", "cpython-c",
                              "micropython-pure", "micropython-viper", "micropython-native"]
    assert rep["messages"] == []
    assert rep["identical"] is True
    assert rep["predictions_identical"] is True
    assert rep["neg_mode"] == "hardest"
    crcs = {r["weights_crc32"] for r in rep["per_runner"].values()}
    assert crcs == {rep["weights_crc32"]}
    for r in rep["per_runner"].values():
        assert r["step"] == 500
        assert len(r["predict_one"]) == len(r["predict_head"]) == 100
    # The run must exercise the update kernels, not compare silent layers.
    assert all(n >= 450 for n in rep["active_steps"]), rep["active_steps"]


QEMU_RUNNERS = ["qemu-cortex-m3-viper", "qemu-cortex-m3-native", "qemu-cortex-m3-pure",
                "qemu-cortex-m4-native", "qemu-cortex-m0-pure"]


def test_the_emulated_microcontrollers_are_runners_where_qemu_is(monkeypatch):
    from ffkit.board import qemu

    names = [r.name for r in parity.default_runners()]
    assert [r.name for r in parity.default_runners(qemu=False)] == names[:6]
    assert names[6:] == (QEMU_RUNNERS if qemu.available() else [])
    monkeypatch.setattr(qemu, "available", lambda: False)
    assert len(parity.default_runners()) == 6 and parity.qemu_runners() == []


def test_the_emulated_microcontrollers_are_identical_to_cpython(qemu):
    """Thumb-2 viper code with 32-bit words, and the pure kernels with 31-bit small ints
    on Cortex-M3 and Cortex-M0 (ffrt frozen into the image), the native kernels flashed
    on the Cortex-M3 and on the Cortex-M4 (its DSP dot product), against the reference."""
    t0 = time.monotonic()
    runners = [parity.CPythonRunner("cpython-reference")] + parity.qemu_runners()
    rep = parity.run_parity(steps=160, n_test=40, runners=runners, jobs=2)
    print("parity on the emulated boards: 160 steps in %.1f s (%s)" % (
        time.monotonic() - t0,
        ", ".join("%s %.1f s" % (n, r["seconds"]) for n, r in rep["per_runner"].items())))
    assert rep["runners"] == ["cpython-reference"] + QEMU_RUNNERS
    assert rep["messages"] == [] and rep["identical"] is True, rep["messages"]
    assert rep["predictions_identical"] is True
    for r in rep["per_runner"].values():
        assert r["step"] == 160 and len(r["digests"]) == 5
    assert all(n >= 140 for n in rep["active_steps"]), rep["active_steps"]


def _shifted_update_module():
    """kernels_ref with a +1 on a layer-1 weight and a flipped PRNG bit in the 20th call for
    that layer."""
    calls = {"n": 0}
    mod = types.ModuleType("kernels_perturbed")
    mod.__dict__.update({k: v for k, v in vars(kernels_ref).items() if not k.startswith("__")})

    def update(w, x, h, rng, p):
        kernels_ref.update(w, x, h, rng, p)
        if p[0] == 32:  # n_in: layer 1 of the 74-32-32 parity model
            calls["n"] += 1
            if calls["n"] == 20:
                # +1 on a weight, and a bit of a row's rounding PRNG flipped: the weight
                # alone can be clipped back to its twin at a rail by later updates, the
                # PRNG's stream stays different for good
                w[7] = w[7] + 1 if w[7] < 255 else w[7] - 1
                rng[1] ^= 1

    mod.update = update
    return mod


def test_patched_kernel_is_named_with_its_layer():
    runners = [parity.CPythonRunner("cpython-reference"),
               parity.CPythonRunner("patched", _shifted_update_module())]
    # the 20th layer-1 update is the negative pass of learn step 10, the last one: only
    # layer 1 (and the head, which learns after it in that step) can differ yet
    rep = parity.run_parity(steps=10, n_test=20, runners=runners, digest_every=5)
    assert rep["identical"] is False
    assert rep["baseline"] == "cpython-reference"
    (d,) = rep["differences"]
    assert d["runner"] == "patched"
    assert d["parts"][0] == "layer 1 weights"
    assert "layer 0 weights" not in d["parts"]
    assert d["first_digest_step"] == 10 and d["last_agreeing_step"] == 5
    assert "patched differs from cpython-reference" in rep["messages"][0]
    assert "layer 1 weights" in rep["messages"][0]


def test_perturbation_spreads_and_is_dated():
    # later steps pick their hardest negatives from both layers' goodness, so the layer-1
    # change reaches layer 0 too; the digests still date it to step 10
    runners = [parity.CPythonRunner("cpython-reference"),
               parity.CPythonRunner("patched", _shifted_update_module())]
    rep = parity.run_parity(steps=40, n_test=20, runners=runners, digest_every=10)
    (d,) = rep["differences"]
    assert d["first_digest_step"] == 10 and d["last_agreeing_step"] == 0
    assert "layer 1 weights" in d["parts"]


def test_flipped_weight_byte_is_caught_by_majority():
    def flip(net):
        net.weights[0][5] ^= 1

    from ffkit.twins import kernels_np

    runners = [parity.CPythonRunner("cpython-reference"),
               parity.CPythonRunner("flipped", kernels_ref, hook=flip),
               parity.CPythonRunner("cpython-numpy", kernels_np)]
    rep = parity.run_parity(steps=30, n_test=20, runners=runners)
    assert rep["identical"] is False
    (d,) = rep["differences"]
    assert d["runner"] == "flipped"
    assert d["parts"] == ["layer 0 weights"]
    assert rep["per_runner"]["flipped"]["weights_crc32"] != rep["weights_crc32"]


def test_cli_exit_codes_and_json(monkeypatch, capsys):
    good = [parity.CPythonRunner("a"), parity.CPythonRunner("b")]
    monkeypatch.setattr(parity, "default_runners", lambda: good)
    assert parity.run_cli(_args(steps=20, n_test=10, json=True)) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("runners", "steps", "identical", "weights_crc32", "predictions_identical",
                "per_runner"):
        assert key in out
    assert out["identical"] is True and out["steps"] == 20
    assert out["weights_crc32"].startswith("0x") and len(out["weights_crc32"]) == 10

    bad = [parity.CPythonRunner("a"), parity.CPythonRunner("b", _shifted_update_module())]
    monkeypatch.setattr(parity, "default_runners", lambda: bad)
    assert parity.run_cli(_args(steps=20, n_test=10)) == 1
    cap = capsys.readouterr()
    assert "NOT identical" in cap.out
    assert "b differs from a" in cap.err and "layer 1 weights" in cap.err


def test_default_config_is_the_digits_model_narrowed():
    from ffkit import config

    cfg = parity.default_config()
    spec = config.load(config.models_dir() / "digits.toml")
    digits = spec.model
    assert cfg.layers == (32,) * len(digits.layers)
    assert cfg.neg_mode == 1  # hardest
    # learns at the bootstrap schedule's first step, not the slow on-device rate
    assert cfg.lr_shift == spec.lr_shift_schedule[0][1] < digits.lr_shift
    own = ("layers", "lr_shift")
    assert {k: v for k, v in cfg.as_dict().items() if k not in own} == \
        {k: v for k, v in digits.as_dict().items() if k not in own}


def test_config_file_is_used_and_a_bad_one_is_usage_error(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run_parity(cfg, **kw):
        seen["cfg"] = cfg
        raise parity.ParityError("stop here")

    monkeypatch.setattr(parity, "run_parity", fake_run_parity)
    good = tmp_path / "m.toml"
    good.write_text('[model]\nlayers = [16, 16]\nneg_mode = "random"\nlr = 2\n'
                    '[train]\nepochs = 3\n')
    assert parity.run_cli(_args(config=good)) == 1
    assert seen["cfg"].layers == (16, 16) and seen["cfg"].neg_mode == 0
    assert "stop here" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlayers = [16]\nwidth = 3\n")
    assert parity.run_cli(_args(config=bad)) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "width" in err


def test_a_recurrent_net_is_identical_in_every_runner(micropython):
    """The recurrent variant (each layer but the last reads the layer above's activities
    from the previous sample): learn steps, advances and predictions give the same bits,
    the state included, in CPython (reference, numpy, C) and MicroPython (pure, viper,
    native)."""
    cfg = Config(**dict(parity.default_config().as_dict(), recurrent=1))
    rep = parity.run_parity(cfg, steps=200, n_test=40, runners=parity.default_runners(qemu=False))
    assert rep["messages"] == [] and rep["identical"] is True, rep["messages"]
    assert rep["predictions_identical"] is True
    assert len(rep["runners"]) == 6
    # the state is one of the parts compared (a runner whose state differed would be named)
    parts = parity._driver_namespace()["state_parts"](__import__("ffrt.net").net.FFNet(cfg))
    assert "layer 0 state" in dict(parts)
