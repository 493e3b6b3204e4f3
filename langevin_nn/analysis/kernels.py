"""Layer kernels on the probe set (physics.md section 7; Poole et al. 2016 Eq. 3-5):

    Sigma^(m)_ab = z^(m)_a . z^(m)_b / N_m,   q^(m)_a = Sigma^(m)_aa,
    c^(m)_ab = Sigma^(m)_ab / sqrt(Sigma^(m)_aa Sigma^(m)_bb)

per replica and recorded entry of ``probe_z``. The probe averages q^(m) = mean_a q^(m)_a and
c^(m) = mean_{a<b} c^(m)_ab are then averaged over replicas with jackknife errors (replicas are
independent). Files are read layer by layer and in replica blocks (never whole).

Shapes: R replicas, S selected entries (zrecords), K probe inputs, M layers (m = 1..M).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import Estimate, jackknife
from .files import block_rows, ensemble, replica_blocks, require

__all__ = ["LayerKernels", "layer_kernels", "kernel_matrices"]


@dataclass(frozen=True)
class LayerKernels:
    """Probe-averaged layer kernels of an ensemble.

    layers (M,) = 1..M; step, time (S,) of the selected entries;
    q_rep, c_rep (R, S, M): per-replica probe averages; q, c: Estimates (S, M) over replicas;
    q_spread (S, M): Var_r(q^(m)_a) / <q^(m)_a>^2 averaged over a, the measured O(1/N) size of
    the finite-width fluctuations (about 2/N for a Gaussian layer), used for systematics;
    finite (R,): replicas with finite kernels at every selected entry (diverged replicas are NaN
    and left out of the estimates).
    """

    layers: np.ndarray
    step: np.ndarray
    time: np.ndarray
    q_rep: np.ndarray
    c_rep: np.ndarray
    q: Estimate
    c: Estimate
    q_spread: np.ndarray
    finite: np.ndarray


def kernel_matrices(source, m: int, *, replicas=slice(None), index=slice(None)) -> np.ndarray:
    """Sigma^(m) (R, S, K, K) of layer m (1..M) for the selected replicas and zrecords."""
    with ensemble(source) as ens:
        require(ens, "probe_z")
        z = np.asarray(ens.read(f"probe_z/z_{m}", replicas=replicas, index=index), dtype=float)
    return np.einsum("...ai,...bi->...ab", z, z) / z.shape[-1]


def layer_kernels(source, *, index=slice(None), replicas=slice(None),
                  budget: float = 128e6) -> LayerKernels:
    """q^(m) and c^(m) on the probe set for every layer and selected zrecord (see module doc).

    index: zrecords (slice, int or array; an int keeps a length-1 entry axis).
    Needs ``probe_z`` (recording.probe_z_every > 0).
    """
    with ensemble(source) as ens:
        require(ens, "probe_z")
        M = len(ens.vars("probe_z"))
        idx = [index] if isinstance(index, (int, np.integer)) else index
        step = np.atleast_1d(ens.read("probe_z/step", index=idx))
        time = np.atleast_1d(ens.read("probe_z/time", index=idx))
        rows = np.arange(len(ens.replicas))[replicas]
        R, S = len(rows), len(step)
        q_rep = np.empty((R, S, M))
        c_rep = np.empty((R, S, M))
        qa_all = []
        for m in range(1, M + 1):
            shape = ens.shape(f"probe_z/z_{m}")
            K, N = shape[2], shape[3]
            qa_m = np.empty((R, S, K))
            for blk in replica_blocks(R, S * K * N * 8.0, budget):
                z = np.asarray(ens.read(f"probe_z/z_{m}", replicas=block_rows(rows, blk), index=idx), dtype=float)
                sig = np.einsum("rsai,rsbi->rsab", z, z) / N
                d = np.diagonal(sig, axis1=2, axis2=3)  # (r, S, K)
                qa_m[blk] = d
                q_rep[blk, :, m - 1] = d.mean(axis=-1)
                if K > 1:
                    iu = np.triu_indices(K, 1)
                    norm = np.sqrt(d[..., iu[0]] * d[..., iu[1]])
                    c_rep[blk, :, m - 1] = (sig[..., iu[0], iu[1]] / norm).mean(axis=-1)
                else:
                    c_rep[blk, :, m - 1] = np.nan
            qa_all.append(qa_m)
    ok = np.all(np.isfinite(q_rep), axis=(1, 2)) & np.all(np.isfinite(c_rep) | (K < 2), axis=(1, 2))
    n = int(ok.sum())
    spread = np.stack([qa[ok].var(axis=0) / qa[ok].mean(axis=0) ** 2 for qa in qa_all],
                      axis=-1).mean(axis=1) if n > 1 else np.full((S, M), np.nan)
    if n > 1:
        q, c = jackknife(q_rep[ok]), jackknife(c_rep[ok])
    else:
        nan = np.full((S, M), np.nan)
        q, c = Estimate(nan, nan), Estimate(nan, nan)
    return LayerKernels(np.arange(1, M + 1), step, time, q_rep, c_rep, q, c, spread, ok)


