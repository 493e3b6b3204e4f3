"""Teacher-student boundary data inside the kernels.

Inputs X ~ N(0, 1) (Gaussian number ``b * N_0 + j`` of the input stream is X[b, j]); the teacher's
output plus label noise (Gaussian ``b * N_M + i`` of the label stream, times ``noise``) goes
through the loss's target map (``losses.target_map``). The same function makes the finite
training and probe sets (shared streams, replica 0, step 0) and the fresh samples of online runs
(per-replica stream, the step's number), so both are the same numbers the NumPy twin gives.
"""
from __future__ import annotations

import numpy as np

from .losses import target_map
from .network import forward
from .options import I0, jit, pjit
from .philox import fill_gaussian, gauss_quad


@jit
def _gaussians(seed, stream, replica, step, first, out, scale):
    """out[i] = scale * Gaussian number first + i of the stream (any first)."""
    if first == 0:
        fill_gaussian(seed, stream, replica, step, out, scale)
        return
    for i in range(out.shape[0]):
        k = first + i
        g = gauss_quad(seed, stream, replica, step, k // 4)
        out[i] = scale * g[k % 4]


@jit
def teacher_fill(tnet, ttheta, seed, s_x, s_lab, replica, step, first, n, noise, loss,
                 X, Y, Ht, Dt, gbuf, zt):
    """Fill X[first:first+n] (inputs) and Y[first:first+n] (targets) from the teacher.

    Shapes: X (>= first+n, N_0), Y (>= first+n, N_M), Ht, Dt (>= n, teacher lay_off[M+1]),
    gbuf (>= n * max(N_0, N_M)), zt (N_M,). Sample numbering starts at ``first`` in the streams.
    """
    n0 = X.shape[1]
    nm = Y.shape[1]
    M = tnet.kind.shape[0]
    oz = tnet.lay_off[M]
    g = gbuf[: n * n0]
    _gaussians(seed, s_x, replica, step, first * n0, g, 1.0)
    for b in range(n):
        for j in range(n0):
            X[first + b, j] = g[b * n0 + j]
            Ht[b, j] = X[first + b, j]
    forward(tnet, ttheta, n, Ht, Dt, Ht[:0])
    lab = gbuf[: n * nm]
    if noise > 0.0:
        _gaussians(seed, s_lab, replica, step, first * nm, lab, noise)
    for b in range(n):
        for i in range(nm):
            zt[i] = Ht[b, oz + i]
            if noise > 0.0:
                zt[i] += lab[b * nm + i]
        target_map(loss, zt, Y[first + b])


@pjit
def make_teacher_set(tnet, ttheta, seed, s_x, s_lab, n, noise, loss, X, Y):
    """A finite teacher-student set of n samples (shared streams: replica 0, step 0).

    Works in blocks of 256 samples in parallel; the numbers do not depend on the blocking."""
    L = tnet.lay_off[tnet.lay_off.shape[0] - 1]
    blk = 256
    nblk = (n + blk - 1) // blk
    width = max(X.shape[1], Y.shape[1])
    for kb in range(nblk):
        first = kb * blk
        m = min(blk, n - first)
        Ht = np.zeros((m, L))
        Dt = np.zeros((m, L))
        gbuf = np.empty(m * width)
        zt = np.empty(Y.shape[1])
        teacher_fill(tnet, ttheta, seed, s_x, s_lab, I0, I0, first, m, noise, loss,
                     X, Y, Ht, Dt, gbuf, zt)
