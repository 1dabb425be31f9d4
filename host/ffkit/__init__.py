"""ffkit: the host side of ffrt (data sets, training, evaluation, the ``ffkit`` CLI).

The engine itself lives in ``ffrt`` (the same modules that run on the board); ffkit
imports it for every format and rule and adds numpy kernels, data and tools around it.

    >>> import ffkit
    >>> ffkit.__version__ == __import__("ffrt").__version__
    True

``ffkit.FFClassifier`` (a River classifier) is imported on first use, so that
``import ffkit`` does not import River.
"""

from ffrt import __version__

__all__ = ["__version__", "FFKitError", "UsageError", "FFClassifier"]


class FFKitError(Exception):
    """An error meant for the user: the CLI prints ``ffkit: <message>`` and exits 1."""


class UsageError(FFKitError):
    """A wrong combination of command-line arguments: the CLI exits 2."""


def __getattr__(name):
    # PEP 562: River is imported only when FFClassifier is asked for.
    if name == "FFClassifier":
        from ffkit.learning.river_model import FFClassifier
        return FFClassifier
    raise AttributeError("module 'ffkit' has no attribute %r" % name)
