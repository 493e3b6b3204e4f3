"""Small dense matrix products of the dense fast path (``network._dense_blas``), on flat arrays.

    forward   Z = H W^T  (``_prod_nt``)     backward   G_in = G W  (``_prod_nn``)
    weights   dW = G^T H  (``_prod_tn``, G read through its strides, never transposed)

Row-major flat arrays (no 2-d views: Numba's ``reshape`` calls a C helper, about 25 ns, and a step
of a small network made a hundred of them). Up to ``SMALL_MNK`` multiply-adds the products are
taken by the loops below, above it by BLAS (Numba's ``np.dot``: SciPy's OpenBLAS, held to the
calling thread while kernels run, so its sums depend on the shapes alone).

Both are register-tiled micro-kernels written with explicit vectors (``simd``), their
accumulators held in registers while k runs over the whole of K:

* ``_mm_nn`` (C = A B, A possibly read through strides): a tile of four rows of C by 4V, 2V, V
  or 1 columns (V: lanes of a vector register), each row of B loaded once per tile and each
  element of A broadcast once. Every element of C is the chain ``fma(a_k, b_k, ...fma(a_0, b_0,
  0))`` over k in order, whatever the tile, so the bits depend neither on the blocking nor on
  the CPU's vector width.
* ``_mm_nt`` (C = A B^T): dot products along k, four rows of A against four rows of B, V partial
  sums per element reduced by a fixed tree (``simd.vsum4``).
"""
from __future__ import annotations

import numpy as np

from .options import NOREF, jit
from .simd import (WIDE, vadd, vbcast, vfma, vload, vload_part, vstore, vsum1, vsum4,
                   vwidth, vzeros_1, vzeros_2v, vzeros_4v, vzeros_v)

_I0 = np.int64(0)
_I1 = np.int64(1)
_I4 = np.int64(4)

#: Rows of A per tile of ``_mm_nt``.
_NT_ROWS = np.int64(4 if WIDE else 2)

#: Products of at most this many multiply-adds (m n k) are taken by ``_mm_nt`` / ``_mm_nn``
#: instead of BLAS: below it a BLAS call costs more in packing and dispatch than in arithmetic
#: (an 8 x 32 x 32 dgemm: 1.3 us by OpenBLAS on an AVX2 core, 0.8-0.9 us by these loops).
SMALL_MNK = 1 << 17


@jit(**NOREF)
def _mm_nt(A, Bm, C, M, K, N):
    """``C = A @ B^T`` on flat row-major arrays, A (M, K), B (N, K), C (M, N), by dot products
    along the contiguous k: tiles of R = ``_NT_ROWS`` rows of A against four rows of B (16
    accumulators with AVX-512; R = 2 and 8 without, to fit AVX2's 16 registers with the
    operands), the last M % R rows by tiles of one row against four, the last N % 4 columns
    element by element, all with the same sums. Lane l of an element's accumulator sums the
    terms k = l (mod V) in order (the last, partial vector of k by masked loads), then
    ``vsum4``'s tree sums the lanes, so the bits depend on V (the CPU) but not on the tile.
    The tile is written out here rather than in an inlined helper: through Numba's
    ``inline="always"`` its accumulators stayed on the stack (0.9 us against 0.3 us at
    8 x 32 x 32). ``WIDE`` is a global constant: Numba drops the branches it does not take."""
    z = vzeros_v(C)
    q = vwidth(z)
    KQ = K - K % q
    RB = _NT_ROWS
    MB = M - M % RB
    N4 = N - N % 4
    for m in range(0, MB, RB):
        for n in range(0, N4, 4):
            a = m * K
            b = n * K
            s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = z
            u0 = u1 = u2 = u3 = v0 = v1 = v2 = v3 = z
            for k in range(0, KQ, q):
                p0 = vload(z, Bm, b + k)
                p1 = vload(z, Bm, b + K + k)
                p2 = vload(z, Bm, b + 2 * K + k)
                p3 = vload(z, Bm, b + 3 * K + k)
                x = vload(z, A, a + k)
                s0 = vfma(x, p0, s0)
                s1 = vfma(x, p1, s1)
                s2 = vfma(x, p2, s2)
                s3 = vfma(x, p3, s3)
                x = vload(z, A, a + K + k)
                t0 = vfma(x, p0, t0)
                t1 = vfma(x, p1, t1)
                t2 = vfma(x, p2, t2)
                t3 = vfma(x, p3, t3)
                if WIDE:
                    x = vload(z, A, a + 2 * K + k)
                    u0 = vfma(x, p0, u0)
                    u1 = vfma(x, p1, u1)
                    u2 = vfma(x, p2, u2)
                    u3 = vfma(x, p3, u3)
                    x = vload(z, A, a + 3 * K + k)
                    v0 = vfma(x, p0, v0)
                    v1 = vfma(x, p1, v1)
                    v2 = vfma(x, p2, v2)
                    v3 = vfma(x, p3, v3)
            if KQ < K:      # the loop's body again, by masked loads: masked loads on every
                k = KQ      # vector were 40 % slower, and a helper for the body spilled
                left = K - KQ
                p0 = vload_part(z, Bm, b + k, left)
                p1 = vload_part(z, Bm, b + K + k, left)
                p2 = vload_part(z, Bm, b + 2 * K + k, left)
                p3 = vload_part(z, Bm, b + 3 * K + k, left)
                x = vload_part(z, A, a + k, left)
                s0 = vfma(x, p0, s0)
                s1 = vfma(x, p1, s1)
                s2 = vfma(x, p2, s2)
                s3 = vfma(x, p3, s3)
                x = vload_part(z, A, a + K + k, left)
                t0 = vfma(x, p0, t0)
                t1 = vfma(x, p1, t1)
                t2 = vfma(x, p2, t2)
                t3 = vfma(x, p3, t3)
                if WIDE:
                    x = vload_part(z, A, a + 2 * K + k, left)
                    u0 = vfma(x, p0, u0)
                    u1 = vfma(x, p1, u1)
                    u2 = vfma(x, p2, u2)
                    u3 = vfma(x, p3, u3)
                    x = vload_part(z, A, a + 3 * K + k, left)
                    v0 = vfma(x, p0, v0)
                    v1 = vfma(x, p1, v1)
                    v2 = vfma(x, p2, v2)
                    v3 = vfma(x, p3, v3)
            c = m * N + n
            vstore(C, c, vsum4(s0, s1, s2, s3))
            vstore(C, c + N, vsum4(t0, t1, t2, t3))
            if WIDE:
                vstore(C, c + 2 * N, vsum4(u0, u1, u2, u3))
                vstore(C, c + 3 * N, vsum4(v0, v1, v2, v3))
    for m in range(MB, M):      # the last rows: one row of A against four rows of B
        a = m * K
        for n in range(0, N4, 4):
            b = n * K
            s0 = s1 = s2 = s3 = z
            for k in range(0, KQ, q):
                x = vload(z, A, a + k)
                s0 = vfma(x, vload(z, Bm, b + k), s0)
                s1 = vfma(x, vload(z, Bm, b + K + k), s1)
                s2 = vfma(x, vload(z, Bm, b + 2 * K + k), s2)
                s3 = vfma(x, vload(z, Bm, b + 3 * K + k), s3)
            if KQ < K:
                left = K - KQ
                x = vload_part(z, A, a + KQ, left)
                s0 = vfma(x, vload_part(z, Bm, b + KQ, left), s0)
                s1 = vfma(x, vload_part(z, Bm, b + K + KQ, left), s1)
                s2 = vfma(x, vload_part(z, Bm, b + 2 * K + KQ, left), s2)
                s3 = vfma(x, vload_part(z, Bm, b + 3 * K + KQ, left), s3)
            vstore(C, m * N + n, vsum4(s0, s1, s2, s3))
    for m in range(M):          # the last N % 4 columns, element by element
        for n in range(N4, N):
            a = m * K
            b = n * K
            s0 = z
            for k in range(0, KQ, q):
                s0 = vfma(vload(z, A, a + k), vload(z, Bm, b + k), s0)
            if KQ < K:
                s0 = vfma(vload_part(z, A, a + KQ, K - KQ), vload_part(z, Bm, b + KQ, K - KQ), s0)
            vstore(C, m * N + n, vsum1(s0))


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


@jit(**NOREF)
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


# BLAS (Numba's ``np.dot`` into ``out``) is reached through reference-counted helpers: its
# implementation returns the output array, which a ``NOREF`` function may not do.
@jit
def _blas_nn(A, Bm, C, M, K, N):
    np.dot(A[:M * K].reshape((M, K)), Bm[:K * N].reshape((K, N)), C[:M * N].reshape((M, N)))


@jit
def _blas_tn(At, Bm, C, M, K, N):
    np.dot(At[:K * M].reshape((K, M)).T, Bm[:K * N].reshape((K, N)), C[:M * N].reshape((M, N)))


@jit
def _blas_nt(A, Bt, C, M, K, N):
    np.dot(A[:M * K].reshape((M, K)), Bt[:N * K].reshape((N, K)).T, C[:M * N].reshape((M, N)))


@jit(**NOREF)
def _prod_nn(A, Bm, C, M, K, N):
    """``C = A @ B`` on flat row-major arrays, A (M, K), B (K, N), C (M, N): ``_mm_nn`` up to
    ``SMALL_MNK`` multiply-adds, else BLAS (Numba's ``np.dot``: SciPy's OpenBLAS). BLAS is
    limited to one thread while kernels run (``ensemble.ReplicaBlocks``), so the product runs
    whole on the calling thread; OpenBLAS's sums then depend on the shapes alone."""
    if M * K * N <= SMALL_MNK:
        _mm_nn(A, K, _I1, Bm, C, M, K, N)
    else:
        _blas_nn(A, Bm, C, M, K, N)


@jit(**NOREF)
def _prod_tn(At, Bm, C, M, K, N):
    """``C = At^T @ B`` on flat row-major arrays, At (K, M), B (K, N), C (M, N): ``_mm_nn`` on
    the transposed view up to ``SMALL_MNK`` multiply-adds, else BLAS as in ``_prod_nn``."""
    if M * K * N <= SMALL_MNK:
        _mm_nn(At, _I1, M, Bm, C, M, K, N)
    else:
        _blas_tn(At, Bm, C, M, K, N)


@jit(**NOREF)
def _prod_nt(A, Bt, C, M, K, N):
    """``C = A @ Bt^T`` on flat row-major arrays, A (M, K), Bt (N, K), C (M, N): ``_mm_nt`` up
    to ``SMALL_MNK`` multiply-adds, else BLAS as in ``_prod_nn``."""
    if M * K * N <= SMALL_MNK:
        _mm_nt(A, Bt, C, M, K, N)
    else:
        _blas_nt(A, Bt, C, M, K, N)


# --------------------------------------------------------------------------- matrix-vector
# The forward of the small-batch path of ``network.dense_loss_grad`` (fewer than FM_MIN_BATCH
# samples) and of the generic ``network.forward``: one sample row at a time, on the rows of the
# sample-major 2-d buffer H (``H[b, o:o + n]``, contiguous). Rows of 16-32 elements are one to
# four vectors, so what counts is the set-up per row and the length of the dependency chains:
# the auto-vectorised dot products before took 57 ns a 16 x 16 layer, this 30 ns; ``_mm_nt``
# with M = 1 and a bias pass, the same sums, made the network of (256, 16, 8, 1) 2.5 us a step
# against 1.9 us (its one-row tiles, element-by-element column tail and separate bias loop).
@jit(**NOREF)
def _mv_rows(theta, wo, bo, n_in, n_out, H, o_in, o_out, nr):
    """``H[b, o_out + i] = b_i + sum_j W[i, j] H[b, o_in + j]`` for ``b < nr``; W = ``theta[wo:]``
    row-major (n_out, n_in), the bias ``theta[bo:]`` (none if ``bo < 0``). Dot products along j,
    four rows of W against the sample row at a time (the last n_out % 4 rows one by one): lane l
    of an element's accumulator sums the terms j = l (mod V) in order, the last, partial vector
    by masked loads, then ``vsum4``'s tree sums the lanes (the sums of ``_mm_nt``)."""
    z = vzeros_v(H)
    q = vwidth(z)
    nv = n_in - n_in % q
    c = n_in - nv
    n4 = n_out - n_out % 4
    for b in range(nr):
        h = H[b, o_in:o_in + n_in]
        out = H[b, o_out:o_out + n_out]
        for i in range(0, n4, 4):
            r = wo + i * n_in
            a0 = z
            a1 = z
            a2 = z
            a3 = z
            for j in range(0, nv, q):
                x = vload(z, h, j)
                a0 = vfma(vload(z, theta, r + j), x, a0)
                a1 = vfma(vload(z, theta, r + n_in + j), x, a1)
                a2 = vfma(vload(z, theta, r + 2 * n_in + j), x, a2)
                a3 = vfma(vload(z, theta, r + 3 * n_in + j), x, a3)
            if c > 0:
                x = vload_part(z, h, nv, c)
                a0 = vfma(vload_part(z, theta, r + nv, c), x, a0)
                a1 = vfma(vload_part(z, theta, r + n_in + nv, c), x, a1)
                a2 = vfma(vload_part(z, theta, r + 2 * n_in + nv, c), x, a2)
                a3 = vfma(vload_part(z, theta, r + 3 * n_in + nv, c), x, a3)
            t = vsum4(a0, a1, a2, a3)
            if bo >= 0:
                t = vadd(t, vload(t, theta, bo + i))
            vstore(out, i, t)
        for i in range(n4, n_out):
            r = wo + i * n_in
            a0 = z
            for j in range(0, nv, q):
                a0 = vfma(vload(z, theta, r + j), vload(z, h, j), a0)
            if c > 0:
                a0 = vfma(vload_part(z, theta, r + nv, c), vload_part(z, h, nv, c), a0)
            t = vsum1(a0)
            if bo >= 0:
                t = vadd(t, vload(t, theta, bo + i))
            vstore(out, i, t)
