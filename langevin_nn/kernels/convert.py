"""Exact conversions between int64 and float64 that vectorise on AVX2.

x86 has no vector int64 <-> float64 conversion before AVX-512DQ: in a vectorised loop LLVM
scalarises ``np.float64(v)`` and ``np.int64(x)`` (a lane extract, ``vcvtsi2sd`` or
``vcvttsd2si`` and an insert per element). Within ``|v| < 2**51`` both are an integer addition
of the bits of a magic float and one float operation: the float64 with bits ``v + bits(1.5 *
2**52)`` is exactly ``1.5 * 2**52 + v`` (the spacing there is 1). Used by the Box-Muller
transform (``philox``) and by ``tanh`` (``activations``); docs/performance.md has the numbers.
"""
from __future__ import annotations

import numpy as np

from .options import EXACT, jit

#: 1.5 * 2**52 as a float64 and its bit pattern (``i2f``, ``f2i``).
_MAGIC = 6755399441055744.0
_MAGIC_BITS = np.int64(0x4338000000000000)
#: The same for ``v 2**-29``: the spacing of float64 at 1.5 * 2**23 is 2**-29 (``i2f_m29``).
_MAGIC29 = 1.5 * 2.0 ** 23
_MAGIC29_BITS = np.int64(np.array([_MAGIC29]).view(np.int64)[0])


@jit(fastmath=EXACT)
def i2f(v):
    """``float64(v)`` for an integer ``|v| < 2**51``, exactly, by an integer addition and one
    float subtraction. Compiled without ``reassoc`` and left to LLVM's inliner: with ``reassoc``
    the subtraction may be distributed over a following product, which is not exact."""
    return np.int64(np.int64(v) + _MAGIC_BITS).view(np.float64) - _MAGIC


@jit(fastmath=EXACT)
def f2i(v):
    """``int64(v)`` for an integer-valued float64 ``|v| < 2**51``, exactly: ``i2f`` backwards,
    one float addition of ``_MAGIC`` and an integer subtraction of its bits (in the vectorised
    tanh loop ``np.int64`` took four ``vcvttsd2si`` with their extracts and inserts, 14 of its 75
    instructions). No product precedes the addition, so ``contract`` cannot fuse it into
    something inexact."""
    return np.int64(np.float64(v + _MAGIC).view(np.int64) - _MAGIC_BITS)


@jit(fastmath=EXACT)
def i2f_m29(v):
    """``float64(v) * 2**-29`` for an integer ``|v| < 2**51``, exactly: ``i2f`` with the magic
    constant ``1.5 * 2**23``, where the float64 spacing is ``2**-29`` (the scaling is free)."""
    return np.int64(np.int64(v) + _MAGIC29_BITS).view(np.float64) - _MAGIC29
