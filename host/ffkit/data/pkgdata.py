"""Data files inside pip packages, read without importing the package, and their cache.

ffkit ships no data of its own and downloads nothing: UCI HAPT (ffkit.data.hapt) and MNIST
(ffkit.data.mnist) come as pickles inside pinned pip packages whose own code ffkit never runs
(their loaders need pandas or an old numpy). The steps both take, here once:

- `package_file`: where an installed package keeps a file (``importlib.util.find_spec``,
  which does not run the package's ``__init__``);
- `read_pinned`: the file's bytes, refused unless their SHA-256 is the pinned one, before
  anything is unpickled;
- `cached_arrays`: the arrays converted from it, cached as an ``.npz`` in `cache_dir` and
  rebuilt when the cache is missing, damaged or made from another file.

>>> cache_dir().name
'ffkit'
"""

import hashlib
import importlib.util
import os
from pathlib import Path
import zipfile

import numpy as np

from ffkit.data.dataset import DataError


def cache_dir():
    """``$FFKIT_CACHE`` if set, else ``~/.cache/ffkit``."""
    env = os.environ.get("FFKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ffkit"


def package_file(module, relpath, what, package):
    """The path of ``relpath`` inside the installed package ``module`` (not imported).

    ``what`` names the data and ``package`` the pip package (with its pinned version) for
    the message when it is not installed.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError("%s needs the package %s (pinned in requirements-nodeps.txt; `make` "
                        "installs it with --no-deps)" % (what, package))
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        raise DataError("%s has no %s" % (module, path))
    return path


def read_pinned(path, sha256, what, reinstall, check_hash=True):
    """The bytes of ``path``; with ``check_hash``, refused unless their SHA-256 is
    ``sha256`` (``what`` and ``reinstall`` go into the message)."""
    raw = Path(path).read_bytes()
    if check_hash and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError("%s is not the pinned %s file (SHA-256 differs); reinstall %s"
                        % (path, what, reinstall))
    return raw


def cached_arrays(name, source_sha256, build, check, cache=None, refresh=False):
    """A dict of arrays, from the cache file ``name`` when it holds them for this source.

    ``build()`` converts the source (a dict of arrays); ``check(arrays)`` raises
    DataError unless they are sound, for built and cached ones alike. ``cache``: a folder
    for the .npz (default `cache_dir()`), or False for none; ``refresh``: build again and
    rewrite it. A cache that cannot be written (a read-only home) is skipped, not an
    error; one that cannot be read, fails its check or was made from another source file
    is rebuilt.
    """
    path = None
    if cache is not False:
        path = Path(cache if cache is not None else cache_dir()) / name
        if path.is_file() and not refresh:
            try:
                with np.load(path, allow_pickle=False) as f:
                    if str(f["source_sha256"]) == source_sha256:
                        arrays = {k: f[k] for k in f.files if k != "source_sha256"}
                        check(arrays)
                        return arrays
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError):
                pass  # a damaged or foreign cache file is rebuilt below
    arrays = build()
    check(arrays)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".%d.tmp" % os.getpid())
            with open(tmp, "wb") as f:
                np.savez(f, source_sha256=np.array(source_sha256), **arrays)
            os.replace(tmp, path)
        except OSError:
            pass
    return arrays
