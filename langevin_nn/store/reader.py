"""Reading: :func:`open_ensemble` and the lazy reader :class:`Ensemble` (over an HDF5 file or
a memory snapshot), with the layout check and the selection helpers."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import h5py
import numpy as np

from langevin_nn.errors import FormatError, UserError

from .schema import (CADENCE_DIM, FORMAT_NAME, FORMAT_VERSION, REPLICA_DIM, STATE_GROUP, Cadence,
                     Schema, Var)

#: What h5py and our own checks raise on a file that lacks or garbles part of the layout.
_BROKEN = (KeyError, OSError, ValueError, TypeError, IndexError)


def _label(path) -> str:
    return os.fspath(path)


def _h5_error(e: BaseException) -> str:
    """One line from an h5py/HDF5 exception, without h5py's "Unable to ... (...)" wrapping."""
    if isinstance(e, IsADirectoryError):
        return "is a directory"
    text = " ".join(str(e).split())
    wrapped = re.match(r"^(?:\[Errno \d+\] )?Unable to synchronously [a-z ]+? \((.*)\)$", text)
    return (wrapped.group(1) if wrapped else text) or type(e).__name__


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
