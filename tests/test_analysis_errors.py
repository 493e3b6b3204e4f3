"""Estimators on synthetic data with known answers: tau_int of AR(1) chains in both conventions,
jackknife / bootstrap / propagation, the translation test (nominal rate on an exactly invariant
field, failure with a depth gradient, the automatic bulk window), exponential correlators and
the long-range-order verdict. Tolerances come from the estimators' own standard errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from langevin_nn.analysis.correlations import connected_two_point, translation_average
from langevin_nn.analysis.errors import (Estimate, bootstrap, emcee_tau, format_value, jackknife,
                                         propagate, tau_int, time_average, wolff_tau)
from langevin_nn.analysis.order import (fit_correlation_length, long_range_order, xi_effective,
                                        xi_from_profile)
from langevin_nn.analysis.symmetry import find_bulk_window, translation_test_layers


def ar1(rng, R, S, phi, scale=1.0):
    """R stationary AR(1) chains x_t = phi x_{t-1} + e_t, e ~ N(0, 1): Var x = 1/(1 - phi^2),
    rho(t) = phi^t, tau_int = (1 + phi) / (2 (1 - phi)) (Wolff), (1 + phi)/(1 - phi) (emcee)."""
    x = np.empty((R, S))
    x[:, 0] = rng.standard_normal(R) / math.sqrt(1 - phi * phi)
    e = rng.standard_normal((R, S))
    for t in range(1, S):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return scale * x


def field_along_depth(rng, R, M, phi=0.6, gradient=0.0, boundary=0.0, offset=0.0):
    """R replicas of a stationary Gaussian AR(1) field along depth (G(m, m+r) = phi^r/(1-phi^2)),
    optionally with an amplitude growing with m (a depth gradient), extra noise on the two
    layers at each end (boundaries), or a random offset common to all layers (a plateau)."""
    x = ar1(rng, R, M, phi)
    x *= 1.0 + gradient * np.arange(M)
    if boundary:
        x[:, :2] += boundary * rng.standard_normal((R, 2))
        x[:, -2:] += boundary * rng.standard_normal((R, 2))
    if offset:
        x += offset * rng.standard_normal((R, 1))
    return x


# --------------------------------------------------------------------------------------------
# tau_int


@pytest.mark.parametrize("method", ["gamma", "sokal"])
@pytest.mark.parametrize("phi", [0.5, 0.8])
def test_ar1_tau_int_both_conventions(method, phi):
    rng = np.random.default_rng(11)
    x = ar1(rng, 8, 20000, phi)
    it = tau_int(x, method=method)
    exact_wolff = (1 + phi) / (2 * (1 - phi))
    exact_emcee = (1 + phi) / (1 - phi)
    assert abs(it.tau - exact_wolff) < 4 * it.error
    assert it.emcee == pytest.approx(2 * it.tau)
    assert abs(it.emcee - exact_emcee) < 8 * it.error
    assert float(emcee_tau(it.tau)) == pytest.approx(it.emcee)
    assert float(wolff_tau(emcee_tau(it.tau))) == pytest.approx(it.tau)
    assert it.window >= 1 and it.rho[0] == pytest.approx(1.0)


def test_white_noise_has_tau_one_half():
    x = np.random.default_rng(3).standard_normal((4, 5000))
    for method in ("gamma", "sokal"):
        it = tau_int(x, method=method)
        assert abs(it.tau - 0.5) < 4 * max(it.error, 0.01)


def test_constant_series():
    it = tau_int(np.ones(100))
    assert it.tau == 0.5 and it.error == 0.0


def test_time_average_error_is_right_for_ar1():
    """The error bar of the mean of correlated data is sqrt(2 tau Var / N); check against the
    exact value and the coverage over independent chains."""
    phi = 0.7
    tau = (1 + phi) / (2 * (1 - phi))
    var = 1 / (1 - phi ** 2)
    R, S = 2, 4000
    exact = math.sqrt(2 * tau * var / (R * S))
    pulls, errs = [], []
    for seed in range(60):
        est = time_average(ar1(np.random.default_rng(100 + seed), R, S, phi))
        pulls.append(est.value / est.error)
        errs.append(est.error)
        assert est.tau_int is not None and est.tau_int_error > 0
    assert np.mean(errs) == pytest.approx(exact, rel=0.1)
    # coverage: 68% within one sigma; 60 chains -> binomial sd 0.06
    assert 0.5 < np.mean(np.abs(pulls) < 1) < 0.85


# --------------------------------------------------------------------------------------------
# Resampling over replicas


def test_jackknife_of_the_mean_is_the_standard_error():
    x = np.random.default_rng(0).normal(size=(37, 3))
    est = jackknife(x)
    np.testing.assert_allclose(est.value, x.mean(axis=0))
    np.testing.assert_allclose(est.error, x.std(axis=0, ddof=1) / math.sqrt(37))
    assert est.jackknife.shape == (37, 3)


def test_jackknife_of_means_equals_the_generic_jackknife():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(25, 4))
    x[:, 1] += x[:, 0]
    generic = jackknife(x, lambda a: np.cov(a, rowvar=False, bias=True))
    fast = connected_two_point(x)
    np.testing.assert_allclose(fast.value, generic.value, atol=1e-12)
    np.testing.assert_allclose(fast.error, generic.error, atol=1e-12)


def test_bootstrap_agrees_with_jackknife():
    x = np.random.default_rng(2).exponential(size=200)
    b = bootstrap(x, n_resamples=2000, seed=1)
    j = jackknife(x)
    assert b.error == pytest.approx(j.error, rel=0.15)
    assert b.interval[0] < b.value < b.interval[1]


def test_propagate_keeps_correlations():
    rng = np.random.default_rng(4)
    a = rng.normal(5, 1, size=50)
    b = a + rng.normal(0, 0.1, size=50)  # strongly correlated with a
    ea, eb = jackknife(a), jackknife(b)
    ratio = propagate(lambda u, v: u / v, ea, eb)
    direct = jackknife((a, b), lambda u, v: u.mean() / v.mean())
    assert ratio.value == pytest.approx(direct.value)
    assert ratio.error == pytest.approx(direct.error, rel=1e-10)
    naive = abs(ratio.value) * math.hypot(ea.error / ea.value, eb.error / eb.value)
    assert ratio.error < naive / 3  # the correlation cancels most of the error


def test_estimate_formatting_and_dict():
    assert format_value(0.88016, 0.0023) == "0.8802(23)"
    assert format_value(25.21, 2.4) == "25.2(2.4)" or format_value(25.21, 2.4) == "25.2(24)"
    e = Estimate(1.5, 0.25, tau_int=3.0, tau_int_error=0.5)
    d = e.to_dict()
    assert d == {"value": 1.5, "error": 0.25, "tau_int": 3.0, "tau_int_error": 0.5}
    assert "tau_int 3" in str(e)
    assert Estimate(np.array([1.0, np.nan]), np.array([0.1, 0.2])).to_dict()["value"] == [1.0, None]


# --------------------------------------------------------------------------------------------
# Translational symmetry along depth


@pytest.mark.slow
def test_translation_invariant_field_passes_at_nominal_rate():
    """An exactly translation-invariant field is rejected at about the nominal 5% rate
    (200 fields: binomial sd 1.5%) by both statistics."""
    p_h, p_max = [], []
    for seed in range(200):
        O = field_along_depth(np.random.default_rng(seed), 100, 10)
        t = translation_test_layers(O, window=None, r_max=1, seed=seed)
        p_h.append(t.p_value)
        p_max.append(t.p_value_max)
    for p in (np.array(p_h), np.array(p_max)):
        assert 0.015 < np.mean(p < 0.05) < 0.10
        assert 0.06 < np.mean(p < 0.10) < 0.16


def test_field_with_a_depth_gradient_fails():
    for seed in range(3):
        O = field_along_depth(np.random.default_rng(seed), 200, 10, gradient=0.08)
        t = translation_test_layers(O, window=None, r_max=1, seed=seed)
        assert t.p < 0.01 and not t.passed()
        assert t.max_deviation > 3


def test_invariant_field_is_consistent_and_profile_is_right():
    phi = 0.6
    O = field_along_depth(np.random.default_rng(7), 400, 10, phi=phi)
    t = translation_test_layers(O, window=(1, 8), r_max=2)
    exact = phi ** np.arange(3) / (1 - phi ** 2)
    assert np.all(np.abs(t.profile.value - exact) < 4 * t.profile.error)
    assert t.window == (1, 8) and t.n_constraints == 7 + 6 + 5


def test_auto_window_trims_the_boundaries():
    O = field_along_depth(np.random.default_rng(5), 400, 14, boundary=1.5)
    G = connected_two_point(O)
    lo, hi = find_bulk_window(G)
    assert lo >= 2 and hi <= 11
    t = translation_test_layers(O, window="auto", r_max=2)
    assert t.window[0] >= 2 and t.window[1] <= 11


# --------------------------------------------------------------------------------------------
# Correlation lengths


def test_exponential_correlator_returns_its_xi():
    """G(r) of a field with xi = 4: the fitted xi is within its error (pull distribution over
    40 ensembles: mean 0 and width 1 within their own uncertainties)."""
    xi = 4.0
    phi = math.exp(-1 / xi)
    pulls = []
    for seed in range(40):
        O = field_along_depth(np.random.default_rng(seed), 200, 24, phi=phi)
        Gr = translation_average(connected_two_point(O), None, 10)
        fit = fit_correlation_length(np.arange(11), Gr)
        assert fit.reliable
        pulls.append((fit.xi.value - xi) / fit.xi.error)
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls) < 4)
    assert abs(pulls.mean()) < 3 / math.sqrt(len(pulls))
    assert 0.7 < pulls.std() < 1.4


def test_xi_effective_of_an_exponential():
    r = np.arange(10.0)
    G = Estimate(2.0 * np.exp(-r / 3.0), 0.01 * np.ones(10))
    eff = xi_effective(G)
    np.testing.assert_allclose(eff.value, 3.0, rtol=1e-12)
    assert np.all(eff.error > 0)


def test_long_range_order_verdict():
    phi = math.exp(-1 / 2.0)
    rng = np.random.default_rng(9)
    short = translation_average(connected_two_point(field_along_depth(rng, 300, 16, phi=phi)), None, 12)
    fit = fit_correlation_length(np.arange(13), short, plateau=True)
    v = long_range_order(fit, 16)
    assert not v.long_range and "short-range" in v.reason
    plateau = translation_average(connected_two_point(
        field_along_depth(rng, 300, 16, phi=phi, offset=1.0)), None, 12)
    fit = fit_correlation_length(np.arange(13), plateau, plateau=True)
    v = long_range_order(fit, 16)
    assert v.long_range and "plateau" in v.reason
    assert abs(fit.plateau.value - 1.0) < 4 * fit.plateau.error  # the offset's variance


def test_xi_from_profile_with_a_fixed_point():
    m = np.arange(1, 21.0)
    c = 1 - 0.3 * np.exp(-m / 7.83)
    fit = xi_from_profile(m, Estimate(c, np.full(20, 1e-3)), fixed_point=1.0, window=(3, 20))
    assert fit.xi.value == pytest.approx(7.83, rel=1e-3)
    free = xi_from_profile(m, Estimate(0.744 - 0.2 * np.exp(-m / 5.0), np.full(20, 1e-4)))
    assert free.xi.value == pytest.approx(5.0, rel=1e-3)
    assert free.plateau.value == pytest.approx(0.744, abs=1e-3)
