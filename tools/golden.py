#!/usr/bin/env python3
"""Record the golden session logs into tests/replay/: a thin wrapper around ffkit.sessions.golden.

    python tools/golden.py [--out DIR] [--json]          (make golden)

Works from a plain checkout (puts host/ and firmware/ on sys.path) as well as installed.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _p in (_ROOT / "host", _ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from ffkit.sessions.golden import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
