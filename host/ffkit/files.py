"""Files written whole or not at all."""

import os
from pathlib import Path


def write_atomic(path, data):
    """Write data to path via a temporary file in the same folder and os.replace."""
    path = Path(path)
    tmp = path.with_name(".%s.tmp%d" % (path.name, os.getpid()))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
