"""A sweep on SLURM: one job array over the points (or point x shard) not yet complete, and a
collect job after it that merges the shards and refreshes the index.

    submit_sweep(sw, "out/otc", time="1:00:00")             # SLURM: one array + a collect job
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Sequence

from ..errors import UserError
from .index import SweepIndex, _now, file_status, refresh
from .prepare import _lock, check_dir, prepare
from .runner import _package_root, _stderr, _warm
from .spec import Sweep

SLURM_DIR = "slurm"


@dataclass(frozen=True)
class SweepSubmission:
    """What ``submit_sweep`` wrote and submitted: the tasks (point name, shard or None) of the
    array, the points already complete, the scripts, and the job ids (None for a dry run or
    when there was nothing to run)."""

    outdir: str
    tasks: tuple
    skipped: tuple
    array_script: str | None
    collect_script: str
    array_id: str | None = None
    collect_id: str | None = None


def _template(name: str) -> str:
    return (resources.files("langevin_nn") / "templates" / name).read_text()


def write_slurm_scripts(idx: SweepIndex, tasks: Sequence[tuple[str, str | None]], *,
                        partition: str | None = None, time: str | None = None,
                        cpus_per_task: int = 1, mem: str | None = None,
                        account: str | None = None, extra_sbatch: tuple[str, ...] = (),
                        signal_seconds: int = 120, max_requeue: int = 3, copy: bool = False,
                        analyze: bool = False, name: str | None = None) -> tuple[str | None, str]:
    """Write DIR/slurm/sweep_array.sbatch (one task per (point, shard)) and
    DIR/slurm/sweep_collect.sbatch; returns their paths (no array script without tasks)."""
    sdir = os.path.join(idx.dir, SLURM_DIR)
    logs = os.path.join(sdir, "logs")
    os.makedirs(logs, exist_ok=True)
    name = name or f"lnn-sweep-{idx.hash[:8]}"
    from ..slurm import sbatch_lines

    lines, env = sbatch_lines(partition, time, mem, account, extra_sbatch)
    env.append(f"export PYTHONPATH={shlex.quote(_package_root())}${{PYTHONPATH:+:$PYTHONPATH}}")
    common = dict(name=name, logs=logs, python=shlex.quote(sys.executable),
                  sbatch_lines="\n".join(lines), env_lines="\n".join(env),
                  outdir=shlex.quote(idx.dir), sweep=idx.name)
    array_path = None
    if tasks:
        table = "\n".join(f"  \"{n}{' ' + s if s else ''}\"" for n, s in tasks)
        text = _template("sweep_array.sbatch").format(
            last=len(tasks) - 1, n_tasks=len(tasks), signal_seconds=signal_seconds,
            cpus=cpus_per_task, max_requeue=max_requeue, tasks=table, **common)
        array_path = os.path.join(sdir, "sweep_array.sbatch")
        with open(array_path, "w") as f:
            f.write(text)
        os.chmod(array_path, 0o755)
    opts = (" --copy" if copy else "") + (" --analyze" if analyze else "")
    text = _template("sweep_collect.sbatch").format(options=opts, **common)
    collect_path = os.path.join(sdir, "sweep_collect.sbatch")
    with open(collect_path, "w") as f:
        f.write(text)
    os.chmod(collect_path, 0o755)
    return array_path, collect_path


def submit_sweep(sw: Sweep, outdir, *, shards: int | None = None, dry_run: bool = False,
                 warm: bool = True, log: Callable[[str], None] | None = None,
                 **opts) -> SweepSubmission:
    """Prepare the folder and submit the points not yet complete as one SLURM job array (one
    task per point, or per point x shard with ``shards`` > 1) plus a collect job that runs after
    it (``--dependency=afterok``): merges the shards, refreshes the index (and with
    ``analyze=True`` writes the sweep table). ``opts``: the scheduler options of
    ``slurm.write_scripts`` (partition, time, cpus_per_task, mem, account, extra_sbatch,
    signal_seconds, max_requeue), ``copy``, ``analyze``."""
    from ..slurm import _sbatch

    log = log or (lambda msg: None)
    if shards is not None and shards < 1:
        raise UserError(f"--shards {shards}: expected a positive integer")
    outdir = os.path.abspath(os.fspath(outdir))
    check_dir(sw, outdir)  # before anything is written
    os.makedirs(outdir, exist_ok=True)
    with _lock(outdir, "submit"):
        idx = prepare(sw, outdir, shards=shards)
        tasks, skipped = [], []
        for p in idx.points:
            if p["status"] == "complete":
                skipped.append(p["name"])
                continue
            if p["status"] in ("foreign", "corrupt"):
                raise UserError(f"{idx.path_of(p)}: {p['status']}: {p.get('error')}; remove it "
                                "to run the point again")
            n = p.get("shards", 1)
            if n > 1:
                tasks += [(p["name"], f"{i}/{n}") for i in range(n)]
            else:
                tasks.append((p["name"], None))
        array, collect_script = write_slurm_scripts(idx, tasks, **opts)
        if dry_run or not tasks:
            refresh(idx)
            idx.save()
            return SweepSubmission(idx.dir, tuple(tasks), tuple(skipped), array, collect_script)
        if warm:
            _warm([idx.by_name(n) for n, _ in dict.fromkeys(tasks)], idx, log)
        array_id = _sbatch([array])
        collect_id = _sbatch([f"--dependency=afterok:{array_id}", collect_script])
        idx.data["slurm"] = {"array_id": array_id, "collect_id": collect_id,
                             "submitted": _now(), "tasks": len(tasks)}
        refresh(idx)
        for p in idx.points:
            if p["name"] in {n for n, _ in tasks} and p["status"] in ("pending", "partial"):
                p["status"] = "submitted"
        idx.save()
    return SweepSubmission(idx.dir, tuple(tasks), tuple(skipped), array, collect_script,
                           array_id, collect_id)


def collect(outdir, *, copy: bool = False, analyze: bool = False,
            log: Callable[[str], None] | None = _stderr) -> SweepIndex:
    """After the array: merge the shards of every sharded point whose shards are complete,
    refresh the index, and (``analyze``) write the sweep table into DIR/analysis."""
    from ..merge import merge

    log = log or (lambda msg: None)
    idx = SweepIndex.load(outdir)
    with _lock(idx.dir, "collect"):
        for p in idx.points:
            n = p.get("shards", 1)
            if n <= 1:
                continue
            if file_status(idx.path_of(p), p["config_hash"], p["steps"])["status"] == "complete":
                continue
            files = [os.path.join(idx.point_dir(p), f"shard_{i}.h5") for i in range(n)]
            sts = [file_status(f, p["config_hash"], p["steps"])["status"] for f in files]
            if all(s == "complete" for s in sts):
                merge(files, idx.path_of(p), copy=copy, overwrite=True)
                log(f"{p['name']}: merged {n} shards")
            else:
                log(f"{p['name']}: shards not complete ({sts.count('complete')} of {n})")
        for p in idx.points:
            if p.get("status") == "submitted":
                p["status"] = "pending"
        refresh(idx)
        idx.save()
    c = idx.counts()
    log(f"{idx.dir}: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    if analyze:
        from ..sweep_analysis import write_report

        out = write_report(idx.dir)
        log(f"sweep table and figures in {out['outdir']}")
    return idx
