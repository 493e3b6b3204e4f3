"""The integrators against references and exact stationary laws (physics.md sections 3 and 5)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

import naive
from helpers import QUADRATIC, covariance_z, merge, quadratic_hessian, run_memory
from langevin_nn.bulk.networks import build_layout

# With n elements each |z| < 4.5 fails by chance with probability about n * 7e-6.
Z_MAX = 4.5


def sgd_case(net, data, dyn, replicas=3, steps=12, seed=5):
    table = {"network": net, "data": data, "dynamics": {"integrator": "overdamped", **dyn},
             "ensemble": {"replicas": replicas, "steps": steps, "seed": seed, "chunk": 5},
             "recording": {"every": 1, "snapshot_every": 1}}
    cfg, rd, _ = run_memory(table)
    layout = build_layout(cfg.network)
    X, Y = rd.read("data/X_train"), rd.read("data/Y_train")
    snaps = rd.read("snapshots/theta")  # (R, steps + 1, n_par)
    for r in range(replicas):
        ref = naive.sgd_reference(cfg.network, layout, snaps[r, 0], X, Y, cfg.data.loss,
                                  cfg.data.reduction, dyn["eta"], steps, cfg.data.batch,
                                  seed, r, lam=dyn.get("lambda", 0.0))
        np.testing.assert_allclose(snaps[r, 1:], ref, rtol=1e-11, atol=1e-13)
    return rd


@pytest.mark.parametrize("batch", ["full", 4])
def test_zero_temperature_sgd_equals_numpy_reference(batch):
    sgd_case({"architecture": "dense", "widths": [3, 5, 4, 2], "activation": "tanh",
              "sigma_b2": 0.1},
             {"n_train": 10, "n_probe": 3, "batch": batch, "loss": "mse"}, {"eta": 0.05})


def test_zero_temperature_sgd_local_cross_entropy_prior_sum():
    sgd_case({"architecture": "local", "width": 5, "depth": 3, "activation": "softplus"},
             {"n_train": 9, "n_probe": 3, "batch": 3, "loss": "cross_entropy",
              "reduction": "sum"}, {"eta": 0.02, "lambda": 0.3})


def test_recorded_losses_match_reference():
    rd = sgd_case({"architecture": "dense", "widths": [3, 4, 1], "activation": "erf"},
                  {"n_train": 6, "n_probe": 5, "batch": 2, "loss": "mse"}, {"eta": 0.1},
                  replicas=2, steps=4)
    # recomputed from the snapshots with the reference network
    from langevin_nn.config import load_config
    cfg = load_config({"network": {"architecture": "dense", "widths": [3, 4, 1],
                                   "activation": "erf"}})
    layout = build_layout(cfg.network)
    snaps = rd.read("snapshots/theta")
    Xp, Yp = rd.read("data/X_probe"), rd.read("data/Y_probe")
    X, Y = rd.read("data/X_train"), rd.read("data/Y_train")
    for r in range(2):
        for k in range(5):
            lp = naive.loss_value(cfg.network, layout, snaps[r, k], Xp, Yp, "mse")
            lt = naive.loss_value(cfg.network, layout, snaps[r, k], X, Y, "mse")
            assert rd.read("records/loss_probe")[r, k] == pytest.approx(lp, rel=1e-12)
            assert rd.read("records/loss_train")[r, k] == pytest.approx(lt, rel=1e-12)


def quadratic_run(seed, dyn, steps, replicas):
    table = merge(QUADRATIC, {"dynamics": dyn,
                              "ensemble": {"replicas": replicas, "steps": steps, "seed": seed}})
    _, rd, _ = run_memory(table)
    return rd.state()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overdamped_stationary_covariance_is_discrete_lyapunov(seed):
    """S = (I - eta H) S (I - eta H)^T + 2 eta T I (physics.md section 5), not T H^-1."""
    H = quadratic_hessian(seed)
    lam = np.linalg.eigvalsh(H)
    eta, T, R = 0.5 / lam[-1], 0.05, 4000
    steps = int(40 / (eta * lam[0]))
    st = quadratic_run(seed, {"integrator": "overdamped", "eta": eta, "T": T}, steps, R)
    A = np.eye(4) - eta * H
    S = solve_discrete_lyapunov(A, 2 * eta * T * np.eye(4))
    z = covariance_z(st["theta"], S)
    assert np.all(np.abs(z) < Z_MAX), z
    # the test can tell the discrete law from the continuum one, T H^-1, on the stiff mode
    z_cont = covariance_z(st["theta"], T * np.linalg.inv(H))
    assert np.max(np.abs(z_cont)) > 2 * Z_MAX


@pytest.mark.slow
@pytest.mark.parametrize("seed,h_factor", [(0, 0.4), (1, 1.5)])
def test_baoab_harmonic_laws(seed, h_factor):
    """BAOAB on a quadratic cost: configurational covariance T H^-1 for every stable h, momentum
    covariance T right after O, T (I - h^2 H / 4) at the full step (physics.md section 3)."""
    H = quadratic_hessian(seed)
    lam, V = np.linalg.eigh(H)
    h = h_factor / np.sqrt(lam[-1])
    T, gamma, R = 0.05, 1.5, 4000
    steps = int(60 / (h * min(gamma, lam[0] / gamma)))
    dyn = {"integrator": "underdamped", "dt": h, "gamma": gamma, "T": T}
    table = merge(QUADRATIC, {"dynamics": dyn,
                              "ensemble": {"replicas": R, "steps": steps, "seed": seed},
                              "recording": {"every": steps}})
    _, rd, _ = run_memory(table)
    st = rd.state()
    assert np.all(np.abs(covariance_z(st["theta"], T * np.linalg.inv(H))) < Z_MAX)
    P_full = T * (np.eye(4) - h * h * H / 4)
    assert np.all(np.abs(covariance_z(st["mom"], P_full)) < Z_MAX)
    # kinetic energy right after O: 1/2 |p|^2 with p ~ N(0, T I): mean 2T, variance 2 T^2 (n = 4)
    ko = rd.read("records/kinetic_o")[:, -1]
    assert abs(ko.mean() - 4 * T / 2) < Z_MAX * np.sqrt(4 / 2) * T / np.sqrt(R)
    # and the full-step kinetic energy is measurably lower at the larger step
    if h_factor > 1:
        kf = rd.read("records/kinetic")[:, -1]
        assert kf.mean() < ko.mean() - 3 * T / np.sqrt(R)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_heavy_ball_stationary_covariance(seed):
    """Heavy ball on a quadratic cost: the exact finite-step law of the linear (theta, v) chain,
    which tends to T H^-1 as eta -> 0 with the noise sqrt(2 (1 - beta) eta T)."""
    H = quadratic_hessian(seed)
    lam = np.linalg.eigvalsh(H)
    eta, beta, T, R = 0.2 / lam[-1], 0.8, 0.05, 4000
    # slowest relaxation: about (1 - beta) / (eta lambda_min) steps (overdamped regime)
    steps = int(40 * (1 - beta) / (eta * lam[0])) + int(40 / (1 - beta))
    st = quadratic_run(seed, {"integrator": "heavy_ball", "eta": eta, "beta": beta, "T": T},
                       steps, R)
    S = heavy_ball_covariance(H, eta, beta, T)[:4, :4]
    assert np.all(np.abs(covariance_z(st["theta"], S)) < Z_MAX)
    # small-step limit of the same law (a check of the noise amplitude)
    S0 = heavy_ball_covariance(H, 1e-5 / lam[-1], beta, T)[:4, :4]
    np.testing.assert_allclose(S0, T * np.linalg.inv(H), rtol=2e-3)


def heavy_ball_covariance(H, eta, beta, T):
    n = H.shape[0]
    I = np.eye(n)
    # v' = beta v - eta H x + s xi ; x' = x + v'
    A = np.block([[I - eta * H, beta * I], [-eta * H, beta * I]])
    s2 = 2 * (1 - beta) * eta * T
    Q = s2 * np.block([[I, I], [I, I]])
    return solve_discrete_lyapunov(A, Q)


def test_underdamped_energy_balance_second_order():
    """At T = 0 with a fixed full-batch loss, dE/dt = -gamma |p|^2; BAOAB's discrete balance
    error shrinks as h^2 (a tanh network, so the cost is not quadratic)."""
    def residual(h):
        steps = int(round(4.0 / h))
        table = {"network": {"architecture": "dense", "widths": [3, 6, 1], "activation": "tanh",
                             "sigma_b2": 0.1},
                 "data": {"n_train": 12, "n_probe": 2, "batch": "full"},
                 "dynamics": {"integrator": "underdamped", "dt": h, "gamma": 0.7, "T": 0.0},
                 "ensemble": {"replicas": 2, "steps": steps, "seed": 3},
                 "recording": {"every": 1}}
        _, rd, _ = run_memory(table)
        K = rd.read("records/kinetic")
        E = rd.read("records/energy")
        t = rd.read("records/time")
        # the recorded E and gamma |p|^2 are what they say (lambda = 0, mean reduction)
        np.testing.assert_allclose(E, K + rd.read("records/loss_batch"), rtol=1e-13)
        np.testing.assert_allclose(rd.read("records/dissipation"), 2 * 0.7 * K, rtol=1e-15)
        np.testing.assert_allclose(rd.read("records/log_action_weight")[0], 0.7 * t, rtol=1e-12)
        diss = np.trapezoid(rd.read("records/dissipation"), t, axis=1)
        return np.abs(E[:, -1] - E[:, 0] + diss), np.abs(E[:, -1] - E[:, 0])

    r1, scale = residual(0.04)
    r2, _ = residual(0.02)
    assert np.all(scale > 1e-2)  # the energy really changes
    ratio = r1 / r2
    assert np.all((ratio > 3.0) & (ratio < 5.5)), ratio
