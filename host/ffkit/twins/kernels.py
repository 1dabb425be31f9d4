"""Which kernel twin the host runs: the C twin where it builds, else the numpy twin.

Every twin computes the same bits (ffrt.kernels_ref is the semantics; tests hold them
equal), so the choice is speed only: a learn step of the 794-input 128-128 net takes
about 1 ms with ffkit.twins.kernels_c and 3-4 ms with ffkit.twins.kernels_np on one core of a PC.
``$FFKIT_KERNELS`` = ``c``, ``numpy`` or ``reference`` forces one (``c`` fails loudly
when it cannot build).

>>> host_kernels().__name__ in ("ffkit.twins.kernels_c", "ffkit.twins.kernels_np")
True
"""

import os

from ffkit import FFKitError

CHOICES = ("c", "numpy", "reference")


def host_kernels(choice=None):
    """The kernel twin to use on this host (see the module docstring)."""
    choice = choice or os.environ.get("FFKIT_KERNELS") or None
    if choice not in (None,) + CHOICES:
        raise FFKitError("FFKIT_KERNELS must be one of %s (got %r)"
                         % (", ".join(CHOICES), choice))
    if choice == "reference":
        from ffrt import kernels_ref
        return kernels_ref
    if choice in (None, "c"):
        from ffkit.twins import kernels_c
        try:
            return kernels_c.load()
        except OSError as e:
            if choice == "c":
                raise FFKitError("the C kernels do not build here: %s" % e) from None
    from ffkit.twins import kernels_np
    return kernels_np
