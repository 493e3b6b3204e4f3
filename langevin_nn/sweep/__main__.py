"""Entry points for the workers of a sweep (what its scripts and the local runner call):

    python -m langevin_nn.sweep task DIR NAME [--shard I/N] [--requeue K]
    python -m langevin_nn.sweep collect DIR [--copy] [--analyze]
"""
from __future__ import annotations

import os
import sys

from ..errors import (EXIT_OK, EXIT_SIGNAL, EXIT_USAGE, StoppedEarly, UserError,
                      stop_early_on_signals)
from .index import SweepIndex
from .runner import _stderr
from .submit import collect


def _task(outdir: str, name: str, shard: str | None, requeue: int) -> int:
    """Run one point (or one shard of it) with resume: 0 done (also when every replica
    diverged: that is a result), 75 stopped by a signal (checkpoint written; requeued inside
    SLURM), 2 bad input."""
    from ..config import load_config
    from ..simulate import run

    idx = SweepIndex.load(outdir)
    p = idx.by_name(name)
    cfg = load_config(idx.path_of(p, "config"))
    sh = None
    out = idx.path_of(p)
    if shard:
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise UserError(f"--shard {shard}: expected I/N") from None
        sh = (i, n)
        out = os.path.join(idx.point_dir(p), f"shard_{i}.h5")
    res = run(cfg, out, resume=True, shard=sh, progress=False)
    if res.already_done:
        _stderr(f"{out}: already complete ({res.steps_done} steps); nothing to do")
        return EXIT_OK
    div = int(res.diverged.sum())
    _stderr(f"{out}: {res.steps_done} steps x {res.replicas} replicas in {res.wall_seconds:.1f} s; "
            f"{div} diverged")
    if res.stopped_by:
        _stderr(f"stopped by {res.stopped_by} at step {res.steps_done}; checkpoint written")
        if requeue:
            from ..slurm import requeue_self

            job = requeue_self(requeue)
            if job:
                _stderr(f"requeued SLURM job {job}")
        return EXIT_SIGNAL
    return EXIT_OK


def main(argv=None) -> int:
    import argparse

    stop_early_on_signals()
    ap = argparse.ArgumentParser(prog="python -m langevin_nn.sweep",
                                 description="Workers of a langevin-nn sweep (used by its scripts).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("task", help="run one point (or one shard of it) of a sweep folder")
    t.add_argument("outdir")
    t.add_argument("name")
    t.add_argument("--shard", default=None)
    t.add_argument("--requeue", type=int, default=0)
    c = sub.add_parser("collect", help="merge shards, refresh the index (after the array)")
    c.add_argument("outdir")
    c.add_argument("--copy", action="store_true")
    c.add_argument("--analyze", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "task":
            return _task(a.outdir, a.name, a.shard, a.requeue)
        idx = collect(a.outdir, copy=a.copy, analyze=a.analyze)
        return EXIT_OK if all(p["status"] == "complete" for p in idx.points) else EXIT_USAGE
    except UserError as e:
        _stderr(f"error: {e}")
        return e.exit_code
    except StoppedEarly as e:
        _stderr(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _stderr(str(StoppedEarly("SIGINT")))
        return EXIT_SIGNAL


if __name__ == "__main__":
    sys.exit(main())
