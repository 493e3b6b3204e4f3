"""The schema of an ensemble file: what it records (cadences and their per-replica variables,
the checkpoint arrays, the values of the fixed dimensions), fixed when it is created, and its
validation; the names every file shares (format, reserved dimensions and groups)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT_NAME = "langevin_nn.ensemble"
FORMAT_VERSION = 1

REPLICA_DIM = "replica"
STATE_GROUP = "state"
CADENCE_DIM = "cadence"  # dimension of state/committed_entries and state/slotK/entries
_NUMERIC_KINDS = "biuf"


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
