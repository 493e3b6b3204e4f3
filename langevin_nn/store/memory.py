"""The in-memory writer, the reference the HDF5 writer is tested against."""
from __future__ import annotations

import numpy as np

from .reader import Ensemble, _attr, _Source
from .schema import REPLICA_DIM, STATE_GROUP, Schema
from .writer import _check_append, _check_checkpoint, _check_replicas, _check_static, _root_attrs


class MemoryWriter:
    """Keeps everything in dicts; the reference the HDF5 writer is tested against."""

    def __init__(self, *, attrs: dict, schema: Schema, replicas: np.ndarray, static: dict[str, np.ndarray]):
        self.schema = schema
        self.replicas = _check_replicas(replicas)
        self.attrs = {k: _attr(v) for k, v in _root_attrs(attrs).items()}
        self._static = _check_static(schema, static)
        # per cadence group: name ("step", "time", var) -> list of appended blocks
        self._blocks = {c.group: {k: [] for k in ("step", "time", *(v.name for v in c.vars))}
                        for c in schema.cadences}
        self._entries = {c.group: 0 for c in schema.cadences}
        self._committed: tuple[dict, dict, dict] | None = None  # (arrays, scalars, entries)

    def append(self, group, step, time, values) -> None:
        cad, step, time, values = _check_append(self.schema, len(self.replicas), group, step, time, values)
        blocks = self._blocks[group]
        blocks["step"].append(step.copy())
        blocks["time"].append(time.copy())
        for name, arr in values.items():
            blocks[name].append(arr.copy())
        self._entries[group] += step.shape[0]

    def add_static(self, static: dict[str, np.ndarray]) -> None:
        """Write static arrays after creation (before the first checkpoint: data that take
        compilation to make, so that the file exists before any compilation starts)."""
        new = _check_static(self.schema, static)
        clash = [k for k in new if k in self._static]
        if clash:
            raise ValueError(f"static {clash[0]!r}: exists already")
        self._static.update(new)

    def checkpoint(self, state, scalars) -> None:
        arrays, values = _check_checkpoint(self.schema, len(self.replicas), state, scalars)
        self._committed = ({k: v.copy() for k, v in arrays.items()}, values, dict(self._entries))

    def close(self) -> None:
        pass

    def reader(self) -> "Ensemble":
        """An :class:`Ensemble` over a snapshot of what is committed now."""
        schema, R = self.schema, self.replicas
        data: dict[str, np.ndarray] = {}
        entries = self._committed[2] if self._committed else {c.group: 0 for c in schema.cadences}
        for c in schema.cadences:
            n = entries[c.group]
            blocks = self._blocks[c.group]
            data[f"{c.group}/{REPLICA_DIM}"] = R.copy()
            data[f"{c.group}/{c.dim}"] = np.arange(n, dtype=np.int64)
            data[f"{c.group}/step"] = np.concatenate(blocks["step"] or [np.zeros(0, np.int64)])[:n]
            data[f"{c.group}/time"] = np.concatenate(blocks["time"] or [np.zeros(0, np.float64)])[:n]
            for v in c.vars:
                empty = np.zeros((len(R), 0, *schema.shape(v.dims)), v.dtype)
                data[f"{c.group}/{v.name}"] = np.concatenate(blocks[v.name] or [empty], axis=1)[:, :n]
                for d in v.dims:
                    data[f"{c.group}/{d}"] = np.asarray(schema.coords[d])
        committed = -1
        if self._committed is not None:
            committed = 0
            arrays, values, _ = self._committed
            slot = f"{STATE_GROUP}/slot0"
            data[f"{slot}/{REPLICA_DIM}"] = R.copy()
            for name, arr in {**arrays, **values}.items():
                data[f"{slot}/{name}"] = arr.copy()
            for dims, _ in schema.state.values():
                for d in dims:
                    data[f"{slot}/{d}"] = np.asarray(schema.coords[d])
        for name, arr in self._static.items():
            data[name] = arr.copy()
        source = _Source(label="<memory>", get=data.__getitem__, attrs=dict(self.attrs), schema=schema,
                         static=tuple(sorted(self._static)), replicas=R.copy(), committed=committed,
                         entries=dict(entries), stored=dict(entries), close=lambda: None)
        return Ensemble(source)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
