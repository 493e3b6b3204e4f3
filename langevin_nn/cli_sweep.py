"""The ``sweep`` command (registered on the ``langevin-nn`` group with ``cli.add_command``) and
``sweep_info(dir)``, the summary ``langevin-nn info DIR`` prints for a sweep folder.

    langevin-nn sweep SWEEP.toml -o DIR [--jobs J --threads T] [--analyze]
    langevin-nn sweep SWEEP.toml -o DIR --slurm [--shards N --time T --partition P ...]

Bad input (a sweep file, a key, a value, a folder of another sweep) raises ``UserError``: one
line, exit status 2 (``langevin_nn.cli.main``), nothing written. A sweep stopped by SIGINT,
SIGTERM or SIGUSR1 exits 75 with its running points checkpointed; the same command continues it.
Without the registration, ``python -m langevin_nn.cli_sweep SWEEP.toml -o DIR`` runs the same
command through the same error handling.
"""
from __future__ import annotations

import sys

import click

from .errors import EXIT_SIGNAL, UserError

__all__ = ["sweep", "sweep_info"]


def sweep_info(path) -> str:
    """A readable summary of the sweep folder ``path`` (or its sweep.json): the axes and every
    point with its varied values, status, steps and file (statuses read from the files now)."""
    from .sweep import format_sweep

    return format_sweep(path)


_SLURM_DEFAULTS = {"shards": None, "partition": None, "time_": None, "cpus_per_task": 1,
                   "mem": None, "account": None, "extra_sbatch": (), "signal_seconds": 120,
                   "max_requeue": 3, "copy": False}


@click.command()
@click.argument("sweep_file", metavar="SWEEP.toml")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Sweep folder: sweep.json (the index), points/NAME/{config.toml,ensemble.h5}.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the base config (repeatable; changes the sweep's identity "
                   "unless it is ensemble.steps).")
@click.option("--steps", type=int, default=None,
              help="ensemble.steps of every point (a larger value extends a finished sweep).")
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help="Local: points run at once (subprocesses); jobs x threads <= cores.")
@click.option("--threads", type=int, default=None,
              help="Local: Numba threads per point (default: cores / jobs).")
@click.option("--slurm", is_flag=True,
              help="Run the points as one SLURM job array plus a dependent collect job.")
@click.option("--shards", type=int, default=None,
              help="--slurm: array tasks per point (blocks of replicas; default sweep.shards or 1).")
@click.option("--partition", default=None)
@click.option("--time", "time_", default=None, help="--slurm: time limit per task, e.g. 2:00:00.")
@click.option("--cpus-per-task", type=int, default=1, show_default=True)
@click.option("--mem", default=None)
@click.option("--account", default=None)
@click.option("--extra-sbatch", multiple=True, help="Extra '#SBATCH' option (repeatable).")
@click.option("--signal-seconds", type=int, default=120, show_default=True,
              help="--slurm: USR1 this many seconds before the time limit.")
@click.option("--max-requeue", type=int, default=3, show_default=True)
@click.option("--copy", is_flag=True, help="--slurm: merge sharded points into self-contained files.")
@click.option("--dry-run", is_flag=True,
              help="Write the point configs, the index (and with --slurm the scripts); run nothing.")
@click.option("--analyze", is_flag=True,
              help="Afterwards tabulate every scalar of `analyze` against the varied values "
                   "(and the critical point of a sigma_w^2 sweep) into OUTDIR/analysis.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar of each point (default: only on an interactive terminal).")
def sweep(sweep_file, outdir, sets, steps, jobs, threads, slurm, shards, partition, time_,
          cpus_per_task, mem, account, extra_sbatch, signal_seconds, max_requeue, copy, dry_run,
          analyze, progress):
    """Run every point of SWEEP.toml (a base config and the axes to vary) into OUTDIR,
    skipping complete points and resuming interrupted ones."""
    from .sweep import format_sweep, load_sweep, prepare, run_sweep, submit_sweep

    given = dict(shards=shards, partition=partition, time_=time_, cpus_per_task=cpus_per_task,
                 mem=mem, account=account, extra_sbatch=tuple(extra_sbatch),
                 signal_seconds=signal_seconds, max_requeue=max_requeue, copy=copy)
    if not slurm:
        extra = [k for k, v in given.items() if v != _SLURM_DEFAULTS[k]]
        if extra:
            opt = "--" + extra[0].rstrip("_").replace("_", "-")
            raise UserError(f"{opt}: only with --slurm")
    elif jobs != 1 or threads is not None:
        raise UserError(f"{'--jobs' if jobs != 1 else '--threads'}: only for local runs "
                        "(with --slurm use --cpus-per-task)")
    sw = load_sweep(sweep_file, sets, steps=steps)
    if slurm:
        sub = submit_sweep(sw, outdir, shards=shards, dry_run=dry_run, partition=partition,
                           time=time_, cpus_per_task=cpus_per_task, mem=mem, account=account,
                           extra_sbatch=tuple(extra_sbatch), signal_seconds=signal_seconds,
                           max_requeue=max_requeue, copy=copy, analyze=analyze,
                           log=lambda m: click.echo(m, err=True))
        click.echo(f"sweep {sw.name}: {len(sw.points)} points, {len(sub.skipped)} complete, "
                   f"{len(sub.tasks)} array tasks -> {sub.outdir}")
        if not sub.tasks:
            from .sweep import collect

            collect(sub.outdir, copy=copy, analyze=analyze, log=lambda m: click.echo(m, err=True))
            click.echo("nothing to submit: every point is complete")
            return
        click.echo(f"scripts: {sub.array_script}, {sub.collect_script}")
        if dry_run:
            click.echo(f"dry run: submit with `sbatch {sub.array_script}` then "
                       f"`sbatch --dependency=afterok:<array id> {sub.collect_script}`")
            return
        click.echo(f"array job {sub.array_id} ({len(sub.tasks)} tasks)")
        click.echo(f"collect job {sub.collect_id} (after the array) -> {sub.outdir}/sweep.json")
        return
    if dry_run:
        prepare(sw, outdir)
        click.echo(format_sweep(outdir))
        return
    res = run_sweep(sw, outdir, jobs=jobs, threads=threads, progress=progress,
                    log=lambda m: click.echo(m, err=True))
    n = len(sw.points)
    click.echo(f"{res.outdir}: {len(res.ran)} run, {len(res.skipped)} already complete, "
               f"{len(res.interrupted)} interrupted, {len(res.failed)} failed of {n} points "
               f"({res.seconds:.1f} s)", err=True)
    if res.diverged:
        click.echo(f"warning: every replica diverged in {len(res.diverged)} point(s): "
                   f"{', '.join(res.diverged[:3])}{', ...' if len(res.diverged) > 3 else ''}",
                   err=True)
    if res.stopped_by:
        click.echo(f"stopped by {res.stopped_by}; run the same command again to continue",
                   err=True)
        sys.exit(EXIT_SIGNAL)
    if res.failed:
        name, err = next(iter(res.failed.items()))
        raise UserError(f"{len(res.failed)} of {n} points failed (see `langevin-nn info "
                        f"{outdir}`); {name}: {err}")
    if analyze:
        from .sweep_analysis import write_report

        out = write_report(res.outdir, log=lambda m: click.echo(m, err=True))
        for c in out["critical_points"]:
            click.echo(f"critical sigma_w^2 = {c['sigma_w2_critical']:.4f} +- {c['error']:.4f} "
                       f"(stat {c['statistical']:.4f}, finite-width syst {c['systematic']:.4f}); "
                       f"mean field {c['mean_field']:.4f}"
                       + (f" [{c['group']}]" if c["group"] else ""))
        click.echo(f"sweep table and {len(out['figures'])} figures in {out['outdir']}", err=True)


def _main(argv=None):
    """``python -m langevin_nn.cli_sweep ...``: the sweep command through langevin_nn.cli.main."""
    from .cli import cli, main

    if "sweep" not in cli.commands:
        cli.add_command(sweep)
    main(["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    _main()
