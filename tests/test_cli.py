"""The ``langevin-nn`` command, end to end in subprocesses: exit codes (0 done, 2 bad input,
3 every replica diverged, 75 stopped by a signal), one-line errors naming the culprit, no
traceback and no output file left behind by a bad input."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

from langevin_nn import open_ensemble
from langevin_nn.config import load_config

ROOT = Path(__file__).resolve().parents[1]  # the directory holding the langevin_nn package

#: A small run: a few replicas and steps of a tiny teacher-student problem.
SMALL = """\
[network]
widths = [3, 4, 1]

[data]
n_train = 16
n_probe = 4
batch = 4

[ensemble]
replicas = 3
steps = 20

[recording]
every = 5
"""


def _env() -> dict:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    return env


def cli(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m langevin_nn ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "langevin_nn", *map(str, args)], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def assert_bad_input(p: subprocess.CompletedProcess, culprit: str) -> str:
    """Exit 2, exactly one non-empty stderr line 'error: ...' naming ``culprit``, no traceback."""
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    err = lines(p.stderr)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(err) == 1, p.stderr
    assert err[0].startswith("error:"), err[0]
    assert culprit in err[0], (culprit, err[0])
    return err[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One ensemble file of the SMALL config (runs the CLI once per module)."""
    d = tmp_path_factory.mktemp("small_run")
    write(d / "small.toml", SMALL)
    p = cli(d, "run", "small.toml", "-o", "small.h5")
    assert p.returncode == 0, p.stderr
    return d / "small.h5"


# ------------------------------------------------------------------------------ bad input

def _data_file(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp / "wide.npz", X=rng.normal(size=(20, 5)), Y=rng.normal(size=(20, 1)))


BAD_CONFIGS = {
    # name: (TOML text, culprit named in the message, extra setup)
    "malformed_toml": ("[network\nwidths = [3, 4, 1]\n", "cfg.toml", None),
    "unknown_key": ("[network]\nwidht = [3, 4, 1]\n", "network.widht", None),
    "unknown_section": ("[netwrok]\nwidths = [3, 4, 1]\n", "netwrok", None),
    "wrong_type": ('[network]\nwidths = "8"\n', "network.widths", None),
    "wrong_type_bool_for_int": ("[ensemble]\nsteps = true\n", "ensemble.steps", None),
    "data_width": ('[network]\nwidths = [3, 4, 1]\n[data]\nsource = "file"\npath = "wide.npz"\n'
                   "n_probe = 4\n", "wide.npz", _data_file),
    "hinge_vector_output": ('[network]\nwidths = [3, 4, 2]\n[data]\nloss = "hinge"\n',
                            "data.loss", None),
    "negative_T": ("[dynamics]\nT = -0.1\n", "dynamics.T", None),
    "negative_T_schedule": ('[dynamics]\nT = { kind = "linear", start = 0.1, end = -0.1, '
                            "until = 10 }\n", "dynamics.T", None),
    "negative_eta": ("[dynamics]\neta = -0.01\n", "dynamics.eta", None),
    "zero_eta": ("[dynamics]\neta = 0\n", "dynamics.eta", None),
    "zero_replicas": ("[ensemble]\nreplicas = 0\n", "ensemble.replicas", None),
    "missing_data_file": ('[network]\nwidths = [3, 4, 1]\n[data]\nsource = "file"\n'
                          'path = "nope.npz"\n', "nope.npz", None),
    "missing_branch_file": ('[init]\nfrom = "parent.h5"\n', "init.from", None),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(tmp_path, case):
    text, culprit, setup = BAD_CONFIGS[case]
    if setup is not None:
        setup(tmp_path)
    write(tmp_path / "cfg.toml", text)
    before = sorted(os.listdir(tmp_path))
    p = cli(tmp_path, "run", "cfg.toml", "-o", "out.h5")
    line = assert_bad_input(p, culprit)
    if case == "missing_data_file":
        assert "data.path" in line
    assert not (tmp_path / "out.h5").exists()
    assert sorted(os.listdir(tmp_path)) == before
    # validate reports the same error
    q = cli(tmp_path, "validate", "cfg.toml")
    assert assert_bad_input(q, culprit) == line


@pytest.mark.parametrize("item, culprit", [("dynamics.Tx=0.1", "dynamics.Tx"),
                                           ("nosuchsection.T=1", "nosuchsection"),
                                           ("dynamics.T", "dynamics.T")])
def test_set_naming_no_key(tmp_path, item, culprit):
    write(tmp_path / "small.toml", SMALL)
    p = cli(tmp_path, "run", "small.toml", "--set", item, "-o", "out.h5")
    line = assert_bad_input(p, culprit)
    assert "--set" in line
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("args, culprit", [
    (("run", "small.toml", "--steps", "abc"), "--steps"),
    (("run", "small.toml", "--bogus"), "--bogus"),
    (("run", "small.toml", "-o", "adir"), "--output"),
    (("run",), "CONFIG"),
    (("info",), "FILE"),
    (("frobnicate",), "frobnicate"),
])
def test_usage_errors_are_one_line(tmp_path, args, culprit):
    write(tmp_path / "small.toml", SMALL)
    (tmp_path / "adir").mkdir()
    p = cli(tmp_path, *args)
    assert_bad_input(p, culprit)
    assert sorted(os.listdir(tmp_path)) == ["adir", "small.toml"]
    assert os.listdir(tmp_path / "adir") == []


def test_missing_config_file(tmp_path):
    p = cli(tmp_path, "run", "nonexistent.toml", "-o", "out.h5")
    assert_bad_input(p, "nonexistent.toml")
    assert os.listdir(tmp_path) == []
    assert_bad_input(cli(tmp_path, "validate", "nonexistent.toml"), "nonexistent.toml")


def test_existing_output_is_refused_and_left_alone(tmp_path, small_run):
    write(tmp_path / "small.toml", SMALL)
    out = tmp_path / "out.h5"
    shutil.copy(small_run, out)
    before = out.read_bytes()
    p = cli(tmp_path, "run", "small.toml", "-o", "out.h5", "--seed", "9")
    assert_bad_input(p, "out.h5")
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.h5", "small.toml"]


def test_info_on_foreign_files(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
        f.attrs["format"] = "something.else"
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.arange(3)
    write(tmp_path / "notes.txt", "not an HDF5 file\n")
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    for name in ("foreign.h5", "plain.h5", "notes.txt", "missing.h5"):
        assert_bad_input(cli(tmp_path, "info", name), name)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before


# ------------------------------------------------------------------------------ positive cases

def _steps_done(info_text: str) -> int:
    m = re.search(r"^steps done:\s+(\d+)", info_text, re.M)
    assert m, info_text
    return int(m.group(1))


def test_run_then_info(small_run):
    with h5py.File(small_run, "r") as f:
        h = f.attrs["config_hash"]
        h = h.decode() if isinstance(h, bytes) else str(h)
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    p = cli(small_run.parent, "info", small_run.name)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert re.search(rf"^config hash:\s+{h}$", p.stdout, re.M), p.stdout
    assert _steps_done(p.stdout) == 20
    # the hash is that of the configuration
    assert load_config(str(small_run.parent / "small.toml")).hash == h


def test_validate_ok(tmp_path):
    write(tmp_path / "small.toml", SMALL)
    p = cli(tmp_path, "validate", "small.toml")
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout
    assert os.listdir(tmp_path) == ["small.toml"]


def test_builtin_quickstart(tmp_path):
    p = cli(tmp_path, "run", "quickstart", "--steps", "20", "--replicas", "2", "-o", "x.h5")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    q = cli(tmp_path, "info", "x.h5")
    assert q.returncode == 0, q.stderr
    assert _steps_done(q.stdout) == 20
    assert re.search(r"^replicas:\s+2 ", q.stdout, re.M), q.stdout


def test_overwrite_replaces(tmp_path, small_run):
    write(tmp_path / "small.toml", SMALL)
    out = tmp_path / "out.h5"
    shutil.copy(small_run, out)
    p = cli(tmp_path, "run", "small.toml", "-o", "out.h5", "--overwrite", "--steps", "10",
            "--seed", "7")
    assert p.returncode == 0, p.stderr
    with h5py.File(out, "r") as f:
        assert str(f.attrs["seed"]) == "7"
        assert int(f["state/committed"][()]) in (0, 1)
        slot = f[f"state/slot{int(f['state/committed'][()])}"]
        assert int(slot["step"][()]) == 10
    with h5py.File(small_run, "r") as f:
        assert str(f.attrs["seed"]) == "0"


def test_set_shows_in_effective_config(tmp_path):
    write(tmp_path / "small.toml", SMALL)
    p = cli(tmp_path, "run", "small.toml", "--set", "dynamics.T=0.01", "--steps", "5",
            "-o", "t.h5")
    assert p.returncode == 0, p.stderr
    with h5py.File(tmp_path / "t.h5", "r") as f:
        eff = f.attrs["config_effective"]
        text = f.attrs["config_text"]
    eff = eff.decode() if isinstance(eff, bytes) else str(eff)
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert tomllib.loads(eff)["dynamics"]["T"] == 0.01
    assert tomllib.loads(eff)["ensemble"]["steps"] == 5
    assert text == SMALL  # the TOML as written; the override is stored beside it


def test_every_replica_diverges_exits_3(tmp_path):
    write(tmp_path / "small.toml", SMALL)
    p = cli(tmp_path, "run", "small.toml", "--set", "dynamics.divergence_bound=1e-12",
            "-o", "d.h5")
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    err = lines(p.stderr)
    assert any(ln.startswith("error:") and "diverged" in ln for ln in err), p.stderr
    q = cli(tmp_path, "info", "d.h5")
    assert q.returncode == 0, q.stderr
    assert re.search(r"^diverged:\s+3 of 3 replicas", q.stdout, re.M), q.stdout


def test_some_replicas_diverge_exits_0_with_warning(tmp_path):
    cfg = SMALL.replace("batch = 4", 'batch = "full"') + "\n[dynamics]\neta = 0.001\n"
    cfg = cfg.replace("replicas = 3", "replicas = 4")
    write(tmp_path / "c.toml", cfg)
    p = cli(tmp_path, "run", "c.toml", "--steps", "0", "-o", "pilot.h5")
    assert p.returncode == 0, p.stderr
    with h5py.File(tmp_path / "pilot.h5", "r") as f:
        l0 = f["records/loss_batch"][:, 0]
    assert np.all(np.isfinite(l0)) and l0.min() < l0.max()
    bound = float(0.5 * (l0.min() + l0.max()))
    n_above = int(np.sum(l0 > bound))
    p = cli(tmp_path, "run", "c.toml", "--set", f"dynamics.divergence_bound={bound!r}",
            "-o", "some.h5")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    warn = [ln for ln in lines(p.stderr) if ln.startswith("warning:")]
    assert len(warn) == 1, p.stderr
    assert f"{n_above} of 4 replicas diverged" in warn[0]
    assert not any(ln.startswith("error:") for ln in lines(p.stderr))


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="needs POSIX SIGTERM")
def test_sigterm_checkpoints_and_exits_75(tmp_path):
    cfg = SMALL.replace("steps = 20", "steps = 100000000000\ncheckpoint_every = 0.05")
    cfg = cfg.replace("replicas = 3", "replicas = 2").replace("every = 5", "every = 100")
    write(tmp_path / "long.toml", cfg)
    out = tmp_path / "long.h5"
    proc = subprocess.Popen([sys.executable, "-m", "langevin_nn", "run", "long.toml", "-o",
                             "long.h5", "--no-progress"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                try:
                    with open_ensemble(out) as ens:
                        ready = ens.steps_done > 0 and ens.entries["records"] > 1
                except Exception:  # the writer may be half-way through an update
                    ready = False
                if ready:
                    break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert ready, "the run did not checkpoint within the time limit"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 75, stderr
    assert "Traceback" not in stderr
    assert "SIGTERM" in stderr
    q = cli(tmp_path, "info", "long.h5")
    assert q.returncode == 0, q.stderr
    n = _steps_done(q.stdout)
    assert 0 < n < 100000000000
    with open_ensemble(out) as ens:
        assert ens.steps_done == n
        assert ens.read("records/step")[-1] == n // 100 * 100
