"""The predicted stationary covariance of theta on a quadratic cost: the overdamped chain
(discrete Lyapunov equation), its eta -> 0 limit T H^{-1}, and the law of each integrator."""
from __future__ import annotations

import numpy as np
from scipy import linalg

from ..errors import UserError


def _check_stable(H, eta: float) -> np.ndarray:
    w = np.linalg.eigvalsh(H)
    if w[0] <= 0:
        raise UserError(f"the Hessian is not positive definite (lowest eigenvalue {w[0]:.3g}): "
                        "no stationary Gaussian law; expand about a minimum (--at FILE) or set "
                        "dynamics.lambda > 0")
    if eta * w[-1] >= 2:
        raise UserError(f"dynamics.eta: eta = {eta:.4g} >= 2 / lambda_max = {2 / w[-1]:.4g}: "
                        "the overdamped chain is unstable on this Hessian")
    return w


def predicted_covariance(H, eta: float, T: float, steps: int | None = None) -> np.ndarray:
    """Stationary covariance S of theta under the overdamped update theta -> theta - eta H theta
    + sqrt(2 eta T) xi on the quadratic cost 1/2 theta^T H theta (physics.md section 5):

        S = (I - eta H) S (I - eta H)^T + 2 eta T I      (scipy.linalg.solve_discrete_lyapunov)

    mode by mode T / (lambda_i (1 - eta lambda_i / 2)); -> T H^{-1} as eta -> 0. Units: theta^2.
    H (n, n) positive definite, 0 < eta < 2 / lambda_max, T >= 0.
    With ``steps``: the covariance after that many steps from a point start (S_0 = 0, e.g.
    replicas branched from a minimum), S_t = S - A^t S A^t, A = I - eta H.
    """
    H = np.asarray(H, float)
    _check_stable(H, eta)
    n = H.shape[0]
    A = np.eye(n) - eta * H
    S = linalg.solve_discrete_lyapunov(A, 2 * eta * T * np.eye(n))
    S = 0.5 * (S + S.T)
    if steps is not None:
        At = np.linalg.matrix_power(A, int(steps))
        S = S - At @ S @ At.T
    return S


def continuum_covariance(H, T: float) -> np.ndarray:
    """T H^{-1}: the Gibbs covariance of exp(-C/T), the eta -> 0 limit of
    :func:`predicted_covariance` (and BAOAB's configurational covariance at every stable h)."""
    return T * np.linalg.inv(np.asarray(H, float))


def dynamics_covariance(dynamics, H, step: int = 0) -> tuple[np.ndarray, str]:
    """The stationary covariance of theta that the integrator of ``dynamics`` (a
    ``DynamicsConfig``, or a ``Config``) has on the quadratic cost with Hessian H, schedules
    evaluated at ``step``: overdamped -> discrete Lyapunov; underdamped (BAOAB) -> T H^{-1}
    exactly (physics.md section 3); heavy ball -> the (theta, v) Lyapunov equation.
    Returns (S, description)."""
    d = getattr(dynamics, "dynamics", dynamics)
    T = float(d.T.value(step))
    if T <= 0:
        raise UserError("dynamics.T: the two-point prediction needs T > 0 (at T = 0 the "
                        "stationary law is a point)")
    if d.integrator == "overdamped":
        eta = float(d.eta.value(step))
        return predicted_covariance(H, eta, T), f"discrete Lyapunov, eta = {eta:.4g}, T = {T:.4g}"
    if d.integrator == "underdamped":
        _check_stable(H, 0.0)
        return continuum_covariance(H, T), f"T H^-1 (BAOAB, exact for stable h), T = {T:.4g}"
    eta, beta = float(d.eta.value(step)), float(d.beta.value(step))
    _check_stable(H, 0.0)
    n = H.shape[0]
    I = np.eye(n)
    A = np.block([[I - eta * H, beta * I], [-eta * H, beta * I]])
    Q = 2 * (1 - beta) * eta * T * np.block([[I, I], [I, I]])
    if np.max(np.abs(np.linalg.eigvals(A))) >= 1:
        raise UserError(f"dynamics.eta: the heavy-ball chain (eta = {eta:.4g}, beta = {beta:.4g}) "
                        "is unstable on this Hessian")
    S = linalg.solve_discrete_lyapunov(A, Q)[:n, :n]
    return 0.5 * (S + S.T), f"heavy-ball Lyapunov, eta = {eta:.4g}, beta = {beta:.4g}, T = {T:.4g}"
