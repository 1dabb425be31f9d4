"""ffkit.plots: figures a person reads at a glance.

- The y range comes from the data (with a margin, accuracies kept in [0, 1]), not from 0.
- Mean and worst lines are drawn where the data put them and say their values.
- Subject boundaries are dotted lines with the subject's id at their x.
- A rolling mean is never wider than a quarter of the data, and its label says its width.
- Legends sit outside the axes (bounding boxes after a draw).
"""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from ffkit import plots  # noqa: E402


def _per_subject(rng):
    subjects = [16, 17, 18, 19, 20]
    frozen = rng.uniform(0.80, 0.97, len(subjects))
    adapted = rng.uniform(0.85, 0.97, len(subjects))
    return {str(s): {"frozen": float(f), "adapted": float(a)}
            for s, f, a in zip(subjects, frozen, adapted)}, frozen, adapted


def _hline(ax, gid, prefix=""):
    lines = [ln for ln in ax.get_lines() if ln.get_gid() == gid
             and ln.get_label().startswith(prefix)]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    y = lines[0].get_ydata()
    assert y[0] == y[-1]
    return float(y[0]), lines[0].get_label()


def _close(fig):
    plots._pyplot().close(fig)


def _legend_outside(fig, ax):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    leg = ax.get_legend().get_window_extent(r)
    box = ax.get_window_extent(r)
    assert not leg.overlaps(box), (leg, box)


def test_per_subject_ylim_from_data_mean_worst_lines_legend_outside():
    rng = np.random.default_rng(5)
    per, frozen, adapted = _per_subject(rng)
    fig = plots.accuracy_per_subject_figure(per, "personalise")
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    both = np.concatenate([frozen, adapted])
    assert 0.5 < lo < both.min() and both.max() < hi <= 1.0
    for k, v in (("frozen", frozen), ("adapted", adapted)):
        y, label = _hline(ax, "mean", k)
        assert y == pytest.approx(v.mean()) and "%.3f" % v.mean() in label
        y, label = _hline(ax, "worst", k)
        w = int(np.argmin(v))
        assert y == pytest.approx(v[w])
        assert "%.3f" % v[w] in label and "subject %s" % list(per)[w] in label
    _legend_outside(fig, ax)
    _close(fig)


def test_per_subject_prequential_and_a_perfect_subject_stay_within_one():
    per = {"21": {"prequential": 1.0}, "22": {"prequential": 0.9}}
    fig = plots.accuracy_per_subject_figure(per, "prequential")
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert 0.85 < lo < 0.9 and hi == 1.0
    assert _hline(ax, "mean")[0] == pytest.approx(0.95)
    _close(fig)


def test_over_stream_boundaries_labelled_rolling_width_fits_short_data():
    rng = np.random.default_rng(7)
    hits = (rng.random(83) < 0.9).astype(int)
    starts, subjects = [0, 30, 55], [19, 20, 21]
    fig = plots.accuracy_over_stream_figure(hits, starts, subjects)
    ax = fig.axes[0]
    w = plots.roll_width(len(hits))
    assert w == 83 // 4 < plots.ROLL
    assert ax.get_ylabel() == "accuracy, rolling %d" % w
    assert "rolling mean of %d" % w in [ln.get_label() for ln in ax.get_lines()]
    curve = ax.get_lines()[0].get_ydata()
    assert curve[w + 5] == pytest.approx(hits[6:w + 6].mean())
    bounds = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_gid() == "subject-boundary"]
    assert bounds == starts[1:]
    labels = {t.get_text().strip(): t.get_position()[0] for t in ax.texts
              if t.get_gid() == "subject-label"}
    assert labels == {str(s): x for s, x in zip(subjects, starts)}
    y, label = _hline(ax, "mean")
    assert y == pytest.approx(hits.mean()) and "%.3f" % hits.mean() in label
    seg = [hits[a:b].mean() for a, b in zip(starts, starts[1:] + [len(hits)])]
    y, label = _hline(ax, "worst")
    assert y == pytest.approx(min(seg))
    assert "subject %d" % subjects[int(np.argmin(seg))] in label
    lo, hi = ax.get_ylim()
    assert 0 < lo < curve.min() and hi <= 1.0
    _legend_outside(fig, ax)
    _close(fig)


def test_goodness_ylim_from_data_width_in_title_legends_outside(tmp_path):
    n, theta = 40, [150000, 50000]
    rng = np.random.default_rng(3)
    pos = rng.uniform([170000, 90000], [230000, 140000], (n, 2))
    neg = rng.uniform([100000, 5000], [140000, 35000], (n, 2))
    fig = plots.goodness_over_stream_figure(pos.ravel(), neg.ravel(), theta, [0, 20], [1, 2])
    assert "rolling %d" % plots.roll_width(n) in fig.axes[0].get_title()
    ax = fig.axes[0]
    w = plots.roll_width(n)
    p_roll, q_roll = plots._rolling(pos[:, 0], w), plots._rolling(neg[:, 0], w)
    assert np.allclose(ax.get_lines()[0].get_ydata(), p_roll)
    lo, hi = ax.get_ylim()
    assert 90000 < lo < q_roll.min() and p_roll.max() < hi < 240000  # not from 0
    for ax in fig.axes:
        _legend_outside(fig, ax)
    _close(fig)
    paths = plots.write_all(tmp_path, {"protocol": "prequential", "subjects": [1, 2],
                                       "per_subject": {"1": {"prequential": 0.9},
                                                       "2": {"prequential": 0.95}}},
                            [1, 0, 1, 1] * 10, [0, 20], pos.ravel(), neg.ravel(), theta)
    assert [open(p, "rb").read(8) for p in paths] == [b"\x89PNG\r\n\x1a\n"] * 3


def test_roll_width():
    assert [plots.roll_width(n) for n in (0, 3, 4, 83, 200, 201, 10000)] == \
        [1, 1, 1, 20, 50, 50, 50]
