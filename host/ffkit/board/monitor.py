"""ffkit monitor's readings: a board's counters, and the line printed for each."""

import time


def monitor_sample(board):
    """One monitor reading: the board's STATS plus step and checkpoint from INFO."""
    stats = board.stats()
    info = board.info()
    out = {"time": round(time.time(), 3), "step": info.get("step")}
    out.update(stats)
    if info.get("checkpoint") is not None:
        out["checkpoint"] = info["checkpoint"]
    pos, neg = stats.get("goodness_pos"), stats.get("goodness_neg")
    if pos is not None and neg is not None:
        out["margin"] = [p - n for p, n in zip(pos, neg)]
    if stats.get("labelled"):
        out["accuracy"] = round(stats["correct"] / stats["labelled"], 4)
    return out


def monitor_line(cur, prev=None):
    """The human line for one monitor reading (keys the board did not send are left out).

    >>> monitor_line({"time": 2.0, "step": 150, "learn_steps": 50, "labelled": 40,
    ...               "correct": 30, "accuracy": 0.75, "margin": [1200, -35],
    ...               "mem_free": 41000, "bad_frames": 0},
    ...              {"time": 1.0, "step": 100})
    'step 150 (+50.0/s)  acc 0.750 (30/40)  margin +1200 -35  heap free 41000  bad frames 0'
    """
    parts = []
    step = cur.get("step")
    if step is not None:
        rate = ""
        if prev is not None and prev.get("step") is not None and cur["time"] > prev["time"]:
            rate = " (%+.1f/s)" % ((step - prev["step"]) / (cur["time"] - prev["time"]))
        parts.append("step %d%s" % (step, rate))
    if "accuracy" in cur:
        parts.append("acc %.3f (%d/%d)" % (cur["accuracy"], cur["correct"], cur["labelled"]))
    elif "labelled" in cur:
        parts.append("acc - (0 labelled)")
    if "margin" in cur:
        parts.append("margin " + " ".join("%+d" % m for m in cur["margin"]))
    if cur.get("mem_free") is not None:
        parts.append("heap free %d" % cur["mem_free"])
    if "bad_frames" in cur:
        parts.append("bad frames %d" % cur["bad_frames"])
    return "  ".join(parts)
