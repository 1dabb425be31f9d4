"""Command-line argument types that library modules share with the commands."""

import argparse


def subject_range(text):
    """'16-30' or '16,18,20-22' -> a tuple of HAPT subject ids (an argparse type).

    >>> subject_range("16,18,20-22")
    (16, 18, 20, 21, 22)
    """
    out = []
    try:
        for part in text.split(","):
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b or a)
            if not 1 <= lo <= hi <= 30:
                raise ValueError
            out.extend(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "subjects are 1..30, as 16-30 or 16,18,20-22") from None
    return tuple(out)
