"""Mean-field theory: the reference values of physics.md section 6, closed forms against
quadrature, depth scales against finite differences of the maps, the kernel recursion against a
wide random network, and the ``meanfield`` command."""
from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from langevin_nn.cli_analysis import meanfield as meanfield_cmd
from langevin_nn.config import ActivationSpec
from langevin_nn.bulk.activations import evaluate
from langevin_nn.theory import meanfield as mf


def test_reference_values_tanh():
    """physics.md section 6: tanh at sigma_b^2 = 0.05."""
    assert mf.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.005)
    o = mf.mean_field("tanh", 1.3, 0.05)
    assert o.phase == "ordered" and o.c_star == 1.0 and o.chi_c == o.chi_1
    assert o.xi_c == pytest.approx(7.83, abs=0.01)
    c = mf.mean_field("tanh", 2.0, 0.05)
    assert c.phase == "chaotic"
    assert c.c_star == pytest.approx(0.744, abs=0.001)
    assert c.xi_c == pytest.approx(25.2, abs=0.05)
    assert c.chi_1 > 1 > c.chi_c


def test_tanh_without_bias_is_critical_at_one():
    """sigma_b^2 = 0: q* = 0 below sigma_w^2 = 1, chi_1 = sigma_w^2 phi'(0)^2 there."""
    assert mf.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    line = mf.critical_line("tanh", [0.0, 0.05, 0.2, 0.5])
    assert np.all(np.diff(line) > 0)  # the ordered phase grows with sigma_b^2


def test_closed_forms_of_the_other_activations():
    assert mf.critical_sigma_w2("relu", 0.1) == 2.0
    r = mf.mean_field("relu", 1.5, 0.1)
    assert r.q_star == pytest.approx(0.1 / (1 - 0.75)) and r.chi_1 == pytest.approx(0.75)
    assert mf.mean_field("relu", 2.5, 0.1).phase == "no fixed point"
    lin = ActivationSpec("linear", p=0.5, q=0.2)
    assert mf.critical_sigma_w2(lin, 0.1) == pytest.approx(4.0)
    m = mf.mean_field(lin, 2.0, 0.1)
    assert m.q_star == pytest.approx((2.0 * 0.04 + 0.1) / (1 - 0.5)) and m.chi_1 == pytest.approx(0.5)
    assert mf.mean_field(ActivationSpec("quadratic", p=1.0, q=1.0, r=1.0), 1.5, 0.1).phase == "no fixed point"
    small = mf.mean_field(ActivationSpec("quadratic", p=0.1, q=0.5, r=0.0), 1.0, 0.1)
    assert math.isfinite(small.q_star)
    q = small.q_star  # fixed point of the closed-form map
    assert 1.0 * (0.01 * 3 * q * q + 0.25 * q) + 0.1 == pytest.approx(q)


@pytest.mark.parametrize("spec", [ActivationSpec("erf"), ActivationSpec("linear", p=0.7, q=0.3),
                                  ActivationSpec("quadratic", p=0.4, q=0.3, r=-0.2)])
def test_closed_forms_against_quadrature(spec):
    qa, qb = np.array([0.3, 1.2, 0.8]), np.array([0.5, 0.9, 0.8])
    qab = np.array([0.1, -0.4, 0.79]) * np.sqrt(qa * qb)
    quad = mf._e2(qa, qb, qab, lambda u: evaluate(spec, u), lambda u: evaluate(spec, u))
    dquad = mf._e2(qa, qb, qab, lambda u: evaluate(spec, u, 1), lambda u: evaluate(spec, u, 1))
    np.testing.assert_allclose(mf.covariance_map(spec, qa, qb, qab), quad, atol=1e-9)
    np.testing.assert_allclose(mf.derivative_covariance(spec, qa, qb, qab), dquad, atol=1e-9)


def test_relu_arc_cosine_kernel_against_monte_carlo():
    """relu's kink defeats Gauss-Hermite: check its closed forms with 1e6 Gaussian samples
    (tolerance 5 standard errors)."""
    rng = np.random.default_rng(1)
    qa, qb, c = 0.7, 1.3, -0.35
    L = np.linalg.cholesky([[qa, c * math.sqrt(qa * qb)], [c * math.sqrt(qa * qb), qb]])
    u = rng.standard_normal((1_000_000, 2)) @ L.T
    for f, closed in ((np.maximum(u, 0).prod(axis=1), mf.covariance_map("relu", qa, qb, c * math.sqrt(qa * qb))),
                      ((u > 0).prod(axis=1), mf.derivative_covariance("relu", qa, qb, c * math.sqrt(qa * qb)))):
        assert abs(f.mean() - closed) < 5 * f.std() / math.sqrt(f.size)


@pytest.mark.parametrize("name,sw2,sb2", [("tanh", 1.3, 0.05), ("tanh", 2.0, 0.05),
                                          ("erf", 1.2, 0.1), ("sigmoid", 8.0, 0.2),
                                          ("softplus", 1.5, 0.1)])
def test_depth_scales_are_slopes_of_the_maps(name, sw2, sb2):
    """exp(-1/xi_q) = dq_{m+1}/dq_m at q*, exp(-1/xi_c) = dc_{m+1}/dc_m at c* (Schoenholz Eqs. 6, 9)."""
    o = mf.mean_field(name, sw2, sb2)
    qs, h = o.q_star, 1e-5
    F = lambda q: sw2 * float(mf.variance_map(name, q)) + sb2  # noqa: E731
    assert F(qs) == pytest.approx(qs, rel=1e-10)
    assert (F(qs + h) - F(qs - h)) / (2 * h) == pytest.approx(math.exp(-1 / o.xi_q), rel=1e-5)
    C = lambda c: (sw2 * float(mf.covariance_map(name, qs, qs, c * qs)) + sb2) / qs  # noqa: E731
    c0 = min(o.c_star, 1 - 1e-4)
    slope = (C(c0) - C(c0 - 2e-5)) / 2e-5
    assert slope == pytest.approx(o.chi_c, rel=1e-3)


def test_kernel_profile_against_a_wide_random_network():
    """The mean-field kernel recursion against the empirical kernel of one very wide tanh
    network (N = 3000): agreement to a few times the O(1/sqrt(N)) fluctuation."""
    rng = np.random.default_rng(0)
    K, N0, N, M, sw2, sb2 = 4, 50, 3000, 5, 1.8, 0.1
    X = rng.standard_normal((K, N0))
    pred = mf.kernel_profile("tanh", sw2, sb2, X, M)
    h, n_in = X, N0
    for m in range(M):
        W = rng.standard_normal((N, n_in)) * math.sqrt(sw2 / n_in)
        z = h @ W.T + rng.standard_normal(N) * math.sqrt(sb2)
        S = z @ z.T / N
        np.testing.assert_allclose(S, pred[m], atol=6 * math.sqrt(2 / N) * pred[m].max())
        h, n_in = np.tanh(z), N
    s = mf.profile_summary(pred)
    assert s["q"].shape == (M,) and s["c"].shape == (M,)


def test_profile_converges_to_the_fixed_point():
    X = mf.overlap_inputs(2, 8, 0.3)
    prof = mf.profile_summary(mf.kernel_profile("tanh", 2.0, 0.05, X, 200))
    o = mf.mean_field("tanh", 2.0, 0.05)
    assert prof["q"][-1] == pytest.approx(o.q_star, rel=1e-8)
    assert prof["c"][-1] == pytest.approx(o.c_star, abs=1e-3)


def test_overlap_inputs_have_the_requested_gram():
    X = mf.overlap_inputs(5, 16, 0.4, seed=3)
    G = X @ X.T / 16
    np.testing.assert_allclose(np.diag(G), 1.0)
    np.testing.assert_allclose(G[np.triu_indices(5, 1)], 0.4)
    o = mf.mean_field("tanh", 2.0, 0.05)
    Xf = mf.inputs_for_kernel(6, 16, o.q_star, o.c_star, 2.0, 0.05, seed=1)
    S1 = mf.kernel_profile("tanh", 2.0, 0.05, Xf, 3)  # starts and stays at the fixed point
    np.testing.assert_allclose(np.diagonal(S1, axis1=1, axis2=2), o.q_star, rtol=1e-8)
    np.testing.assert_allclose(S1[:, 0, 1] / o.q_star, o.c_star, rtol=1e-7)


def test_meanfield_command(tmp_path):
    png = tmp_path / "phase.png"
    res = CliRunner().invoke(meanfield_cmd, ["--sigma-w2", "1.3", "--sigma-w2", "2.0",
                                             "--depth", "3", "--phase-diagram", str(png),
                                             "--grid", "6"])
    assert res.exit_code == 0, res.output
    assert "1.7610" in res.output and "7.834" in res.output and "25.21" in res.output
    assert "chaotic" in res.output and "ordered" in res.output
    assert png.stat().st_size > 1000
    js = CliRunner().invoke(meanfield_cmd, ["--activation", "relu", "--sigma-w2", "1.5", "--json"])
    assert js.exit_code == 0 and '"critical_sigma_w2": 2.0' in js.output
    bad = CliRunner().invoke(meanfield_cmd, ["--activation", "bogus"])
    assert bad.exit_code != 0 and "unknown activation" in str(bad.exception)
