"""Running a sweep locally: every point not yet complete, one after another in this process or
``jobs`` at a time in worker processes (``python -m langevin_nn.sweep task DIR NAME``).

    run_sweep(sw, "out/otc", jobs=2)                        # skip complete, resume partial
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import EXIT_OK, EXIT_SIGNAL, UserError
from .index import SweepIndex, refresh
from .prepare import _lock, check_dir, prepare
from .spec import Sweep


@dataclass
class SweepRunResult:
    """What ``run_sweep`` did: points run, skipped (already complete), failed (name -> error),
    interrupted (partial, resumable), and the signal that stopped the sweep, if any."""

    outdir: str
    ran: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    interrupted: list = field(default_factory=list)
    diverged: list = field(default_factory=list)
    stopped_by: str | None = None
    seconds: float = 0.0


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def plan_threads(jobs: int, threads: int | None, n_cores: int | None = None) -> tuple[int, int]:
    """(jobs, threads per job) with jobs x threads <= cores (UserError if asked for more)."""
    n = n_cores or cores()
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a positive integer")
    if jobs > n:
        raise UserError(f"--jobs {jobs}: more points at once than the {n} cores available")
    if threads is None or threads == 0:
        threads = max(1, n // jobs)
    if threads < 1:
        raise UserError(f"--threads {threads}: expected a positive integer")
    if jobs * threads > n:
        raise UserError(f"--jobs {jobs} --threads {threads}: {jobs * threads} Numba threads on "
                        f"{n} cores (oversubscribed); lower one of them")
    return jobs, threads


def _package_root() -> str:
    """The folder holding the langevin_nn package (this file is langevin_nn/sweep/runner.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child_env(threads: int) -> dict:
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    root = _package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _warm(points: Sequence[dict], idx: SweepIndex, log) -> None:
    """Compile the kernels once before several processes load them from the cache (one small
    run per distinct kind of network / integrator / dtype)."""
    from ..config import load_config
    from ..slurm import warm_cache

    kinds = set()
    for p in points:
        cfg = load_config(idx.path_of(p, "config"))
        d = cfg.to_dict()
        kind = json.dumps([d["network"].get("architecture"), d["network"].get("activation"),
                           d["network"].get("output_activation"), d["dynamics"]["integrator"],
                           d["ensemble"]["dtype"], d["data"].get("loss"), d["data"].get("source"),
                           d["data"].get("online"), d["recording"]["probe_z_dtype"]])
        if kind not in kinds:
            kinds.add(kind)
            t0 = time.perf_counter()
            warm_cache(cfg)
            log(f"compiled the kernels for {p['name']} ({time.perf_counter() - t0:.1f} s)")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_sweep(sw: Sweep, outdir, *, jobs: int = 1, threads: int | None = None,
              progress: bool | None = False, log: Callable[[str], None] | None = _stderr,
              warm: bool = True) -> SweepRunResult:
    """Run every point of ``sw`` that is not complete into ``outdir``, one after another
    (``jobs = 1``, in this process) or ``jobs`` at a time (subprocesses, each with
    NUMBA_NUM_THREADS = ``threads``; jobs x threads never exceeds the cores). Complete points
    are skipped without being opened for writing; partial ones are resumed (``run(...,
    resume=True)``). SIGINT/SIGTERM/SIGUSR1 stop the running points at a checkpoint and return
    with ``stopped_by`` set; running the sweep again continues them."""
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    jobs, threads = plan_threads(jobs, threads)
    outdir = os.path.abspath(os.fspath(outdir))
    check_dir(sw, outdir)  # before anything is written
    os.makedirs(outdir, exist_ok=True)
    with _lock(outdir, "run"):
        idx = prepare(sw, outdir)
        res = SweepRunResult(idx.dir)
        todo = []
        for p in idx.points:
            if p["status"] == "complete":
                res.skipped.append(p["name"])
            elif p["status"] in ("foreign", "corrupt"):
                res.failed[p["name"]] = p.get("error") or p["status"]
                log(f"{p['name']}: {p['status']}: {p.get('error')}")
            else:
                todo.append(p)
        n = len(idx.points)
        log(f"sweep {sw.name}: {n} points, {len(res.skipped)} complete, {len(todo)} to run "
            f"({jobs} at a time x {threads} threads) -> {idx.dir}")
        if todo:
            if jobs == 1:
                _run_serial(idx, todo, threads, progress, log, res)
            else:
                if warm:
                    _warm(todo, idx, log)
                _run_parallel(idx, todo, jobs, threads, log, res)
        refresh(idx)
        for p in idx.points:
            if p["name"] in res.failed and p["status"] != "complete":
                p["status"], p["error"] = "failed", res.failed[p["name"]]
            if p["status"] == "complete" and p.get("diverged") and p["diverged"] >= p["replicas"]:
                res.diverged.append(p["name"])
        idx.save()
    res.seconds = time.perf_counter() - t0
    return res


def _mark(idx: SweepIndex, p: dict, **kw) -> None:
    p.update(kw)
    idx.save()


def _run_serial(idx, todo, threads, progress, log, res) -> None:
    import numba

    from ..config import load_config
    from ..simulate import run

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    for k, p in enumerate(todo):
        _mark(idx, p, status="running", error=None)
        t = time.perf_counter()
        try:
            cfg = load_config(idx.path_of(p, "config"))
            r = run(cfg, idx.path_of(p), resume=True, progress=progress)
        except UserError as e:
            res.failed[p["name"]] = str(e)
            _mark(idx, p, status="failed", error=str(e))
            log(f"[{k + 1}/{len(todo)}] {p['name']}: failed: {e}")
            continue
        except BaseException:
            refresh(idx, [p["name"]])
            idx.save()
            raise
        dt = time.perf_counter() - t
        refresh(idx, [p["name"]])
        p["seconds"] = round(dt, 3)
        idx.save()
        if r.stopped_by:
            res.interrupted.append(p["name"])
            res.stopped_by = r.stopped_by
            log(f"[{k + 1}/{len(todo)}] {p['name']}: stopped by {r.stopped_by} at step "
                f"{r.steps_done}; checkpoint written")
            return
        res.ran.append(p["name"])
        div = int(r.diverged.sum())
        log(f"[{k + 1}/{len(todo)}] {p['name']}: {r.steps_done} steps x {r.replicas} replicas in "
            f"{dt:.1f} s" + (f"; {div} diverged" if div else ""))


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f.read().splitlines() if l.strip()]
    except OSError:
        return ""
    errs = [l for l in lines if l.startswith("error:")]
    return (errs[-1][len("error:"):].strip() if errs else (lines[-1] if lines else ""))


def _run_parallel(idx, todo, jobs, threads, log, res) -> None:
    queue = list(todo)
    running: dict[str, tuple[subprocess.Popen, dict, float, Any]] = {}
    stop: list[str] = []
    old = {}

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if not stop:
            stop.append(name)
            for proc, _, _, _ in running.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        with contextlib.suppress(ValueError):
            old[s] = signal.signal(s, handler)
    env = _child_env(threads)
    done = 0
    try:
        while queue or running:
            while queue and len(running) < jobs and not stop:
                p = queue.pop(0)
                logpath = os.path.join(idx.point_dir(p), "run.log")
                fh = open(logpath, "a")
                cmd = [sys.executable, "-m", "langevin_nn.sweep", "task", idx.dir, p["name"]]
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
                running[p["name"]] = (proc, p, time.perf_counter(), fh)
                _mark(idx, p, status="running", error=None)
            for name in list(running):
                proc, p, t, fh = running[name]
                rc = proc.poll()
                if rc is None:
                    continue
                fh.close()
                del running[name]
                done += 1
                dt = time.perf_counter() - t
                refresh(idx, [name])
                p["seconds"] = round(dt, 3)
                tag = f"[{done}/{len(todo)}] {name}"
                # the stop's SIGTERM can reach a worker still starting (before it handles
                # signals: nothing written) or already exiting (its file complete)
                killed = bool(stop) and rc == -signal.SIGTERM
                if (rc == EXIT_OK or killed) and p["status"] == "complete":
                    res.ran.append(name)
                    div = p.get("diverged") or 0
                    log(f"{tag}: done in {dt:.1f} s" + (f"; {div} diverged" if div else ""))
                elif rc == EXIT_SIGNAL or killed:
                    res.interrupted.append(name)
                    log(f"{tag}: stopped at step {p.get('steps_done')}; checkpoint written")
                else:
                    err = _tail(os.path.join(idx.point_dir(p), "run.log")) or f"exit status {rc}"
                    res.failed[name] = err
                    p["status"], p["error"] = "failed", err
                    log(f"{tag}: failed (exit {rc}): {err}")
                idx.save()
            if stop and queue:
                queue.clear()
            time.sleep(0.05)
    finally:
        for proc, p, _, fh in running.values():  # only on an exception in this loop
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            fh.close()
        for s, h in old.items():
            signal.signal(s, h)
    if stop:
        res.stopped_by = stop[0]
