"""The empirical neural tangent kernel on the probe set and its drift during training.

    Theta_t(a, b) = sum_o sum_p dZ_o(X_a; theta_t)/dtheta_p dZ_o(X_b; theta_t)/dtheta_p
    drift(t)      = |Theta_t - Theta_0|_F / |Theta_0|_F

per replica at each recorded snapshot (Jacot et al. 2018; the constant-NTK assumption behind the
Krippendorf-Spannowsky duality discussed in SFT), then averaged over replicas with jackknife
errors. The Jacobian is computed by back-propagation in NumPy (``analysis.forward``).

Shapes: R replicas, S snapshots, K probe inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import Estimate, jackknife
from ..errors import UserError
from .files import ensemble, replica_blocks, require
from .forward import StoredNetwork

__all__ = ["NTKDrift", "ntk_drift"]


@dataclass(frozen=True)
class NTKDrift:
    """step, time (S,) of the snapshots; drift: Estimate (S,) of |Theta_t - Theta_0| / |Theta_0|
    (0 at the first snapshot); trace: Estimate (S,) of tr Theta_t / K; theta_mean (S, K, K):
    the replica-mean NTK; drift_rep (R', S) of the R' replicas with finite parameters."""

    step: np.ndarray
    time: np.ndarray
    drift: Estimate
    trace: Estimate
    theta_mean: np.ndarray
    drift_rep: np.ndarray

    def to_dict(self) -> dict:
        return {"step": [int(s) for s in self.step], "time": [float(t) for t in self.time],
                "drift": self.drift.to_dict(), "trace_over_K": self.trace.to_dict()}


def ntk_drift(source, *, index=slice(None), budget: float = 256e6) -> NTKDrift:
    """Empirical NTK of every replica at the selected snapshots (the first selected one is the
    reference Theta_0) and its relative drift. Needs ``snapshots`` (recording.snapshot_every > 0)."""
    with ensemble(source) as ens:
        require(ens, "snapshots")
        net = StoredNetwork.from_ensemble(ens)
        X = np.asarray(ens.read("data/X_probe"), dtype=float)
        step = np.atleast_1d(ens.read("snapshots/step", index=index))
        time = np.atleast_1d(ens.read("snapshots/time", index=index))
        idx = np.arange(ens.entries["snapshots"])[index]
        idx = np.atleast_1d(idx)
        R, S, K = len(ens.replicas), len(idx), X.shape[0]
        n_par = ens.shape("snapshots/theta")[-1]
        path = ens.path
        ntk = np.empty((R, S, K, K))
        for blk in replica_blocks(R, S * n_par * 8.0, budget):
            th = np.asarray(ens.read("snapshots/theta", replicas=blk, index=idx), dtype=float)
            for i in range(th.shape[0]):
                for s in range(S):
                    ntk[blk.start + i, s] = net.ntk(th[i, s], X)
    ok = np.all(np.isfinite(ntk), axis=(1, 2, 3))  # diverged replicas are left out
    if ok.sum() < 2:
        raise UserError(f"{path}: fewer than two replicas with finite parameters at every snapshot")
    ntk = ntk[ok]
    ref = np.linalg.norm(ntk[:, :1], axis=(2, 3))
    drift = np.linalg.norm(ntk - ntk[:, :1], axis=(2, 3)) / ref
    trace = np.trace(ntk, axis1=2, axis2=3) / K
    return NTKDrift(step, time, jackknife(drift), jackknife(trace), ntk.mean(axis=0), drift)
