"""The writer interface (:class:`Writer`) and the argument checks both writers share; copying
the committed part of ensembles into a writer (merging shards, resuming).

Shapes: R replicas held by the file (axis 0 of every per-replica array), n entries appended at
once, S entries of a cadence (axis 1); trailing axes are the fixed dimensions of ``Schema.coords``.
"""
from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .schema import FORMAT_NAME, FORMAT_VERSION, STATE_GROUP, Schema

if TYPE_CHECKING:
    from .reader import Ensemble

_ROOT_KEYS = ("format", "format_version", "created")


class Writer(Protocol):
    """What the simulation driver writes to; see :class:`MemoryWriter` and :class:`HDF5Writer`."""

    replicas: np.ndarray  # global replica indices held by this writer, int64[R]
    schema: Schema

    def append(self, group: str, step: np.ndarray, time: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Append n entries to cadence ``group``: step int64[n], time float64[n], and for every
        var of the cadence ``values[name]`` of shape (R, n, *trailing); n may be 0."""

    def checkpoint(self, state: dict[str, np.ndarray], scalars: dict[str, int | float]) -> None:
        """Store the complete state to continue the run; commits everything appended so far."""

    def close(self) -> None:
        """Release the storage (does not commit: call checkpoint() first)."""

    def reader(self) -> "Ensemble":
        """A reader of what is committed now."""


def _cast(value, dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` as an array of ``dtype`` and exactly ``shape`` (same-kind casts only)."""
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{what}: shape {arr.shape}, expected {shape}")
    if arr.size == 0:  # e.g. step=[] (float64) for an empty append
        return arr.astype(dtype)
    try:
        return arr.astype(dtype, casting="same_kind", copy=False)
    except TypeError as e:
        raise ValueError(f"{what}: cannot store {arr.dtype} as {np.dtype(dtype)} ({e})") from None


def _check_append(schema: Schema, n_rep: int, group: str, step, time, values) -> tuple:
    try:
        cad = schema.cadence(group)
    except KeyError:
        raise ValueError(f"append: no cadence {group!r} (have {[c.group for c in schema.cadences]})") from None
    step = np.asarray(step)
    if step.ndim != 1:
        raise ValueError(f"append {group}: step must be 1-D, got shape {step.shape}")
    n = step.shape[0]
    step = _cast(step, np.int64, (n,), f"{group}/step")
    time = _cast(time, np.float64, (n,), f"{group}/time")
    names = {v.name for v in cad.vars}
    if set(values) != names:
        missing, extra = sorted(names - set(values)), sorted(set(values) - names)
        raise ValueError(f"append {group}: missing vars {missing}, unknown vars {extra}")
    out = {v.name: _cast(values[v.name], v.dtype, (n_rep, n, *schema.shape(v.dims)), f"{group}/{v.name}")
           for v in cad.vars}
    return cad, step, time, out


def _check_checkpoint(schema: Schema, n_rep: int, state, scalars) -> tuple[dict, dict]:
    if set(state) != set(schema.state):
        raise ValueError(f"checkpoint: state arrays {sorted(state)}, expected {sorted(schema.state)}")
    if set(scalars) != set(schema.state_scalars):
        raise ValueError(f"checkpoint: scalars {sorted(scalars)}, expected {sorted(schema.state_scalars)}")
    arrays = {name: _cast(state[name], dtype, (n_rep, *schema.shape(dims)), f"state/{name}")
              for name, (dims, dtype) in schema.state.items()}
    values = {name: _cast(scalars[name], dtype, (), f"state/{name}")
              for name, dtype in schema.state_scalars.items()}
    return arrays, values


def _check_replicas(replicas) -> np.ndarray:
    r = np.asarray(replicas)
    if r.ndim != 1 or r.size == 0 or r.dtype.kind not in "iu":
        raise ValueError("replicas must be a non-empty 1-D integer array")
    if np.any(r < 0) or np.unique(r).size != r.size:
        raise ValueError("replicas must be distinct non-negative indices")
    return r.astype(np.int64)


def _check_static(schema: Schema, static: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in static.items():
        parts = name.split("/")
        if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"static {name!r}: name must be 'group/name'")
        if parts[0] == STATE_GROUP or parts[0] in [c.group for c in schema.cadences]:
            raise ValueError(f"static {name!r}: group {parts[0]!r} is a cadence or the state")
        out[name] = np.array(value)  # a copy
    return out


def _root_attrs(attrs: dict) -> dict:
    clash = [k for k in _ROOT_KEYS if k in attrs]
    if clash:
        raise ValueError(f"attrs: {clash} are written by the store")
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "created": created, **attrs}


def static_arrays(ens: "Ensemble") -> dict[str, np.ndarray]:
    """Every static array of an ensemble (network layout, data, ...), by ``group/name``."""
    cad = {c.group for c in ens.schema.cadences}
    return {f"{g}/{v}": ens.read(f"{g}/{v}") for g in ens.groups()
            if g not in cad and g != STATE_GROUP for v in ens.vars(g)}


def copy_committed(writer, sources: list["Ensemble"], block: int = 256) -> None:
    """Append the committed entries of ``sources`` (ensembles with the same schema and steps,
    whose replicas, concatenated in order, are the writer's) and checkpoint their state, a
    block of ``block`` entries at a time (the whole ensemble is never in memory)."""
    e0 = sources[0]
    for c in writer.schema.cadences:
        n = e0.entries[c.group]
        for a in range(0, n, block):
            idx = slice(a, min(n, a + block))
            vals = {v.name: np.concatenate([e.read(f"{c.group}/{v.name}", index=idx)
                                            for e in sources], axis=0) for v in c.vars}
            writer.append(c.group, e0.read(f"{c.group}/step", index=idx),
                          e0.read(f"{c.group}/time", index=idx), vals)
    states = [e.state() for e in sources]
    arrays = {k: np.concatenate([s[k] for s in states], axis=0) for k in writer.schema.state}
    writer.checkpoint(arrays, {k: states[0][k][()] for k in writer.schema.state_scalars})
