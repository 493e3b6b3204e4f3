"""The expansion of the cost about a reference point (SFT Eq. 11): C0, the source J_1 (gradient),
J_2 = H / 2 organised by field pair, lattice offset and spatial derivative order (Eq. 19), the
mass of each field, and the shift W* (minimum of the quadratic model)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cost import TrainingCost
from .couplings import field_couplings, pair_couplings
from .fields import Field


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
