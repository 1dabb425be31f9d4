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

A recurrent model is scored as a board streams the test sessions (`accuracy_stream`:
its state carried from window to window), on data that is a stream (``sequences``).
"""

from ffrt.model import Config
from ffrt.net import FFNet

from ffkit.data.datasets import as_labels, as_rows


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


def accuracy_stream(net, X, y, groups, head=False):
    """Accuracy over a stream (a recurrent model): the rows in order, the net's state
    reset where ``groups`` changes (a new session) and advanced after every row, rows
    labelled -1 seen but not scored; as a board streaming them predicts. Nothing is
    learnt."""
    predict = net.predict_head if head else net.predict_one
    hits = n = 0
    last = None
    for x, t, g in zip(as_rows(X), as_labels(y), as_labels(groups)):
        if g != last:
            net.reset_state()
            last = g
        p = predict(x)
        if t >= 0:
            hits += p == t
            n += 1
        net.advance()
    if not n:
        raise ValueError("no labelled samples to evaluate")
    return hits / n


def sequences(data, part):
    if data.sequences is None:
        from ffkit.data.datasets import DataError
        raise DataError("%s is not a stream in time (no sequences), which a recurrent "
                        "model needs (the built-in hapt is one)" % data.name)
    return data.sequences()[part]


def default_kernels():
    from ffkit.twins.kernels import host_kernels
    return host_kernels()


def head_control(cfg, data, epochs, shuffle_seed, *, kernels=None, progress=False,
                 context=4):
    """Head accuracy on ``data``'s test split of an untrained net (only its head learns).

    The net is built from a copy of ``cfg`` (same seed: the same starting weights as the
    model it controls) and trained on the training split like the model (``epochs``,
    ``shuffle_seed``); ``ff_learning = False`` leaves its FF layers at their random start.
    """
    from ffkit.learning.train import train, train_sequences

    net = FFNet(Config(**cfg.as_dict()), kernels=kernels or default_kernels())
    net.ff_learning = False
    if cfg.recurrent:
        X, y, g = sequences(data, "train")
        train_sequences(net, X, y, g, epochs=epochs, shuffle_seed=shuffle_seed,
                        context=context, progress=progress)
        return accuracy_stream(net, *sequences(data, "test"), head=True)
    train(net, data.X_train, data.y_train, epochs=epochs, shuffle_seed=shuffle_seed,
          progress=progress)
    return accuracy_head(net, data.X_test, data.y_test)


def report(net, data, *, control_epochs=10, control_shuffle_seed=0, control=True,
           kernels=None, progress=False):
    """The numbers ``ffkit eval`` prints, as a dict (its ``--json`` output).

    ``accuracy`` is by goodness (FF's own prediction) on the held-out split; the head and
    the untrained-net control follow (control None when skipped), and what FF learning
    adds over that control: ``margin`` = accuracy - control and ``margin_head`` =
    accuracy_head - control (fractions; absent when the control is skipped).
    """
    if net.cfg.recurrent:  # scored as a board streams the test sessions
        seq = sequences(data, "test")
        acc, acc_head = accuracy_stream(net, *seq), accuracy_stream(net, *seq, head=True)
    else:
        acc = accuracy_goodness(net, data.X_test, data.y_test)
        acc_head = accuracy_head(net, data.X_test, data.y_test)
    out = {
        "accuracy": acc,
        "accuracy_head": acc_head,
        "accuracy_head_untrained_control": None,
        "dataset": data.name,
        "split": data.split,
        "n_test": int(len(data.y_test)),
        "predict": "goodness",
    }
    if control:
        ctrl = head_control(net.cfg, data, control_epochs, control_shuffle_seed,
                            kernels=kernels, progress=progress)
        out["accuracy_head_untrained_control"] = ctrl
        out["margin"] = out["accuracy"] - ctrl
        out["margin_head"] = out["accuracy_head"] - ctrl
        out["control"] = {"epochs": control_epochs, "shuffle_seed": control_shuffle_seed,
                          "what": "linear head trained on a net whose FF layers never learn"}
    return out



FLOAT_BASELINES = {
    "logistic_regression": "scikit-learn LogisticRegression(max_iter=1000) on features / in_max",
    "mlp_128": "scikit-learn MLPClassifier((128,), max_iter=200, random_state=0) on "
               "features / in_max",
}


def float_baselines(data):
    """Held-out accuracy of float learners on the same split (trained on the training
    split only): what an integer FF on a microcontroller is measured against. A dict of
    {name: accuracy}, plus "settings" (FLOAT_BASELINES)."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    scale = float(max(1, int(np.asarray(data.X_train).max())))
    Xtr = np.asarray(data.X_train, dtype=np.float64) / scale
    Xte = np.asarray(data.X_test, dtype=np.float64) / scale
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, model in (("logistic_regression", LogisticRegression(max_iter=1000)),
                            ("mlp_128", MLPClassifier((128,), max_iter=200,
                                                      random_state=0))):
            model.fit(Xtr, np.asarray(data.y_train))
            out[name] = float(model.score(Xte, np.asarray(data.y_test)))
    out["settings"] = dict(FLOAT_BASELINES)
    return out
