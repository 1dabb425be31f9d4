"""Accuracy on a held-out split, FF prediction first, and the control that keeps it honest.

Two ways to predict with an FFNet:

- by goodness (``predict_one``): one pass per candidate label, the label whose overlay
  gives the most goodness wins. This is what Forward-Forward learning itself produces.
- by the linear head (``predict_head``): one pass with a neutral label, a linear layer on
  the normalised activities.

A linear head on an *untrained* net of the digits shape already reaches about 0.96 on
digits (random features are good features there), so head accuracy alone is no evidence
that FF learned. ``head_control`` measures that baseline on the same split: a fresh net of
the same Config (same seed, so the same starting weights) whose FF layers never learn
(``ff_learning = False``), with only its head trained for the same number of epochs.
"""

from ffrt.model import Config
from ffrt.net import FFNet

from ffkit.datasets import as_labels, as_rows


def _accuracy(predict, X, y):
    rows = as_rows(X)
    labels = as_labels(y)
    if not rows:
        raise ValueError("no samples to evaluate")
    hits = sum(1 for r, t in zip(rows, labels) if predict(r) == t)
    return hits / len(rows)


def accuracy_goodness(net, X, y):
    """Fraction of rows whose most-goodness label (``net.predict_one``) is right."""
    return _accuracy(net.predict_one, X, y)


def accuracy_head(net, X, y):
    """Fraction of rows that the linear head (``net.predict_head``) gets right."""
    return _accuracy(net.predict_head, X, y)


def default_kernels():
    from ffkit import kernels_np
    return kernels_np


def head_control(cfg, data, epochs, shuffle_seed, *, kernels=None, progress=False):
    """Head accuracy on ``data``'s test split of an untrained net (only its head learns).

    The net is built from a copy of ``cfg`` (same seed: the same starting weights as the
    model it controls) and trained on the training split like the model (``epochs``,
    ``shuffle_seed``); ``ff_learning = False`` leaves its FF layers at their random start.
    """
    from ffkit.train import train

    net = FFNet(Config(**cfg.as_dict()), kernels=kernels or default_kernels())
    net.ff_learning = False
    train(net, data.X_train, data.y_train, epochs=epochs, shuffle_seed=shuffle_seed,
          progress=progress)
    return accuracy_head(net, data.X_test, data.y_test)


def report(net, data, *, control_epochs=10, control_shuffle_seed=0, control=True,
           kernels=None, progress=False):
    """The numbers ``ffkit eval`` prints, as a dict (its ``--json`` output).

    ``accuracy`` is by goodness (FF's own prediction) on the held-out split; the head and
    the untrained-net control follow (control None when skipped).
    """
    out = {
        "accuracy": accuracy_goodness(net, data.X_test, data.y_test),
        "accuracy_head": accuracy_head(net, data.X_test, data.y_test),
        "accuracy_head_untrained_control": None,
        "dataset": data.name,
        "split": data.split,
        "n_test": int(len(data.y_test)),
        "predict": "goodness",
    }
    if control:
        out["accuracy_head_untrained_control"] = head_control(
            net.cfg, data, control_epochs, control_shuffle_seed, kernels=kernels,
            progress=progress)
        out["control"] = {"epochs": control_epochs, "shuffle_seed": control_shuffle_seed,
                          "what": "linear head trained on a net whose FF layers never learn"}
    return out

