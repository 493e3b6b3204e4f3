"""Forward and backward passes of one replica's network on a block of samples (BBD Eq. 1).

    z^(m+1) = W^(m) h^(m) + b^(m),   h^(0) = X,   h^(m) = sigma_m(z^(m)),   Z = h^(M)

where sigma_m is the hidden activation for m < M and the output activation at m = M (identity
unless the network says otherwise, e.g. SFT example 1).

Links come in two kinds. DENSE: W^(m) is a full N_{m+1} x N_m block, row-major. TABLE: neuron i of
layer m+1 sees F inputs ``conn_in[i, f]`` through weights ``conn_w[i, f]`` (indices into the link's
weight block); this covers the local network (untied and tied, periodic in width) and the SFT
example networks, whose weight blocks are ordered as the papers' lattice sites.

Per-sample buffers concatenate all layers 0..M along the last axis (``lay_off``):
H[b] holds h^(0..M), D[b] holds sigma'(z^(1..M)), G[b] the back-propagated dl/dz.

Speed (see docs/performance.md)
-------------------------------
All-dense networks have a fast path, ``dense_loss_grad`` (the ensemble kernel's force, for every
integrator, uses it). For batches of at least ``FM_MIN_BATCH`` samples, ``_dense_blas`` keeps
each layer as a contiguous (B, N_m) block and takes the three products of a link, with
G = dl/dz and H the activations,

    forward   Z = H W^T          backward   G_in = G W          weights   dW = G^T H

by the register-tiled micro-kernels of ``products`` (explicit vectors, ``simd``) up to
``products.SMALL_MNK`` multiply-adds, and by BLAS (Numba's ``np.dot``, held to the calling thread
while kernels run) above; the activation of a
layer is one loop over its block (``activations.act_vec``). Smaller batches (matrix-vector
work) go sample row by sample row on the 2-d buffers, in explicit vectors: the forward by
``products._mv_rows`` (dot products, four rows of W at a time), the backward in the body of
``dense_loss_grad`` (``dW`` by rows of vectors, ``G_in`` by two fma chains per vector of
columns; as separate functions they were no faster than the loops before them, written in the
body the network of (256, 16, 8, 1) takes 1.9 us a step against 2.6). The generic ``forward``
uses ``_mv_rows`` too; the generic ``backward`` (records, BBD entries, table links) uses
``gemm_nn``, a micro-kernel of rank-4 updates (``C[m, :] (+)= sum_k A[m, k] B[k, :]`` with four
scalars of A in registers per pass over a row of C).

Every sum is taken in an order fixed by the shapes alone (never by the thread or the replica), so
results are bitwise reproducible; they differ from the NumPy reference by round-off only.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import literal_unroll

from .activations import act_rows, act_vec
from .losses import loss_grad
from .options import EXACT, NOREF, disjoint_arrays, jit, wide_vectors
from .products import _mv_rows, _prod_nn, _prod_nt, _prod_tn
from .simd import vadd, vbcast, vfma, vload, vmul, vstore, vwidth, vzeros_1, vzeros_v

DENSE, TABLE = 0, 1

# Non-literal 0, 1, True, False for helper arguments: Numba compiles a separate specialisation of
# the callee for every pattern of literal constants among its arguments.
_I0 = np.int64(0)
_I1 = np.int64(1)
_T = np.bool_(True)
_F = np.bool_(False)

#: Batches of at least this many samples take the BLAS path (``_dense_blas``).
FM_MIN_BATCH = 4

#: Arrays describing an architecture to the kernels (built by ``langevin_nn.bulk.networks``).
#: widths int64[M+1]; lay_off int64[M+2]; kind, w_off, w_size, b_off (-1: no bias), fan, tab_off
#: int64[M];
#: conn_in, conn_w int64[sum of table sizes]; act int64[M] (activation of layer m+1);
#: act_prm float64[M, 3] (p, q, r); n_par: parameters per replica.
NetArrays = namedtuple(
    "NetArrays",
    "widths lay_off kind w_off w_size b_off fan tab_off conn_in conn_w act act_prm n_par",
)


@jit(inline="always")
def link(net, m):
    """Link m (layer m -> m + 1): (N_m, N_{m+1}, lay_off[m], lay_off[m+1], w_off[m], b_off[m])."""
    return (net.widths[m], net.widths[m + 1], net.lay_off[m], net.lay_off[m + 1], net.w_off[m],
            net.b_off[m])


# --------------------------------------------------------------------------- micro-kernel
@jit(fastmath=EXACT)
def gemm_nn(C, c_off, c_sm, A, a_off, a_sm, a_sk, Bm, b_off, b_sk, M, N, K, accumulate):
    """``C[m, n] (+)= sum_k A[m, k] B[k, n]`` for m < M, n < N, k < K on flat 1-d arrays:
    ``C[m, n] = C[c_off + m c_sm + n]``, ``A[m, k] = A[a_off + m a_sm + k a_sk]``,
    ``B[k, n] = Bm[b_off + k b_sk + n]``. ``accumulate = False`` overwrites C.

    Rank-4 updates: per row of C, four scalars of A and four rows of B per pass over the row
    (one load and one store of C per four fused multiply-adds); the pass vectorises over n.
    The regions of C and B may lie in one array as long as they do not overlap. Rows are taken
    as slices so that the inner index is a bare ``range`` variable: an offset index would make
    Numba's negative-index wraparound non-affine and turn the loads into gathers."""
    wide_vectors()
    K4 = K - K % 4
    for m in range(M):
        c0 = c_off + m * c_sm
        a0 = a_off + m * a_sm
        cr = C[c0:c0 + N]
        k = 0
        if not accumulate:
            if K4 > 0:
                x0 = A[a0]
                x1 = A[a0 + a_sk]
                x2 = A[a0 + 2 * a_sk]
                x3 = A[a0 + 3 * a_sk]
                b0 = Bm[b_off:b_off + N]
                b1 = Bm[b_off + b_sk:b_off + b_sk + N]
                b2 = Bm[b_off + 2 * b_sk:b_off + 2 * b_sk + N]
                b3 = Bm[b_off + 3 * b_sk:b_off + 3 * b_sk + N]
                for n in range(N):
                    cr[n] = (x0 * b0[n] + x1 * b1[n]) + (x2 * b2[n] + x3 * b3[n])
                k = 4
            else:
                x0 = A[a0]
                b0 = Bm[b_off:b_off + N]
                for n in range(N):
                    cr[n] = x0 * b0[n]
                k = 1
        while k < K4:
            ak = a0 + k * a_sk
            x0 = A[ak]
            x1 = A[ak + a_sk]
            x2 = A[ak + 2 * a_sk]
            x3 = A[ak + 3 * a_sk]
            r0 = b_off + k * b_sk
            b0 = Bm[r0:r0 + N]
            b1 = Bm[r0 + b_sk:r0 + b_sk + N]
            b2 = Bm[r0 + 2 * b_sk:r0 + 2 * b_sk + N]
            b3 = Bm[r0 + 3 * b_sk:r0 + 3 * b_sk + N]
            for n in range(N):
                cr[n] += (x0 * b0[n] + x1 * b1[n]) + (x2 * b2[n] + x3 * b3[n])
            k += 4
        while k < K:
            x0 = A[a0 + k * a_sk]
            r0 = b_off + k * b_sk
            b0 = Bm[r0:r0 + N]
            for n in range(N):
                cr[n] += x0 * b0[n]
            k += 1


# --------------------------------------------------------------------------- generic passes
@jit
def forward(net, theta, nr, H, D, Zs):
    """Forward pass for samples 0..nr-1 whose inputs are already in ``H[:, lay_off[0]:lay_off[1]]``.

    Fills h^(m) (H) and sigma'(z^(m)) (D) for m = 1..M; if ``Zs.shape[0] > 0`` also stores the
    pre-activations z^(m) in Zs. Shapes: theta (n_par,), H, D, Zs (>= nr, lay_off[M+1]).
    """
    wide_vectors()
    M = net.kind.shape[0]
    keep_z = Zs.shape[0] > 0
    zero = H.dtype.type(0.0)
    for m in range(M):
        n_in, n_out, o_in, o_out, wo, bo = link(net, m)
        if net.kind[m] == DENSE:
            _mv_rows(theta, wo, bo, n_in, n_out, H, o_in, o_out, nr)
        else:
            F = net.fan[m]
            to = net.tab_off[m]
            for b in range(nr):
                for i in range(n_out):
                    s = theta[bo + i] if bo >= 0 else zero
                    for f in range(F):
                        t = to + i * F + f
                        s += theta[wo + net.conn_w[t]] * H[b, o_in + net.conn_in[t]]
                    H[b, o_out + i] = s
        if keep_z:
            for b in range(nr):
                for i in range(o_out, o_out + n_out):
                    Zs[b, i] = H[b, i]
        act_rows(net.act[m], net.act_prm[m, 0], net.act_prm[m, 1], net.act_prm[m, 2],
                 H, D, _I0, nr, o_out, o_out + n_out)


@jit
def backward(net, theta, nr, H, D, G, grad, scale):
    """Back-propagate and accumulate ``scale * dl/dtheta`` into ``grad``.

    On entry G[b, lay_off[M]:] holds dl/dZ of sample b (Z = h^(M)); G is overwritten with
    ``scale * dl/dz`` of every layer. H and D come from ``forward`` on the same samples.
    """
    wide_vectors()
    M = net.kind.shape[0]
    L = G.shape[1]
    Gf = G.reshape(G.size)
    Hf = H.reshape(H.size)
    sc = G.dtype.type(scale)
    oz = net.lay_off[M]
    for b in range(nr):
        g = G[b, oz:oz + net.widths[M]]
        for i in range(g.size):
            g[i] *= sc
    for m in range(M - 1, -1, -1):
        n_in, n_out, o_in, o_out, wo, bo = link(net, m)
        for b in range(nr):
            g = G[b, o_out:o_out + n_out]
            d = D[b, o_out:o_out + n_out]
            for i in range(n_out):
                g[i] *= d[i]
        if bo >= 0:
            gb = grad[bo:bo + n_out]
            for b in range(nr):
                g = G[b, o_out:o_out + n_out]
                for i in range(n_out):
                    gb[i] += g[i]
        if net.kind[m] == DENSE:
            # dW += G^T H;  G_in = G W
            gemm_nn(grad, wo, n_in, Gf, o_out, _I1, L, Hf, o_in, L, n_out, n_in, nr, _T)
            if m > 0:
                gemm_nn(Gf, o_in, L, Gf, o_out, L, _I1, theta, wo, n_in, nr, n_in, n_out, _F)
        else:
            F = net.fan[m]
            to = net.tab_off[m]
            if m > 0:
                for b in range(nr):
                    for j in range(n_in):
                        G[b, o_in + j] = 0.0
            for b in range(nr):
                for i in range(n_out):
                    di = G[b, o_out + i]
                    for f in range(F):
                        t = to + i * F + f
                        w = wo + net.conn_w[t]
                        grad[w] += di * H[b, o_in + net.conn_in[t]]
                        if m > 0:
                            G[b, o_in + net.conn_in[t]] += theta[w] * di


# --------------------------------------------------------------------------- dense fast path
@jit
def all_dense(net):
    """True if every link is DENSE (the networks ``dense_loss_grad`` handles)."""
    for m in range(net.kind.shape[0]):
        if net.kind[m] != DENSE:
            return False
    return True


@jit(**NOREF)
def _dense_blas(net, loss, theta, nr, H, Yb, grad, scale, HS, DS, GS):
    """``dense_loss_grad`` for batches of >= FM_MIN_BATCH samples, by whole-layer products.

    HS, DS, GS (flat) hold activations, derivatives and dl/dz layer by layer, each layer a
    contiguous (nr, N_m) sample-major block at ``nr * lay_off[m]``; ``grad`` is overwritten.
    Every block is a flat slice, rows are slices of it (no ``reshape``, see ``products``)."""
    wide_vectors()
    disjoint_arrays()
    M = net.kind.shape[0]
    n0 = net.widths[0]
    for b in range(nr):
        xb = HS[b * n0:(b + 1) * n0]
        hb = H[b, :n0]
        for j in range(n0):
            xb[j] = hb[j]
    for m in range(M):
        n_in, n_out, o_in, o_out, wo, bo = link(net, m)
        Z = HS[nr * o_out:nr * (o_out + n_out)]
        _prod_nt(HS[nr * o_in:nr * (o_in + n_in)], theta[wo:wo + n_out * n_in], Z,
                 nr, n_in, n_out)
        if bo >= 0:
            bias = theta[bo:bo + n_out]
            for b in range(nr):
                zb = Z[b * n_out:(b + 1) * n_out]
                for i in range(n_out):
                    zb[i] += bias[i]
        # the layer's block is contiguous: one long row for the activation loop
        act_vec(net.act[m], net.act_prm[m, 0], net.act_prm[m, 1], net.act_prm[m, 2],
                Z, DS[nr * o_out:nr * (o_out + n_out)])
    oz = net.lay_off[M]
    nm = net.widths[M]
    total = 0.0
    for b in range(nr):
        o = nr * oz + b * nm
        total += loss_grad(loss, HS[o:o + nm], Yb[b], GS[o:o + nm])
    sc = GS.dtype.type(scale)
    for m in range(M - 1, -1, -1):
        n_in, n_out, o_in, o_out, wo, bo = link(net, m)
        Hin = HS[nr * o_in:nr * (o_in + n_in)]
        Gz = GS[nr * o_out:nr * (o_out + n_out)]
        Dz = DS[nr * o_out:nr * (o_out + n_out)]
        # G <- G * sigma' (and the scale at the output)
        s_m = sc if m == M - 1 else GS.dtype.type(1.0)
        for i in range(nr * n_out):
            Gz[i] = s_m * Gz[i] * Dz[i]
        if bo >= 0:  # the bias gradient: the sum of G's rows, in sample order
            gb = grad[bo:bo + n_out]
            g = Gz[:n_out]
            for i in range(n_out):
                gb[i] = g[i]
            for b in range(1, nr):
                g = Gz[b * n_out:(b + 1) * n_out]
                for i in range(n_out):
                    gb[i] += g[i]
        # dW = G^T H;  G_in = G W
        _prod_tn(Gz, Hin, grad[wo:wo + n_out * n_in], n_out, nr, n_in)
        if m > 0:
            _prod_nn(Gz, theta[wo:wo + n_out * n_in], GS[nr * o_in:nr * (o_in + n_in)],
                     nr, n_out, n_in)
    return total


@jit(**NOREF)
def dense_loss_grad(net, loss, theta, nr, H, D, G, Yb, grad, scale, HT, DT):
    """Loss summed over samples 0..nr-1 and ``grad = scale * its gradient`` (overwritten, not
    accumulated) for a network whose links are all DENSE; the inputs are in H's input layer.

    The same quantities as ``forward`` + ``loss_grad`` + ``backward`` into a zeroed ``grad``, up to
    round-off; H, D, G (>= nr, L) sample-major as there; HT, DT flat scratch of >= nr * L
    elements. Batches of at least FM_MIN_BATCH samples go to ``_dense_blas``; smaller ones
    (matrix-vector work) go row by row in explicit vectors (module docstring)."""
    wide_vectors()
    disjoint_arrays()
    if nr >= FM_MIN_BATCH:
        return _dense_blas(net, loss, theta, nr, H, Yb, grad, scale, HT, DT, D.reshape(D.size))
    M = net.kind.shape[0]
    for m in range(M):
        n_out = net.widths[m + 1]
        o_out = net.lay_off[m + 1]
        _mv_rows(theta, net.w_off[m], net.b_off[m], net.widths[m], n_out, H, net.lay_off[m],
                 o_out, nr)
        act_rows(net.act[m], net.act_prm[m, 0], net.act_prm[m, 1], net.act_prm[m, 2],
                 H, D, _I0, nr, o_out, o_out + n_out)
    oz = net.lay_off[M]
    nm = net.widths[M]
    total = 0.0
    for b in range(nr):
        total += loss_grad(loss, H[b, oz:oz + nm], Yb[b], G[b, oz:oz + nm])
    # backward (G carries scale * dl/dz, so grad needs no further scaling)
    zv = vzeros_v(grad)
    z1 = vzeros_1(grad)
    vq = vwidth(zv)
    sc = G.dtype.type(scale)
    for m in range(M - 1, -1, -1):
        n_in, n_out, o_in, o_out, wo, bo = link(net, m)
        s_m = sc if m == M - 1 else G.dtype.type(1.0)
        for b in range(nr):
            g = G[b, o_out:o_out + n_out]
            d = D[b, o_out:o_out + n_out]
            for i in range(n_out):
                g[i] = s_m * g[i] * d[i]
        if bo >= 0:
            gb = grad[bo:bo + n_out]
            g = G[0, o_out:o_out + n_out]
            for i in range(n_out):
                gb[i] = g[i]
            for b in range(1, nr):
                g = G[b, o_out:o_out + n_out]
                for i in range(n_out):
                    gb[i] += g[i]
        # dW = G^T H, a sum of nr outer products, and G_in = G W: by vectors of columns, then
        # the column tail one lane at a time (the same roundings). One body per width
        # (literal_unroll): through Numba's inline="always" helpers the network of
        # (256, 16, 8, 1) took 2.6 us a step against 1.9 us.
        dw = grad[wo:wo + n_out * n_in]
        nv = n_in - n_in % vq
        n2 = n_out - n_out % 2
        for z in literal_unroll((zv, z1)):
            q = vwidth(z)
            j0 = 0 if q > 1 else nv
            j1 = nv if q > 1 else n_in
            for b in range(nr):
                h = H[b, o_in:o_in + n_in]
                g = G[b, o_out:o_out + n_out]
                for j in range(j0, j1, q):
                    hv = vload(z, h, j)
                    if b == 0:
                        for i in range(n_out):
                            vstore(dw, i * n_in + j, vmul(vbcast(z, g, i), hv))
                    else:
                        for i in range(n_out):
                            r = i * n_in + j
                            vstore(dw, r, vfma(vbcast(z, g, i), hv, vload(z, dw, r)))
            if m > 0:
                # two fma chains, over the even and the odd rows of W, added at the end
                for b in range(nr):
                    g = G[b, o_out:o_out + n_out]
                    gin = G[b, o_in:o_in + n_in]
                    for j in range(j0, j1, q):
                        a0 = z
                        a1 = z
                        for i in range(0, n2, 2):
                            r = wo + i * n_in + j
                            a0 = vfma(vbcast(z, g, i), vload(z, theta, r), a0)
                            a1 = vfma(vbcast(z, g, i + 1), vload(z, theta, r + n_in), a1)
                        if n2 < n_out:
                            a0 = vfma(vbcast(z, g, n2), vload(z, theta, wo + n2 * n_in + j), a0)
                        vstore(gin, j, vadd(a0, a1))
    return total
