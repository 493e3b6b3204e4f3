"""Activation functions by runtime code, with first and second derivatives.

Codes (``langevin_nn.bulk.activations`` owns the names): 0 identity, 1 tanh, 2 sigmoid, 3 erf,
4 relu, 5 linear ``p x + q``, 6 quadratic ``p x^2 + q x + r``, 7 softplus.
Convention at the relu kink: relu'(0) = 0 and relu'' = 0 everywhere (the distributional delta
at 0 is dropped), so finite-difference checks are made away from x = 0.
"""
from __future__ import annotations

import math

from .options import jit

IDENTITY, TANH, SIGMOID, ERF, RELU, LINEAR, QUADRATIC, SOFTPLUS = range(8)
_TWO_OVER_SQRT_PI = 1.1283791670955126


@jit
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@jit
def act_fwd(code, p, q, r, x):
    """Return ``(sigma(x), sigma'(x))`` for activation ``code`` with coefficients p, q, r."""
    if code == TANH:
        t = math.tanh(x)
        return t, 1.0 - t * t
    if code == IDENTITY:
        return x, 1.0
    if code == RELU:
        if x > 0.0:
            return x, 1.0
        return 0.0 * x, 0.0
    if code == LINEAR:
        return p * x + q, p
    if code == QUADRATIC:
        return (p * x + q) * x + r, 2.0 * p * x + q
    if code == SIGMOID:
        s = _sigmoid(x)
        return s, s * (1.0 - s)
    if code == ERF:
        return math.erf(x), _TWO_OVER_SQRT_PI * math.exp(-x * x)
    # SOFTPLUS: log(1 + e^x), computed without overflow
    s = _sigmoid(x)
    return max(x, 0.0) + math.log1p(math.exp(-abs(x))), s


@jit
def act_d2(code, p, q, r, x):
    """Second derivative ``sigma''(x)`` (mean-field theory and BBD checks)."""
    if code == TANH:
        t = math.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if code == QUADRATIC:
        return 2.0 * p
    if code == SIGMOID or code == SOFTPLUS:
        s = _sigmoid(x)
        d = s * (1.0 - s)
        if code == SOFTPLUS:
            return d
        return d * (1.0 - 2.0 * s)
    if code == ERF:
        return -2.0 * x * _TWO_OVER_SQRT_PI * math.exp(-x * x)
    return 0.0  # identity, linear, relu
