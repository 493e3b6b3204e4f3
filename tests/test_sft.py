"""Synaptic field theory (langevin_nn.sft, physics.md section 5, docs/sft.md): the exact Hessian,
the couplings of SFT Eq. 14 against the closed forms of example 1, the mass structure of
example 2 (and SFT Table II), and the synaptic two-point function of SGLD ensembles against the
discrete Lyapunov prediction (exact quadratic cost; harmonic approximation of a two-layer local
network about a trained minimum)."""
from __future__ import annotations

import json

import click
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import run_memory
from langevin_nn import sft
from langevin_nn.bulk.networks import build_layout
from langevin_nn.cli_sft import sft as sft_command
from langevin_nn.config import load_config
from langevin_nn.errors import UserError
from langevin_nn.simulate import run

# A p-value below this fails a statistical test (fixed seeds; see the module docstring).
P_MIN = 1e-3


def cost_of(table):
    cfg = load_config(table)
    return cfg, sft.training_cost(cfg)


def sft1_table(width=8, P=20, p=0.7, q=0.3, reduction="sum", lam=0.0, seed=0):
    return {"network": {"architecture": "sft1", "width": width,
                        "output_activation_params": {"p": p, "q": q}},
            "data": {"n_train": P, "n_probe": 4, "batch": "full", "reduction": reduction,
                     "label_noise": 0.3},
            "dynamics": {"lambda": lam}, "ensemble": {"seed": seed}}


def sft2_table(width=6, P=20, p=0.6, q=0.4, r=0.5, reduction="sum", lam=0.0):
    return {"network": {"architecture": "sft2", "width": width,
                        "activation_params": {"p": p, "q": q, "r": r}},
            "data": {"n_train": P, "n_probe": 4, "batch": "full", "reduction": reduction},
            "dynamics": {"lambda": lam}}


# --------------------------------------------------------------------------------------------
# The exact cost, gradient and Hessian


@pytest.mark.parametrize("net,loss,reduction", [
    ({"architecture": "local", "width": 5, "depth": 3, "activation": "tanh", "sigma_b2": 0.2},
     "mse", "mean"),
    ({"architecture": "sft2", "width": 5, "activation_params": {"p": 0.7, "q": 0.3, "r": -0.2}},
     "mse", "sum"),
    ({"architecture": "dense", "widths": [3, 4, 3], "activation": "softplus"},
     "cross_entropy", "mean"),
    ({"architecture": "local", "width": 4, "depth": 2, "k": 1, "tied": True,
      "activation": "erf", "sigma_b2": 0.1}, "kl", "sum"),
])
def test_gradient_is_the_kernels_and_hessian_matches_central_differences(net, loss, reduction):
    from test_network import kernel_loss_grad

    cfg, cost = cost_of({"network": net, "data": {"n_train": 7, "n_probe": 3, "loss": loss,
                                                  "reduction": reduction},
                         "dynamics": {"lambda": 0.3}})
    rs = np.random.default_rng(1)
    theta = rs.normal(size=cost.n_par) * 0.8
    val, gk = kernel_loss_grad(cost.layout, theta, cost.X, cost.Y, loss, reduction)
    g = cost.gradient(theta)
    np.testing.assert_allclose(g, gk + 0.3 * theta, rtol=1e-12, atol=1e-13 * np.abs(g).max())
    assert cost.value(theta) == pytest.approx(val + 0.15 * theta @ theta, rel=1e-13)
    H = cost.hessian(theta)
    assert np.array_equal(H, H.T)
    # central differences of the exact gradient: truncation h^2 ~ 1e-10, round-off 1e-16 / h
    h = 1e-5
    E = np.eye(cost.n_par)
    Hfd = np.array([(cost.gradient(theta + h * e) - cost.gradient(theta - h * e)) / (2 * h)
                    for e in E])
    assert np.max(np.abs(H - Hfd)) < 1e-7 * np.max(np.abs(H))


def _combos():
    from test_network import COMBOS

    return [(*c, ("mean", "sum")[k % 2]) for k, c in enumerate(COMBOS)]


@pytest.mark.parametrize("arch,act,loss,reduction", _combos())
def test_exact_hessian_for_every_architecture_activation_loss(arch, act, loss, reduction):
    """Against the kernel's gradient and central differences of the exact gradient (test
    networks of tests/test_network.py, away from the relu / hinge kinks)."""
    from test_network import kernel_loss_grad, make, random_problem

    cfg, layout = make(arch, act, loss)
    theta, X, Y = random_problem(cfg, layout, loss, n=4, seed=2)
    s = 0.25 if reduction == "mean" else 1.0
    cost = sft.TrainingCost(cfg.network, layout, loss, X, Y, s, lam=0.2)
    _, gk = kernel_loss_grad(layout, theta, X, Y, loss, reduction)
    g = cost.gradient(theta)
    np.testing.assert_allclose(g, gk + 0.2 * theta, rtol=0, atol=1e-12 * np.abs(g).max())
    H = cost.hessian(theta)
    h = 1e-5
    Hfd = np.array([(cost.gradient(theta + h * e) - cost.gradient(theta - h * e)) / (2 * h)
                    for e in np.eye(layout.n_par)])
    assert np.max(np.abs(H - Hfd)) < 1e-7 * np.max(np.abs(H))


def test_quadratic_cost_hessian_is_exact_and_couplings_recover_it():
    """A single-layer linear dense network: H = 2 s (I_out x X^T X) + lambda I, exactly; the
    coupling extraction (J = row sums, K^(r) = -H_{i,i+r}) rebuilds H to round-off."""
    cfg, cost = cost_of({"network": {"architecture": "dense", "widths": [5, 3], "bias": False,
                                     "output_activation": "identity"},
                         "data": {"n_train": 11, "n_probe": 3, "batch": "full", "reduction": "mean"},
                         "dynamics": {"lambda": 0.25}})
    assert sft.is_quadratic(cfg)
    X = cost.X
    H_exact = np.kron(np.eye(3), 2 * X.T @ X / 11) + 0.25 * np.eye(15)
    for theta in (np.zeros(15), np.random.default_rng(0).normal(size=15)):
        np.testing.assert_allclose(cost.hessian(theta), H_exact, rtol=1e-13, atol=1e-14)
    # extraction and reconstruction, odd (15) and even (16) chains, a random symmetric matrix
    rs = np.random.default_rng(3)
    A = rs.normal(size=(16, 16))
    for H in (H_exact, A + A.T):
        c = sft.field_couplings(H)
        assert np.array_equal(c.K, c.K_offsets[0])
        np.testing.assert_allclose(sft.hessian_from_couplings(c.J, c.K_offsets, c.offsets), H,
                                   rtol=0, atol=1e-13 * np.abs(H).max())
        np.testing.assert_allclose(c.J, H.sum(axis=1), rtol=1e-14)
        assert c.residual_rel > 0.1  # a dense H is no nearest-neighbour chain


def test_nearest_neighbour_chain_has_zero_residual_and_eq14():
    rs = np.random.default_rng(4)
    n = 9
    K, J = rs.normal(size=n), rs.normal(size=n)  # K < 0 allowed
    H = sft.hessian_from_couplings(J, K[None, :])
    i = np.arange(n)
    np.testing.assert_allclose(np.diag(H), K + np.roll(K, 1) + J, rtol=1e-14)
    np.testing.assert_allclose(H[i, (i + 1) % n], -K, rtol=1e-14)
    # the quadratic form is Eq. 14
    W = rs.normal(size=n)
    eq14 = np.sum(0.5 * K * (np.roll(W, -1) - W) ** 2 + 0.5 * J * W ** 2)
    assert 0.5 * W @ H @ W == pytest.approx(eq14, rel=1e-13)
    c = sft.field_couplings(H, a=0.5)
    np.testing.assert_allclose(c.K, K, rtol=1e-14)
    np.testing.assert_allclose(c.J, J, rtol=1e-12, atol=1e-14)
    assert c.residual_rel < 1e-15 and c.residual_max < 1e-14
    np.testing.assert_allclose(c.J_x, J / 0.5)
    np.testing.assert_allclose(c.K_x, 0.5 * K)
    np.testing.assert_allclose(c.x, 0.5 * i)


# --------------------------------------------------------------------------------------------
# SFT example 1: closed forms and the dimer structure


@pytest.mark.parametrize("reduction,lam", [("sum", 0.0), ("mean", 0.4)])
def test_example1_couplings_equal_closed_forms(reduction, lam):
    cfg, cost = cost_of(sft1_table(reduction=reduction, lam=lam))
    assert sft.is_quadratic(cfg)
    fields = sft.lattice_fields(cost.layout, cfg.network)
    assert [f.name for f in fields] == ["w_1"] and fields[0].n_sites == 16
    a = 0.25
    ex = sft.expand(cost, np.zeros(cost.n_par), fields, a=a, quadratic=True)
    cf = sft.sft1_closed_form(cost.X, cost.Y, 0.7, 0.3, cost.scale, lam)
    tol = 1e-13 * np.abs(cf["H"]).max()
    np.testing.assert_allclose(ex.hessian, cf["H"], rtol=0, atol=tol)
    np.testing.assert_allclose(ex.source, cf["g"], rtol=0, atol=1e-13 * np.abs(cf["g"]).max())
    assert ex.value == pytest.approx(cf["c"], rel=1e-13)
    c = ex.couplings["w_1"]
    np.testing.assert_allclose(c.J, cf["J"], rtol=0, atol=tol)
    np.testing.assert_allclose(c.K, cf["K"], rtol=0, atol=tol)
    # dimers: K = 0 exactly on every odd bond, generically non-zero on the even ones
    assert np.all(c.K[1::2] == 0.0)
    assert np.all(np.abs(c.K[0::2]) > 1e-8)
    assert c.residual_rel < 1e-15  # Eq. 14 holds (to the round-off of the diagonal)
    assert np.all(c.K_offsets[1:] == 0.0)
    # continuum coefficients of Eq. 17 at x = i a
    np.testing.assert_allclose(c.J_x, cf["J"] / a, rtol=1e-13)
    np.testing.assert_allclose(c.K_x, cf["K"] * a, rtol=1e-13, atol=1e-15)
    # the shift W* = H^+ g is the exact minimum: the cost there equals c - g.W*/2
    Wstar = np.linalg.solve(cf["H"], cf["g"])
    np.testing.assert_allclose(ex.shift, Wstar, rtol=1e-10)
    np.testing.assert_allclose(cost.gradient(ex.shift), 0, atol=1e-10 * np.abs(cf["g"]).max())
    assert cost.value(ex.shift) == pytest.approx(cf["c"] - 0.5 * cf["g"] @ Wstar, rel=1e-12)


def test_example1_couplings_depend_on_XX_only_and_source_on_YX():
    """Changing the targets leaves J, K unchanged (sums of X X only) and moves the source by
    2 p s sum (dY) X; q enters only through Y - q."""
    _, cost = cost_of(sft1_table())
    base = sft.sft1_closed_form(cost.X, cost.Y, 0.7, 0.3)
    dY = np.random.default_rng(0).normal(size=cost.Y.shape)
    moved = sft.sft1_closed_form(cost.X, cost.Y + dY, 0.7, 0.3)
    np.testing.assert_array_equal(moved["J"], base["J"])
    np.testing.assert_array_equal(moved["K"], base["K"])
    shifted = sft.sft1_closed_form(cost.X, cost.Y + 1.0, 0.7, 1.3)  # Y - q unchanged
    np.testing.assert_allclose(shifted["g"], base["g"], rtol=1e-13, atol=1e-13)
    # and the extraction agrees with the closed form for the moved targets too
    c2 = sft.TrainingCost(cost.net, cost.layout, "mse", cost.X, cost.Y + dY, 1.0)
    np.testing.assert_allclose(-c2.gradient(np.zeros(c2.n_par)), moved["g"], rtol=1e-12,
                               atol=1e-12)


# --------------------------------------------------------------------------------------------
# SFT example 2: mass structure at W = 0 and SFT Table II


@pytest.mark.parametrize("P,r,reduction", [(20, 0.5, "sum"), (7, -1.3, "sum"), (20, 0.5, "mean")])
def test_example2_mass_only_for_w2_proportional_to_P_r2(P, r, reduction):
    cfg, cost = cost_of(sft2_table(P=P, r=r, reduction=reduction))
    fields = sft.lattice_fields(cost.layout, cfg.network)
    assert [f.name for f in fields] == ["w_1", "w_2"]
    a = 0.5
    ex = sft.expand(cost, np.zeros(cost.n_par), fields, a=a)
    cf = sft.sft2_closed_form_at_zero(cost.X, cost.Y, 0.6, 0.4, r, cost.scale)
    tol = 1e-13 * np.abs(cf["H"]).max()
    np.testing.assert_allclose(ex.hessian, cf["H"], rtol=0, atol=tol)
    np.testing.assert_allclose(ex.gradient, cf["grad"], rtol=0, atol=1e-13 * np.abs(cf["grad"]).max())
    s = cost.scale
    w1, w2 = ex.couplings["w_1"], ex.couplings["w_2"]
    # no mass (and no coupling at all) for w_1; J_i = 4 s P r^2 on every w_2 site
    assert np.all(ex.hessian[fields[0].slice, fields[0].slice] == 0.0)
    assert ex.masses["w_1"] == 0.0
    np.testing.assert_allclose(w2.J, 4 * s * P * r * r, rtol=1e-13)
    assert ex.masses["w_2"] == pytest.approx(4 * s * P * r * r / a, rel=1e-13)
    # w_2 is a chain of dimers with negative springs K_{2i} = -2 s P r^2
    np.testing.assert_allclose(w2.K[0::2], -2 * s * P * r * r, rtol=1e-13)
    assert np.all(w2.K[1::2] == 0.0)
    # SFT Table II: m^2 = 8 a^-1 N_l r^2 counts one lattice cell per output unit (two w_2 sites):
    # per output, the uniform field costs 1/2 sum_{j,k in cell} H_jk w^2 = 4 P r^2 w^2 (sum)
    H22 = ex.hessian[fields[1].slice, fields[1].slice]
    cell = np.array([H22[2 * i:2 * i + 2, 2 * i:2 * i + 2].sum() for i in range(6)])
    np.testing.assert_allclose(cell / a, 8 * s * P * r * r / a, rtol=1e-13)  # Table II's m^2
    # ... and K_2 = 4 a N_l r^2 with the paper's distance 2a between the two weights of a cell
    K2_paper = np.array([H22[2 * i, 2 * i + 1] * (2 * a) ** 2 / 2 for i in range(6)]) / a
    np.testing.assert_allclose(K2_paper, 4 * a * s * P * r * r, rtol=1e-13)


def test_example2_mass_needs_r_and_prior_adds_to_both():
    cfg, cost = cost_of(sft2_table(r=0.0))
    ex = sft.expand(cost, np.zeros(cost.n_par), sft.lattice_fields(cost.layout, cfg.network))
    assert ex.masses == {"w_1": 0.0, "w_2": 0.0}
    cfg, cost = cost_of(sft2_table(lam=0.3))
    ex = sft.expand(cost, np.zeros(cost.n_par), sft.lattice_fields(cost.layout, cfg.network))
    assert ex.masses["w_1"] == pytest.approx(0.3)
    assert ex.masses["w_2"] == pytest.approx(4 * 20 * 0.25 + 0.3)


def test_example2_cross_couplings_by_offset_and_derivative_order():
    """The w_2 w_1 coupling sits on offsets -1, 0 (even w_2 sites) and 0, +1 (odd ones), all
    proportional to q sum X Y (SFT Table II's J_3, K_1, K_3, ...); the derivative moments are
    c_n = 1/(2a) sum_r H(r) (r a)^n / n!."""
    cfg, cost = cost_of(sft2_table())
    f = sft.lattice_fields(cost.layout, cfg.network)
    a = 0.5
    ex = sft.expand(cost, np.zeros(cost.n_par), f, a=a)
    p21 = ex.pairs[("w_2", "w_1")]
    offs = list(p21.offsets)
    nonzero = {r for k, r in enumerate(offs) if np.any(p21.by_offset[k] != 0)}
    assert nonzero == {-1, 0, 1}
    assert np.all(p21.by_offset[offs.index(1), 0::2] == 0)
    assert np.all(p21.by_offset[offs.index(-1), 1::2] == 0)
    for n in range(3):
        ref = sum(p21.by_offset[k] * (r * a) ** n / np.prod(np.arange(1, n + 1))
                  for k, r in enumerate(offs)) / (2 * a)
        np.testing.assert_allclose(p21.derivative[n], ref, rtol=1e-13, atol=1e-14)
    # the ordered pair (w_1, w_2) is the transpose
    p12 = ex.pairs[("w_1", "w_2")]
    np.testing.assert_array_equal(p12.block, p21.block.T)
    # p enters only at third order: the expansion at W = 0 does not see it
    cfg2 = load_config(sft2_table(p=-2.0))  # same data, another p
    cost2 = sft.TrainingCost(cfg2.network, cost.layout, "mse", cost.X, cost.Y, cost.scale)
    np.testing.assert_allclose(cost2.hessian(np.zeros(cost2.n_par)), ex.hessian, rtol=1e-14)


# --------------------------------------------------------------------------------------------
# Bad input


def test_networks_without_couplings_are_user_errors():
    for net, key in (({"architecture": "dense", "widths": [4, 2]}, "network.architecture"),
                     ({"architecture": "local", "width": 5, "depth": 1, "tied": True},
                      "network.tied")):
        cfg = load_config({"network": net})
        with pytest.raises(UserError, match=key):
            sft.lattice_fields(build_layout(cfg.network), cfg.network)
    cfg = load_config({"network": {"architecture": "sft1", "width": 4},
                       "data": {"online": True, "batch": 4}})
    with pytest.raises(UserError, match="data.online"):
        sft.training_cost(cfg)
    with pytest.raises(UserError, match="not positive definite"):
        sft.predicted_covariance(-np.eye(3), 0.1, 1.0)
    with pytest.raises(UserError, match="dynamics.eta"):
        sft.predicted_covariance(np.eye(3), 2.5, 1.0)


# --------------------------------------------------------------------------------------------
# The Gaussian prediction and the estimators


def test_lyapunov_prediction_modes_transient_and_continuum_limit():
    rs = np.random.default_rng(0)
    A = rs.normal(size=(6, 6))
    H = A @ A.T + 0.5 * np.eye(6)
    lam, V = np.linalg.eigh(H)
    eta, T = 1.2 / lam[-1], 0.3
    S = sft.predicted_covariance(H, eta, T)
    np.testing.assert_allclose(S, (V * (T / (lam * (1 - eta * lam / 2)))) @ V.T, rtol=1e-10)
    # the stiffest mode is 1 / (1 - 0.6) = 2.5 times its continuum value
    assert V[:, -1] @ S @ V[:, -1] == pytest.approx(2.5 * T / lam[-1], rel=1e-10)
    # transient from a point start: iterate S_{t+1} = A S_t A^T + 2 eta T I
    B = np.eye(6) - eta * H
    St = np.zeros((6, 6))
    for _ in range(7):
        St = B @ St @ B.T + 2 * eta * T * np.eye(6)
    np.testing.assert_allclose(sft.predicted_covariance(H, eta, T, steps=7), St, rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(sft.predicted_covariance(H, 1e-7 / lam[-1], T),
                               sft.continuum_covariance(H, T), rtol=1e-6)
    # heavy ball tends to T H^-1 too; BAOAB is T H^-1
    hb = load_config({"dynamics": {"integrator": "heavy_ball", "eta": 1e-6 / lam[-1],
                                   "beta": 0.8, "T": T}})
    np.testing.assert_allclose(sft.dynamics_covariance(hb, H)[0], T * np.linalg.inv(H), rtol=2e-3)
    ud = load_config({"dynamics": {"integrator": "underdamped", "dt": 0.1, "T": T}})
    np.testing.assert_allclose(sft.dynamics_covariance(ud, H)[0], T * np.linalg.inv(H))


def test_two_point_estimator_and_jackknife_on_gaussian_samples():
    """C(d) of Gaussian samples with a known covariance: the jackknife bias-corrected estimate
    of independent samples is the unbiased (ddof = 1) sample covariance, and the chi^2 with the
    jackknife covariance is chi^2-distributed."""
    rs = np.random.default_rng(7)
    n = 10
    i = np.arange(n)
    dist = np.abs(i[:, None] - i[None, :])
    dist = np.minimum(dist, n - dist)  # distance on the ring
    S = 0.8 ** dist + 0.5 * np.eye(n)
    field = sft.Field("w_1", 0, n, 0, "weight")
    ps = []
    for k in range(20):
        X = rs.multivariate_normal(np.full(n, 3.0), S, size=300)
        tp = sft.measured_two_point(X, [field.sites], ["w_1"])
        direct = sft.two_point_by_distance(np.cov(X, rowvar=False, ddof=1), field.sites)
        np.testing.assert_allclose(tp.C, direct, rtol=1e-10, atol=1e-12)
        ps.append(sft.compare_two_point(X, S, [field]).p_value)
    ps = np.array(ps)
    assert ps.min() > 1e-3 and 0.2 < ps.mean() < 0.8  # uniform p-values have mean 1/2
    np.testing.assert_allclose(sft.two_point_by_distance(S, field.sites),
                               [0.8 ** d + 0.5 * (d == 0) for d in range(6)])
    # correlated samples within a replica (S > 1): the jackknife over replicas still covers them
    X = rs.multivariate_normal(np.zeros(n), S, size=(200, 1))
    X = np.repeat(X, 4, axis=1) + 1e-3 * rs.normal(size=(200, 4, n))  # 4 near-copies
    tp = sft.measured_two_point(X, [field.sites])
    assert tp.samples_per_replica == 4 and tp.replicas == 200
    assert sft.compare_two_point(X, S + 1e-6 * np.eye(n), [field]).p_value > P_MIN


# --------------------------------------------------------------------------------------------
# Dynamics: an exact quadratic cost


def quadratic_local(seed, eta=0.1, T=1.0, R=4, steps=0, every=1000000, snap=0):
    """One linear local layer (k = 1, no bias, identity output), MSE, full batch, sum: a
    quadratic cost whose Hessian is block diagonal (one 3 x 3 block per output)."""
    return {"network": {"architecture": "local", "width": 6, "depth": 1, "k": 1, "bias": False},
            "data": {"n_train": 16, "n_probe": 4, "batch": "full", "loss": "mse",
                     "reduction": "sum"},
            "dynamics": {"integrator": "overdamped", "eta": eta, "T": T},
            "ensemble": {"replicas": R, "steps": steps, "seed": seed},
            "recording": {"every": every, "train_loss": False, "norms": False,
                          "snapshot_every": snap}}


def quadratic_schedule(H):
    """eta = 1 / lambda_max (the stiffest mode has twice its continuum variance), burn-in of 10
    slowest relaxation times (the mean relaxes from the initial weights as (1 - eta
    lambda_min)^t), then a snapshot every relaxation time."""
    lam = np.linalg.eigvalsh(H)
    eta = 1.0 / lam[-1]
    tau = int(np.ceil(1.0 / (eta * lam[0])))
    return eta, tau, 10 * tau


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_ensemble_two_point_is_discrete_lyapunov(seed):
    cfg, cost = cost_of(quadratic_local(seed))
    assert sft.is_quadratic(cfg)
    H = cost.hessian(np.zeros(cost.n_par))
    eta, tau, burn = quadratic_schedule(H)
    n_snap, T = 20, 1.0
    _, rd, _ = run_memory(quadratic_local(seed, eta, T, R=400, steps=burn + n_snap * tau,
                                          every=tau, snap=tau))
    snaps = rd.read("snapshots/theta")[:, burn // tau:, :]  # (R, n_snap + 1, n_par)
    field = sft.lattice_fields(cost.layout, cfg.network)  # w_1: 18 sites, C(d) for d = 0..9
    good = sft.compare_two_point(snaps, sft.predicted_covariance(H, eta, T), field)
    assert good.p_value > P_MIN, good.table()
    # the 3 x 3 blocks: nothing beyond distance 2 in the prediction
    assert np.all(good.predicted[3:] == 0)
    wrong = sft.compare_two_point(snaps, sft.continuum_covariance(H, T), field)
    assert wrong.p_value < 1e-20, wrong.table()
    print(f"\nquadratic seed {seed}: Lyapunov {good.chi2:.2f} / {good.dof}, p = {good.p_value:.3g};"
          f" T H^-1 {wrong.chi2:.1f}, p = {wrong.p_value:.3g}")


# --------------------------------------------------------------------------------------------
# Dynamics: the harmonic approximation about a trained minimum of a two-layer local network


def two_layer_local(eta, T, R, steps, init=None, every=1000000, snap=0, seed=0):
    t = {"network": {"architecture": "local", "width": 6, "depth": 2, "k": 1,
                     "activation": "tanh", "sigma_b2": 0.1},
         "data": {"n_train": 16, "n_probe": 4, "batch": "full", "loss": "mse"},
         "dynamics": {"integrator": "overdamped", "eta": eta, "T": T, "lambda": 0.1},
         "ensemble": {"replicas": R, "steps": steps, "seed": seed},
         "recording": {"every": every, "train_loss": False, "norms": False,
                       "snapshot_every": snap}}
    if init is not None:
        t["init"] = {"from": str(init), "replica": 0}
    return t


def train_minimum(tmp_path, seed=0):
    """Gradient descent (T = 0, full batch) of one replica to a minimum; returns the file, the
    cost, the minimum and the Hessian there."""
    cfg, cost = cost_of(two_layer_local(0.01, 0.0, 1, 0, seed=seed))
    th0 = sft.reference_point("init", cfg, cost.layout)[0]
    eta = 0.5 / np.linalg.eigvalsh(cost.hessian(th0))[-1]
    path = tmp_path / "minimum.h5"
    run(load_config(two_layer_local(eta, 0.0, 1, 20000, seed=seed)), path, progress=False)
    theta, ref = sft.reference_point(str(path), cfg, cost.layout)
    return path, cfg, cost, theta


@pytest.mark.slow
def test_harmonic_two_point_about_a_trained_minimum(tmp_path):
    """Replicas branched from a trained minimum (init.replica = 0) and sampled at low T match
    the discrete Lyapunov prediction of the Hessian there, by one chi^2 over every distance of
    both weight fields (w_1, w_2: 18 sites each, 20 distances)."""
    path, cfg, cost, theta = train_minimum(tmp_path)
    g = cost.gradient(theta)
    H = cost.hessian(theta)
    lam = np.linalg.eigvalsh(H)
    assert np.linalg.norm(g) < 1e-10 and lam[0] > 0  # a minimum, not a saddle
    eta = 0.9 / lam[-1]  # the stiffest mode: 1 / (1 - 0.45) = 1.8 times T / lambda_max
    tau = int(np.ceil(1.0 / (eta * lam[0])))
    T = 1e-6
    pred = sft.predicted_covariance(H, eta, T)
    # Anharmonicity: the relative change of H over a typical fluctuation, |H^-1/2 dH H^-1/2|,
    # is O(sqrt(T)); the covariance is off by O(eps^2), far below the statistical error (~1e-2)
    rs = np.random.default_rng(0)
    L, Li = np.linalg.cholesky(pred), np.linalg.inv(np.linalg.cholesky(H))
    eps = max(np.linalg.norm(Li @ (cost.hessian(theta + L @ rs.normal(size=len(theta))) - H)
                             @ Li.T, 2) for _ in range(3))
    assert eps < 0.1, eps
    # covariance builds up from 0 as 1 - (1 - eta lambda)^(2t): burn-in 5 tau leaves < 1e-4
    burn, n_snap = 5 * tau, 12
    out = tmp_path / "branch.h5"
    run(load_config(two_layer_local(eta, T, 256, burn + n_snap * tau, init=path, every=tau,
                                    snap=tau)), out, progress=False)
    samples, info = sft.ensemble_samples(str(out), cost.layout, snapshots_from=burn // tau)
    assert info["replicas"] == 256 and samples.shape[1] == n_snap + 1
    weights = [f for f in sft.lattice_fields(cost.layout, cfg.network) if f.kind == "weight"]
    comp = sft.compare_two_point(samples, pred, weights)
    assert comp.dof == 20
    assert comp.p_value > P_MIN, comp.table()
    # the test resolves the amplitude to a few %: a prediction at 1.1 T fails clearly
    assert sft.compare_two_point(samples, 1.1 * pred, weights).p_value < 1e-8
    print(f"\nharmonic: eps = {eps:.3g}, tau = {tau}, {comp.chi2:.2f} / {comp.dof}, "
          f"p = {comp.p_value:.3g}")


# --------------------------------------------------------------------------------------------
# The command


@pytest.fixture
def group():
    @click.group()
    def cli():
        pass

    cli.add_command(sft_command)
    return cli


def write_toml(path, text):
    path.write_text(text)
    return str(path)


EX1 = """\
[network]
architecture = "sft1"
width = 6
output_activation_params = {p = 0.7, q = 0.3}
[data]
n_train = 20
n_probe = 4
batch = "full"
reduction = "sum"
"""


def test_cli_prints_table_and_writes_json_h5(group, tmp_path):
    cfgp = write_toml(tmp_path / "ex1.toml", EX1)
    js, h5 = tmp_path / "o.json", tmp_path / "o.h5"
    res = CliRunner().invoke(group, ["sft", cfgp, "--spacing", "0.5", "--json", str(js),
                                     "--h5", str(h5)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "field w_1: 12 sites" in res.output and "Eq. 14 holds exactly" in res.output
    assert "m^2 =" in res.output
    cfg, cost = cost_of(load_config(cfgp).to_dict())
    cf = sft.sft1_closed_form(cost.X, cost.Y, 0.7, 0.3)
    d = json.loads(js.read_text())
    np.testing.assert_allclose(d["fields"]["w_1"]["K"], cf["K"], atol=1e-12)
    np.testing.assert_allclose(d["fields"]["w_1"]["J_x"], cf["J"] / 0.5, rtol=1e-12)
    assert d["quadratic"] is True and "hessian" not in d
    with h5py.File(h5, "r") as f:
        np.testing.assert_allclose(f["hessian"][()], cf["H"], atol=1e-12)
        np.testing.assert_allclose(f["fields/w_1/J"][()], cf["J"], atol=1e-12)
        assert f["fields/w_1"].attrs["mass2"] == pytest.approx(np.mean(cf["J"]) / 0.5)


def test_cli_bad_input_names_the_culprit(group, tmp_path):
    dense = write_toml(tmp_path / "dense.toml", "[network]\nwidths = [4, 2]\n")
    for args, msg in (([dense], "network.architecture"),
                      ([write_toml(tmp_path / "e.toml", EX1), "--field", "w_9"], "--field"),
                      ([str(tmp_path / "e.toml"), "--at", str(tmp_path / "none.h5")], "none.h5"),
                      ([str(tmp_path / "e.toml"), "--spacing", "0"], "--spacing")):
        res = CliRunner().invoke(group, ["sft", *args])
        assert isinstance(res.exception, UserError), res.output
        assert msg in str(res.exception) and "\n" not in str(res.exception)


def test_cli_compare_prints_predicted_vs_measured(group, tmp_path):
    cfg, cost = cost_of(quadratic_local(0))
    H = cost.hessian(np.zeros(cost.n_par))
    eta, tau, burn = quadratic_schedule(H)
    table = quadratic_local(0, eta, 1.0, R=64, steps=burn + 5 * tau, every=tau, snap=tau)
    from tomli_w import dumps

    cfgp = write_toml(tmp_path / "q.toml", dumps(table))
    ens = tmp_path / "q.h5"
    run(load_config(cfgp), ens, progress=False)
    js = tmp_path / "c.json"
    res = CliRunner().invoke(group, ["sft", cfgp, "--compare", str(ens), "--snapshots",
                                     str(burn // tau), "--json", str(js)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "predicted" in res.output and "chi^2 =" in res.output
    d = json.loads(js.read_text())["compare"]
    assert d["dof"] == 10 and d["d"] == list(range(10))
    samples, _ = sft.ensemble_samples(str(ens), cost.layout, snapshots_from=burn // tau)
    ref = sft.compare_two_point(samples, sft.predicted_covariance(H, eta, 1.0),
                                sft.lattice_fields(cost.layout, cfg.network))
    assert d["chi2"] == pytest.approx(ref.chi2, rel=1e-10)
    # a CONFIG with other data is refused
    other = write_toml(tmp_path / "o.toml", dumps({**table, "data": {**table["data"],
                                                                     "n_train": 12}}))
    res = CliRunner().invoke(group, ["sft", other, "--compare", str(ens)])
    assert isinstance(res.exception, UserError) and "data.n_train" in str(res.exception)
