"""C twins of ffrt.kernels_ref for the host: same signatures, same buffers, same bits.

Bootstrapping is one learn step after another (each step's weights feed the next), so a
PC cannot batch it; per step, numpy spends most of its time on call overheads of small
arrays. These kernels are ``kernels_c.c`` (which includes ffrt's own C kernels,
``firmware/ffrt/native/kernels.h``, the loops a board's native module runs) compiled once with the system's C compiler
(``$CC``, else ``cc``; ``-O3``) into a shared library cached under ``$FFKIT_CACHE`` (else
``~/.cache/ffkit``), keyed by the sources' hash, and called through ctypes on the net's
own buffers (no copies). Semantics are the reference's, bit for bit (tests hold every twin
to tests/kernel_vectors.py and to each other over whole training runs).

`available()` says whether the library builds and loads here; `ffkit.twins.kernels_np` is the
fallback (``ffkit.engine.host_kernels`` picks).

>>> from ffrt.model import Config
>>> from ffrt.net import FFNet
>>> from ffrt import kernels_ref
>>> if available():
...     a = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)), kernels=load())
...     b = FFNet(Config(n_features=4, n_classes=3, in_max=15, layers=(8,)), kernels=kernels_ref)
...     for net in (a, b):
...         net.learn_one([1, 2, 3, 4], 2)
...     assert a.weights == b.weights and a.predict_one([4, 3, 2, 1]) == b.predict_one([4, 3, 2, 1])
"""

import ctypes
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

import ffrt as _ffrt
from ffrt import kernels_ref

SOURCE = Path(__file__).with_name("kernels_c.c")
# the kernels' C, shared with the boards' native module (ffkit.board.native)
HEADER = Path(_ffrt.__file__).parent / "native" / "kernels.h"

_lib = None
_error = None


class _Kernels:
    """The kernel functions over the loaded library (a module-like object)."""

    def __init__(self, lib):
        self._lib = lib
        P = ctypes.c_void_p
        i = ctypes.c_int
        i32 = ctypes.c_int32
        lib.fc_relu.argtypes = (P, P, P, i, i, i)
        lib.fc_relu.restype = i32
        lib.fc_acc.argtypes = (P, P, P, i, i)
        lib.fc_acc.restype = None
        lib.label_relu.argtypes = (P, P, P, P)
        lib.label_relu.restype = i32
        lib.normalize.argtypes = (P, P, i, i32)
        lib.normalize.restype = None
        lib.update.argtypes = (P, P, P, P, P)
        lib.update.restype = None
        lib.head_scores.argtypes = (P, P, i, i, P)
        lib.head_scores.restype = None
        lib.head_update.argtypes = (P, P, P, P)
        lib.head_update.restype = None
        lib.goodness_labels.argtypes = (i, P, P, P, P, P, i, i, i, i, i, i, P, P, P, P, P)
        lib.goodness_labels.restype = None
        self.__name__ = "ffkit.twins.kernels_c"
        self._plans = {}

    # the kernels of ffrt.kernels_ref -------------------------------------------------------

    def fc_relu(self, w, x, h, n_in, n_out, shift):
        return self._lib.fc_relu(_addr(w), _addr(x), _addr(h), n_in, n_out, shift)

    def fc_acc(self, w, x, acc, n_in, n_out):
        self._lib.fc_acc(_addr(w), _addr(x), _addr(acc), n_in, n_out)

    def label_relu(self, w, acc, h, p):
        return self._lib.label_relu(_addr(w), _addr(acc), _addr(h), _addr(p))

    def normalize(self, h, out, n, recip):
        self._lib.normalize(_addr(h), _addr(out), n, recip)

    def update(self, w, x, h, rng, p):
        self._lib.update(_addr(w), _addr(x), _addr(h), _addr(rng), _addr(p))

    def head_scores(self, wh, a, n_in, n_out, scores):
        self._lib.head_scores(_addr(wh), _addr(a), n_in, n_out, _addr(scores))

    def head_update(self, wh, a, rng, p):
        self._lib.head_update(_addr(wh), _addr(a), _addr(rng), _addr(p))

    isqrt = staticmethod(kernels_ref.isqrt)
    copy = staticmethod(kernels_ref.copy)  # one int: a ctypes call would cost more

    # the host composite (ffrt.net calls it when a twin has it) ----------------------------

    def goodness_labels(self, net, out):
        """out[c] = net._forward(c) for every label (see kernels_np.goodness_labels)."""
        plan = self._plans.get(id(net))
        if plan is None or plan[0] is not net or \
                any(a is not b for a, b in zip(plan[1], net.weights + net._inp)):
            plan = self._plan(net)
        cfg = net.cfg
        shift = plan[2][3]
        for l, s in enumerate(cfg.act_shift):  # SET may change them between calls
            shift[l] = s
        self._lib.goodness_labels(len(cfg.layers), *plan[3], cfg.n_features, cfg.n_classes,
                                  cfg.label_repeat, cfg.label_value, cfg.norm_target, cfg.goodness_from,
                                  _addr(out), *plan[4])

    def _plan(self, net):
        """Pointer tables and scratch for one net, rebuilt if its weight buffers change."""
        cfg = net.cfg
        L = len(cfg.layers)
        width = max(cfg.layers)
        tables = ((ctypes.c_void_p * L)(*[_addr(w) for w in net.weights]),
                  (ctypes.c_int32 * L)(*net.n_in), (ctypes.c_int32 * L)(*cfg.layers),
                  (ctypes.c_int32 * L)(*cfg.act_shift),
                  (ctypes.c_void_p * L)(*[_addr(b) for b in net._inp]))
        scratch = ((ctypes.c_int32 * sum(cfg.layers))(), (ctypes.c_uint8 * width)(),
                   (ctypes.c_uint8 * width)(), (ctypes.c_uint8 * width)())
        plan = (net, list(net.weights + net._inp), tables,
                tuple(ctypes.addressof(t) for t in tables),
                tuple(ctypes.addressof(t) for t in scratch), scratch)
        if len(self._plans) > 64:  # the plans hold their nets: keep only a few
            self._plans.clear()
        self._plans[id(net)] = plan
        return plan


def _addr(buf):
    """The address of a writable buffer (bytearray, array, memoryview) without a copy."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def _build():
    src = SOURCE.read_bytes() + HEADER.read_bytes()
    tag = hashlib.sha256(src + sys.platform.encode()).hexdigest()[:16]
    from ffkit.data.pkgdata import cache_dir
    out = cache_dir() / ("kernels_c-%s.so" % tag)
    if out.is_file():
        return out
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("no C compiler (cc or gcc) on PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, "-O3", "-shared", "-fPIC", "-I", str(HEADER.parent), "-o",
                            tmp, str(SOURCE)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError("%s failed: %s" % (cc, r.stderr.strip()[-400:]))
        os.replace(tmp, out)  # atomic: a concurrent build writes the same bytes
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def load():
    """The C kernels (an object with the kernel functions); raises OSError when they
    cannot be built or loaded here."""
    global _lib, _error
    if _lib is None:
        if _error is not None:
            raise OSError(_error)
        try:
            _lib = _Kernels(ctypes.CDLL(str(_build())))
        except OSError as e:
            _error = str(e)
            raise
    return _lib


def available():
    """True when the C kernels build and load on this machine."""
    try:
        load()
        return True
    except OSError:
        return False
