"""The closed forms of the SFT examples: example 1 (Eq. 13) and example 2 (Eq. 18) at W = 0."""
from __future__ import annotations

import numpy as np


def sft1_closed_form(X, Y, p: float = 1.0, q: float = 0.0, scale: float = 1.0,
                     lam: float = 0.0) -> dict:
    """SFT example 1 (Eq. 13) in closed form: C = s sum_l sum_i (Y_i - p u_i - q)^2 + lam/2 |W|^2,
    u_i = W_{2i} X_{i-1} + W_{2i+1} X_i (input i is the paper's X_{2i+1}, output i its Y_{2i}).

    X, Y (P, N). With S^{ab}_i = sum_l a b over the data and Yq = Y - q:

        H_{2i,2i} = 2 p^2 s S^{X_{i-1} X_{i-1}} + lam,  H_{2i+1,2i+1} = 2 p^2 s S^{X_i X_i} + lam,
        H_{2i,2i+1} = 2 p^2 s S^{X_{i-1} X_i},           H_{2i+1,2i+2} = 0,
        K_{2i} = -2 p^2 s S^{X_{i-1} X_i},  K_{2i+1} = 0                        (dimers)
        J_{2i} = 2 p^2 s (S^{X_{i-1} X_{i-1}} + S^{X_{i-1} X_i}) + lam,
        J_{2i+1} = 2 p^2 s (S^{X_i X_i} + S^{X_{i-1} X_i}) + lam,
        g_{2i} = 2 p s S^{Yq_i X_{i-1}},  g_{2i+1} = 2 p s S^{Yq_i X_i},  c = s S^{Yq Yq}

    for C = 1/2 W^T H W - g^T W + c. Returns a dict of H (2N, 2N), g, c, J, K (2N,).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    N = X.shape[1]
    Xm = np.roll(X, 1, axis=1)  # X_{i-1}
    Yq = Y - q
    s_mm, s_00, s_m0 = (Xm * Xm).sum(0), (X * X).sum(0), (Xm * X).sum(0)
    c2 = 2 * p * p * scale
    i = np.arange(N)
    H = np.zeros((2 * N, 2 * N))
    H[2 * i, 2 * i] = c2 * s_mm + lam
    H[2 * i + 1, 2 * i + 1] = c2 * s_00 + lam
    H[2 * i, 2 * i + 1] = H[2 * i + 1, 2 * i] = c2 * s_m0
    g = np.zeros(2 * N)
    g[2 * i] = 2 * p * scale * (Yq * Xm).sum(0)
    g[2 * i + 1] = 2 * p * scale * (Yq * X).sum(0)
    K = np.zeros(2 * N)
    K[2 * i] = -c2 * s_m0
    J = np.zeros(2 * N)
    J[2 * i] = c2 * (s_mm + s_m0) + lam
    J[2 * i + 1] = c2 * (s_00 + s_m0) + lam
    return {"H": H, "g": g, "c": float(scale * (Yq * Yq).sum()), "J": J, "K": K}


def sft2_closed_form_at_zero(X, Y, p: float, q: float, r: float, scale: float = 1.0) -> dict:
    """SFT example 2 (Eq. 18, typo corrected; layout of ``langevin_nn.bulk.networks``) expanded
    at W = 0, sigma(x) = p x^2 + q x + r, MSE, lambda = 0. Hidden u = sigma(W1_{2u-1} X_{u-1} +
    W1_{2u} X_u), Z_i = W2_{2i} u_i + W2_{2i+1} u_{i+1}. With P samples and s the scale:

        C0 = s sum Y^2;  dC/dW2_{2i} = dC/dW2_{2i+1} = -2 r s sum_l Y_i;  dC/dW1 = 0
        H[w2, w2]: 2 s P r^2 on (2i, 2i), (2i+1, 2i+1), (2i, 2i+1): dimers, K_{2i} = -2 s P r^2,
                   K_{2i+1} = 0, J = 4 s P r^2 on every site: the mass m^2 a = 4 s P r^2
        H[w1, w1] = 0 (no mass: w_1 couples to the output only through W2 = 0)
        H[w1_{2i-1}, w2_{2i}] = -2 q s sum Y_i X_{i-1},  H[w1_{2i}, w2_{2i}] = -2 q s sum Y_i X_i,
        H[w1_{2i+1}, w2_{2i+1}] = -2 q s sum Y_i X_i,    H[w1_{2i+2}, w2_{2i+1}] = -2 q s sum Y_i X_{i+1}

    (p enters only at third order). Returns dict of value, grad (4N,), H (4N, 4N) with theta =
    (W1, W2).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    P, N = X.shape
    n = 2 * N
    i = np.arange(N)
    H = np.zeros((2 * n, 2 * n))
    w2 = n + np.arange(n)
    H[w2[2 * i], w2[2 * i]] = H[w2[2 * i + 1], w2[2 * i + 1]] = 2 * scale * P * r * r
    H[w2[2 * i], w2[2 * i + 1]] = H[w2[2 * i + 1], w2[2 * i]] = 2 * scale * P * r * r
    sy = Y.sum(0)
    YX = lambda shift: (Y * np.roll(X, shift, axis=1)).sum(0)  # noqa: E731  sum_l Y_i X_{i-shift}
    pairs = [((2 * i - 1) % n, 2 * i, YX(1)), (2 * i, 2 * i, YX(0)),
             (2 * i + 1, 2 * i + 1, YX(0)), ((2 * i + 2) % n, 2 * i + 1, YX(-1))]
    for a1, b2, v in pairs:
        H[a1, n + b2] = H[n + b2, a1] = -2 * q * scale * v
    grad = np.zeros(2 * n)
    grad[n + 2 * i] = grad[n + 2 * i + 1] = -2 * r * scale * sy
    return {"value": float(scale * (Y * Y).sum()), "grad": grad, "H": H}
