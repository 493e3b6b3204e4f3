"""The one place that decides how Numba compiles langevin_nn's kernels.

Fastmath flags are listed explicitly: reassociation and contraction let LLVM vectorise
reductions and fuse multiply-adds, but ``nnan`` and ``ninf`` are left out so that the
divergence guards (``x != x``, ``abs(x) > bound``) keep working.

Every kernel is compiled with ``cache=True`` so that a second run loads machine code from
``__pycache__`` instead of compiling (about 3.5 s per parallel signature on 2 cores).
"""
from __future__ import annotations

import numba

#: LLVM fast-math flags used by every kernel (no ``nnan``/``ninf``: NaN guards must work).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Options for serial helpers inlined into kernels.
SERIAL = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")

#: Options for the parallel ensemble kernels (``prange`` over replicas).
PARALLEL = dict(SERIAL, parallel=True)


def jit(fn=None, **extra):
    """``numba.njit`` with the project's serial options (plus ``extra``)."""
    opts = dict(SERIAL, **extra)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def pjit(fn=None, **extra):
    """``numba.njit`` with the project's parallel options (plus ``extra``)."""
    opts = dict(PARALLEL, **extra)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)
