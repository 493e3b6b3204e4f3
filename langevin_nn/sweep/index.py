"""The index of a sweep folder, ``DIR/sweep.json``: every point, its varied values, config
hash, files and status (pending, partial, complete, failed, foreign, corrupt, running,
submitted), recomputed from the files by :func:`refresh`.

    idx = SweepIndex.load("out/otc")                        # the index: points, values, files, status
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Sequence

from ..errors import UserError

INDEX = "sweep.json"
FORMAT = "langevin_nn-sweep"
FORMAT_VERSION = 1
POINTS_DIR = "points"
#: point statuses (``SweepIndex``): no file; a file short of its steps (or with no checkpoint);
#: done; the last attempt raised an error; a file made by another config; an unreadable file;
#: being run by a local runner; in a SLURM array not yet collected.
STATUSES = ("pending", "partial", "complete", "failed", "foreign", "corrupt", "running",
            "submitted")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


class SweepIndex:
    """``DIR/sweep.json``: the sweep's identity, axes and one entry per point.

    ``points``: dicts with index, name, values (dotted key -> value), config_hash, config and
    file (paths relative to DIR), steps, replicas, shards, status, steps_done, diverged, error.
    ``path_of(point, "file")`` gives an absolute path. Iterate with ``index.complete()``."""

    def __init__(self, outdir: str, data: dict):
        self.dir = os.path.abspath(outdir)
        self.data = data

    @classmethod
    def load(cls, outdir) -> "SweepIndex":
        outdir = os.fspath(outdir)
        if os.path.isfile(outdir) and os.path.basename(outdir) == INDEX:
            outdir = os.path.dirname(outdir) or "."
        p = os.path.join(outdir, INDEX)
        if not os.path.isdir(outdir):
            raise UserError(f"{outdir}: no such sweep directory")
        if not os.path.exists(p):
            raise UserError(f"{outdir}: not a sweep directory (no {INDEX})")
        try:
            with open(p) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"{p}: not a readable sweep index ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{p}: not a langevin_nn sweep index (format {data.get('format')!r})"
                            if isinstance(data, dict) else f"{p}: not a langevin_nn sweep index")
        return cls(outdir, data)

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    @property
    def hash(self) -> str:
        return self.data.get("sweep_hash", "")

    @property
    def keys(self) -> list[str]:
        return list(self.data.get("keys", []))

    @property
    def points(self) -> list[dict]:
        return self.data["points"]

    def path_of(self, point: dict, what: str = "file") -> str:
        return os.path.join(self.dir, point[what])

    def point_dir(self, point: dict) -> str:
        return os.path.join(self.dir, POINTS_DIR, point["name"])

    def complete(self) -> list[dict]:
        return [p for p in self.points if p.get("status") == "complete"]

    def by_name(self, name: str) -> dict:
        for p in self.points:
            if p["name"] == name:
                return p
        raise UserError(f"{self.dir}: no point named {name}")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.points:
            out[p.get("status", "pending")] = out.get(p.get("status", "pending"), 0) + 1
        return out

    def save(self) -> None:
        self.data["updated"] = _now()
        _write_json(os.path.join(self.dir, INDEX), self.data)


def file_status(path: str, config_hash: str, steps: int) -> dict:
    """Status of an ensemble file against its point: status, steps_done, diverged, error."""
    from ..store import open_ensemble

    if not os.path.exists(path):
        return {"status": "pending", "steps_done": None, "diverged": None}
    try:
        with open_ensemble(path) as ens:
            if ens.config_hash != config_hash:
                return {"status": "foreign", "steps_done": None, "diverged": None,
                        "error": f"{path}: made by another config (hash {ens.config_hash})"}
            if not ens.has_checkpoint:
                return {"status": "partial", "steps_done": 0, "diverged": None}
            import numpy as np

            div = int(np.count_nonzero(ens.read("state/diverged")))
            done = int(ens.steps_done)
    except (UserError, OSError) as e:
        return {"status": "corrupt", "steps_done": None, "diverged": None, "error": str(e)}
    return {"status": "complete" if done >= steps else "partial", "steps_done": done,
            "diverged": div}


def _point_status(idx: SweepIndex, p: dict) -> dict:
    """The status of a point from its files (the merged file, or else its shards)."""
    st = file_status(idx.path_of(p), p["config_hash"], p["steps"])
    if st["status"] == "pending" and p.get("shards", 1) > 1:
        sub = [file_status(os.path.join(idx.point_dir(p), f"shard_{i}.h5"), p["config_hash"],
                           p["steps"]) for i in range(p["shards"])]
        bad = [s for s in sub if s["status"] in ("foreign", "corrupt")]
        if bad:
            return bad[0]
        if any(s["status"] != "pending" for s in sub):
            done = sum(s["status"] == "complete" for s in sub)
            return {"status": "partial", "steps_done": min((s["steps_done"] or 0) for s in sub),
                    "diverged": None, "shards_complete": done}
    return st


def refresh(idx: SweepIndex, names: Sequence[str] | None = None) -> SweepIndex:
    """Recompute the status of points (all, or ``names``) from their files; a ``failed``
    status and its error, or ``submitted`` (to SLURM), stay until the point's file is complete."""
    for p in idx.points:
        if names is not None and p["name"] not in names:
            continue
        st = _point_status(idx, p)
        if p.get("status") in ("failed", "submitted") and st["status"] in ("pending", "partial"):
            st = dict(st, status=p["status"], error=p.get("error"))
        p.pop("shards_complete", None)
        p.update({"error": None, **st})
    return idx
