"""The ensemble kernels: a chunk of steps for every replica, with in-kernel records.

One call advances replicas 0..R-1 (``ReplicaBlocks``: blocks of replicas on threads) from step
s0 to s0 + n. Per replica and step s:

    overdamped   theta <- theta - eta g_s + sqrt(2 eta T) xi_s                        (BBD Eqs. 2-3)
    heavy ball   v <- beta v - eta g_s + sqrt(2 (1 - beta) eta T) xi_s;  theta <- theta + v
    underdamped  BAOAB (Leimkuhler & Matthews 2013) with one gradient per step:        (BBD Eq. 4)
                 p += h/2 F_s; theta += h/2 p; p <- c p + sqrt((1 - c^2) T) xi_s (c = e^{-gamma h});
                 theta += h/2 p; F_{s+1} = -grad(l_{s+1} + lambda/2 |theta|^2); p += h/2 F_{s+1}

with g_s = grad(l_{B_s}(theta_s) + lambda_s/2 |theta_s|^2), the minibatch B_s of step s (BATCH
stream, or the ONLINE streams) and the thermal noise xi_s of step s (NOISE stream). After the
update of step s, if (s + 1) is a multiple of ``rec.every`` the state at s + 1 is recorded.

A replica whose minibatch loss (per sample) is NaN, inf or above ``dyn.bound``, or whose
parameters stop being finite, is frozen: ``diverged`` is set, ``diverged_step`` holds the step, its
later records are NaN, and the other replicas go on.
"""
from __future__ import annotations

import math
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import prange

from . import streams
from . import bbd as _bbd
from .data import teacher_fill
from .losses import loss_grad
from .network import all_dense, backward, dense_loss_grad, forward
from .options import I0, NOREF, jit, pjit, wide_vectors
from .philox import NOISE_BUF, fill_gaussian, fill_indices, fill_noise, noisy_axpby

OVERDAMPED, UNDERDAMPED, HEAVY_BALL = 0, 1, 2
#: rows of the per-step schedule table ``Dyn.sched`` (shape (6, n + 1): steps s0 .. s0 + n)
ETA, TEMP, GAMMA, BETA, LAM, DT = range(6)

#: The boundary: training set X (P, N_0), Y (P, N_M) (empty for online data), probe set Xp, Yp;
#: online (bool), teacher parameters ttheta and label noise for online data (the teacher's
#: NetArrays travel as a separate kernel argument ``tnet``: Numba's parallel loops cannot take
#: nested tuples), loss code, mean (bool:
#: the `mean` reduction), B (batch size; P for a full batch), full (bool: all P in order).
Boundary = namedtuple("Boundary", "X Y Xp Yp online ttheta noise loss mean B full")
#: integ code, seed (uint64), bound (per-sample loss bound), sched (6, n + 1) float64.
Dyn = namedtuple("Dyn", "integ seed bound sched")
#: theta, mom, force (R, n_par); replica (R,) global indices; diverged (R,) bool;
#: diverged_step (R,) int64 (-1: never); force_ok (R,) bool (BAOAB force cached for the current step).
#: BBD pending record (kernels/bbd.py; zero-size when off): bbd_pending (R,) bool; bbd_theta
#: (R, n_par); bbd_z, bbd_A (R, B, Lz) and bbd_zp, bbd_Ap (R, K, Lz) at the record step (minibatch
#: and probe variants; Lz = sum of N_1..N_M); bbd_scal (R, 2 + M): cost on the minibatch, cost on
#: the probe set, kin_W_drift per link.
State = namedtuple("State", "theta mom force replica diverged diverged_step force_ok "
                            "bbd_pending bbd_theta bbd_z bbd_A bbd_zp bbd_Ap bbd_scal")
#: Record buffers of one chunk. every: record cadence; loss_batch, loss_train, loss_probe (R, n_rec)
#: (loss_train (R, 0) when off); w_norm2, b_norm2 (R, n_rec, M) (or (R, 0, M)); kinetic,
#: kinetic_o (R, n_rec) or (R, 0); energy (R, n_rec) or (R, 0): E = 1/2 |p|^2 + l + lambda/2
#: |theta|^2 with l the dynamics' cost on the step's minibatch; snap_every, snap (R, n_snap,
#: n_par); z_every,
#: z (R, n_z, K, sum_{m>=1} N_m); bbd_every (0: off), bbd_link (R, n_bbd, 6, M), bbd_link_p
#: (R, n_bbd, 3, M), bbd_tot, bbd_tot_p (R, n_bbd, 7) for the BBD entries of steps t in
#: [s0, s0 + n) (completed one step later; see kernels/bbd.py).
Rec = namedtuple(
    "Rec",
    "every loss_batch loss_train loss_probe w_norm2 b_norm2 kinetic kinetic_o energy "
    "snap_every snap z_every z bbd_every bbd_link bbd_link_p bbd_tot bbd_tot_p",
)


@jit
def _rows(s0, n, every):
    """Number of multiples of ``every`` in (s0, s0 + n]."""
    if every <= 0:
        return 0
    return (s0 + n) // every - s0 // every


@jit(inline="always")
def load_batch(net, tnet, bd, seed, rg, step, H, Yb, idx, Xb, Ht, Dt, gbuf, zt):
    """Put the minibatch of ``step`` for global replica ``rg`` into H's input layer and Yb."""
    B = bd.B
    n0 = net.widths[0]
    if bd.online:
        teacher_fill(tnet, bd.ttheta, seed, streams.ONLINE_X, streams.ONLINE_LABEL, rg, step,
                     I0, B, bd.noise, bd.loss, Xb, Yb, Ht, Dt, gbuf, zt)
        for b in range(B):
            for j in range(n0):
                H[b, j] = Xb[b, j]
        return
    if bd.full:
        for b in range(B):
            idx[b] = b
    else:
        fill_indices(seed, streams.BATCH, rg, step, idx, bd.X.shape[0])
    for b in range(B):
        p = idx[b]
        for j in range(n0):
            H[b, j] = bd.X[p, j]
        for i in range(Yb.shape[1]):
            Yb[b, i] = bd.Y[p, i]


@jit
def loss_and_grad(net, loss, theta, nr, H, D, G, Yb, grad, scale, want_grad):
    """Sum over samples 0..nr-1 of the loss; if want_grad, adds scale * its gradient to grad."""
    M = net.kind.shape[0]
    oz = net.lay_off[M]
    nm = net.widths[M]
    forward(net, theta, nr, H, D, H[:0])
    total = 0.0
    for b in range(nr):
        total += loss_grad(loss, H[b, oz:oz + nm], Yb[b], G[b, oz:oz + nm])
    if want_grad:
        backward(net, theta, nr, H, D, G, grad, scale)
    return total


@jit
def dataset_loss(net, loss, theta, X, Y, H, D, G, Yb):
    """Mean per-sample loss over a whole data set, in blocks of H.shape[0] samples."""
    P = X.shape[0]
    nb = H.shape[0]
    total = 0.0
    for first in range(0, P, nb):
        m = min(nb, P - first)
        for b in range(m):
            for j in range(X.shape[1]):
                H[b, j] = X[first + b, j]
            for i in range(Y.shape[1]):
                Yb[b, i] = Y[first + b, i]
        total += loss_and_grad(net, loss, theta, m, H, D, G, Yb, theta[:0], 0.0, False)
    return total / max(P, 1)


@jit
def _probe_z(net, theta, Xp, H, D, Zs, out):
    """Pre-activations z^(1..M) of every probe input: out (K, lay_off[M+1] - N_0)."""
    K = Xp.shape[0]
    nb = H.shape[0]
    n0 = net.widths[0]
    L = net.lay_off[net.lay_off.shape[0] - 1]
    for first in range(0, K, nb):
        m = min(nb, K - first)
        for b in range(m):
            for j in range(n0):
                H[b, j] = Xp[first + b, j]
        forward(net, theta, m, H, D, Zs)
        for b in range(m):
            for c in range(n0, L):
                out[first + b, c - n0] = Zs[b, c]


@jit(inline="always")
def _next_multiple(t, every):
    """The first multiple of ``every`` (> 0) at or after step t (>= 0)."""
    return (t + every - 1) // every * every


@jit
def _next_due(st, rec, bbd_on, r, t):
    """The first step at or after t at which ``_observe`` has anything to do (exactly its
    conditions: a record, snapshot, probe-z or BBD cadence, or a pending BBD entry, which is
    completed at the next step). ``replica_chunk`` runs the steps up to it without a look at the
    records: most steps record nothing, and a call of ``_observe`` passes every array of the run
    (some 400 machine words: 2-4 us a step, more than the whole step of a small network)."""
    if bbd_on is not None and rec.bbd_every > 0 and st.bbd_pending[r]:
        return t
    nxt = _next_multiple(t, rec.every)
    if rec.snap_every > 0:
        nxt = min(nxt, _next_multiple(t, rec.snap_every))
    if rec.z_every > 0:
        nxt = min(nxt, _next_multiple(t, rec.z_every))
    if bbd_on is not None and rec.bbd_every > 0:
        nxt = min(nxt, _next_multiple(t, rec.bbd_every))
    return nxt


@jit
def _observe(net, tnet, bd, dyn, st, rec, bbd_on, r, s0, step, theta, mom, kin_scale, ko,
             H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, Zs):
    """Record the state at ``step`` (after ``step`` updates) into the chunk's record rows.

    ``bbd_on``: None leaves the BBD code out of the compiled kernel (Numba prunes branches on
    ``is None`` of a NoneType argument; it is a third of the compile time), True compiles it in
    (``rec.bbd_every`` then decides at run time)."""
    rg = st.replica[r]
    dead = st.diverged[r]
    nan = np.nan
    if bbd_on is not None and rec.bbd_every > 0 and st.bbd_pending[r]:
        _bbd_end(net, tnet, bd, dyn, st, rec, r, s0, step, theta, H, D, Yb, idx, Xb, Ht, Dt,
                 gbuf, zt)
    if step % rec.every == 0:
        row = step // rec.every - s0 // rec.every - 1
        if row < 0:  # the initial record (s0 == step == 0)
            row = 0
        if dead:
            rec.loss_batch[r, row] = nan
            rec.loss_probe[r, row] = nan
            if rec.loss_train.shape[1] > 0:
                rec.loss_train[r, row] = nan
            if rec.kinetic.shape[1] > 0:
                rec.kinetic[r, row] = nan
            if rec.kinetic_o.shape[1] > 0:
                rec.kinetic_o[r, row] = nan
            if rec.energy.shape[1] > 0:
                rec.energy[r, row] = nan
            if rec.w_norm2.shape[1] > 0:
                rec.w_norm2[r, row, :] = nan
            if rec.b_norm2.shape[1] > 0:
                rec.b_norm2[r, row, :] = nan
        else:
            load_batch(net, tnet, bd, dyn.seed, rg, step, H, Yb, idx, Xb, Ht, Dt, gbuf, zt)
            lb = loss_and_grad(net, bd.loss, theta, bd.B, H, D, G, Yb, theta[:0], 0.0, False)
            rec.loss_batch[r, row] = lb / bd.B
            rec.loss_probe[r, row] = dataset_loss(net, bd.loss, theta, bd.Xp, bd.Yp, H, D, G, Yb)
            if rec.loss_train.shape[1] > 0:
                rec.loss_train[r, row] = dataset_loss(net, bd.loss, theta, bd.X, bd.Y, H, D, G, Yb)
            if rec.kinetic.shape[1] > 0:
                e = 0.0
                for i in range(mom.shape[0]):
                    e += mom[i] * mom[i]
                rec.kinetic[r, row] = 0.5 * e * kin_scale
            if rec.kinetic_o.shape[1] > 0:
                rec.kinetic_o[r, row] = ko
            if rec.energy.shape[1] > 0:  # SFT Eq. 8: E = 1/2 |theta_dot|^2 + C (prior included)
                e = 0.0
                t2 = 0.0
                for i in range(mom.shape[0]):
                    e += mom[i] * mom[i]
                    t2 += theta[i] * theta[i]
                cost = lb / bd.B if bd.mean else lb
                lam_s = dyn.sched[LAM, step - s0]
                rec.energy[r, row] = 0.5 * e * kin_scale + cost + 0.5 * lam_s * t2
            if rec.w_norm2.shape[1] > 0:
                for m in range(net.kind.shape[0]):
                    wo = net.w_off[m]
                    s = 0.0
                    for i in range(wo, wo + net.w_size[m]):
                        s += theta[i] * theta[i]
                    rec.w_norm2[r, row, m] = s
                    if rec.b_norm2.shape[1] > 0:
                        s = 0.0
                        for i in range(net.widths[m + 1]):
                            v = theta[net.b_off[m] + i]
                            s += v * v
                        rec.b_norm2[r, row, m] = s
    if rec.snap_every > 0 and step % rec.snap_every == 0:
        row = max(step // rec.snap_every - s0 // rec.snap_every - 1, 0)
        for i in range(theta.shape[0]):
            rec.snap[r, row, i] = nan if dead else theta[i]
    if rec.z_every > 0 and step % rec.z_every == 0:
        row = max(step // rec.z_every - s0 // rec.z_every - 1, 0)
        if dead:
            rec.z[r, row, :, :] = nan
        else:
            _probe_z(net, theta, bd.Xp, H, D, Zs, rec.z[r, row])
    if bbd_on is not None and rec.bbd_every > 0 and step % rec.bbd_every == 0 and not dead:
        _bbd_begin(net, tnet, bd, dyn, st, r, s0, step, theta, H, D, G, Yb, idx, Xb, Ht, Dt,
                   gbuf, zt)


@jit
def _bbd_side(net, theta, nr, H, D, zdst, Adst):
    """z^(1..M) and A^(0..M-1) = W h (own products) of samples 0..nr-1 whose inputs are in H."""
    L = H.shape[1]
    Zs = np.empty((nr, L))
    P = np.empty((nr, L))
    forward(net, theta, nr, H, D, Zs)
    _bbd.link_products(net, theta, nr, H, P)
    _bbd.copy_layers(net, Zs, nr, zdst)
    _bbd.copy_layers(net, P, nr, Adst)


@jit
def _probe_sides(net, theta, Xp, H, D, zdst, Adst):
    """_bbd_side over the whole probe set, in blocks of H.shape[0] samples."""
    K = Xp.shape[0]
    nb = H.shape[0]
    for first in range(0, K, nb):
        m = min(nb, K - first)
        for b in range(m):
            for j in range(Xp.shape[1]):
                H[b, j] = Xp[first + b, j]
        _bbd_side(net, theta, m, H, D, zdst[first:first + m], Adst[first:first + m])


@jit
def _bbd_cost(net, bd, theta, H, D, G, Yb, nr, grad, want_grad):
    """The dynamics' cost of samples 0..nr-1 (reduction applied); optionally its gradient."""
    scale = 1.0 / nr if bd.mean else 1.0
    return scale * loss_and_grad(net, bd.loss, theta, nr, H, D, G, Yb, grad, scale, want_grad)


@jit
def _bbd_begin(net, tnet, bd, dyn, st, r, s0, step, theta, H, D, G, Yb, idx, Xb, Ht, Dt, gbuf,
               zt):
    """Keep theta_t and z, A of step t = ``step`` (minibatch of step t, and the probe set)."""
    B = bd.B
    rg = st.replica[r]
    load_batch(net, tnet, bd, dyn.seed, rg, step, H, Yb, idx, Xb, Ht, Dt, gbuf, zt)
    _bbd_side(net, theta, B, H, D, st.bbd_z[r], st.bbd_A[r])
    grad = np.zeros(theta.shape[0])
    st.bbd_scal[r, 0] = _bbd_cost(net, bd, theta, H, D, G, Yb, B, grad, True)
    if dyn.integ == OVERDAMPED:
        lam = dyn.sched[LAM, step - s0]  # the table covers steps s0 .. s0 + n
        for i in range(theta.shape[0]):
            grad[i] += lam * theta[i]
        _bbd.drift_terms(net, grad, st.bbd_scal[r, 2:])
    else:
        st.bbd_scal[r, 2:] = np.nan  # the drift split is defined for the overdamped update
    # probe variant: cost on the probe set with the run's reduction
    K = bd.Xp.shape[0]
    _probe_sides(net, theta, bd.Xp, H, D, st.bbd_zp[r], st.bbd_Ap[r])
    nb = H.shape[0]
    total = 0.0
    for first in range(0, K, nb):
        m = min(nb, K - first)
        for b in range(m):
            for j in range(bd.Xp.shape[1]):
                H[b, j] = bd.Xp[first + b, j]
            for i in range(bd.Yp.shape[1]):
                Yb[b, i] = bd.Yp[first + b, i]
        total += loss_and_grad(net, bd.loss, theta, m, H, D, G, Yb, theta[:0], 0.0, False)
    st.bbd_scal[r, 1] = total / K if bd.mean else total
    for i in range(theta.shape[0]):
        st.bbd_theta[r, i] = theta[i]
    st.bbd_pending[r] = True


@jit
def _bbd_end(net, tnet, bd, dyn, st, rec, r, s0, step, theta, H, D, Yb, idx, Xb, Ht, Dt, gbuf,
             zt):
    """Complete the pending entry of t = step - 1 with theta_{t+1} = theta and step t + 1."""
    t = step - 1
    e = rec.bbd_every
    row = t // e - (s0 - 1) // e - 1
    st.bbd_pending[r] = False
    if st.diverged[r]:
        rec.bbd_link[r, row, :, :] = np.nan
        rec.bbd_link_p[r, row, :, :] = np.nan
        rec.bbd_tot[r, row, :] = np.nan
        rec.bbd_tot_p[r, row, :] = np.nan
        return
    k = t - s0
    if dyn.integ == OVERDAMPED:
        dt = dyn.sched[ETA, k]
    elif dyn.integ == UNDERDAMPED:
        dt = dyn.sched[DT, k]
    else:
        dt = math.sqrt(dyn.sched[ETA, k])
    M = net.kind.shape[0]
    B = bd.B
    Lz = st.bbd_z.shape[2]
    link = rec.bbd_link[r, row]
    link[:, :] = 0.0
    _bbd.param_terms(net, st.bbd_theta[r], theta, dt, link)
    for m in range(M):
        link[_bbd.KIN_W_DRIFT, m] = st.bbd_scal[r, 2 + m]
    load_batch(net, tnet, bd, dyn.seed, st.replica[r], step, H, Yb, idx, Xb, Ht, Dt, gbuf, zt)
    z1 = np.empty((B, Lz))
    A1 = np.empty((B, Lz))
    _bbd_side(net, theta, B, H, D, z1, A1)
    _bbd.z_terms(net, st.bbd_z[r], st.bbd_A[r], z1, A1, B, dt, link, _bbd.KIN_Z)
    _bbd.totals(net, link, _bbd.KIN_Z, st.bbd_scal[r, 0], rec.bbd_tot[r, row])
    K = bd.Xp.shape[0]
    zp1 = np.empty((K, Lz))
    Ap1 = np.empty((K, Lz))
    _probe_sides(net, theta, bd.Xp, H, D, zp1, Ap1)
    lp = rec.bbd_link_p[r, row]
    full = np.zeros((6, M))
    full[_bbd.KIN_W] = link[_bbd.KIN_W]
    full[_bbd.KIN_B] = link[_bbd.KIN_B]
    _bbd.z_terms(net, st.bbd_zp[r], st.bbd_Ap[r], zp1, Ap1, K, dt, full, _bbd.KIN_Z)
    for q in range(3):
        for m in range(M):
            lp[q, m] = full[_bbd.KIN_Z + q, m]
    _bbd.totals(net, full, _bbd.KIN_Z, st.bbd_scal[r, 1], rec.bbd_tot_p[r, row])


@jit(**NOREF)
def _force(net, tnet, bd, dyn, rg, step, lam, theta, force, H, D, G, Yb, idx, Xb, Ht, Dt, gbuf,
           zt, fmH, fmD):
    """force = -grad(l_B(step) + lam/2 |theta|^2); returns the per-sample minibatch loss.

    A call without reference counting (``options.NOREF``), ``load_batch`` inlined into it. Not
    inlined into ``replica_chunk``: Numba's ``inline="always"`` binds every argument anew, which
    there counts the arrays of the network, teacher and data tuples one by one, twice a step
    (0.35-0.45 us of the step of (256, 16, 8, 1) on an AVX-512 Xeon, ``docs/performance.md``).

    All-dense networks take ``network.dense_loss_grad`` with the layer-blocked scratch fmH, fmD
    (size 0 for other networks, which take ``loss_and_grad``)."""
    load_batch(net, tnet, bd, dyn.seed, rg, step, H, Yb, idx, Xb, Ht, Dt, gbuf, zt)
    scale = -1.0 / bd.B if bd.mean else -1.0
    if fmH.size > 0:
        loss = dense_loss_grad(net, bd.loss, theta, bd.B, H, D, G, Yb, force, scale, fmH, fmD)
    else:
        force[:] = 0.0
        loss = loss_and_grad(net, bd.loss, theta, bd.B, H, D, G, Yb, force, scale, True)
    if lam != 0.0:
        for i in range(theta.shape[0]):
            force[i] -= lam * theta[i]
    return loss / bd.B


@jit
def _bad(loss, bound):
    return not (loss <= bound)  # NaN compares false


@jit
def _scratch(net, tnet, bd, rec, theta):
    """Per-replica scratch of a chunk, in theta's dtype where it holds network values: H, D, G,
    Zs (nb, L) (Zs (0, L) without probe pre-activation records), Yb (nb, N_M), Xb (B, N_0), the
    teacher's Ht, Dt (B or 0, L_teacher; float64), gbuf (B max(N_0, N_M)), zt (N_M,), idx (B,)
    int64; nb = max(B, 64) rows so that the probe set goes through in blocks of 64."""
    B = bd.B
    nb = max(B, 64)
    L = net.lay_off[net.lay_off.shape[0] - 1]
    Lt = tnet.lay_off[tnet.lay_off.shape[0] - 1]
    nm = net.widths[net.widths.shape[0] - 1]
    dt_ = theta.dtype
    H = np.zeros((nb, L), dt_)
    D = np.zeros((nb, L), dt_)
    G = np.zeros((nb, L), dt_)
    Zs = np.zeros((nb, L), dt_) if rec.z_every > 0 else np.zeros((0, L), dt_)
    Yb = np.zeros((nb, nm), dt_)
    Xb = np.zeros((B, net.widths[0]), dt_)
    Ht = np.zeros((B if bd.online else 0, Lt))
    Dt = np.zeros((B if bd.online else 0, Lt))
    gbuf = np.empty(B * max(net.widths[0], nm))
    zt = np.empty(nm)
    idx = np.zeros(B, np.int64)
    return H, D, G, Zs, Yb, Xb, Ht, Dt, gbuf, zt, idx


@jit
def replica_chunk(net, tnet, bd, dyn, st, rec, bbd_on, s0, n, r):
    """Advance replica r from step s0 by n steps (see the module docstring) and record."""
    wide_vectors()
    theta = st.theta[r]
    mom = st.mom[r]
    force = st.force[r]
    rg = st.replica[r]
    n_par = theta.shape[0]
    B = bd.B
    nb = max(B, 64)
    L = net.lay_off[net.lay_off.shape[0] - 1]
    dt_ = theta.dtype
    H, D, G, Zs, Yb, Xb, Ht, Dt, gbuf, zt, idx = _scratch(net, tnet, bd, rec, theta)
    grad = np.empty(n_par, dt_)
    xi = np.empty(n_par if dyn.integ == UNDERDAMPED else 0, dt_)
    # all-dense networks take the fast path in _force (network.dense_loss_grad, layer-blocked
    # scratch fmH, fmD); the noise of the overdamped and heavy-ball updates is generated inside
    # the update loop (philox.noisy_axpby, scratch nbuf)
    dense = all_dense(net)
    fmH = np.empty(nb * L if dense else 0, dt_)
    fmD = np.empty(nb * L if dense else 0, dt_)
    nbuf = np.empty(NOISE_BUF, dt_)  # the noise in the run's precision (philox.fill_noise)
    integ = dyn.integ
    seed = dyn.seed
    sched = dyn.sched
    ko = np.nan
    if integ == UNDERDAMPED and not st.force_ok[r] and not st.diverged[r]:
        l0 = _force(net, tnet, bd, dyn, rg, s0, sched[LAM, 0], theta, force,
                    H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, fmH, fmD)
        st.force_ok[r] = True
        if _bad(l0, dyn.bound):
            st.diverged[r] = True
            st.diverged_step[r] = s0
    dead = st.diverged[r]
    k = 0
    while k < n:
        # steps k .. k1 - 1 (none once the replica is frozen), then the records of step s0 + k1
        # if they are due
        nxt = _next_due(st, rec, bbd_on, r, s0 + k + 1)
        k1 = min(nxt - s0, n)
        while k < k1 and not dead:
            s = s0 + k
            eta = sched[ETA, k]
            T = sched[TEMP, k]
            lam = sched[LAM, k]
            if integ == UNDERDAMPED:
                h = sched[DT, k]
                half = 0.5 * h
                c = math.exp(-sched[GAMMA, k] * h)
                amp = math.sqrt(max(1.0 - c * c, 0.0) * T)
                if amp > 0.0:
                    fill_noise(seed, streams.NOISE, rg, s, xi, amp, nbuf)
                e = 0.0
                for i in range(n_par):
                    p = mom[i] + half * force[i]
                    theta[i] += half * p
                    p = c * p
                    if amp > 0.0:
                        p += xi[i]
                    e += p * p
                    theta[i] += half * p
                    mom[i] = p
                ko = 0.5 * e
                lb = _force(net, tnet, bd, dyn, rg, s + 1, sched[LAM, k + 1], theta, force,
                            H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, fmH, fmD)
                ssq = 0.0
                for i in range(n_par):
                    mom[i] += half * force[i]
                    ssq += theta[i] * theta[i] + mom[i] * mom[i]
                if _bad(lb, dyn.bound) or not math.isfinite(ssq):
                    dead = True
                    st.diverged[r] = True
                    st.diverged_step[r] = s + 1
            else:
                lb = _force(net, tnet, bd, dyn, rg, s, lam, theta, grad,
                            H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, fmH, fmD)
                if _bad(lb, dyn.bound):
                    dead = True
                    st.diverged[r] = True
                    st.diverged_step[r] = s
                else:
                    if integ == OVERDAMPED:
                        amp = math.sqrt(2.0 * eta * T)
                    else:
                        amp = math.sqrt(2.0 * (1.0 - sched[BETA, k]) * eta * T)
                    if integ == OVERDAMPED:
                        # theta += eta * force + amp * xi  (grad holds the force -g)
                        ssq = noisy_axpby(seed, streams.NOISE, rg, s, theta, 1.0, grad, eta,
                                          amp, nbuf)
                    else:
                        beta = sched[BETA, k]
                        ssq = noisy_axpby(seed, streams.NOISE, rg, s, mom, beta, grad, eta,
                                          amp, nbuf)
                        for i in range(n_par):
                            theta[i] += mom[i]
                            ssq += theta[i] * theta[i]
                    if not math.isfinite(ssq):
                        dead = True
                        st.diverged[r] = True
                        st.diverged_step[r] = s + 1
            k += 1
        k = k1
        if s0 + k == nxt:
            kin_scale = 1.0
            if integ == HEAVY_BALL:
                kin_scale = 1.0 / sched[ETA, k - 1]  # p = v / dt with dt = sqrt(eta)
            _observe(net, tnet, bd, dyn, st, rec, bbd_on, r, s0, s0 + k, theta, mom, kin_scale,
                     ko, H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, Zs)


@jit
def run_block(net, tnet, bd, dyn, st, rec, s0, n, bbd_on, r0, r1):
    """Advance replicas r0..r1-1 by n steps from s0; records in ``rec``. n = 0 records the
    initial state (step 0, rows 0 of ``rec``) instead: one kernel serves both, so the record
    code is compiled once (it is most of the compile time). ``bbd_on``: None (recording.bbd off:
    the BBD code is left out) or True (see ``_observe``). Releases the GIL: ``ReplicaBlocks``
    runs one block of replicas per thread."""
    for r in range(r0, r1):
        if n == 0:
            _initial_replica(net, tnet, bd, dyn, st, rec, bbd_on, r)
        else:
            replica_chunk(net, tnet, bd, dyn, st, rec, bbd_on, s0, n, r)


def _serial_blas():
    """Limit BLAS to one thread (the calling one) until ``.unregister()``: the kernels' BLAS
    products (``network._dense_blas``) then run whole on the replica block's own thread, never
    waiting on BLAS's thread pool nor competing with the other blocks for the cores, and their
    sums depend on the shapes alone. Process-wide (OpenBLAS has one thread setting), so the
    previous limits come back when the run ends. The BLAS that Numba's ``np.dot`` calls is
    SciPy's (``scipy.linalg.cython_blas``); it is imported first so that it is loaded."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def guided_blocks(R: int, threads: int, share: int) -> list[tuple[int, int]]:
    """Contiguous (r0, r1) blocks covering 0..R-1, each ceil(left / (share * threads)) replicas
    of the ``left`` not yet covered; one block for one thread."""
    if threads <= 1:
        return [(0, R)]
    out, r0 = [], 0
    while r0 < R:
        r1 = r0 + -(-(R - r0) // (share * threads))
        out.append((r0, r1))
        r0 = r1
    return out


class ReplicaBlocks:
    """``run_block`` over R replicas in contiguous blocks of decreasing size, which the threads take
    one at a time from a shared queue (a parallel loop around this call tree compiled for a quarter
    of a cold quickstart's time, done in Python). A dynamic schedule: on a shared machine the two
    cores' speeds differ from chunk to chunk (by 3-20 % on a Zen 4 machine), and a thread that
    finishes early takes more blocks instead of waiting at the end of the chunk. Guided sizes (each
    block ceil(left / (GUIDED_SHARE threads)) of the replicas not yet given out, a quarter of them
    on two threads, down to one replica): few calls (each unboxes some 60 arrays, about 25 us under
    the GIL), and the end of a chunk waits for one small block at most. Each replica's numbers
    depend on its own state and on ``(seed, stream, replica, step, counter)`` only, so the results
    depend neither on the number of threads nor on which thread ran which block. Use as a context
    manager (it owns a thread pool)."""

    #: A block takes 1 / (GUIDED_SHARE * threads) of the replicas not yet given out.
    GUIDED_SHARE = 2

    def __init__(self, R: int, threads: int):
        T = max(1, min(int(threads), R))
        self.threads = T
        self.blocks = guided_blocks(R, T, self.GUIDED_SHARE)
        self._pool = ThreadPoolExecutor(T - 1, "lnn-replicas") if T > 1 else None
        self._blas = _serial_blas()

    def __call__(self, net, tnet, bd, dyn, st, rec, s0, n, bbd_on):
        args = (net, tnet, bd, dyn, st, rec, s0, n, bbd_on)
        queue = iter(self.blocks)  # next() on a list iterator is atomic under the GIL

        def work():
            for r0, r1 in queue:
                run_block(*args, r0, r1)

        futures = [self._pool.submit(work) for _ in range(self.threads - 1)]
        try:
            work()
        finally:  # never return while another thread still writes into st or rec
            for f in futures:
                f.result()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
        self._blas.unregister()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@jit
def _initial_replica(net, tnet, bd, dyn, st, rec, bbd_on, r):
    """Record replica r's state at step 0 (rows 0 of ``rec``)."""
    theta = st.theta[r]
    H, D, G, Zs, Yb, Xb, Ht, Dt, gbuf, zt, idx = _scratch(net, tnet, bd, rec, theta)
    e = 0.0
    mom = st.mom[r]
    for i in range(mom.shape[0]):
        e += mom[i] * mom[i]
    kin_scale = 1.0
    if dyn.integ == HEAVY_BALL:
        kin_scale = 1.0 / dyn.sched[ETA, 0]
    _observe(net, tnet, bd, dyn, st, rec, bbd_on, r, I0, I0, theta, mom, kin_scale,
             0.5 * e * kin_scale, H, D, G, Yb, idx, Xb, Ht, Dt, gbuf, zt, Zs)


@pjit
def init_params(std, seed, stream, replica, out):
    """out[r, i] = std[i] * Gaussian i of (seed, stream, replica[r], step 0)."""
    for r in prange(out.shape[0]):
        g = np.empty(out.shape[1])
        fill_gaussian(seed, stream, replica[r], I0, g, 1.0)
        for i in range(out.shape[1]):
            out[r, i] = std[i] * g[i]


@jit
def schedule_table(kinds, units, prm, at, vals, nat, integ, s0, n, t0, out, times):
    """Per-step values of the schedules for steps s0 .. s0 + n, and the physical time.

    kinds, units (6,): schedule kind (0 constant, 1 linear, 2 exponential, 3 piecewise) and unit
    (0 steps, 1 time) of rows ETA, TEMP, GAMMA, BETA, LAM, DT; prm (6, 4): start, end, begin,
    until; at (6, A), vals (6, A + 1), nat (6,): piecewise nodes. out (6, n + 1) receives the
    values; times (n + 2,) receives t_{s0} = t0, t_{s+1} = t_s + dt_s with dt = eta (overdamped),
    h (underdamped), sqrt(eta) (heavy ball). Evaluated in a single sequential pass so the time
    is the same whatever the chunking.
    """
    t = t0
    for k in range(n + 1):
        times[k] = t
        for q in range(6):
            x = float(s0 + k) if units[q] == 0 else t
            kind = kinds[q]
            if kind == 0:
                v = vals[q, 0]
            elif kind == 3:
                j = 0
                while j < nat[q] and x >= at[q, j]:
                    j += 1
                v = vals[q, j]
            else:
                a = prm[q, 0]
                b = prm[q, 1]
                x0 = prm[q, 2]
                x1 = prm[q, 3]
                if x <= x0:
                    v = a
                elif x >= x1:
                    v = b
                else:
                    f = (x - x0) / (x1 - x0)
                    if kind == 1:
                        v = a + (b - a) * f
                    else:
                        v = a * math.exp(f * math.log(b / a))
            out[q, k] = v
        if integ == OVERDAMPED:
            dt = out[ETA, k]
        elif integ == UNDERDAMPED:
            dt = out[DT, k]
        else:
            dt = math.sqrt(out[ETA, k])
        t = t + dt
    times[n + 1] = t
