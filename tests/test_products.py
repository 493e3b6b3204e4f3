"""The small dense products of the fast path (``langevin_nn.kernels.products``) and the vector
intrinsics they and the noise loops are made of (``langevin_nn.kernels.simd``).

Shapes are chosen so that every tile width (4V, 2V, V and 1 lanes; four rows and one) is
exercised in both precisions, with V the lanes of the host's vector registers."""
import numba
import numpy as np
import pytest

from langevin_nn.kernels import products, simd
from langevin_nn.kernels.simd import REGISTER_BYTES

I = np.int64

# (M, K, N): a full 4V tile in float32, every tail width, one row, one column, K = 1
SHAPES = [(8, 32, 32), (32, 8, 32), (13, 7, 29), (3, 5, 70), (5, 16, 16), (1, 3, 1), (9, 1, 67),
          (4, 33, 35)]


def _operands(M, K, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype))


def _assert_within_k_roundings(got, A, B):
    """``got`` is A B within K units of the dtype's rounding of the magnitude of the partial
    sums (a sum of K terms, in any order), against the float64 product."""
    K, dtype = A.shape[1], A.dtype
    exact = A.astype(np.float64) @ B.astype(np.float64)
    bound = K * np.finfo(dtype).eps * (np.abs(A).astype(np.float64) @ np.abs(B))
    assert np.all(np.abs(got - exact) <= bound)


def _nn(A, B, at=False):
    """``products._mm_nn`` on A (M, K) given row-major (at=False) or as its transpose."""
    (M, K), N = A.shape, B.shape[1]
    C = np.full(M * N + 5, 7.0, A.dtype)        # 5 guard elements that must stay untouched
    if at:
        products._mm_nn(A.T.copy().ravel(), I(1), I(M), B.ravel(), C, I(M), I(K), I(N))
    else:
        products._mm_nn(A.ravel(), I(K), I(1), B.ravel(), C, I(M), I(K), I(N))
    np.testing.assert_array_equal(C[M * N:], 7.0)
    return C[:M * N].reshape(M, N)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_mm_nn_is_the_product(M, K, N, dtype):
    """Against the float64 product: each element is one fma chain of K terms, so the error is
    at most K units of the dtype's rounding of the partial sums' magnitude."""
    A, B = _operands(M, K, N, dtype)
    _assert_within_k_roundings(_nn(A, B), A, B)
    np.testing.assert_array_equal(_nn(A, B, at=True), _nn(A, B))   # strided A: the same sums


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mm_nn_bits_do_not_depend_on_the_tile(dtype):
    """Every element is summed in the same order in every tile: a column computed alone (the
    one-lane tile) or a row alone (the one-row tile) has the same bits as in the whole product
    (4-row tiles of 4V, 2V and V lanes)."""
    M, K, N = 9, 37, 2 * REGISTER_BYTES // np.dtype(dtype).itemsize + 5
    A, B = _operands(M, K, N, dtype, seed=1)
    C = _nn(A, B)
    for j in (0, N // 2, N - 1):
        np.testing.assert_array_equal(_nn(A, B[:, j:j + 1].copy())[:, 0], C[:, j])
    for i in (0, 4, 8):
        np.testing.assert_array_equal(_nn(A[i:i + 1].copy(), B)[0], C[i])


def _nt(A, Bt):
    """``products._mm_nt``: A (M, K) times the transpose of Bt (N, K)."""
    (M, K), N = A.shape, Bt.shape[0]
    C = np.full(M * N + 5, 7.0, A.dtype)
    products._mm_nt(A.ravel(), Bt.ravel(), C, I(M), I(K), I(N))
    np.testing.assert_array_equal(C[M * N:], 7.0)
    return C[:M * N].reshape(M, N)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_mm_nt_is_the_product(M, K, N, dtype):
    """Against the float64 product, within K roundings of the magnitude (a sum of K terms in any
    order), for full and masked vectors of k, full and edge tiles."""
    A, B = _operands(M, K, N, dtype)
    _assert_within_k_roundings(_nt(A, B.T.copy()), A, B)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mm_nt_bits_do_not_depend_on_the_tile(dtype):
    """An element inside a 4 x 4 tile and the same element computed alone (the edge path) have
    the same bits: the lanes and their tree are the same."""
    M, K, N = 9, 2 * REGISTER_BYTES // np.dtype(dtype).itemsize + 3, 11
    A, B = _operands(M, K, N, dtype, seed=2)
    Bt = B.T.copy()
    C = _nt(A, Bt)
    for i, j in ((0, 0), (3, 7), (8, 10), (5, 9)):
        np.testing.assert_array_equal(_nt(A[i:i + 1].copy(), Bt[j:j + 1].copy())[0, 0], C[i, j])


def test_avx2_tiles_on_any_host(tmp_path):
    """The 256-bit tiles (2-row dot-product tiles, no 4V tile) are what AVX2 machines run:
    forced on this host in a subprocess (own Numba cache), they give the same products within
    the same bounds, and C = A B the same bits as here (its sums do not depend on the width)."""
    import json
    import os
    import subprocess
    import sys

    code = f"""
import json, numpy as np, sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
from tests.test_products import SHAPES, _operands, _nn, _nt
from langevin_nn.kernels.simd import REGISTER_BYTES, WIDE
assert REGISTER_BYTES == 32 and not WIDE
out = []
for dtype in (np.float64, np.float32):
    for M, K, N in SHAPES:
        A, B = _operands(M, K, N, dtype)
        out.append([_nn(A, B).tolist(), _nt(A, B.T.copy()).tolist()])
from tests.test_products import _interleave_axpby, _interleave_operands
out.append(_interleave_axpby(*_interleave_operands())[0].tolist())
print(json.dumps(out))
"""
    env = dict(os.environ, LANGEVIN_NN_SIMD_BYTES="32", NUMBA_CACHE_DIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    narrow = iter(json.loads(res.stdout))
    for dtype in (np.float64, np.float32):
        for M, K, N in SHAPES:
            nn, nt = next(narrow)
            A, B = _operands(M, K, N, dtype)
            np.testing.assert_array_equal(np.array(nn, dtype), _nn(A, B))
            _assert_within_k_roundings(np.array(nt, dtype), A, B)
    # 4 x 4 lanes instead of 4 x 8: the same elements (those of whole vectors on both), same bits
    wide = _interleave_axpby(*_interleave_operands())[0]
    m = 4 * (37 - 37 % simd.lanes(numba.float64))
    np.testing.assert_array_equal(np.array(next(narrow))[:m], wide[:m])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_in,n_out,nr", [(16, 16, 1), (33, 17, 3), (5, 3, 2), (64, 9, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_mv_rows_is_the_product(n_in, n_out, nr, bias, dtype):
    """``_mv_rows`` (the forward of the small-batch path): rows of H times W^T plus the bias,
    in place in the sample-major 2-d buffer, nothing else written."""
    rng = np.random.default_rng(n_in + n_out)
    W = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    wo = 3
    theta = np.concatenate([np.zeros(wo), W.ravel(), b]).astype(dtype)
    L = 2 + n_in + n_out + 4
    H = rng.standard_normal((nr + 2, L)).astype(dtype)
    H0 = H.copy()
    bo = wo + n_in * n_out if bias else -1
    products._mv_rows(theta, I(wo), I(bo), I(n_in), I(n_out), H, I(2), I(2 + n_in), I(nr))
    X = H0[:nr, 2:2 + n_in]
    got = H[:nr, 2 + n_in:2 + n_in + n_out] - (b if bias else 0)
    _assert_within_k_roundings(got, X, W.T.copy())
    keep = np.ones_like(H, bool)
    keep[:nr, 2 + n_in:2 + n_in + n_out] = False
    np.testing.assert_array_equal(H[keep], H0[keep])


@numba.njit
def _interleave_axpby(a, b, c, d, y, x, s):
    """``out = (y s + x) + g``, g the interleaved ``[a[k], b[k], c[k], d[k], a[k + 1], ...]``,
    through the vector intrinsics in y's precision (whole vectors only; the rest stays 0), and
    the same rounded to float32 by the store (``out32``)."""
    v4 = simd.vzeros_4v(y)
    nl = simd.vwidth(v4) // 4
    sv = simd.vsplat(v4, s)
    out = np.zeros(y.size, y.dtype)
    out32 = np.zeros(y.size, np.float32)
    for k in range(0, a.size - a.size % nl, nl):
        g = simd.vload_interleaved4(v4, a, b, c, d, k)
        r = simd.vadd(simd.vmul(simd.vload(v4, y, 4 * k), sv), simd.vload(v4, x, 4 * k))
        simd.vstore(out, 4 * k, simd.vadd(r, g))
        simd.vstore(out32, 4 * k, simd.vadd(r, g))
    return out, out32, nl


def _interleave_operands(n=37, dtype=np.float64):
    rng = np.random.default_rng(3)
    a, b, c, d = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    return (a, b, c, d, rng.standard_normal(4 * n).astype(dtype),
            rng.standard_normal(4 * n).astype(dtype), dtype(0.3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interleaved_loads_and_lanewise_arithmetic(dtype):
    """The interleaving (in float32, the in-block transposes behind ``_opaque``) puts every
    element in its place, and each operation is rounded once, in the vectors' precision."""
    a, b, c, d, y, x, s = _interleave_operands(dtype=dtype)
    n = a.size
    out, out32, nl = _interleave_axpby(a, b, c, d, y, x, s)
    assert nl == simd.lanes(numba.from_dtype(np.dtype(dtype)))   # V blocks: 4V lanes
    m = 4 * (n - n % nl)
    g = np.stack([a, b, c, d], axis=1).ravel()              # the order of the Gaussians
    ref = (y * s + x) + g                                   # each operation rounded once
    np.testing.assert_array_equal(out[:m], ref[:m])
    np.testing.assert_array_equal(out32[:m], ref[:m].astype(np.float32))
    np.testing.assert_array_equal(out[m:], 0.0)
