"""Philox4x32-10 counter-based random numbers for the Numba kernels.

Every random number of a run is a pure function of ``(seed, stream, replica, step, counter)``
(see "Randomness contract" in ``docs/architecture.md``), computed by the Philox4x32-10 bijection
of Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC11 (2011),
https://doi.org/10.1145/2063384.2063405 (the generator of the Random123 library):

* key ``(k0, k1) = (seed & 0xffffffff, seed >> 32)``;
* counter ``(c0, c1, c2, c3) = (counter, step & 0xffffffff, (step >> 32) & 0xffff | stream << 16,
  replica)``;
* one block = four 32-bit words ``x0..x3``; block ``c`` gives Gaussians ``4c .. 4c + 3``;
  uniform index ``i`` in ``[0, P)`` is word ``i % 4`` of block ``i // 4`` mapped by
  ``(x * P) >> 32``.

``langevin_nn.rng`` holds a NumPy twin of everything here (same words and indices bit for bit,
Gaussians to round-off); the tests check both against Random123's known-answer vectors.

Integer arithmetic
------------------
All integer work is done in ``np.uint64`` with ``np.uint64`` constants: Numba types mixed
``int64``/``uint64`` arithmetic as ``float64``, which silently destroys the low bits. The 32-bit
words are held in ``uint64`` values below ``2**32``; the 32x32 -> 64-bit products of a Philox round
then fit exactly, and LLVM lowers them to ``vpmuludq`` when it vectorises. The float32 transform
(``_bm32``) is the exception: its integer work is on 32-bit quantities, and Numba widens int32 and
uint32 arithmetic to 64 bits, so every result there is cast back to 32 bits at once (LLVM then
narrows the operation, and the loop keeps 16 lanes per 512-bit vector instead of converting to
pairs of 8-lane int64 vectors and back).

Gaussians (Box-Muller without libm)
-----------------------------------
Per block, two Box-Muller pairs, each from two words: ``u1 = (x0 + 1) 2**-32`` in ``(0, 1]``,
``u2 = x1 2**-32`` in ``[0, 1)`` and

    g0 = r cos(2 pi u2),   g1 = r sin(2 pi u2),   r = sqrt(-2 log u1),

and ``g2, g3`` likewise from ``(x2, x3)``. The arithmetic is float64 (accurate to about 1e-16
absolute). The thermal noise of float32 runs (``fill_noise``, ``noisy_axpby`` on float32 arrays)
uses ``box_muller32`` instead: the same words, the same reductions, float32 polynomials and
float32 ``sqrt`` (within 8 float32 ulp of the float64 Gaussian), at the float32 vector width;
``fill_gaussian`` (initial parameters, data) is float64 for every run.

``log`` and ``sin``/``cos`` are *not* libm calls: Numba has no vector math library (no SVML), so a
libm call keeps a loop scalar and caps the rate near 0.07e9 Gaussians/s per core. Instead

* ``neg2log_u1``: ``v = x0 + 1`` is an exact float64 (``i2f``), split by bit manipulation as
  ``v = m 2**k`` with ``m`` in ``[sqrt(1/2), sqrt(2))``; then ``-2 log u1 = (k - 32) (-2 log 2)
  + s Q(s**2)``, ``s = (m - 1)/(m + 1)``, ``|s| <= 0.1716``, where ``Q(z) = -4 - 2 z R(z)`` is
  the degree-7 minimax ``R`` of fdlibm's ``e_log.c`` (approximation error below ``2**-58.45``)
  with the factor ``-2`` folded into its coefficients (exactly: a power of two). ``-2 log 2``
  is one float64 (relative rounding error 8e-17): where ``k - 32 = -1`` and ``m`` is near
  ``sqrt(2)`` the two terms nearly cancel and that error reaches an ulp of the result. Within 3
  ulp of the exact value (the tests; 2.05 ulp at most over 4e6 words, near ``u1 = 0.7``), and
  exactly 0 at ``u1 = 1``.
* ``cos_sin_turn``: the word ``x1`` is split exactly, in integer arithmetic, into the nearest
  quarter turn ``q`` (0..4) and a remainder ``|i| <= 2**29``; ``t = i 2**-29`` in ``[-1, 1]``
  (exact, by ``i2f_m29``) so the angle is ``q pi/2 + t pi/4``, and fdlibm's minimax kernels
  ``k_sin.c`` and ``k_cos.c`` (approximation errors below ``2**-58``) with the powers of ``pi/4``
  folded into their coefficients give ``sin(pi/4 t) = t A(t**2)`` and ``cos(pi/4 t) = 1 + t**2
  B(t**2)``; a branch-free swap and sign-bit flips map quadrant ``q`` back. Absolute error
  below 3e-16 against a long-double reference (1.3e-16 measured); the four quarter turns exact.

  Folding the constants (``-2``, ``2 pi 2**-32``, the split ``1 - z/2 + z**2 C(z)``) into the
  coefficients cut the transform from 31 to 27 multiplications and fused multiply-adds a pair,
  with the same accuracy (max error of a Gaussian against a long-double transform 1.08e-15,
  before 1.10e-15); the float64 transform got 7 % faster on a Zen 4 core (docs/performance.md).
* ``sqrt`` is a single vectorisable instruction and is used as is.

The hot helpers are compiled with ``inline="always"`` (Numba-IR inlining): otherwise LLVM keeps
``philox4x32_10`` and ``box_muller`` as calls (too large for its inliner, and cached helpers are
linked as object code), and a call in a loop body prevents vectorisation. After inlining, the code
is straight-line (selects, no branches, no calls), so loops over counters vectorise.

Two more things decide whether those loops vectorise well (docs/performance.md):

* loops index slices with the bare ``range`` variable (``o = out[2 * c0:...]; o[2 * k]``), never
  ``out[2 * (c0 + k)]``: Numba's negative-index wraparound on an index it cannot prove
  non-negative makes the address non-affine, and LLVM then emits gathers and scatters;
* the kernels call ``options.wide_vectors()``, which lets LLVM use 512-bit registers in that
  function only (it prefers 256-bit ones on AVX-512 CPUs); the Philox rounds are integer work
  (``vpmuludq``, shifts, ``vpternlogq``) that scales with the vector width.

Throughput: a Philox block costs about as much as one Box-Muller pair (the rounds are 20
``vpmuludq`` and 20 shifts per vector of blocks, on few vector ports), so each block gives four
Gaussians (two pairs from 32-bit uniforms) rather than two (53-bit uniforms). ``_quads`` draws the
words of 512 blocks in one vectorised pass (``_words``) and transforms them after it
(``_transform``: six loops, for each pair the log's quotient, the rest of the log, then the
square root with the angle; the loops are the same for both precisions, their bodies chosen at
compile time by the buffers' dtype): apart, each loop keeps its constants and temporaries in
registers (one fused loop spilled on AVX2's 16 vector registers), its dependency chain is short
enough for the core to keep several iterations in flight, and the float32 transform runs at the
float32 width.
Integer -> float conversions go through ``i2f`` (AVX2 has no vector int64 -> float64 conversion;
LLVM scalarised each one). Measured rates are in ``docs/performance.md`` (float64 Gaussians/s per
core: 0.34-0.40e9 on a Zen 3 core, AVX2, with the float64 transform in four loops, 0.41-0.50e9 in six;
about 0.75e9 on a Sapphire Rapids, 0.7-0.9e9 on a Zen 4 (512-bit operations in two halves; the
folded transform, the others before it) and 1.1-1.4e9 on a Zen 5 core, AVX-512). On the AVX-512
cores the float64 transform is bound by its multiplications and fused multiply-adds, not by the
division and square root: on a Zen 4 core it was no faster without the division and 9 % faster
without both. On a Zen 3 core the loops are bound by the length of their dependency chains (the
division's and square root's latencies among them) more than by any unit: moving the division to a
loop of its own and the square root into the angle loop made the float64 transform 15 % faster,
though the exponent split is done twice, and the float32 transform 10-14 % faster (0.69-0.74 ->
0.62-0.64 ns a Gaussian, the same bits on 4M Gaussians).

The noise of the overdamped and heavy-ball updates is never stored as an array:
``noisy_axpby`` generates 512 blocks at a time into four buffers (16 KB, in L1) and consumes
them in the update loop, ``y <- a y + b x + scale * xi``. That loop is written with explicit
vectors (``simd``): V blocks' Gaussians are loaded from the four buffers and interleaved into
their order in registers (``vload_interleaved4``), so that y and x are read and written in
order; left to LLVM, the loop de-interleaved y and x and interleaved the result back (36
shuffles per 32 elements against 8), and the float64 update of (256, 32, 8, 8) went from
14.3 to 13.8 us a step (float32 9.9 to 9.3 us). Each operation is still rounded once, with no
fused multiply-add: the bits of the scalar formula (tested). The sum of squares the caller's
finiteness check needs is taken in the same loop, in vector lanes (any order will do), which
spares a pass over y (13.7 -> 12.9 us a step of (256, 32, 8, 8)).

Tails: since ``u1 >= 2**-32``, ``|g| <= r_max = sqrt(64 log 2) = 6.660``: the radius of a pair
exceeds 6.66 with probability ``2**-32 = 2.3e-10`` in a true Gaussian pair, and those pairs get
radii in ``[6.55, 6.66]`` instead (the largest values of ``-2 log u1`` on the grid). The variance
lost per number is ``int_{r_max}^inf (r**2 - r_max**2) r exp(-r**2/2) dr / 2 = exp(-r_max**2/2)
= 2.3e-10``; some 4e19 numbers would be needed to see it at one standard error, far beyond any
run (``tests/test_rng.py`` checks the radius bound and the variance). The rest of the
distribution is exact Box-Muller of the discretised uniforms (the grid of ``u1`` has spacing
``2**-32``, the angle ``2 pi 2**-32``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange
from numba import types as _types
from numba.extending import overload as _overload

from .convert import i2f, i2f_m29
from .options import NOREF, jit, pjit, wide_vectors
from .simd import (vadd, vfirst, vfma, vload, vload_interleaved4, vmul, vsplat, vstore, vsum1,
                   vwidth, vzeros_4v)

_U = np.uint64

#: Philox4x32 multipliers and Weyl (key schedule) constants (Salmon et al. 2011, Random123).
PHILOX_M0 = _U(0xD2511F53)
PHILOX_M1 = _U(0xCD9E8D57)
PHILOX_W0 = _U(0x9E3779B9)
PHILOX_W1 = _U(0xBB67AE85)

_MASK32 = _U(0xFFFFFFFF)
_MASK16 = _U(0xFFFF)
_SH32 = _U(32)
_SH16 = _U(16)
_SH11 = _U(11)
_ONE = _U(1)
_ONE_I = np.int64(1)
_THIRTY_TWO = np.int64(32)

#: Blocks (four Gaussians each) per buffer pass of :func:`fill_gaussian` and :func:`noisy_axpby`.
_CHUNK = 512
#: Length of the scratch :func:`noisy_axpby` and :func:`fill_noise` need, in elements of the
#: output's dtype: four Gaussian buffers of ``_CHUNK`` and the (4, ``_CHUNK``) uint32 words
#: (``_quad_views``).
NOISE_BUF = 8 * _CHUNK

#: Stream used by :func:`gaussian_throughput_kernel` (NOISE in the table of the contract).
_BENCH_STREAM = 3

# log(1 + f) = 2 s + s R(s^2), s = f / (2 + f): minimax R = z (LG1 + LG2 z + ... + LG7 z^6) on
# |s| <= 0.1716, |error| < 2**-58.45 (fdlibm e_log.c, Lg1..Lg7).
LG1 = 6.666666666666735130e-01        # 0x3FE55555 55555593
LG2 = 3.999999999940941908e-01        # 0x3FD99999 9997FA04
LG3 = 2.857142874366239149e-01        # 0x3FD24924 94229359
LG4 = 2.222219843214978396e-01        # 0x3FCC71C5 1D8E78AF
LG5 = 1.818357216161805012e-01        # 0x3FC74664 96CB03DE
LG6 = 1.531383769920937332e-01        # 0x3FC39A09 D078C69F
LG7 = 1.479819860511658591e-01        # 0x3FC2F112 DF3E5244
# sin x = x + x^3 (S1 + x^2 S2 + ... + x^10 S6) on |x| <= pi/4, |sin x / x - poly| < 2**-58
# (fdlibm k_sin.c).
S1 = -1.66666666666666324348e-01      # 0xBFC55555 55555549
S2 = 8.33333333332248946124e-03       # 0x3F811111 1110F8A6
S3 = -1.98412698298579493134e-04      # 0xBF2A01A0 19C161D5
S4 = 2.75573137070700676789e-06       # 0x3EC71DE3 57B1FE7D
S5 = -2.50507602534068634195e-08      # 0xBE5AE5E6 8A2B9CEB
S6 = 1.58969099521155010221e-10       # 0x3DE5D93A 5ACFD57C
# cos x = 1 - x^2/2 + x^4 (C1 + x^2 C2 + ... + x^10 C6) on |x| <= pi/4, error < 2**-58
# (fdlibm k_cos.c).
C1 = 4.16666666666666019037e-02       # 0x3FA55555 5555554C
C2 = -1.38888888888741095749e-03      # 0xBF56C16C 16C15177
C3 = 2.48015872894767294178e-05       # 0x3EFA01A0 19CB1590
C4 = -2.75573143513906633035e-07      # 0xBE927E4F 809C52AD
C5 = 2.08757232129817482790e-09       # 0x3E21EE9E BDB4B1C4
C6 = -1.13596475577881948265e-11      # 0xBDA8FAE9 BE8838D4

# The transform's polynomials, with the constant factors folded into the coefficients (module
# docstring): -2 log m = s Q(s^2), Q(z) = -4 - 2 z (LG1 + ... + LG7 z^6) (the factor -2 is a power
# of two: exact); for t in [-1, 1], sin(pi/4 t) = t A(t^2) and cos(pi/4 t) = 1 + t^2 B(t^2).
Q = (-4.0,) + tuple(-2.0 * c for c in (LG1, LG2, LG3, LG4, LG5, LG6, LG7))
_PI4 = math.pi / 4.0
A = tuple(c * _PI4 ** (2 * n + 1) for n, c in enumerate((1.0, S1, S2, S3, S4, S5, S6)))
B = tuple(c * _PI4 ** (2 * n + 2) for n, c in enumerate((-0.5, C1, C2, C3, C4, C5, C6)))
Q0, Q1, Q2, Q3, Q4, Q5, Q6, Q7 = Q
A0, A1, A2, A3, A4, A5, A6 = A
B1, B2, B3, B4, B5, B6, B7 = B
#: -2 log 2, rounded once (relative error 8e-17; near the cancellation of the two terms of
#: ``neg2log_u1`` it reaches an ulp of the result, module docstring).
M2LN2 = -2.0 * math.log(2.0)

#: float64 bit pattern of sqrt(1/2): mantissas are reduced to [sqrt(1/2), sqrt(2)).
_SQRT_HALF_BITS = np.int64(np.array([math.sqrt(0.5)]).view(np.int64)[0])
_SQRT_HALF_BITS_U = _U(_SQRT_HALF_BITS)
_SH52 = _U(52)
_EIGHTH_TURN = np.int64(1 << 29)      # half a quarter turn in units of 2**-32
_SIGN = 62                            # (2 << 62) is the float64 sign bit
#: 2**-32: spacing of the 32-bit uniforms of the Box-Muller transform.
TWO_M32 = 2.0 ** -32

#: Largest |g| that the Box-Muller transform can return (u1 >= 2**-32): sqrt(64 log 2) = 6.660.
GAUSS_MAX = math.sqrt(2.0 * 32.0 * math.log(2.0))


# --------------------------------------------------------------------------- Philox4x32-10
@jit(inline="always")
def _round(c0, c1, c2, c3, k0, k1):
    p0 = PHILOX_M0 * c0
    p1 = PHILOX_M1 * c2
    return ((p1 >> _SH32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _SH32) ^ c3 ^ k1, p0 & _MASK32)


@jit(inline="always")
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds: counter words ``c0..c3``, key words ``k0, k1`` (each taken
    modulo 2**32) -> tuple of four ``np.uint64`` words below 2**32 (Random123's
    ``philox4x32_R(10, ...)``)."""
    c0 = _U(c0) & _MASK32
    c1 = _U(c1) & _MASK32
    c2 = _U(c2) & _MASK32
    c3 = _U(c3) & _MASK32
    k0 = _U(k0) & _MASK32
    k1 = _U(k1) & _MASK32
    for _ in range(9):  # a constant trip count: LLVM unrolls it fully, and the counter loop
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)  # around it still vectorises
        k0 = (k0 + PHILOX_W0) & _MASK32
        k1 = (k1 + PHILOX_W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@jit(inline="always")
def block(seed, stream, replica, step, counter):
    """Block ``counter`` of ``(seed, stream, replica, step)``: four ``np.uint64`` words < 2**32.

    ``seed`` is an unsigned 64-bit integer (pass ``np.uint64``); ``step < 2**48``,
    ``stream < 2**16``, ``replica < 2**32``, ``counter < 2**32``."""
    s = _U(seed)
    st = _U(step)
    return philox4x32_10(_U(counter), st & _MASK32,
                         ((st >> _SH32) & _MASK16) | (_U(stream) << _SH16), _U(replica),
                         s & _MASK32, s >> _SH32)


# --------------------------------------------------------------------------- log, sin, cos
@jit(inline="always")
def _log_split(xu):
    """``(k, f)`` with ``xu + 1 = (1 + f) 2**k`` and ``1 + f`` in ``[sqrt(1/2), sqrt(2))``, by bit
    manipulation of the exact float64 ``xu + 1`` (``neg2log_u1``'s reduction)."""
    v = i2f(np.int64(xu & _MASK32) + _ONE_I)
    iv = np.float64(v).view(np.int64)
    # v >= 1, so iv - bits(sqrt(1/2)) > 0 and the shift may be logical: AVX2 has no 64-bit
    # arithmetic shift (LLVM emulates one with four operations)
    k = np.int64((_U(iv) - _SQRT_HALF_BITS_U) >> _SH52)
    f = np.int64(iv - (k << 52)).view(np.float64) - 1.0
    return k, f


@jit(inline="always")
def _log_tail(k, s):
    """``-2 log u1 = (k - 32) (-2 log 2) + s Q(s**2)`` from ``_log_split``'s k and the quotient
    ``s = f / (2 + f)``."""
    z = s * s
    q = Q0 + z * (Q1 + z * (Q2 + z * (Q3 + z * (Q4 + z * (Q5 + z * (Q6 + z * Q7))))))
    return i2f(k - _THIRTY_TWO) * M2LN2 + s * q


@jit(inline="always")
def neg2log_u1(xu):
    """``-2 log u1`` for ``u1 = (xu + 1) 2**-32``, ``xu`` a 32-bit word, without libm: the exact
    float64 ``v = xu + 1 = m 2**k`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` by bit manipulation,
    ``s = (m - 1)/(m + 1)``, then ``-2 log u1 = (k - 32) (-2 log 2) + s Q(s**2)`` (fdlibm's
    polynomial with the -2 folded in). Within 3 ulp (2.05 measured); exactly 0 at ``u1 = 1``."""
    k, f = _log_split(xu)
    return _log_tail(k, f / (2.0 + f))


@jit(inline="always")
def cos_sin_turn(xa):
    """``(cos 2 pi u2, sin 2 pi u2)`` for ``u2 = xa 2**-32``, ``xa`` a 32-bit word, without libm
    and without branches: ``xa = q 2**30 + i`` with the nearest quarter turn ``q`` (0..4) and
    ``|i| <= 2**29`` (exact integer arithmetic), ``t = i 2**-29`` in ``[-1, 1]`` (exactly), so the
    angle is ``q pi/2 + t pi/4``; fdlibm's minimax ``sin``/``cos`` kernels with the ``pi/4``
    folded into their coefficients, then a quadrant swap and sign flips. Absolute error about
    1e-16."""
    a = np.int64(xa & _MASK32)
    q = (a + _EIGHTH_TURN) >> 30
    t = i2f_m29(a - (q << 30))
    z = t * t
    sn = t * (A0 + z * (A1 + z * (A2 + z * (A3 + z * (A4 + z * (A5 + z * A6))))))
    cs = 1.0 + z * (B1 + z * (B2 + z * (B3 + z * (B4 + z * (B5 + z * (B6 + z * B7))))))
    swap = (q & 1) == 1
    a = sn if swap else cs
    b = cs if swap else sn
    # cos flips sign in quadrants 1, 2; sin in quadrants 2, 3 (q = 4 is quadrant 0)
    ca = np.int64(np.float64(a).view(np.int64) ^ (((q + 1) & 2) << _SIGN))
    sb = np.int64(np.float64(b).view(np.int64) ^ ((q & 2) << _SIGN))
    return ca.view(np.float64), sb.view(np.float64)


@jit(inline="always")
def _bm(xu, xa):
    """One Box-Muller pair from two 32-bit words: radius ``sqrt(-2 log u1)``,
    ``u1 = (xu + 1) 2**-32`` in ``(0, 1]``, angle ``2 pi xa 2**-32``."""
    r = np.sqrt(neg2log_u1(xu))
    c, s = cos_sin_turn(xa)
    return r * c, r * s


@jit(inline="always")
def box_muller(x0, x1, x2, x3):
    """Four Gaussians from the four words of one block: pairs ``(x0, x1)`` and ``(x2, x3)``
    (see the module docstring)."""
    g0, g1 = _bm(x0, x1)
    g2, g3 = _bm(x2, x3)
    return g0, g1, g2, g3


# --------------------------------------------------------------------------- float32 transform
_F32 = np.float32
# log(1 + f) = 2 s + s R(s^2) on |s| <= 0.1716: minimax R for float (FreeBSD e_logf.c, Lg1..Lg4;
# error below 2**-34.24) and log 2 in two parts (k * LN2_HI_F is exact for |k| < 2**12).
LG1_F = _F32(0.66666662693)
LG2_F = _F32(0.40000972152)
LG3_F = _F32(0.28498786688)
LG4_F = _F32(0.24279078841)
LN2_HI_F = _F32(6.9313812256e-01)   # 0x3f317180
LN2_LO_F = _F32(9.0580006145e-06)   # 0x3717f7d1
# sin x, cos x on |x| <= pi/4 by Taylor polynomials to degree 11 and 12: truncation below
# 2e-9 and 1.2e-10, far under a float32 rounding (6e-8).
S1_F = _F32(-1.0 / 6.0)
S2_F = _F32(1.0 / 120.0)
S3_F = _F32(-1.0 / 5040.0)
S4_F = _F32(1.0 / 362880.0)
C1_F = _F32(1.0 / 24.0)
C2_F = _F32(-1.0 / 720.0)
C3_F = _F32(1.0 / 40320.0)
C4_F = _F32(-1.0 / 3628800.0)
TWO_M32_F = _F32(TWO_M32)
#: 2 pi / 2**32 (float32): the angle of one step of the 32-bit grid.
TWO_PI_M32_F = _F32(2.0 * math.pi * TWO_M32)
#: ``TWO_PI_M32_F / 4`` (exact): the angle of the remainder ``i`` from ``4 i``, the int32 whose
#: bits are ``xa << 2`` (``_bm32``).
TWO_PI_M34_F = _F32(TWO_PI_M32_F / _F32(4.0))
_EIGHTH_TURN_U32 = np.uint32(1 << 29)
_THREE_EIGHTHS_U32 = np.uint32(3 << 29)
_SIGN_U32 = np.uint32(1 << 31)
_SQRT_HALF_BITS_F = np.int32(np.array([math.sqrt(0.5)], np.float32).view(np.int32)[0])
_I23 = np.int32(23)
_U32 = np.uint32
_I32 = np.int32


@jit(inline="always")
def _log_split32(xu):
    """``(k, f)`` with ``u1 = (xu + 1) 2**-32 = (1 + f) 2**k`` and ``1 + f`` in ``[sqrt(1/2),
    sqrt(2))``, in float32 (``k`` int32): ``u1`` rounded to float32 and split by integer work on
    its bits; where ``k = 0`` the rounded ``u1`` has lost the low bits of ``1 - u1``, so ``f`` is
    taken from the exact complement ``~xu 2**-32`` instead (the radius of pairs with ``u1`` near 1
    keeps its relative accuracy)."""
    xu = _U32(xu)
    uf = np.float32(xu) * TWO_M32_F + TWO_M32_F
    ix = np.float32(uf).view(np.int32)
    k = _I32(_I32(ix - _SQRT_HALF_BITS_F) >> _I23)
    fb = _I32(ix - _I32(k << _I23)).view(np.float32) - _F32(1.0)
    # k = 0: u1 >= sqrt(1/2), so ~xu < 2**31 converts as a signed int32 (one vcvtdq2ps; AVX2
    # has no unsigned conversion, which LLVM emulates with five operations)
    f = -(np.float32(_I32(~xu)) * TWO_M32_F) if k == 0 else fb
    return k, f


@jit(inline="always")
def _log_tail32(k, s):
    """``-2 log u1 = -2 (k log 2 + log1p f)`` in float32 from ``_log_split32``'s k and the
    quotient ``s = f / (2 + f)`` (fdlibm's ``e_logf.c`` polynomial, ``log 2`` in two parts)."""
    z = s * s
    r = z * (LG1_F + z * (LG2_F + z * (LG3_F + z * LG4_F)))
    fk = np.float32(k)
    return _F32(-2.0) * (fk * LN2_HI_F + ((s + s) + (s * r + fk * LN2_LO_F)))


@jit(inline="always")
def cos_sin_turn32(xa):
    """``cos_sin_turn`` in float32: the nearest quarter turn ``q = (xa + 2**29) >> 30`` in 32-bit
    arithmetic (0..3: the last eighth turn wraps to 0, which is quadrant 4) and the remainder
    ``i = xa - q 2**30`` (``|i| <= 2**29``), which is the low 30 bits of ``xa`` sign-extended:
    ``4 i`` is the int32 with the bits ``xa << 2``, and ``float32(4 i) / 4 = float32(i)``
    exactly (the ``/ 4`` is folded into the constant ``TWO_PI_M34_F``). Then polynomials on
    [-pi/4, pi/4], a swap and sign flips. (Written as ``((xa >> 29) + 1) >> 1`` and a
    subtraction, the reduction became a byte-averaging sequence of eight operations; now it
    takes four.)"""
    xa = _U32(xa)
    xq = _U32(xa + _EIGHTH_TURN_U32)
    q = _U32(xq >> _U32(30))
    x = np.float32(_I32(_U32(xa << _U32(2)))) * TWO_PI_M34_F
    z = x * x
    sn = x + (x * z) * (S1_F + z * (S2_F + z * (S3_F + z * S4_F)))
    cs = (_F32(1.0) - _F32(0.5) * z) + (z * z) * (C1_F + z * (C2_F + z * (C3_F + z * C4_F)))
    swap = _U32(q & _U32(1)) != _U32(0)
    a = sn if swap else cs
    b = cs if swap else sn
    # cos flips sign in quadrants 1, 2 and sin in quadrants 2, 3: where bit 1 of q + 1 and of q
    # is set, the sign bits of xa + 3 2**29 and xa + 2**29 (wrapped to 32 bits), flipped by an
    # integer xor, as in ``cos_sin_turn`` (a select of -a and a is a blend on the pipes of the
    # multiply-adds; the same bits, 0-6 % faster from run to run on a Zen 3 core)
    ca = _U32(np.float32(a).view(np.uint32) ^ _U32(_U32(xa + _THREE_EIGHTHS_U32) & _SIGN_U32))
    sb = _U32(np.float32(b).view(np.uint32) ^ _U32(xq & _SIGN_U32))
    return ca.view(np.float32), sb.view(np.float32)


@jit(inline="always")
def _bm32(xu, xa):
    """The Box-Muller pair of ``_bm`` in float32 arithmetic, from the same two words (uint32):
    within a few float32 ulp of the float64 pair rounded (the tests ask for 8).

    Every integer result in the helpers is cast back to 32 bits at once: Numba widens int32 and
    uint32 arithmetic to 64 bits, and LLVM narrows an operation back only where a cast follows
    it, so the vector loop keeps 16 lanes of 32 bits instead of converting to pairs of 8-lane
    int64 vectors and back (76 of the loop's 197 instructions did that)."""
    k, f = _log_split32(xu)
    rad = np.sqrt(_log_tail32(k, f / (_F32(2.0) + f)))
    ca, sb = cos_sin_turn32(xa)
    return rad * ca, rad * sb


@jit(inline="always")
def box_muller32(x0, x1, x2, x3):
    """``box_muller`` in float32 arithmetic (``_bm32``)."""
    g0, g1 = _bm32(x0, x1)
    g2, g3 = _bm32(x2, x3)
    return g0, g1, g2, g3


# --------------------------------------------------------------------------- public draws
@jit(inline="always")
def gauss_quad(seed, stream, replica, step, counter):
    """Gaussians ``4 counter`` .. ``4 counter + 3`` of ``(seed, stream, replica, step)``."""
    x0, x1, x2, x3 = block(seed, stream, replica, step, counter)
    return box_muller(x0, x1, x2, x3)


@jit(**NOREF)
def _words(seed, stream, replica, step, c0, m, w):
    """``w[j, k] =`` word ``j`` of block ``c0 + k`` for ``k < m`` (w: uint32 (4, >= m))."""
    wide_vectors()
    w0 = w[0]
    w1 = w[1]
    w2 = w[2]
    w3 = w[3]
    for k in range(m):
        x0, x1, x2, x3 = block(seed, stream, replica, step, c0 + k)
        w0[k] = np.uint32(x0)
        w1[k] = np.uint32(x1)
        w2[k] = np.uint32(x2)
        w3[k] = np.uint32(x3)


def _quotient(xu, like):
    """``f / (2 + f)`` of the word ``xu`` (the division of ``-2 log u1``) in the precision of the
    array ``like``: from ``_log_split`` (float64) or ``_log_split32`` (float32), chosen at
    compile time (the overload below)."""


@_overload(_quotient, inline="always")
def _ol_quotient(xu, like):
    if like.dtype == _types.float32:
        def q32(xu, like):
            _, f = _log_split32(xu)
            return f / (_F32(2.0) + f)
        return q32

    def q64(xu, like):
        _, f = _log_split(xu)
        return f / (2.0 + f)
    return q64


def _neg2log(xu, s):
    """``-2 log u1`` of the word ``xu`` from its quotient ``s`` (``_quotient``), in the precision
    of s; the exponent is split off the word again (off the critical path)."""


@_overload(_neg2log, inline="always")
def _ol_neg2log(xu, s):
    if s == _types.float32:
        def n32(xu, s):
            k, _ = _log_split32(xu)
            return _log_tail32(k, s)
        return n32

    def n64(xu, s):
        k, _ = _log_split(xu)
        return _log_tail(k, s)
    return n64


def _cos_sin(xa, like):
    """``(cos, sin)(2 pi xa 2**-32)`` in the precision of the array ``like``
    (``cos_sin_turn`` or ``cos_sin_turn32``)."""


@_overload(_cos_sin, inline="always")
def _ol_cos_sin(xa, like):
    if like.dtype == _types.float32:
        return lambda xa, like: cos_sin_turn32(xa)
    return lambda xa, like: cos_sin_turn(xa)


@jit(**NOREF)
def _quotients(m, wu, r):
    """``r[k] = f / (2 + f)`` of the words ``wu[k]``, ``k < m``, in r's precision: the division
    of ``-2 log u1``, in a loop of its own."""
    wide_vectors()
    for k in range(m):
        r[k] = _quotient(wu[k], r)


@jit(**NOREF)
def _logs(m, wu, r):
    """``r[k] = -2 log u1`` of the words ``wu[k]``, ``k < m``, from the quotients that ``r``
    holds (``_quotients``)."""
    wide_vectors()
    for k in range(m):
        r[k] = _neg2log(wu[k], r[k])


@jit(**NOREF)
def _turns(m, wa, qc, qs):
    """``(qc[k], qs[k]) = sqrt(qc[k]) (cos, sin)(2 pi wa[k] 2**-32)``, ``k < m``: the radii,
    square roots of the ``-2 log u1`` that ``qc`` holds, times the cosine and sine of the angle
    words. The square root's latency runs beside the polynomials'."""
    wide_vectors()
    for k in range(m):
        c, s = _cos_sin(wa[k], qc)
        r = np.sqrt(qc[k])
        qc[k] = r * c
        qs[k] = r * s


@jit(**NOREF)
def _transform(m, w, q0, q1, q2, q3):
    """``q_j[k]`` = Gaussian ``j`` of the words ``w[:, k]``, ``k < m``, in the precision of the
    buffers q (``box_muller``'s or ``box_muller32``'s expressions, the same bits where measured),
    in six loops rather than one: for each pair the quotient of the log, then the rest of the
    log, then the square root with the angle. A loop's throughput is bounded by how much of its
    dependency chain (conversion, division, polynomial, square root) the core keeps in flight;
    the one fused float64 loop also spilled on AVX2's 16 vector registers. On a Zen 3 core the
    float64 transform took 1.46 ns a Gaussian fused, 1.30 in four loops (radii, then angles),
    1.27 in these six against 1.50 for the four in the same process; the float32 transform
    0.69-0.74 ns in one loop, 0.62-0.64 in these six (docs/performance.md)."""
    _quotients(m, w[0], q0)
    _logs(m, w[0], q0)
    _quotients(m, w[2], q2)
    _logs(m, w[2], q2)
    _turns(m, w[1], q0, q1)
    _turns(m, w[3], q2, q3)


@jit(**NOREF)
def _quads(seed, stream, replica, step, c0, m, q0, q1, q2, q3, w):
    """``q_j[k] =`` Gaussian ``4 (c0 + k) + j`` for ``k < m``, in the precision of the buffers
    (float64, or float32 by ``box_muller32``); ``w``: uint32 scratch (4, >= m).

    Vectorised passes: the Philox words of the m blocks (``_words``, integer work), then the
    transform (``_transform``, six loops). Apart, each pass keeps its constants and temporaries
    in registers (AVX2 has 16 vector registers; one fused loop spilled), and the float32
    transform runs at the float32 vector width."""
    _words(seed, stream, replica, step, c0, m, w)
    _transform(m, w, q0, q1, q2, q3)


@jit(inline="always")
def _quad_views(buf):
    """The buffers of ``_quads`` in a scratch of >= ``NOISE_BUF`` elements (float64 or float32):
    four Gaussian buffers q0..q3 of ``w = buf.size // 8`` elements, then the words, the rest of
    the scratch viewed as uint32 (4, w)."""
    w = buf.size // 8
    words = buf[4 * w:8 * w].view(np.uint32)[:4 * w].reshape((4, w))
    return buf[:w], buf[w:2 * w], buf[2 * w:3 * w], buf[3 * w:4 * w], words


@jit(inline="always")
def _last_quad(seed, stream, replica, step, c, q0, q1, q2, q3, w):
    """The four Gaussians of block ``c`` (through the buffers, so in their precision), as a
    tuple: the last, partly used block of a draw."""
    _quads(seed, stream, replica, step, c, _ONE_I, q0, q1, q2, q3, w)
    return q0[0], q1[0], q2[0], q3[0]


@jit(**NOREF)
def _fill(seed, stream, replica, step, out, scale, buf):
    """``out[i] = scale * (Gaussian i)``, the transform in the precision of the scratch ``buf``
    (>= ``NOISE_BUF`` elements, float64 or float32)."""
    wide_vectors()
    n = out.size
    nq = n // 4
    q0, q1, q2, q3, w = _quad_views(buf)
    sc = buf.dtype.type(scale)
    v4 = vzeros_4v(buf)
    nl = vwidth(v4) // 4
    sv = vsplat(v4, sc)
    for c0 in range(0, nq, _CHUNK):
        m = min(_CHUNK, nq - c0)
        _quads(seed, stream, replica, step, c0, m, q0, q1, q2, q3, w)
        # slices: bare range indices (an offset index defeats vectorisation, see network.py)
        o = out[4 * c0:4 * (c0 + m)]
        nv = m - m % nl
        for k in range(0, nv, nl):
            vstore(o, 4 * k, vmul(sv, vload_interleaved4(v4, q0, q1, q2, q3, k)))
        for k in range(nv, m):
            o[4 * k] = sc * q0[k]
            o[4 * k + 1] = sc * q1[k]
            o[4 * k + 2] = sc * q2[k]
            o[4 * k + 3] = sc * q3[k]
    if n > 4 * nq:  # the last, partly used block
        g = _last_quad(seed, stream, replica, step, nq, q0, q1, q2, q3, w)
        for j in range(n - 4 * nq):
            out[4 * nq + j] = sc * g[j]


@jit
def fill_gaussian(seed, stream, replica, step, out, scale):
    """``out[i] = scale * (Gaussian i)`` for a 1-d float32/float64 array, computed in float64
    (initial parameters, data: float32 runs get these numbers rounded)."""
    _fill(seed, stream, replica, step, out, scale, np.empty(NOISE_BUF))


@jit(**NOREF)
def fill_noise(seed, stream, replica, step, out, scale, buf):
    """``fill_gaussian`` for the thermal noise: the transform in ``out``'s precision
    (``box_muller32`` for float32 runs); ``buf``: scratch of >= ``NOISE_BUF`` elements of
    ``out``'s dtype."""
    _fill(seed, stream, replica, step, out, scale, buf)


@jit(**NOREF)
def _sumsq(v):
    """``sum_i v[i]**2`` (any summation order: only its finiteness is used)."""
    wide_vectors()
    acc = 0.0
    for i in range(v.size):
        acc += v[i] * v[i]
    return acc


#: Fast-math flags of the update itself: no ``contract`` and no ``reassoc``, so that
#: ``a y + b x + scale xi`` is rounded the same way in every compiled copy. With them, LLVM may
#: specialise a copy for a constant ``a = 1.0`` and fuse differently; a process holding two copies
#: (a direct call from Python and the one inside a cached ensemble kernel) then gave trajectories
#: that differed at 1e-16 depending on which copy the loader bound first.
_UPDATE = {"nsz", "arcp", "afn"}


@jit(fastmath=_UPDATE, **NOREF)
def noisy_axpby(seed, stream, replica, step, y, a, x, b, scale, buf):
    """``y[i] = (a y[i] + b x[i]) + scale * (Gaussian i)`` in place, each product and sum rounded
    once (no fused multiply-adds: the same bits in every compiled copy); the noise is generated in
    the same pass, never stored as an array; ``scale = 0`` skips it. Returns ``sum_i y[i]**2``
    after the update (the caller's finiteness check). ``buf``: scratch of >= ``NOISE_BUF``
    elements of y's dtype; the arithmetic, and the Gaussians (``box_muller32`` for float32), are
    in that precision.

    Blocks are drawn ``_CHUNK`` at a time into four buffers (``_quads``, vectorised over
    counters), then the update loop interleaves them in registers (module docstring)."""
    wide_vectors()
    if buf.size < NOISE_BUF:
        raise ValueError("noisy_axpby: scratch buffer smaller than NOISE_BUF")
    n = y.size
    a = y.dtype.type(a)
    b = y.dtype.type(b)
    scale = y.dtype.type(scale)
    if scale == 0.0:
        for i in range(n):
            y[i] = a * y[i] + b * x[i]
        return _sumsq(y)
    ssq = 0.0
    nq = n // 4
    q0, q1, q2, q3, w = _quad_views(buf)
    v4 = vzeros_4v(y)           # 4V lanes: V blocks, whose Gaussians are 4V elements of y
    nl = vwidth(v4) // 4
    av = vsplat(v4, a)
    bv = vsplat(v4, b)
    sv = vsplat(v4, scale)
    for c0 in range(0, nq, _CHUNK):
        m = min(_CHUNK, nq - c0)
        _quads(seed, stream, replica, step, c0, m, q0, q1, q2, q3, w)
        ys = y[4 * c0:4 * (c0 + m)]
        xs = x[4 * c0:4 * (c0 + m)]
        # the Gaussians interleaved into their order in registers (y and x are read in order)
        nv = m - m % nl
        acc = vzeros_4v(y)      # sum of squares of the new values, lane by lane
        for k in range(0, nv, nl):
            g = vload_interleaved4(v4, q0, q1, q2, q3, k)
            yv = vmul(av, vload(v4, ys, 4 * k))
            v = vadd(vadd(yv, vmul(bv, vload(v4, xs, 4 * k))), vmul(sv, g))
            vstore(ys, 4 * k, v)
            acc = vfma(v, v, acc)
        ssq += vfirst(vsum1(acc))
        for k in range(nv, m):
            ys[4 * k] = (a * ys[4 * k] + b * xs[4 * k]) + scale * q0[k]
            ys[4 * k + 1] = (a * ys[4 * k + 1] + b * xs[4 * k + 1]) + scale * q1[k]
            ys[4 * k + 2] = (a * ys[4 * k + 2] + b * xs[4 * k + 2]) + scale * q2[k]
            ys[4 * k + 3] = (a * ys[4 * k + 3] + b * xs[4 * k + 3]) + scale * q3[k]
        ssq += _sumsq(ys[4 * nv:])
    if n > 4 * nq:  # the last, partly used block
        g = _last_quad(seed, stream, replica, step, nq, q0, q1, q2, q3, w)
        for j in range(n - 4 * nq):
            i = 4 * nq + j
            v = (a * y[i] + b * x[i]) + scale * g[j]
            y[i] = v
            ssq += v * v
    return ssq


@jit(inline="always")
def uniform_index(seed, stream, replica, step, i, n):
    """Uniform index number ``i`` in ``[0, n)`` (``n < 2**32``): word ``i % 4`` of block
    ``i // 4`` mapped by ``(x * n) >> 32``; returns int64."""
    w = block(seed, stream, replica, step, i // 4)
    return np.int64((w[i % 4] * _U(n)) >> _SH32)


@jit(**NOREF)
def fill_indices(seed, stream, replica, step, out, n):
    """``out[i] = uniform_index(..., i, n)`` for a 1-d int64 array, one block per four indices."""
    m = out.size
    un = _U(n)
    nb = m // 4
    for b in range(nb):
        x0, x1, x2, x3 = block(seed, stream, replica, step, b)
        out[4 * b] = np.int64((x0 * un) >> _SH32)
        out[4 * b + 1] = np.int64((x1 * un) >> _SH32)
        out[4 * b + 2] = np.int64((x2 * un) >> _SH32)
        out[4 * b + 3] = np.int64((x3 * un) >> _SH32)
    rest = m - 4 * nb
    if rest > 0:
        w = block(seed, stream, replica, step, nb)
        for j in range(rest):
            out[4 * nb + j] = np.int64((w[j] * un) >> _SH32)


# --------------------------------------------------------------------------- benchmark
@pjit
def gaussian_throughput_kernel(seed, n_per_replica, replicas, proto):
    """Benchmark: draw ``n_per_replica`` Gaussians (NOISE stream, step 0) for each of
    ``replicas`` replicas in parallel, through the buffers the update uses (``_quads``), in the
    precision of the array ``proto`` (float64 or float32); returns the per-replica sums."""
    out = np.zeros(replicas)
    nq = n_per_replica // 4
    for r in prange(replicas):
        q0, q1, q2, q3, w = _quad_views(np.empty(NOISE_BUF, proto.dtype))
        acc = 0.0
        for c0 in range(0, nq, _CHUNK):
            m = min(_CHUNK, nq - c0)
            _quads(seed, _BENCH_STREAM, r, 0, c0, m, q0, q1, q2, q3, w)
            for k in range(m):
                acc += (q0[k] + q1[k]) + (q2[k] + q3[k])
        out[r] = acc
    return out
