"""Activation functions by runtime code, with first and second derivatives.

Codes (``langevin_nn.bulk.activations`` owns the names): 0 identity, 1 tanh, 2 sigmoid, 3 erf,
4 relu, 5 linear ``p x + q``, 6 quadratic ``p x^2 + q x + r``, 7 softplus.
Convention at the relu kink: relu'(0) = 0 and relu'' = 0 everywhere (the distributional delta
at 0 is dropped), so finite-difference checks are made away from x = 0.

Hot path
--------
``act_vec`` applies one layer's activation to a row of values with the code dispatched
*once* per row (``act_rows``: a 2-d block, row by row): each code's branch is a plain loop that
LLVM vectorises (no calls, no branches inside). ``act_fwd`` (one value) is kept for callers that
work element by element.

tanh without libm
-----------------
libm's ``tanh`` is a scalar call, so a loop that calls it never vectorises. ``tanh_d`` computes
``tanh x`` and ``tanh' x = sech^2 x`` branch-free from one exponential of ``y = -2|x|``:

* ``y = k log 2 + r``, ``k = rint(y / log 2)``, ``|r| <= log(2) / 2``, with the two-part
  ``log 2`` of fdlibm (``k * LN2_HI`` is exact for ``|k| < 2**21``);
* ``q = e^r - 1 = r + r^2 P(r)`` with the Taylor polynomial to degree 13 (truncation below
  ``1.2e-17`` relative on ``|r| <= 0.347``);
* ``em = e^y - 1 = (2^k - 1) + 2^k q`` (no cancellation: ``2^k - 1`` is exact) and
  ``u = e^y = 2^k (1 + q)``, scaled in two halves so that results in the subnormal range are
  rounded once;
* ``tanh|x| = -em / (1 + u)`` and ``sech^2 x = 4 u / (1 + u)^2``, then the sign of ``x``.

Both are accurate to a few ulp over the whole line (tests: <= 4 ulp for tanh, <= 8 for
sech^2, against long double): for tiny ``|x|`` ``em = -2|x|`` nearly to the last bit, so
``tanh x`` is within 1 ulp of ``x`` (and equal to it for subnormal ``x``); the derivative is computed from ``u``, not as ``1 - t^2``, so it
keeps its relative accuracy where ``1 - t^2`` cancels (``|x| > 5``) down to the subnormal range
(``|x|`` up to 373; beyond, ``|x|`` is clamped to 373, where sech^2 is the smallest subnormal).
NaN propagates (the divergence guards rely on it); ``tanh(+-inf) = +-1``.

These helpers are compiled without ``reassoc`` (``EXACT``): reassociation would fold the
two-part ``log 2`` into one constant. They are small, so LLVM inlines them into the loops of
``act_vec`` and vectorises the result (instruction-level fast-math flags survive inlining).
"""
from __future__ import annotations

import math

import numpy as np

from numba import types as _types
from numba.extending import overload as _overload

from .convert import f2i
from .options import EXACT, NOREF, disjoint_arrays, jit, wide_vectors

IDENTITY, TANH, SIGMOID, ERF, RELU, LINEAR, QUADRATIC, SOFTPLUS = range(8)
_TWO_OVER_SQRT_PI = 1.1283791670955126

# log 2 in two parts (fdlibm e_exp.c): LN2_HI has 21 trailing zero bits.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
#: |x| beyond which sech^2 x rounds to 0 or the smallest subnormal (4 e^-746 = 4.1e-324).
TANH_CLAMP = 373.0
# 1/n! for n = 2..13 (e^r - 1 = r + r^2 (1/2 + r/6 + ...)).
_E2 = 1.0 / 2.0
_E3 = 1.0 / 6.0
_E4 = 1.0 / 24.0
_E5 = 1.0 / 120.0
_E6 = 1.0 / 720.0
_E7 = 1.0 / 5040.0
_E8 = 1.0 / 40320.0
_E9 = 1.0 / 362880.0
_E10 = 1.0 / 3628800.0
_E11 = 1.0 / 39916800.0
_E12 = 1.0 / 479001600.0
_E13 = 1.0 / 6227020800.0


@jit(fastmath=EXACT)
def _pow2(k):
    """2.0**k for an int64 k in [-1022, 1023] (bit construction, vectorisable)."""
    return np.int64((k + 1023) << 52).view(np.float64)


@jit(fastmath=EXACT)
def tanh_d(x):
    """``(tanh x, sech^2 x)`` in float64, branch-free and libm-free (see module docstring)."""
    x = np.float64(x)
    a = abs(x)
    a = TANH_CLAMP if a > TANH_CLAMP else a       # NaN stays NaN
    y = -2.0 * a
    kf = np.rint(y * _INV_LN2)                     # in [-1074, 0]
    r = (y - kf * _LN2_HI) - kf * _LN2_LO
    z = r * r
    # Estrin-like split for a shorter dependency chain
    p_lo = _E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * (_E6 + r * _E7))))
    p_hi = _E8 + r * (_E9 + r * (_E10 + r * (_E11 + r * (_E12 + r * _E13))))
    z3 = z * z * z
    q = r + z * (p_lo + z3 * p_hi)
    k = f2i(kf)                                    # AVX2: no vector cvt
    kc = k if k > -60 else np.int64(-60)
    sk = _pow2(kc)
    em = (sk - 1.0) + sk * q                       # e^y - 1
    k1 = k >> 1
    u = (_pow2(k1) * (1.0 + q)) * _pow2(k - k1)    # e^y, one rounding in the subnormal range
    rc = 1.0 / (1.0 + u)
    t = -em * rc
    d = (4.0 * u) * (rc * rc)
    return math.copysign(t, x), d


# float32: log 2 in two parts (FreeBSD e_expf.c: LN2_HI_F has 9 trailing zero bits, so
# k * LN2_HI_F is exact for |k| < 512), 1/n! for n = 2..8 (truncation below 1.5e-8 relative
# on |r| <= 0.347, a quarter of a float32 rounding).
_F32 = np.float32
_LN2_HI_F = _F32(6.9314575195e-01)   # 0x3f317200
_LN2_LO_F = _F32(1.4286067653e-06)   # 0x35bfbe8e
_INV_LN2_F = _F32(1.4426950216e+00)
#: Clamp of |x| in float32: beyond it tanh x rounds to 1 and sech^2 x is below 3e-45 (two
#: subnormal spacings; 4 e^-105 = 1e-45).
TANH_CLAMP_F = _F32(52.5)
_E2F, _E3F, _E4F, _E5F = _F32(_E2), _F32(_E3), _F32(_E4), _F32(_E5)
_E6F, _E7F, _E8F = _F32(_E6), _F32(_E7), _F32(_E8)
_I23 = np.int32(23)
_I127 = np.int32(127)
_KMIN_F = np.int32(-30)
_SIGN_F = np.int32(-2147483648)


@jit(fastmath=EXACT)
def _pow2_32(k):
    """2.0**k in float32 for an int32 k in [-126, 127] (bit construction, vectorisable)."""
    return np.int32((k + _I127) << _I23).view(np.float32)


@jit(fastmath=EXACT)
def tanh_d32(x):
    """``tanh_d`` in float32 arithmetic at the float32 vector width: the same reduction,
    ``e^r - 1`` by its Taylor polynomial to degree 8, the same two-half scaling into the
    subnormal range and clamp (at 52.5). Within a few float32 ulp of the exact values (tests:
    <= 4 for tanh, <= 8 for sech^2); the activations of float32 runs."""
    x = np.float32(x)
    a = abs(x)
    a = TANH_CLAMP_F if a > TANH_CLAMP_F else a    # NaN stays NaN
    y = _F32(-2.0) * a
    kf = np.rint(y * _INV_LN2_F)                   # in [-152, 0]
    r = (y - kf * _LN2_HI_F) - kf * _LN2_LO_F
    p = _E2F + r * (_E3F + r * (_E4F + r * (_E5F + r * (_E6F + r * (_E7F + r * _E8F)))))
    q = r + (r * r) * p
    k = np.int32(kf)
    kc = k if k > _KMIN_F else _KMIN_F
    sk = _pow2_32(kc)
    em = (sk - _F32(1.0)) + sk * q                 # e^y - 1
    k1 = k >> np.int32(1)
    u = (_pow2_32(k1) * (_F32(1.0) + q)) * _pow2_32(k - k1)
    rc = _F32(1.0) / (_F32(1.0) + u)
    t = -em * rc
    d = (_F32(4.0) * u) * (rc * rc)
    ts = np.int32(np.float32(t).view(np.int32) | (np.float32(x).view(np.int32) & _SIGN_F))
    return ts.view(np.float32), d


def tanh_d_as(proto, x):
    """``tanh_d32(x)`` if the array ``proto`` is float32, else ``tanh_d(x)`` (chosen at compile
    time inside kernels, by the overload below)."""
    if proto.dtype == np.float32:
        return tanh_d32(x)
    return tanh_d(x)


@_overload(tanh_d_as, inline="always")
def _ol_tanh_d_as(proto, x):
    if proto.dtype == _types.float32:
        return lambda proto, x: tanh_d32(x)
    return lambda proto, x: tanh_d(x)


@jit
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@jit
def act_fwd(code, p, q, r, x):
    """Return ``(sigma(x), sigma'(x))`` for activation ``code`` with coefficients p, q, r."""
    if code == TANH:
        return tanh_d(x)
    if code == IDENTITY:
        return x, 1.0
    if code == RELU:
        if x > 0.0:
            return x, 1.0
        return 0.0 * x, 0.0
    if code == LINEAR:
        return p * x + q, p
    if code == QUADRATIC:
        return (p * x + q) * x + r, 2.0 * p * x + q
    if code == SIGMOID:
        s = _sigmoid(x)
        return s, s * (1.0 - s)
    if code == ERF:
        return math.erf(x), _TWO_OVER_SQRT_PI * math.exp(-x * x)
    # SOFTPLUS: log(1 + e^x), computed without overflow
    s = _sigmoid(x)
    return max(x, 0.0) + math.log1p(math.exp(-abs(x))), s


@jit(**NOREF)
def act_vec(code, p, q, r, h, d):
    """In place on 1-d arrays of one length: ``h[j] <- sigma(h[j])``, ``d[j] <- sigma'(h[j])``;
    one dispatch, each branch a vectorisable loop; tanh in ``h``'s precision (``tanh_d32`` for
    float32). h and d must not overlap."""
    wide_vectors()
    disjoint_arrays()
    n = h.size
    if code == TANH:
        for j in range(n):
            t, dt = tanh_d_as(h, h[j])
            h[j] = t
            d[j] = dt
    elif code == IDENTITY:
        for j in range(n):
            d[j] = 1.0
    elif code == RELU:
        for j in range(n):
            x = h[j]
            pos = x > 0.0
            h[j] = x if pos else 0.0 * x
            d[j] = 1.0 if pos else 0.0
    elif code == LINEAR:
        for j in range(n):
            h[j] = p * h[j] + q
            d[j] = p
    elif code == QUADRATIC:
        for j in range(n):
            x = h[j]
            h[j] = (p * x + q) * x + r
            d[j] = 2.0 * p * x + q
    else:  # sigmoid, erf, softplus: libm, element by element
        for j in range(n):
            hv, dv = act_fwd(code, p, q, r, h[j])
            h[j] = hv
            d[j] = dv


@jit(**NOREF)
def act_rows(code, p, q, r, H, D, r0, r1, c0, c1):
    """In place on a 2-d block: ``H[i, j] <- sigma(H[i, j])``, ``D[i, j] <- sigma'(H[i, j])``
    for rows ``r0 <= i < r1`` and columns ``c0 <= j < c1``: ``act_vec`` on each row's slice
    (so that the index is a bare ``range`` variable and Numba's negative-index wraparound folds
    away)."""
    for i in range(r0, r1):
        act_vec(code, p, q, r, H[i, c0:c1], D[i, c0:c1])


@jit
def act_d2(code, p, q, r, x):
    """Second derivative ``sigma''(x)`` (mean-field theory and BBD checks)."""
    if code == TANH:
        t, d = tanh_d(x)
        return -2.0 * t * d
    if code == QUADRATIC:
        return 2.0 * p
    if code == SIGMOID or code == SOFTPLUS:
        s = _sigmoid(x)
        d = s * (1.0 - s)
        if code == SOFTPLUS:
            return d
        return d * (1.0 - 2.0 * s)
    if code == ERF:
        return -2.0 * x * _TWO_OVER_SQRT_PI * math.exp(-x * x)
    return 0.0  # identity, linear, relu
