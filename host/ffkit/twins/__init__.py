"""The numpy (and C) twins of the firmware's kernels, window features and front end: the
host's fast paths, bit-identical to ffrt.
"""
