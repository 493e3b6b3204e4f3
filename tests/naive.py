"""Slow, obvious NumPy references for the kernels (the stumpy habit: every kernel has a twin here).

Networks are rebuilt as full weight matrices from the layout tables, so this file shares no
indexing code with the kernels beyond the layout arrays themselves.
"""
from __future__ import annotations

import numpy as np


from langevin_nn.boundary import losses
from langevin_nn.bulk.activations import evaluate


def weight_matrices(layout, theta):
    """Full W^(m) (N_{m+1} x N_m) and b^(m) (zeros without biases) for every link."""
    a = layout.arrays
    Ws, bs = [], []
    for m in range(layout.depth):
        n_in, n_out = layout.widths[m], layout.widths[m + 1]
        w = theta[layout.w_slice(m)]
        if a.kind[m] == 0:
            W = w.reshape(n_out, n_in).copy()
        else:
            F = a.fan[m]
            ci = a.conn_in[a.tab_off[m]: a.tab_off[m] + n_out * F].reshape(n_out, F)
            cw = a.conn_w[a.tab_off[m]: a.tab_off[m] + n_out * F].reshape(n_out, F)
            W = np.zeros((n_out, n_in))
            for i in range(n_out):
                for f in range(F):
                    W[i, ci[i, f]] += w[cw[i, f]]
        Ws.append(W)
        bsl = layout.b_slice(m)
        bs.append(theta[bsl] if bsl is not None else np.zeros(n_out))
    return Ws, bs


def forward(net_cfg, layout, theta, X):
    """Pre-activations z^(1..M) and activations h^(0..M) for inputs X (n, N_0)."""
    Ws, bs = weight_matrices(layout, theta)
    h = [np.asarray(X, float)]
    zs = []
    for m, (W, b) in enumerate(zip(Ws, bs)):
        z = h[-1] @ W.T + b
        zs.append(z)
        spec = net_cfg.output_activation if m == layout.depth - 1 else net_cfg.activation
        h.append(evaluate(spec, z))
    return zs, h


def loss_value(net_cfg, layout, theta, X, Y, loss, reduction="mean"):
    """The minibatch cost: mean or sum over samples of the per-sample loss."""
    _, h = forward(net_cfg, layout, theta, X)
    per = losses.loss(loss, h[-1], Y)
    return per.mean() if reduction == "mean" else per.sum()


def gradient(net_cfg, layout, theta, X, Y, loss, reduction="mean"):
    """d cost / d theta by explicit back-propagation with full matrices."""
    Ws, _ = weight_matrices(layout, theta)
    zs, h = forward(net_cfg, layout, theta, X)
    scale = 1.0 / X.shape[0] if reduction == "mean" else 1.0
    g = np.zeros_like(theta)
    a = layout.arrays
    delta = losses.loss_grad(loss, h[-1], Y) * scale
    for m in range(layout.depth - 1, -1, -1):
        spec = net_cfg.output_activation if m == layout.depth - 1 else net_cfg.activation
        delta = delta * evaluate(spec, zs[m], 1)
        dW = delta.T @ h[m]
        if a.kind[m] == 0:
            g[layout.w_slice(m)] += dW.ravel()
        else:
            n_out = layout.widths[m + 1]
            F = a.fan[m]
            ci = a.conn_in[a.tab_off[m]: a.tab_off[m] + n_out * F].reshape(n_out, F)
            cw = a.conn_w[a.tab_off[m]: a.tab_off[m] + n_out * F].reshape(n_out, F)
            gw = np.zeros(a.w_size[m])
            np.add.at(gw, cw, dW[np.arange(n_out)[:, None], ci])
            g[layout.w_slice(m)] += gw
        bsl = layout.b_slice(m)
        if bsl is not None:
            g[bsl] += delta.sum(axis=0)
        delta = delta @ Ws[m]
    return g


def sgd_reference(net_cfg, layout, theta0, X, Y, loss, reduction, eta, steps, batch, seed,
                  replica, lam=0.0):
    """Plain T = 0 SGD, step by step: minibatch indices from the NumPy twin of the BATCH
    stream (batch None: the full set in order). Returns the parameters after each step."""
    from langevin_nn import rng

    theta = np.array(theta0, float)
    out = []
    P = X.shape[0]
    for s in range(steps):
        idx = np.arange(P) if batch is None else rng.indices(seed, rng.BATCH, replica, s, batch, P)
        g = gradient(net_cfg, layout, theta, X[idx], Y[idx], loss, reduction) + lam * theta
        theta = theta - eta * g
        out.append(theta.copy())
    return np.array(out)
