"""PNG plots of a streamed run (``ffkit stream --plots DIR``), with matplotlib's Agg backend.

- ``accuracy_per_subject.png``: per test subject, frozen and adapted accuracy on the last
  session (personalise), or prequential accuracy (prequential), as dots (frozen joined to
  adapted by a line: the change), with each series' mean and worst subject as labelled
  horizontal lines.
- ``accuracy_over_stream.png``: the windows learnt from, in stream order (the adaptation
  sessions, or every session under prequential), each predicted before it was learnt:
  a rolling mean of hits, the mean over all of them and the worst subject's mean as
  labelled lines, and each subject's start (a fresh board) as a dotted line with its id.
- ``goodness_over_stream.png``: per layer, the goodness of positive data (the window with
  its own label) and of negative data (the hardest wrong label) over the same windows,
  rolling means, measured on the host's twin before each window is learnt; the dashed
  line is the layer's threshold theta.

Read at a glance: the y range comes from the data (a small margin, accuracies kept in
[0, 1]), so 0.83 against 0.96 is plain; a rolling mean is never wider than a quarter of
the values it smooths, and its label gives the width used; legends sit outside the axes.

The ``*_figure`` functions build and return a matplotlib Figure (for tests and notebooks);
the others write one file each and return its path.

    >>> fig = accuracy_over_stream_figure([1, 1, 0, 1] * 20, [0, 40], subjects=[19, 20])
    >>> fig.axes[0].get_ylabel()
    'accuracy, rolling 20'
"""

from pathlib import Path

import numpy as np

ROLL = 50  # widest rolling mean, in windows
MARGIN = 0.08  # of the data's range, above and below it


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def roll_width(n, width=ROLL):
    """The rolling width used on n values: at most `width`, at most n // 4, at least 1."""
    return max(1, min(width, n // 4))


def _rolling(values, width=ROLL):
    """Trailing means over up to `width` values (the first ones over fewer)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    c = np.cumsum(np.concatenate([[0.0], v]))
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(0, i - width)
    return (c[i] - c[lo]) / (i - lo)


def data_ylim(values, clip=None, margin=MARGIN):
    """(low, high) around the finite values with a margin; clip=(a, b) bounds it."""
    v = np.asarray([x for x in np.ravel(np.asarray(values, dtype=np.float64))
                    if np.isfinite(x)])
    if not len(v):
        return clip if clip is not None else (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    pad = (hi - lo) * margin or (abs(hi) * margin or 0.05)
    lo, hi = lo - pad, hi + pad
    if clip is not None:
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
    return lo, hi


def _legend_outside(ax, **kw):
    """The legend to the right of the axes, clear of the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     fontsize="small", **kw)


def _subject_marks(ax, starts, subjects, label_ids=True):
    """Dotted lines where each subject after the first starts; ids above the axes."""
    for j, s in enumerate(starts):
        if j:
            ax.axvline(s, color="grey", lw=0.6, ls=":", gid="subject-boundary")
        if label_ids and subjects is not None and j < len(subjects):
            ax.text(s, 1.01, " %s" % subjects[j], transform=ax.get_xaxis_transform(),
                    ha="left", va="bottom", fontsize="x-small", color="dimgrey",
                    clip_on=False, gid="subject-label")


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")  # keeps the outside legend
    _pyplot().close(fig)
    return str(path)


def accuracy_per_subject_figure(per_subject, protocol):
    """Dots per subject (frozen and adapted, or prequential) with mean and worst lines."""
    plt = _pyplot()
    subjects = list(per_subject)
    keys = ("frozen", "adapted") if protocol == "personalise" else ("prequential",)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(subjects) + 3), 4))
    x = np.arange(len(subjects))
    series = {k: np.array([np.nan if per_subject[s].get(k) is None else per_subject[s][k]
                           for s in subjects], dtype=np.float64) for k in keys}
    if len(keys) == 2:  # the change, frozen -> adapted
        a, b = series[keys[0]], series[keys[1]]
        ax.vlines(x, np.fmin(a, b), np.fmax(a, b), color="lightgrey", lw=2, zorder=1)
    shown = []
    for k in keys:
        v = series[k]
        dots, = ax.plot(x, v, "o", ms=6, label=k, zorder=3)
        if not np.isfinite(v).any():
            continue
        mean = float(np.nanmean(v))
        w = int(np.nanargmin(v))
        ax.axhline(mean, color=dots.get_color(), lw=1, ls="--",
                   label="%s mean %.3f" % (k, mean), gid="mean")
        ax.axhline(v[w], color=dots.get_color(), lw=1, ls=":",
                   label="%s worst %.3f (subject %s)" % (k, v[w], subjects[w]), gid="worst")
        shown.append(v)
    ax.set_xticks(x)
    ax.set_xticklabels([str(s) for s in subjects])
    ax.set_xlim(-0.6, len(subjects) - 0.4)
    ax.set_xlabel("subject")
    ax.set_ylabel("accuracy (target windows)")
    ax.set_ylim(*data_ylim(shown, clip=(0.0, 1.0)))
    ax.grid(axis="y", lw=0.4, alpha=0.5)
    _legend_outside(ax)
    ax.set_title("accuracy per subject (%s)" % protocol)
    return fig


def accuracy_over_stream_figure(hits, starts, subjects=None, width=ROLL):
    """Rolling accuracy of the windows learnt from, each predicted before it was learnt,
    with the mean and the worst subject's mean as labelled lines."""
    plt = _pyplot()
    hits = np.asarray(hits, dtype=np.float64)
    w = roll_width(len(hits), width)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    roll = _rolling(hits, w)
    ax.plot(np.arange(len(hits)), roll, lw=1, label="rolling mean of %d" % w, clip_on=False)
    shown = [roll]
    if len(hits):
        mean = float(hits.mean())
        ax.axhline(mean, color="C1", lw=1, ls="--", gid="mean",
                   label="mean %.3f (%d windows)" % (mean, len(hits)))
        shown.append([mean])
        bounds = list(starts) + [len(hits)]
        segs = [(j, hits[a:b].mean()) for j, (a, b) in enumerate(zip(bounds, bounds[1:]))
                if b > a]
        if len(segs) > 1:
            j, worst = min(segs, key=lambda t: t[1])
            who = subjects[j] if subjects is not None and j < len(subjects) else j + 1
            ax.axhline(worst, color="C3", lw=1, ls=":", gid="worst",
                       label="worst subject %s: %.3f" % (who, worst))
            shown.append([worst])
    _subject_marks(ax, starts, subjects)
    ax.set_xlim(0, max(len(hits) - 1, 1))
    ax.set_ylim(*data_ylim(np.concatenate([np.ravel(s) for s in shown]), clip=(0.0, 1.0)))
    ax.set_xlabel("window learnt from (stream order; dotted: a new subject, fresh board)")
    ax.set_ylabel("accuracy, rolling %d" % w)
    ax.set_title("predicted before learnt, over the stream", pad=18)
    _legend_outside(ax)
    return fig


def goodness_over_stream_figure(g_pos, g_neg, theta, starts=(), subjects=None, width=ROLL):
    """Per layer: rolling goodness of positive vs negative (hardest wrong label) data."""
    plt = _pyplot()
    n_layers = len(theta)
    pos = np.asarray(g_pos, dtype=np.float64).reshape(-1, n_layers)
    neg = np.asarray(g_neg, dtype=np.float64).reshape(-1, n_layers)
    w = roll_width(len(pos), width)
    fig, axes = plt.subplots(n_layers, 1, figsize=(9, 2.6 * n_layers + 0.4), squeeze=False)
    for l in range(n_layers):
        ax = axes[l][0]
        shown = [[theta[l]]]
        if len(pos):
            p, q = _rolling(pos[:, l], w), _rolling(neg[:, l], w)
            ax.plot(p, lw=1, label="positive (own label)")
            ax.plot(q, lw=1, label="negative (hardest wrong label)")
            shown += [p, q]
        ax.axhline(theta[l], color="grey", lw=0.8, ls="--", label="theta %g" % theta[l])
        _subject_marks(ax, starts, subjects, label_ids=l == 0)
        ax.set_xlim(0, max(len(pos) - 1, 1))
        ax.set_ylim(*data_ylim(np.concatenate([np.ravel(s) for s in shown])))
        ax.set_ylabel("goodness, layer %d" % (l + 1))
        _legend_outside(ax)
    axes[-1][0].set_xlabel("window learnt from (stream order; dotted: a new subject)")
    axes[0][0].set_title("goodness before each learn step (host twin), rolling %d" % w,
                         pad=18)
    fig.tight_layout()
    return fig


def accuracy_per_subject(path, per_subject, protocol):
    """accuracy_per_subject_figure written to path; returns the path."""
    return _save(accuracy_per_subject_figure(per_subject, protocol), path)


def accuracy_over_stream(path, hits, starts, subjects=None, width=ROLL):
    """accuracy_over_stream_figure written to path; returns the path."""
    return _save(accuracy_over_stream_figure(hits, starts, subjects, width), path)


def goodness_over_stream(path, g_pos, g_neg, theta, starts=(), subjects=None, width=ROLL):
    """goodness_over_stream_figure written to path; returns the path."""
    return _save(goodness_over_stream_figure(g_pos, g_neg, theta, starts, subjects, width),
                 path)


def write_all(folder, result, hits, starts, g_pos, g_neg, theta):
    """The three plots of a stream result into folder; returns their paths."""
    folder = Path(folder)
    subjects = result.get("subjects") or list(result["per_subject"])
    return [
        accuracy_per_subject(folder / "accuracy_per_subject.png", result["per_subject"],
                             result["protocol"]),
        accuracy_over_stream(folder / "accuracy_over_stream.png", hits, starts, subjects),
        goodness_over_stream(folder / "goodness_over_stream.png", g_pos, g_neg, theta,
                             starts, subjects),
    ]
