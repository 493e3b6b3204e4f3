"""The synaptic two-point function C(d): from a covariance matrix, measured from an ensemble with
a jackknife over replicas, and predicted against measured with one chi^2."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import UserError
from .fields import Field


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
