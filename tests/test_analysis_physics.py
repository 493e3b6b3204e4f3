"""Physics of the analysis library on engine ensembles at initialisation (zero-step runs):
the NumPy network twin against the recorded pre-activations, the order-to-chaos transition of
deep dense tanh networks at sigma_b^2 = 0.05 against mean-field theory (q^(m), c^(m), xi_c on
both sides of the critical line), the critical sigma_w^2 from data with its finite-width error,
and the width correlators against naive loops.

Sizes (CI): width 128, 16 hidden layers, 16 replicas x 32 probe inputs, about a second per
ensemble. Tolerances: 4 standard deviations of (statistical (+) finite-width systematic); the
larger study is analysis/order_to_chaos.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import run_memory
from langevin_nn.analysis.chi import critical_point, measure_chi1
from langevin_nn.analysis.correlations import (cka_matrix, field_correlator, field_two_point,
                                               structure_factor)
from langevin_nn.analysis.errors import propagate
from langevin_nn.analysis.forward import StoredNetwork
from langevin_nn.analysis.kernels import layer_kernels
from langevin_nn.analysis.ntk import ntk_drift
from langevin_nn.analysis.order import xi_from_profile
from langevin_nn.errors import UserError
from langevin_nn.theory.meanfield import (inputs_for_kernel, kernel_profile, mean_field,
                                          profile_summary)

SB2 = 0.05
N0, N, L, R, K = 64, 128, 16, 16, 32


def init_ensemble(sw2, seed=1, probes=None, tmp=None, width=N, replicas=R, probe_z=True):
    """A zero-step dense tanh ensemble [N0, width x L, 1] (the initialisation), with snapshot 0
    and, if asked, the probe pre-activations; ``probes`` (K, N0) replaces the Gaussian probe set
    (a file source written into ``tmp``)."""
    data = {"n_train": 8, "n_probe": K}
    if probes is not None:
        path = tmp / f"probes_{sw2}_{seed}.npz"
        np.savez(path, X=np.random.default_rng(0).normal(size=(8, N0)), Y=np.zeros(8),
                 X_probe=probes, Y_probe=np.zeros(len(probes)))
        data = {"source": "file", "path": str(path), "n_probe": len(probes)}
    rec = {"every": 1, "snapshot_every": 1}
    if probe_z:
        rec.update(probe_z_every=1, probe_z_dtype="float64")
    _, reader, _ = run_memory({
        "network": {"architecture": "dense", "widths": [N0] + [width] * L + [1],
                    "activation": "tanh", "sigma_w2": sw2, "sigma_b2": SB2},
        "data": data, "ensemble": {"replicas": replicas, "steps": 0, "seed": seed},
        "recording": rec})
    return reader


def xi_of(chi):
    """xi = -1 / ln chi with its error from a chi Estimate (jackknife) and a systematic."""
    return propagate(lambda x: -1.0 / np.log(x), chi)


def test_numpy_network_reproduces_the_engine():
    rd = init_ensemble(1.5, replicas=2, width=16)
    net = StoredNetwork.from_ensemble(rd)
    th = rd.read("snapshots/theta")[1, 0]
    zs = net.forward(th, rd.read("data/X_probe"))
    for m in range(1, net.depth + 1):
        np.testing.assert_allclose(zs[m - 1], rd.read(f"probe_z/z_{m}")[1, 0], atol=1e-12)
    # the link gain is the Jacobian's Frobenius norm per unit width
    X = rd.read("data/X_probe")[:3]
    W = net.weights(th)
    g = net.link_gains(th, X)
    d = 1 - np.tanh(zs[4][:3]) ** 2
    J2 = np.array([np.sum((W[5][0] * d[a]) ** 2) / W[5][0].shape[0] for a in range(3)])
    np.testing.assert_allclose(g[4], J2, rtol=1e-12)


@pytest.mark.parametrize("sw2", [1.3, 2.0])
def test_layer_kernels_follow_mean_field(sw2):
    """q^(m), c^(m) on Gaussian probe inputs agree with the mean-field recursion for the same
    inputs within 4 sigma of (jackknife error (+) the measured O(1/N) finite-width scale)."""
    rd = init_ensemble(sw2, seed=3)
    lk = layer_kernels(rd)
    pred = profile_summary(kernel_profile("tanh", sw2, SB2, rd.read("data/X_probe"), L + 1))
    hidden = slice(0, L)  # the output layer has width 1
    eps = lk.q_spread[0, hidden] / 2  # ~ 1/N
    assert np.all((eps > 0.3 / N) & (eps < 4.0 / N))
    zq = (lk.q.value[0, hidden] - pred["q"][hidden]) / np.hypot(lk.q.error[0, hidden], eps * pred["q"][hidden])
    zc = (lk.c.value[0, hidden] - pred["c"][hidden]) / np.hypot(lk.c.error[0, hidden], eps)
    assert np.all(np.abs(zq) < 4), zq
    assert np.all(np.abs(zc) < 4), zc
    # the profiles move: q relaxes to q*, c grows from ~ sigma_b^2/(sigma_w^2 + sigma_b^2)
    mf = mean_field("tanh", sw2, SB2)
    assert abs(lk.q.value[0, L - 1] - mf.q_star) < 0.1 * mf.q_star
    assert lk.c.value[0, L - 1] > 3 * lk.c.value[0, 0]


def test_xi_c_ordered_phase():
    """sigma_w^2 = 1.3 (ordered, xi_c = 7.83): from the measured chi_1 (xi_c = -1/ln chi_1) and from
    the approach of c^(m) to c* = 1 on probe inputs starting at q^(1) = q*, c^(1) = 0.8."""
    mf = mean_field("tanh", 1.3, SB2)
    c = measure_chi1(init_ensemble(1.3, seed=5, probe_z=False), jacobian=True)
    xi = xi_of(c.chi_1)
    syst = c.systematic / (c.chi_1.value * math.log(c.chi_1.value) ** 2)
    assert abs(c.chi_1.value - mf.chi_1) < 4 * math.hypot(c.chi_1.error, c.systematic)
    assert abs(c.jacobian.value - mf.chi_1) < 4 * math.hypot(c.jacobian.error, c.systematic)
    assert abs(xi.value - mf.xi_c) < 4 * math.hypot(xi.error, syst)
    assert abs(xi.value - 7.83) < 1.5  # the measured length itself, to ~20%

    X = inputs_for_kernel(K, N0, mf.q_star, 0.8, 1.3, SB2, seed=2)
    rd = init_ensemble(1.3, seed=6, probes=X, tmp=_tmp())
    lk = layer_kernels(rd)
    fit = xi_from_profile(lk.layers, lk.c[0], fixed_point=1.0, window=(3, L - 1))
    mf_fit = xi_from_profile(lk.layers, _exact(kernel_profile("tanh", 1.3, SB2, X, L + 1)),
                             fixed_point=1.0, window=(3, L - 1))
    assert fit.reliable
    assert abs(fit.xi.value - mf_fit.xi.value) < 4 * fit.xi.error
    assert abs(fit.xi.value - mf.xi_c) < 4 * fit.xi.error + abs(mf_fit.xi.value - mf.xi_c)


def test_xi_c_chaotic_phase():
    """sigma_w^2 = 2.0 (chaotic, c* = 0.744, xi_c = 25.2): on probe inputs whose layer-1 kernel is
    the fixed point (q*, c*), the gain of a perturbation common to two inputs is chi_c = exp(-1/xi_c)."""
    mf = mean_field("tanh", 2.0, SB2)
    X = inputs_for_kernel(K, N0, mf.q_star, mf.c_star, 2.0, SB2, seed=4)
    rd = init_ensemble(2.0, seed=7, probes=X, tmp=_tmp())
    c = measure_chi1(rd)
    assert c.chi_1.value > 1  # chaotic: a single input's perturbations grow
    assert abs(c.chi_c.value - mf.chi_c) < 4 * math.hypot(c.chi_c.error, c.systematic)
    xi = xi_of(c.chi_c)
    syst = c.systematic / (c.chi_c.value * math.log(c.chi_c.value) ** 2)
    assert abs(xi.value - mf.xi_c) < 4 * math.hypot(xi.error, syst)
    assert 12 < xi.value < 60


@pytest.mark.slow
def test_critical_point_from_data():
    """chi_1 measured at four sigma_w^2 (independent seeds) crosses 1 at the mean-field critical
    sigma_w^2 = 1.761 within the quoted error (statistical (+) finite-width systematic)."""
    pts = [measure_chi1(init_ensemble(s, seed=20 + i, probe_z=False))
           for i, s in enumerate((1.5, 1.65, 1.85, 2.0))]
    cp = critical_point(pts)
    assert cp.systematic > 0 and cp.statistical > 0
    assert cp.sigma_w2.error == pytest.approx(math.hypot(cp.statistical, cp.systematic))
    assert abs(cp.sigma_w2.value - 1.761) < 2 * cp.sigma_w2.error
    assert cp.sigma_w2.error < 0.15
    with pytest.raises(UserError, match="does not cross 1"):
        critical_point(pts[:2])


# --------------------------------------------------------------------------------------------
# Width correlators, CKA, NTK


def test_field_two_point_against_naive_loops():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3, 8))
    b = a + rng.normal(size=(6, 3, 8))
    est = field_two_point(a, b)
    naive = np.zeros(8)
    for dy in range(8):
        for s in range(3):
            acc = 0.0
            for y in range(8):
                ay, by = a[:, s, y], b[:, s, (y + dy) % 8]
                acc += (ay * by).mean() - ay.mean() * by.mean()
            naive[dy] += acc / 8 / 3
    np.testing.assert_allclose(est.value, naive, atol=1e-12)
    assert est.jackknife.shape == (6, 8)


def test_local_field_correlators_and_structure_factor(tmp_path):
    _, rd, _ = run_memory({
        "network": {"architecture": "local", "width": 12, "depth": 5, "activation": "tanh"},
        "data": {"n_train": 16, "n_probe": 6},
        "ensemble": {"replicas": 10, "steps": 30, "seed": 2},
        "recording": {"every": 10, "probe_z_every": 10, "snapshot_every": 10}})
    fc = field_correlator(rd, "z")
    M = 5
    assert np.shape(fc.C.value) == (M, M, 12)
    np.testing.assert_allclose(fc.C.value, np.swapaxes(fc.C.value, 0, 1)[:, :, (-np.arange(12)) % 12],
                               atol=1e-12)  # C(m, m', dy) = C(m', m, -dy)
    k, S = structure_factor(fc.C)
    for m in range(M):  # sum rule: (1/N) sum_k S(m, k) = C(m, m, 0)
        assert S.value[m].mean() == pytest.approx(fc.C.value[m, m, 0])
    assert np.all(S.value > -5 * S.error)
    w = field_correlator(rd, "w", index=0)  # at initialisation weights are independent:
    var = 1.0 / 3  # sigma_w2 / fan_in, summed over the 3 offsets
    for m in range(M):
        assert abs(w.C.value[m, m, 0] - 3 * var) < 5 * w.C.error[m, m, 0]
        assert np.all(np.abs(w.C.value[m, m, 1:]) < 5 * w.C.error[m, m, 1:] + 1e-12)
    dw = field_correlator(rd, "dw")
    assert np.all(np.diagonal(dw.C.value[:, :, 0]) > 0)
    with pytest.raises(UserError, match="local architecture"):
        field_correlator(init_ensemble(1.5, replicas=2, width=8), "z")


def test_cka_is_one_on_the_diagonal_and_invariant():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 7))
    Q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    y = np.tanh(x @ rng.normal(size=(7, 9)))
    C = cka_matrix([x, 3.0 * x @ Q, y])
    np.testing.assert_allclose(np.diag(C), 1.0)
    assert C[0, 1] == pytest.approx(1.0)  # invariant under rotation and scale
    assert 0 < C[0, 2] < 1


def test_ntk_drift_starts_at_zero_and_grows():
    _, rd, _ = run_memory({
        "network": {"widths": [4, 16, 16, 1]}, "data": {"n_train": 32, "n_probe": 8, "batch": 8},
        "dynamics": {"eta": 0.05}, "ensemble": {"replicas": 4, "steps": 200, "seed": 3},
        "recording": {"every": 50, "snapshot_every": 100}})
    d = ntk_drift(rd)
    assert d.drift.value[0] == 0 and np.all(d.drift.value[1:] > 0)
    assert np.all(d.trace.value > 0)


def test_missing_snapshots_name_the_switch():
    _, rd, _ = run_memory({"network": {"widths": [4, 8, 8, 1]}, "data": {"n_train": 8, "n_probe": 4},
                           "ensemble": {"replicas": 2, "steps": 0}})
    with pytest.raises(UserError, match=r"recording.snapshot_every") as e:
        measure_chi1(rd)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"recording.probe_z_every"):
        layer_kernels(rd)


# --------------------------------------------------------------------------------------------


_TMP = []


def _tmp():
    """A temporary folder for probe-set files (pytest's tmp_path is per test; this one lives for
    the session)."""
    import tempfile
    from pathlib import Path

    if not _TMP:
        _TMP.append(Path(tempfile.mkdtemp(prefix="lnn_probes_")))
    return _TMP[0]


def _exact(kernels):
    """The mean-field c^(m) profile as an Estimate with tiny errors (for fitting it)."""
    from langevin_nn.analysis.errors import Estimate

    c = profile_summary(kernels)["c"]
    return Estimate(c, np.full(c.shape, 1e-6))
