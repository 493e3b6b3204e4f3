"""Small dense matrix products of the dense fast path (``network._dense_blas``), on flat arrays.

    forward   Z = H W^T  (``_prod_nt``)     backward   G_in = G W  (``_prod_nn``)
    weights   dW = G^T H  (``_prod_tn``, G read through its strides, never transposed)

Row-major flat arrays (no 2-d views: Numba's ``reshape`` calls a C helper, about 25 ns, and a step
of a small network made a hundred of them). Up to ``SMALL_MNK`` multiply-adds the products are
taken by the loops below, above it by BLAS (Numba's ``np.dot``: SciPy's OpenBLAS, held to the
calling thread while kernels run, so its sums depend on the shapes alone).

``_mm_nn`` is a register-tiled micro-kernel written with explicit vectors (``simd``): a tile of
four rows of C by 4V, 2V, V or 1 columns (V: lanes of a vector register) is held in registers
while k runs over the whole of K, each row of B loaded once per tile and each element of A
broadcast once. Every element of C is the chain ``fma(a_k, b_k, ...fma(a_0, b_0, 0))`` over k in
order, whatever the tile, so the result does not depend on the blocking nor on the CPU's vector
width.
"""
from __future__ import annotations

import numpy as np

from .options import disjoint_arrays, jit, wide_vectors
from .simd import (WIDE, vbcast, vfma, vload, vstore, vwidth, vzeros_1, vzeros_2v, vzeros_4v,
                   vzeros_v)

_I0 = np.int64(0)
_I1 = np.int64(1)
_I4 = np.int64(4)

#: Products of at most this many multiply-adds (m n k) are taken by ``_mm_nt`` / ``_mm_nn``
#: instead of BLAS: below it a BLAS call costs more in packing and dispatch than in arithmetic
#: (an 8 x 32 x 32 dgemm: 1.3 us by OpenBLAS on an AVX2 core, 0.8-0.9 us by these loops).
SMALL_MNK = 1 << 17


@jit(inline="always")
def _rows4(X, i, n):
    """Rows ``i .. i + 3`` (each of length n) of the flat row-major X, as slices."""
    return (X[i * n:(i + 1) * n], X[(i + 1) * n:(i + 2) * n], X[(i + 2) * n:(i + 3) * n],
            X[(i + 3) * n:(i + 4) * n])


@jit
def _mm_nt(A, Bm, C, M, K, N):
    """``C = A @ B^T`` on flat row-major arrays, A (M, K), B (N, K), C (M, N): dot products
    along the contiguous k, two rows of A against four rows of B per pass (eight vector
    accumulators, each row of A and B loaded once per pass). Flat arrays and row slices, not
    2-d views: Numba's ``reshape`` calls a C helper (about 25 ns), and a step of a small
    network made a hundred of them."""
    wide_vectors()
    zero = C.dtype.type(0.0)
    M2 = M - M % 2
    N4 = N - N % 4
    for m in range(0, M2, 2):
        a = A[m * K:(m + 1) * K]
        e = A[(m + 1) * K:(m + 2) * K]
        c = C[m * N:(m + 1) * N]
        d = C[(m + 1) * N:(m + 2) * N]
        for n in range(0, N4, 4):
            b0, b1, b2, b3 = _rows4(Bm, n, K)
            s0 = zero
            s1 = zero
            s2 = zero
            s3 = zero
            t0 = zero
            t1 = zero
            t2 = zero
            t3 = zero
            for k in range(K):
                p = a[k]
                q = e[k]
                s0 += p * b0[k]
                s1 += p * b1[k]
                s2 += p * b2[k]
                s3 += p * b3[k]
                t0 += q * b0[k]
                t1 += q * b1[k]
                t2 += q * b2[k]
                t3 += q * b3[k]
            c[n] = s0
            c[n + 1] = s1
            c[n + 2] = s2
            c[n + 3] = s3
            d[n] = t0
            d[n + 1] = t1
            d[n + 2] = t2
            d[n + 3] = t3
        for n in range(N4, N):
            b0 = Bm[n * K:(n + 1) * K]
            s0 = zero
            t0 = zero
            for k in range(K):
                s0 += a[k] * b0[k]
                t0 += e[k] * b0[k]
            c[n] = s0
            d[n] = t0
    for m in range(M2, M):
        a = A[m * K:(m + 1) * K]
        c = C[m * N:(m + 1) * N]
        for n in range(N):
            b0 = Bm[n * K:(n + 1) * K]
            s0 = zero
            for k in range(K):
                s0 += a[k] * b0[k]
            c[n] = s0


@jit(inline="always")
def _tile(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, z):
    """``C[m:m+rows, n:n+q] = A[m:m+rows, :] @ B[:, n:n+q]`` (rows 4 or 1, q the lanes of z's
    type), with ``a = m a_sm`` and ``c = m N`` the offsets of row m in A and C."""
    if rows == 4:
        c0 = z
        c1 = z
        c2 = z
        c3 = z
        for k in range(K):
            bk = vload(z, Bm, k * N + n)
            o = a + k * a_sk
            c0 = vfma(vbcast(z, A, o), bk, c0)
            c1 = vfma(vbcast(z, A, o + a_sm), bk, c1)
            c2 = vfma(vbcast(z, A, o + 2 * a_sm), bk, c2)
            c3 = vfma(vbcast(z, A, o + 3 * a_sm), bk, c3)
        vstore(C, c + n, c0)
        vstore(C, c + N + n, c1)
        vstore(C, c + 2 * N + n, c2)
        vstore(C, c + 3 * N + n, c3)
    else:
        c0 = z
        for k in range(K):
            c0 = vfma(vbcast(z, A, a + k * a_sk), vload(z, Bm, k * N + n), c0)
        vstore(C, c + n, c0)


@jit(inline="always")
def _span(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, z):
    """Tiles of z's width from column n on while they fit; returns the first column left."""
    q = vwidth(z)
    while n + q <= N:
        _tile(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, z)
        n += q
    return n


@jit
def _mm_nn(A, a_sm, a_sk, Bm, C, M, K, N):
    """``C = A @ B`` on flat arrays, ``A[m, k] = A[m a_sm + k a_sk]`` (``a_sm = K, a_sk = 1``:
    row-major; ``a_sm = 1, a_sk = M``: the transpose of a row-major (K, M)), row-major
    B (K, N) and C (M, N): rows of C four at a time (the last M % 4 one by one), columns in
    tiles of 4V (AVX-512 only: 16 accumulator registers), 2V, V and 1 lanes."""
    m = 0
    while m < M:
        rows = _I4 if m <= M - 4 else _I1
        a = m * a_sm
        c = m * N
        n = _I0
        if WIDE:
            n = _span(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, vzeros_4v(C))
        n = _span(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, vzeros_2v(C))
        n = _span(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, vzeros_v(C))
        _span(A, a, a_sm, a_sk, Bm, C, c, K, N, n, rows, vzeros_1(C))
        m += rows


@jit
def _prod_nn(A, Bm, C, M, K, N):
    """``C = A @ B`` on flat row-major arrays, A (M, K), B (K, N), C (M, N): ``_mm_nn`` up to
    ``SMALL_MNK`` multiply-adds, else BLAS (Numba's ``np.dot``: SciPy's OpenBLAS). BLAS is
    limited to one thread while kernels run (``ensemble.ReplicaBlocks``), so the product runs
    whole on the calling thread; OpenBLAS's sums then depend on the shapes alone."""
    if M * K * N <= SMALL_MNK:
        _mm_nn(A, K, _I1, Bm, C, M, K, N)
    else:
        np.dot(A[:M * K].reshape((M, K)), Bm[:K * N].reshape((K, N)),
               C[:M * N].reshape((M, N)))


@jit
def _prod_tn(At, Bm, C, M, K, N):
    """``C = At^T @ B`` on flat row-major arrays, At (K, M), B (K, N), C (M, N): ``_mm_nn`` on
    the transposed view up to ``SMALL_MNK`` multiply-adds, else BLAS as in ``_prod_nn``."""
    if M * K * N <= SMALL_MNK:
        _mm_nn(At, _I1, M, Bm, C, M, K, N)
    else:
        np.dot(At[:K * M].reshape((K, M)).T, Bm[:K * N].reshape((K, N)),
               C[:M * N].reshape((M, N)))


@jit
def _prod_nt(A, Bt, C, M, K, N):
    """``C = A @ Bt^T`` on flat row-major arrays, A (M, K), Bt (N, K), C (M, N): ``_mm_nt`` up
    to ``SMALL_MNK`` multiply-adds, else BLAS as in ``_prod_nn``."""
    if M * K * N <= SMALL_MNK:
        _mm_nt(A, Bt, C, M, K, N)
    else:
        np.dot(A[:M * K].reshape((M, K)), Bt[:N * K].reshape((N, K)).T,
               C[:M * N].reshape((M, N)))


