"""The measured chi_1 and the order-to-chaos point from data (physics.md section 6).

For each replica, a recorded snapshot (snapshot 0 of a run is its initialisation) and the probe
inputs, the gain of a small perturbation of z^(m) through link m (m = 1..M-1),

    chi^(m)_a = (1/N_{m+1}) sum_ij (W^(m)_ij)^2 sigma'(z^(m)_aj)^2       (Poole et al. 2016 Eq. 7)

is the exact mean over isotropic perturbation directions of |J u|^2 / N_{m+1} per |u|^2 / N_m,
J = W^(m) diag sigma'(z^(m)). Its mean-field value is chi_1 where q^(m) = q*, so the bulk estimate
averages links beyond the q transient (automatic: the first link whose q^(m) is within two
standard errors of the mean of the deeper half). The same with two inputs,
chi^(m)_ab = (1/N_{m+1}) sum_ij W_ij^2 sigma'(z_aj) sigma'(z_bj), averaged over pairs, measures chi_c
where c^(m) ~ c*. The input-output Jacobian gives the same gain as |dz^(m+1)/dX|^2 / |dz^(m)/dX|^2.

Errors: jackknife over replicas. The finite-width systematic is estimated from the data as the
O(1/N) shift of a smooth function of the fluctuating layer kernel,

    delta chi ~ |d chi / d q| Var_r(q^(m)) / q^(m)

with d chi / d q the regression slope of chi^(m)_a on q^(m)_a across replicas and inputs, and
Var_r(q)/q^2 ~ 2/N the measured relative spread of the kernel (both from the same snapshot).

The critical point: chi_1(sigma_w^2) measured at several sigma_w^2 (one file each, same
activation and sigma_b^2) is fitted by a weighted polynomial (degree 1 for 2-3 points, 2 above)
near the crossing; sigma_w^2_c solves fit = 1 (``scipy.optimize.brentq``). Statistical error by
Monte Carlo over the independent points; systematic by shifting every point by its finite-width
estimate (a coherent shift: the O(1/N) bias has one sign near the line); both combined in
quadrature. With files at two widths or more, the crossings are also extrapolated linearly in 1/N
and the difference from the widest crossing joins the systematic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from ..errors import UserError
from .errors import Estimate, jackknife
from .files import block_rows, ensemble, network_table, replica_blocks, require, variances
from .forward import StoredNetwork

__all__ = ["Chi1", "measure_chi1", "CriticalPoint", "critical_point"]


@dataclass(frozen=True)
class Chi1:
    """chi_1 measured on an ensemble.

    links (M-1,) = 1..M-1; per_link: Estimate (M-1,) of chi^(m); chi_1: the bulk average over
    ``bulk`` = (first, last) links (inclusive); chi_c: the pair gain averaged likewise (NaN
    with one probe input); q: Estimate (M,) of the probe-averaged q^(m) (layers 1..M) of the
    same forward pass; systematic: the finite-width estimate of the module docstring;
    width: the hidden width N; sigma_w2, sigma_b2, activation: from the file; snapshot, step;
    jacobian (with ``jacobian=True``): the gain per link of the input-output Jacobian over the
    bulk links, (|dz^(last+1)/dX|^2 N_first / (|dz^(first)/dX|^2 N_last+1))^(1/L) per input,
    averaged over inputs (L = number of bulk links).
    """

    links: np.ndarray
    per_link: Estimate
    chi_1: Estimate
    chi_c: Estimate
    pair_per_link: Estimate
    q: Estimate
    c: Estimate
    bulk: tuple[int, int]
    systematic: float
    width: int
    sigma_w2: float
    sigma_b2: float
    activation: str
    snapshot: int
    step: int
    path: str = ""
    jacobian: Estimate | None = None

    def to_dict(self) -> dict:
        return {"chi_1": self.chi_1.to_dict(), "chi_c": self.chi_c.to_dict(),
                "finite_width_systematic": self.systematic, "bulk_links": list(self.bulk),
                "width": self.width, "sigma_w2": self.sigma_w2, "sigma_b2": self.sigma_b2,
                "activation": self.activation, "snapshot": self.snapshot, "step": self.step,
                "per_link": self.per_link.to_dict(),
                "chi_1_jacobian": self.jacobian.to_dict() if self.jacobian is not None else None}


def _auto_first(q: np.ndarray) -> int:
    """First layer (index into q) whose replica-mean q^(m) is within 2 standard errors of the mean
    over the deeper half of the layers. q: (R, M) probe-averaged per replica."""
    R, M = q.shape
    mean = q.mean(axis=0)
    se = q.std(axis=0, ddof=1) / math.sqrt(R) if R > 1 else np.zeros(M)
    deep = mean[M // 2:].mean()
    for m in range(M):
        if abs(mean[m] - deep) <= 2 * max(se[m], 1e-12 * abs(deep)):
            return m
    return M // 2


def measure_chi1(source, *, snapshot: int = 0, links: tuple[int, int] | None = None,
                 replicas=slice(None), jacobian: bool = False, budget: float = 256e6) -> Chi1:
    """chi_1 (and chi_c) from a snapshot of an ensemble (default snapshot 0: the initialisation).

    links: (first, last) link numbers m (1..M-1) of the bulk average; default: from the end of
    the q transient (see module doc) to the last link into a layer as wide as its input.
    Needs ``snapshots`` (recording.snapshot_every > 0) and the probe inputs ``data/X_probe``.
    """
    with ensemble(source) as ens:
        require(ens, "snapshots")
        net = StoredNetwork.from_ensemble(ens)
        if net.depth < 2:
            raise UserError(f"{ens.path}: chi_1 needs a hidden layer (the network has one link)")
        X = np.asarray(ens.read("data/X_probe"), dtype=float)
        n = ens.entries["snapshots"]
        if not -n <= snapshot < n:
            raise UserError(f"{ens.path}: snapshot {snapshot} out of range ({n} snapshots)")
        step = int(np.asarray(ens.read("snapshots/step"))[snapshot])
        rows = np.arange(len(ens.replicas))[replicas]
        R, K, M = len(rows), X.shape[0], net.depth
        gains = np.empty((R, M - 1, K))
        pair = np.empty((R, M - 1))
        qs = np.empty((R, M, K))
        cs = np.empty((R, M))
        jn = np.empty((R, M, K)) if jacobian else None
        iu = np.triu_indices(K, 1)
        n_par = ens.shape("snapshots/theta")[-1]
        for blk in replica_blocks(R, n_par * 8.0 * 4, budget):
            th = np.asarray(ens.read("snapshots/theta", replicas=block_rows(rows, blk), index=snapshot), dtype=float)
            for i, r in enumerate(range(blk.start, blk.stop)):
                g, gp = net.link_gains(th[i], X, pairs=True)
                gains[r] = g
                pair[r] = gp[:, iu[0], iu[1]].mean(axis=1) if K > 1 else np.nan
                zs = net.forward(th[i], X)
                if jacobian:
                    jn[r] = net.jacobian_norms(th[i], X)
                for m, z in enumerate(zs):
                    S = z @ z.T / z.shape[1]
                    d = np.diag(S)
                    qs[r, m] = d
                    cs[r, m] = (S[iu] / np.sqrt(d[iu[0]] * d[iu[1]])).mean() if K > 1 else np.nan
        widths = net.widths
        sw2, sb2 = variances(ens)
        act = network_table(ens).get("activation", net.hidden.name)
        path = ens.path
    ok = np.all(np.isfinite(gains), axis=(1, 2)) & np.all(np.isfinite(qs), axis=(1, 2))
    if ok.sum() < 2:
        raise UserError(f"{path}: fewer than two replicas with finite parameters at snapshot "
                        f"{snapshot} (diverged replicas are left out)")
    gains, pair, qs, cs = gains[ok], pair[ok], qs[ok], cs[ok]
    if jacobian:
        jn = jn[ok]
    R = int(ok.sum())
    q_rep = qs.mean(axis=2)  # (R, M)
    last = max(m for m in range(1, M) if widths[m + 1] == widths[m]) if any(
        widths[m + 1] == widths[m] for m in range(1, M)) else M - 1
    if links is None:
        first = max(1, _auto_first(q_rep[:, :last]) + 1)  # q index i is layer i+1, link m uses layer m
        first = min(first, last)
    else:
        first, last = links
        if not 1 <= first <= last <= M - 1:
            raise ValueError(f"links {links} outside 1..{M - 1}")
    sl = slice(first - 1, last)
    per_link = jackknife(gains.mean(axis=2))
    chi = jackknife(gains[:, sl].mean(axis=(1, 2)))
    chic = jackknife(pair[:, sl].mean(axis=1)) if K > 1 else Estimate(math.nan, math.nan)
    # finite-width systematic: slope d chi / d q across replicas and inputs, times Var(q)/q
    qb = qs[:, first - 1:last]  # q^(m) entering link m: (R, L, K)
    gb = gains[:, sl]
    x, y = qb.ravel(), gb.ravel()
    slope = np.polyfit(x, y, 1)[0] if x.size > 2 and np.ptp(x) > 0 else 0.0
    rel_var = float(np.mean(qb.var(axis=0) / qb.mean(axis=0))) if R > 1 else math.nan
    syst = abs(slope) * rel_var
    jac = None
    if jacobian:  # |dz^(m)/dX|^2 / N_m is jn[:, m-1]; link m maps layer m to m + 1
        L = last - first + 1
        jac = jackknife((jn[:, last] / jn[:, first - 1]) ** (1.0 / L), lambda g: g.mean(axis=(0, 1)))
    return Chi1(np.arange(1, M), per_link, chi, chic, jackknife(pair), jackknife(q_rep),
                jackknife(cs), (first, last), float(syst), int(widths[1]), sw2, sb2, str(act),
                int(snapshot), step, path, jac)


@dataclass(frozen=True)
class CriticalPoint:
    """sigma_w^2 where the measured chi_1 crosses 1.

    sigma_w2: Estimate with the total error (statistical and systematic in quadrature);
    statistical, systematic: the two parts; points: the Chi1 of each file, sorted by sigma_w^2;
    per_width: {N: crossing} when several widths were given; degree: of the fitted polynomial.
    """

    sigma_w2: Estimate
    statistical: float
    systematic: float
    points: list = field(repr=False)
    per_width: dict = field(default_factory=dict)
    degree: int = 1

    def to_dict(self) -> dict:
        return {"sigma_w2_critical": self.sigma_w2.to_dict(), "statistical": self.statistical,
                "systematic": self.systematic, "degree": self.degree,
                "per_width": {str(k): v for k, v in self.per_width.items()},
                "points": [{"sigma_w2": p.sigma_w2, "width": p.width, "chi_1": p.chi_1.to_dict(),
                            "finite_width_systematic": p.systematic, "file": p.path}
                           for p in self.points]}


def _crossing(x, y, e, degree) -> float:
    """Root of the weighted polynomial fit y(x) = 1 inside [min x, max x] (NaN if none)."""
    coef = np.polyfit(x, y, degree, w=1.0 / e)
    f = lambda s: np.polyval(coef, s) - 1.0  # noqa: E731
    grid = np.linspace(x.min(), x.max(), 201)
    v = f(grid)
    idx = np.flatnonzero(np.sign(v[:-1]) != np.sign(v[1:]))
    if idx.size == 0:
        return math.nan
    i = idx[np.argmin(np.abs(grid[idx] - grid[np.argmin(np.abs(v))]))]
    return brentq(f, grid[i], grid[i + 1])


def _width_crossing(pts, n_mc: int, seed: int):
    x = np.array([p.sigma_w2 for p in pts])
    y = np.array([float(p.chi_1.value) for p in pts])
    e = np.array([float(p.chi_1.error) for p in pts])
    s = np.array([p.systematic for p in pts])
    # keep the points nearest the crossing: at most 5, bracketing chi = 1 when possible
    order = np.argsort(np.abs(y - 1.0))
    keep = np.sort(order[:max(2, min(5, len(pts)))])
    x, y, e, s = x[keep], y[keep], e[keep], s[keep]
    degree = 1 if len(x) <= 3 else 2
    e = np.where(e > 0, e, 1e-12)
    value = _crossing(x, y, e, degree)
    if not math.isfinite(value):
        raise UserError("the measured chi_1 does not cross 1 between sigma_w^2 = "
                        f"{x.min():g} and {x.max():g} (chi_1 from {y.min():.3f} to {y.max():.3f}); "
                        "add ensembles on both sides of the critical line")
    rng = np.random.default_rng(seed)
    draws = np.array([_crossing(x, y + e * rng.standard_normal(len(y)), e, degree)
                      for _ in range(n_mc)])
    draws = draws[np.isfinite(draws)]
    stat = float(np.std(draws, ddof=1)) if draws.size > 2 else math.nan
    shifted = [_crossing(x, y + sgn * s, e, degree) for sgn in (+1, -1)]
    syst = float(np.nanmax(np.abs(np.array(shifted) - value))) if np.any(np.isfinite(shifted)) else math.nan
    return value, stat, syst, degree


def critical_point(files, *, snapshot: int = 0, links=None, n_mc: int = 400,
                   seed: int = 0) -> CriticalPoint:
    """The critical sigma_w^2 from ensembles at several sigma_w^2 (paths or measured
    :class:`Chi1` results; same activation and sigma_b^2), with statistical and finite-width
    systematic errors (see the module docstring)."""
    pts = [f if isinstance(f, Chi1) else measure_chi1(f, snapshot=snapshot, links=links) for f in files]
    if len(pts) < 2:
        raise UserError("the critical point needs ensembles at two sigma_w^2 or more")
    acts = {p.activation for p in pts}
    sbs = {round(p.sigma_b2, 12) for p in pts}
    if len(acts) > 1 or len(sbs) > 1:
        raise UserError(f"the ensembles differ in activation {sorted(acts)} or sigma_b^2 "
                        f"{sorted(sbs)}; the critical point is for one (activation, sigma_b^2)")
    pts.sort(key=lambda p: (p.width, p.sigma_w2))
    widths = sorted({p.width for p in pts})
    per_width = {}
    for N in widths:
        sub = [p for p in pts if p.width == N]
        if len({p.sigma_w2 for p in sub}) >= 2:
            per_width[N] = _width_crossing(sub, n_mc, seed)
    if not per_width:
        raise UserError("the critical point needs, at one width, ensembles at two sigma_w^2 or more")
    N_max = max(per_width)
    value, stat, syst, degree = per_width[N_max]
    if len(per_width) >= 2:  # extrapolate the crossings linearly in 1/N
        Ns = np.array(sorted(per_width), dtype=float)
        vals = np.array([per_width[int(N)][0] for N in Ns])
        errs = np.array([max(per_width[int(N)][1], 1e-9) for N in Ns])
        coef = np.polyfit(1.0 / Ns, vals, 1, w=1.0 / errs)
        syst = math.hypot(syst, abs(value - coef[1]))
    total = math.hypot(stat, syst)
    return CriticalPoint(Estimate(value, total), stat, syst, pts,
                         {int(N): v[0] for N, v in per_width.items()}, degree)
