"""Bootstrapping on the host: epochs of FFNet.learn_one, the integer rule itself.

Nothing here computes a gradient in floats or touches the weights directly: the host
runs the very learn step the board runs (with numpy kernels for speed, bit-identical to
the reference), one sample at a time, so a model bootstrapped here is one the board could
have learned itself.

Order: epoch ``e`` visits the training rows in the order
``numpy.random.RandomState(shuffle_seed + e).permutation(n)``, so a run is reproducible
from (Config, data, epochs, shuffle_seed, schedule) alone.

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> from ffkit import kernels_np
>>> net = FFNet(Config(n_features=2, n_classes=2, in_max=15, in_scale=17, layers=(8,)),
...             kernels=kernels_np)
>>> r = train(net, [[15, 0], [0, 15]] * 4, [0, 1] * 4, epochs=3, shuffle_seed=0,
...           lr_shift_schedule=((0, 20), (2, 21)), progress=False)
>>> r.steps, net.cfg.lr_shift
(24, 21)
"""

from dataclasses import dataclass
import time

import numpy as np

from ffrt.schedule import value_at

from ffkit.config import check_schedule
from ffkit.data.datasets import as_labels, as_rows
from ffkit.progress import progress_bar


@dataclass
class TrainResult:
    epochs: int
    steps: int          # learn_one calls made
    seconds: float
    lr_shifts: tuple    # the lr_shift used in each epoch


def epoch_order(n, shuffle_seed, epoch):
    """The permutation of n rows used in ``epoch``."""
    return np.random.RandomState(shuffle_seed + epoch).permutation(n)


def _progress_bar(total, desc, progress):
    return progress_bar(total, desc, "sample", enabled=progress)


def train(net, X, y, *, epochs, shuffle_seed, lr_shift_schedule=(), theta_schedule=(),
          progress=True, on_epoch=None):
    """Run ``epochs`` passes of ``net.learn_one`` over (X, y); returns a TrainResult.

    ``lr_shift_schedule``: ((epoch, lr_shift), ...); from that epoch on ``net.cfg.lr_shift``
    is that value (before the first entry it keeps its own), and the last value reached
    stays in ``net.cfg``, hence in the saved model. ``theta_schedule``: ((epoch, (theta
    per layer)), ...) likewise for ``net.cfg.theta`` (validated by ffkit.config). ``on_epoch(epoch, net)`` is called
    after each epoch. The progress bar goes to stderr, only when it is a terminal.
    """
    schedule = check_schedule(lr_shift_schedule)
    rows = as_rows(X)   # Python ints, once: the engine indexes them per element
    labels = as_labels(y)
    if len(rows) != len(labels):
        raise ValueError("X has %d rows but y has %d" % (len(rows), len(labels)))
    n = len(rows)
    start_shift = net.cfg.lr_shift
    start_theta = tuple(net.cfg.theta)
    shifts = []
    t0 = time.perf_counter()
    steps = 0
    with _progress_bar(epochs * n, "train", progress) as bar:
        for epoch in range(epochs):
            net.cfg.lr_shift = value_at(schedule, epoch, start_shift)
            net.cfg.theta = value_at(theta_schedule, epoch, start_theta)
            shifts.append(net.cfg.lr_shift)
            bar.set_postfix_str("epoch %d/%d, lr_shift %d" % (epoch + 1, epochs,
                                                             net.cfg.lr_shift))
            for i in epoch_order(n, shuffle_seed, epoch).tolist():
                net.learn_one(rows[i], labels[i])
                bar.update(1)  # ~1 us against ~2 ms per learn_one
            steps += n
            if on_epoch is not None:
                on_epoch(epoch, net)
    return TrainResult(epochs, steps, time.perf_counter() - t0, tuple(shifts))


def context_starts(groups, context):
    """For each row, the first row of its context: up to ``context`` rows before it in
    the same group (a session, rows in time order).

    >>> context_starts([0, 0, 0, 1, 1], 2).tolist()
    [0, 0, 0, 3, 3]
    """
    g = np.asarray(groups)
    n = len(g)
    idx = np.arange(n)
    first = np.r_[0, np.flatnonzero(np.diff(g)) + 1]   # each group's first row
    group_start = first[np.searchsorted(first, idx, side="right") - 1]
    return np.maximum(group_start, idx - context)


def train_sequences(net, X, y, groups, *, epochs, shuffle_seed, context,
                    lr_shift_schedule=(), theta_schedule=(), progress=True, on_epoch=None):
    """`train` for a recurrent net: rows are time steps (windows), in time order within
    each group (a session); rows labelled -1 are steps a board sees but never learns
    (windows without a target). Epoch ``e`` visits the labelled rows in the order
    ``numpy.random.RandomState(shuffle_seed + e).permutation(n_labelled)``, as `train`
    visits rows; before each, the net's state is rebuilt from zero by ``advance`` over
    the up to ``context`` rows before it in its group (no learning on them), so the row
    is learnt with the state a board streaming that stretch would hold, and the learn
    steps stay in shuffled order (learning whole stretches in time order drifts towards
    the activity of the moment and forgets, as a board does without its rehearsal
    buffer). Returns a TrainResult."""
    schedule = check_schedule(lr_shift_schedule)
    rows = as_rows(X)
    labels = as_labels(y)
    if not len(rows) == len(labels) == len(groups):
        raise ValueError("X, y and groups differ in length")
    if context < 0:
        raise ValueError("context must be >= 0")
    starts = context_starts(groups, context).tolist()
    learn = [i for i, t in enumerate(labels) if t >= 0]
    start_shift = net.cfg.lr_shift
    start_theta = tuple(net.cfg.theta)
    shifts = []
    t0 = time.perf_counter()
    steps = 0
    with _progress_bar(epochs * len(learn), "train", progress) as bar:
        for epoch in range(epochs):
            net.cfg.lr_shift = value_at(schedule, epoch, start_shift)
            net.cfg.theta = value_at(theta_schedule, epoch, start_theta)
            shifts.append(net.cfg.lr_shift)
            for k in epoch_order(len(learn), shuffle_seed, epoch).tolist():
                i = learn[k]
                net.reset_state()
                for j in range(starts[i], i):
                    net.advance(rows[j])
                net.learn_one(rows[i], labels[i])
                bar.update(1)
            steps += len(learn)
            if on_epoch is not None:
                on_epoch(epoch, net)
    return TrainResult(epochs, steps, time.perf_counter() - t0, tuple(shifts))


def train_spec(net, spec, X, y, epochs=None, progress=True, groups=None):
    """`train` with a model file's settings (a config.ModelSpec): its epochs (unless
    given), shuffle_seed and both schedules; a recurrent model trains on sequences
    (`train_sequences`, ``groups`` required, [train] context)."""
    kw = dict(epochs=spec.epochs if epochs is None else epochs,
              shuffle_seed=spec.shuffle_seed, lr_shift_schedule=spec.lr_shift_schedule,
              theta_schedule=spec.theta_schedule, progress=progress)
    if net.cfg.recurrent:
        if groups is None:
            raise ValueError("a recurrent model trains on sequences: give the rows' "
                             "groups (sessions), in time order")
        return train_sequences(net, X, y, groups, context=spec.context, **kw)
    return train(net, X, y, **kw)
