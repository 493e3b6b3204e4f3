"""Merging shard files into one ensemble file.

Shards of one run (``langevin-nn run CONFIG --shard I/N``) hold disjoint, contiguous blocks of
global replica indices. Every per-replica dataset has the replica axis first, so merging is
concatenation along that axis:

* default: an HDF5 *virtual-dataset* file whose per-replica datasets reference the shards'
  committed entries without copying (the shards must stay where they are: source paths are stored
  relative to the merged file's folder, so the folder can move as a whole);
* ``copy=True``: a self-contained file, written entry block by entry block (never the whole
  ensemble in memory).

Readers (``open_ensemble``, h5py, xarray) see the same layout as a single-machine file; the data
are bit for bit those of a single-process run of the same config.
"""
from __future__ import annotations

import os

import h5py
import numpy as np

from .errors import UserError
from .store import STATE_GROUP, HDF5Writer, copy_committed, open_ensemble, static_arrays

_SHARD_ATTRS = ("shard_index", "shard_count")


def _check(paths: list[str]):
    """Open every shard and check they form one complete ensemble; return them sorted by
    their first replica, with the total replica count (the shards are closed on error)."""
    opened: list = []
    try:
        return _check_open(paths, opened)
    except BaseException:
        for _, e in opened:
            e.close()
        raise


def _check_open(paths: list[str], shards: list):
    if not paths:
        raise UserError("merge: no shard files given")
    for p in paths:
        if not os.path.exists(p):
            raise UserError(f"{p}: no such shard file")
        ens = open_ensemble(p)
        shards.append((p, ens))
    p0, e0 = shards[0]
    for p, e in shards[1:]:
        if e.config_hash != e0.config_hash:
            raise UserError(f"{p}: belongs to another config (hash {e.config_hash}, "
                            f"{p0} has {e0.config_hash})")
    for p, e in shards:
        if not e.has_checkpoint:
            raise UserError(f"{p}: has no checkpoint yet (the shard never started)")
        if e.steps_done != e0.steps_done:
            raise UserError(f"{p}: {e.steps_done} steps done, {p0} has {e0.steps_done} "
                            "(finish every shard with --resume first)")
    shards.sort(key=lambda pe: int(pe[1].replicas[0]))
    R = int(e0.attrs["n_replicas_total"])
    taken: dict[int, str] = {}
    for p, e in shards:
        clash = [int(r) for r in e.replicas if int(r) in taken]
        if clash:
            raise UserError(f"{p}: replicas overlap with {taken[clash[0]]} (replica {clash[0]})")
        taken.update({int(r): p for r in e.replicas})
    seen = np.array(sorted(taken), dtype=np.int64)
    if not np.array_equal(np.sort(seen), np.arange(R)):
        missing = np.setdiff1d(np.arange(R), seen)
        raise UserError(f"merge: replicas {missing[0]}..{missing[-1]} of {R} are in no shard "
                        "given (a shard is missing)")
    return shards, R


def merge(paths: list[str], out: str, *, copy: bool = False, overwrite: bool = False,
          block: int = 256) -> str:
    """Merge shard files into ``out`` (virtual datasets, or a copy); returns ``out``."""
    paths = [os.fspath(p) for p in paths]
    out = os.fspath(out)
    if os.path.abspath(out) in {os.path.abspath(p) for p in paths}:
        raise UserError(f"{out}: the output is one of the shards")
    shards, R = _check(paths)
    try:
        e0 = shards[0][1]
        attrs = {k: v for k, v in e0.attrs.items()
                 if k not in _SHARD_ATTRS and k not in ("format", "format_version", "created")}
        attrs["merged_from"] = "\n".join(os.path.abspath(p) for p, _ in shards)
        schema = e0.schema
        writer = HDF5Writer.create(out, attrs=attrs, schema=schema,
                                   replicas=np.arange(R, dtype=np.int64), static=static_arrays(e0),
                                   overwrite=overwrite)
        try:
            if copy:
                copy_committed(writer, [e for _, e in shards], block)
            else:
                _fill_steps(writer, e0, schema)
        finally:
            writer.close()
        if not copy:
            _virtualise(out, shards, schema)
    finally:
        for _, e in shards:
            e.close()
    return out


def _fill_steps(writer, e0, schema) -> None:
    """Give the skeleton its committed entries (steps, times, zero-filled values) and a
    checkpoint, so that only the per-replica datasets remain to be made virtual."""
    for c in schema.cadences:
        n = e0.entries[c.group]
        vals = {v.name: np.zeros((len(writer.replicas), n) + tuple(schema.coords[d].shape[0] for d in v.dims),
                                 v.dtype) for v in c.vars}
        writer.append(c.group, e0.read(f"{c.group}/step"), e0.read(f"{c.group}/time"), vals)
    st = e0.state()
    writer.checkpoint({k: np.zeros((len(writer.replicas),) + st[k].shape[1:], st[k].dtype)
                       for k in schema.state},
                      {k: st[k][()] for k in schema.state_scalars})


def _replace_virtual(f, name: str, sources) -> None:
    """Replace dataset ``name`` by a virtual dataset concatenating ``sources`` (list of
    (relative path, dataset name in it, shape)) along axis 0, keeping attributes and scales."""
    old = f[name]
    shape, dtype = old.shape, old.dtype
    attrs = dict(old.attrs)
    attrs.pop("DIMENSION_LIST", None)
    scales = [[f[s.name] for s in old.dims[i].values()] for i in range(old.ndim)]
    for i in range(old.ndim):
        for sc in scales[i]:
            old.dims[i].detach_scale(sc)
    del f[name]
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    r0 = 0
    for path, dset, sshape in sources:
        n = sshape[0]
        src = h5py.VirtualSource(path, dset, shape=sshape)
        sel = (slice(0, n),) + tuple(slice(0, s) for s in shape[1:])
        layout[(slice(r0, r0 + n),) + sel[1:]] = src[sel]
        r0 += n
    ds = f.create_virtual_dataset(name, layout, fillvalue=None)
    for k, v in attrs.items():
        ds.attrs[k] = v
    for i, lst in enumerate(scales):
        for sc in lst:
            ds.dims[i].attach_scale(sc)


def _virtualise(out: str, shards, schema) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    with h5py.File(out, "r+") as f:
        committed = []
        for p, _ in shards:
            with h5py.File(p, "r", locking=False) as g:
                committed.append(int(g[f"{STATE_GROUP}/committed"][()]))
        rel = [os.path.relpath(os.path.abspath(p), folder) for p, _ in shards]
        for c in schema.cadences:
            for v in c.vars:
                name = f"{c.group}/{v.name}"
                shape = f[name].shape
                srcs = []
                for (p, e), rp in zip(shards, rel):
                    srcs.append((rp, name, (len(e.replicas),) + shape[1:]))
                _replace_virtual(f, name, srcs)
        slot = f[STATE_GROUP]["committed"][()]
        for k in schema.state:
            name = f"{STATE_GROUP}/slot{slot}/{k}"
            srcs = []
            for (p, e), rp, cs in zip(shards, rel, committed):
                srcs.append((rp, f"{STATE_GROUP}/slot{cs}/{k}", (len(e.replicas),) + f[name].shape[1:]))
            _replace_virtual(f, name, srcs)
