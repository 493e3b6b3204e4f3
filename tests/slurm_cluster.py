"""A real single-node SLURM cluster for the tests that need one (test_slurm, test_sweep).

``cluster`` starts munged, slurmctld and slurmd with ``runs/slurm/local-cluster.sh`` and stops
them by pid afterwards; it yields the environment to run SLURM commands and our CLI with. Where
SLURM is not installed (or not root) the test is skipped with a message, unless
``LANGEVIN_NN_REQUIRE_SLURM=1`` (CI), where it fails instead. The script uses fixed ports, so one
cluster runs at a time: each test module starts and stops its own.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import committed_steps

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "runs" / "slurm" / "local-cluster.sh"
NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = [x for x in NEEDED if shutil.which(x) is None and not os.path.exists(f"/usr/sbin/{x}")]
    if missing or os.geteuid() != 0:
        why = f"SLURM not available ({', '.join(missing) or 'not root'})"
        if os.environ.get("LANGEVIN_NN_REQUIRE_SLURM") == "1":
            pytest.fail(why + " but LANGEVIN_NN_REQUIRE_SLURM=1")
        pytest.skip(why + "; install munge slurmctld slurmd slurm-client to run this test")
    d = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin")
    r = subprocess.run(["bash", str(SCRIPT), "start", str(d)], capture_output=True, text=True,
                       env=env, timeout=120)
    if r.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], env=env)
        pytest.fail(f"local SLURM did not start: {r.stderr}")
    env["SLURM_CONF"] = str(d / "slurm.conf")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], env=env, timeout=60)


def wait_idle(env, timeout=300):
    """Return once the queue is empty; fail after ``timeout`` seconds."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        q = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env).stdout
        if not q.strip():
            return
        time.sleep(1)
    raise AssertionError(f"jobs still queued after {timeout} s:\n{q}")


def wait_for_committed_steps(path, timeout=300) -> int:
    """Poll until the task writing ``path`` has committed some steps (it is then past its
    start-up, so a signal finds it handling signals), at most ``timeout`` s; returns them."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        done = committed_steps(path)
        if done > 0:
            return done
        time.sleep(0.2)
    return 0


def usr1_and_release(env, task: str, logs) -> None:
    """Send USR1 to the batch step of running array task ``task`` (what ``--signal=B:USR1@S``
    sends before the time limit), then release the requeued task that SLURM holds back.

    ``logs()`` returns the task logs so far: scancel may report failure although the signal was
    delivered (the task stopped and requeued itself before scancel heard back), and a task just
    launched answers "can not be altered now, try again later"; the log line "stopped by
    SIGUSR1" is the witness."""
    errors = []
    for _ in range(40):
        r = subprocess.run(["scancel", "--signal=USR1", "--batch", task], env=env,
                           capture_output=True, text=True)
        if r.returncode == 0 or "stopped by SIGUSR1" in logs():
            break
        errors.append(r.stderr.strip())
        time.sleep(0.5)
    else:
        q = subprocess.run(["squeue"], capture_output=True, text=True, env=env).stdout
        raise AssertionError(f"scancel --signal=USR1 kept failing: {sorted(set(errors))}\n{q}\n"
                             f"{logs()}")
    t0 = time.time()
    while time.time() - t0 < 60:  # SLURM holds a requeued job back (reason BeginTime)
        q = subprocess.run(["squeue", "-h", "-j", task, "-o", "%T %r"], capture_output=True,
                           text=True, env=env).stdout.strip()
        if "BeginTime" in q:
            # not within the second of the requeue: slurmd refuses a launch whose credential is
            # not newer than the revocation ("Job credential revoked"), at 1 s resolution
            time.sleep(2.5)
            subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], env=env)
            break
        time.sleep(0.3)
