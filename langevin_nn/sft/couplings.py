"""The couplings of the fields from the Hessian: J_i, K_i of SFT Eq. 14 from a field's Hessian
block, the springs of longer range and the residual beyond nearest neighbours, J(x), K(x) of
Eq. 17 (:func:`field_couplings`, inverted by :func:`hessian_from_couplings`); the couplings
between two fields by lattice offset and spatial derivative order, Eq. 19
(:func:`pair_couplings`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .fields import Field


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
