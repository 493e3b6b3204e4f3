"""theta for the SFT from where it lives: the reference point of the expansion (``zero``, ``init``
or a replica of an ensemble file, :func:`reference_point`) and the samples of an ensemble file
for the two-point comparison (:func:`ensemble_samples`); both check that the file holds the
configuration's network."""
from __future__ import annotations

import numpy as np

from ..bulk.networks import Layout
from ..errors import UserError


def reference_point(spec: str, cfg, layout: Layout, replica: int = 0) -> tuple[np.ndarray, dict]:
    """theta0 from ``zero``, ``init`` (replica ``replica``'s initial parameters, INIT stream)
    or ``FILE[:snapshot]`` (the final state, or snapshot k, of replica ``replica`` of an
    ensemble file with the same network). Returns (theta0, description)."""
    if spec == "zero":
        return np.zeros(layout.n_par), {"kind": "zero"}
    if spec == "init":
        from ..kernels import streams
        from ..kernels.ensemble import init_params

        th = np.zeros((1, layout.n_par))
        init_params(layout.init_std, np.uint64(cfg.ensemble.seed), streams.INIT,
                    np.array([replica], np.int64), th)
        return th[0], {"kind": "init", "replica": replica, "seed": cfg.ensemble.seed}
    from ..store import open_ensemble

    path, snap = spec, None
    if ":" in spec and not _exists(spec):
        head, _, tail = spec.rpartition(":")
        try:
            snap = int(tail)
            path = head
        except ValueError:
            pass
    with open_ensemble(path) as ens:
        _check_same_network(ens, layout, path)
        reps = list(ens.replicas)
        if replica not in reps:
            raise UserError(f"--replica: {path} has no replica {replica} (it holds {len(reps)})")
        row = reps.index(replica)
        if snap is None:
            theta = np.asarray(ens.state()["theta"][row], float)
            desc = {"kind": "file", "file": str(path), "replica": replica, "at": "final",
                    "step": int(ens.steps_done)}
        else:
            if "snapshots" not in ens.groups():
                raise UserError(f"--at: {path} has no snapshots (recording.snapshot_every = 0)")
            n = ens.shape("snapshots/step")[0]
            if not -n <= snap < n:
                raise UserError(f"--at: snapshot {snap} out of range ({n} snapshots in {path})")
            theta = np.asarray(ens.read("snapshots/theta", replicas=[row],
                                        index=snap % n)[0], float)
            desc = {"kind": "file", "file": str(path), "replica": replica, "at": snap % n,
                    "step": int(ens.read("snapshots/step")[snap % n])}
    if not np.all(np.isfinite(theta)):
        raise UserError(f"--at: replica {replica} of {path} is not finite (diverged?)")
    return theta, desc


def ensemble_samples(path, layout: Layout, snapshots_from: int | None = None):
    """theta samples of an ensemble file for :func:`compare_two_point`: the committed final
    state (R, n_par), or with ``snapshots_from`` = k the snapshots k.. of every replica
    (R, S, n_par). Diverged replicas are dropped. Returns (samples, info dict)."""
    from ..store import open_ensemble

    with open_ensemble(path) as ens:
        _check_same_network(ens, layout, path)
        st = ens.state()
        ok = ~np.asarray(st.get("diverged", np.zeros(len(ens.replicas), bool)), bool)
        if snapshots_from is None:
            X = np.asarray(st["theta"], float)[ok]
            info = {"file": str(path), "step": int(ens.steps_done), "samples": "final state"}
        else:
            if "snapshots" not in ens.groups():
                raise UserError(f"--snapshots: {path} has no snapshots "
                                "(recording.snapshot_every = 0)")
            n = ens.shape("snapshots/step")[0]
            k = snapshots_from % n if -n <= snapshots_from < n else None
            if k is None:
                raise UserError(f"--snapshots: {snapshots_from} out of range ({n} snapshots)")
            X = np.asarray(ens.read("snapshots/theta", index=slice(k, None)), float)[ok]
            steps = ens.read("snapshots/step")[k:]
            info = {"file": str(path), "step": int(steps[-1]),
                    "samples": f"snapshots {k}..{n - 1} (steps {int(steps[0])}..{int(steps[-1])})"}
        info["replicas"] = int(ok.sum())
        info["diverged"] = int((~ok).sum())
        info["config_effective"] = ens.config_effective
    if not np.all(np.isfinite(X)):
        raise UserError(f"{path}: non-finite parameters in the samples")
    return X, info


def _exists(path) -> bool:
    import os

    return os.path.exists(path)


def _check_same_network(ens, layout: Layout, path) -> None:
    widths = tuple(int(w) for w in ens.read("network/widths"))
    n_par = ens.shape("state/slot0/theta")[-1]
    same = widths == layout.widths and n_par == layout.n_par
    if same and "network/conn_w" in _statics(ens):
        same = np.array_equal(ens.read("network/conn_w"), layout.arrays.conn_w)
    if not same:
        raise UserError(f"{path}: holds a different network (widths {list(widths)}, "
                        f"{n_par} parameters; CONFIG has {list(layout.widths)}, {layout.n_par})")


def _statics(ens) -> set[str]:
    try:
        return {f"network/{k}" for k in ens.vars("network")}
    except Exception:  # noqa: BLE001 - an older reader without vars() on static groups
        return set()
