"""Error bars: jackknife and bootstrap over replicas, integrated autocorrelation times along time.

Replicas of an ensemble are independent, so errors of ensemble averages come from resampling
replicas (the jackknife by default, the bootstrap on request). Time averages of one chain are
correlated; their errors come from the integrated autocorrelation time by Wolff's Gamma method
(U. Wolff, Comput. Phys. Commun. 156 (2004) 143, "Monte Carlo errors with less errors") or by
Sokal's windowing (Madras & Sokal, J. Stat. Phys. 50 (1988) 109; Sokal, Cargese lectures 1996).

Convention (Wolff, pyerrors, Madras-Sokal): **tau_int = 1/2 + sum_{t>=1} rho(t)**, so that the
variance of the mean of N correlated samples is 2 tau_int Var(x) / N and uncorrelated data have
tau_int = 1/2. emcee's ``integrated_time`` returns 1 + 2 sum rho = 2 tau_int (and
``emcee_tau`` / ``wolff_tau`` convert); an AR(1) chain x_t = phi x_{t-1} + noise has
tau_int = (1 + phi) / (2 (1 - phi)) here and (1 + phi) / (1 - phi) in emcee's convention.

Shapes: R replicas (axis 0 of every per-replica array), S entries along time (last axis of a
series). Every estimator returns an :class:`Estimate` (value, error and, for time averages,
tau_int); jackknife estimates keep their leave-one-out replicates so that derived quantities
propagate errors with their correlations (:func:`propagate`). Libraries: NumPy's FFT for the
autocorrelation function, ``scipy.stats.bootstrap`` for the bootstrap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = [
    "Estimate", "IntegratedTime", "jackknife", "jackknife_of_means", "jackknife_error",
    "propagate", "bootstrap", "autocovariance", "tau_int", "time_average", "emcee_tau",
    "wolff_tau", "format_value",
]


# --------------------------------------------------------------------------------------------
# The Estimate


@dataclass(frozen=True)
class Estimate:
    """A measured number (or array of numbers) with its error.

    value, error: floats or arrays of the same shape (one standard deviation).
    tau_int: integrated autocorrelation time in the Wolff convention (1/2 + sum rho) in units of
        the spacing of the series, for time averages; None otherwise. tau_int_error likewise.
    jackknife: leave-one-out replicates (R, *value.shape), when the estimate came from a
        jackknife over R replicas; :func:`propagate` uses them.
    interval: a (low, high) confidence interval (the bootstrap's), if one was computed.
    """

    value: float | np.ndarray
    error: float | np.ndarray
    tau_int: float | np.ndarray | None = None
    tau_int_error: float | np.ndarray | None = None
    jackknife: np.ndarray | None = field(default=None, repr=False, compare=False)
    interval: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    @property
    def n_replicas(self) -> int | None:
        return None if self.jackknife is None else int(np.shape(self.jackknife)[0])

    def __getitem__(self, idx) -> "Estimate":
        """The estimate of one element (or a slice) of an array-valued estimate."""
        def pick(a):
            return None if a is None else np.asarray(a)[idx]
        jk = None if self.jackknife is None else np.asarray(self.jackknife)[(slice(None),) + (
            idx if isinstance(idx, tuple) else (idx,))]
        return Estimate(_scalar(pick(self.value)), _scalar(pick(self.error)),
                        _scalar(pick(self.tau_int)), _scalar(pick(self.tau_int_error)), jk)

    def __len__(self) -> int:
        return len(np.asarray(self.value))

    def z_score(self, reference: float | np.ndarray) -> float | np.ndarray:
        """(value - reference) / error: the deviation in standard deviations."""
        return (np.asarray(self.value) - reference) / np.asarray(self.error)

    def to_dict(self) -> dict:
        """JSON-ready: value, error, and tau_int (with its error) when present."""
        out = {"value": _plain(self.value), "error": _plain(self.error)}
        if self.tau_int is not None:
            out["tau_int"] = _plain(self.tau_int)
            out["tau_int_error"] = _plain(self.tau_int_error)
        if self.interval is not None:
            out["interval"] = [_plain(self.interval[0]), _plain(self.interval[1])]
        return out

    def __str__(self) -> str:
        if np.ndim(self.value) == 0:
            s = format_value(float(self.value), float(self.error))
            if self.tau_int is not None:
                s += f" (tau_int {float(self.tau_int):.3g})"
            return s
        return f"Estimate(shape={self.shape})"


def _scalar(a):
    if a is None:
        return None
    a = np.asarray(a)
    return float(a) if a.ndim == 0 else a


def _plain(a):
    """NumPy -> JSON-able (NaN and inf become None)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        v = float(a)
        return v if math.isfinite(v) else None
    return [_plain(x) for x in a]


def format_value(value: float, error: float, digits: int = 2) -> str:
    """The particle-physics notation ``0.8802(23)``: the error's leading ``digits`` digits in
    parentheses, in units of the last digit of the value."""
    if not (math.isfinite(value) and math.isfinite(error)) or error <= 0:
        return f"{value:.6g} +- {error:.2g}"
    exp = math.floor(math.log10(error)) - (digits - 1)
    if exp >= 0:
        return f"{round(value, -exp):.0f}({round(error, -exp):.0f})"
    decimals = -exp
    err_digits = int(round(error * 10 ** decimals))
    return f"{value:.{decimals}f}({err_digits})"


# --------------------------------------------------------------------------------------------
# Resampling over replicas


def jackknife_error(replicates: np.ndarray) -> np.ndarray:
    """sigma^2 = (R - 1)/R sum_i (theta_(i) - theta_(.))^2 from leave-one-out replicates (R, ...)."""
    jk = np.asarray(replicates, dtype=float)
    R = jk.shape[0]
    if R < 2:
        return np.full(jk.shape[1:], np.nan)
    return np.sqrt((R - 1) / R * np.sum((jk - jk.mean(axis=0)) ** 2, axis=0))


def _as_tuple(data) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(d) for d in (data if isinstance(data, (tuple, list)) else (data,)))
    R = arrays[0].shape[0]
    if any(a.shape[0] != R for a in arrays):
        raise ValueError("every array must have the replicas on axis 0, with the same length")
    return arrays


def jackknife(data, statistic: Callable | None = None) -> Estimate:
    """Delete-one jackknife over replicas (axis 0).

    data: an array (R, ...) or a tuple of arrays sharing axis 0.
    statistic: f(*subsets) -> array, called on the full sample and on the R leave-one-out
        subsets (R - 1 rows each); default the mean over axis 0.
    Returns value = f(all replicas), error = sqrt((R-1)/R sum (f_(i) - f_(.))^2), and the
    replicates f_(i) in ``Estimate.jackknife``.
    """
    arrays = _as_tuple(data)
    if statistic is None:
        if len(arrays) != 1:
            raise ValueError("the default statistic (the mean) takes one array")
        return jackknife_of_means(lambda m: m, arrays[0])
    R = arrays[0].shape[0]
    value = np.asarray(statistic(*arrays), dtype=float)
    reps = np.empty((R,) + value.shape)
    keep = np.ones(R, dtype=bool)
    for i in range(R):
        keep[i] = False
        reps[i] = statistic(*(a[keep] for a in arrays))
        keep[i] = True
    return Estimate(_scalar(value), _scalar(jackknife_error(reps)), jackknife=reps)


def jackknife_of_means(func: Callable, *data) -> Estimate:
    """Jackknife of a function of replica means, f(<x>, <y>, ...), in O(R) work.

    data: arrays (R, ...) of per-replica values; the leave-one-out means are
    (sum - x_i) / (R - 1). ``func`` must accept a leading batch axis (it is called once on the
    full means and once on the stacked (R, ...) leave-one-out means), e.g. the connected
    correlator f(a, b, c) = a - b * c of <O O'>, <O>, <O'>.
    """
    arrays = tuple(np.asarray(d, dtype=float) for d in data)
    R = arrays[0].shape[0]
    if R < 2:
        raise ValueError("the jackknife needs at least 2 replicas")
    means = [a.mean(axis=0) for a in arrays]
    loo = [(a.sum(axis=0)[None] - a) / (R - 1) for a in arrays]
    value = np.asarray(func(*means), dtype=float)
    reps = np.asarray(func(*loo), dtype=float)
    if reps.shape != (R,) + value.shape:
        raise ValueError("func must map (R, ...) leave-one-out means to (R, *value.shape)")
    return Estimate(_scalar(value), _scalar(jackknife_error(reps)), jackknife=reps)


def propagate(func: Callable, *estimates: Estimate) -> Estimate:
    """f(a, b, ...) of jackknife estimates over the same replicas, with the jackknife error
    (correlations between a, b, ... included): replicate i is f(a_(i), b_(i), ...)."""
    if any(e.jackknife is None for e in estimates):
        raise ValueError("propagate needs estimates that carry jackknife replicates")
    R = estimates[0].n_replicas
    if any(e.n_replicas != R for e in estimates):
        raise ValueError("the estimates come from different numbers of replicas")
    value = np.asarray(func(*(np.asarray(e.value) for e in estimates)), dtype=float)
    reps = np.stack([np.asarray(func(*(e.jackknife[i] for e in estimates)), dtype=float)
                     for i in range(R)])
    return Estimate(_scalar(value), _scalar(jackknife_error(reps)), jackknife=reps)


def bootstrap(data, statistic: Callable | None = None, *, n_resamples: int = 1000,
              confidence: float = 0.6827, seed: int = 0) -> Estimate:
    """Bootstrap over replicas with ``scipy.stats.bootstrap`` (BCa interval).

    data, statistic: as :func:`jackknife` (the statistic sees resampled replica rows).
    Returns value = statistic(data), error = scipy's ``standard_error`` (the standard deviation
    of the bootstrap distribution), ``interval`` = the BCa confidence interval.
    """
    from scipy.stats import bootstrap as _scipy_bootstrap

    arrays = _as_tuple(data)
    stat = statistic or (lambda a: a.mean(axis=0))
    value = np.asarray(stat(*arrays), dtype=float)
    R = arrays[0].shape[0]
    flat_size = max(value.size, 1)

    def on_indices(idx):
        idx = np.asarray(idx, dtype=np.int64)
        return np.asarray(stat(*(a[idx] for a in arrays)), dtype=float).reshape(flat_size)

    res = _scipy_bootstrap((np.arange(R),), on_indices, vectorized=False, n_resamples=n_resamples,
                           confidence_level=confidence, method="BCa",
                           random_state=np.random.default_rng(seed))
    shape = value.shape
    err = np.asarray(res.standard_error).reshape(shape)
    lo = np.asarray(res.confidence_interval.low).reshape(shape)
    hi = np.asarray(res.confidence_interval.high).reshape(shape)
    return Estimate(_scalar(value), _scalar(err), interval=(_scalar(lo), _scalar(hi)))


# --------------------------------------------------------------------------------------------
# Autocorrelation along time


def emcee_tau(tau_wolff):
    """emcee's ``integrated_time`` (1 + 2 sum rho) from tau_int in the Wolff convention: 2 tau."""
    return 2.0 * np.asarray(tau_wolff)


def wolff_tau(tau_emcee):
    """tau_int = 1/2 + sum rho (Wolff, pyerrors, this package) from emcee's value: tau / 2."""
    return 0.5 * np.asarray(tau_emcee)


def _series(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError("a time series has shape (S,) or (R, S): replicas x entries")
    if not np.all(np.isfinite(x)):
        raise ValueError("the time series holds non-finite values")
    return x


def autocovariance(x) -> np.ndarray:
    """Gamma(t) of a series (S,) or of R independent replicas (R, S) of the same process,
    about the global mean (Wolff Eq. 31):

        Gamma(t) = sum_r sum_{i=1}^{S-t} (x_ri - xbar)(x_r,i+t - xbar) / (R (S - t)),  t = 0..S-1

    computed by FFT (zero padding to avoid wrap-around).
    """
    x = _series(x)
    R, S = x.shape
    d = x - x.mean()
    n = 1 << int(2 * S - 1).bit_length()
    f = np.fft.rfft(d, n=n, axis=1)
    acf = np.fft.irfft(f * np.conj(f), n=n, axis=1)[:, :S].sum(axis=0)
    return acf / (R * (S - np.arange(S)))


@dataclass(frozen=True)
class IntegratedTime:
    """tau_int = 1/2 + sum_{t=1}^{W} rho(t) (Wolff convention; emcee's is ``emcee`` = 2 tau),
    its error (Madras-Sokal: Var(tau) = 4 (W + 1/2 - tau) tau^2 / N), the window W, the method,
    and the normalised autocorrelation rho(t) up to the window."""

    tau: float
    error: float
    window: int
    method: str
    rho: np.ndarray = field(repr=False)
    n: int = 0

    @property
    def emcee(self) -> float:
        """The same time in emcee's convention (1 + 2 sum rho): 2 tau."""
        return 2.0 * self.tau


def tau_int(x, *, method: str = "gamma", S: float = 1.5, c: float = 6.0) -> IntegratedTime:
    """Integrated autocorrelation time of a series (S,) or of R replicas (R, S) (Wolff convention).

    method "gamma": Wolff's automatic window (Wolff 2004, Eq. 52): the first W with
        g(W) = exp(-W / tau_W) - tau_W / sqrt(W N) < 0, tau_W = S / ln((2 tau(W) + 1)/(2 tau(W) - 1)),
        then the bias correction Gamma(t) -> Gamma(t) + C(W)/N of Wolff Eq. 49, C(W) = 2 tau Gamma(0).
        ``S`` ~ 1-2 (pyerrors and Wolff use 1.5; larger for slowly decaying modes).
    method "sokal": the first W with W >= c tau(W) (Madras & Sokal 1988; c ~ 4-10 in this
        convention, 6 by default; emcee's c = 5 on 2 tau is c = 10 here).
    N = R S is the total number of entries. A constant series gives tau = 1/2, error 0.
    """
    xs = _series(x)
    N = xs.size
    gamma = autocovariance(xs)
    if gamma[0] <= 0:
        return IntegratedTime(0.5, 0.0, 0, method, np.ones(1), N)
    rho = gamma / gamma[0]
    S_len = xs.shape[1]
    csum = 0.5 + np.cumsum(rho[1:])  # tau(W) for W = 1..S-1
    W_max = S_len - 1
    W = W_max
    if method == "gamma":
        for w in range(1, W_max + 1):
            t = csum[w - 1]
            tau_w = S / math.log((2 * t + 1) / (2 * t - 1)) if t > 0.5 else 1e-300
            g = math.exp(-w / tau_w) - tau_w / math.sqrt(w * N)
            if g < 0:
                W = w
                break
        c_w = gamma[0] + 2 * gamma[1:W + 1].sum()
        gamma = gamma + c_w / N  # Wolff Eq. 49
        rho = gamma / gamma[0]
        tau = 0.5 + rho[1:W + 1].sum()
    elif method == "sokal":
        for w in range(1, W_max + 1):
            if w >= c * csum[w - 1]:
                W = w
                break
        tau = float(csum[W - 1]) if W >= 1 else 0.5
    else:
        raise ValueError(f"unknown method {method!r} (use 'gamma' or 'sokal')")
    tau = max(float(tau), 0.5 / N)
    err = tau * math.sqrt(max(4.0 * (W + 0.5 - tau), 0.0) / N)
    return IntegratedTime(tau, err, int(W), method, rho[:W + 1].copy(), N)


def time_average(x, *, method: str = "gamma", S: float = 1.5, c: float = 6.0) -> Estimate:
    """Mean of a series (S,) or of R replicas (R, S) with the error that respects autocorrelation:

        sigma^2 = 2 tau_int Gamma(0) / N      (Wolff Eq. 44, N = R S)

    Returns an Estimate with tau_int (Wolff convention, in entries of the series) and its error.
    """
    xs = _series(x)
    it = tau_int(xs, method=method, S=S, c=c)
    var = autocovariance(xs)[0]
    err = math.sqrt(max(2.0 * it.tau * var / xs.size, 0.0))
    return Estimate(float(xs.mean()), err, tau_int=it.tau, tau_int_error=it.error)
