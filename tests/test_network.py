"""Forward and backward kernels: against the NumPy reference and against central finite
differences, for every activation x loss x architecture (away from the relu / hinge kinks)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import naive
from langevin_nn.boundary import losses
from langevin_nn.bulk.networks import build_layout
from langevin_nn.config import load_config
from langevin_nn.kernels.ensemble import loss_and_grad

ACTIVATIONS = ["tanh", "sigmoid", "erf", "relu", "linear", "quadratic", "softplus", "identity"]
LOSSES = ["mse", "cross_entropy", "kl", "hinge"]
ARCHS = ["dense", "local", "local_tied", "sft1", "sft2"]


def network_table(arch, act, out_width, bias=True):
    params = {"linear": {"p": 0.7, "q": 0.3}, "quadratic": {"p": 0.7, "q": 0.3, "r": -0.2}}.get(act)
    name = "output_activation" if arch == "sft1" else "activation"  # sft1: sigma at the output
    t = {name: act, "bias": bias, "sigma_w2": 1.2, "sigma_b2": 0.1 if bias else 0.0}
    if params:
        t[name + "_params"] = params
    if arch == "dense":
        t.update(architecture="dense", widths=[4, 5, 3, out_width])
    elif arch.startswith("local"):
        t.update(architecture="local", width=6, depth=3, k=1, tied=arch == "local_tied")
    else:
        t.update(architecture=arch, width=6)
    return t


def make(arch, act, loss):
    out_w = 1 if loss == "hinge" else (3 if loss in ("cross_entropy", "kl") else 2)
    if arch != "dense":
        out_w = 6  # periodic networks keep their width (so no hinge loss: it needs one output)
    net = network_table(arch, act, out_w, bias=arch in ("dense", "local", "local_tied"))
    cfg = load_config({"network": net, "data": {"loss": loss, "n_train": 16, "n_probe": 4}})
    return cfg, build_layout(cfg.network)


def random_problem(cfg, layout, loss, n=5, seed=0):
    rs = np.random.default_rng(seed)
    theta = rs.normal(size=layout.n_par) * layout.init_std.clip(0.2)
    X = rs.normal(size=(n, layout.widths[0]))
    nm = layout.widths[-1]
    if loss == "mse":
        Y = rs.normal(size=(n, nm))
    elif loss == "hinge":
        Y = rs.choice([-1.0, 1.0], size=(n, 1))
    else:
        Y = rs.dirichlet(np.ones(nm), size=n)
        if loss == "kl":
            Y[0, 0] = 0.0  # 0 log 0 = 0
            Y[0] /= Y[0].sum()
    return theta, X, Y


def kernel_loss_grad(layout, theta, X, Y, loss, reduction="mean"):
    a = layout.arrays
    n = X.shape[0]
    L = a.lay_off[-1]
    H, D, G = np.zeros((n, L)), np.zeros((n, L)), np.zeros((n, L))
    H[:, : layout.widths[0]] = X
    grad = np.zeros(layout.n_par)
    scale = 1.0 / n if reduction == "mean" else 1.0
    total = loss_and_grad(a, losses.CODES[loss], theta, n, H, D, G, Y.copy(), grad, scale, True)
    return total * scale, grad


COMBOS = [c for c in itertools.product(ARCHS, ACTIVATIONS, LOSSES)
          if c[2] != "hinge" or c[0] == "dense"]


@pytest.mark.parametrize("arch,act,loss", COMBOS)
def test_gradient_matches_finite_differences_and_reference(arch, act, loss):
    cfg, layout = make(arch, act, loss)
    theta, X, Y = random_problem(cfg, layout, loss)
    value, grad = kernel_loss_grad(layout, theta, X, Y, loss)
    # the kernel's loss equals the reference cost, and so does its gradient
    ref = naive.loss_value(cfg.network, layout, theta, X, Y, loss)
    assert value == pytest.approx(ref, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, naive.gradient(cfg.network, layout, theta, X, Y, loss),
                               rtol=1e-10, atol=1e-12)
    # central differences, step h: truncation O(h^2 f''') and round-off O(eps f / h)
    h = 1e-6
    fd = np.empty_like(theta)
    for i in range(layout.n_par):
        e = np.zeros_like(theta)
        e[i] = h
        fd[i] = (kernel_loss_grad(layout, theta + e, X, Y, loss)[0]
                 - kernel_loss_grad(layout, theta - e, X, Y, loss)[0]) / (2 * h)
    # kinks: relu at z = 0 and hinge at ZY = 1 are measure zero for random inputs; a difference
    # straddling one would show as an O(1) error, which the tolerance does not hide.
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7 * max(1.0, abs(value)))


def test_sum_reduction_is_batch_times_mean():
    cfg, layout = make("dense", "tanh", "mse")
    theta, X, Y = random_problem(cfg, layout, "mse", n=7)
    vm, gm = kernel_loss_grad(layout, theta, X, Y, "mse", "mean")
    vs, gs = kernel_loss_grad(layout, theta, X, Y, "mse", "sum")
    assert vs == pytest.approx(7 * vm, rel=1e-14)
    np.testing.assert_allclose(gs, 7 * gm, rtol=1e-13)


def test_local_network_is_a_banded_periodic_dense_network():
    """The local table equals a dense network whose W is zero outside the periodic band."""
    cfg, layout = make("local", "tanh", "mse")
    theta, X, _ = random_problem(cfg, layout, "mse")
    Ws, _ = naive.weight_matrices(layout, theta)
    N = layout.widths[0]
    for W in Ws:
        for i in range(N):
            for j in range(N):
                d = min((i - j) % N, (j - i) % N)
                if d > 1:
                    assert W[i, j] == 0.0
    cfg_t, lay_t = make("local_tied", "tanh", "mse")
    th_t, _, _ = random_problem(cfg_t, lay_t, "mse")
    W0 = naive.weight_matrices(lay_t, th_t)[0][0]
    for i in range(N):  # tied: a circulant matrix
        np.testing.assert_array_equal(np.roll(W0[0], i), W0[i])


def test_sft_wiring_matches_the_papers_equations():
    """SFT Eq. 13 and the corrected Eq. 18 (physics.md section 1), term by term."""
    cfg = load_config({"network": {"architecture": "sft1", "width": 5,
                                   "output_activation": "linear",
                                   "output_activation_params": {"p": 0.8, "q": 0.1}}})
    lay = build_layout(cfg.network)
    rs = np.random.default_rng(3)
    W = rs.normal(size=lay.n_par)
    X = rs.normal(size=(2, 5))
    _, h = naive.forward(cfg.network, lay, W, X)
    for i in range(5):  # output 2i: W_{2i} X_{2i-1} + W_{2i+1} X_{2i+1}
        pre = W[2 * i] * X[:, (i - 1) % 5] + W[2 * i + 1] * X[:, i]
        np.testing.assert_allclose(h[-1][:, i], 0.8 * pre + 0.1, rtol=1e-14)
    cfg = load_config({"network": {"architecture": "sft2", "width": 5, "activation": "quadratic",
                                   "activation_params": {"p": 0.5, "q": 0.2, "r": 0.3}}})
    lay = build_layout(cfg.network)
    th = rs.normal(size=lay.n_par)
    W1, W2 = th[:10], th[10:]
    sig = lambda x: 0.5 * x * x + 0.2 * x + 0.3  # noqa: E731
    _, h = naive.forward(cfg.network, lay, th, X)
    N = 5
    for i in range(N):
        # weight j sits on site 2j: W_{4i} -> j = 2i, W_{4i-2} -> 2i-1, W_{4i+2} -> 2i+1, W_{4i+4} -> 2i+2
        x = lambda k: X[:, k % N]  # noqa: E731  X_{4k+1} is input k
        w1 = lambda j: W1[j % (2 * N)]  # noqa: E731
        out = (W2[2 * i] * sig(w1(2 * i) * x(i) + w1(2 * i - 1) * x(i - 1))
               + W2[2 * i + 1] * sig(w1(2 * i + 1) * x(i) + w1(2 * i + 2) * x(i + 1)))
        np.testing.assert_allclose(h[-1][:, i], out, rtol=1e-13)
