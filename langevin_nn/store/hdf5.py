"""The HDF5 writer (:class:`HDF5Writer`) and the helpers that create the file's datasets.

Crash safety: entries become *committed* by the next :meth:`Writer.checkpoint`, which writes the
inactive one of two state slots, flushes, and only then flips the one-byte pointer
``state/committed``. Readers and :meth:`HDF5Writer.resume` see committed entries only, so a run
killed at any point resumes from a consistent (state, records) pair.
"""
from __future__ import annotations

import math
import os

import h5py
import numpy as np

from langevin_nn.errors import FormatError, UserError

from .reader import Ensemble, _h5_error, _h5_source, _label, open_ensemble
from .schema import CADENCE_DIM, REPLICA_DIM, STATE_GROUP, Cadence, Schema
from .writer import (_check_append, _check_checkpoint, _check_replicas, _check_static, _root_attrs,
                     copy_committed, static_arrays)

#: HDF5 format bounds: the oldest object versions that can hold the file; nothing needs more
#: than HDF5 1.10 (dimension scales and creation-order tracking are HDF5 1.8 features).
LIBVER = ("earliest", "v110")

# Chunks of growing datasets: at least 64 KiB (uncompressed), at most 1 MiB. The low end keeps
# the cost of flushing after every append small: a partly filled chunk is recompressed at each
# flush, so a chunk of C entries filled n at a time is compressed about C/n times.
_CHUNK_TARGET = 64 * 1024
_CHUNK_MAX = 1024 * 1024
_REPLICA_CHUNK = 64
_STATIC_CHUNK_ABOVE = 1024 * 1024  # static arrays larger than this are chunked and compressed


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
