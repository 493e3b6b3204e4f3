"""Sweeps (langevin_nn.sweep, sweep_analysis, cli_sweep): expansion of grids, zipped axes and
seeds into complete configs with stable names; bad sweep files and folders refused in one line
with exit 2 and nothing written; complete points skipped and interrupted ones resumed (in this
process and with parallel workers stopped by a signal); the sweep table; the critical sigma_w^2
of a 7-point sweep at initialisation against mean field; and the SLURM path on a real
single-node cluster giving the local path's datasets bit for bit, with a task requeued by the
time-limit signal.

The SLURM test starts its own daemons (runs/slurm/local-cluster.sh) and stops them by pid; it
is skipped where SLURM is missing, unless LANGEVIN_NN_REQUIRE_SLURM=1 (CI), where it fails.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from helpers import assert_same, committed_steps, dump
from langevin_nn import open_ensemble
from langevin_nn.config import load_config
from langevin_nn.errors import ConfigError, UserError
from langevin_nn.simulate import run
from langevin_nn.sweep import (SweepIndex, load_sweep, point_name, prepare, run_sweep)
from slurm_cluster import usr1_and_release, wait_for_committed_steps, wait_idle

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

#: a small trained network: 4 points x 200 steps take well under a second once compiled
TINY = {
    "sweep": {"name": "tiny", "seeds": [1, 2]},
    "base": {
        "network": {"architecture": "dense", "widths": [4, 8, 8, 1], "activation": "tanh"},
        "data": {"n_train": 32, "n_probe": 6, "batch": 4},
        "dynamics": {"integrator": "overdamped", "eta": 0.02, "T": 1e-3},
        "ensemble": {"replicas": 10, "steps": 200},
        "recording": {"every": 10, "snapshot_every": 50, "probe_z_every": 50},
    },
    "axes": {"network": {"sigma_w2": [1.0, 2.0]}},
}


def _write(path: Path, table: dict) -> Path:
    path.write_text(tomli_w.dumps(table))
    return path


def _cli(*args, env=None, timeout=300):
    """The sweep command through langevin_nn.cli.main (registered or not)."""
    from langevin_nn.cli import cli

    head = ["-m", "langevin_nn", "sweep"] if "sweep" in cli.commands else ["-m", "langevin_nn.cli_sweep"]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True,
                          text=True, env=env or ENV, timeout=timeout)


def _quiet(msg):
    pass


# --------------------------------------------------------------------------------------------
# Expansion


def test_grid_zip_and_seeds_expand_in_order():
    sw = load_sweep({
        "sweep": {"seeds": {"count": 2, "start": 5}, "set": ["ensemble.steps=7"]},
        "base": {"network": {"widths": [4, 8, 1]}, "ensemble": {"replicas": 3}},
        "axes": {"network": {"sigma_w2": [1.0, 1.5]},
                 "dynamics.T": {"start": 0.0, "stop": 0.1, "num": 3}},
        "zip": [{"data.n_train": [16, 32], "data.batch": [4, 8]}],
    })
    assert sw.keys == ["network.sigma_w2", "dynamics.T", "data.n_train", "data.batch",
                       "ensemble.seed"]
    assert len(sw.points) == 2 * 3 * 2 * 2
    assert [len(a) for a in sw.axes] == [2, 3, 2, 2]
    # the first axis varies slowest, zipped keys together, seeds fastest
    first = [p.values for p in sw.points[:4]]
    assert first[0] == {"network.sigma_w2": 1.0, "dynamics.T": 0.0, "data.n_train": 16,
                        "data.batch": 4, "ensemble.seed": 5}
    assert first[1]["ensemble.seed"] == 6 and first[2]["data.batch"] == 8
    assert [p.values["dynamics.T"] for p in sw.points[::4]][:3] == [0.0, 0.05, 0.1]
    for p in sw.points:
        v = p.values
        assert (v["data.n_train"], v["data.batch"]) in ((16, 4), (32, 8))
        c = p.config
        assert (c.network.sigma_w2, c.dynamics.T.value(0), c.data.n_train, c.data.batch,
                c.ensemble.seed) == (v["network.sigma_w2"], v["dynamics.T"], v["data.n_train"],
                                     v["data.batch"], v["ensemble.seed"])
        assert c.ensemble.steps == 7 and c.ensemble.replicas == 3
        assert p.name == point_name(v, c.hash) and p.name.endswith("_h" + c.hash[:8])
    assert sw.points[0].name == "sigma_w2=1_T=0_n_train=16_batch=4_seed=5_h" + sw.points[0].hash[:8]
    assert len({p.name for p in sw.points}) == len({p.hash for p in sw.points}) == 24


def test_ranges_and_independent_seeds():
    sw = load_sweep({"axes": {"ensemble.replicas": {"start": 8, "stop": 32, "step": 8},
                              "dynamics.eta": {"start": 1e-3, "stop": 1e-1, "num": 3, "log": True}},
                     "sweep": {"independent_seeds": True}})
    assert [p.values["ensemble.replicas"] for p in sw.points[::3]] == [8, 16, 24, 32]
    assert [p.values["dynamics.eta"] for p in sw.points[:3]] == [0.001, 0.01, 0.1]
    seeds = {p.config.ensemble.seed for p in sw.points}
    assert len(seeds) == len(sw.points)  # every point its own stream
    # the derived seed depends on the point's values, not on its position in the sweep
    fwd = load_sweep({"axes": {"dynamics.eta": [0.1, 0.001]}, "sweep": {"independent_seeds": True}})
    rev = load_sweep({"axes": {"dynamics.eta": [0.001, 0.1]}, "sweep": {"independent_seeds": True}})
    seed_of = lambda s: {p.values["dynamics.eta"]: p.config.ensemble.seed for p in s.points}  # noqa: E731
    assert seed_of(fwd) == seed_of(rev) and len(set(seed_of(fwd).values())) == 2
    assert {p.name for p in fwd.points} == {p.name for p in rev.points}


def test_point_configs_are_complete_and_reproducible(tmp_path):
    sweep_file = _write(tmp_path / "tiny.toml", TINY)
    sw = load_sweep(sweep_file)
    idx = prepare(sw, tmp_path / "out")
    assert [p["name"] for p in idx.points] == [p.name for p in sw.points]
    for p, e in zip(sw.points, idx.points):
        cfg = load_config(idx.path_of(e, "config"))
        assert cfg == p.config and cfg.hash == p.hash == e["config_hash"]
        assert e["status"] == "pending" and e["values"] == p.values
    data = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert data["format"] == "langevin_nn-sweep" and data["sweep_hash"] == sw.hash
    assert data["keys"] == ["network.sigma_w2", "ensemble.seed"]
    # more steps keep the identity (steps are not in a config hash): an extension, not a new sweep
    assert load_sweep(sweep_file, steps=500).hash == sw.hash
    assert load_sweep(sweep_file, ["network.sigma_b2=0.1"]).hash != sw.hash


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "runs").glob("sweep*.toml")))
def test_example_sweeps_in_runs_load(path):
    sw = load_sweep(ROOT / "runs" / path)
    assert sw.points and all(p.config.ensemble.replicas >= 1 for p in sw.points)
    if path == "sweep_order_to_chaos.toml":
        assert [p.values["network.sigma_w2"] for p in sw.points] == [1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5]
        assert {(p.config.network.sigma_b2, p.config.ensemble.steps) for p in sw.points} == {(0.05, 0)}
        assert all(p.config.recording.snapshot_every == 1 for p in sw.points)


# --------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written


SW2 = {"network.sigma_w2": [1.0]}
BAD = [
    ({"axes": {"network": {"sigma_w3": [1.0, 2.0]}}},
     "axes.network.sigma_w3: no such config key"),
    ({"axes": {"network.sigma_w2": [1.0, "two"]}},
     'axes.network.sigma_w2 = "two": network.sigma_w2: expected a positive number'),
    ({"axes": {"ensemble.replicas": [4, 2.5]}},
     "axes.ensemble.replicas = 2.5: ensemble.replicas: expected an integer"),
    ({"axes": {"network.sigma_w2": []}}, "axes.network.sigma_w2: empty list"),
    ({"axes": {"network.sigma_w2": 1.5}},
     "axes.network.sigma_w2: expected a list of values or a range"),
    ({}, "no axes"),
    ({"zip": [{"network.sigma_w2": [1.0, 2.0], "network.sigma_b2": [0.0]}]},
     "zip[0]: zipped axes of different lengths (network.sigma_w2 has 2, network.sigma_b2 has 1)"),
    ({"sweep": {"seeds": "many"}, "axes": SW2}, "sweep.seeds: expected a list"),
    ({"sweep": {"base": "missing.toml"}, "axes": SW2}, "sweep.base: no such config file"),
    ({"axes": SW2, "zip": [{"network.sigma_w2": [2.0]}]}, "network.sigma_w2 is varied twice"),
    ({"network": {"widths": [4, 1]}, "axes": SW2}, "config sections go under [base.network]"),
]


@pytest.mark.parametrize("table, message", BAD, ids=[b[1].split(":")[0][:30] for b in BAD])
def test_bad_sweep_files_one_line_exit_2_nothing_written(tmp_path, table, message):
    f = _write(tmp_path / "bad.toml", table)
    out = tmp_path / "out"
    r = _cli(f, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}: "), r.stderr
    assert message in lines[0], lines[0]
    assert not out.exists()


def test_api_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^<sweep>: axes\.data\.batch = 0: data\.batch"):
        load_sweep({"axes": {"data.batch": [4, 0]}})
    with pytest.raises(ConfigError, match=r"sweep\.shards: expected a positive integer"):
        load_sweep({"sweep": {"shards": 0}, "axes": {"network.sigma_w2": [1.0]}})
    with pytest.raises(ConfigError, match=r"axes\.dynamics\.T: a range needs exactly one of num and step"):
        load_sweep({"axes": {"dynamics.T": {"start": 0.0, "stop": 1.0}}})


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_folder_of_another_sweep_or_of_something_else_is_refused(tmp_path):
    a = _write(tmp_path / "a.toml", TINY)
    out = tmp_path / "out"
    r = _cli(a, "-o", out, "--dry-run")
    assert r.returncode == 0, r.stderr
    before = _snapshot(out)
    other = json.loads(json.dumps(TINY))
    other["axes"]["network"]["sigma_w2"] = [1.0, 3.0]
    b = _write(tmp_path / "b.toml", other)
    r = _cli(b, "-o", out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "belongs to another sweep ('tiny', hash" in lines[0], r.stderr
    r = _cli(b, "-o", out, "--slurm", "--dry-run")
    assert r.returncode == 2 and "belongs to another sweep" in r.stderr
    assert _snapshot(out) == before  # nothing overwritten
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    r = _cli(a, "-o", junk)
    assert r.returncode == 2 and "is not a sweep directory (no sweep.json)" in r.stderr
    assert sorted(os.listdir(junk)) == ["notes.txt"]
    r = _cli(a, "-o", out, "--partition", "short")
    assert r.returncode == 2 and r.stderr.strip() == "error: --partition: only with --slurm"


# --------------------------------------------------------------------------------------------
# Running: skip complete points, resume interrupted ones


def test_skip_complete_and_resume_interrupted_points(tmp_path):
    sweep_file = _write(tmp_path / "tiny.toml", TINY)
    sw = load_sweep(sweep_file)
    out = tmp_path / "out"
    res = run_sweep(sw, out, log=_quiet)
    assert sorted(res.ran) == sorted(p.name for p in sw.points) and not res.failed
    idx = SweepIndex.load(out)
    assert [p["status"] for p in idx.points] == ["complete"] * 4
    files = [Path(idx.path_of(p)) for p in idx.points]
    ref = {}
    for f in files:
        with open_ensemble(f) as e:
            ref[f] = dump(e)
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    res = run_sweep(sw, out, log=_quiet)  # everything complete: nothing is opened for writing
    assert res.ran == [] and sorted(res.skipped) == sorted(p.name for p in sw.points)
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes

    # point 1 interrupted at step 80 (a file short of its steps, same config), point 2 lost
    cfg1 = load_config(idx.path_of(idx.points[1], "config"), steps=80)
    run(cfg1, files[1], overwrite=True, progress=False)
    files[2].unlink()
    idx = SweepIndex.load(out)
    from langevin_nn.sweep import refresh
    refresh(idx)
    assert [p["status"] for p in idx.points] == ["complete", "partial", "pending", "complete"]
    assert idx.points[1]["steps_done"] == 80
    mtimes = {f: f.stat().st_mtime_ns for f in files if f.exists()}

    res = run_sweep(sw, out, log=_quiet)
    assert res.ran == [sw.points[1].name, sw.points[2].name]
    assert sorted(res.skipped) == sorted([sw.points[0].name, sw.points[3].name])
    assert files[0].stat().st_mtime_ns == mtimes[files[0]]  # untouched
    assert files[3].stat().st_mtime_ns == mtimes[files[3]]
    for f in files:  # the resumed point is the uninterrupted run, bit for bit
        with open_ensemble(f) as e:
            assert_same(dump(e), ref[f])
    idx = SweepIndex.load(out)
    assert [p["status"] for p in idx.points] == ["complete"] * 4

    # extending the sweep to more steps continues every point
    res = run_sweep(load_sweep(sweep_file, steps=260), out, log=_quiet)
    assert len(res.ran) == 4
    idx = SweepIndex.load(out)
    assert [p["steps_done"] for p in idx.points] == [260] * 4
    single = tmp_path / "single.h5"
    run(load_config(idx.path_of(idx.points[0], "config")), single, progress=False)
    with open_ensemble(single) as a, open_ensemble(files[0]) as b:
        assert_same(dump(b), dump(a))


@pytest.mark.slow
def test_parallel_workers_stopped_by_a_signal_resume(tmp_path):
    """`sweep --jobs 2` (two worker processes, one Numba thread each) stopped by SIGTERM: the
    workers checkpoint, the sweep exits 75 with the points partial; the same command again
    completes them without redoing the point that had finished."""
    t = json.loads(json.dumps(TINY))
    t["sweep"] = {"name": "long"}
    t["axes"] = {"network.sigma_w2": [1.0, 1.5, 2.0]}
    # small chunks and frequent checkpoints: a point lasts seconds and commits as it goes
    t["base"]["ensemble"].update(steps=6000, chunk=4, checkpoint_every=0.02, replicas=4)
    t["base"]["recording"].update(snapshot_every=0, probe_z_every=0)
    f = _write(tmp_path / "long.toml", t)
    out = tmp_path / "out"
    # point 0 done beforehand: it must be skipped, not redone
    sw = load_sweep(f)
    idx = prepare(sw, out)
    fast = ["ensemble.chunk=0", "ensemble.checkpoint_every=inf"]  # not in the config hash
    run(load_config(idx.path_of(idx.points[0], "config"), fast), idx.path_of(idx.points[0]),
        progress=False)
    done_mtime = os.stat(idx.path_of(idx.points[0])).st_mtime_ns
    from langevin_nn.cli import cli
    head = ["-m", "langevin_nn", "sweep"] if "sweep" in cli.commands else ["-m", "langevin_nn.cli_sweep"]
    proc = subprocess.Popen([sys.executable, *head, str(f), "-o", str(out), "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    targets = [Path(idx.path_of(p)) for p in idx.points[1:]]
    t0 = time.time()
    while time.time() - t0 < 120:  # wait until both workers have committed some steps
        steps = [committed_steps(p) for p in targets]
        if all(s > 40 for s in steps) or proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr
    assert "stopped by SIGTERM" in stderr
    idx = SweepIndex.load(out)
    from langevin_nn.sweep import refresh
    refresh(idx)
    assert idx.points[0]["status"] == "complete"
    assert [p["status"] for p in idx.points[1:]] == ["partial", "partial"], stderr
    assert all(0 < p["steps_done"] < 6000 for p in idx.points[1:])

    r = _cli(f, "-o", out, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "2 run, 1 already complete" in r.stderr
    assert os.stat(idx.path_of(idx.points[0])).st_mtime_ns == done_mtime
    idx = SweepIndex.load(out)
    assert [p["status"] for p in idx.points] == ["complete"] * 3
    for p in idx.points[1:]:  # resumed = uninterrupted, bit for bit
        ref = tmp_path / f"{p['index']}.h5"
        run(load_config(idx.path_of(p, "config"), fast), ref, progress=False)
        with open_ensemble(ref) as a, open_ensemble(idx.path_of(p)) as b:
            assert_same(dump(b), dump(a))


def test_worker_killed_while_starting_by_the_stop_is_interrupted_not_failed(tmp_path,
                                                                            monkeypatch):
    """The stop's SIGTERM reaching a worker before it handles signals (killed with status -15
    in its start-up, nothing written) leaves the point to run again, not failed. The signal is
    sent right after the worker is spawned, while its interpreter is still starting."""
    from langevin_nn.sweep import runner

    spawn = subprocess.Popen

    def spawn_then_stop(*args, **kw):
        proc = spawn(*args, **kw)
        proc.send_signal(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the sweep's own stop
        return proc

    monkeypatch.setattr(runner.subprocess, "Popen", spawn_then_stop)
    res = run_sweep(load_sweep(_write(tmp_path / "s.toml", TINY)), tmp_path / "out", jobs=2,
                    threads=1, log=_quiet, warm=False)
    assert res.stopped_by == "SIGTERM"
    assert res.failed == {} and len(res.interrupted) == 1, res
    idx = SweepIndex.load(tmp_path / "out")
    assert "failed" not in [p["status"] for p in idx.points]


# --------------------------------------------------------------------------------------------
# Analysis across the sweep


def test_info_and_table_over_the_sweep(tmp_path):
    from langevin_nn.cli_sweep import sweep_info
    from langevin_nn.sweep_analysis import tabulate, write_report

    out = tmp_path / "out"
    run_sweep(load_sweep(_write(tmp_path / "tiny.toml", TINY)), out, log=_quiet)
    text = sweep_info(out)
    assert "sweep:         tiny" in text and "4 complete" in text
    assert "network.sigma_w2 (2): 1, 2" in text and "200/200" in text
    with pytest.raises(UserError, match="not a sweep directory"):
        sweep_info(tmp_path)

    t = tabulate(out, ["loss.*.final", "chi_1.chi_1"])
    assert t.quantities == ["loss.loss_batch.final", "loss.loss_probe.final",
                            "loss.loss_train.final", "chi_1.chi_1"]
    v, e = t.column("loss.loss_probe.final")
    assert v.shape == (4,) and all(x > 0 for x in v) and all(x > 0 for x in e)
    with open_ensemble(SweepIndex.load(out).path_of(SweepIndex.load(out).points[0])) as ens:
        import numpy as np
        lp = np.asarray(ens.read("records/loss_probe", index=-1))
    assert v[0] == pytest.approx(lp.mean(), rel=1e-12)
    assert e[0] == pytest.approx(lp.std(ddof=1) / math.sqrt(len(lp)), rel=1e-9)
    c = t.combine_seeds()
    assert c.keys == ["network.sigma_w2"] and list(c.n) == [2, 2]
    cv, ce = c.column("loss.loss_probe.final")
    assert cv[0] == pytest.approx((v[0] + v[1]) / 2)
    assert ce[0] == pytest.approx(math.hypot(e[0], e[1]) / 2)

    rep = write_report(out)
    adir = out / "analysis"
    assert (adir / "table.csv").exists() and (adir / "table_seed_mean.csv").exists()
    assert "loss.loss_probe.final.png" in rep["figures"]
    # sigma_w^2 = 1 and 2 do not bracket chi_1 = 1 at this depth: said, not raised
    assert rep["skipped"] and rep["skipped"][0]["section"] == "critical point"
    head = (adir / "table.csv").read_text().splitlines()[0].split(",")
    assert head[:5] == ["name", "network.sigma_w2", "ensemble.seed", "status", "n"]


#: 7 sigma_w^2 of deep tanh networks at initialisation (dense [64, 64 x 12, 1], 16 replicas,
#: 32 probe inputs, sigma_b^2 = 0.05): about a second of runs once compiled
ORDER_TO_CHAOS = {
    "sweep": {"name": "otc", "independent_seeds": True},
    "base": {
        "network": {"architecture": "dense", "widths": [64] + [64] * 12 + [1],
                    "activation": "tanh", "sigma_b2": 0.05},
        "data": {"n_train": 8, "n_probe": 32},
        "ensemble": {"replicas": 16, "steps": 0, "seed": 1},
        "recording": {"every": 1, "snapshot_every": 1},
    },
    "axes": {"network.sigma_w2": [1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5]},
}


@pytest.mark.slow
def test_critical_point_of_a_seven_point_sweep_matches_mean_field(tmp_path):
    """One command: the sweep, then the critical point from its files (statistical (+) O(1/N)
    finite-width error) within its stated uncertainty of the mean-field 1.7610."""
    from langevin_nn.sweep_analysis import critical_points
    from langevin_nn.theory.meanfield import critical_sigma_w2

    f = _write(tmp_path / "otc.toml", ORDER_TO_CHAOS)
    out = tmp_path / "otc"
    r = _cli(f, "-o", out, "--analyze")
    assert r.returncode == 0, r.stderr
    assert "7 run, 0 already complete" in r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("critical sigma_w^2"))
    (cp,) = critical_points(out)
    assert cp.mean_field == pytest.approx(critical_sigma_w2("tanh", 0.05)) == pytest.approx(1.761, abs=1e-3)
    assert cp.critical.statistical > 0 and cp.critical.systematic > 0
    assert cp.error == pytest.approx(math.hypot(cp.critical.statistical, cp.critical.systematic))
    assert abs(cp.value - cp.mean_field) <= cp.error, (cp.value, cp.error)
    assert cp.error < 0.15
    assert f"{cp.value:.4f} +- {cp.error:.4f}" in line
    saved = json.loads((out / "analysis" / "critical_point.json").read_text())
    assert saved[0]["within_error"] is True and saved[0]["mean_field"] == pytest.approx(cp.mean_field)
    assert (out / "analysis" / "critical_point.png").exists()


def test_slurm_dry_run_writes_readable_scripts(tmp_path):
    f = _write(tmp_path / "tiny.toml", TINY)
    out = tmp_path / "out"
    r = _cli(f, "-o", out, "--slurm", "--shards", "3", "--time", "1:00:00", "--partition",
             "short", "--cpus-per-task", "2", "--copy", "--analyze", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "12 array tasks" in r.stdout and "dry run" in r.stdout
    text = (out / "slurm" / "sweep_array.sbatch").read_text()
    assert "#SBATCH --array=0-11" in text and "#SBATCH --time=1:00:00" in text
    assert "#SBATCH --partition=short" in text and "#SBATCH --cpus-per-task=2" in text
    assert "--signal=B:USR1@120" in text and 'NUMBA_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"' in text
    names = [p.name for p in load_sweep(f).points]
    assert f'  "{names[0]} 0/3"' in text and f'  "{names[3]} 2/3"' in text
    assert "exec " in text and "-m langevin_nn.sweep task" in text and "--requeue 3" in text
    collect = (out / "slurm" / "sweep_collect.sbatch").read_text()
    assert "-m langevin_nn.sweep collect" in collect and collect.rstrip().endswith("--copy --analyze")
    idx = SweepIndex.load(out)
    assert [p["shards"] for p in idx.points] == [3] * 4
    assert [p["status"] for p in idx.points] == ["pending"] * 4  # nothing submitted
    # the array script's bash picks the right point and shard for a task id
    bash = text.split("tasks=(", 1)[1].split("exec ", 1)[0]
    r = subprocess.run(["bash", "-c", "tasks=(" + bash + 'echo "$1|$2"'],
                       env=dict(os.environ, SLURM_ARRAY_TASK_ID="4"), capture_output=True,
                       text=True)
    assert r.stdout.strip() == f"{names[1]}|1/3", r.stderr
    r = _cli(f, "-o", out, "--slurm", "--shards", "0", "--dry-run")
    assert r.returncode == 2 and "--shards 0: expected a positive integer" in r.stderr


# --------------------------------------------------------------------------------------------
# SLURM: the same sweep as one job array + a collect job, bit for bit the local data

@pytest.mark.slow
def test_slurm_sweep_equals_local_sweep_bit_for_bit(cluster, tmp_path):
    """`sweep --slurm --shards 2`: 4 points x 2 shards in one array, a dependent collect job
    that merges the shards and updates the index; every dataset equals the local sweep's."""
    f = _write(tmp_path / "tiny.toml", TINY)
    out = tmp_path / "slurm"
    r = _cli(f, "-o", out, "--slurm", "--shards", "2", "--time", "0:10:00", env=cluster)
    assert r.returncode == 0, r.stderr
    assert "8 array tasks" in r.stdout
    script = (out / "slurm" / "sweep_array.sbatch").read_text()
    assert "#SBATCH --array=0-7" in script and "#SBATCH --time=0:10:00" in script
    assert "langevin_nn.sweep task" in script and "--signal=B:USR1@120" in script
    wait_idle(cluster)
    logs = "\n".join(p.read_text() for p in sorted((out / "slurm" / "logs").glob("*")))
    slurm_idx = SweepIndex.load(out)
    assert [p["status"] for p in slurm_idx.points] == ["complete"] * 4, logs
    assert "merged 2 shards" in logs
    local = tmp_path / "local"
    run_sweep(load_sweep(f), local, log=_quiet)
    local_idx = SweepIndex.load(local)
    for a, b in zip(local_idx.points, slurm_idx.points):
        assert a["name"] == b["name"]
        with open_ensemble(local_idx.path_of(a)) as x, open_ensemble(slurm_idx.path_of(b)) as y:
            assert_same(dump(y), dump(x))
            assert x.config_hash == y.config_hash
    # submitting again: every point complete, nothing to submit
    r = _cli(f, "-o", out, "--slurm", env=cluster)
    assert r.returncode == 0 and "nothing to submit" in r.stdout, r.stderr


@pytest.mark.slow
def test_slurm_sweep_task_requeued_on_the_time_limit_signal(cluster, tmp_path):
    """USR1 to a running array task (what --signal=B:USR1@S sends before the time limit): the
    point checkpoints, the task requeues itself and exits 75; the requeued task resumes and the
    collect job still runs; the data equal an uninterrupted run."""
    t = json.loads(json.dumps(TINY))
    t["sweep"] = {"name": "requeue"}
    t["axes"] = {"network.sigma_w2": [1.0]}
    # one step per chunk: the task runs for seconds (Python overhead per chunk), so the signal
    # finds it running
    t["base"]["ensemble"].update(steps=20000, chunk=1, checkpoint_every=0.05, replicas=4)
    t["base"]["recording"].update(snapshot_every=0, probe_z_every=0)
    f = _write(tmp_path / "rq.toml", t)
    out = tmp_path / "out"
    r = _cli(f, "-o", out, "--slurm", env=cluster)
    assert r.returncode == 0, r.stderr
    task = next(l.split()[2] for l in r.stdout.splitlines() if l.startswith("array job")) + "_0"
    idx = SweepIndex.load(out)
    done = wait_for_committed_steps(idx.path_of(idx.points[0]))
    assert 0 < done < 20000, f"the task was never observed running (steps done {done})"
    usr1_and_release(cluster, task, lambda: "\n".join(
        p.read_text() for p in sorted((out / "slurm" / "logs").glob("*"))))
    wait_idle(cluster)
    logs = "\n".join(p.read_text() for p in sorted((out / "slurm" / "logs").glob("*")))
    assert "stopped by SIGUSR1" in logs and "requeued SLURM job" in logs, logs
    idx = SweepIndex.load(out)
    assert idx.points[0]["status"] == "complete", logs
    ref = tmp_path / "single.h5"
    run(load_config(idx.path_of(idx.points[0], "config"), ["ensemble.chunk=0"]), ref,
        progress=False)
    with open_ensemble(ref) as a, open_ensemble(idx.path_of(idx.points[0])) as b:
        assert_same(dump(b), dump(a))
