"""The committed HAPT model (models/hapt.ffw + [adapt]) against issue 4's bar, as the README
reports it: personalisation over subjects 16-30 (about 20 s); rebuilding the file and
the full baseline comparison behind --runslow (about 2 and 4 minutes)."""

import pytest
from ffrt import ffw_ram

from ffkit import config

from ffkit.data import hapt

from ffkit.learning import baselines, protocols


@pytest.fixture(scope="module")
def rec():
    return hapt.load()


@pytest.fixture(scope="module")
def spec():
    return config.load(config.models_dir() / "hapt.toml")


def test_personalisation_reaches_the_bar(rec, spec):
    data = (config.models_dir() / "hapt.ffw").read_bytes()
    assert ffw_ram.decode_config(data) == spec.model.__class__(**dict(
        spec.model.as_dict(), lr_shift=spec.lr_shift_schedule[-1][1]))
    r = protocols.personalise(protocols.adapt_factory(data, spec.adapt), rec)
    # the README's figures, exactly (every step is integer and seeded)
    assert round(r["frozen_accuracy"], 4) == 0.9491
    assert round(r["adapted_accuracy"], 4) == 0.9675
    assert r["frozen_accuracy"] >= 0.93 and r["adapted_accuracy"] >= 0.965
    wf, wa = r["worst_subject_frozen"], r["worst_subject_adapted"]
    assert (wf["subject"], round(wf["accuracy"], 3)) == (19, 0.831)
    assert (wa["subject"], round(wa["accuracy"], 3)) == (16, 0.904)
    assert wa["accuracy"] > wf["accuracy"]   # adaptation lifts the worst subject too
    # and the buffer is what does it: plain learning forgets
    plain = protocols.personalise(protocols.ff_factory(data), rec)
    assert plain["adapted_accuracy"] < plain["frozen_accuracy"] < r["adapted_accuracy"]


@pytest.mark.slow
def test_ffkit_train_rebuilds_the_committed_model(spec):
    from ffrt.net import FFNet

    from ffkit.data import datasets

    from ffkit.twins import kernels_np
    from ffkit.learning.train import train_spec

    d = datasets.load("hapt")
    net = FFNet(spec.model, kernels=kernels_np)
    train_spec(net, spec, d.X_train, d.y_train, progress=False)
    assert bytes(ffw_ram.encode(net)) == (config.models_dir() / "hapt.ffw").read_bytes()


@pytest.mark.slow
def test_integer_ff_at_or_above_every_baseline(rec, spec):
    data = (config.models_dir() / "hapt.ffw").read_bytes()
    res = baselines.run(rec=rec, weights=data, spec=spec)
    ours = res["models"]["int_ff_rehearsal"]["adapted_accuracy"]
    others = {k: v["adapted_accuracy"] for k, v in res["models"].items()
              if not k.startswith("int_ff")}
    assert set(others) == set(baselines.BASELINES)
    assert ours >= 0.965 and all(ours >= v for v in others.values()), (ours, others)
