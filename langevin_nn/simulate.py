"""The chunk loop: kernels -> records -> writer, with checkpoints and signals.

``run()`` in pseudocode::

    config -> layout (bulk) + boundary data (validated)      # bad input stops here: no file
    writer = create the output file (schema, config, data)   # before any compilation
    state  = initial parameters (INIT stream) or a branch from another file
    record the initial state (step 0)
    while step < steps and no stop signal:
        table  = schedules for steps [step, step + chunk]     # eta, T, gamma, beta, lambda, dt, t
        kernel = advance every replica by chunk steps, recording in place
        writer.append(records); checkpoint every `checkpoint_every` s of wall time
    checkpoint; close

Nothing happens per step in Python. The chunk length adapts to aim at about half a second per
kernel call; the data do not depend on it (every random number is a function of the step).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import __version__
from .bbd import BBD_LINK as _BBD_LINK, BBD_STATE as _BBD_STATE, BBD_TOT as _BBD_TOT
from .bbd import bbd_vars as _bbd_vars
from .boundary import losses
from .boundary.sources import BoundaryData, build_boundary
from .bulk.networks import Layout, build_layout
from .dynamics import HEAVY_BALL, UNDERDAMPED, Schedules
from .errors import UserError
from .kernels import streams
from .kernels.ensemble import (
    BETA, ETA, GAMMA, Boundary, Dyn, Rec, ReplicaBlocks, State, init_params,
)
from .store import Cadence, HDF5Writer, MemoryWriter, Schema, Var, open_ensemble

_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")


@dataclass
class RunResult:
    """What a run did: steps done, wall time, divergence, whether a signal stopped it.

    ``replica_steps_per_second`` leaves out the first kernel call (which may include the
    compilation) when there was more than one."""

    path: str | None
    steps_done: int
    replicas: int
    wall_seconds: float
    kernel_seconds: float
    diverged: np.ndarray
    stopped_by: str | None = None
    writer: object = field(default=None, repr=False)
    steps_run: int = 0
    timed: tuple[float, int] = (0.0, 0)
    already_done: bool = False

    @property
    def replica_steps_per_second(self) -> float:
        return self.replicas * self.timed[1] / max(self.timed[0], 1e-12)


def _dtype(cfg):
    return np.dtype(cfg.ensemble.dtype)


def build_schema(cfg, layout: Layout, bd: BoundaryData) -> Schema:
    """The datasets a run of ``cfg`` records (see docs/format.md)."""
    rc = cfg.recording
    M = layout.depth
    integ = cfg.dynamics.integrator
    rv = [
        Var("loss_batch", (), "float64", "mean per-sample loss on the minibatch of this step"),
        Var("loss_probe", (), "float64", "mean per-sample loss on the probe set (generalisation error)"),
    ]
    if rc.train_loss and bd.X_train.shape[0] > 0:
        rv.append(Var("loss_train", (), "float64", "mean per-sample loss on the whole training set"))
    if rc.norms:
        rv.append(Var("w_norm2", ("link",), "float64", "|W^(m)|^2 of each link"))
        if layout.has_bias:
            rv.append(Var("b_norm2", ("link",), "float64", "|b^(m)|^2 of each link"))
    if integ != "overdamped":
        rv.append(Var("kinetic", (), "float64",
                      "1/2 |p|^2 at the full step (heavy ball: p = v / sqrt(eta))"))
    if integ == "underdamped":
        rv.append(Var("kinetic_o", (), "float64",
                      "1/2 |p|^2 right after the O sub-step of BAOAB (exactly n_par T / 2 in law)"))
    if integ != "overdamped":
        rv += [Var("energy", (), "float64",
                   "E = 1/2 |p|^2 + l + lambda/2 |theta|^2 (l: the dynamics' cost on the minibatch)"),
               Var("dissipation", (), "float64", "gamma |p|^2: dE/dt = -gamma |p|^2 at T = 0"),
               Var("log_action_weight", (), "float64",
                   "int_0^t gamma dt: the action's weight is exp of it (SFT Eqs. 8-10)")]
    cad = [Cadence("records", "record", rc.every, tuple(rv))]
    dt = _dtype(cfg).name
    if rc.snapshot_every > 0:
        cad.append(Cadence("snapshots", "snapshot", rc.snapshot_every,
                           (Var("theta", ("param",), dt, "all parameters (layout in /network)"),)))
    if rc.probe_z_every > 0:
        zv = tuple(Var(f"z_{m}", ("probe", f"neuron_{m}"), rc.probe_z_dtype,
                       f"pre-activations z^({m}) on the probe set") for m in range(1, M + 1))
        cad.append(Cadence("probe_z", "zrecord", rc.probe_z_every, zv))
    state_extra = {}
    if rc.bbd:
        cad.append(Cadence("bbd", "bbd_record", rc.every, _bbd_vars()))
        state_extra = {name: (dims, "float64") for name, dims in _BBD_STATE.items()}
        state_extra["bbd_pending"] = ((), "bool")
    coords = {"link": np.arange(M), "layer": np.arange(1, M + 1), "param": np.arange(layout.n_par),
              "probe": np.arange(bd.X_probe.shape[0])}
    if rc.bbd:
        coords["bbd_sample"] = np.arange(_batch_size(cfg, bd))
        coords["bbd_unit"] = np.arange(sum(layout.widths[1:]))
        coords["bbd_scalar"] = np.arange(2 + M)
    coords.update({f"neuron_{m}": np.arange(layout.widths[m]) for m in range(1, M + 1)})
    state = {"theta": (("param",), dt), "mom": (("param",), dt), "force": (("param",), dt),
             "diverged": ((), "bool"), "diverged_step": ((), "int64"), "force_ok": ((), "bool"),
             **state_extra}
    scalars = {"step": "int64", "time": "float64"}
    if integ != "overdamped":
        scalars["gamma_int"] = "float64"  # int_0^t gamma dt, for log_action_weight
    return Schema(tuple(cad), coords, state, scalars)


def _batch_size(cfg, bd: BoundaryData) -> int:
    return bd.X_train.shape[0] if cfg.data.batch is None else cfg.data.batch


def _boundary_arrays(cfg, layout: Layout, bd: BoundaryData):
    """(Boundary, teacher NetArrays) for the kernels (the student's arrays stand in for the
    teacher when the data are not generated online)."""
    dt = _dtype(cfg)
    P = bd.X_train.shape[0]
    full = cfg.data.batch is None
    B = P if full else cfg.data.batch
    tl = bd.teacher if bd.online else layout
    tth = bd.teacher_theta if bd.online else np.zeros(1)
    return Boundary(
        np.ascontiguousarray(bd.X_train, dt), np.ascontiguousarray(bd.Y_train, dt),
        np.ascontiguousarray(bd.X_probe, dt), np.ascontiguousarray(bd.Y_probe, dt),
        bool(bd.online), np.ascontiguousarray(tth, np.float64),
        float(cfg.data.label_noise), losses.CODES[cfg.data.loss],
        cfg.data.reduction == "mean", int(B), bool(full)), tl.arrays


def _rec_buffers(schema: Schema, R: int, s0: int, n: int, layout: Layout, K: int) -> Rec:
    """Record buffers for the entries of steps in (s0, s0 + n] (n = 0: the initial entry)."""
    def rows(every):
        if every <= 0:
            return 0
        return 1 if n == 0 else (s0 + n) // every - s0 // every

    cads = {c.group: c for c in schema.cadences}
    rc = cads["records"]
    names = {v.name for v in rc.vars}
    nr = rows(rc.every)
    M = layout.depth

    def arr(name, *trail):
        return np.full((R, nr) + trail, np.nan) if name in names else np.zeros((R, 0) + trail)

    snap = cads.get("snapshots")
    zc = cads.get("probe_z")
    bc = cads.get("bbd")
    nb = 0 if bc is None or n == 0 else (s0 + n - 1) // bc.every - (s0 - 1) // bc.every
    dt = np.dtype(schema.state["theta"][1])
    Lz = sum(layout.widths[1:])
    return Rec(
        rc.every, arr("loss_batch"), arr("loss_train"), arr("loss_probe"),
        arr("w_norm2", M), arr("b_norm2", M) if "b_norm2" in names else np.zeros((R, 0, M)),
        arr("kinetic"), arr("kinetic_o"), arr("energy"),
        snap.every if snap else 0,
        np.zeros((R, rows(snap.every) if snap else 0, layout.n_par), dt),
        zc.every if zc else 0,
        np.zeros((R, rows(zc.every) if zc else 0, K, Lz), dt),
        bc.every if bc else 0,
        np.full((R, nb, 6, M), np.nan), np.full((R, nb, 3, M), np.nan),
        np.full((R, nb, 7), np.nan), np.full((R, nb, 7), np.nan),
    )


def _entry_steps(every: int, s0: int, n: int, group: str = "") -> np.ndarray:
    if group == "bbd":  # entries of steps t in [s0, s0 + n), completed one step later
        if n == 0:
            return np.zeros(0, np.int64)
        first = -(-s0 // every) * every
        return np.arange(first, s0 + n, every, dtype=np.int64)
    if n == 0:
        return np.zeros(1, np.int64)
    first = (s0 // every + 1) * every
    return np.arange(first, s0 + n + 1, every, dtype=np.int64)


def _friction(integ: int, table: np.ndarray, times: np.ndarray, g0: float):
    """Friction gamma at steps s0 .. s0 + n (underdamped: gamma; heavy ball: (1 - beta) /
    sqrt(eta)) and int_0^t gamma dt at those steps, from ``g0`` at s0; None if overdamped."""
    if integ == UNDERDAMPED:
        gam = table[GAMMA]
    elif integ == HEAVY_BALL:
        gam = (1.0 - table[BETA]) / np.sqrt(table[ETA])
    else:
        return None
    dt = np.diff(times)[: gam.shape[0]]
    # a strictly sequential sum G_{k+1} = G_k + gamma_k dt_k, so any chunking gives the same bits
    return gam, np.cumsum(np.concatenate([[g0], gam[:-1] * dt[:-1]]))


def _append(writer, schema: Schema, rec: Rec, layout: Layout, s0: int, n: int, t_of,
            fric=None):
    for cad in schema.cadences:
        steps = _entry_steps(cad.every, s0, n, cad.group)
        tt = np.array([t_of(s) for s in steps], dtype=np.float64)
        if cad.group == "records":
            vals = {v.name: getattr(rec, v.name) for v in cad.vars if hasattr(rec, v.name)}
            if fric is not None:
                k = steps - s0
                vals["dissipation"] = 2.0 * fric[0][k] * rec.kinetic  # gamma |p|^2
                vals["log_action_weight"] = np.broadcast_to(fric[1][k], rec.kinetic.shape)
        elif cad.group == "bbd":
            vals = {}
            for q, name in enumerate(_BBD_LINK):
                vals[name] = rec.bbd_link[:, :, q, :]
            for q, name in enumerate(("kin_z", "cross", "quad")):
                vals[name + "_probe"] = rec.bbd_link_p[:, :, q, :]
            for q, name in enumerate(_BBD_TOT):
                vals[name] = rec.bbd_tot[:, :, q]
                vals[name + "_probe"] = rec.bbd_tot_p[:, :, q]
        elif cad.group == "snapshots":
            vals = {"theta": rec.snap}
        else:
            vals = {}
            o = 0
            for m in range(1, layout.depth + 1):
                w = layout.widths[m]
                vals[f"z_{m}"] = rec.z[:, :, :, o:o + w].astype(cad.vars[m - 1].dtype)
                o += w
        writer.append(cad.group, steps, tt, vals)


def initial_state(cfg, layout: Layout, replicas: np.ndarray, branch=None) -> State:
    """Fresh State (INIT stream) or a branch (``branch = (theta, mom or None)`` read by
    ``branch_source`` from ``init.from``), for the given global replica indices."""
    dt = _dtype(cfg)
    R = len(replicas)
    theta = np.zeros((R, layout.n_par), dt)
    mom = np.zeros((R, layout.n_par), dt)
    if branch is None:
        th = np.zeros((R, layout.n_par))
        init_params(layout.init_std, np.uint64(cfg.ensemble.seed), streams.INIT, replicas, th)
        theta[:] = th
    else:
        theta[:] = branch[0]
        if branch[1] is not None:
            mom[:] = branch[1]
    return State(theta, mom, np.zeros((R, layout.n_par), dt), replicas.copy(),
                 np.zeros(R, np.bool_), np.full(R, -1, np.int64), np.zeros(R, np.bool_),
                 *_bbd_state(cfg, layout, R))


def _bbd_state(cfg, layout: Layout, R: int, saved: dict | None = None) -> tuple:
    """The BBD pending buffers of the State (zero-size when recording.bbd is off), fresh or
    from a checkpoint ``saved``."""
    if cfg.recording.bbd:
        B = cfg.data.batch if cfg.data.batch is not None else cfg.data.n_train
        K, Lz, M = cfg.data.n_probe, sum(layout.widths[1:]), layout.depth
        shapes = {"bbd_theta": (layout.n_par,), "bbd_z": (B, Lz), "bbd_A": (B, Lz),
                  "bbd_zp": (K, Lz), "bbd_Ap": (K, Lz), "bbd_scal": (2 + M,)}
    else:
        shapes = {"bbd_theta": (0,), "bbd_z": (0, 0), "bbd_A": (0, 0), "bbd_zp": (0, 0),
                  "bbd_Ap": (0, 0), "bbd_scal": (0,)}
    if saved is not None and cfg.recording.bbd:
        pending = saved["bbd_pending"].astype(np.bool_).copy()
        arrays = [np.ascontiguousarray(saved[k], np.float64) for k in shapes]
    else:
        pending = np.zeros(R, np.bool_)
        arrays = [np.zeros((R,) + shp) for shp in shapes.values()]
    return (pending, *arrays)


def branch_source(cfg, layout: Layout, replicas: np.ndarray):
    """Parameters (and momenta with ``init.momenta = 'keep'``) of ``init.from`` at ``init.at``."""
    path = cfg.init.file
    with open_ensemble(path) as ens:
        widths = ens.read("network/widths")
        if tuple(int(w) for w in widths) != layout.widths or \
                ens.shape("state/slot0/theta")[-1] != layout.n_par:
            raise UserError(f"init.from: {path} holds a different network "
                            f"(widths {list(widths)}, ours {list(layout.widths)})")
        src_rep = list(ens.replicas)
        if cfg.init.replica is not None:  # every replica branches from one source replica
            replicas = np.full(len(replicas), cfg.init.replica, np.int64)
        missing = [int(r) for r in replicas if int(r) not in src_rep]
        if missing:
            raise UserError(f"init.from: {path} has no replica {missing[0]} "
                            f"(it holds {len(src_rep)} replicas)")
        rows = np.array([src_rep.index(int(r)) for r in replicas])
        if cfg.init.at == "final":
            st = ens.state()
            theta = st["theta"][rows]
            mom = st["mom"][rows] if cfg.init.momenta == "keep" else None
        else:
            if "snapshots" not in ens.groups():
                raise UserError(f"init.at: {path} has no snapshots (recording.snapshot_every = 0)")
            n = ens.shape("snapshots/step")[0]
            k = int(cfg.init.at)
            if not -n <= k < n:
                raise UserError(f"init.at: snapshot {k} out of range ({n} snapshots in {path})")
            theta = ens.read("snapshots/theta", index=slice(k % n, k % n + 1))[rows, 0]
            mom = None
    return theta, mom


def file_attrs(cfg, layout: Layout, bd: BoundaryData, R_total: int, shard=None) -> dict:
    attrs = {
        "package_version": __version__, "config_text": cfg.text, "config_effective": cfg.to_toml(),
        "config_hash": cfg.hash, "seed": str(cfg.ensemble.seed), "n_replicas_total": R_total,
        "architecture": layout.architecture, "integrator": cfg.dynamics.integrator,
        "dtype": cfg.ensemble.dtype, "loss": cfg.data.loss, "reduction": cfg.data.reduction,
        "time_unit": {"overdamped": "dt = eta per step", "underdamped": "dt = h per step",
                      "heavy_ball": "dt = sqrt(eta) per step"}[cfg.dynamics.integrator],
    }
    attrs.update({f"data_{k}": (str(v) if not isinstance(v, (int, float)) else v)
                  for k, v in bd.info.items()})
    if shard is not None:
        attrs["shard_index"], attrs["shard_count"] = int(shard[0]), int(shard[1])
    return attrs


class _StopFlag:
    """Remembers the first of SIGTERM / SIGINT / SIGUSR1 received during a run."""

    def __init__(self):
        self.name = None
        self._old = {}

    def __enter__(self):
        for name in _SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._old[sig] = signal.signal(sig, self._handle)
                except ValueError:  # not the main thread
                    pass
        return self

    def _handle(self, signum, frame):
        if self.name is None:
            self.name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def shard_replicas(R: int, shard: tuple[int, int] | None) -> np.ndarray:
    """Global replica indices of shard I of N: a contiguous block (np.array_split of 0..R-1)."""
    if shard is None:
        return np.arange(R, dtype=np.int64)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"--shard {i}/{n}: expected I/N with 0 <= I < N")
    if n > R:
        raise UserError(f"--shard {i}/{n}: more shards than the {R} replicas of ensemble.replicas")
    return np.array_split(np.arange(R, dtype=np.int64), n)[i]


def run(cfg, path: str | os.PathLike | None = None, *, overwrite: bool = False,
        resume: bool = False, shard: tuple[int, int] | None = None,
        progress: bool | None = None, writer=None) -> RunResult:
    """Run the ensemble of ``cfg``; write it to ``path`` (HDF5) or into ``writer``
    (e.g. a ``MemoryWriter``); returns a ``RunResult``.

    ``shard = (I, N)`` runs only the replicas of shard I of N. ``resume`` continues an existing
    ``path`` from its last checkpoint (or extends it to ``ensemble.steps``); without the file it
    starts fresh. SIGTERM, SIGUSR1 and SIGINT finish the current chunk, checkpoint and return
    with ``stopped_by`` set.
    """
    t_wall = time.perf_counter()
    if cfg.ensemble.threads:
        numba.set_num_threads(min(cfg.ensemble.threads, numba.config.NUMBA_NUM_THREADS))
    layout = build_layout(cfg.network)
    bd = build_boundary(cfg, layout, generate=False)  # teacher data need a compiled kernel
    schema = build_schema(cfg, layout, bd)
    R = cfg.ensemble.replicas
    replicas = shard_replicas(R, shard)
    with _StopFlag() as stop:
        start = None
        if resume and path is not None and os.path.exists(path):
            start = _reopen(cfg, os.fspath(path), bd, replicas)
            overwrite = True  # a file killed before its first checkpoint is begun again
        if start is not None:
            writer, start = start
            if start[1] >= cfg.ensemble.steps:
                writer.close()
                return RunResult(os.fspath(path), start[1], len(replicas),
                                 time.perf_counter() - t_wall, 0.0, start[0].diverged.copy(),
                                 None, None, already_done=True)
            if not bd.ready:
                bd = build_boundary(cfg, layout)
        else:
            static = {**layout.static(), **(bd.static() if bd.ready else {})}
            branch = branch_source(cfg, layout, replicas) if cfg.init.file else None
            attrs = file_attrs(cfg, layout, bd, R, shard)
            if writer is None and path is not None:  # the file exists before any compilation
                writer = HDF5Writer.create(os.fspath(path), attrs=attrs, schema=schema,
                                           replicas=replicas, static=static, overwrite=overwrite)
            elif writer is None:
                writer = MemoryWriter(attrs=attrs, schema=schema, replicas=replicas, static=static)
            if not bd.ready:
                bd = build_boundary(cfg, layout)
                writer.add_static(bd.static())
        try:
            if start is None:
                st = initial_state(cfg, layout, replicas, branch)
            else:
                st = start[0]
            return _drive(cfg, path, writer, layout, bd, schema, st, start, progress, t_wall,
                          stop)
        finally:
            writer.close()


def _reopen(cfg, path: str, bd: BoundaryData, replicas: np.ndarray):
    """Reopen ``path`` for --resume: check it belongs to ``cfg`` and return (writer,
    (State, step, time)) at its last committed checkpoint, or None if it has none."""
    with open_ensemble(path) as ens:
        if ens.config_hash != cfg.hash:
            raise UserError(f"{path}: made by another config (hash {ens.config_hash}, this config "
                            f"{cfg.hash}); --resume needs the same config")
        if not np.array_equal(ens.replicas, replicas):
            raise UserError(f"{path}: holds replicas {ens.replicas[0]}..{ens.replicas[-1]}, "
                            f"this run wants {replicas[0]}..{replicas[-1]} (another --shard?)")
        sha = ens.attrs.get("data_sha256")
        if sha is not None and sha != bd.info.get("sha256"):
            raise UserError(f"{path}: the data file {cfg.data.path} changed since the run began "
                            "(sha256 differs)")
        if not ens.has_checkpoint:  # killed before the first checkpoint: begin again
            return None
    writer = HDF5Writer.resume(path)
    s = writer.reader().state()
    st = State(s["theta"].copy(), s["mom"].copy(), s["force"].copy(), replicas.copy(),
               s["diverged"].copy(), s["diverged_step"].copy(), s["force_ok"].copy(),
               *_bbd_state(cfg, build_layout(cfg.network), len(replicas), s))
    return writer, (st, int(s["step"]), float(s["time"]), float(s.get("gamma_int", 0.0)))


def _drive(cfg, path, writer, layout, bd, schema, st, start, progress, t_wall, stop):
    R = st.theta.shape[0]
    sch = Schedules(cfg.dynamics)
    bnd, tnet = _boundary_arrays(cfg, layout, bd)
    seed = np.uint64(cfg.ensemble.seed)
    K = bd.X_probe.shape[0]
    bound = float(cfg.dynamics.divergence_bound)
    momentum = "gamma_int" in schema.state_scalars
    bbd_on = True if cfg.recording.bbd else None  # None: the BBD code is not even compiled

    # replica blocks on threads: numba.set_num_threads (ensemble.threads) sets how many
    with ReplicaBlocks(R, numba.get_num_threads()) as run_chunk:
        def scalars():
            out = {"step": step, "time": t}
            if momentum:
                out["gamma_int"] = gint
            return out

        if start is None:
            step, t, gint = 0, 0.0, 0.0
            table, times = sch.table(0, 0, 0.0)
            rec = _rec_buffers(schema, R, 0, 0, layout, K)
            run_chunk(layout.arrays, tnet, bnd, Dyn(sch.integ, seed, bound, table), st, rec, 0, 0,
                      bbd_on)
            _append(writer, schema, rec, layout, 0, 0, lambda s: 0.0,
                    _friction(sch.integ, table, times, 0.0))
            writer.checkpoint(_state_dict(st), scalars())
        else:
            step, t, gint = start[1], start[2], start[3]
        steps = cfg.ensemble.steps
        first = step
        chunk = cfg.ensemble.chunk or 16
        auto = cfg.ensemble.chunk == 0
        last_ckpt = time.perf_counter()
        kernel_s, timed_s, timed_steps = 0.0, 0.0, 0
        bar = _progress(progress, steps - step, R)
        while step < steps and stop.name is None:
            n = min(chunk, steps - step)
            table, times = sch.table(step, n, t)
            rec = _rec_buffers(schema, R, step, n, layout, K)
            t0 = time.perf_counter()
            run_chunk(layout.arrays, tnet, bnd, Dyn(sch.integ, seed, bound, table), st, rec, step, n,
                      bbd_on)
            dt_k = time.perf_counter() - t0
            kernel_s += dt_k
            if step > first:  # the first call may include compilation
                timed_s, timed_steps = timed_s + dt_k, timed_steps + n
            s0 = step
            fric = _friction(sch.integ, table, times, gint)
            _append(writer, schema, rec, layout, s0, n, lambda s: times[s - s0], fric)
            step, t = s0 + n, float(times[n])
            if fric is not None:
                gint = float(fric[1][n])
            now = time.perf_counter()
            if now - last_ckpt >= cfg.ensemble.checkpoint_every or step >= steps:
                writer.checkpoint(_state_dict(st), scalars())
                last_ckpt = now
            if bar is not None:
                bar.update(n)
                bar.set_postfix_str(f"{R * n / max(dt_k, 1e-9):.3g} replica-steps/s")
            if auto:
                chunk = int(min(max(1, chunk * 0.5 / max(dt_k, 1e-4)), 2 * chunk, 1 << 20))
        if stop.name is not None:
            writer.checkpoint(_state_dict(st), scalars())
        if bar is not None:
            bar.close()
        if timed_steps == 0:
            timed_s, timed_steps = kernel_s, step - first
        return RunResult(os.fspath(path) if path else None, step, R, time.perf_counter() - t_wall,
                         kernel_s, st.diverged.copy(), stop.name, writer,
                         steps_run=step - first, timed=(timed_s, timed_steps))


def _state_dict(st: State) -> dict[str, np.ndarray]:
    out = {"theta": st.theta, "mom": st.mom, "force": st.force, "diverged": st.diverged,
           "diverged_step": st.diverged_step, "force_ok": st.force_ok}
    if st.bbd_theta.shape[1] > 0:
        out.update(bbd_pending=st.bbd_pending, bbd_theta=st.bbd_theta, bbd_z=st.bbd_z,
                   bbd_A=st.bbd_A, bbd_zp=st.bbd_zp, bbd_Ap=st.bbd_Ap, bbd_scal=st.bbd_scal)
    return out


def _progress(flag, steps, R):
    if flag is None:
        flag = sys.stderr.isatty()
    if not flag or steps == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=steps, unit="step", desc=f"{R} replicas", file=sys.stderr)
