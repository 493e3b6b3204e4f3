"""The cost the dynamics descends (physics.md sections 2-3), its exact gradient and its exact
Hessian:

    C(theta) = s * sum_{p=1..P} l(Z(theta, X_p), Y_p) + lambda/2 |theta|^2,

s = 1 (``reduction = "sum"``, the SFT cost of Eq. 2) or 1/P (``"mean"``), over the full training
set, lambda = ``cfg.dynamics.lam.value(0)``. Units: those of the loss (MSE: squared target units);
theta is dimensionless, so H has the units of C.

:class:`TrainingCost` gives C, its exact gradient and its exact Hessian at any theta. The Hessian
is analytic (Pearlmutter's R-operator applied to the back-propagation of BBD Eq. 1, with the
second derivatives of the activations and of the loss), not finite differences: it is exact to
round-off for every architecture, activation and loss of the catalogue (relu'' and the hinge's
l'' are 0, the kinks' delta functions dropped as in the kernels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax

from ..boundary import losses
from ..bulk.activations import evaluate
from ..bulk.networks import Layout, build_layout
from ..errors import UserError
from ..kernels.network import TABLE


def _embedding(layout: Layout, m: int) -> sp.csr_matrix:
    """E_m: the link's weight block (w_size,) -> its full matrix W^(m) flattened row-major
    (N_{m+1} N_m,); W = E_m theta_block. Tied weights appear in several entries."""
    a = layout.arrays
    n_in, n_out = layout.widths[m], layout.widths[m + 1]
    size = int(a.w_size[m])
    if a.kind[m] != TABLE:
        return sp.identity(n_out * n_in, format="csr")
    F = int(a.fan[m])
    o = int(a.tab_off[m])
    ci = a.conn_in[o: o + n_out * F].reshape(n_out, F)
    cw = a.conn_w[o: o + n_out * F].reshape(n_out, F)
    rows = (np.arange(n_out)[:, None] * n_in + ci).ravel()
    return sp.csr_matrix((np.ones(rows.size), (rows, cw.ravel())), shape=(n_out * n_in, size))


@dataclass
class TrainingCost:
    """C(theta) = scale * sum_p l(Z(theta, X_p), Y_p) + lam/2 |theta|^2 (see the module docstring).

    X (P, N_0), Y (P, N_M) float64; ``scale`` s = 1 (sum) or 1/P (mean); ``lam`` lambda >= 0.
    ``net`` is the ``NetworkConfig`` (activations), ``layout`` its ``Layout``.
    """

    net: object
    layout: Layout
    loss: str
    X: np.ndarray
    Y: np.ndarray
    scale: float
    lam: float = 0.0

    def __post_init__(self):
        self.X = np.asarray(self.X, float)
        self.Y = np.asarray(self.Y, float)
        lay = self.layout
        self._E = [_embedding(lay, m) for m in range(lay.depth)]
        self._acts = [self.net.output_activation if m == lay.depth - 1 else self.net.activation
                      for m in range(lay.depth)]

    @property
    def n_par(self) -> int:
        return self.layout.n_par

    # -- full matrices ----------------------------------------------------------------------
    def _weights(self, theta):
        lay = self.layout
        Ws, bs = [], []
        for m in range(lay.depth):
            n_in, n_out = lay.widths[m], lay.widths[m + 1]
            Ws.append((self._E[m] @ theta[lay.w_slice(m)]).reshape(n_out, n_in))
            bsl = lay.b_slice(m)
            bs.append(theta[bsl] if bsl is not None else np.zeros(n_out))
        return Ws, bs

    def _forward(self, theta):
        Ws, bs = self._weights(theta)
        h, z = [self.X], [None]
        for m in range(self.layout.depth):
            z.append(h[-1] @ Ws[m].T + bs[m])
            h.append(evaluate(self._acts[m], z[-1]))
        return Ws, z, h

    def _backward(self, Ws, z, h):
        """d_{m+1} = dC/dz^(m+1) (P, N_{m+1}) for every link, data part only."""
        M = self.layout.depth
        e = self.scale * losses.loss_grad(self.loss, h[M], self.Y)
        d = [None] * (M + 1)
        for m in range(M - 1, -1, -1):
            d[m + 1] = e * evaluate(self._acts[m], z[m + 1], 1)
            e = d[m + 1] @ Ws[m]
        return d

    def value(self, theta) -> float:
        """C(theta), a float (units of the loss)."""
        theta = np.asarray(theta, float)
        _, _, h = self._forward(theta)
        data = self.scale * float(np.sum(losses.loss(self.loss, h[-1], self.Y)))
        return data + 0.5 * self.lam * float(theta @ theta)

    def gradient(self, theta) -> np.ndarray:
        """dC/dtheta (n_par,): back-propagation with full matrices, exact."""
        theta = np.asarray(theta, float)
        Ws, z, h = self._forward(theta)
        d = self._backward(Ws, z, h)
        lay = self.layout
        g = np.zeros(lay.n_par)
        for m in range(lay.depth):
            g[lay.w_slice(m)] = self._E[m].T @ (d[m + 1].T @ h[m]).ravel()
            bsl = lay.b_slice(m)
            if bsl is not None:
                g[bsl] = d[m + 1].sum(axis=0)
        return g + self.lam * theta

    def _loss_hvp(self, hM, R):
        """s * d^2 l / dZ^2 applied to R (n_dir, P, N_M), per sample."""
        s = self.scale
        if self.loss == "mse":
            return 2.0 * s * R
        if self.loss == "hinge":
            return np.zeros_like(R)
        q = softmax(hM, axis=-1)  # (P, N_M)
        ysum = self.Y.sum(axis=-1, keepdims=True)
        qR = np.sum(q * R, axis=-1, keepdims=True)
        return s * ysum * (q * R - q * qR)

    def hessian_vector(self, theta, V) -> np.ndarray:
        """H V for directions V (n_dir, n_par) -> (n_dir, n_par): the exact R-operator
        (Pearlmutter 1994) of the back-propagation, second derivatives included."""
        theta = np.asarray(theta, float)
        V = np.atleast_2d(np.asarray(V, float))
        lay = self.layout
        M = lay.depth
        Ws, z, h = self._forward(theta)
        d = self._backward(Ws, z, h)
        nd = V.shape[0]
        Vw, Vb = [], []
        for m in range(M):
            n_in, n_out = lay.widths[m], lay.widths[m + 1]
            Vw.append((self._E[m] @ V[:, lay.w_slice(m)].T).T.reshape(nd, n_out, n_in))
            bsl = lay.b_slice(m)
            Vb.append(V[:, bsl] if bsl is not None else np.zeros((nd, n_out)))
        # R-forward
        Rh = [np.zeros((nd,) + self.X.shape)]
        Rz = [None]
        for m in range(M):
            rz = (np.einsum("dpj,ij->dpi", Rh[m], Ws[m]) + np.einsum("pj,dij->dpi", h[m], Vw[m])
                  + Vb[m][:, None, :])
            Rz.append(rz)
            Rh.append(evaluate(self._acts[m], z[m + 1], 1) * rz)
        # R-backward
        Re = self._loss_hvp(h[M], Rh[M])
        e = [None] * (M + 1)
        e[M] = self.scale * losses.loss_grad(self.loss, h[M], self.Y)
        for m in range(M - 1, 0, -1):
            e[m] = d[m + 1] @ Ws[m]
        out = np.zeros((nd, lay.n_par))
        for m in range(M - 1, -1, -1):
            s1 = evaluate(self._acts[m], z[m + 1], 1)
            s2 = evaluate(self._acts[m], z[m + 1], 2)
            Rd = Re * s1 + e[m + 1] * s2 * Rz[m + 1]
            RgW = np.einsum("dpi,pj->dij", Rd, h[m]) + np.einsum("pi,dpj->dij", d[m + 1], Rh[m])
            out[:, lay.w_slice(m)] = (self._E[m].T @ RgW.reshape(nd, -1).T).T
            bsl = lay.b_slice(m)
            if bsl is not None:
                out[:, bsl] = Rd.sum(axis=1)
            if m > 0:
                Re = np.einsum("dpi,ij->dpj", Rd, Ws[m]) + np.einsum("pi,dij->dpj", d[m + 1], Vw[m])
        return out + self.lam * V

    def hessian(self, theta, max_block: int = 4_000_000) -> np.ndarray:
        """The exact Hessian d^2 C / dtheta^2 (n_par, n_par), symmetric (the R-operator applied
        to the unit vectors in blocks of directions; symmetrised, the asymmetry is round-off)."""
        n = self.n_par
        per_dir = max(1, self.X.shape[0] * max(self.layout.widths) * 4)
        chunk = max(1, min(n, max_block // per_dir))
        H = np.zeros((n, n))
        eye = np.eye(n)
        for start in range(0, n, chunk):
            H[start:start + chunk] = self.hessian_vector(theta, eye[start:start + chunk])
        return 0.5 * (H + H.T)


def training_cost(cfg, layout: Layout | None = None, boundary=None) -> TrainingCost:
    """The dynamics' cost of a configuration over its full training set (see the module
    docstring). Raises ``UserError`` for online data (no finite training set)."""
    if cfg.data.online:
        raise UserError("data.online: the SFT cost needs a finite training set "
                        "(online data have none)")
    from ..boundary.sources import build_boundary

    layout = layout or build_layout(cfg.network)
    bd = boundary or build_boundary(cfg, layout)
    P = bd.X_train.shape[0]
    if P == 0:
        raise UserError("data.n_train: the SFT cost needs at least one training sample")
    scale = 1.0 / P if cfg.data.reduction == "mean" else 1.0
    return TrainingCost(cfg.network, layout, cfg.data.loss, bd.X_train, bd.Y_train, scale,
                        float(cfg.dynamics.lam.value(0)))


def is_quadratic(cfg) -> bool:
    """Whether the cost is exactly quadratic in theta: one link, identity or linear output
    activation, MSE (SFT example 1 and every single-layer linear network)."""
    net = cfg.network
    return (len(net.widths) == 2 and net.output_activation.name in ("identity", "linear")
            and cfg.data.loss == "mse")
