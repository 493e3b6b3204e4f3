"""Parameter sweeps: a TOML sweep file -> fully specified point configs -> runs -> an index.

A sweep is a base configuration and the keys to vary (docs/sweeps.md); every point of its grid
is a complete configuration, run into its own ensemble file under one folder, with an index.

    sw = load_sweep("runs/sweep_order_to_chaos.toml")      # parse, validate every point
    sw.points[0].name, sw.points[0].values, sw.points[0].config.hash
    run_sweep(sw, "out/otc", jobs=2)                        # skip complete, resume partial
    idx = SweepIndex.load("out/otc")                        # the index: points, values, files, status
    submit_sweep(sw, "out/otc", time="1:00:00")             # SLURM: one array + a collect job

The modules:

* ``spec``: the sweep file and its points (Axis, Point, Sweep, load_sweep, point_name);
* ``index``: the index ``DIR/sweep.json`` and the status of points (SweepIndex, file_status,
  refresh, STATUSES);
* ``prepare``: the sweep folder (prepare, check_dir, one runner per folder);
* ``runner``: running locally, in this process or in worker processes (run_sweep,
  plan_threads);
* ``submit``: SLURM, one job array and a collect job (submit_sweep, write_slurm_scripts,
  collect);
* ``report``: the summary ``langevin-nn info DIR`` prints (format_sweep);
* ``__main__``: the workers, ``python -m langevin_nn.sweep task|collect ...``.

Every error is a one-line :class:`UserError` naming the sweep file and the key; nothing is
written before the whole sweep (every point's config) has been validated and the folder checked.
"""
from __future__ import annotations

from .index import (FORMAT, FORMAT_VERSION, INDEX, POINTS_DIR, STATUSES, SweepIndex,
                    file_status, refresh)
from .prepare import check_dir, prepare
from .report import format_sweep
from .runner import SweepRunResult, cores, plan_threads, run_sweep
from .spec import (MAX_SEED, RANGE_KEYS, SWEEP_KEYS, TOP_KEYS, Axis, Point, Sweep, load_sweep,
                   point_name)
from .submit import SLURM_DIR, SweepSubmission, collect, submit_sweep, write_slurm_scripts

__all__ = [
    "Axis", "Point", "Sweep", "SweepIndex", "SweepRunResult", "SweepSubmission", "load_sweep",
    "prepare", "run_sweep", "submit_sweep", "collect", "refresh", "INDEX", "STATUSES",
]
