"""Correlation lengths along depth and the long-range-order verdict (physics.md section 7).

* Fit G(r) = A exp(-r / xi) (+ B, a plateau) by weighted least squares
  (``scipy.optimize.curve_fit`` with the diagonal errors); parameter errors by refitting every
  jackknife replicate (so the strong correlations between the G(r) enter the error bars), or
  from the fit's covariance when G carries no replicates. chi^2/dof (uncorrelated) is reported.
* Effective-mass style  xi_eff(r) = 1 / ln(G(r) / G(r + 1))  (a plateau in r signals a single
  exponential; NaN where G(r)/G(r+1) <= 0).
* xi against training time: one fit per recorded entry.
* The verdict: long-range order if the plateau differs from zero by more than n_sigma standard
  deviations, or if xi is comparable to the depth (xi - n_sigma sigma_xi > ratio * M).
* The mean-field depth scale of a profile, e.g. xi_c from c^(m) = c* + A exp(-m / xi_c)
  (Schoenholz et al. 2017 Eq. 9), with c* fixed (the ordered phase: c* = 1) or fitted.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from .errors import Estimate, jackknife_error, propagate

__all__ = ["CorrelationFit", "fit_correlation_length", "xi_effective", "xi_vs_time",
           "OrderVerdict", "long_range_order", "xi_from_profile"]


@dataclass(frozen=True)
class CorrelationFit:
    """G(r) = A exp(-r / xi) + B over the points ``r`` used. ``plateau`` is the fitted B (an
    Estimate) or, when B was fixed, an Estimate with zero error; ``plateau_free`` says which."""

    xi: Estimate
    amplitude: Estimate
    plateau: Estimate
    plateau_free: bool
    r: np.ndarray
    chi2: float
    dof: int

    @property
    def reliable(self) -> bool:
        """A usable fit: finite xi > 0.1 with a positive finite error and at least one degree of
        freedom (a fit that pins xi below a tenth of the spacing or at round-off error is not)."""
        xi, e = float(self.xi.value), float(self.xi.error)
        return bool(math.isfinite(xi) and math.isfinite(e) and xi > 0.1 and e > 1e-8 * abs(xi)
                    and self.dof >= 1)

    def curve(self, r) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        return float(self.amplitude.value) * np.exp(-r / float(self.xi.value)) + float(self.plateau.value)

    def to_dict(self) -> dict:
        return {"xi": self.xi.to_dict(), "amplitude": self.amplitude.to_dict(),
                "plateau": self.plateau.to_dict(), "plateau_free": self.plateau_free,
                "r": [float(x) for x in self.r], "chi2": _f(self.chi2), "dof": self.dof,
                "reliable": self.reliable}


def _f(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _model(free: bool, fixed: float):
    if free:
        return lambda r, a, xi, b: a * np.exp(-r / xi) + b
    return lambda r, a, xi: a * np.exp(-r / xi) + fixed


def _guess(r, y, free):
    yy = y - (y[-1] if free and len(y) > 3 else 0.0)
    ok = np.abs(yy) > 0
    xi0 = 1.0
    if ok.sum() >= 2:
        i, j = np.flatnonzero(ok)[[0, -1]]
        if j > i and yy[i] * yy[j] > 0 and abs(yy[j]) < abs(yy[i]):
            xi0 = (r[j] - r[i]) / math.log(abs(yy[i]) / abs(yy[j]))
    a0 = yy[0] * math.exp(r[0] / xi0) if xi0 > 0 else yy[0]
    return [a0, max(xi0, 1e-3)] + ([y[-1]] if free else [])


def _fit(f, r, y, s, p0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return curve_fit(f, r, y, p0=p0, sigma=s, absolute_sigma=True, maxfev=20000)


def fit_correlation_length(r, G: Estimate, *, plateau: bool | float = False,
                           r_range: tuple[float, float] | None = None) -> CorrelationFit:
    """Fit G(r) = A exp(-r / xi) (+ B) to an Estimate G over the points r (see module doc).

    plateau: False (B = 0), True (B fitted) or a number (B fixed at it, e.g. c* = 1).
    r_range: (r_min, r_max) inclusive (default all points with a positive error).
    A fit that does not converge gives NaN parameters, not an exception.
    """
    r = np.asarray(r, dtype=float)
    y_all = np.asarray(G.value, dtype=float)
    e_all = np.asarray(G.error, dtype=float)
    sel = np.isfinite(y_all) & np.isfinite(e_all) & (e_all > 0)
    if r_range is not None:
        sel &= (r >= r_range[0]) & (r <= r_range[1])
    free = plateau is True
    fixed = 0.0 if plateau is False or plateau is True else float(plateau)
    f = _model(free, fixed)
    n_par = 3 if free else 2
    rs, y, s = r[sel], y_all[sel], e_all[sel]
    nan = Estimate(math.nan, math.nan)
    if rs.size < n_par:
        return CorrelationFit(nan, nan, Estimate(fixed if not free else math.nan, 0.0 if not free else math.nan),
                              free, rs, math.nan, int(rs.size - n_par))
    try:
        popt, pcov = _fit(f, rs, y, s, _guess(rs, y - fixed, free))
    except (RuntimeError, ValueError):
        return CorrelationFit(nan, nan, Estimate(fixed if not free else math.nan, 0.0 if not free else math.nan),
                              free, rs, math.nan, int(rs.size - n_par))
    chi2 = float(np.sum(((y - f(rs, *popt)) / s) ** 2))
    if G.jackknife is not None:
        reps = []
        for g in np.asarray(G.jackknife, dtype=float):
            try:
                reps.append(_fit(f, rs, g[sel], s, popt)[0])
            except (RuntimeError, ValueError):
                reps.append(np.full(n_par, np.nan))
        reps = np.array(reps)
        err = jackknife_error(reps) if np.all(np.isfinite(reps)) else np.sqrt(np.diag(pcov))
    else:
        err = np.sqrt(np.diag(pcov))
    pl = Estimate(float(popt[2]), float(err[2])) if free else Estimate(fixed, 0.0)
    return CorrelationFit(Estimate(float(popt[1]), float(err[1])), Estimate(float(popt[0]), float(err[0])),
                          pl, free, rs, chi2, int(rs.size - n_par))


def xi_effective(G: Estimate) -> Estimate:
    """xi_eff(r) = 1 / ln(G(r) / G(r + 1)) for r = 0..len-2 (jackknife propagated when G carries
    replicates; else first-order error propagation)."""
    def f(g):
        g = np.asarray(g, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = g[..., :-1] / g[..., 1:]
            return np.where(ratio > 0, 1.0 / np.log(ratio), np.nan)

    if G.jackknife is not None:
        return propagate(f, G)
    g, e = np.asarray(G.value, dtype=float), np.asarray(G.error, dtype=float)
    v = f(g)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.sqrt((e[:-1] / g[:-1]) ** 2 + (e[1:] / g[1:]) ** 2)
        err = v * v * rel
    return Estimate(v, np.abs(err))


def xi_vs_time(r, profiles: list[Estimate], *, plateau: bool | float = False,
               r_range=None) -> tuple[Estimate, list[CorrelationFit]]:
    """xi at each recorded entry from its G(r) (one fit per entry): (Estimate (S,), the fits)."""
    fits = [fit_correlation_length(r, g, plateau=plateau, r_range=r_range) for g in profiles]
    return Estimate(np.array([float(f.xi.value) for f in fits]),
                    np.array([float(f.xi.error) for f in fits])), fits


@dataclass(frozen=True)
class OrderVerdict:
    """long_range: the verdict; reason: one line; plateau_sigma: |B| / sigma_B (NaN when the
    plateau was fixed); xi_over_depth: xi / M with its error; depth M."""

    long_range: bool
    reason: str
    plateau_sigma: float
    xi_over_depth: Estimate
    depth: int

    def to_dict(self) -> dict:
        return {"long_range_order": self.long_range, "reason": self.reason,
                "plateau_sigma": _f(self.plateau_sigma), "xi_over_depth": self.xi_over_depth.to_dict(),
                "depth": self.depth}


def long_range_order(fit: CorrelationFit, depth: int, *, n_sigma: float = 3.0,
                     ratio: float = 0.5) -> OrderVerdict:
    """Long-range order along depth: a plateau B != 0 by more than ``n_sigma`` standard deviations,
    or xi comparable to the depth M (xi - n_sigma sigma_xi > ratio M). Otherwise short-range."""
    xi, dxi = float(fit.xi.value), float(fit.xi.error)
    xo = Estimate(xi / depth, dxi / depth)
    b, db = float(fit.plateau.value), float(fit.plateau.error)
    z = abs(b) / db if fit.plateau_free and db > 0 else math.nan
    if not fit.reliable:
        return OrderVerdict(False, "no verdict: the exponential fit is not reliable "
                            f"(xi = {xi:.3g} +- {dxi:.2g}, {fit.dof} degrees of freedom)", z, xo, depth)
    if math.isfinite(z) and z > n_sigma:
        return OrderVerdict(True, f"plateau {b:.3g} +- {db:.2g} is {z:.1f} sigma from zero", z, xo, depth)
    if xi - n_sigma * dxi > ratio * depth:
        return OrderVerdict(True, f"xi = {xi:.3g} +- {dxi:.2g} exceeds {ratio:g} x depth {depth} "
                            f"by more than {n_sigma:g} sigma", z, xo, depth)
    why = f"xi = {xi:.3g} +- {dxi:.2g} (depth {depth})"
    if math.isfinite(z):
        why += f", plateau {z:.1f} sigma from zero"
    return OrderVerdict(False, "short-range: " + why, z, xo, depth)


def xi_from_profile(layers, profile: Estimate, *, fixed_point: float | None = None,
                    window: tuple[int, int] | None = None) -> CorrelationFit:
    """The depth scale of a profile approaching its fixed point, e.g. xi_c from
    c^(m) = c* + A exp(-m / xi_c) over layers m in ``window`` (inclusive); ``fixed_point`` fixes c*
    (1 in the ordered phase), None fits it. Same fitting machinery as :func:`fit_correlation_length`."""
    plateau = True if fixed_point is None else float(fixed_point)
    return fit_correlation_length(np.asarray(layers, dtype=float), profile, plateau=plateau,
                                  r_range=window)
