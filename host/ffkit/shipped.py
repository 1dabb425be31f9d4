"""Where the files ffkit ships beside its code are: the board firmware and the models.

The one lookup every verb uses (``ffkit.config.models_dir`` and
``ffkit.board.mpy.firmware_dir`` answer from here). Two layouts:

- a checkout, with or without ``pip install -e .``: this file is
  ``<repo>/host/ffkit/shipped.py``, and the answers are ``<repo>/firmware`` and
  ``<repo>/models``, so an edit there is what the next command uses;
- an installed wheel: copies inside the package, ``ffkit/_data/firmware`` (``main.py``,
  ``ffrt/`` with its native sources, ``tools/``, ``qemu/``, ``package.json``) and
  ``ffkit/_data/models`` (``*.ffw``, ``*.toml``). A wheel can only hold files under an
  installed package and setuptools' package-data cannot reach outside ``host/``, so
  setup.py's build step copies them there (its ``DATA_FILES`` says which).

The firmware folder keeps its own ``ffrt/`` rather than pointing at the installed ``ffrt``:
the unix port gets it on ``MICROPYPATH`` and boots its ``main.py``, and site-packages is
no folder to put on a board's path. Both copies come from the same build.

>>> (firmware_dir() / "main.py").is_file() and (models_dir() / "digits.toml").is_file()
True
"""

from pathlib import Path

from ffkit import FFKitError

__all__ = ["DATA", "checkout_root", "firmware_dir", "models_dir"]

# The installed layout's root: ffkit/_data.
DATA = Path(__file__).resolve().parent / "_data"


def checkout_root():
    """The repository when ffkit runs from a checkout (``<repo>/host/ffkit``), else None."""
    here = Path(__file__).resolve().parent
    root = here.parents[1]
    if here.parent.name == "host" and (root / "firmware" / "main.py").is_file():
        return root
    return None


def _shipped(name):
    root = checkout_root()
    if root is not None:
        return root / name
    path = DATA / name
    if not path.is_dir():
        raise FFKitError("this ffkit install has no %s folder (looked for %s): reinstall "
                         "ffkit from a wheel built by setup.py, or run it from a checkout"
                         % (name, path))
    return path


def firmware_dir():
    """The folder holding ``main.py``, ``ffrt/``, ``tools/`` and ``qemu/``: what the unix
    port gets on ``MICROPYPATH`` and a flash copies to a board."""
    return _shipped("firmware")


def models_dir():
    """The folder of the shipped model configs (``*.toml``) and weights (``*.ffw``)."""
    return _shipped("models")
