"""Small helpers shared by the test modules (runs into memory, quadratic test problems)."""
from __future__ import annotations

import copy

import numpy as np

from langevin_nn.config import load_config
from langevin_nn.simulate import run


def committed_steps(path) -> int:
    """Steps that a (possibly running) ensemble file has committed in a checkpoint; 0 while the
    file is absent, being renamed into place or between writes."""
    from langevin_nn import open_ensemble

    try:
        with open_ensemble(path) as e:
            return e.steps_done if e.has_checkpoint else 0
    except Exception:
        return 0


def merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for sec, table in extra.items():
        if isinstance(table, dict):
            out.setdefault(sec, {}).update(table)
        else:
            out[sec] = table
    return out


def run_memory(table: dict):
    """Run a config dict into a MemoryWriter and return (config, reader, result)."""
    cfg = load_config(table)
    res = run(cfg, None, progress=False)
    return cfg, res.writer.reader(), res


#: A quadratic cost: one linear layer without bias, MSE, the full batch of P teacher samples,
#: C(W) = mean_p (W . x_p - y_p)^2 with Hessian H = 2 X^T X / P (physics.md section 5).
QUADRATIC = {
    "network": {"architecture": "dense", "widths": [4, 1], "bias": False},
    "data": {"n_train": 32, "n_probe": 4, "batch": "full", "loss": "mse"},
    "recording": {"every": 1000000, "train_loss": False, "norms": False},
}


def quadratic_hessian(seed: int = 0) -> np.ndarray:
    """H of the QUADRATIC cost for a given seed (the training inputs come from that seed)."""
    _, rd, _ = run_memory(merge(QUADRATIC, {"ensemble": {"replicas": 1, "steps": 0, "seed": seed}}))
    X = rd.read("data/X_train")
    return 2.0 * X.T @ X / X.shape[0]


def covariance_z(sample: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Deviations (in standard errors) of the sample covariance of ``sample`` (R, n) from
    ``predicted`` (n, n), for Gaussian data: Var(S_ij) = (S_ii S_jj + S_ij^2) / R."""
    R = sample.shape[0]
    S = np.cov(sample, rowvar=False)
    d = np.diag(predicted)
    se = np.sqrt((np.outer(d, d) + predicted ** 2) / R)
    return (S - predicted) / se


def dump(reader, replicas=slice(None)) -> dict[str, np.ndarray]:
    """Every recorded dataset and the committed state of an ensemble, as arrays by name."""
    out = {}
    for g in reader.groups():
        if g == "state":
            for k, v in reader.state().items():
                out[f"state/{k}"] = np.asarray(v)[replicas] if np.ndim(v) else np.asarray(v)
        elif g not in ("network", "data"):
            out[f"{g}/step"] = reader.read(f"{g}/step")
            out[f"{g}/time"] = reader.read(f"{g}/time")
            for v in reader.vars(g):
                out[f"{g}/{v}"] = reader.read(f"{g}/{v}", replicas=replicas)
    return out


def assert_same(a: dict, b: dict) -> None:
    """Bit-for-bit equality of two dumps (NaN equal to NaN)."""
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k, strict=True)
