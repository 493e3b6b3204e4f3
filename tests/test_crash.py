"""Surviving kills: a run killed with SIGKILL (or stopped by SIGTERM) at several moments, from
start-up to the middle of a checkpoint, leaves a file that `info` reads (or no file, if killed
before the file was complete), and `--resume` completes it into exactly the uninterrupted run.

The run checkpoints after every chunk of 7 steps, so most kill times land in or near a checkpoint
write."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import assert_same, dump
from langevin_nn import open_ensemble

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
CONFIG = """
[network]
architecture = "dense"
widths = [4, 16, 16, 2]
[data]
n_train = 64
n_probe = 8
batch = 4
[dynamics]
integrator = "underdamped"
dt = 0.05
gamma = 1.0
T = 1e-3
[ensemble]
replicas = 12
steps = 2500
seed = 3
checkpoint_every = 0.001
chunk = 7
[recording]
every = 10
snapshot_every = 100
probe_z_every = 100
"""


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "langevin_nn", *args], env=ENV,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    (d / "c.toml").write_text(CONFIG)
    r = _cli("run", str(d / "c.toml"), "-o", str(d / "ref.h5"), "--no-progress")
    assert r.returncode == 0, r.stderr
    with open_ensemble(d / "ref.h5") as e:
        return d, dump(e)


def _kill_and_resume(setup, tmp_path, sig, delay):
    d, ref = setup
    out = tmp_path / "k.h5"
    p = subprocess.Popen([sys.executable, "-m", "langevin_nn", "run", str(d / "c.toml"), "-o",
                          str(out), "--no-progress"], env=ENV, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=600)
    if sig == signal.SIGTERM and p.returncode != 0:
        assert p.returncode == 75, err
        assert "checkpoint written" in err or "before any checkpoint" in err
    if out.exists():
        info = _cli("info", str(out))
        assert info.returncode == 0, info.stderr
        assert "Traceback" not in info.stderr
    r = _cli("run", str(d / "c.toml"), "-o", str(out), "--resume", "--no-progress")
    assert r.returncode == 0, r.stderr
    with open_ensemble(out) as e:
        assert_same(dump(e), ref)
    assert not list(tmp_path.glob("k.h5.partial-*"))


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.4, 0.9, 1.4, 2.0, 2.7, 3.5])
def test_sigkill_then_resume_equals_uninterrupted(setup, tmp_path, delay):
    _kill_and_resume(setup, tmp_path, signal.SIGKILL, delay)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 1.5, 3.0])
def test_sigterm_checkpoints_and_resume_equals_uninterrupted(setup, tmp_path, delay):
    _kill_and_resume(setup, tmp_path, signal.SIGTERM, delay)


def test_stop_signal_while_the_cli_imports_exits_75(setup, tmp_path):
    """SIGTERM while ``python -m langevin_nn`` is still importing the CLI (half a second of
    numpy, numba, h5py: a scheduler cancelling a job that has just started) exits 75 with the
    one line of a stop before any checkpoint, instead of killing the process with status -15.
    An import hook sends the signal as click is imported, so it lands inside the imports."""
    d, _ = setup
    out = tmp_path / "early.h5"
    code = (
        "import os, signal, sys\n"
        "class Kill:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'click':\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "sys.meta_path.insert(0, Kill())\n"
        "from langevin_nn.__main__ import start\n"
        f"start(['run', {str(d / 'c.toml')!r}, '-o', {str(out)!r}, '--no-progress'])\n")
    p = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 75, p.stderr
    assert p.stderr.strip() == "stopped by SIGTERM before any checkpoint; nothing to resume"
    assert not out.exists() and not list(tmp_path.glob("early.h5.partial-*"))


def test_stop_signal_while_a_finished_run_exits_changes_nothing(setup, tmp_path):
    """SIGTERM and SIGUSR1 after the run has closed its file (a scheduler stopping the job as it
    ends) neither kill the process (status -15: Python restores the default action of handled
    signals while it shuts down) nor report a stop: status 0, the file complete."""
    d, _ = setup
    out = tmp_path / "late.h5"
    code = (
        "import os, signal\n"
        "from langevin_nn.cli import main\n"
        "try:\n"
        f"    main(['run', {str(d / 'c.toml')!r}, '-o', {str(out)!r}, '--steps', '20',"
        " '--no-progress'])\n"
        "finally:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGUSR1)\n")
    p = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert "stopped" not in p.stderr
    with open_ensemble(out) as e:
        assert e.steps_done == 20


def test_corrupt_files_give_one_line_errors_and_stay_untouched(setup, tmp_path):
    d, _ = setup
    src = (d / "ref.h5").read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(src[: len(src) // 2])
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(src[:512] + b"\0" * 4096 + src[4608:])
    for bad in (trunc, garbage):
        before = bad.read_bytes()
        r = _cli("run", str(d / "c.toml"), "-o", str(bad), "--resume", "--no-progress")
        assert r.returncode == 2, r.stderr
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and bad.name in lines[0]
        assert "Traceback" not in r.stderr
        assert bad.read_bytes() == before
