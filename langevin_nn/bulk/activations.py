"""The activation catalogue: names, coefficients and runtime codes for the kernels.

    tanh, sigmoid, erf, relu, softplus, identity,
    linear     sigma(x) = p x + q
    quadratic  sigma(x) = p x^2 + q x + r      (SFT example 2)

Each has first and second derivatives in ``langevin_nn.kernels.activations`` (relu'(0) = 0 and
relu'' = 0: the kink's delta function is dropped). ``evaluate`` is the NumPy twin used by the
mean-field theory and the tests.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf, expit as _expit

from ..kernels import activations as _k

CODES = {
    "identity": _k.IDENTITY, "tanh": _k.TANH, "sigmoid": _k.SIGMOID, "erf": _k.ERF,
    "relu": _k.RELU, "linear": _k.LINEAR, "quadratic": _k.QUADRATIC, "softplus": _k.SOFTPLUS,
}
#: activations that take coefficients p, q, r
WITH_COEFFICIENTS = ("linear", "quadratic")


def code_and_params(spec) -> tuple[int, tuple[float, float, float]]:
    """Kernel code and (p, q, r) of an ``ActivationSpec``."""
    return CODES[spec.name], (float(spec.p), float(spec.q), float(spec.r))


def evaluate(spec, x, derivative: int = 0):
    """sigma(x), sigma'(x) or sigma''(x) of an ``ActivationSpec`` on a NumPy array."""
    x = np.asarray(x, dtype=float)
    name, p, q, r = spec.name, spec.p, spec.q, spec.r
    if name == "identity":
        return [x, np.ones_like(x), np.zeros_like(x)][derivative]
    if name == "linear":
        return [p * x + q, np.full_like(x, p), np.zeros_like(x)][derivative]
    if name == "quadratic":
        return [(p * x + q) * x + r, 2 * p * x + q, np.full_like(x, 2 * p)][derivative]
    if name == "tanh":
        t = np.tanh(x)
        return [t, 1 - t * t, -2 * t * (1 - t * t)][derivative]
    if name == "relu":
        return [np.maximum(x, 0.0), (x > 0).astype(float), np.zeros_like(x)][derivative]
    if name == "erf":
        d = 2 / np.sqrt(np.pi) * np.exp(-x * x)
        return [_erf(x), d, -2 * x * d][derivative]
    s = _expit(x)
    if name == "sigmoid":
        return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)][derivative]
    if name == "softplus":
        return [np.logaddexp(0.0, x), s, s * (1 - s)][derivative]
    raise ValueError(f"unknown activation {name!r}")
