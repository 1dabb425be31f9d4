#!/usr/bin/env python3
"""Engine benchmarks inside MicroPython: a thin wrapper around `ffkit bench`.

    python tools/bench.py [--json] [--steps 1000] [--pure-steps 20] [--no-callgrind]

Works from a plain checkout (puts host/ and firmware/ on sys.path) as well as installed.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _p in (_ROOT / "host", _ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from ffkit.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
