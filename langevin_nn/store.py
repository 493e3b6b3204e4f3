"""Ensemble files: one writer interface, an in-memory and an HDF5 implementation, a lazy reader.

The store knows nothing about networks or physics. The driver describes what it will record in a
:class:`Schema` (recording cadences and their per-replica variables, the checkpoint arrays, the
values of the fixed dimensions) and then hands over arrays; the store writes them and gives them
back. The file layout, field by field, is in ``docs/format.md``.

Write side (the :class:`Writer` protocol)::

    w = HDF5Writer.create(path, attrs=..., schema=..., replicas=..., static=...)   # or MemoryWriter(...)
    w.append("records", step, time, {"loss_train": loss, ...})   # any number of times, any cadence
    w.checkpoint(state, {"step": s, "time": t})                   # commits everything appended so far
    w.close()
    w = HDF5Writer.resume(path)            # continues after the last committed checkpoint

Read side::

    with open_ensemble(path) as ens:
        ens.read("records/loss_train", replicas=[0, 3], index=slice(-10, None))   # (2, 10)
        ens.state()["theta"]                                                       # (R, n_par)

Shapes: R replicas held by the file (axis 0 of every per-replica array), n entries appended at
once, S entries of a cadence (axis 1); trailing axes are the fixed dimensions of ``Schema.coords``.

Crash safety: entries become *committed* by the next :meth:`Writer.checkpoint`, which writes the
inactive one of two state slots, flushes, and only then flips the one-byte pointer
``state/committed``. Readers and :meth:`HDF5Writer.resume` see committed entries only, so a run
killed at any point resumes from a consistent (state, records) pair.
"""
from __future__ import annotations

import datetime
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import h5py
import numpy as np

from langevin_nn.errors import FormatError, UserError

FORMAT_NAME = "langevin_nn.ensemble"
FORMAT_VERSION = 1

#: HDF5 format bounds: the oldest object versions that can hold the file; nothing needs more
#: than HDF5 1.10 (dimension scales and creation-order tracking are HDF5 1.8 features).
LIBVER = ("earliest", "v110")

REPLICA_DIM = "replica"
STATE_GROUP = "state"
CADENCE_DIM = "cadence"  # dimension of state/committed_entries and state/slotK/entries

_ROOT_KEYS = ("format", "format_version", "created")
# Chunks of growing datasets: at least 64 KiB (uncompressed), at most 1 MiB. The low end keeps
# the cost of flushing after every append small: a partly filled chunk is recompressed at each
# flush, so a chunk of C entries filled n at a time is compressed about C/n times.
_CHUNK_TARGET = 64 * 1024
_CHUNK_MAX = 1024 * 1024
_REPLICA_CHUNK = 64
_STATIC_CHUNK_ABOVE = 1024 * 1024  # static arrays larger than this are chunked and compressed
_NUMERIC_KINDS = "biuf"
#: What h5py and our own checks raise on a file that lacks or garbles part of the layout.
_BROKEN = (KeyError, OSError, ValueError, TypeError, IndexError)


# --------------------------------------------------------------------------------------------
# Schema


@dataclass(frozen=True)
class Var:
    """One recorded per-replica dataset of a cadence, stored with shape (R, S, *dims).

    ``dims`` are the trailing dimension names after (replica, <cadence dim>), each a key of
    ``Schema.coords``; ``doc`` is one line (meaning and units), stored as attribute ``description``.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    doc: str = ""


@dataclass(frozen=True)
class Cadence:
    """A recording cadence: one HDF5 group with its own growing dimension ``dim`` (an entry
    every ``every`` steps), holding ``step``, ``time`` and the ``vars``."""

    group: str
    dim: str
    every: int
    vars: tuple[Var, ...]


@dataclass(frozen=True)
class Schema:
    """Everything a file records, fixed when it is created.

    coords: values of the fixed dimensions used by vars and state, name -> 1-D array.
    state: checkpoint arrays, name -> (trailing dims after replica, dtype).
    state_scalars: checkpoint scalars, name -> dtype. ``step`` and ``time`` (if present) are what
        :attr:`Ensemble.steps_done` and :attr:`Ensemble.time_done` report.
    """

    cadences: tuple[Cadence, ...]
    coords: dict[str, np.ndarray]
    state: dict[str, tuple[tuple[str, ...], str]]
    state_scalars: dict[str, str]

    def __post_init__(self):
        _validate_schema(self)

    def cadence(self, group: str) -> Cadence:
        for c in self.cadences:
            if c.group == group:
                return c
        raise KeyError(group)

    def shape(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        """Sizes of the fixed dimensions ``dims``."""
        return tuple(len(self.coords[d]) for d in dims)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{what} {name!r}: names must be non-empty and contain no '/'")


def _check_dtype(dtype: str, what: str) -> None:
    if np.dtype(dtype).kind not in _NUMERIC_KINDS:
        raise ValueError(f"{what}: dtype {dtype!r} is not boolean, integer or float")


def _validate_schema(schema: Schema) -> None:
    reserved = {REPLICA_DIM, CADENCE_DIM}
    for name, values in schema.coords.items():
        _check_name(name, "coordinate")
        if name in reserved:
            raise ValueError(f"coordinate {name!r}: reserved dimension name")
        if np.ndim(values) != 1:
            raise ValueError(f"coordinate {name!r}: values must be 1-D")
    groups = [c.group for c in schema.cadences]
    dims = [c.dim for c in schema.cadences]
    for what, names in (("cadence group", groups), ("cadence dimension", dims)):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} names repeat: {names}")
    for c in schema.cadences:
        _check_name(c.group, "cadence group")
        _check_name(c.dim, "cadence dimension")
        if c.group == STATE_GROUP:
            raise ValueError(f"cadence group {c.group!r}: reserved group name")
        if c.dim in reserved or c.dim in schema.coords:
            raise ValueError(f"cadence {c.group!r}: dimension {c.dim!r} is reserved or a coordinate")
        if int(c.every) < 1:
            raise ValueError(f"cadence {c.group!r}: every must be >= 1")
        taken = {"step", "time", REPLICA_DIM, c.dim} | {d for v in c.vars for d in v.dims}
        for v in c.vars:
            _check_name(v.name, f"{c.group} variable")
            _check_dtype(v.dtype, f"{c.group}/{v.name}")
            for d in v.dims:
                if d not in schema.coords:
                    raise ValueError(f"{c.group}/{v.name}: dimension {d!r} has no coordinate")
            if v.name in taken:
                raise ValueError(f"{c.group}/{v.name}: name taken by a dimension or another variable")
            taken.add(v.name)
    taken = {REPLICA_DIM, CADENCE_DIM, "entries"} | {d for dd, _ in schema.state.values() for d in dd}
    for name, (sdims, dtype) in schema.state.items():
        _check_name(name, "state array")
        _check_dtype(dtype, f"state/{name}")
        for d in sdims:
            if d not in schema.coords:
                raise ValueError(f"state/{name}: dimension {d!r} has no coordinate")
        if name in taken:
            raise ValueError(f"state/{name}: name taken by a dimension or another state array")
        taken.add(name)
    for name, dtype in schema.state_scalars.items():
        _check_name(name, "state scalar")
        _check_dtype(dtype, f"state/{name}")
        if name in taken:
            raise ValueError(f"state/{name}: name taken by a dimension or another state array")
        taken.add(name)


# --------------------------------------------------------------------------------------------
# The writer interface and its checks (shared by both implementations)


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


def _remove_stale_partials(path: str) -> None:
    """Remove ``path.partial-PID`` files left by killed processes (PID no longer running)."""
    import glob

    for tmp in glob.glob(glob.escape(path) + ".partial-*"):
        try:
            pid = int(tmp.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            os.remove(tmp)
        except (ValueError, PermissionError, OSError):
            pass


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


# --------------------------------------------------------------------------------------------
# In-memory writer


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


# --------------------------------------------------------------------------------------------
# HDF5 writer


def _growing_chunks(n_rep: int, trailing: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape of a (R, S, *trailing) dataset growing along S: at most 64 replicas, and
    as many entries as make 64 KiB (one entry if that is more; never above 1 MiB, fewer
    replicas and then halved trailing axes if one entry of 64 replicas is bigger)."""
    r = min(n_rep, _REPLICA_CHUNK)
    trail = [max(1, t) for t in trailing]
    while r * math.prod(trail) * itemsize > _CHUNK_MAX:
        if r > 1:
            r = (r + 1) // 2
        else:
            i = int(np.argmax(trail))
            trail[i] = (trail[i] + 1) // 2
    per_entry = r * math.prod(trail) * itemsize
    return (r, max(1, -(-_CHUNK_TARGET // per_entry)), *trail)


def _filters(dtype) -> dict:
    """Compression for static arrays (written once, before the file gets its final name).

    Growing datasets are *not* compressed: HDF5 rewrites a whole chunk when an append lands in
    a partly filled one, and a compressed chunk changes size and place, so a kill in the middle
    can break entries that were already committed (seen: "filter returned failure during read"
    after SIGKILL). An uncompressed chunk keeps its place and its committed bytes are rewritten
    unchanged, so a kill can only spoil entries that were not committed yet. (gzip saved only
    4-10% on float data anyway.)"""
    dtype = np.dtype(dtype)
    return dict(compression="gzip", compression_opts=1, shuffle=dtype.itemsize > 1)


def _to_h5(values) -> np.ndarray:
    """Arrays as h5py stores them: unicode strings become variable-length UTF-8."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr.astype(h5py.string_dtype())
    return arr


def _label(path) -> str:
    return os.fspath(path)


def _h5_error(e: BaseException) -> str:
    """One line from an h5py/HDF5 exception, without h5py's "Unable to ... (...)" wrapping."""
    if isinstance(e, IsADirectoryError):
        return "is a directory"
    text = " ".join(str(e).split())
    wrapped = re.match(r"^(?:\[Errno \d+\] )?Unable to synchronously [a-z ]+? \((.*)\)$", text)
    return (wrapped.group(1) if wrapped else text) or type(e).__name__


class HDF5Writer:
    """Writes an ensemble file; make one with :meth:`create` or :meth:`resume`."""

    def __init__(self, file: h5py.File, path: str, schema: Schema, replicas: np.ndarray,
                 committed: int, entries: dict[str, int]):
        self._file = file
        self.path = path
        self.schema = schema
        self.replicas = replicas
        self._committed = committed
        self._entries = dict(entries)  # entries stored per cadence group

    # ---- construction

    @classmethod
    def create(cls, path, *, attrs: dict, schema: Schema, replicas: np.ndarray,
               static: dict[str, np.ndarray], overwrite: bool = False) -> "HDF5Writer":
        """Create the file with its complete layout (empty cadences, zeroed state slots, no
        committed checkpoint), write ``attrs`` and ``static``, flush, and return a writer.

        The file is built under a temporary name and renamed when complete, so a kill during
        start-up leaves either no file or a complete one (and --overwrite keeps the old file
        until then)."""
        label = _label(path)
        if os.path.lexists(path) and not overwrite:
            raise UserError(f"{label}: exists (use --overwrite)")
        return cls._build(path, label, _root_attrs(attrs), schema, replicas, static, None)

    @classmethod
    def _build(cls, path, label, root, schema, replicas, static, fill) -> "HDF5Writer":
        """Build a complete file at a temporary name, run ``fill(writer)`` (if given), then
        rename it to ``path``; on any failure the temporary file is removed."""
        replicas = _check_replicas(replicas)
        static = _check_static(schema, static)
        _remove_stale_partials(os.fspath(path))
        tmp = f"{os.fspath(path)}.partial-{os.getpid()}"
        f = _open_for_writing(tmp, "w")
        try:
            f.attrs.update(root)
            for c in schema.cadences:
                _create_cadence(f, schema, c, replicas)
            _create_state(f, schema, replicas)
            for name, value in static.items():
                _create_static(f, name, value)
            f.flush()
            w = cls(f, label, schema, replicas, -1, {c.group: 0 for c in schema.cadences})
            if fill is not None:
                fill(w)
            os.replace(tmp, path)
        except BaseException:
            f.close()
            if os.path.exists(tmp):
                os.remove(tmp)  # no half-made file that would block the next attempt
            raise
        return w

    @classmethod
    def resume(cls, path) -> "HDF5Writer":
        """Reopen for appending after the last committed checkpoint.

        The committed entries and checkpoint are copied into a fresh file that then replaces
        ``path`` atomically: whatever a kill left half-written after the checkpoint (entries
        past it, a torn chunk, dangling metadata) is dropped rather than patched in place. This
        costs one copy of the file per resume. A file with no checkpoint yet comes back empty."""
        label = _label(path)
        if not os.path.exists(path):
            raise UserError(f"{label}: no such file")
        lock = _open_for_writing(path, "r+")  # refuses a file another writer holds
        try:
            with open_ensemble(path) as ens:
                root = {k: v for k, v in ens.attrs.items()}
                fill = (lambda w: copy_committed(w, [ens])) if ens.has_checkpoint else None
                return cls._build(path, label, root, ens.schema, ens.replicas,
                                  static_arrays(ens), fill)
        finally:
            lock.close()

    # ---- the Writer interface

    def append(self, group, step, time, values) -> None:
        self._check_open()
        cad, step, time, values = _check_append(self.schema, len(self.replicas), group, step, time, values)
        n = step.shape[0]
        if n == 0:
            return
        g = self._file[group]
        start = self._entries[group]
        stop = start + n
        for name, arr in ((cad.dim, np.arange(start, stop, dtype=np.int64)), ("step", step), ("time", time)):
            g[name].resize(stop, axis=0)
            g[name][start:stop] = arr
        for name, arr in values.items():
            g[name].resize(stop, axis=1)
            g[name][:, start:stop] = arr
        self._entries[group] = stop
        self._file.flush()

    def add_static(self, static: dict[str, np.ndarray]) -> None:
        """Write static arrays after creation (before the first checkpoint: data that take
        compilation to make, so that the file exists before any compilation starts)."""
        self._check_open()
        for name, value in _check_static(self.schema, static).items():
            if name in self._file:
                raise ValueError(f"static {name!r}: exists already")
            _create_static(self._file, name, value)
        self._file.flush()

    def checkpoint(self, state, scalars) -> None:
        self._check_open()
        arrays, values = _check_checkpoint(self.schema, len(self.replicas), state, scalars)
        k = 1 if self._committed == 0 else 0  # the inactive slot
        entries = [self._entries[c.group] for c in self.schema.cadences]
        self._write_slot(k, arrays, values, entries)
        self._file.flush()
        self._commit(k, entries)
        self._file.flush()
        self._committed = k

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def reader(self) -> "Ensemble":
        """An :class:`Ensemble` on this writer's open file (closing it leaves the writer open)."""
        self._check_open()
        return Ensemble(_h5_source(self._file, self.path, close=lambda: None))

    # ---- internals

    def _write_slot(self, k: int, arrays: dict, values: dict, entries: list[int]) -> None:
        slot = self._file[f"{STATE_GROUP}/slot{k}"]
        for name, arr in {**arrays, **values}.items():
            slot[name][...] = arr
        slot["entries"][...] = entries

    def _commit(self, k: int, entries: list[int]) -> None:
        st = self._file[STATE_GROUP]
        st["committed_entries"][...] = entries
        st["committed"][()] = np.int8(k)

    def _check_open(self) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: writer is closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_for_writing(path, mode: str) -> h5py.File:
    label = _label(path)
    try:
        return h5py.File(path, mode, libver=LIBVER, track_order=True, locking="best-effort")
    except BlockingIOError:
        raise UserError(f"{label}: is locked by another process (a run writing it, or a reader "
                        "using HDF5 file locking)") from None
    except OSError as e:
        if mode == "w":
            raise UserError(f"{label}: cannot create ({_h5_error(e)})") from None
        raise FormatError(f"{label}: not a langevin_nn ensemble file ({_h5_error(e)})") from None


def _scale(g: h5py.Group, name: str, data=None, *, growing_dtype=None) -> h5py.Dataset:
    """Coordinate dataset ``g/name`` made a dimension scale of that name."""
    if growing_dtype is not None:
        itemsize = np.dtype(growing_dtype).itemsize
        ds = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=growing_dtype,
                              chunks=_growing_chunks(1, (), itemsize)[1:])
    else:
        ds = g.create_dataset(name, data=_to_h5(data))
    ds.make_scale(name)
    return ds


def _attach(ds: h5py.Dataset, scales: list[h5py.Dataset]) -> None:
    for axis, scale in enumerate(scales):
        ds.dims[axis].attach_scale(scale)


def _create_cadence(f: h5py.File, schema: Schema, c: Cadence, replicas: np.ndarray) -> None:
    g = f.create_group(c.group, track_order=True)
    g.attrs["every"] = np.int64(c.every)
    g.attrs["dimension"] = c.dim
    rep = _scale(g, REPLICA_DIM, replicas)
    rep.attrs["description"] = "global replica index of each row"
    axis = _scale(g, c.dim, growing_dtype=np.int64)
    axis.attrs["description"] = f"entry number along {c.dim} (see step and time)"
    coords = {}
    for v in c.vars:
        for d in v.dims:
            if d not in coords:
                coords[d] = _scale(g, d, schema.coords[d])
    for name, dtype, doc in (("step", np.int64, "steps done when the entry was taken"),
                             ("time", np.float64, "physical time when the entry was taken")):
        ds = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                              chunks=_growing_chunks(1, (), 8)[1:])
        ds.attrs["description"] = doc
        _attach(ds, [axis])
    for v in c.vars:
        trailing = schema.shape(v.dims)
        dtype = np.dtype(v.dtype)
        ds = g.create_dataset(
            v.name, shape=(len(replicas), 0, *trailing), dtype=dtype,
            maxshape=(len(replicas), None, *(t if t > 0 else None for t in trailing)),
            chunks=_growing_chunks(len(replicas), trailing, dtype.itemsize))
        ds.attrs["description"] = v.doc
        ds.attrs["coordinates"] = "step time"
        _attach(ds, [rep, axis, *(coords[d] for d in v.dims)])


def _create_state(f: h5py.File, schema: Schema, replicas: np.ndarray) -> None:
    st = f.create_group(STATE_GROUP, track_order=True)
    groups = np.array([c.group for c in schema.cadences], dtype=h5py.string_dtype())
    cad = _scale(st, CADENCE_DIM, groups)
    cad.attrs["description"] = "cadence groups, in the order of the entries counts"
    ds = st.create_dataset("committed", data=np.int8(-1))
    ds.attrs["description"] = "slot holding the committed checkpoint: 0 or 1, -1 if none yet"
    ds = st.create_dataset("committed_entries", data=np.zeros(len(groups), np.int64))
    ds.attrs["description"] = "entries of each cadence committed (copy of the committed slot's entries)"
    _attach(ds, [cad])
    for k in (0, 1):
        slot = st.create_group(f"slot{k}", track_order=True)
        rep = _scale(slot, REPLICA_DIM, replicas)
        rep.attrs["description"] = "global replica index of each row"
        scad = _scale(slot, CADENCE_DIM, groups)
        coords = {}
        for dims, _ in schema.state.values():
            for d in dims:
                if d not in coords:
                    coords[d] = _scale(slot, d, schema.coords[d])
        for name, (dims, dtype) in schema.state.items():
            ds = slot.create_dataset(name, shape=(len(replicas), *schema.shape(dims)), dtype=dtype)
            _attach(ds, [rep, *(coords[d] for d in dims)])
        for name, dtype in schema.state_scalars.items():
            slot.create_dataset(name, shape=(), dtype=dtype)
        ds = slot.create_dataset("entries", data=np.zeros(len(groups), np.int64))
        ds.attrs["description"] = "entries of each cadence covered by this checkpoint"
        _attach(ds, [scad])


def _create_static(f: h5py.File, name: str, value: np.ndarray) -> None:
    parent, _, leaf = name.rpartition("/")
    g = f
    for part in parent.split("/"):
        g = g[part] if part in g else g.create_group(part, track_order=True)
    data = _to_h5(value)
    if data.dtype.kind != "O" and data.nbytes > _STATIC_CHUNK_ABOVE:
        g.create_dataset(leaf, data=data, chunks=True, **_filters(data.dtype))
    else:
        g.create_dataset(leaf, data=data)


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class _Source:
    """What an :class:`Ensemble` reads from: an open HDF5 file or a memory snapshot."""

    label: str  # the path, for messages
    get: Callable[[str], Any]  # full dataset name -> h5py.Dataset or np.ndarray
    attrs: dict
    schema: Schema
    static: tuple[str, ...]  # names of the static datasets
    replicas: np.ndarray
    committed: int  # slot of the committed checkpoint, -1 if none
    entries: dict[str, int]  # committed entries per cadence group
    stored: dict[str, int]  # entries stored per cadence group (>= committed)
    close: Callable[[], None]


def _scale_name(ds: h5py.Dataset, axis: int, label: str) -> str:
    scales = ds.dims[axis]
    if len(scales) == 0:
        raise FormatError(f"{label}: not a langevin_nn ensemble file ({ds.name} axis {axis} has no dimension scale)")
    return scales[0].name.rsplit("/", 1)[-1]


def _read_values(ds) -> np.ndarray:
    if isinstance(ds, h5py.Dataset) and h5py.check_string_dtype(ds.dtype) is not None:
        return np.array(ds.asstr()[()], dtype=str)
    return np.asarray(ds[()])


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_format(f: h5py.File, label: str) -> None:
    fmt = _attr(f.attrs.get("format"))
    if fmt != FORMAT_NAME:
        why = "no 'format' attribute" if fmt is None else f"format is {fmt!r}"
        raise FormatError(f"{label}: not a langevin_nn ensemble file ({why})")
    version = _attr(f.attrs.get("format_version"))
    if not isinstance(version, int):
        raise FormatError(f"{label}: not a langevin_nn ensemble file (no integer 'format_version' attribute)")
    if version > FORMAT_VERSION or version < 1:
        raise FormatError(f"{label}: format version {version}, this langevin_nn reads version {FORMAT_VERSION}")


def _read_layout(f: h5py.File, label: str) -> _Source:
    """Check the format and read the schema, committed slot and entries (nothing is loaded but
    coordinates and counters). Raises FormatError on anything missing."""
    _check_format(f, label)
    for name in ("committed", "committed_entries", CADENCE_DIM, "slot0", "slot1"):
        if f"{STATE_GROUP}/{name}" not in f:
            raise FormatError(f"{label}: not a langevin_nn ensemble file (no '{STATE_GROUP}/{name}')")
    st = f[STATE_GROUP]
    groups = [str(g) for g in _read_values(st[CADENCE_DIM])]
    committed = int(st["committed"][()])
    if committed not in (-1, 0, 1):
        raise FormatError(f"{label}: corrupt file (state/committed = {committed})")
    coords: dict[str, np.ndarray] = {}

    def coord(g: h5py.Group, d: str) -> None:
        if d not in coords:
            coords[d] = _read_values(g[d])

    cadences, stored = [], {}
    for group in groups:
        g = f[group]
        dim = str(_attr(g.attrs["dimension"]))
        vars_ = []
        for name, ds in g.items():
            if name in ("step", "time") or not isinstance(ds, h5py.Dataset) or ds.is_scale:
                continue
            dims = tuple(_scale_name(ds, a, label) for a in range(ds.ndim))
            if dims[:2] != (REPLICA_DIM, dim):
                raise FormatError(f"{label}: corrupt file ({ds.name} has dimensions {dims})")
            for d in dims[2:]:
                coord(g, d)
            doc = str(_attr(ds.attrs.get("description", "")))
            vars_.append(Var(name, dims[2:], ds.dtype.name, doc))
        cadences.append(Cadence(group, dim, int(_attr(g.attrs["every"])), tuple(vars_)))
        stored[group] = g["step"].shape[0]
    slot = st["slot0"]
    state, scalars = {}, {}
    for name, ds in slot.items():
        if name == "entries" or not isinstance(ds, h5py.Dataset) or ds.is_scale:
            continue
        if ds.ndim == 0:
            scalars[name] = ds.dtype.name
            continue
        dims = tuple(_scale_name(ds, a, label) for a in range(ds.ndim))
        for d in dims[1:]:
            coord(slot, d)
        state[name] = (dims[1:], ds.dtype.name)
    schema = Schema(tuple(cadences), coords, state, scalars)
    replicas = np.asarray(slot[REPLICA_DIM][()], dtype=np.int64)
    if committed >= 0:
        counts = st[f"slot{committed}/entries"][()]
    else:
        counts = np.zeros(len(groups), np.int64)
    entries = {g: int(n) for g, n in zip(groups, counts)}
    for g in groups:
        if stored[g] < entries[g]:
            raise FormatError(f"{label}: corrupt file ({g} holds {stored[g]} entries, {entries[g]} committed)")
    static = []
    for top, obj in f.items():
        if top in groups or top == STATE_GROUP:
            continue
        if isinstance(obj, h5py.Dataset):
            static.append(top)
        else:
            obj.visititems(lambda n, o: static.append(f"{top}/{n}") if isinstance(o, h5py.Dataset) else None)
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    return _Source(label=label, get=f.__getitem__, attrs=attrs, schema=schema, static=tuple(sorted(static)),
                   replicas=replicas, committed=committed, entries=entries, stored=stored, close=f.close)


def _h5_source(f: h5py.File, label: str, close: Callable[[], None]) -> _Source:
    try:
        source = _read_layout(f, label)
    except _BROKEN as e:
        raise FormatError(f"{label}: not a langevin_nn ensemble file ({_h5_error(e)})") from None
    source.close = close
    return source


def open_ensemble(path) -> "Ensemble":
    """Open an ensemble file for reading (without HDF5 file locking, so that a file can be
    inspected while a run writes it). FormatError for foreign, incomplete or unreadable files."""
    label = _label(path)
    if not os.path.exists(path):
        raise UserError(f"{label}: no such file")
    f = None
    # No lock, so that a run writing the file does not block us. HDF5 shares one handle per
    # file within a process and insists on the same locking flags: if this process already has
    # the file open (an HDF5Writer, or h5py/xarray with default flags), use theirs.
    for locking in (False, "best-effort", None):
        try:
            f = h5py.File(path, "r", locking=locking)
            break
        except OSError as e:
            if "locking flag" not in str(e) or locking is None:
                raise FormatError(f"{label}: not a langevin_nn ensemble file ({_h5_error(e)})") from None
    try:
        return Ensemble(_h5_source(f, label, close=f.close))
    except BaseException:
        f.close()
        raise


def _is_all(sel) -> bool:
    return isinstance(sel, slice) and sel == slice(None)


def _normalize(sel, n: int, what: str, allow_list: bool):
    """``sel`` on an axis of length n as (selection h5py and NumPy both accept, NumPy index to
    apply afterwards or None). h5py takes steps > 0 and one increasing index list per read."""
    if isinstance(sel, slice):
        start, stop, step = sel.indices(n)
        if step > 0:
            return slice(start, stop, step), None
        sel = np.arange(start, stop, step)
    if isinstance(sel, (int, np.integer)) and not isinstance(sel, (bool, np.bool_)):
        i = int(sel) + (n if sel < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"{what} index {int(sel)} out of range for length {n}")
        return i, None
    idx = np.asarray(sel)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(f"{what}: boolean selection of shape {idx.shape}, axis has length {n}")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise IndexError(f"{what}: selection must be a slice, an integer or a 1-D integer array")
    idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
    if idx.size == 0:
        return slice(0, 0), None
    if idx.min() < 0 or idx.max() >= n:
        raise IndexError(f"{what} index out of range for length {n}")
    uniq, inverse = np.unique(idx, return_inverse=True)
    if allow_list:
        post = None if uniq.size == idx.size and np.all(uniq == idx) else inverse
        return uniq, post
    return slice(int(uniq[0]), int(uniq[-1]) + 1), idx - uniq[0]


class Ensemble:
    """A lazy reader of an ensemble file (or of a :class:`MemoryWriter`); a context manager.

    Only committed entries and the committed checkpoint are visible. Names are ``group/name``:
    a cadence variable ``records/loss_train`` (R, S, *trailing), its ``records/step`` and
    ``records/time`` (S), its coordinates (``records/replica``, ``records/record``,
    ``records/link``), a checkpoint array ``state/theta`` (R, *trailing) or scalar ``state/step``,
    or a static array ``data/X_train``. ``state/slot0/theta`` reads a slot explicitly
    (committed or not; a memory reader has only ``slot0``).
    """

    def __init__(self, source: _Source):
        self._src = source
        self.attrs: dict = source.attrs
        self.schema: Schema = source.schema
        self.replicas: np.ndarray = source.replicas
        self.path: str = source.label
        self.entries: dict[str, int] = dict(source.entries)  # committed entries per cadence
        self._cadences = {c.group: c for c in source.schema.cadences}
        scalars = source.schema.state_scalars
        self.steps_done = int(self._scalar("step")) if "step" in scalars else 0
        self.time_done = float(self._scalar("time")) if "time" in scalars else 0.0

    @property
    def config_text(self) -> str:
        return str(self.attrs.get("config_text", ""))

    @property
    def config_effective(self) -> str:
        return str(self.attrs.get("config_effective", ""))

    @property
    def config_hash(self) -> str:
        return str(self.attrs.get("config_hash", ""))

    @property
    def has_checkpoint(self) -> bool:
        return self._src.committed >= 0

    def groups(self) -> list[str]:
        """Cadence groups (schema order), then ``state``, then the static groups."""
        static = list(dict.fromkeys(n.split("/", 1)[0] for n in self._src.static))
        return [*self._cadences, STATE_GROUP, *static]

    def vars(self, group: str) -> list[str]:
        """Readable names under ``group`` (cadence variables without step/time/coordinates)."""
        if group in self._cadences:
            return [v.name for v in self._cadences[group].vars]
        if group == STATE_GROUP:
            return [*self.schema.state, *self.schema.state_scalars]
        prefix = group + "/"
        names = [n[len(prefix):] for n in self._src.static if n.startswith(prefix)]
        if not names:
            raise UserError(f"{self.path}: no group {group!r} (have {self.groups()})")
        return names

    def _locate(self, name: str) -> tuple[str, list[tuple[str, int]]]:
        """(stored dataset name, the leading axes that take a selection: ("replicas"|"index", n))."""
        name = name.strip("/")
        group, _, rest = name.partition("/")
        R = len(self.replicas)
        if group in self._cadences:
            cad = self._cadences[group]
            n = self.entries[group]
            if rest in ("step", "time", cad.dim):
                return name, [("index", n)]
            if rest == REPLICA_DIM:
                return name, [("replicas", R)]
            if any(v.name == rest for v in cad.vars):
                return name, [("replicas", R), ("index", n)]
            if any(rest in v.dims for v in cad.vars):
                return name, []
        elif group == STATE_GROUP and rest:
            slot, _, leaf = rest.partition("/")
            if slot in ("slot0", "slot1") and leaf:  # an explicit slot, committed or not
                stored, rest = name, leaf
            elif self._src.committed < 0:
                raise UserError(f"{self.path}: no committed checkpoint (cannot read {name})")
            else:
                stored = f"{STATE_GROUP}/slot{self._src.committed}/{rest}"
            if rest in self.schema.state or rest == REPLICA_DIM:
                return stored, [("replicas", R)]
            if rest in self.schema.state_scalars or any(rest in d for d, _ in self.schema.state.values()):
                return stored, []
        elif name in self._src.static:
            return name, []
        raise UserError(f"{self.path}: no dataset {name!r}")

    def _dataset(self, stored: str):
        try:
            return self._src.get(stored)
        except (KeyError, OSError) as e:
            raise FormatError(f"{self.path}: cannot read {stored} ({_h5_error(e)})") from None

    def read(self, name: str, replicas=slice(None), index=slice(None)) -> np.ndarray:
        """Load ``name``, selecting replica rows (positions along axis 0, not global indices;
        see :attr:`replicas`) and entries (``index`` along the cadence axis, within the
        committed entries). Selections: slice, int (drops the axis), integer or boolean array."""
        stored, axes = self._locate(name)
        sels = {"replicas": replicas, "index": index}
        for key, sel in sels.items():
            if not _is_all(sel) and key not in [a for a, _ in axes]:
                raise ValueError(f"{name} has no {'replica' if key == 'replicas' else 'cadence'} axis to select")
        ds = self._dataset(stored)
        h5sel, posts, list_used = [], [], False
        for key, n in axes:
            s, post = _normalize(sels[key], n, f"{name} {key}", allow_list=not list_used)
            list_used = list_used or isinstance(s, np.ndarray)
            h5sel.append(s)
            posts.append((isinstance(s, int), post))
        try:
            if h5sel:
                out = ds[tuple(h5sel)]
            else:
                out = _read_values(ds)
        except OSError as e:
            raise FormatError(f"{self.path}: cannot read {stored} ({_h5_error(e)})") from None
        out = np.asarray(out)
        axis = 0
        for dropped, post in posts:
            if dropped:
                continue
            if post is not None:
                out = np.take(out, post, axis=axis)
            axis += 1
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of ``read(name)`` with no selection (committed entries only)."""
        stored, axes = self._locate(name)
        shape = np.shape(self._dataset(stored))
        return tuple(n for _, n in axes) + tuple(shape[len(axes):])

    def dtype(self, name: str) -> np.dtype:
        """dtype of ``read(name)`` (``str`` for any string array)."""
        stored, _ = self._locate(name)
        ds = self._dataset(stored)
        if isinstance(ds, h5py.Dataset) and h5py.check_string_dtype(ds.dtype) is not None:
            return np.dtype(str)
        return np.dtype(str) if ds.dtype.kind == "U" else ds.dtype

    def state(self) -> dict[str, np.ndarray]:
        """The committed checkpoint: state arrays (R, *trailing) and scalars as 0-d arrays;
        empty if the file holds no checkpoint yet."""
        if self._src.committed < 0:
            return {}
        return {name: self.read(f"{STATE_GROUP}/{name}")
                for name in (*self.schema.state, *self.schema.state_scalars)}

    def _scalar(self, name: str):
        if self._src.committed < 0:
            return 0
        return self.read(f"{STATE_GROUP}/{name}")[()]

    def close(self) -> None:
        self._src.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<Ensemble {self.path}: {len(self.replicas)} replicas, {self.steps_done} steps>"


# --------------------------------------------------------------------------------------------
# Summary for `langevin-nn info`


def _replica_list(r: np.ndarray) -> str:
    if r.size and np.array_equal(r, np.arange(r[0], r[0] + r.size)):
        return f"{r[0]}..{r[-1]}" if r.size > 1 else f"{r[0]}"
    shown = ", ".join(str(x) for x in r[:8])
    return shown + (", ..." if r.size > 8 else "")


def _width(names) -> int:
    """Width of a name column: the longest name, at least 12."""
    return max([12, *(len(n) for n in names)])


def _dims_text(dims: tuple[str, ...]) -> str:
    return "(" + ", ".join(dims) + ")"


def format_info(ens: Ensemble) -> str:
    """A readable multi-line summary of an ensemble (what ``langevin-nn info FILE`` prints)."""
    a = ens.attrs
    lines = [f"file:          {ens.path}",
             f"format:        {a.get('format')} version {a.get('format_version')}",
             f"package:       langevin_nn {a.get('package_version', '?')}",
             f"created:       {a.get('created', '?')}",
             f"config hash:   {ens.config_hash or '?'}",
             f"replicas:      {len(ens.replicas)} ({_replica_list(ens.replicas)})"]
    if ens.has_checkpoint:
        lines.append(f"steps done:    {ens.steps_done} (time {ens.time_done:g})")
    else:
        lines.append("steps done:    none (no committed checkpoint yet)")
    wanted = ("diverged", "diverged_step", *ens.schema.state_scalars)  # not the big arrays
    state = {k: ens.read(f"{STATE_GROUP}/{k}") for k in wanted
             if ens.has_checkpoint and (k in ens.schema.state or k in ens.schema.state_scalars)}
    if "diverged" in state:
        div = np.asarray(state["diverged"], dtype=bool)
        which = np.flatnonzero(div)
        text = f"{which.size} of {div.size} replicas"
        if which.size:
            first = which[:5]
            if "diverged_step" in state:
                steps = np.asarray(state["diverged_step"])
                parts = [f"{ens.replicas[i]} at step {steps[i]}" for i in first]
            else:
                parts = [str(ens.replicas[i]) for i in first]
            text += ": replica " + ", ".join(parts) + (", ..." if which.size > first.size else "")
        lines.append(f"diverged:      {text}")
    lines.append("groups:")
    for c in ens.schema.cadences:
        n = ens.entries[c.group]
        extra = ens._src.stored[c.group] - n
        pending = f" (+{extra} uncommitted)" if extra else ""
        lines.append(f"  {c.group}/  every {c.every} steps, {n} entries along '{c.dim}'{pending}")
        w = _width(v.name for v in c.vars)
        for v in c.vars:
            dims = (REPLICA_DIM, c.dim, *v.dims)
            lines.append(f"    {v.name:<{w}} {np.dtype(v.dtype).name:<8} {_dims_text(dims)} = "
                         f"{ens.shape(f'{c.group}/{v.name}')}  {v.doc}".rstrip())
    lines.append(f"  {STATE_GROUP}/  checkpoint"
                 + (f" (slot {ens._src.committed})" if ens.has_checkpoint else " (none committed)"))
    w = _width([*ens.schema.state, *ens.schema.state_scalars])
    for name, (dims, dtype) in ens.schema.state.items():
        shape = (len(ens.replicas), *ens.schema.shape(dims))
        lines.append(f"    {name:<{w}} {np.dtype(dtype).name:<8} {_dims_text((REPLICA_DIM, *dims))} = {shape}")
    for name, dtype in ens.schema.state_scalars.items():
        value = f" = {state[name][()]}" if name in state else ""
        lines.append(f"    {name:<{w}} {np.dtype(dtype).name:<8} (){value}")
    for group in ens.groups():
        if group in ens._cadences or group == STATE_GROUP:
            continue
        lines.append(f"  {group}/  static")
        w = _width(ens.vars(group))
        for name in ens.vars(group):
            full = f"{group}/{name}"
            lines.append(f"    {name:<{w}} {ens.dtype(full).name:<8} {ens.shape(full)}")
    shown = {"format", "format_version", "created", "package_version", "config_hash"}
    scalars = [(k, v) for k, v in a.items() if k not in shown and isinstance(v, (int, float, str))
               and not (isinstance(v, str) and ("\n" in v or len(v) > 80))]
    long = [k for k, v in a.items() if isinstance(v, str) and "\n" in v]
    if scalars or long:
        lines.append("attributes:")
        w = _width([k for k, _ in scalars] + long)
        for k, v in scalars:
            lines.append(f"  {k:<{w}} {v}")
        for k in long:
            lines.append(f"  {k:<{w}} ({a[k].count(chr(10)) + 1} lines of text)")
    return "\n".join(lines)
