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

The modules:

* ``schema``: what a file records (Var, Cadence, Schema, their validation) and the names every
  file shares (FORMAT_NAME, FORMAT_VERSION, REPLICA_DIM, STATE_GROUP, CADENCE_DIM);
* ``writer``: the Writer protocol, the argument checks both writers share, and copying committed
  entries and state into a writer (copy_committed, static_arrays);
* ``memory``: the in-memory writer (MemoryWriter);
* ``hdf5``: the HDF5 writer (HDF5Writer, LIBVER), the dataset layout it creates and crash safety;
* ``reader``: reading (open_ensemble, Ensemble, the layout check and the selection helpers);
* ``info``: the summary ``langevin-nn info FILE`` prints (format_info).
"""
from __future__ import annotations

from .hdf5 import LIBVER, HDF5Writer
from .info import format_info
from .memory import MemoryWriter
from .reader import Ensemble, open_ensemble
from .schema import (CADENCE_DIM, FORMAT_NAME, FORMAT_VERSION, REPLICA_DIM, STATE_GROUP, Cadence,
                     Schema, Var)
from .writer import Writer, copy_committed, static_arrays

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "LIBVER", "REPLICA_DIM", "STATE_GROUP", "CADENCE_DIM",
    "Var", "Cadence", "Schema", "Writer", "MemoryWriter", "HDF5Writer", "open_ensemble", "Ensemble",
    "static_arrays", "copy_committed", "format_info",
]
