"""Bulk-boundary decomposition inside the kernels (BBD Eqs. 5-7, physics.md section 4).

Change of variables b^(m) -> z^(m+1) with the sample of each step:
b^(m) = z^(m+1) - A^(m), A^(m) = W^(m) sigma(z^(m)), A^(0) = W^(0) X. With forward differences
D f = (f_{t+1} - f_t) / dt, where z_t = z(theta_t, X_t), per link m and sample:

    1/2 |D b^(m)|^2 = 1/2 |D z^(m+1)|^2 - D z^(m+1) . D A^(m) + 1/2 |D A^(m)|^2

so that L = sum_m kin_W^(m) + sum_m kin_b^(m) - l equals L_bulk + L_boundary with

    L_bulk     = sum_m kin_W^(m) + sum_{m=0..M-1} kin_z^(m+1) + sum_{m>=1} (cross^(m) + quad^(m))
    L_boundary = cross^(0) + quad^(0) - l

(kin = 1/2 |D .|^2, cross = -D z . D A, quad = 1/2 |D A|^2; z-terms averaged over the batch,
sample s at t paired with sample s at t + 1). The paper's printed Eq. 7 lacks the 1/2 on the two
|D A|^2 terms; with it as printed the identity fails (docs/bbd.md). A^(m) is computed here by its
own product W^(m) h^(m), not as z - b, so the identity checks the forward pass as well.

A record at step t needs step t + 1: ``bbd_begin`` (called at a record step t) keeps theta_t and
the z, A of step t in the State's pending buffers; ``bbd_end`` (called at step t + 1, possibly in
the next chunk) completes the entry. Two variants: the minibatch of each step (the stochastic
boundary) and the fixed probe set (parameter motion only).

Rows of ``bbd_link`` (R, n, 6, M): kin_W, kin_b, kin_z (of layer m+1), cross, quad, kin_W_drift.
Rows of ``bbd_link_p`` (R, n, 3, M): kin_z, cross, quad on the probe set. ``bbd_tot`` and
``bbd_tot_p`` (R, n, 7): l, L, bulk, boundary_in, boundary_out, residual, norm, where residual =
|L - bulk - boundary| / norm and norm = the sum of the absolute values of all terms.
"""
from __future__ import annotations

from .network import DENSE, link
from .options import jit

KIN_W, KIN_B, KIN_Z, CROSS, QUAD, KIN_W_DRIFT = range(6)
T_LOSS, T_L, T_BULK, T_BIN, T_BOUT, T_RES, T_NORM = range(7)


@jit
def link_products(net, theta, nr, H, out):
    """out[b, lay_off[m+1] + i] = (W^(m) h^(m))_i without bias, for samples 0..nr-1 (H from a
    forward pass: h^(0) = X, h^(m) = sigma(z^(m)))."""
    M = net.kind.shape[0]
    for m in range(M):
        n_in, n_out, o_in, o_out, wo, _ = link(net, m)
        if net.kind[m] == DENSE:
            for b in range(nr):
                for i in range(n_out):
                    s = 0.0
                    row = wo + i * n_in
                    for j in range(n_in):
                        s += theta[row + j] * H[b, o_in + j]
                    out[b, o_out + i] = s
        else:
            F = net.fan[m]
            to = net.tab_off[m]
            for b in range(nr):
                for i in range(n_out):
                    s = 0.0
                    for f in range(F):
                        t = to + i * F + f
                        s += theta[wo + net.conn_w[t]] * H[b, o_in + net.conn_in[t]]
                    out[b, o_out + i] = s


@jit
def z_terms(net, zt, At, z1, A1, nr, dt, out, col):
    """Add the batch-averaged kin_z, cross, quad of samples 0..nr-1 between (zt, At) at t and
    (z1, A1) at t + 1 into out[col + 0..2, m]; arrays (nr, Lz) with layer m+1 at lay_off[m+1] - N_0."""
    M = net.kind.shape[0]
    n0 = net.widths[0]
    inv = 1.0 / dt
    for m in range(M):
        o = net.lay_off[m + 1] - n0
        kz = 0.0
        cr = 0.0
        qa = 0.0
        for b in range(nr):
            for i in range(net.widths[m + 1]):
                dz = (z1[b, o + i] - zt[b, o + i]) * inv
                da = (A1[b, o + i] - At[b, o + i]) * inv
                kz += 0.5 * dz * dz
                cr -= dz * da
                qa += 0.5 * da * da
        out[col, m] += kz / nr
        out[col + 1, m] += cr / nr
        out[col + 2, m] += qa / nr


@jit
def totals(net, link, kz_row, loss, tot):
    """Fill tot (7,) from the per-link terms: kin_W, kin_b in link rows 0, 1; kin_z, cross, quad
    in rows kz_row .. kz_row + 2."""
    M = net.kind.shape[0]
    kw = 0.0
    kb = 0.0
    bulk = 0.0
    norm = abs(loss)
    for m in range(M):
        kw += link[KIN_W, m]
        kb += link[KIN_B, m]
        bulk += link[KIN_W, m] + link[kz_row, m]
        norm += link[KIN_W, m] + link[KIN_B, m] + link[kz_row, m]
        norm += abs(link[kz_row + 1, m]) + link[kz_row + 2, m]
        if m > 0:
            bulk += link[kz_row + 1, m] + link[kz_row + 2, m]
    L = kw + kb - loss
    b_in = link[kz_row + 1, 0] + link[kz_row + 2, 0]
    tot[T_LOSS] = loss
    tot[T_L] = L
    tot[T_BULK] = bulk
    tot[T_BIN] = b_in
    tot[T_BOUT] = -loss
    tot[T_NORM] = norm
    tot[T_RES] = abs(L - (bulk + b_in - loss)) / norm if norm > 0.0 else 0.0


@jit
def param_terms(net, th0, th1, dt, link):
    """kin_W^(m) and kin_b^(m) = 1/2 |D W^(m)|^2, 1/2 |D b^(m)|^2 into link rows 0 and 1."""
    M = net.kind.shape[0]
    inv = 1.0 / dt
    for m in range(M):
        s = 0.0
        for i in range(net.w_off[m], net.w_off[m] + net.w_size[m]):
            d = (th1[i] - th0[i]) * inv
            s += 0.5 * d * d
        link[KIN_W, m] = s
        s = 0.0
        if net.b_off[m] >= 0:
            for i in range(net.b_off[m], net.b_off[m] + net.widths[m + 1]):
                d = (th1[i] - th0[i]) * inv
                s += 0.5 * d * d
        link[KIN_B, m] = s


@jit
def drift_terms(net, grad, out):
    """out[m] = 1/2 |g_W^(m)|^2: kin_W of the overdamped drift D W = -eta g / eta = -g."""
    for m in range(net.kind.shape[0]):
        s = 0.0
        for i in range(net.w_off[m], net.w_off[m] + net.w_size[m]):
            s += 0.5 * grad[i] * grad[i]
        out[m] = s


@jit
def copy_layers(net, src, nr, dst):
    """dst[b, :] = src[b, N_0:] for samples 0..nr-1 (layers 1..M of a per-sample buffer)."""
    n0 = net.widths[0]
    for b in range(nr):
        for c in range(dst.shape[1]):
            dst[b, c] = src[b, n0 + c]
