"""Synaptic field theory (SFT Eqs. 11-19; physics.md section 5): couplings of the weight field
and its Gaussian two-point function under overdamped Langevin dynamics.

The cost is the one the dynamics descends (physics.md sections 2-3):

    C(theta) = s * sum_{p=1..P} l(Z(theta, X_p), Y_p) + lambda/2 |theta|^2,

s = 1 (``reduction = "sum"``, the SFT cost of Eq. 2) or 1/P (``"mean"``), over the full training
set, lambda = ``cfg.dynamics.lam.value(0)``. Units: those of the loss (MSE: squared target units);
theta is dimensionless, so H has the units of C.

What is computed (docs/sft.md gives every formula with its paper equation):

* :class:`TrainingCost` -- C, its exact gradient and its exact Hessian at any theta. The Hessian
  is analytic (Pearlmutter's R-operator applied to the back-propagation of BBD Eq. 1, with the
  second derivatives of the activations and of the loss), not finite differences: it is exact to
  round-off for every architecture, activation and loss of the catalogue (relu'' and the hinge's
  l'' are 0, the kinks' delta functions dropped as in the kernels).
* :func:`lattice_fields` -- the synaptic fields: one per weight block (``w_1`` .. ``w_M``) and bias
  block (``b_1`` ..), each a periodic chain of sites in the layout's site order
  (``langevin_nn.bulk.networks``: the papers' order for sft1/sft2).
* :func:`field_couplings` -- J_i, K_i of SFT Eq. 14 from a field's Hessian block, the springs of
  longer range and the residual beyond nearest neighbours; J(x), K(x) of Eq. 17.
* :func:`expand` -- the expansion about a reference point (Eq. 11): C0, the source J_1 (gradient),
  J_2 = H / 2 organised by field pair, lattice offset and spatial derivative order (Eq. 19),
  the mass of each field, and the shift W* (minimum of the quadratic model).
* :func:`sft1_closed_form`, :func:`sft2_closed_form_at_zero` -- the closed forms of SFT example 1
  (Eq. 13) and of example 2 (Eq. 18) at W = 0.
* :func:`predicted_covariance`, :func:`two_point_by_distance`, :func:`measured_two_point`,
  :func:`compare_two_point` -- the stationary synaptic two-point function of the overdamped chain
  (discrete Lyapunov equation), measured C(d) with a jackknife over replicas, and the chi^2.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy import linalg, stats
from scipy.special import softmax

from .boundary import losses
from .bulk.activations import evaluate
from .bulk.networks import Layout, build_layout
from .errors import UserError
from .kernels.network import TABLE

__all__ = [
    "TrainingCost", "training_cost", "is_quadratic", "Field", "lattice_fields", "field_by_name",
    "FieldCouplings", "field_couplings", "hessian_from_couplings", "PairCouplings",
    "pair_couplings", "Expansion", "expand", "reference_point", "sft1_closed_form",
    "sft2_closed_form_at_zero", "predicted_covariance", "continuum_covariance",
    "dynamics_covariance", "two_point_by_distance", "TwoPoint", "measured_two_point",
    "Comparison", "compare_two_point", "ensemble_samples",
]


# ============================================================================================
# The cost, its gradient and its exact Hessian
# ============================================================================================

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
    from .boundary.sources import build_boundary

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


# ============================================================================================
# Fields and couplings
# ============================================================================================

@dataclass(frozen=True)
class Field:
    """A synaptic field: a block of theta whose entries are the sites of a periodic chain.

    name: ``w_m`` (weights of link m-1, the paper's w_m) or ``b_m`` (biases of link m-1);
    start, stop: its slice of theta; site i is theta[start + i] (layout order, the papers' site
    order for sft1/sft2; for a local network site (2k+1) n + o is the weight from neuron
    n + o - k of the layer below to neuron n, so the chain has a (2k+1)-site unit cell).
    """

    name: str
    start: int
    stop: int
    link: int
    kind: str  # "weight" or "bias"

    @property
    def n_sites(self) -> int:
        return self.stop - self.start

    @property
    def sites(self) -> np.ndarray:
        return np.arange(self.start, self.stop)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def lattice_fields(layout: Layout, net=None) -> list[Field]:
    """The fields of a lattice network (local untied, sft1, sft2): weight blocks, then bias
    blocks, each in site order. Dense and tied networks have no lattice ordering of their
    weights: ``UserError`` naming the config key."""
    if layout.architecture == "dense":
        raise UserError("network.architecture: \"dense\" has no lattice order of its weights, "
                        "so SFT couplings are undefined (use local, sft1 or sft2)")
    if net is not None and getattr(net, "tied", False) and layout.architecture == "local":
        raise UserError("network.tied: tied weights form no chain along the width (one weight "
                        "per offset), so SFT couplings are undefined; use tied = false")
    out = []
    for m in range(layout.depth):
        s = layout.w_slice(m)
        out.append(Field(f"w_{m + 1}", s.start, s.stop, m, "weight"))
    for m in range(layout.depth):
        s = layout.b_slice(m)
        if s is not None:
            out.append(Field(f"b_{m + 1}", s.start, s.stop, m, "bias"))
    return out


def field_by_name(fields: list[Field], name: str) -> Field:
    for f in fields:
        if f.name == name:
            return f
    raise UserError(f"--field: no field {name!r} (fields: {', '.join(f.name for f in fields)})")


def _offsets(n: int) -> np.ndarray:
    """Ring offsets r = 1 .. floor(n/2) of the springs between sites i and i + r."""
    return np.arange(1, n // 2 + 1)


@dataclass
class FieldCouplings:
    """The couplings of one field (SFT Eq. 14, generalised to springs of every range).

    For any symmetric block H (n x n, periodic chain) the identity

        1/2 W^T H W = sum_i [ 1/2 J_i W_i^2 + sum_{r >= 1} 1/2 K^(r)_i (W_{i+r} - W_i)^2 ]

    holds with J_i = sum_j H_ij and K^(r)_i = -H_{i, i+r} (i + r mod n; for even n the r = n/2
    spring is counted once per pair). Eq. 14 is the case K^(r) = 0 for r >= 2:
    H_ii = K_i + K_{i-1} + J_i, H_{i,i+1} = -K_i.

    J (n,), K = K^(1) (n,), K_offsets (n_off, n) for r = offsets = 1..n/2;
    residual_rel = |H - H_NN|_F / |H|_F with H_NN built from (J, K) alone: 0 iff Eq. 14 holds
    (with J the row sums, H - H_NN has zero row sums); residual_max = max |H - H_NN|.
    a: the lattice spacing; x = i a; J(x) = J_i / a, K(x) = a K_i (Eq. 17 with
    sum_i -> int dx / a, W_{i+1} - W_i -> a dw/dx). mass2 = mean_i J(x_i): the m^2 of the
    uniform field (1/2 m^2 w^2 per unit length); mass2_lattice = mean_i J_i = a mass2.
    """

    J: np.ndarray
    K: np.ndarray
    K_offsets: np.ndarray
    offsets: np.ndarray
    residual_rel: float
    residual_max: float
    a: float = 1.0

    @property
    def n_sites(self) -> int:
        return self.J.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self.a * np.arange(self.n_sites)

    @property
    def J_x(self) -> np.ndarray:
        return self.J / self.a

    @property
    def K_x(self) -> np.ndarray:
        return self.a * self.K

    @property
    def mass2(self) -> float:
        return float(np.mean(self.J)) / self.a

    @property
    def mass2_lattice(self) -> float:
        return float(np.mean(self.J))

    def to_dict(self) -> dict:
        return {"J": self.J, "K": self.K, "K_offsets": self.K_offsets, "offsets": self.offsets,
                "residual_rel": self.residual_rel, "residual_max": self.residual_max,
                "a": self.a, "x": self.x, "J_x": self.J_x, "K_x": self.K_x,
                "mass2": self.mass2, "mass2_lattice": self.mass2_lattice}


def hessian_from_couplings(J, K_offsets, offsets=None) -> np.ndarray:
    """The symmetric n x n block with row sums J and H_{i,i+r} = H_{i+r,i} = -K^(r)_i
    (inverse of :func:`field_couplings`; with K_offsets of shape (1, n) the Eq. 14 chain)."""
    J = np.asarray(J, float)
    n = J.shape[0]
    K_offsets = np.atleast_2d(np.asarray(K_offsets, float))
    offsets = _offsets(n)[:K_offsets.shape[0]] if offsets is None else np.asarray(offsets)
    H = np.zeros((n, n))
    i = np.arange(n)
    for r, Kr in zip(offsets, K_offsets):
        j = (i + r) % n
        if 2 * r == n:  # the pair (i, i + n/2) appears for i and for i + n/2: set it once
            keep = i < j
            H[i[keep], j[keep]] = -Kr[keep]
            H[j[keep], i[keep]] = -Kr[keep]
        else:
            H[i, j] = -Kr
            H[j, i] = -Kr
    H[i, i] = J - H.sum(axis=1)
    return H


def field_couplings(Hf, a: float = 1.0) -> FieldCouplings:
    """J_i, K_i (SFT Eq. 14) and the longer springs of a field's Hessian block Hf (n x n,
    sites in chain order, periodic). Needs n >= 3 (for n = 2 both bonds join the same pair)."""
    Hf = np.asarray(Hf, float)
    n = Hf.shape[0]
    if Hf.shape != (n, n):
        raise ValueError(f"field_couplings: expected a square block, got {Hf.shape}")
    if n < 3:
        raise UserError(f"network.width: a chain of {n} sites has no well-defined nearest-"
                        "neighbour couplings (need >= 3 sites)")
    i = np.arange(n)
    J = Hf.sum(axis=1)
    offs = _offsets(n)
    Koff = np.array([-Hf[i, (i + r) % n] for r in offs]) + 0.0  # no -0.0
    H_nn = hessian_from_couplings(J, Koff[:1], offs[:1])
    R = Hf - H_nn
    norm = np.linalg.norm(Hf)
    return FieldCouplings(J, Koff[0].copy(), Koff, offs, float(np.linalg.norm(R) / norm) if norm
                          else 0.0, float(np.max(np.abs(R))), float(a))


@dataclass
class PairCouplings:
    """The quadratic couplings between fields f and g (ordered pair; f = g allowed), by lattice
    offset and by spatial derivative order (SFT Eq. 19).

    For fields with the same number n of sites: by_offset[k, i] = H[f_i, g_{i + r_k}] with
    minimal-image offsets r_k in (-n/2, n/2] (``offsets``). The continuum expansion
    g_{i+r} = sum_n (r a)^n / n! d^n g(x_i) gives the density of
    1/2 sum_ij H[f_i, g_j] f_i g_j as sum_n c_n(x) f(x) d^n g(x) with

        c_n(x_i) = 1 / (2 a) * sum_r H[f_i, g_{i+r}] (r a)^n / n!,       (``derivative[n]``)

    so that C_2 = int dx sum_{f,g} sum_n c_n^{fg} f d^n g (both orders of a pair f != g appear,
    as K_1 w_2 dw_1 and K_5 w_1 dw_2 do in Eq. 19). For f = g, c_0 = J(x) / 2 = m^2(x) / 2.
    Fields of different sizes have no common lattice: offsets, by_offset and derivative are None.
    """

    f: str
    g: str
    block: np.ndarray
    offsets: np.ndarray | None
    by_offset: np.ndarray | None
    derivative: np.ndarray | None
    a: float = 1.0

    @property
    def uniform(self) -> np.ndarray | None:
        """Translation averages of ``derivative`` (the constant couplings of a homogeneous data
        set): mean over sites of c_n, n = 0, 1, 2, ..."""
        return None if self.derivative is None else self.derivative.mean(axis=1)

    def to_dict(self) -> dict:
        return {"f": self.f, "g": self.g, "offsets": self.offsets, "by_offset": self.by_offset,
                "derivative": self.derivative, "uniform": self.uniform, "a": self.a,
                "block_norm": float(np.linalg.norm(self.block))}


def pair_couplings(H, f: Field, g: Field, a: float = 1.0, max_derivative: int = 2) -> PairCouplings:
    """:class:`PairCouplings` of fields f, g from the full Hessian H."""
    block = np.asarray(H)[f.slice, g.slice]
    if f.n_sites != g.n_sites:
        return PairCouplings(f.name, g.name, block, None, None, None, float(a))
    n = f.n_sites
    offs = np.arange(-((n - 1) // 2), n // 2 + 1)
    i = np.arange(n)
    by = np.array([block[i, (i + r) % n] for r in offs])
    der = np.array([(by * ((offs * a) ** k / math.factorial(k))[:, None]).sum(axis=0) / (2 * a)
                    for k in range(max_derivative + 1)])
    return PairCouplings(f.name, g.name, block, offs, by, der, float(a))


# ============================================================================================
# The expansion about a reference point
# ============================================================================================

@dataclass
class Expansion:
    """C(theta0 + delta) = C0 + gradient . delta + 1/2 delta^T H delta + O(delta^3) (SFT Eq. 11:
    J_1 = gradient, J_2 = H / 2), organised by field.

    source = -gradient (the g of C = 1/2 W^T H W - g^T W + c about theta0);
    shift = theta0 + H^+ source: W*, the minimum of the quadratic model (exact minimum for a
    quadratic cost; H^+ the pseudo-inverse, eigenvalues below 1e-12 |H| dropped);
    eig_min, eig_max: extreme eigenvalues of H; couplings: FieldCouplings per field name;
    pairs: PairCouplings per ordered pair (f, g) of fields; masses: m^2 per field (continuum).
    """

    theta0: np.ndarray
    value: float
    gradient: np.ndarray
    hessian: np.ndarray
    fields: list[Field]
    couplings: dict
    pairs: dict
    shift: np.ndarray
    eig_min: float
    eig_max: float
    a: float = 1.0
    quadratic: bool = False
    reference: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def source(self) -> np.ndarray:
        return -self.gradient

    @property
    def masses(self) -> dict[str, float]:
        return {name: c.mass2 for name, c in self.couplings.items()}

    def to_dict(self) -> dict:
        """Plain data (numbers, lists, nested dicts) for JSON/HDF5."""
        return {
            "meta": self.meta, "reference": self.reference, "quadratic": self.quadratic,
            "lattice_spacing": self.a, "value": self.value, "theta0": self.theta0,
            "gradient": self.gradient, "source": self.source, "shift": self.shift,
            "hessian": self.hessian, "eig_min": self.eig_min, "eig_max": self.eig_max,
            "masses": self.masses,
            "fields": {f.name: {"start": f.start, "stop": f.stop, "link": f.link, "kind": f.kind,
                                "n_sites": f.n_sites,
                                "gradient": self.gradient[f.slice], "shift": self.shift[f.slice],
                                **self.couplings[f.name].to_dict()} for f in self.fields},
            "pairs": {f"{p.f}|{p.g}": p.to_dict() for p in self.pairs.values()},
        }

    def table(self, names=None) -> str:
        """A readable summary: per field the couplings by site (Eq. 14), the residual beyond
        nearest neighbours, the masses, and the translation-averaged couplings between fields
        by derivative order (Eq. 19). ``names``: the fields to list by site (default all)."""
        out = []
        a = self.a
        shown = [f for f in self.fields if names is None or f.name in names]
        wstar = "W*_i" if self.quadratic else "W*_i(quad)"
        for f in shown:
            c = self.couplings[f.name]
            sl = f.slice
            out.append(f"field {f.name}: {f.n_sites} sites, theta[{f.start}:{f.stop}]; "
                       f"C = sum_i [K_i/2 (W_(i+1) - W_i)^2 + J_i/2 W_i^2] (Eq. 14), "
                       f"K_i on bond (i, i+1)")
            out.append(f"{'i':>4} {'x':>7} {'theta0_i':>11} {'dC/dW_i':>11} {'J_i':>11} "
                       f"{'K_i':>11} {'J(x)':>11} {'K(x)':>11} {wstar:>11}")
            for i in range(f.n_sites):
                out.append(f"{i:>4} {c.x[i]:>7.3g} {self.theta0[sl][i]:>11.4g} "
                           f"{self.gradient[sl][i]:>11.4g} {c.J[i]:>11.4g} {c.K[i]:>11.4g} "
                           f"{c.J_x[i]:>11.4g} {c.K_x[i]:>11.4g} {self.shift[sl][i]:>11.4g}")
            longer = np.max(np.abs(c.K_offsets[1:])) if c.K_offsets.shape[0] > 1 else 0.0
            verdict = ("Eq. 14 holds exactly (nearest-neighbour chain)" if c.residual_rel < 1e-12
                       else "Eq. 14 is an approximation: longer springs present")
            out.append(f"  beyond nearest neighbours: |H - H_NN|_F / |H|_F = {c.residual_rel:.3g}"
                       f", max |K^(r>=2)| = {longer:.3g}: {verdict}")
            nz = np.count_nonzero(np.abs(c.K) > 1e-12 * max(np.max(np.abs(c.K)), 1e-300))
            out.append(f"  bonds with K != 0: {nz} of {f.n_sites}; K < 0 on {int(np.sum(c.K < 0))}"
                       " (wrong-sign gradient term in Eq. 17)")
            out.append("")
        out.append(f"masses (uniform field, m^2 = mean_i J_i / a, a = {a:g}):")
        for f in self.fields:
            c = self.couplings[f.name]
            out.append(f"  {f.name:<5} m^2 = {c.mass2:>11.5g}   (J_i / a from {np.min(c.J_x):.4g} "
                       f"to {np.max(c.J_x):.4g})")
        pairs = [p for p in self.pairs.values() if p.f != p.g and p.derivative is not None]
        if pairs:
            out.append("")
            out.append("couplings between fields, translation averages of c_n in "
                       "C_2 = int dx sum c_n^(fg) f d^n g (Eq. 19):")
            nd = pairs[0].derivative.shape[0]
            out.append(f"  {'f|g':<9}" + "".join(f"{'c_' + str(k):>12}" for k in range(nd)))
            for p in pairs:
                out.append(f"  {p.f + '|' + p.g:<9}" + "".join(f"{v:>12.4g}" for v in p.uniform))
        return "\n".join(out)


def expand(cost: TrainingCost, theta0, fields: list[Field], a: float = 1.0,
           max_derivative: int = 2, quadratic: bool = False, reference: dict | None = None,
           meta: dict | None = None) -> Expansion:
    """The SFT expansion of ``cost`` about ``theta0`` (n_par,) over ``fields`` (lattice spacing
    ``a``): value, exact gradient and Hessian, couplings per field, pairs, masses, W*."""
    theta0 = np.asarray(theta0, float)
    H = cost.hessian(theta0)
    g = cost.gradient(theta0)
    w = np.linalg.eigvalsh(H)
    Hp = np.linalg.pinv(H, rcond=1e-12, hermitian=True)
    shift = theta0 - Hp @ g
    coup = {f.name: field_couplings(H[f.slice, f.slice], a) for f in fields}
    pairs = {(f.name, h.name): pair_couplings(H, f, h, a, max_derivative)
             for f in fields for h in fields}
    return Expansion(theta0, cost.value(theta0), g, H, list(fields), coup, pairs, shift,
                     float(w[0]), float(w[-1]), float(a), bool(quadratic), dict(reference or {}),
                     dict(meta or {}))


def reference_point(spec: str, cfg, layout: Layout, replica: int = 0) -> tuple[np.ndarray, dict]:
    """theta0 from ``zero``, ``init`` (replica ``replica``'s initial parameters, INIT stream)
    or ``FILE[:snapshot]`` (the final state, or snapshot k, of replica ``replica`` of an
    ensemble file with the same network). Returns (theta0, description)."""
    if spec == "zero":
        return np.zeros(layout.n_par), {"kind": "zero"}
    if spec == "init":
        from .kernels import streams
        from .kernels.ensemble import init_params

        th = np.zeros((1, layout.n_par))
        init_params(layout.init_std, np.uint64(cfg.ensemble.seed), streams.INIT,
                    np.array([replica], np.int64), th)
        return th[0], {"kind": "init", "replica": replica, "seed": cfg.ensemble.seed}
    from .store import open_ensemble

    path, snap = spec, None
    if ":" in spec and not _exists(spec):
        head, _, tail = spec.rpartition(":")
        try:
            snap = int(tail)
            path = head
        except ValueError:
            pass
    with open_ensemble(path) as ens:
        _check_same_network(ens, layout, path)
        reps = list(ens.replicas)
        if replica not in reps:
            raise UserError(f"--replica: {path} has no replica {replica} (it holds {len(reps)})")
        row = reps.index(replica)
        if snap is None:
            theta = np.asarray(ens.state()["theta"][row], float)
            desc = {"kind": "file", "file": str(path), "replica": replica, "at": "final",
                    "step": int(ens.steps_done)}
        else:
            if "snapshots" not in ens.groups():
                raise UserError(f"--at: {path} has no snapshots (recording.snapshot_every = 0)")
            n = ens.shape("snapshots/step")[0]
            if not -n <= snap < n:
                raise UserError(f"--at: snapshot {snap} out of range ({n} snapshots in {path})")
            theta = np.asarray(ens.read("snapshots/theta", replicas=[row],
                                        index=snap % n)[0], float)
            desc = {"kind": "file", "file": str(path), "replica": replica, "at": snap % n,
                    "step": int(ens.read("snapshots/step")[snap % n])}
    if not np.all(np.isfinite(theta)):
        raise UserError(f"--at: replica {replica} of {path} is not finite (diverged?)")
    return theta, desc


def _exists(path) -> bool:
    import os

    return os.path.exists(path)


def _check_same_network(ens, layout: Layout, path) -> None:
    widths = tuple(int(w) for w in ens.read("network/widths"))
    n_par = ens.shape("state/slot0/theta")[-1]
    same = widths == layout.widths and n_par == layout.n_par
    if same and "network/conn_w" in _statics(ens):
        same = np.array_equal(ens.read("network/conn_w"), layout.arrays.conn_w)
    if not same:
        raise UserError(f"{path}: holds a different network (widths {list(widths)}, "
                        f"{n_par} parameters; CONFIG has {list(layout.widths)}, {layout.n_par})")


def _statics(ens) -> set[str]:
    try:
        return {f"network/{k}" for k in ens.vars("network")}
    except Exception:  # noqa: BLE001 - an older reader without vars() on static groups
        return set()


# ============================================================================================
# Closed forms of the SFT examples
# ============================================================================================

def sft1_closed_form(X, Y, p: float = 1.0, q: float = 0.0, scale: float = 1.0,
                     lam: float = 0.0) -> dict:
    """SFT example 1 (Eq. 13) in closed form: C = s sum_l sum_i (Y_i - p u_i - q)^2 + lam/2 |W|^2,
    u_i = W_{2i} X_{i-1} + W_{2i+1} X_i (input i is the paper's X_{2i+1}, output i its Y_{2i}).

    X, Y (P, N). With S^{ab}_i = sum_l a b over the data and Yq = Y - q:

        H_{2i,2i} = 2 p^2 s S^{X_{i-1} X_{i-1}} + lam,  H_{2i+1,2i+1} = 2 p^2 s S^{X_i X_i} + lam,
        H_{2i,2i+1} = 2 p^2 s S^{X_{i-1} X_i},           H_{2i+1,2i+2} = 0,
        K_{2i} = -2 p^2 s S^{X_{i-1} X_i},  K_{2i+1} = 0                        (dimers)
        J_{2i} = 2 p^2 s (S^{X_{i-1} X_{i-1}} + S^{X_{i-1} X_i}) + lam,
        J_{2i+1} = 2 p^2 s (S^{X_i X_i} + S^{X_{i-1} X_i}) + lam,
        g_{2i} = 2 p s S^{Yq_i X_{i-1}},  g_{2i+1} = 2 p s S^{Yq_i X_i},  c = s S^{Yq Yq}

    for C = 1/2 W^T H W - g^T W + c. Returns a dict of H (2N, 2N), g, c, J, K (2N,).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    N = X.shape[1]
    Xm = np.roll(X, 1, axis=1)  # X_{i-1}
    Yq = Y - q
    s_mm, s_00, s_m0 = (Xm * Xm).sum(0), (X * X).sum(0), (Xm * X).sum(0)
    c2 = 2 * p * p * scale
    i = np.arange(N)
    H = np.zeros((2 * N, 2 * N))
    H[2 * i, 2 * i] = c2 * s_mm + lam
    H[2 * i + 1, 2 * i + 1] = c2 * s_00 + lam
    H[2 * i, 2 * i + 1] = H[2 * i + 1, 2 * i] = c2 * s_m0
    g = np.zeros(2 * N)
    g[2 * i] = 2 * p * scale * (Yq * Xm).sum(0)
    g[2 * i + 1] = 2 * p * scale * (Yq * X).sum(0)
    K = np.zeros(2 * N)
    K[2 * i] = -c2 * s_m0
    J = np.zeros(2 * N)
    J[2 * i] = c2 * (s_mm + s_m0) + lam
    J[2 * i + 1] = c2 * (s_00 + s_m0) + lam
    return {"H": H, "g": g, "c": float(scale * (Yq * Yq).sum()), "J": J, "K": K}


def sft2_closed_form_at_zero(X, Y, p: float, q: float, r: float, scale: float = 1.0) -> dict:
    """SFT example 2 (Eq. 18, typo corrected; layout of ``langevin_nn.bulk.networks``) expanded
    at W = 0, sigma(x) = p x^2 + q x + r, MSE, lambda = 0. Hidden u = sigma(W1_{2u-1} X_{u-1} +
    W1_{2u} X_u), Z_i = W2_{2i} u_i + W2_{2i+1} u_{i+1}. With P samples and s the scale:

        C0 = s sum Y^2;  dC/dW2_{2i} = dC/dW2_{2i+1} = -2 r s sum_l Y_i;  dC/dW1 = 0
        H[w2, w2]: 2 s P r^2 on (2i, 2i), (2i+1, 2i+1), (2i, 2i+1): dimers, K_{2i} = -2 s P r^2,
                   K_{2i+1} = 0, J = 4 s P r^2 on every site: the mass m^2 a = 4 s P r^2
        H[w1, w1] = 0 (no mass: w_1 couples to the output only through W2 = 0)
        H[w1_{2i-1}, w2_{2i}] = -2 q s sum Y_i X_{i-1},  H[w1_{2i}, w2_{2i}] = -2 q s sum Y_i X_i,
        H[w1_{2i+1}, w2_{2i+1}] = -2 q s sum Y_i X_i,    H[w1_{2i+2}, w2_{2i+1}] = -2 q s sum Y_i X_{i+1}

    (p enters only at third order). Returns dict of value, grad (4N,), H (4N, 4N) with theta =
    (W1, W2).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    P, N = X.shape
    n = 2 * N
    i = np.arange(N)
    H = np.zeros((2 * n, 2 * n))
    w2 = n + np.arange(n)
    H[w2[2 * i], w2[2 * i]] = H[w2[2 * i + 1], w2[2 * i + 1]] = 2 * scale * P * r * r
    H[w2[2 * i], w2[2 * i + 1]] = H[w2[2 * i + 1], w2[2 * i]] = 2 * scale * P * r * r
    sy = Y.sum(0)
    YX = lambda shift: (Y * np.roll(X, shift, axis=1)).sum(0)  # noqa: E731  sum_l Y_i X_{i-shift}
    pairs = [((2 * i - 1) % n, 2 * i, YX(1)), (2 * i, 2 * i, YX(0)),
             (2 * i + 1, 2 * i + 1, YX(0)), ((2 * i + 2) % n, 2 * i + 1, YX(-1))]
    for a1, b2, v in pairs:
        H[a1, n + b2] = H[n + b2, a1] = -2 * q * scale * v
    grad = np.zeros(2 * n)
    grad[n + 2 * i] = grad[n + 2 * i + 1] = -2 * r * scale * sy
    return {"value": float(scale * (Y * Y).sum()), "grad": grad, "H": H}


# ============================================================================================
# Theory against dynamics: the synaptic two-point function
# ============================================================================================

def _check_stable(H, eta: float) -> np.ndarray:
    w = np.linalg.eigvalsh(H)
    if w[0] <= 0:
        raise UserError(f"the Hessian is not positive definite (lowest eigenvalue {w[0]:.3g}): "
                        "no stationary Gaussian law; expand about a minimum (--at FILE) or set "
                        "dynamics.lambda > 0")
    if eta * w[-1] >= 2:
        raise UserError(f"dynamics.eta: eta = {eta:.4g} >= 2 / lambda_max = {2 / w[-1]:.4g}: "
                        "the overdamped chain is unstable on this Hessian")
    return w


def predicted_covariance(H, eta: float, T: float, steps: int | None = None) -> np.ndarray:
    """Stationary covariance S of theta under the overdamped update theta -> theta - eta H theta
    + sqrt(2 eta T) xi on the quadratic cost 1/2 theta^T H theta (physics.md section 5):

        S = (I - eta H) S (I - eta H)^T + 2 eta T I      (scipy.linalg.solve_discrete_lyapunov)

    mode by mode T / (lambda_i (1 - eta lambda_i / 2)); -> T H^{-1} as eta -> 0. Units: theta^2.
    H (n, n) positive definite, 0 < eta < 2 / lambda_max, T >= 0.
    With ``steps``: the covariance after that many steps from a point start (S_0 = 0, e.g.
    replicas branched from a minimum), S_t = S - A^t S A^t, A = I - eta H.
    """
    H = np.asarray(H, float)
    _check_stable(H, eta)
    n = H.shape[0]
    A = np.eye(n) - eta * H
    S = linalg.solve_discrete_lyapunov(A, 2 * eta * T * np.eye(n))
    S = 0.5 * (S + S.T)
    if steps is not None:
        At = np.linalg.matrix_power(A, int(steps))
        S = S - At @ S @ At.T
    return S


def continuum_covariance(H, T: float) -> np.ndarray:
    """T H^{-1}: the Gibbs covariance of exp(-C/T), the eta -> 0 limit of
    :func:`predicted_covariance` (and BAOAB's configurational covariance at every stable h)."""
    return T * np.linalg.inv(np.asarray(H, float))


def dynamics_covariance(dynamics, H, step: int = 0) -> tuple[np.ndarray, str]:
    """The stationary covariance of theta that the integrator of ``dynamics`` (a
    ``DynamicsConfig``, or a ``Config``) has on the quadratic cost with Hessian H, schedules
    evaluated at ``step``: overdamped -> discrete Lyapunov; underdamped (BAOAB) -> T H^{-1}
    exactly (physics.md section 3); heavy ball -> the (theta, v) Lyapunov equation.
    Returns (S, description)."""
    d = getattr(dynamics, "dynamics", dynamics)
    T = float(d.T.value(step))
    if T <= 0:
        raise UserError("dynamics.T: the two-point prediction needs T > 0 (at T = 0 the "
                        "stationary law is a point)")
    if d.integrator == "overdamped":
        eta = float(d.eta.value(step))
        return predicted_covariance(H, eta, T), f"discrete Lyapunov, eta = {eta:.4g}, T = {T:.4g}"
    if d.integrator == "underdamped":
        _check_stable(H, 0.0)
        return continuum_covariance(H, T), f"T H^-1 (BAOAB, exact for stable h), T = {T:.4g}"
    eta, beta = float(d.eta.value(step)), float(d.beta.value(step))
    _check_stable(H, 0.0)
    n = H.shape[0]
    I = np.eye(n)
    A = np.block([[I - eta * H, beta * I], [-eta * H, beta * I]])
    Q = 2 * (1 - beta) * eta * T * np.block([[I, I], [I, I]])
    if np.max(np.abs(np.linalg.eigvals(A))) >= 1:
        raise UserError(f"dynamics.eta: the heavy-ball chain (eta = {eta:.4g}, beta = {beta:.4g}) "
                        "is unstable on this Hessian")
    S = linalg.solve_discrete_lyapunov(A, Q)[:n, :n]
    return 0.5 * (S + S.T), f"heavy-ball Lyapunov, eta = {eta:.4g}, beta = {beta:.4g}, T = {T:.4g}"


def two_point_by_distance(cov, sites) -> np.ndarray:
    """C(d) = (1/n) sum_i Cov(W_{s_i}, W_{s_{i+d}}) for d = 0 .. n//2 (periodic in i), from a
    covariance matrix of theta (n_par, n_par) and a field's sites (n,) in chain order."""
    cov = np.asarray(cov, float)
    s = np.asarray(sites)
    n = s.shape[0]
    i = np.arange(n)
    return np.array([cov[s, s[(i + d) % n]].mean() for d in range(n // 2 + 1)])


@dataclass
class TwoPoint:
    """Measured C(d) of one or several fields (concatenated in ``fields`` order, d = 0..n_f//2
    each), from R independent replicas (S samples each).

    C: the jackknife bias-corrected estimate R C_all - (R - 1) mean_r C_{-r}; cov: the
    leave-one-replica-out jackknife covariance of C; labels: (field, d) per entry."""

    C: np.ndarray
    cov: np.ndarray
    labels: list
    replicas: int
    samples_per_replica: int

    @property
    def err(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))


def _lag_products(x, sites_list):
    """For x (..., n_par): per field, (1/n) sum_i x_{s_i} x_{s_{i+d}}, d = 0..n//2, concatenated."""
    out = []
    for s in sites_list:
        xs = x[..., s]
        n = len(s)
        out.append(np.stack([(xs * np.roll(xs, -d, axis=-1)).mean(axis=-1)
                             for d in range(n // 2 + 1)], axis=-1))
    return np.concatenate(out, axis=-1)


def measured_two_point(samples, sites_list, names=None) -> TwoPoint:
    """C(d) of the fields ``sites_list`` (a list of site arrays) from ``samples`` (R, n_par) or
    (R, S, n_par): R independent replicas (jackknife units), S possibly correlated samples each
    (e.g. snapshots). The mean is the ensemble mean; data are centred on it before products
    (no cancellation at low T)."""
    X = np.asarray(samples, float)
    if X.ndim == 2:
        X = X[:, None, :]
    R, S, _ = X.shape
    if R < 3:
        raise UserError(f"ensemble: {R} replicas are too few for a jackknife (need >= 3)")
    sites_list = [np.asarray(s) for s in sites_list]
    mu = X.mean(axis=(0, 1))
    Xc = X - mu
    sum1 = Xc.sum(axis=1)  # (R, n_par)
    prod = _lag_products(Xc, sites_list).sum(axis=1)  # (R, D)
    Ntot = R * S
    C_all = prod.sum(0) / Ntot - _lag_products(sum1.sum(0) / Ntot, sites_list)
    delta = (sum1.sum(0)[None, :] - sum1) / (Ntot - S)  # mean of the others, centred
    C_loo = (prod.sum(0)[None, :] - prod) / (Ntot - S) - _lag_products(delta, sites_list)
    mean_loo = C_loo.mean(0)
    C = R * C_all - (R - 1) * mean_loo
    dev = C_loo - mean_loo
    cov = (R - 1) / R * dev.T @ dev
    names = names or [f"field{k}" for k in range(len(sites_list))]
    labels = [(nm, d) for nm, s in zip(names, sites_list) for d in range(len(s) // 2 + 1)]
    return TwoPoint(C, cov, labels, R, S)


@dataclass
class Comparison:
    """Predicted vs measured C(d): rows (field, d, predicted, measured, error, pull), the chi^2
    over all entries with the jackknife covariance, its degrees of freedom and p-value
    (scipy.stats.chi2), and the p-value of Hotelling's T^2 (which allows for the covariance being
    estimated from R replicas: F(D, R - D))."""

    labels: list
    predicted: np.ndarray
    measured: np.ndarray
    err: np.ndarray
    chi2: float
    dof: int
    p_value: float
    p_hotelling: float
    replicas: int
    samples_per_replica: int
    description: str = ""

    @property
    def pulls(self) -> np.ndarray:
        return (self.measured - self.predicted) / self.err

    def to_dict(self) -> dict:
        return {"field": [l[0] for l in self.labels], "d": [l[1] for l in self.labels],
                "predicted": self.predicted, "measured": self.measured, "err": self.err,
                "chi2": self.chi2, "dof": self.dof, "p_value": self.p_value,
                "p_hotelling": self.p_hotelling, "replicas": self.replicas,
                "samples_per_replica": self.samples_per_replica,
                "description": self.description}

    def table(self) -> str:
        lines = [f"{'field':<6} {'d':>3} {'predicted':>13} {'measured':>13} {'error':>11} "
                 f"{'pull':>7}"]
        for (nm, d), p, m, e in zip(self.labels, self.predicted, self.measured, self.err):
            lines.append(f"{nm:<6} {d:>3} {p:>13.6g} {m:>13.6g} {e:>11.3g} {(m - p) / e:>7.2f}")
        lines.append(f"chi^2 = {self.chi2:.2f} for {self.dof} distances, p = {self.p_value:.3g} "
                     f"(Hotelling T^2: p = {self.p_hotelling:.3g}); {self.replicas} replicas x "
                     f"{self.samples_per_replica} samples")
        return "\n".join(lines)


def compare_two_point(samples, cov_pred, fields: list[Field], description: str = "") -> Comparison:
    """Measured C(d) of ``fields`` from ``samples`` ((R, n_par) or (R, S, n_par)) against the
    predicted covariance ``cov_pred`` (n_par, n_par): one chi^2 over every distance of every
    field, with the jackknife covariance over replicas."""
    sites = [f.sites for f in fields]
    tp = measured_two_point(samples, sites, [f.name for f in fields])
    pred = np.concatenate([two_point_by_distance(cov_pred, s) for s in sites])
    r = tp.C - pred
    D = r.shape[0]
    chi2 = float(r @ np.linalg.lstsq(tp.cov, r, rcond=None)[0])
    p = float(stats.chi2.sf(chi2, D))
    R = tp.replicas
    if R > D:
        F = chi2 * (R - D) / (D * (R - 1))
        ph = float(stats.f.sf(F, D, R - D))
    else:
        ph = float("nan")
    return Comparison(tp.labels, pred, tp.C, tp.err, chi2, D, p, ph, R, tp.samples_per_replica,
                      description)


def ensemble_samples(path, layout: Layout, snapshots_from: int | None = None):
    """theta samples of an ensemble file for :func:`compare_two_point`: the committed final
    state (R, n_par), or with ``snapshots_from`` = k the snapshots k.. of every replica
    (R, S, n_par). Diverged replicas are dropped. Returns (samples, info dict)."""
    from .store import open_ensemble

    with open_ensemble(path) as ens:
        _check_same_network(ens, layout, path)
        st = ens.state()
        ok = ~np.asarray(st.get("diverged", np.zeros(len(ens.replicas), bool)), bool)
        if snapshots_from is None:
            X = np.asarray(st["theta"], float)[ok]
            info = {"file": str(path), "step": int(ens.steps_done), "samples": "final state"}
        else:
            if "snapshots" not in ens.groups():
                raise UserError(f"--snapshots: {path} has no snapshots "
                                "(recording.snapshot_every = 0)")
            n = ens.shape("snapshots/step")[0]
            k = snapshots_from % n if -n <= snapshots_from < n else None
            if k is None:
                raise UserError(f"--snapshots: {snapshots_from} out of range ({n} snapshots)")
            X = np.asarray(ens.read("snapshots/theta", index=slice(k, None)), float)[ok]
            steps = ens.read("snapshots/step")[k:]
            info = {"file": str(path), "step": int(steps[-1]),
                    "samples": f"snapshots {k}..{n - 1} (steps {int(steps[0])}..{int(steps[-1])})"}
        info["replicas"] = int(ok.sum())
        info["diverged"] = int((~ok).sum())
        info["config_effective"] = ens.config_effective
    if not np.all(np.isfinite(X)):
        raise UserError(f"{path}: non-finite parameters in the samples")
    return X, info


# ============================================================================================
# Output
# ============================================================================================

def _plain(obj):
    """JSON-ready: arrays -> lists, numpy scalars -> Python, tuples -> lists, NaN -> None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path, data: dict) -> None:
    """Write ``data`` (nested dicts of arrays and numbers) as JSON."""
    with open(path, "w") as fh:
        json.dump(_plain(data), fh, indent=1)
        fh.write("\n")


def write_h5(path, data: dict) -> None:
    """Write ``data`` as HDF5: dicts -> groups, arrays and lists of numbers -> datasets,
    scalars and strings -> attributes; None is skipped."""
    import h5py

    def put(g, d):
        for k, v in d.items():
            k = str(k)
            if v is None:
                continue
            if dataclasses.is_dataclass(v):
                v = dataclasses.asdict(v)
            if isinstance(v, dict):
                put(g.create_group(k), v)
            elif isinstance(v, (str, bool, int, float, np.integer, np.floating, np.bool_)):
                g.attrs[k] = v
            else:
                arr = np.asarray(v)
                if arr.dtype.kind in "US":
                    g.create_dataset(k, data=arr.astype(object), dtype=h5py.string_dtype())
                elif arr.dtype.kind == "O":
                    g.attrs[k] = json.dumps(_plain(v))
                else:
                    g.create_dataset(k, data=arr)

    try:
        with h5py.File(path, "w") as f:
            put(f, data)
    except OSError as e:
        raise UserError(f"{path}: cannot write HDF5 file ({e})") from None
