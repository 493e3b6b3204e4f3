"""Mean-field signal propagation in deep random networks (physics.md section 6).

Poole et al., NeurIPS 2016 ("Exponential expressivity in deep neural networks through transient
chaos") and Schoenholz et al., ICLR 2017 ("Deep information propagation"), for a dense network
with W ~ N(0, sigma_w^2 / N), b ~ N(0, sigma_b^2) in the limit of infinite width:

    q^(1)_ab   = sigma_w^2 X_a . X_b / N_0 + sigma_b^2                      (input layer, no phi)
    q^(m+1)_ab = sigma_w^2 E[phi(u_a) phi(u_b)] + sigma_b^2,  (u_a, u_b) ~ N(0, q^(m)|_{ab})
    q*         = sigma_w^2 E_u[phi(sqrt(q*) u)^2] + sigma_b^2                  (Poole Eq. 3)
    c*         = the stable fixed point of c -> (sigma_w^2 E[phi phi] + sigma_b^2) / q*, at q*
    chi_1      = sigma_w^2 E_u[phi'(sqrt(q*) u)^2]                              (Poole Eq. 7)
    chi_c      = sigma_w^2 E[phi'(u_a) phi'(u_b)] at (q*, c*)          (Schoenholz Eq. 8 family)
    xi_c       = -1 / ln chi_c                                         (Schoenholz Eq. 9)
    xi_q       = -1 / ln(chi_1 + sigma_w^2 E_u[phi''(sqrt(q*) u) phi(sqrt(q*) u)])   (Eq. 6)

chi_1 = 1 is the order-to-chaos line: c* = 1 (ordered, chi_c = chi_1) for chi_1 < 1 and
c* < 1 for chi_1 > 1. For tanh at sigma_b^2 = 0.05 it sits at sigma_w^2 ~ 1.76; xi_c = 7.83
at sigma_w^2 = 1.3 and 25.2 at 2.0 (c* = 0.744).

Gaussian expectations: closed forms for identity/linear, quadratic (Isserlis), relu (the
arc-cosine kernel of Cho & Saul 2009) and erf (Williams 1997); Gauss-Hermite quadrature
(``numpy.polynomial.hermite_e.hermegauss``) otherwise. Fixed points by iteration polished with
``scipy.optimize.brentq``. Where the fixed point q* does not exist (relu at sigma_w^2 >= 2, linear
at sigma_w^2 p^2 >= 1, quadratic beyond its bifurcation) the functions return NaN and
:class:`MeanField` says ``phase = "no fixed point"``.

Shapes: K inputs, M links; kernels Sigma^(m) are (M, K, K) for layers m = 1..M.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import brentq

from ..bulk.activations import evaluate
from ..config import ActivationSpec

__all__ = [
    "MeanField", "activation_spec", "variance_map", "covariance_map", "derivative_covariance",
    "q_star", "c_star", "mean_field", "critical_sigma_w2", "critical_line", "kernel_profile",
    "profile_summary", "phase_grid", "SUPPORTED", "overlap_inputs", "inputs_for_kernel",
]

SUPPORTED = ("tanh", "sigmoid", "erf", "relu", "linear", "quadratic", "softplus", "identity")
N_NODES_1D = 121
N_NODES_2D = 64
_BLOCK = 128  # pairs per block of the 2-d quadrature


def activation_spec(act) -> ActivationSpec:
    """An ActivationSpec from a spec, a name ("tanh") or a dict {"name":..., "p":..., ...}."""
    if isinstance(act, ActivationSpec):
        return act
    if isinstance(act, str):
        if act not in SUPPORTED:
            raise ValueError(f"unknown activation {act!r} (supported: {', '.join(SUPPORTED)})")
        return ActivationSpec(act)
    if isinstance(act, dict):
        return ActivationSpec(**act)
    raise TypeError(f"not an activation: {act!r}")


@lru_cache(maxsize=8)
def _nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights normalised to the standard normal."""
    x, w = hermegauss(n)
    return x, w / math.sqrt(2 * math.pi)


def _phi(spec, x, d=0):
    return evaluate(spec, x, d)


def _e1(spec, q, fn) -> np.ndarray:
    """E_u[fn(sqrt(q) u)] for u ~ N(0, 1), elementwise in q (any shape)."""
    x, w = _nodes(N_NODES_1D)
    q = np.asarray(q, dtype=float)
    u = np.sqrt(np.maximum(q, 0.0))[..., None] * x
    return np.sum(w * fn(u), axis=-1)


def _e2(qa, qb, qab, fa, fb) -> np.ndarray:
    """E[fa(u_a) fb(u_b)] for (u_a, u_b) ~ N(0, [[qa, qab], [qab, qb]]), elementwise (broadcast).

    u_a = sqrt(qa) x, u_b = sqrt(qb) (c x + sqrt(1 - c^2) y) with x, y on a product Gauss-Hermite
    grid, c = qab / sqrt(qa qb) clipped to [-1, 1].
    """
    qa, qb, qab = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (qa, qb, qab)))
    shape = qa.shape
    qa, qb, qab = qa.ravel(), qb.ravel(), qab.ravel()
    x, w = _nodes(N_NODES_2D)
    X, Y = x[:, None], x[None, :]
    W2 = w[:, None] * w[None, :]
    out = np.empty(qa.size)
    for s in range(0, qa.size, _BLOCK):
        a, b, ab = qa[s:s + _BLOCK], qb[s:s + _BLOCK], qab[s:s + _BLOCK]
        sa, sb = np.sqrt(np.maximum(a, 0)), np.sqrt(np.maximum(b, 0))
        c = np.clip(np.divide(ab, sa * sb, out=np.zeros_like(ab), where=sa * sb > 0), -1, 1)
        c3, s3 = c[:, None, None], np.sqrt(1 - c * c)[:, None, None]
        ua = sa[:, None, None] * X  # (block, n, 1): fa is evaluated n times per pair, not n^2
        ub = sb[:, None, None] * (c3 * X + s3 * Y)
        out[s:s + _BLOCK] = np.sum(W2 * fa(ua) * fb(ub), axis=(1, 2))
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# The three Gaussian averages the theory needs


def variance_map(act, q):
    """V(q) = E_u[phi(sqrt(q) u)^2]: q^(m+1) = sigma_w^2 V(q^(m)) + sigma_b^2."""
    return covariance_map(act, q, q, q)


def covariance_map(act, qa, qb, qab):
    """E[phi(u_a) phi(u_b)], (u_a, u_b) ~ N(0, [[qa, qab], [qab, qb]]) (broadcast)."""
    s = activation_spec(act)
    qa, qb, qab = (np.asarray(v, dtype=float) for v in (qa, qb, qab))
    if s.name in ("identity", "linear"):
        p, q0 = (1.0, 0.0) if s.name == "identity" else (s.p, s.q)
        return p * p * qab + q0 * q0
    if s.name == "quadratic":  # phi = p x^2 + q x + r; Isserlis: E[a^2 b^2] = qa qb + 2 qab^2
        p, q1, r = s.p, s.q, s.r
        return p * p * (qa * qb + 2 * qab * qab) + p * r * (qa + qb) + q1 * q1 * qab + r * r
    if s.name == "relu":  # Cho & Saul 2009, arc-cosine kernel of degree 1
        n = np.sqrt(qa * qb)
        c = np.clip(np.divide(qab, n, out=np.ones_like(n * qab), where=n > 0), -1, 1)
        th = np.arccos(c)
        return n / (2 * np.pi) * (np.sin(th) + (np.pi - th) * c)
    if s.name == "erf":  # Williams 1997
        return 2 / np.pi * np.arcsin(2 * qab / np.sqrt((1 + 2 * qa) * (1 + 2 * qb)))
    if np.all(qa == qb) and np.all(qab == qa):
        return _e1(s, qa, lambda u: _phi(s, u) ** 2)
    return _e2(qa, qb, qab, lambda u: _phi(s, u), lambda u: _phi(s, u))


def derivative_covariance(act, qa, qb, qab):
    """E[phi'(u_a) phi'(u_b)] (broadcast); at qa = qb = qab = q*, chi_1 / sigma_w^2."""
    s = activation_spec(act)
    qa, qb, qab = (np.asarray(v, dtype=float) for v in (qa, qb, qab))
    if s.name in ("identity", "linear"):
        p = 1.0 if s.name == "identity" else s.p
        return np.full(np.broadcast(qa, qb, qab).shape, p * p)
    if s.name == "quadratic":  # phi' = 2 p x + q
        return 4 * s.p ** 2 * qab + s.q ** 2
    if s.name == "relu":  # P(u_a > 0, u_b > 0) = (pi - theta) / (2 pi)
        n = np.sqrt(qa * qb)
        c = np.clip(np.divide(qab, n, out=np.ones_like(n * qab), where=n > 0), -1, 1)
        return (np.pi - np.arccos(c)) / (2 * np.pi)
    if s.name == "erf":  # (4/pi) E[exp(-u_a^2 - u_b^2)] = (4/pi) / sqrt(det(1 + 2 Sigma))
        return 4 / np.pi / np.sqrt((1 + 2 * qa) * (1 + 2 * qb) - 4 * qab * qab)
    if np.all(qa == qb) and np.all(qab == qa):
        return _e1(s, qa, lambda u: _phi(s, u, 1) ** 2)
    return _e2(qa, qb, qab, lambda u: _phi(s, u, 1), lambda u: _phi(s, u, 1))


def _phi_phi2(s, q):
    """E_u[phi''(sqrt(q) u) phi(sqrt(q) u)] (closed for the polynomial activations, 0 for relu)."""
    if s.name in ("identity", "linear", "relu"):
        return 0.0 * np.asarray(q, dtype=float)
    if s.name == "quadratic":  # phi'' = 2p, E[phi] = p q + r
        return 2 * s.p * (s.p * np.asarray(q, dtype=float) + s.r)
    return _e1(s, q, lambda u: _phi(s, u, 2) * _phi(s, u))


# --------------------------------------------------------------------------------------------
# Fixed points


def _q_map(s, sw2, sb2, q):
    return sw2 * variance_map(s, q) + sb2


def q_star(act, sigma_w2: float, sigma_b2: float) -> float:
    """The stable fixed point q* of q -> sigma_w^2 V(q) + sigma_b^2, or NaN if none exists."""
    s = activation_spec(act)
    sw2, sb2 = float(sigma_w2), float(sigma_b2)
    if s.name in ("identity", "linear"):
        p, q0 = (1.0, 0.0) if s.name == "identity" else (s.p, s.q)
        slope = sw2 * p * p
        return (sw2 * q0 * q0 + sb2) / (1 - slope) if slope < 1 else math.nan
    if s.name == "relu":
        return sb2 / (1 - sw2 / 2) if sw2 < 2 else math.nan
    if s.name == "quadratic":  # 3 sw2 p^2 q^2 + (sw2 (q^2 + 2 p r) - 1) q + sw2 r^2 + sb2 = 0
        a = 3 * sw2 * s.p ** 2
        b = sw2 * (s.q ** 2 + 2 * s.p * s.r) - 1
        c = sw2 * s.r ** 2 + sb2
        if a == 0:
            return -c / b if b < 0 else math.nan
        disc = b * b - 4 * a * c
        if disc < 0:
            return math.nan
        root = (-b - math.sqrt(disc)) / (2 * a)  # the smaller root is the stable one
        return root if root >= 0 else math.nan
    # bounded or slowly growing activations: iterate, then polish with brentq
    q = 1.0
    for _ in range(60):
        q_new = float(_q_map(s, sw2, sb2, q))
        if not math.isfinite(q_new) or q_new > 1e12:
            return math.nan
        if abs(q_new - q) <= 1e-14 * max(q, 1e-300):
            return q_new
        q = q_new
    h = lambda x: float(_q_map(s, sw2, sb2, x)) - x  # noqa: E731
    lo, hi = q * 0.5, q * 2.0 + 1e-12
    for _ in range(60):
        if h(lo) > 0 > h(hi):
            return brentq(h, lo, hi, xtol=1e-15, rtol=1e-14)
        lo, hi = lo * 0.5, hi * 2.0
    return q


def _c_map(s, sw2, sb2, qs, c):
    return (sw2 * covariance_map(s, qs, qs, c * qs) + sb2) / qs


def chi_1(act, sigma_w2: float, sigma_b2: float) -> float:
    """chi_1 = sigma_w^2 E_u[phi'(sqrt(q*) u)^2] (NaN without q*)."""
    qs = q_star(act, sigma_w2, sigma_b2)
    if not math.isfinite(qs):
        return math.nan
    return float(sigma_w2 * derivative_covariance(act, qs, qs, qs))


def c_star(act, sigma_w2: float, sigma_b2: float) -> float:
    """The stable fixed point of the correlation map at q*: 1 in the ordered phase (chi_1 <= 1),
    the root of C(c) = c below 1 in the chaotic phase (brentq). NaN without q*."""
    s = activation_spec(act)
    qs = q_star(s, sigma_w2, sigma_b2)
    if not math.isfinite(qs) or qs <= 0:
        return math.nan if not math.isfinite(qs) else 1.0
    x1 = float(sigma_w2 * derivative_covariance(s, qs, qs, qs))
    if x1 <= 1.0:
        return 1.0
    h = lambda c: float(_c_map(s, sigma_w2, sigma_b2, qs, c)) - c  # noqa: E731
    eps = min(1e-3, max(1e-12, 1e-3 * (x1 - 1)))
    hi = 1 - eps
    while h(hi) >= 0 and eps > 1e-14:
        eps *= 0.1
        hi = 1 - eps
    if h(hi) >= 0:
        return 1.0  # numerically at the critical line
    lo = 0.0
    if h(lo) == 0:
        return 0.0
    while h(lo) < 0 and lo > -1 + 1e-9:
        lo = max(-1 + 1e-9, lo - 0.5)
    return brentq(h, lo, hi, xtol=1e-14, rtol=1e-13)


@dataclass(frozen=True)
class MeanField:
    """Fixed point and depth scales at (activation, sigma_w^2, sigma_b^2) (physics.md section 6).

    phase: "ordered" (chi_1 < 1, c* = 1), "chaotic" (chi_1 > 1, c* < 1), "critical"
    (|chi_1 - 1| < 1e-9) or "no fixed point" (every number NaN). xi in layers.
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in asdict(self).items()}


def _xi(chi: float) -> float:
    if not math.isfinite(chi) or chi <= 0:
        return math.nan
    if chi >= 1:
        return math.inf
    return -1.0 / math.log(chi)


def mean_field(act, sigma_w2: float, sigma_b2: float) -> MeanField:
    """q*, c*, chi_1, chi_c, xi_q, xi_c and the phase (see the module docstring)."""
    s = activation_spec(act)
    sw2, sb2 = float(sigma_w2), float(sigma_b2)
    qs = q_star(s, sw2, sb2)
    if not math.isfinite(qs):
        nan = math.nan
        return MeanField(s.name, sw2, sb2, nan, nan, nan, nan, nan, nan, "no fixed point")
    x1 = float(sw2 * derivative_covariance(s, qs, qs, qs))
    cs = c_star(s, sw2, sb2)
    xc = x1 if cs >= 1.0 else float(sw2 * derivative_covariance(s, qs, qs, cs * qs))
    slope_q = x1 + sw2 * float(_phi_phi2(s, qs))
    if abs(x1 - 1) < 1e-9:
        phase = "critical"
    else:
        phase = "ordered" if x1 < 1 else "chaotic"
    return MeanField(s.name, sw2, sb2, qs, cs, x1, xc, _xi(slope_q), _xi(xc), phase)


def critical_sigma_w2(act, sigma_b2: float, bracket: tuple[float, float] = (1e-3, 1e3)) -> float:
    """sigma_w^2 on the order-to-chaos line chi_1(sigma_w^2, sigma_b^2) = 1 (brentq), or NaN.

    relu: 2 for every sigma_b^2 (q* exists only below it, unless sigma_b^2 = 0); linear p x + q:
    1/p^2 (ditto). Elsewhere the root of chi_1 - 1 inside ``bracket`` where q* exists.
    """
    s = activation_spec(act)
    if s.name == "relu":
        return 2.0
    if s.name in ("identity", "linear"):
        p = 1.0 if s.name == "identity" else s.p
        return 1.0 / (p * p)
    f = lambda sw2: chi_1(s, sw2, sigma_b2) - 1.0  # noqa: E731
    grid = np.geomspace(bracket[0], bracket[1], 61)
    vals = [f(g) for g in grid]
    for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if math.isfinite(fa) and math.isfinite(fb) and fa < 0 <= fb:
            return brentq(f, a, b, xtol=1e-12, rtol=1e-12)
    return math.nan


def critical_line(act, sigma_b2_values) -> np.ndarray:
    """sigma_w^2_c(sigma_b^2) on a grid of sigma_b^2 values (NaN where there is none)."""
    return np.array([critical_sigma_w2(act, float(b)) for b in np.atleast_1d(sigma_b2_values)])


def phase_grid(act, sigma_w2_values, sigma_b2_values) -> dict[str, np.ndarray]:
    """chi_1 and xi_c on the grid (len(sigma_b2), len(sigma_w2)), for a phase-diagram figure."""
    sw = np.asarray(sigma_w2_values, dtype=float)
    sb = np.asarray(sigma_b2_values, dtype=float)
    chi = np.full((sb.size, sw.size), np.nan)
    xi = np.full_like(chi, np.nan)
    for i, b in enumerate(sb):
        for j, w in enumerate(sw):
            mf = mean_field(act, w, b)
            chi[i, j], xi[i, j] = mf.chi_1, mf.xi_c
    return {"sigma_w2": sw, "sigma_b2": sb, "chi_1": chi, "xi_c": xi}


# --------------------------------------------------------------------------------------------
# Depth profiles for given inputs


def kernel_profile(act, sigma_w2: float, sigma_b2: float, X: np.ndarray, depth: int) -> np.ndarray:
    """The mean-field kernels Sigma^(m)_ab, m = 1..depth, for inputs X (K, N_0): (depth, K, K).

    Sigma^(1) = sigma_w^2 X X^T / N_0 + sigma_b^2; Sigma^(m+1) = sigma_w^2 E[phi phi] + sigma_b^2
    with each pair (a, b) Gaussian of covariance Sigma^(m) restricted to {a, b} (Poole Eq. 3-5).
    """
    s = activation_spec(act)
    X = np.asarray(X, dtype=float)
    K, N0 = X.shape
    out = np.empty((depth, K, K))
    S = sigma_w2 * X @ X.T / N0 + sigma_b2
    iu = np.triu_indices(K, 1)
    for m in range(depth):
        out[m] = S
        if m == depth - 1:
            break
        d = np.diag(S).copy()
        new = np.empty_like(S)
        new[np.diag_indices(K)] = sigma_w2 * variance_map(s, d) + sigma_b2
        off = sigma_w2 * covariance_map(s, d[iu[0]], d[iu[1]], S[iu]) + sigma_b2
        new[iu] = off
        new[iu[1], iu[0]] = off
        S = new
    return out


def profile_summary(kernels: np.ndarray) -> dict[str, np.ndarray]:
    """Probe averages of a kernel profile (M, K, K), the same way ``analysis.kernels`` averages
    measured ones: q^(m) = mean_a Sigma_aa and c^(m) = mean_{a<b} Sigma_ab / sqrt(Sigma_aa Sigma_bb)."""
    d = np.diagonal(kernels, axis1=1, axis2=2)
    K = kernels.shape[1]
    iu = np.triu_indices(K, 1)
    c = kernels[:, iu[0], iu[1]] / np.sqrt(d[:, iu[0]] * d[:, iu[1]])
    return {"q": d.mean(axis=1), "c": c.mean(axis=1) if c.shape[1] else np.full(len(d), np.nan)}


def overlap_inputs(K: int, n_in: int, rho: float, seed: int = 0, norm: float = 1.0) -> np.ndarray:
    """K inputs in R^{n_in} (K + 1 <= n_in) with |X_a|^2 / n_in = norm and X_a . X_b / n_in =
    rho norm (a != b) exactly: X_a = sqrt(n_in norm) (sqrt(rho) g + sqrt(1 - rho) e_a) with g, e_a
    orthonormal (QR of a Gaussian matrix)."""
    if K + 1 > n_in or not 0.0 <= rho <= 1.0 or norm <= 0:
        raise ValueError("overlap_inputs needs K + 1 <= n_in, 0 <= rho <= 1 and norm > 0")
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n_in, K + 1)))
    return math.sqrt(n_in * norm) * (math.sqrt(rho) * Q[:, :1].T + math.sqrt(1 - rho) * Q[:, 1:].T)


def inputs_for_kernel(K: int, n_in: int, q1: float, c1: float, sigma_w2: float, sigma_b2: float,
                      seed: int = 0) -> np.ndarray:
    """K probe inputs whose layer-1 kernel is exactly q^(1)_aa = q1, c^(1)_ab = c1
    (q^(1)_ab = sigma_w^2 X_a . X_b / n_in + sigma_b^2). With (q1, c1) = (q*, c*) a network
    starts at the mean-field fixed point, so every layer measures chi_1 and chi_c at (q*, c*);
    with c1 < c* = 1 the approach of c^(m) to 1 shows xi_c from the first layers on."""
    if q1 <= sigma_b2:
        raise ValueError(f"q1 = {q1} must exceed sigma_b^2 = {sigma_b2}")
    norm = (q1 - sigma_b2) / sigma_w2
    rho = (c1 * q1 - sigma_b2) / (q1 - sigma_b2)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"c1 = {c1} is out of reach: need sigma_b^2 <= c1 q1 <= q1")
    return overlap_inputs(K, n_in, rho, seed, norm)
