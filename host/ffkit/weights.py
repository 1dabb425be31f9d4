"""A net from a .ffw file on the host, with the host's kernels."""

from pathlib import Path

from ffkit import FFKitError


def host_kernels():
    """The host's fastest kernels (ffkit.twins.kernels.host_kernels)."""
    from ffkit.twins.kernels import host_kernels
    return host_kernels()


def load_weights(path, kernels=None):
    """An FFNet from a .ffw file; a refused file becomes an FFKitError naming the path."""
    from ffrt import ffw
    from ffrt import ffw_ram
    data = Path(path).read_bytes()
    try:
        return ffw_ram.load(data, kernels=kernels if kernels is not None else host_kernels())
    except ffw.FFWError as e:
        raise FFKitError("%s: refused: %s" % (path, e)) from None
