"""SLURM job arrays: sbatch scripts for the shards and a dependent merge; the only subprocesses.

``submit`` writes, in the output folder: ``config.toml`` (the effective config, so every task runs
exactly it), ``array.sbatch`` (one task per shard, each ``langevin-nn run --shard I/N --resume``)
and ``merge.sbatch`` (``langevin-nn merge`` of the shards into the final file), then submits the
array and the merge with ``--dependency=afterok:<array id>``. Before submitting, it compiles the
Numba kernels once on the submitting host, so the tasks load them from the cache instead of many
cold compiles at once on a shared cache (a known source of crashes).

Time limits: tasks ask for ``--signal=B:USR1@S``; on USR1 the run finishes its chunk, writes a
checkpoint, calls ``scontrol requeue`` for itself (at most ``max_requeue`` times, counted by
``SLURM_RESTART_COUNT``) and exits 75. A requeued task is pending again, so the ``afterok``
dependency of the merge still waits for it rather than being cancelled.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources

from .errors import UserError


@dataclass(frozen=True)
class Submission:
    """What ``submit`` wrote and (unless a dry run) the job ids SLURM gave."""

    outdir: str
    array_script: str
    merge_script: str
    output: str
    array_id: str | None = None
    merge_id: str | None = None


def _template(name: str) -> str:
    return (resources.files("langevin_nn") / "templates" / name).read_text()


def sbatch_lines(partition=None, time=None, mem=None, account=None, extra_sbatch=()):
    """The '#SBATCH' lines of the scheduler options, and the environment lines every task needs
    (the Numba cache location of the submitting shell, if set)."""
    lines = [f"#SBATCH --{key}={val}" for key, val in
             (("partition", partition), ("time", time), ("mem", mem), ("account", account)) if val]
    lines += [f"#SBATCH {x}" for x in extra_sbatch]
    env = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        env.append(f"export NUMBA_CACHE_DIR={shlex.quote(os.environ['NUMBA_CACHE_DIR'])}")
    return lines, env


def write_scripts(cfg, outdir: str, *, shards: int, output: str | None = None,
                  partition: str | None = None, time: str | None = None, cpus_per_task: int = 1,
                  mem: str | None = None, account: str | None = None,
                  extra_sbatch: tuple[str, ...] = (), signal_seconds: int = 120,
                  max_requeue: int = 3, copy: bool = False, name: str | None = None) -> Submission:
    """Write config.toml, array.sbatch and merge.sbatch into ``outdir``; nothing is submitted."""
    if shards < 1 or shards > cfg.ensemble.replicas:
        raise UserError(f"--shards {shards}: needs 1 <= shards <= ensemble.replicas "
                        f"({cfg.ensemble.replicas})")
    outdir = os.path.abspath(outdir)
    logs = os.path.join(outdir, "logs")
    os.makedirs(logs, exist_ok=True)
    config = os.path.join(outdir, "config.toml")
    with open(config, "w") as f:
        f.write(cfg.to_toml())
    output = os.path.abspath(output or os.path.join(outdir, "ensemble.h5"))
    name = name or f"lnn-{cfg.hash[:8]}"
    lines, env = sbatch_lines(partition, time, mem, account, extra_sbatch)
    common = dict(name=name, logs=logs, python=shlex.quote(sys.executable),
                  sbatch_lines="\n".join(lines), env_lines="\n".join(env), outdir=outdir)
    array = _template("array.sbatch").format(
        last=shards - 1, shards=shards, signal_seconds=signal_seconds, cpus=cpus_per_task,
        max_requeue=max_requeue, config=shlex.quote(config), **common)
    shard_files = " ".join(shlex.quote(os.path.join(outdir, f"shard_{i}.h5"))
                           for i in range(shards))
    merge = _template("merge.sbatch").format(shard_files=shard_files, output=output,
                                             copy=" --copy" if copy else "", **common)
    paths = []
    for fname, text in (("array.sbatch", array), ("merge.sbatch", merge)):
        p = os.path.join(outdir, fname)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)
        paths.append(p)
    return Submission(outdir, paths[0], paths[1], output)


def warm_cache(cfg) -> None:
    """Compile the kernels a run of ``cfg`` uses, on this host (one replica, one step)."""
    from .config import load_config
    from .simulate import run

    small = load_config(cfg.to_dict(), overrides=("ensemble.steps=1",), replicas=1)
    with tempfile.TemporaryDirectory() as d:
        run(small, os.path.join(d, "warm.h5"), progress=False)


def _sbatch(args: list[str]) -> str:
    if shutil.which("sbatch") is None:
        raise UserError("sbatch: not found (is SLURM installed here? try --dry-run)")
    r = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"sbatch {' '.join(args)}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'failed'}")
    return r.stdout.strip().split(";")[0]


def submit(cfg, outdir: str, *, dry_run: bool = False, warm: bool = True, **opts) -> Submission:
    """Write the scripts and (unless ``dry_run``) submit the array and its dependent merge."""
    sub = write_scripts(cfg, outdir, **opts)
    if dry_run:
        return sub
    if warm:
        warm_cache(cfg)
    array_id = _sbatch([sub.array_script])
    merge_id = _sbatch([f"--dependency=afterok:{array_id}", sub.merge_script])
    return Submission(sub.outdir, sub.array_script, sub.merge_script, sub.output, array_id,
                      merge_id)


def requeue_self(max_requeue: int) -> str | None:
    """Inside a SLURM job, ask SLURM to requeue this job (or array task) unless it has been
    restarted ``max_requeue`` times already; returns the job id requeued, or None. Call it only
    once the run is checkpointed: SIGTERM is ignored from the requeue on."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or max_requeue <= 0:
        return None
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) >= max_requeue:
        return None
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    # SLURM ends the running job with SIGTERM as soon as it requeues it, which can come before
    # scontrol returns: the caller's checkpoint is written, so from here on SIGTERM is ignored,
    # lest it cut off the report of the requeue (and claim that nothing was saved)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    return job if r.returncode == 0 else None
