"""PNG plots of a streamed run (``ffkit stream --plots DIR``), with matplotlib's Agg backend.

- ``accuracy_per_subject.png``: per test subject, frozen vs adapted accuracy on the last
  session (personalise), or prequential accuracy (prequential), as bars.
- ``accuracy_over_stream.png``: the windows learnt from, in stream order (the adaptation
  sessions, or every session under prequential), each predicted before it was learnt:
  a rolling mean of hits, with each subject's start marked (a fresh board).
- ``goodness_over_stream.png``: per layer, the goodness of positive data (the window with
  its own label) and of negative data (the hardest wrong label) over the same windows,
  rolling means, measured on the host's twin before each window is learnt; the dashed
  line is the layer's threshold theta.

Each function writes one file and returns its path.
"""

from pathlib import Path

import numpy as np

ROLL = 50  # windows per rolling mean


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def _rolling(values, width=ROLL):
    """Trailing means over up to `width` values (the first ones over fewer)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    c = np.cumsum(np.concatenate([[0.0], v]))
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(0, i - width)
    return (c[i] - c[lo]) / (i - lo)


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return str(path)


def accuracy_per_subject(path, per_subject, protocol):
    """Bars per subject: frozen and adapted (personalise) or prequential accuracy."""
    plt = _pyplot()
    subjects = list(per_subject)
    keys = ("frozen", "adapted") if protocol == "personalise" else ("prequential",)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(subjects) + 2), 4))
    x = np.arange(len(subjects))
    w = 0.8 / len(keys)
    for j, k in enumerate(keys):
        vals = [per_subject[s].get(k) for s in subjects]
        ax.bar(x + (j - (len(keys) - 1) / 2) * w, [np.nan if v is None else v for v in vals],
               w, label=k)
    ax.set_xticks(x)
    ax.set_xticklabels([str(s) for s in subjects])
    ax.set_xlabel("subject")
    ax.set_ylabel("accuracy (target windows)")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.legend(loc="upper right", ncol=len(keys))
    ax.set_title("accuracy per subject (%s)" % protocol)
    return _save(fig, path)


def accuracy_over_stream(path, hits, starts, width=ROLL):
    """Rolling accuracy of the windows learnt from, each predicted before it was learnt."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(np.arange(len(hits)), _rolling(hits, width), lw=1)
    for s in starts[1:]:
        ax.axvline(s, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("window learnt from (stream order; dotted: a new subject, fresh board)")
    ax.set_ylabel("accuracy, rolling %d" % width)
    ax.set_ylim(0, 1.02)
    ax.set_title("predicted before learnt, over the stream")
    return _save(fig, path)


def goodness_over_stream(path, g_pos, g_neg, theta, starts=(), width=ROLL):
    """Per layer: rolling goodness of positive vs negative (hardest wrong label) data."""
    plt = _pyplot()
    n_layers = len(theta)
    pos = np.asarray(g_pos, dtype=np.float64).reshape(-1, n_layers)
    neg = np.asarray(g_neg, dtype=np.float64).reshape(-1, n_layers)
    fig, axes = plt.subplots(n_layers, 1, figsize=(8, 2.6 * n_layers), squeeze=False)
    for l in range(n_layers):
        ax = axes[l][0]
        if len(pos):
            ax.plot(_rolling(pos[:, l], width), lw=1, label="positive (own label)")
            ax.plot(_rolling(neg[:, l], width), lw=1, label="negative (hardest wrong label)")
        ax.axhline(theta[l], color="grey", lw=0.8, ls="--", label="theta")
        for s in starts[1:]:
            ax.axvline(s, color="grey", lw=0.5, ls=":")
        ax.set_ylabel("goodness, layer %d" % (l + 1))
        ax.legend(loc="upper right", fontsize="small")
    axes[-1][0].set_xlabel("window learnt from (stream order; dotted: a new subject)")
    axes[0][0].set_title("goodness before each learn step (host twin), rolling %d" % width)
    return _save(fig, path)


def write_all(folder, result, hits, starts, g_pos, g_neg, theta):
    """The three plots of a stream result into folder; returns their paths."""
    folder = Path(folder)
    return [
        accuracy_per_subject(folder / "accuracy_per_subject.png", result["per_subject"],
                             result["protocol"]),
        accuracy_over_stream(folder / "accuracy_over_stream.png", hits, starts),
        goodness_over_stream(folder / "goodness_over_stream.png", g_pos, g_neg, theta,
                             starts),
    ]
