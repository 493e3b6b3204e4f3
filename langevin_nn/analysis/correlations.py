"""Two-point functions along depth and width (physics.md section 7).

* Connected depth two-point function of a layer scalar O_m (q^(m), c^(m), |W^(m)|^2, the BBD terms):

      G_O(m, m') = <O_m O_m'> - <O_m><O_m'>

  with <> over replicas; when O carries extra sample axes (records, probe inputs) the connected
  function is formed per sample and then averaged over samples. Jackknife over replicas.

* For the local architecture, the field two-point function averaged over the width (translation
  invariance along y, periodic):

      C(m, m', dy) = (1/N) sum_y [ <z^(m)(y) z^(m')(y+dy)> - <z^(m)(y)><z^(m')(y+dy)> ]

  for the pre-activations z (per probe input, then averaged over inputs), for the weight field
  W^(m)(y, o) (the synaptic field of SFT; the 2k+1 offsets o are summed: a trace over the
  internal index) and for its time differences D W = (W_{s+1} - W_s) / (t_{s+1} - t_s) between
  consecutive snapshots. Computed with FFTs along y.

* The structure factor along the width, S(m, k) = sum_dy C(m, m, dy) e^{-i k dy}
  = (1/N) <|delta z~^(m)(k)|^2>, k = 2 pi n / N.

* Linear CKA between layers (Kornblith et al. 2019, Eq. 5; dense networks), per replica on the
  probe set from centred Gram matrices, averaged over replicas:

      CKA(m, m') = <K~_m, K~_m'>_F / (|K~_m|_F |K~_m'|_F),   K~ = H K H,  K = X X^T,  H = 1 - 11^T/K

Shapes: R replicas, M layers (or links), N width, K probe inputs, S entries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import Estimate, jackknife, jackknife_of_means, propagate
from .files import ensemble, replica_blocks, require
from .forward import StoredNetwork
from ..errors import UserError

__all__ = [
    "connected_two_point", "depth_two_point", "layer_scalar", "translation_average",
    "field_two_point", "field_correlator", "structure_factor", "cka_matrix", "cka",
    "FieldCorrelator",
]


# --------------------------------------------------------------------------------------------
# Depth two-point functions of layer scalars


def connected_two_point(O: np.ndarray) -> Estimate:
    """G(m, m') = <O_m O_m'> - <O_m><O_m'> over replicas (axis 0) of O (R, M, *samples),
    per sample then averaged over the sample axes. Returns an Estimate (M, M) with jackknife
    replicates (O(R) work: a function of replica means)."""
    O = np.asarray(O, dtype=float)
    R, M = O.shape[:2]
    flat = O.reshape(R, M, -1)  # (R, M, A)
    prod = np.einsum("rma,rna->rmna", flat, flat)

    def conn(P, mean):
        return (P - mean[..., :, None, :] * mean[..., None, :, :]).mean(axis=-1)

    return jackknife_of_means(conn, prod, flat)


def translation_average(G: Estimate, window: tuple[int, int] | None = None,
                        r_max: int | None = None) -> Estimate:
    """G(r) = mean over m of G(m, m + r), m and m + r inside ``window`` = (lo, hi) (indices into
    G's axes, inclusive; default everything), r = 0..r_max. Jackknife replicates propagate."""
    M = np.shape(G.value)[0]
    lo, hi = window if window is not None else (0, M - 1)
    r_max = hi - lo if r_max is None else min(r_max, hi - lo)

    def avg(g):
        return np.array([np.mean([g[m, m + r] for m in range(lo, hi - r + 1)])
                         for r in range(r_max + 1)])

    if G.jackknife is not None:
        return propagate(avg, G)
    err = np.array([np.sqrt(np.mean([np.asarray(G.error)[m, m + r] ** 2
                                     for m in range(lo, hi - r + 1)])) for r in range(r_max + 1)])
    return Estimate(avg(np.asarray(G.value)), err)


def layer_scalar(source, name: str, *, index=slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """A per-replica layer scalar O (R, S, M) and its layer labels (M,).

    name: ``"q"`` or ``"c"`` (probe-averaged layer kernels from probe_z; layers 1..M), or a
    records variable with a ``link`` or ``layer`` axis (``"w_norm2"``, ``"b_norm2"``, BBD terms;
    ``records/`` may be given). Missing data -> UserError naming the switch.
    """
    from .kernels import layer_kernels

    with ensemble(source) as ens:
        if name in ("q", "c"):
            lk = layer_kernels(ens, index=index)
            return (lk.q_rep if name == "q" else lk.c_rep), lk.layers
        var = name.split("/", 1)[1] if name.startswith("records/") else name
        require(ens, f"records/{var}")
        cad = {c.group: c for c in ens.schema.cadences}["records"]
        dims = next(v.dims for v in cad.vars if v.name == var)
        if len(dims) != 1:
            raise UserError(f"{ens.path}: records/{var} is not a layer scalar (dimensions {dims})")
        idx = [index] if isinstance(index, (int, np.integer)) else index
        O = np.asarray(ens.read(f"records/{var}", index=idx), dtype=float)
        labels = np.asarray(ens.read(f"records/{dims[0]}"))
    return O, labels


def depth_two_point(source, name: str, *, index=-1) -> tuple[Estimate, np.ndarray]:
    """G_O(m, m') of the layer scalar ``name`` (see :func:`layer_scalar`) at the selected entries
    (averaged over them when ``index`` selects several): (Estimate (M, M), layer labels)."""
    O, labels = layer_scalar(source, name, index=index)
    return connected_two_point(np.moveaxis(O, 1, -1)), labels


# --------------------------------------------------------------------------------------------
# Field two-point functions along the width (local architecture)


def _xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(1/N) sum_y a(y) b(y + dy) along the last axis, for dy = 0..N-1 (periodic)."""
    N = a.shape[-1]
    return np.fft.irfft(np.conj(np.fft.rfft(a, axis=-1)) * np.fft.rfft(b, axis=-1), n=N, axis=-1) / N


def field_two_point(a: np.ndarray, b: np.ndarray) -> Estimate:
    """C(dy) = (1/N) sum_y [<a(y) b(y+dy)> - <a(y)><b(y+dy)>] of fields a, b (R, *samples, N),
    connected per sample, averaged over the sample axes: Estimate (N,) with jackknife replicates."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    R, N = a.shape[0], a.shape[-1]
    a = a.reshape(R, -1, N)
    b = b.reshape(R, -1, N)
    x = _xcorr(a, b)

    def conn(xm, am, bm):
        return (xm - _xcorr(am, bm)).mean(axis=-2)

    return jackknife_of_means(conn, x, a, b)


@dataclass(frozen=True)
class FieldCorrelator:
    """C(m, m', dy) of one field: ``C`` Estimate (M, M, N) with jackknife replicates,
    ``labels`` (M,) the layers (z) or links (W, D W), ``kind``, ``dy`` = 0..N-1."""

    kind: str
    labels: np.ndarray
    C: Estimate

    @property
    def dy(self) -> np.ndarray:
        return np.arange(np.shape(self.C.value)[-1])


def _local_weights(ens, net: StoredNetwork, index) -> np.ndarray:
    """Untied local weight fields W (R, S, M links, N, 2k+1) from the snapshots."""
    a = net.arrays
    if net.architecture != "local" or np.any(a.kind == 0):
        raise UserError(f"{ens.path}: the weight field needs the local architecture "
                        f"(this file holds a {net.architecture} network)")
    N, F = int(a.widths[1]), int(a.fan[0])
    if int(a.w_size[0]) != N * F:
        raise UserError(f"{ens.path}: the weight field needs untied local weights "
                        "(network.tied = false); a tied network has one weight per offset")
    require(ens, "snapshots")
    th = np.asarray(ens.read("snapshots/theta", index=index), dtype=float)  # (R, S, n_par)
    return np.stack([th[..., int(a.w_off[m]): int(a.w_off[m]) + N * F].reshape(th.shape[:2] + (N, F))
                     for m in range(net.depth)], axis=2)


def field_correlator(source, kind: str = "z", *, index=-1, budget: float = 128e6) -> FieldCorrelator:
    """C(m, m', dy) for the local architecture, for ``kind`` = "z" (probe pre-activations at the
    selected zrecords, samples = probe inputs x entries), "w" (weight field at the selected
    snapshots) or "dw" (its time differences between consecutive snapshots: ``index`` selects
    the earlier snapshot of each pair; default the last pair)."""
    with ensemble(source) as ens:
        net = StoredNetwork.from_ensemble(ens)
        if net.architecture != "local":
            raise UserError(f"{ens.path}: C(m, m', dy) is for the local architecture "
                            f"(this file holds a {net.architecture} network); use depth_two_point")
        idx = [index] if isinstance(index, (int, np.integer)) else index
        if kind == "z":
            require(ens, "probe_z")
            M = net.depth
            fields = [np.asarray(ens.read(f"probe_z/z_{m}", index=idx), dtype=float)
                      for m in range(1, M + 1)]  # (R, S, K, N)
            labels = np.arange(1, M + 1)
        elif kind in ("w", "dw"):
            if kind == "dw":
                require(ens, "snapshots")
                n = ens.entries["snapshots"]
                if n < 2:
                    raise UserError(f"{ens.path}: D W needs two snapshots or more (found {n}); "
                                    "lower recording.snapshot_every or run longer")
                first = np.atleast_1d(np.arange(n - 1)[index])
                W0 = _local_weights(ens, net, first)
                W1 = _local_weights(ens, net, first + 1)
                t = np.asarray(ens.read("snapshots/time"))
                dt = (t[first + 1] - t[first])[None, :, None, None, None]
                W = (W1 - W0) / dt
            else:
                W = _local_weights(ens, net, idx)
            fields = [np.moveaxis(W[:, :, m], -1, -2) for m in range(net.depth)]  # (R, S, F, N)
            labels = np.arange(net.depth)
        else:
            raise ValueError(f"kind must be 'z', 'w' or 'dw', not {kind!r}")
    ok = np.all([np.all(np.isfinite(f.reshape(f.shape[0], -1)), axis=1) for f in fields], axis=0)
    if ok.sum() < 2:
        raise UserError(f"{ens.path}: fewer than two replicas with finite fields (diverged "
                        "replicas are left out)")
    fields = [f[ok] for f in fields]
    M = len(fields)
    R, N = fields[0].shape[0], fields[0].shape[-1]
    trace = kind != "z"  # weights: sum over the 2k+1 offsets (a trace), z: average over inputs
    value = np.empty((M, M, N))
    reps = np.empty((R, M, M, N))
    for i in range(M):
        for j in range(M):
            e = field_two_point(fields[i], fields[j])
            scale = fields[i].shape[-2] if trace else 1.0
            value[i, j] = np.asarray(e.value) * scale
            reps[:, i, j] = e.jackknife * scale
    from .errors import jackknife_error

    return FieldCorrelator(kind, labels, Estimate(value, jackknife_error(reps), jackknife=reps))


def structure_factor(C: Estimate) -> tuple[np.ndarray, Estimate]:
    """S(m, k) = sum_dy C(m, m, dy) e^{-i k dy} (real part) from C (M, M, N): (k (N,), Estimate (M, N))."""
    N = np.shape(C.value)[-1]

    def sf(c):
        diag = np.diagonal(c, axis1=-3, axis2=-2)  # (..., N, M)
        return np.real(np.fft.fft(np.moveaxis(diag, -1, -2), axis=-1))

    k = 2 * np.pi * np.arange(N) / N
    if C.jackknife is not None:
        return k, propagate(sf, C)
    return k, Estimate(sf(np.asarray(C.value)), np.full((np.shape(C.value)[0], N), np.nan))


# --------------------------------------------------------------------------------------------
# CKA


def cka_matrix(reps: list[np.ndarray]) -> np.ndarray:
    """Linear CKA between representations [(K, N_m)] of one replica: (M, M) (NaN if any is)."""
    K = reps[0].shape[0]
    H = np.eye(K) - 1.0 / K
    grams = [H @ (x @ x.T) @ H for x in reps]
    norms = np.array([np.linalg.norm(g) for g in grams])
    G = np.array([[np.sum(a * b) for b in grams] for a in grams])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return G / np.outer(norms, norms)


def cka(source, *, index=-1, representation: str = "z", budget: float = 128e6) -> tuple[Estimate, np.ndarray]:
    """Linear CKA between the layers of a dense network on the probe set at zrecord ``index``:
    representation "z" (pre-activations) or "h" (activations sigma(z)); per replica, then the
    replica mean with jackknife errors. Returns (Estimate (M, M), layers 1..M)."""
    from ..bulk.activations import evaluate

    with ensemble(source) as ens:
        require(ens, "probe_z")
        net = StoredNetwork.from_ensemble(ens)
        M = len(ens.vars("probe_z"))
        R = len(ens.replicas)
        K = ens.shape("probe_z/z_1")[2]
        path = ens.path
        per = np.empty((R, M, M))
        width = sum(ens.shape(f"probe_z/z_{m}")[3] for m in range(1, M + 1))
        for blk in replica_blocks(R, K * width * 8.0, budget):
            zs = [np.asarray(ens.read(f"probe_z/z_{m}", replicas=blk, index=index), dtype=float)
                  for m in range(1, M + 1)]
            if representation == "h":
                zs = [evaluate(net.activation(m), z) for m, z in zip(range(1, M + 1), zs)]
            for r in range(zs[0].shape[0]):
                per[blk.start + r] = cka_matrix([z[r] for z in zs])
    ok = np.all(np.isfinite(per), axis=(1, 2))  # diverged replicas are left out
    if ok.sum() < 2:
        raise UserError(f"{path}: fewer than two replicas with finite pre-activations")
    return jackknife(per[ok]), np.arange(1, M + 1)
