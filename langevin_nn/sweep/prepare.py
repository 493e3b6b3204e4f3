"""The sweep folder: ``prepare`` writes the sweep file's text, every point's config and the
index; ``check_dir`` refuses a folder of another sweep before anything is written; ``_lock``
keeps one runner per folder."""
from __future__ import annotations

import contextlib
import os

from ..errors import UserError
from .index import FORMAT, FORMAT_VERSION, INDEX, POINTS_DIR, SweepIndex, _now, refresh
from .spec import Point, Sweep


def _point_entry(sw: Sweep, p: Point, shards: int) -> dict:
    rel = os.path.join(POINTS_DIR, p.name)
    return {"index": p.index, "name": p.name, "values": p.values, "config_hash": p.hash,
            "config": os.path.join(rel, "config.toml"), "file": os.path.join(rel, "ensemble.h5"),
            "seed": p.config.ensemble.seed, "steps": p.config.ensemble.steps,
            "replicas": p.config.ensemble.replicas,
            "shards": min(shards, p.config.ensemble.replicas), "status": "pending",
            "steps_done": None, "diverged": None, "error": None}


def check_dir(sw: Sweep, outdir: str) -> SweepIndex | None:
    """The existing index of ``outdir`` if it belongs to this sweep, None for a new or empty
    folder; a one-line UserError for a folder of another sweep or of something else."""
    outdir = os.fspath(outdir)
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UserError(f"{outdir}: exists and is not a directory")
    if not os.path.isdir(outdir) or not [f for f in os.listdir(outdir) if f != ".lock"]:
        return None
    if not os.path.exists(os.path.join(outdir, INDEX)):
        raise UserError(f"{outdir}: exists and is not a sweep directory (no {INDEX}); "
                        "choose a new or empty folder")
    idx = SweepIndex.load(outdir)
    if idx.hash != sw.hash:
        raise UserError(f"{outdir}: belongs to another sweep ({idx.name!r}, hash {idx.hash}; this "
                        f"sweep {sw.name!r} has hash {sw.hash}); choose another folder")
    return idx


def prepare(sw: Sweep, outdir, *, shards: int | None = None) -> SweepIndex:
    """Create (or update) the sweep folder: the sweep file's text, every point's config and the
    index with fresh statuses. Refuses, before writing anything, a folder of another sweep."""
    from ..config import load_config

    outdir = os.path.abspath(os.fspath(outdir))
    old = check_dir(sw, outdir)
    shards = sw.shards if shards is None else shards
    if shards < 1:
        raise UserError(f"--shards {shards}: expected a positive integer")
    os.makedirs(os.path.join(outdir, POINTS_DIR), exist_ok=True)
    with open(os.path.join(outdir, "sweep.toml"), "w") as f:
        f.write(sw.text)
    prior = {p["name"]: p for p in old.points} if old else {}
    entries = []
    for p in sw.points:
        d = os.path.join(outdir, POINTS_DIR, p.name)
        os.makedirs(d, exist_ok=True)
        cpath = os.path.join(d, "config.toml")
        text = p.config.to_toml()
        current = None
        if os.path.exists(cpath):
            with open(cpath) as f:
                current = f.read()
        if current != text:
            with open(cpath, "w") as f:
                f.write(text)
            if load_config(cpath).hash != p.hash:  # the written config must be the point
                raise RuntimeError(f"{cpath}: the effective config does not reproduce hash {p.hash}")
        e = _point_entry(sw, p, shards)
        if p.name in prior:
            for k in ("status", "error", "seconds"):
                if k in prior[p.name]:
                    e[k] = prior[p.name][k]
            if shards == sw.shards and prior[p.name].get("shards", 1) > 1:
                e["shards"] = prior[p.name]["shards"]  # keep a SLURM layout found on disk
        entries.append(e)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": sw.name,
            "sweep_hash": sw.hash, "source": sw.path, "base": sw.base,
            "overrides": list(sw.overrides),
            "created": old.data.get("created") if old else _now(),
            "keys": sw.keys, "axes": [a.to_dict() for a in sw.axes],
            "independent_seeds": sw.independent_seeds, "points": entries}
    idx = SweepIndex(outdir, data)
    refresh(idx)
    idx.save()
    return idx


@contextlib.contextmanager
def _lock(outdir: str, what: str):
    """One runner per sweep folder (an advisory lock on DIR/.lock)."""
    import fcntl

    path = os.path.join(outdir, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                holder = "?"
            raise UserError(f"{outdir}: another langevin-nn sweep is using it ({holder}); "
                            "wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
