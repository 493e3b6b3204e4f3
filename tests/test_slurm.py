"""End to end on a real single-node SLURM cluster: `langevin-nn submit` in 4 shards, the array
and the dependent merge, compared bit for bit with a single-process run; and a task stopped by
USR1 (the time-limit warning) requeues itself, resumes, and the merge still runs.

The test starts the daemons (runs/slurm/local-cluster.sh) and stops them by pid. Where SLURM is
not installed it is skipped, unless LANGEVIN_NN_REQUIRE_SLURM=1 (CI), where it fails instead.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import assert_same, dump
from langevin_nn import open_ensemble
from langevin_nn.config import load_config
from langevin_nn.simulate import run
from slurm_cluster import usr1_and_release, wait_for_committed_steps, wait_idle

ROOT = Path(__file__).resolve().parents[1]


TABLE = {
    "network": {"architecture": "dense", "widths": [4, 8, 8, 2], "activation": "tanh"},
    "data": {"n_train": 32, "n_probe": 6, "batch": 4},
    "dynamics": {"integrator": "overdamped", "eta": 0.02, "T": 1e-3},
    "ensemble": {"replicas": 10, "steps": 200, "seed": 21},
    "recording": {"every": 10, "snapshot_every": 50, "probe_z_every": 50},
}


def _write_config(path: Path, steps: int, chunk: int = 0, checkpoint_every: float = 300.0):
    import tomli_w

    t = {k: dict(v) for k, v in TABLE.items()}
    t["ensemble"].update(steps=steps, chunk=chunk, checkpoint_every=checkpoint_every)
    path.write_text(tomli_w.dumps(t))
    return path


def _job_states(env, ids):
    """End states from the jobcomp log (there is no sacct without slurmdbd)."""
    conf = Path(env["SLURM_CONF"]).read_text()
    log = next(l.split("=", 1)[1] for l in conf.splitlines() if l.startswith("JobCompLoc="))
    states = {}
    if os.path.exists(log):
        for line in Path(log).read_text().splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            states.setdefault(f.get("ArrayJobId", f["JobId"]), []).append(f.get("JobState"))
    return {i: states.get(i, []) for i in ids}


def _submit(env, cfg_path, outdir, *extra):
    r = subprocess.run([sys.executable, "-m", "langevin_nn", "submit", str(cfg_path), "-o",
                        str(outdir), "--shards", "4", *extra], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    ids = [l.split()[2] for l in r.stdout.splitlines() if l.startswith(("array job", "merge job"))]
    return ids


def test_submit_four_shards_equals_single_run(cluster, tmp_path):
    cfg_path = _write_config(tmp_path / "c.toml", 200)
    out = tmp_path / "out"
    array_id, merge_id = _submit(cluster, cfg_path, out)
    wait_idle(cluster)
    assert (out / "ensemble.h5").exists(), _logs(out)
    ref = tmp_path / "single.h5"
    run(load_config(cfg_path), ref, progress=False)
    with open_ensemble(ref) as a, open_ensemble(out / "ensemble.h5") as b:
        assert_same(dump(b), dump(a))


def test_time_limit_signal_requeues_and_merge_still_runs(cluster, tmp_path):
    """USR1 to a running task (what --signal=B:USR1@S sends before the time limit): it
    checkpoints, requeues itself, exits 75; the requeued task resumes; the merge runs after."""
    # one step per chunk and frequent checkpoints: a task lasts many seconds (Python overhead
    # per chunk) and commits as it goes, so the signal reliably finds it running
    cfg_path = _write_config(tmp_path / "c.toml", 20000, chunk=1, checkpoint_every=0.05)
    out = tmp_path / "out"
    array_id, merge_id = _submit(cluster, cfg_path, out)
    task = f"{array_id}_0"
    done = wait_for_committed_steps(out / "shard_0.h5")
    assert 0 < done < 20000, f"task 0 never observed running (steps done {done})"
    usr1_and_release(cluster, task, lambda: _logs(out))
    wait_idle(cluster, timeout=400)
    logs = _logs(out)
    assert "stopped by SIGUSR1" in logs and "requeued SLURM job" in logs, logs
    assert (out / "ensemble.h5").exists(), logs
    ref = tmp_path / "single.h5"
    run(load_config(cfg_path, overrides=("ensemble.chunk=0",)), ref, progress=False)
    with open_ensemble(ref) as a, open_ensemble(out / "ensemble.h5") as b:
        assert_same(dump(b), dump(a))


def _logs(out: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text()}" for p in sorted((out / "logs").glob("*")))


def test_dry_run_writes_readable_scripts(tmp_path):
    cfg_path = _write_config(tmp_path / "c.toml", 10)
    r = subprocess.run([sys.executable, "-m", "langevin_nn", "submit", str(cfg_path), "-o",
                        str(tmp_path / "o"), "--shards", "3", "--time", "1:00:00",
                        "--partition", "short", "--dry-run"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "o" / "array.sbatch").read_text()
    assert "#SBATCH --array=0-2" in text and "#SBATCH --time=1:00:00" in text
    assert "#SBATCH --partition=short" in text and "--signal=B:USR1@120" in text
    assert "exec " in text and "--resume" in text and '--shard "${SLURM_ARRAY_TASK_ID}/3"' in text
    merge = (tmp_path / "o" / "merge.sbatch").read_text()
    assert "langevin_nn merge" in merge and "shard_2.h5" in merge
    assert load_config(tmp_path / "o" / "config.toml").hash == load_config(cfg_path).hash
