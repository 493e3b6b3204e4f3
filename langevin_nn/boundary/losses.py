"""The output boundary: the losses of BBD Table I by name, with kernel codes and a NumPy twin.

    mse            l = sum_i (Z_i - Y_i)^2           (no 1/2, the papers' convention)
    cross_entropy  l = -sum_i p_i log q_i,  q = softmax(Z)
    kl             l = sum_i p_i log(p_i / q_i)
    hinge          l = max(0, 1 - Z Y)                (scalar output, Y = +-1; dl/dZ = 0 at the kink)

A minibatch of B samples uses the mean over samples (reduction ``mean``) or the plain sum
(``sum``; the SFT cost, SFT Eq. 2, is ``sum`` with ``batch = "full"``). Recorded losses
(``loss_batch``, ``loss_train``, ``loss_probe``) are always the mean per sample.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax

from ..kernels import losses as _k

CODES = {"mse": _k.MSE, "cross_entropy": _k.CROSS_ENTROPY, "kl": _k.KL, "hinge": _k.HINGE}


def loss(name: str, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per-sample loss, NumPy twin of the kernel. Z, Y: (n, N_M) -> (n,)."""
    if name == "mse":
        return np.sum((Z - Y) ** 2, axis=-1)
    if name == "hinge":
        return np.maximum(0.0, 1.0 - Z[..., 0] * Y[..., 0])
    ls = log_softmax(Z, axis=-1)
    out = -np.sum(Y * ls, axis=-1)
    if name == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):
            out = out + np.sum(np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0), axis=-1)
    return out


def loss_grad(name: str, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """dl/dZ per sample (n, N_M), NumPy twin of the kernel."""
    if name == "mse":
        return 2.0 * (Z - Y)
    if name == "hinge":
        return np.where(1.0 - Z * Y > 0.0, -Y, 0.0)
    return softmax(Z, axis=-1) * Y.sum(axis=-1, keepdims=True) - Y


def target_map(name: str, Zt: np.ndarray) -> np.ndarray:
    """Targets from a teacher's output (label noise included): identity for MSE, softmax for
    cross-entropy and KL, sign (+1 at 0) for hinge."""
    if name == "mse":
        return Zt.copy()
    if name == "hinge":
        return np.where(Zt >= 0.0, 1.0, -1.0)
    return softmax(Zt, axis=-1)
