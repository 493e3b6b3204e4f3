"""Philox4x32-10 random numbers: known answers, kernel/twin agreement, the libm-free log and
sin/cos, statistics, and stream separation (``langevin_nn.kernels.philox``, ``langevin_nn.rng``)."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from langevin_nn import rng
from langevin_nn.kernels import philox

U64 = np.uint64

# Random123 known-answer vectors, "philox4x32 10" lines: counter (4 words), key (2 words),
# expected output (4 words). The first three are the vectors of Random123's tests/kat_vectors
# (zero, all-ones, and the pi-digit counter/key). The last three are from the longer table of
# single-bit and pi-digit inputs in Random123's examples/kat_vectors, as mirrored in the
# repository girving/random123-manual.
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ((0x00000001, 0x00000000, 0x00000000, 0x00000000), (0x00000001, 0x00000000),
     (0xAC08141B, 0xDFC5CCBE, 0x79C07A47, 0xA7F66093)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0x00000000, 0xFFFFFFFF),
     (0x08F7720C, 0x845EE9E0, 0x502CCD3D, 0xA9A00E27)),
    ((0x00000000, 0x00000000, 0x00000000, 0x80000000), (0x00000000, 0x80000000),
     (0xF7A0B371, 0xE51DC93D, 0x56CE135D, 0x1D4B5580)),
]

# (seed, stream, replica, step): large seeds (> 2**32), large steps (> 2**32), replicas > 0.
CASES = [
    (0, rng.INIT, 0, 0),
    (12345, rng.NOISE, 3, 17),
    (2**32 + 7, rng.BATCH, 1, 2**32 + 5),
    (0xFEDCBA9876543210, rng.TRAIN_X, 0, 0),
    (2**64 - 1, rng.ONLINE_LABEL, 2**32 - 1, 2**48 - 1),
]


# ------------------------------------------------------------------ small njit drivers (no cache)
@numba.njit
def _k_blocks(seed, stream, replica, step, counters):
    out = np.empty((4, counters.size), dtype=np.uint64)
    for i in range(counters.size):
        w = philox.block(seed, stream, replica, step, counters[i])
        out[0, i], out[1, i], out[2, i], out[3, i] = w
    return out


@numba.njit
def _k_neg2log(xu):
    out = np.empty(xu.size)
    for i in range(xu.size):
        out[i] = philox.neg2log_u1(xu[i])
    return out


@numba.njit
def _k_cos_sin(xa):
    c = np.empty(xa.size)
    s = np.empty(xa.size)
    for i in range(xa.size):
        c[i], s[i] = philox.cos_sin_turn(xa[i])
    return c, s


def _kernel_gaussians(seed, stream, replica, step, n, dtype=np.float64, scale=1.0):
    out = np.empty(n, dtype=dtype)
    philox.fill_gaussian(U64(seed), stream, replica, step, out, scale)
    return out


def _kernel_indices(seed, stream, replica, step, n, P):
    out = np.empty(n, dtype=np.int64)
    philox.fill_indices(U64(seed), stream, replica, step, out, P)
    return out


# ------------------------------------------------------------------ known answers
@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answers_kernel(ctr, key, expected):
    words = philox.philox4x32_10(*(U64(v) for v in ctr + key))
    assert tuple(int(w) for w in words) == expected


def test_known_answers_twin():
    ctr = np.array([c for c, _, _ in KAT], dtype=np.uint64).T
    for i, (_, key, expected) in enumerate(KAT):
        out = rng.philox4x32_10(ctr[:, i:i + 1], key)
        assert out.dtype == np.uint64 and out.shape == (4, 1)
        assert tuple(int(w) for w in out[:, 0]) == expected


def test_counter_and_key_layout():
    """block() implements the documented (seed, stream, replica, step, counter) mapping."""
    seed, stream, replica, step = 0x0123456789ABCDEF, 19, 7, 0x0000ABCD12345678
    expected = philox.philox4x32_10(U64(5), U64(0x12345678), U64(0xABCD | (19 << 16)), U64(7),
                                    U64(0x89ABCDEF), U64(0x01234567))
    assert philox.block(U64(seed), stream, replica, step, 5) == expected
    twin = rng.blocks(seed, stream, replica, step, [5])[:, 0]
    assert tuple(int(w) for w in twin) == tuple(int(w) for w in expected)


# ------------------------------------------------------------------ kernel vs twin
@pytest.mark.parametrize("seed,stream,replica,step", CASES)
def test_kernel_matches_twin(seed, stream, replica, step):
    counters = np.array([0, 1, 2, 3, 1000, 2**31, 2**32 - 1], dtype=np.int64)
    kw = _k_blocks(U64(seed), stream, replica, step, counters)
    tw = rng.blocks(seed, stream, replica, step, counters)
    np.testing.assert_array_equal(kw, tw)
    assert kw.max() < 2**32

    n = 1001                                                # 1001 % 4 = 1: last block partly used
    gk = _kernel_gaussians(seed, stream, replica, step, n)
    gt = rng.gaussians(seed, stream, replica, step, n)
    np.testing.assert_allclose(gk, gt, rtol=0, atol=1e-13)
    g = philox.gauss_quad(U64(seed), stream, replica, step, 125)
    np.testing.assert_allclose(g, gt[500:504], rtol=0, atol=1e-13)
    for offset in (500, 501, 502, 503):
        np.testing.assert_allclose(rng.gaussians(seed, stream, replica, step, 7, offset=offset),
                                   gt[offset:offset + 7], rtol=0, atol=0)

    for P in (1, 7, 1000, 2**32 - 1):
        ik = _kernel_indices(seed, stream, replica, step, 1003, P)  # 1003 % 4 != 0
        it = rng.indices(seed, stream, replica, step, 1003, P)
        np.testing.assert_array_equal(ik, it)
        assert ik.min() >= 0 and ik.max() < P
        assert philox.uniform_index(U64(seed), stream, replica, step, 1002, P) == it[1002]


def test_fill_gaussian_float32_and_scale():
    g64 = rng.gaussians(99, rng.NOISE, 2, 3, 11)
    g32 = _kernel_gaussians(99, rng.NOISE, 2, 3, 11, dtype=np.float32, scale=0.5)
    assert g32.dtype == np.float32
    np.testing.assert_array_equal(g32, (0.5 * g64).astype(np.float32))


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_fill_gaussian_chunk_boundaries(monkeypatch, chunk):
    """fill_gaussian draws _CHUNK blocks per pass (``_fill``; a last partial pass and a
    partial block, the vector loop and its tail): its source compiled afresh with small chunks
    (Numba freezes the global at compile time) against the twin."""
    monkeypatch.setattr(philox, "_CHUNK", chunk)
    out = np.empty(75)
    fill = numba.njit(philox._fill.py_func)
    fill(U64(8), rng.TEACHER, 0, 0, out, 2.0, np.empty(philox.NOISE_BUF))
    np.testing.assert_allclose(out, 2.0 * rng.gaussians(8, rng.TEACHER, 0, 0, 75), rtol=0,
                               atol=1e-13)


def test_words_are_unmapped_and_indices_map_words():
    w = rng.blocks(5, rng.BATCH, 0, 9, np.arange(3))
    idx = rng.indices(5, rng.BATCH, 0, 9, 12, 1000)
    np.testing.assert_array_equal(idx, (w.T.reshape(-1) * 1000) >> 32)


# ------------------------------------------------------------------ libm-free log / sin / cos
_SQRT_HALF_W = int(math.sqrt(0.5) * 2**32)    # words where u1 = (xu + 1) 2**-32 crosses sqrt(1/2)
_XU = np.concatenate([
    np.array([0, 1, 2, 3, 2**20, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 3, 2**32 - 2,
              2**32 - 1] + [_SQRT_HALF_W + d for d in range(-3, 4)]
             + [(_SQRT_HALF_W >> j) + d for j in range(1, 32) for d in (-1, 0, 1)]
             + [(1 << j) - 1 + d for j in range(1, 33) for d in (-1, 0, 1)], dtype=np.int64),
    np.random.default_rng(0).integers(0, 2**32, 40000),
    # small u1, where the radius is large: 2**-32 .. 2**-8 log-uniformly
    np.exp(np.random.default_rng(1).uniform(0.0, 24 * math.log(2), 20000)).astype(np.int64) - 1,
]).astype(np.uint64) & np.uint64(2**32 - 1)

_Q = 2**30
#: angle words at and beside every quarter turn, and on both sides of every boundary between
#: the nearest quarter turns (odd multiples of 2**29); indices 0, 3, 6, 9 are the quarter turns
_ANGLE_EDGES = ([0, 1, _Q - 1, _Q, _Q + 1, 2 * _Q - 1, 2 * _Q, 2 * _Q + 1, 3 * _Q - 1, 3 * _Q,
                 3 * _Q + 1, 2**32 - 2, 2**32 - 1]
                + [j * 2**29 + d for j in (1, 3, 5, 7) for d in (-1, 0, 1)])
_XA = np.concatenate([
    np.array(_ANGLE_EDGES, dtype=np.int64),
    np.random.default_rng(2).integers(0, 2**32, 40000),
]).astype(np.uint64)


def _neg2log_reference(xu):
    """-2 log((xu + 1) 2**-32) in long double."""
    u = (xu.astype(np.longdouble) + 1) * np.longdouble(2.0) ** -32
    return -2 * np.log(u)


def _cos_sin_reference(xa):
    """cos, sin of 2 pi xa 2**-32: exact quarter-turn reduction, then libm in long double."""
    a = xa.astype(np.int64)
    q = (a + 2**29) >> 30
    i = (a - (q << 30)).astype(np.longdouble)
    two_pi = 2 * np.longdouble("3.14159265358979323846264338327950288")
    x = two_pi * i * np.longdouble(2.0) ** -32
    c, s = np.cos(x), np.sin(x)
    qm = q & 3
    cos = np.select([qm == 0, qm == 1, qm == 2, qm == 3], [c, -s, -c, s])
    sin = np.select([qm == 0, qm == 1, qm == 2, qm == 3], [s, c, -s, -c])
    return cos, sin


@pytest.mark.parametrize("impl", ["kernel", "twin"])
def test_neg2log_u1_accuracy(impl):
    # the radius' -2 log u1, folded polynomial and one-part -2 log 2: within 3 ulp of the exact
    # value (4e6 random words gave at most 2.05 ulp, near u1 = 0.7 where k log 2 and log m cancel)
    got = _k_neg2log(_XU) if impl == "kernel" else rng.neg2log_u1(_XU)
    ref = _neg2log_reference(_XU)
    ok = ref != 0
    assert np.all(got[~ok] == 0.0)                        # u1 = 1 (xu = 2**32 - 1): exactly 0
    err = np.abs(got[ok] - ref[ok]).astype(np.float64)
    assert np.all(err <= 3 * np.spacing(np.abs(got[ok])))
    assert got[0] == pytest.approx(64 * math.log(2), rel=1e-16)   # u1 = 2**-32


@pytest.mark.parametrize("impl", ["kernel", "twin"])
def test_cos_sin_accuracy(impl):
    c, s = _k_cos_sin(_XA) if impl == "kernel" else rng.cos_sin_turn(_XA)
    rc, rs = _cos_sin_reference(_XA)
    assert np.abs(c - rc).max() < 3e-16 and np.abs(s - rs).max() < 3e-16
    # against numpy's double-precision libm as well (its argument 2 pi u carries ~4e-16 error)
    u = _XA * 2.0**-32
    assert np.abs(c - np.cos(2 * np.pi * u)).max() < 2e-15
    assert np.abs(s - np.sin(2 * np.pi * u)).max() < 2e-15
    # exact quarter turns
    np.testing.assert_array_equal(c[[0, 3, 6, 9]], [1.0, 0.0, -1.0, 0.0])
    np.testing.assert_array_equal(s[[0, 3, 6, 9]], [0.0, 1.0, 0.0, -1.0])
    assert np.abs(c * c + s * s - 1.0).max() < 1e-15


@numba.njit
def _k_pairs(xu, xa):
    g = np.empty((2, xu.size))
    for i in range(xu.size):
        g[0, i], g[1, i] = philox._bm(xu[i], xa[i])
    return g


@pytest.mark.parametrize("impl", ["kernel", "buffers", "twin"])
def test_box_muller_pair_accuracy(impl):
    # the whole float64 pair against Box-Muller in long double, on the edge and random words of
    # both halves (largest radii included): |error| <= 1.16e-15 measured, 1.5e-15 asked.
    # "buffers" is the transform the noise of the update goes through (``_transform``: the log's
    # quotient, the rest of the log, the square root with the angle, each in loops of their own),
    # with the second pair of each block from other words
    n = min(_XU.size, _XA.size)
    xu, xa = _XU[:n], _XA[::-1][:n]
    pairs = [(xu, xa)]
    if impl == "kernel":
        g = _k_pairs(xu, xa)
    elif impl == "buffers":
        pairs.append((xu[::-1], _XA[:n]))
        w = np.array([xu, xa, *pairs[1]], dtype=np.uint32)
        g = np.empty((4, n))
        philox._transform(n, w, g[0], g[1], g[2], g[3])
    else:
        w = np.array([xu, xa, xu, xa])
        g = np.array(rng.box_muller(w)[:2])
    for j, (u, a) in enumerate(pairs):
        r = np.sqrt(_neg2log_reference(u))
        rc, rs = _cos_sin_reference(a)
        assert np.abs(g[2 * j] - r * rc).max() < 1.5e-15
        assert np.abs(g[2 * j + 1] - r * rs).max() < 1.5e-15


def test_gaussian_bound():
    # u1 = 2**-32 (the smallest) gives the largest radius
    assert philox.GAUSS_MAX == pytest.approx(6.6604, abs=1e-4) == rng.GAUSS_MAX
    w = np.array([[0], [0], [2**32 - 1], [2**30]], dtype=np.uint64)  # x0 = 0 -> u1 = 2**-32
    g0, g1, g2, g3 = rng.box_muller(w)
    assert g0[0] == pytest.approx(philox.GAUSS_MAX, rel=1e-15) and g1[0] == 0.0
    assert g2[0] == 0.0 and g3[0] == 0.0                  # x2 = 2**32 - 1 -> u1 = 1, r = 0
    kq = philox.box_muller(*(U64(v) for v in w[:, 0]))
    np.testing.assert_allclose(kq, [g0[0], g1[0], g2[0], g3[0]], rtol=0, atol=1e-15)


# ------------------------------------------------------------------ float32 transform
@numba.njit
def _k_box_muller32(w):
    out = np.empty((4, w.shape[1]), dtype=np.float32)
    for i in range(w.shape[1]):
        g = philox.box_muller32(w[0, i], w[1, i], w[2, i], w[3, i])
        out[0, i], out[1, i], out[2, i], out[3, i] = g
    return out


def _edge_words():
    """Words at the edges of the float32 transform: u1 = 2**-32 (largest radius), u1 = 1
    (radius 0), u1 at 1 - 2**-32 .. 1 - 2**-20 (where float32 u1 loses 1 - u1), the k = 0 / -1
    boundary near sqrt(1/2), and angles at and beside every quarter turn and every boundary
    between quarter turns."""
    near_one = [2**32 - 1 - d for d in (0, 1, 2, 255, 256, 4095, 2**12 + 1, 2**20)]
    half = _SQRT_HALF_W
    radius = [0, 1, 2, 2**8, 2**24, half - 2, half - 1, half, half + 1, 2**31] + near_one
    xu, xa = np.meshgrid(radius, _ANGLE_EDGES)
    xu, xa = xu.ravel(), xa.ravel()
    return np.array([xu, xa, xa[::-1], xu[::-1]], dtype=np.uint64)


def test_float32_transform_edges():
    w = _edge_words()
    k32 = _k_box_muller32(w)
    t32 = np.array(rng.box_muller(w, np.float32))
    t64 = np.array(rng.box_muller(w))
    assert k32.dtype == np.float32 and t32.dtype == np.float32
    tol = 4 * np.spacing(np.maximum(np.abs(t64), 1.0).astype(np.float32))
    assert np.all(np.abs(k32 - t32) <= tol)                 # kernel vs twin (fused multiply-adds)
    assert np.all(np.abs(k32 - t64) <= 8 * np.spacing(np.abs(t64).astype(np.float32)) + 1e-45)
    assert np.abs(k32).max() <= np.float32(philox.GAUSS_MAX)
    assert np.float32(np.hypot(k32[0, 0], k32[1, 0])) == np.float32(philox.GAUSS_MAX)
    # the loops the noise goes through (``_transform``: quotients, logs, then square roots with
    # the angles, each in a loop of its own) against the one-pair expression: the same bits where
    # measured, within an ulp whatever LLVM fuses
    b32 = np.empty((4, w.shape[1]), np.float32)
    philox._transform(w.shape[1], w.astype(np.uint32), b32[0], b32[1], b32[2], b32[3])
    assert np.all(np.abs(b32 - k32) <= np.spacing(np.abs(k32)))


@pytest.mark.parametrize("n", [1, 3, 4 * philox._CHUNK + 2, 100_003])
def test_fill_noise_float32_within_ulps_of_float64(n):
    """Thermal noise of float32 runs: the float32 transform of the same words, within 8 float32
    ulp of the float64 Gaussian (relative: also the small ones near a zero of cos or sin) and
    within 4 ulp of the NumPy twin's float32 transform."""
    out = np.empty(n, np.float32)
    philox.fill_noise(U64(7), rng.NOISE, 3, 11, out, 1.0, np.empty(philox.NOISE_BUF, np.float32))
    g64 = rng.gaussians(7, rng.NOISE, 3, 11, n)
    g32 = rng.gaussians(7, rng.NOISE, 3, 11, n, dtype=np.float32)
    assert np.all(np.abs(out - g64) <= 8 * np.spacing(np.abs(g64).astype(np.float32)) + 1e-45)
    assert np.all(np.abs(out - g32) <= 4 * np.spacing(np.maximum(np.abs(g64), 1.0)
                                                      .astype(np.float32)))
    out64 = np.empty(n)                                    # float64 output: the float64 transform
    philox.fill_noise(U64(7), rng.NOISE, 3, 11, out64, 1.0, np.empty(philox.NOISE_BUF))
    np.testing.assert_allclose(out64, g64, rtol=0, atol=1e-13)


def test_float32_noise_statistics():
    n = 2_000_000
    g = np.empty(n, np.float32)
    philox.fill_noise(U64(20240601), rng.NOISE, 1, 0, g, 1.0,
                      np.empty(philox.NOISE_BUF, np.float32))
    g = g.astype(np.float64)
    assert abs(g.mean()) < 5 / math.sqrt(n)
    assert abs(g.var() - 1.0) < 5 * math.sqrt(2.0 / n)
    assert stats.kstest(g[:500_000], stats.norm.cdf).pvalue > 1e-4


# ------------------------------------------------------------------ statistics
@pytest.fixture(scope="module")
def big_sample():
    return _kernel_gaussians(20240601, rng.NOISE, 1, 0, 2_000_000)


def test_mean_variance(big_sample):
    n = big_sample.size
    assert abs(big_sample.mean()) < 5 / math.sqrt(n)
    assert abs(big_sample.var() - 1.0) < 5 * math.sqrt(2.0 / n)
    assert np.abs(big_sample).max() <= philox.GAUSS_MAX


def test_pair_independence(big_sample):
    g0, g1 = big_sample[0::2], big_sample[1::2]
    m = g0.size
    assert abs(np.corrcoef(g0, g1)[0, 1]) < 5 / math.sqrt(m)
    assert abs(np.corrcoef(g0 * g0, g1 * g1)[0, 1]) < 5 / math.sqrt(m)   # Box-Muller radius shared
    assert abs(np.corrcoef(big_sample[:-1], big_sample[1:])[0, 1]) < 5 / math.sqrt(big_sample.size)
    # the two pairs of one block (words x0, x1 and x2, x3)
    a, b = big_sample[0::4], big_sample[2::4]
    assert abs(np.corrcoef(a * a, b * b)[0, 1]) < 5 / math.sqrt(a.size)


@pytest.mark.parametrize("seed", [1, 2**40 + 3, 0xDEADBEEFCAFEF00D])
def test_kolmogorov_smirnov(seed):
    g = _kernel_gaussians(seed, rng.INIT, 5, 0, 500_000)
    assert stats.kstest(g, stats.norm.cdf).pvalue > 1e-4


@pytest.mark.parametrize("seed", [3, 2**33 + 1])
def test_indices_uniform(seed):
    P = 997
    idx = _kernel_indices(seed, rng.BATCH, 2, 12345, 1_000_000, P)
    counts = np.bincount(idx, minlength=P)
    assert counts.size == P
    assert stats.chisquare(counts).pvalue > 1e-4


# ------------------------------------------------------------------ separation
def test_streams_replicas_steps_seeds_differ():
    base = (77, rng.NOISE, 1, 2)
    variants = [
        base,
        (77, rng.INIT, 1, 2),                    # stream
        (77, rng.NOISE, 0, 2),                   # replica
        (77, rng.NOISE, 2, 2),
        (77, rng.NOISE, 1, 3),                   # step
        (77, rng.NOISE, 1, 2 + 2**32),           # high step bits
        (77, rng.NOISE + 1, 1, 2),
        (77 + 2**32, rng.NOISE, 1, 2),           # high seed bits
        (78, rng.NOISE, 1, 2),
        (77, rng.NOISE + 256, 1, 2),             # stream bits above the step field
    ]
    draws = [rng.gaussians(*v, 8) for v in variants]
    for a in range(len(draws)):
        for b in range(a):
            assert not np.any(draws[a] == draws[b]), (variants[a], variants[b])
    # the kernel agrees on the high-bit variants
    np.testing.assert_allclose(_kernel_gaussians(*variants[5], 8), draws[5], rtol=0, atol=1e-13)
    np.testing.assert_allclose(_kernel_gaussians(*variants[7], 8), draws[7], rtol=0, atol=1e-13)


def test_stream_table():
    assert rng.STREAMS == {"INIT": 1, "BATCH": 2, "NOISE": 3, "ONLINE_X": 4, "ONLINE_LABEL": 5,
                           "TEACHER": 16, "TRAIN_X": 17, "TRAIN_LABEL": 18, "PROBE_X": 19,
                           "PROBE_LABEL": 20}
    assert len(set(rng.STREAMS.values())) == len(rng.STREAMS)
    assert all(getattr(rng, k) == v for k, v in rng.STREAMS.items())


def test_twin_rejects_bad_arguments():
    with pytest.raises(ValueError):
        rng.gaussians(1, rng.NOISE, 0, 0, 4, offset=-1)
    with pytest.raises(ValueError):
        rng.indices(1, rng.BATCH, 0, 0, 4, 0)
    with pytest.raises(ValueError):
        rng.blocks(1, 2**16, 0, 0, [0])
    with pytest.raises(ValueError):
        rng.blocks(1, 1, 0, 2**48, [0])
    with pytest.raises(ValueError):
        rng.blocks(1, 1, 0, 0, [2**32])


def test_stream_ids_are_the_documented_table():
    """The ids are part of the file format's meaning (docs/architecture.md): pin them."""
    assert rng.STREAMS == {"INIT": 1, "BATCH": 2, "NOISE": 3, "ONLINE_X": 4, "ONLINE_LABEL": 5,
                           "TEACHER": 16, "TRAIN_X": 17, "TRAIN_LABEL": 18, "PROBE_X": 19,
                           "PROBE_LABEL": 20}
    assert len(set(rng.STREAMS.values())) == len(rng.STREAMS)
