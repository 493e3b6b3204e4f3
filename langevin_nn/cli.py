"""The ``langevin-nn`` command: parses, calls the library, prints. No physics here.

Exit codes (docs/exit-codes.md): 0 done (a warning if some replicas diverged), 1 internal error,
2 usage or bad input, 3 every replica diverged, 75 stopped by a signal with a checkpoint written.
"""
from __future__ import annotations

import os
import signal
import sys
from importlib import resources

import click

from .errors import (EXIT_ALL_DIVERGED, EXIT_OK, EXIT_SIGNAL, EXIT_USAGE, StoppedEarly, UserError,
                     on_stop_signals, stop_early_on_signals)


def _config_source(config: str) -> str:
    """A config path, or the name of a built-in example (``quickstart``)."""
    if os.path.exists(config):
        return config
    name = config[:-5] if config.endswith(".toml") else config
    ex = resources.files("langevin_nn") / "examples" / f"{name}.toml"
    if "/" not in config and ex.is_file():
        return str(ex)
    raise UserError(f"{config}: config file not found (built-in examples: {', '.join(_examples())})")


def _examples() -> list[str]:
    return sorted(p.name[:-5] for p in (resources.files("langevin_nn") / "examples").iterdir()
                  if p.name.endswith(".toml"))


def _load(config, sets, **shortcuts):
    from .config import load_config

    return load_config(_config_source(config), overrides=tuple(sets), **shortcuts)


_set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                           help="Override a config key, e.g. --set dynamics.T=0.01 (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="langevin_nn")
def cli():
    """Langevin and noisy-SGD ensembles of neural networks (Numba kernels, HDF5 files)."""


@cli.command()
@click.argument("config")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Ensemble file to write (default: CONFIG's name with .h5).")
@_set_option
@click.option("--replicas", type=int, default=None, help="Shortcut for --set ensemble.replicas=N.")
@click.option("--steps", type=int, default=None, help="Shortcut for --set ensemble.steps=N.")
@click.option("--seed", type=int, default=None, help="Shortcut for --set ensemble.seed=N.")
@click.option("--threads", type=int, default=None, help="Numba threads (0: all cores).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--resume", is_flag=True,
              help="Continue OUTPUT from its last checkpoint (extend it if --steps is larger); "
                   "start fresh if it does not exist.")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only shard I of N (a contiguous block of replicas); merge the shards "
                   "with `langevin-nn merge`.")
@click.option("--requeue", type=int, default=0, metavar="N",
              help="Inside a SLURM job: after a stop by signal, ask SLURM to requeue this job "
                   "(at most N times in all).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only on an interactive terminal).")
def run(config, output, sets, replicas, steps, seed, threads, overwrite, resume, shard,
        requeue, progress):
    """Run the ensemble of CONFIG (a TOML file or a built-in example such as 'quickstart')."""
    from .simulate import run as run_ensemble

    cfg = _load(config, sets, replicas=replicas, steps=steps, seed=seed, threads=threads)
    if output is None:
        output = os.path.splitext(os.path.basename(config))[0] + ".h5"
    if resume and overwrite:
        raise UserError("--resume and --overwrite: choose one")
    res = run_ensemble(cfg, output, overwrite=overwrite, resume=resume,
                       shard=_parse_shard(shard), progress=progress)
    _ignore_stop_signals()
    if res.already_done:
        click.echo(f"{output}: already complete ({res.steps_done} steps); nothing to do", err=True)
        return
    n_div = int(res.diverged.sum())
    click.echo(
        f"{res.path}: {res.steps_done} steps x {res.replicas} replicas in {res.wall_seconds:.1f} s "
        f"(kernels {res.kernel_seconds:.1f} s, {res.replica_steps_per_second:.3g} replica-steps/s); "
        f"{n_div} diverged", err=True)
    if res.stopped_by:
        click.echo(f"stopped by {res.stopped_by} at step {res.steps_done}; checkpoint written",
                   err=True)
        if requeue:
            from .slurm import requeue_self

            job = requeue_self(requeue)
            if job:
                click.echo(f"requeued SLURM job {job}", err=True)
        sys.exit(EXIT_SIGNAL)
    if n_div == res.replicas and shard is None:
        click.echo("error: every replica diverged (see `langevin-nn info`)", err=True)
        sys.exit(EXIT_ALL_DIVERGED)
    if n_div:
        click.echo(f"warning: {n_div} of {res.replicas} replicas diverged", err=True)


def _parse_shard(text):
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text}: expected I/N, e.g. 0/4") from None
    return i, n


@cli.command()
@click.argument("shards", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Merged ensemble file.")
@click.option("--copy", is_flag=True,
              help="Write a self-contained file instead of virtual datasets over the shards.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def merge(shards, output, copy, overwrite):
    """Merge SHARD files of one run (disjoint replica blocks covering all) into one file."""
    from .merge import merge as merge_shards

    merge_shards(list(shards), output, copy=copy, overwrite=overwrite)
    click.echo(f"{output}: merged {len(shards)} shards"
               f"{' (copy)' if copy else ' (virtual datasets; keep the shards beside it)'}",
               err=True)


@cli.command()
@click.argument("config")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for the scripts, logs, shard files and the merged ensemble.")
@click.option("--shards", type=int, required=True, help="Number of array tasks (shards).")
@_set_option
@click.option("--replicas", type=int, default=None, help="Shortcut for --set ensemble.replicas=N.")
@click.option("--steps", type=int, default=None, help="Shortcut for --set ensemble.steps=N.")
@click.option("--seed", type=int, default=None, help="Shortcut for --set ensemble.seed=N.")
@click.option("--output", default=None, help="Merged file (default: OUTDIR/ensemble.h5).")
@click.option("--partition", default=None)
@click.option("--time", "time_", default=None, help="Time limit per task, e.g. 2:00:00.")
@click.option("--cpus-per-task", type=int, default=1, show_default=True)
@click.option("--mem", default=None)
@click.option("--account", default=None)
@click.option("--extra-sbatch", multiple=True, help="Extra '#SBATCH' option (repeatable).")
@click.option("--signal-seconds", type=int, default=120, show_default=True,
              help="USR1 this many seconds before the time limit.")
@click.option("--max-requeue", type=int, default=3, show_default=True)
@click.option("--copy", is_flag=True, help="Merge into a self-contained file.")
@click.option("--dry-run", is_flag=True, help="Only write the scripts.")
def submit(config, outdir, shards, sets, replicas, steps, seed, output, partition, time_,
           cpus_per_task, mem, account, extra_sbatch, signal_seconds, max_requeue, copy,
           dry_run):
    """Run CONFIG as a SLURM job array of SHARDS tasks plus a dependent merge."""
    from .slurm import submit as submit_jobs

    cfg = _load(config, sets, replicas=replicas, steps=steps, seed=seed)
    sub = submit_jobs(cfg, outdir, dry_run=dry_run, shards=shards, output=output,
                      partition=partition, time=time_, cpus_per_task=cpus_per_task, mem=mem,
                      account=account, extra_sbatch=tuple(extra_sbatch),
                      signal_seconds=signal_seconds, max_requeue=max_requeue, copy=copy)
    click.echo(f"scripts: {sub.array_script}, {sub.merge_script}")
    if dry_run:
        click.echo(f"dry run: submit with `sbatch {sub.array_script}` then "
                   f"`sbatch --dependency=afterok:<array id> {sub.merge_script}`")
        return
    click.echo(f"array job {sub.array_id} ({shards} tasks) -> {sub.outdir}/shard_*.h5")
    click.echo(f"merge job {sub.merge_id} (after the array) -> {sub.output}")


@cli.command()
@click.argument("config")
@_set_option
def validate(config, sets):
    """Check CONFIG (and its data) without running."""
    from .boundary.sources import build_boundary
    from .bulk.networks import build_layout

    cfg = _load(config, sets)
    layout = build_layout(cfg.network)
    bd = build_boundary(cfg, layout)
    click.echo(f"{config}: ok (hash {cfg.hash}; {cfg.network.architecture} network "
               f"{list(layout.widths)}, {layout.n_par} parameters per replica; "
               f"P = {bd.X_train.shape[0]}{' online' if bd.online else ''}, "
               f"K = {bd.X_probe.shape[0]}; {cfg.ensemble.replicas} replicas x "
               f"{cfg.ensemble.steps} steps, {cfg.dynamics.integrator})")


@cli.command()
@click.argument("file", type=click.Path())
def info(file):
    """Print a readable summary of an ensemble FILE (or of a sweep directory)."""
    if os.path.isdir(file) or os.path.basename(file) == "sweep.json":
        from .cli_sweep import sweep_info

        click.echo(sweep_info(file))
        return
    from .store import format_info, open_ensemble

    from . import desitter
    from .bbd import identity_summary

    with open_ensemble(file) as ens:
        click.echo(format_info(ens))
        for line in (identity_summary(ens), desitter.summary(ens)):
            if line:
                click.echo(line)


def _register() -> None:
    """Add the commands that live in their own modules (cli_sft, cli_analysis)."""
    from .cli_analysis import analyze, meanfield
    from .cli_sft import sft
    from .cli_sweep import sweep

    for command in (sft, analyze, meanfield, sweep):
        cli.add_command(command)


_register()


def _ignore_stop_signals() -> None:
    """The run has written and closed its file: from here on a stop signal has nothing left to
    stop, and the process exits with the run's status. Ignored (SIG_IGN) rather than handled,
    because Python restores the default action of handled signals while it shuts down, and a
    SIGTERM then (a scheduler stopping the job as it ends) killed the finished process with
    status -15 instead of 0 or 75."""
    on_stop_signals(signal.SIG_IGN)


def main(argv=None):
    """Entry point: maps bad input to one line and exit status 2, no traceback."""
    # a run replaces these with its checkpointing handler (SIGINT stays click's Abort)
    stop_early_on_signals()
    try:
        rv = cli.main(args=argv, standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except StoppedEarly as e:
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_SIGNAL)
    except click.UsageError as e:
        # docs/exit-codes.md: usage errors are one line starting with "error:" too
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare command: click shows its help
            e.show()
        else:
            click.echo(f"error: {' '.join(e.format_message().split())}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_USAGE if e.exit_code == 2 else e.exit_code)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":
    main()
