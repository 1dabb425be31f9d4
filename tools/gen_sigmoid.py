"""Print ffrt.fixedpoint.SIGMOID_Q8: the logistic function in Q8 at 64 points.

Entry i is round(256 / (1 + exp(-(2*i - 63) / 16))) for i in 0..63, i.e. the sigmoid at
the midpoints (2*i - 63) / 16 of 64 steps of 1/8 logit, so the table is symmetric about
index 31.5: table[i] + table[63 - i] == 256. fixedpoint.sigmoid_q8 indexes it with
(g - theta) >> gshift plus 32.

    python tools/gen_sigmoid.py        # prints the literal to paste into fixedpoint.py

tests/test_fixedpoint.py imports `sigmoid_q8_table` from here and checks that the table in
fixedpoint.py equals it.
"""

import math

N = 64
ONE_Q8 = 256
PER_ROW = 16


def sigmoid_q8_table():
    """The 64 table entries as a list of ints in 0..256."""
    return [round(ONE_Q8 / (1 + math.exp(-(2 * i - (N - 1)) / 16))) for i in range(N)]


def format_table(values):
    """The `SIGMOID_Q8 = bytes((...))` literal, 16 values a line, as in fixedpoint.py."""
    lines = ["SIGMOID_Q8 = bytes(("]
    for k in range(0, len(values), PER_ROW):
        lines.append("    " + ", ".join(str(v) for v in values[k:k + PER_ROW]) + ",")
    lines.append("))")
    return "\n".join(lines)


def main():
    print(format_table(sigmoid_q8_table()))


if __name__ == "__main__":
    main()
