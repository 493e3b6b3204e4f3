"""Stream ids of the randomness contract and a NumPy twin of the Philox generator.

Every random number of a run is a pure function of ``(seed, stream, replica, step, counter)``
(``docs/architecture.md``, "Randomness contract"), computed by Philox4x32-10: J. K. Salmon,
M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3",
Proceedings of SC11 (2011), https://doi.org/10.1145/2063384.2063405.

* key ``(k0, k1) = (seed & 0xffffffff, seed >> 32)`` (seed: unsigned 64-bit integer);
* counter ``(c0, c1, c2, c3) = (counter, step & 0xffffffff, (step >> 32) & 0xffff | stream << 16,
  replica)``: ``step < 2**48``, ``stream < 2**16``, ``replica < 2**32``, ``counter < 2**32``;
* block ``c`` (four 32-bit words) gives Gaussians ``4c .. 4c + 3`` by Box-Muller, a pair from the
  words ``(x0, x1)`` and a pair from ``(x2, x3)``;
* uniform index ``i`` in ``[0, P)`` is word ``i % 4`` of block ``i // 4`` mapped by
  ``(x * P) >> 32``.

The kernels (``langevin_nn.kernels.philox``) compute the same things inside Numba loops. This
module is the reference: pure NumPy, vectorised over counters, used by reference implementations
and tests. Words and indices agree with the kernels bit for bit; Gaussians agree to round-off
(the kernels may fuse multiply-adds), because both use the same libm-free polynomial arithmetic
(see the kernel module's docstring): fdlibm's minimax kernels for ``log`` on
``[sqrt(1/2), sqrt(2))`` and ``sin``/``cos`` on ``[-pi/4, pi/4]`` after exact reductions.
Since ``u1 >= 2**-32``, ``|g| <= sqrt(64 log 2) = 6.66`` (the kernel module's docstring says what
that truncation costs: nothing measurable).
"""
from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- stream ids
# One definition, in the kernels' leaf module (docs/architecture.md has the table).
from .kernels.streams import (  # noqa: E402
    BATCH, INIT, NOISE, ONLINE_LABEL, ONLINE_X, PROBE_LABEL, PROBE_X, TEACHER, TRAIN_LABEL,
    TRAIN_X,
)

#: Stream name -> id, as in the table of ``docs/architecture.md``.
STREAMS = {
    "INIT": INIT,
    "BATCH": BATCH,
    "NOISE": NOISE,
    "ONLINE_X": ONLINE_X,
    "ONLINE_LABEL": ONLINE_LABEL,
    "TEACHER": TEACHER,
    "TRAIN_X": TRAIN_X,
    "TRAIN_LABEL": TRAIN_LABEL,
    "PROBE_X": PROBE_X,
    "PROBE_LABEL": PROBE_LABEL,
}

#: Streams drawn with replica 0 and step 0 (shared by all replicas).
SHARED_STREAMS = frozenset({TEACHER, TRAIN_X, TRAIN_LABEL, PROBE_X, PROBE_LABEL})

# --------------------------------------------------------------------------- constants
# One definition, in the kernel module: the Philox multipliers and key schedule, the uniform
# grids and the fdlibm coefficients (the twin re-implements the arithmetic, not the numbers).
from .kernels.philox import (  # noqa: E402
    A, B, M2LN2, Q, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, TWO_M32, _MASK32,
    _SQRT_HALF_BITS,
    C1_F, C2_F, C3_F, C4_F, LG1_F, LG2_F, LG3_F, LG4_F, LN2_HI_F, LN2_LO_F, S1_F, S2_F, S3_F, S4_F,
    TWO_M32_F, TWO_PI_M32_F, _SQRT_HALF_BITS_F,
)

#: Largest |g| of the Box-Muller transform: the radius at the smallest u1 = 2**-32.
GAUSS_MAX = math.sqrt(-2.0 * math.log(TWO_M32))
_U = np.uint64


def _horner(z, coeffs):
    p = np.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        p = p * z + c
    return p


# --------------------------------------------------------------------------- Philox4x32-10
def philox4x32_10(ctr, key):
    """Philox4x32-10 of many counters under one key.

    ``ctr``: unsigned integers of shape ``(4, n)`` (or ``(4,)``), the counter words ``c0..c3``;
    ``key``: ``(k0, k1)``. Words are taken modulo 2**32. Returns a ``uint64`` array of the shape
    of ``ctr`` holding the four output words (each below 2**32), the same as Random123's
    ``philox4x32_R(10, ctr, key)``.
    """
    ctr = np.asarray(ctr, dtype=np.uint64)
    if ctr.shape[0] != 4:
        raise ValueError(f"ctr must have shape (4, n), got {ctr.shape}")
    c0, c1, c2, c3 = (ctr[i] & _MASK32 for i in range(4))
    k0 = _U(int(key[0]) & 0xFFFFFFFF)
    k1 = _U(int(key[1]) & 0xFFFFFFFF)
    for r in range(10):
        if r:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> _U(32)) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _U(32)) ^ c3 ^ k1, p0 & _MASK32)
    return np.stack([c0, c1, c2, c3])


def _check(seed, stream, replica, step):
    seed, stream, replica, step = int(seed), int(stream), int(replica), int(step)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an unsigned 64-bit integer, got {seed}")
    if not 0 <= stream < 2**16:
        raise ValueError(f"stream must be in [0, 2**16), got {stream}")
    if not 0 <= replica < 2**32:
        raise ValueError(f"replica must be in [0, 2**32), got {replica}")
    if not 0 <= step < 2**48:
        raise ValueError(f"step must be in [0, 2**48), got {step}")
    return seed, stream, replica, step


def blocks(seed, stream, replica, step, counters):
    """Blocks ``counters`` (integers in ``[0, 2**32)``, any 1-d array-like) of
    ``(seed, stream, replica, step)``: ``uint64`` array of shape ``(4, len(counters))``."""
    seed, stream, replica, step = _check(seed, stream, replica, step)
    counters = np.asarray(counters).reshape(-1)
    if counters.size and (counters.min() < 0 or counters.max() >= 2**32):
        raise ValueError("counters must be in [0, 2**32)")
    counters = counters.astype(np.uint64)
    n = counters.size
    ctr = np.empty((4, n), dtype=np.uint64)
    ctr[0] = counters
    ctr[1] = step & 0xFFFFFFFF
    ctr[2] = ((step >> 32) & 0xFFFF) | (stream << 16)
    ctr[3] = replica
    return philox4x32_10(ctr, (seed & 0xFFFFFFFF, seed >> 32))


# --------------------------------------------------------------------------- log, sin, cos
def neg2log_u1(xu):
    """``-2 log u1`` for ``u1 = (xu + 1) 2**-32`` (``xu``: 32-bit words) without libm (the
    kernels' arithmetic): ``xu + 1 = m 2**k``, ``m`` in ``[sqrt(1/2), sqrt(2))``,
    ``s = (m - 1)/(m + 1)``, ``-2 log u1 = (k - 32) (-2 log 2) + s Q(s**2)``."""
    v = (np.asarray(xu, dtype=np.uint64) & _MASK32).astype(np.int64) + 1
    iv = v.astype(np.float64).view(np.int64)
    k = (iv - _SQRT_HALF_BITS) >> 52
    f = (iv - (k << 52)).view(np.float64) - 1.0
    s = f / (2.0 + f)
    return (k - 32).astype(np.float64) * M2LN2 + s * _horner(s * s, Q)


def cos_sin_turn(xa):
    """``(cos(2 pi u2), sin(2 pi u2))`` for ``u2 = xa 2**-32`` (``xa``: 32-bit words) by the
    kernels' arithmetic: exact reduction to the nearest quarter turn ``q``, ``t`` in ``[-1, 1]``
    with angle ``q pi/2 + t pi/4``, minimax polynomials."""
    a = (np.asarray(xa, dtype=np.uint64) & _MASK32).astype(np.int64)
    q = (a + (1 << 29)) >> 30
    t = (a - (q << 30)).astype(np.float64) * 2.0**-29
    z = t * t
    sn = t * _horner(z, A)
    cs = 1.0 + z * _horner(z, B)
    swap = (q & 1) == 1
    a = np.where(swap, sn, cs)
    b = np.where(swap, cs, sn)
    a = np.where(((q + 1) & 2) != 0, -a, a)        # cos: quadrants 1, 2
    b = np.where((q & 2) != 0, -b, b)              # sin: quadrants 2, 3
    return a, b


def _bm(xu, xa):
    r = np.sqrt(neg2log_u1(xu))
    c, s = cos_sin_turn(xa)
    return r * c, r * s


def _bm32(xu, xa):
    """The kernels' float32 pair (``philox._bm32``), in NumPy float32 arithmetic."""
    f32 = np.float32
    xu = (xu & _MASK32).astype(np.uint32)
    xa = (xa & _MASK32).astype(np.uint32)
    uf = xu.astype(f32) * TWO_M32_F + TWO_M32_F
    ix = uf.view(np.int32)
    e = (ix - _SQRT_HALF_BITS_F) >> 23
    fb = (ix - (e << 23)).view(f32) - f32(1.0)
    f = np.where(e == 0, -((~xu).astype(f32) * TWO_M32_F), fb)
    s = f / (f32(2.0) + f)
    z = s * s
    r = z * _horner(z, (LG1_F, LG2_F, LG3_F, LG4_F))
    fk = e.astype(f32)
    rad = np.sqrt(f32(-2.0) * (fk * LN2_HI_F + ((s + s) + (s * r + fk * LN2_LO_F))))
    a = xa.astype(np.int64)
    q = (a + (1 << 29)) >> 30
    x = (a - (q << 30)).astype(np.int32).astype(f32) * TWO_PI_M32_F
    z = x * x
    sn = x + (x * z) * _horner(z, (S1_F, S2_F, S3_F, S4_F))
    cs = (f32(1.0) - f32(0.5) * z) + (z * z) * _horner(z, (C1_F, C2_F, C3_F, C4_F))
    swap = (q & 1) == 1
    c = np.where(swap, sn, cs)
    d = np.where(swap, cs, sn)
    c = np.where(((q + 1) & 2) != 0, -c, c)
    d = np.where((q & 2) != 0, -d, d)
    return rad * c, rad * d


def box_muller(words, dtype=np.float64):
    """Gaussians from blocks: ``words`` of shape ``(4, n)`` -> ``(g0, g1, g2, g3)``, each ``(n,)``:
    ``(g0, g1)`` from the words ``x0`` (radius) and ``x1`` (angle), ``(g2, g3)`` from ``x2, x3``.
    ``dtype=np.float32``: the float32 transform of the thermal noise of float32 runs."""
    x0, x1, x2, x3 = (np.asarray(w, dtype=np.uint64) & _MASK32 for w in words)
    bm = _bm32 if np.dtype(dtype) == np.float32 else _bm
    g0, g1 = bm(x0, x1)
    g2, g3 = bm(x2, x3)
    return g0, g1, g2, g3


# --------------------------------------------------------------------------- draws
def gaussians(seed, stream, replica, step, n, offset=0, dtype=np.float64):
    """Gaussians number ``offset .. offset + n - 1`` of ``(seed, stream, replica, step)`` as an
    array of shape ``(n,)``; ``offset >= 0`` may be any integer. ``dtype=np.float32`` gives the
    float32 transform (the thermal noise of float32 runs, ``philox.fill_noise``)."""
    n, offset = int(n), int(offset)
    if offset < 0 or n < 0:
        raise ValueError(f"offset and n must be non-negative, got {offset}, {n}")
    c0 = offset // 4
    nb = (offset + n + 3) // 4 - c0
    counters = np.arange(c0, c0 + nb, dtype=np.uint64)
    g = box_muller(blocks(seed, stream, replica, step, counters), dtype)
    out = np.stack(g, axis=1).reshape(-1)
    skip = offset - 4 * c0
    return out[skip:skip + n]


def indices(seed, stream, replica, step, n, P):
    """Uniform indices number ``0 .. n - 1`` in ``[0, P)`` of ``(seed, stream, replica, step)``
    (``0 < P < 2**32``): int64 array of shape ``(n,)``; index ``i`` is word ``i % 4`` of block
    ``i // 4`` mapped by ``(x * P) >> 32``."""
    n, P = int(n), int(P)
    if not 0 < P < 2**32:
        raise ValueError(f"P must be in (0, 2**32), got {P}")
    nb = (n + 3) // 4
    w = blocks(seed, stream, replica, step, np.arange(nb, dtype=np.uint64))
    words = w.T.reshape(-1)[:n]
    return ((words * _U(P)) >> _U(32)).astype(np.int64)
