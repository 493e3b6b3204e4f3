"""Translational symmetry along depth: is G(m, m + r) a function of r alone inside a bulk window?

Null hypothesis: for every r = 0..r_max, the entries G(m, m + r) with lo <= m, m + r <= hi are equal.
The deviations from their mean at each r, d (p constraints once one entry per r is dropped), are
tested with the jackknife covariance C of the estimates (replicas are independent):

* Hotelling's T^2 = d^T C^-1 d;  F = (R - p) / (p (R - 1)) T^2 ~ F(p, R - p) under the null
  (Hotelling 1931; with jackknife pseudo-values as the R samples). Needs R > p; the p-value is
  ``scipy.stats.f.sf``.
* the largest deviation in standard deviations (the pyerrors habit), max_j |d_j| / sigma_j, with
  a p-value from a studentized bootstrap of the jackknife pseudo-values (correlations and the
  non-Gaussian tails of quadratic statistics included; valid for any p).

An automatic window ("auto") trims boundary layers from the full range, one at a time from the
end whose one-point function (the diagonal G(m, m)) deviates more, until the diagonal is
constant (p > alpha); the choice is made on one half of the replicas and the test is run on the
other half, so that the p-value is not biased by the search.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from .correlations import connected_two_point, translation_average
from .errors import Estimate, jackknife_error

__all__ = ["SymmetryTest", "translation_test", "translation_test_layers", "find_bulk_window"]


@dataclass(frozen=True)
class SymmetryTest:
    """Result of the translation test. ``window`` (lo, hi) are indices into G's axes (inclusive);
    ``labels`` their layer labels if known. ``p_value`` is Hotelling's (NaN when R <= p),
    ``p_value_max`` the max-deviation one; ``passed(alpha)`` and ``p`` use Hotelling's when
    R >= 10 p (where its F law holds; with p/R ~ 0.2 it rejects ~8% at alpha = 5%), the
    max-deviation one otherwise.
    ``profile``: G(r) averaged over the window, r = 0..r_max."""

    window: tuple[int, int]
    r_max: int
    n_constraints: int
    n_replicas: int
    hotelling_t2: float
    p_value: float
    max_deviation: float
    p_value_max: float
    chi2_uncorrelated: float
    profile: Estimate
    labels: tuple | None = None

    @property
    def p(self) -> float:
        """The p-value the verdict uses (see the class docstring)."""
        if np.isfinite(self.p_value) and self.n_replicas >= 10 * self.n_constraints:
            return float(self.p_value)
        return float(self.p_value_max)

    def passed(self, alpha: float = 0.05) -> bool:
        return bool(self.p > alpha)

    def to_dict(self) -> dict:
        def f(x):
            return None if not np.isfinite(x) else float(x)
        return {"window": list(self.window), "window_layers": list(self.labels) if self.labels else None,
                "r_max": self.r_max, "constraints": self.n_constraints,
                "replicas": self.n_replicas, "hotelling_T2": f(self.hotelling_t2),
                "p_value": f(self.p_value), "max_deviation_sigma": f(self.max_deviation),
                "p_value_max_deviation": f(self.p_value_max),
                "chi2_uncorrelated": f(self.chi2_uncorrelated), "p": f(self.p),
                "G_r": self.profile.to_dict()}


def _contrasts(g: np.ndarray, lo: int, hi: int, r_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(all deviations from the per-r mean, the independent ones: one per r dropped)."""
    full, indep = [], []
    for r in range(r_max + 1):
        vals = np.array([g[..., m, m + r] for m in range(lo, hi - r + 1)])
        dev = vals - vals.mean(axis=0)
        full.append(dev)
        indep.append(dev[:-1])
    return np.concatenate(full, axis=0), np.concatenate(indep, axis=0)


def translation_test(G: Estimate, window: tuple[int, int] | None = None, r_max: int | None = None,
                     *, labels=None, n_sim: int = 4000, seed: int = 0) -> SymmetryTest:
    """Test G(m, m + r) = G(r) inside ``window`` (inclusive indices; default the full range) for
    r = 0..r_max (default: a third of the window length). G: Estimate (M, M) with jackknife
    replicates (e.g. from :func:`connected_two_point`)."""
    if G.jackknife is None:
        raise ValueError("the translation test needs an Estimate with jackknife replicates")
    M = np.shape(G.value)[0]
    lo, hi = window if window is not None else (0, M - 1)
    if not 0 <= lo < hi <= M - 1:
        raise ValueError(f"window {window} outside 0..{M - 1} or shorter than 2 layers")
    L = hi - lo + 1
    r_max = max(0, (L - 1) // 3) if r_max is None else min(r_max, L - 2)
    value = np.asarray(G.value)
    jk = np.asarray(G.jackknife)
    R = jk.shape[0]
    d_full, d = _contrasts(value, lo, hi, r_max)
    jk_full, jk_d = (x.T for x in _contrasts(jk, lo, hi, r_max))  # (R, p_full), (R, p)
    p = d.size
    sig_full = jackknife_error(jk_full)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_full = np.where(sig_full > 0, d_full / sig_full, 0.0)
    dev = jk_d - jk_d.mean(axis=0)
    C = (R - 1) / R * dev.T @ dev
    if R > p and p > 0:
        try:
            t2 = float(d @ np.linalg.solve(C, d))
            F = (R - p) / (p * (R - 1)) * t2
            p_h = float(stats.f.sf(F, p, R - p))
        except np.linalg.LinAlgError:
            t2, p_h = np.nan, np.nan
    else:
        t2, p_h = np.nan, np.nan
    t_max = float(np.max(np.abs(t_full))) if t_full.size else 0.0
    p_max = _max_t_pvalue(d_full, jk_full, t_max, n_sim, seed)
    profile = translation_average(G, (lo, hi), r_max)
    lab = None if labels is None else (int(labels[lo]), int(labels[hi]))
    return SymmetryTest((lo, hi), r_max, p, R, t2, p_h, t_max, p_max, float(np.sum(t_full ** 2)),
                        profile, lab)


def _max_t_pvalue(d: np.ndarray, jk: np.ndarray, t_obs: float, n_boot: int, seed: int) -> float:
    """p-value of max_j |d_j| / sigma_j by the studentized (bootstrap-t) resampling of the
    jackknife pseudo-values Y_i = R d - (R - 1) d_(i) (Efron & Tibshirani 1993, ch. 12): each
    resample is centred on the observed mean and divided by its own standard error, so the
    noise of the estimated sigma_j (heavy tails for quadratic statistics) is part of the null."""
    R, p = jk.shape
    if p == 0 or R < 3:
        return float("nan")
    Y = R * d[None, :] - (R - 1) * jk
    Yc = Y - Y.mean(axis=0)
    rng = np.random.default_rng(seed)
    exceed = 0
    done = 0
    block = max(1, min(n_boot, int(2e7 // max(R * p, 1))))
    while done < n_boot:
        n = min(block, n_boot - done)
        counts = rng.multinomial(R, np.full(R, 1.0 / R), size=n).astype(float)  # (n, R)
        mean = counts @ Yc / R
        var = (counts @ (Yc * Yc) / R - mean * mean) * R / (R - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(mean) / np.sqrt(var / R)
        t = np.where(np.isfinite(t), t, 0.0)
        exceed += int(np.sum(t.max(axis=1) >= t_obs))
        done += n
    return float((exceed + 1) / (n_boot + 1))


def find_bulk_window(G: Estimate, *, min_length: int = 4, alpha: float = 0.05) -> tuple[int, int]:
    """The largest window whose one-point function G(m, m) is constant (p > alpha), found by
    trimming, one layer at a time, the end that deviates more from the window mean."""
    M = np.shape(G.value)[0]
    lo, hi = 0, M - 1
    while hi - lo + 1 > min_length:
        t = translation_test(G, (lo, hi), r_max=0, n_sim=2000)
        if t.passed(alpha):
            break
        diag = np.diagonal(np.asarray(G.value))[lo:hi + 1]
        err = np.diagonal(np.asarray(G.error))[lo:hi + 1]
        z = np.abs(diag - diag.mean()) / np.where(err > 0, err, np.inf)
        if z[0] >= z[-1]:
            lo += 1
        else:
            hi -= 1
    return lo, hi


def translation_test_layers(O: np.ndarray, window="auto", r_max: int | None = None, *,
                            labels=None, alpha: float = 0.05, min_length: int = 4,
                            estimator: Callable[[np.ndarray], Estimate] = connected_two_point,
                            seed: int = 0) -> SymmetryTest:
    """The translation test for a per-replica layer scalar O (R, M, *samples) whose two-point
    function is ``estimator(O)`` (default the connected G_O). ``window``: (lo, hi) indices, None
    (everything) or "auto" (chosen on the even-numbered replicas, tested on the odd ones)."""
    O = np.asarray(O, dtype=float)
    if isinstance(window, str):
        if window != "auto":
            raise ValueError("window must be (lo, hi), None or 'auto'")
        win = find_bulk_window(estimator(O[0::2]), min_length=min_length, alpha=alpha)
        return translation_test(estimator(O[1::2]), win, r_max, labels=labels, seed=seed)
    return translation_test(estimator(O), window, r_max, labels=labels, seed=seed)
