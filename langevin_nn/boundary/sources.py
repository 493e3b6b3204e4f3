"""Where the data come from: teacher-student, a user file, scikit-learn's digits; the probe set.

* ``teacher``: X ~ N(0, 1) (N_0 components), a random teacher network of the chosen architecture
  (initialised like a student, shared stream TEACHER), targets = target map of the teacher's output
  plus Gaussian label noise of std ``label_noise`` (MSE: the output itself; cross-entropy / KL:
  its softmax; hinge: its sign). A finite set of P samples (TRAIN streams) or, with ``online``,
  fresh samples every step for every replica (ONLINE streams, generated inside the kernels).
* ``file``: an ``.npz`` or HDF5 file with arrays ``X`` (P, N_0) and ``Y`` (P, N_M) (``Y`` may be
  1-d for N_M = 1), optionally ``X_probe`` and ``Y_probe``; without them the last K rows are the
  probe set. The file's SHA-256 is recorded.
* ``digits``: scikit-learn's bundled 8x8 digits (1797 samples, N_0 = 64, no download), each pixel
  standardised over the set; targets one-hot over the 10 classes (MSE, cross-entropy, KL) or
  +1 for even and -1 for odd digits (hinge). The last K samples are the probe set.

The probe set (K held-out samples with targets) is what the observables are measured on; its loss
is the generalisation error.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from ..bulk.networks import Layout, build_layout
from ..errors import UserError
from ..kernels import streams
from ..kernels.data import make_teacher_set
from ..kernels.ensemble import init_params
from . import losses


@dataclass(frozen=True)
class BoundaryData:
    """The data of a run. X_train (P, N_0) and Y_train (P, N_M) (P = 0 for online data),
    X_probe (K, N_0), Y_probe (K, N_M), all float64; the teacher (layout and parameters) for
    teacher-student data; ``info`` describes the source (stored as attributes)."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_probe: np.ndarray
    Y_probe: np.ndarray
    online: bool
    teacher: Layout | None = None
    teacher_theta: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    ready: bool = True  # False: teacher data not generated yet (shapes only)

    def static(self) -> dict[str, np.ndarray]:
        """Arrays to store in the ensemble file (group ``data``)."""
        out = {"data/X_probe": self.X_probe, "data/Y_probe": self.Y_probe}
        if self.X_train.shape[0] > 0 and not self.info.get("external"):
            out["data/X_train"] = self.X_train
            out["data/Y_train"] = self.Y_train
        if self.teacher_theta is not None:
            out["data/teacher_theta"] = self.teacher_theta
            out.update({k.replace("network/", "data/teacher/"): v
                        for k, v in self.teacher.static().items()})
        return out


def teacher_layout_and_params(cfg) -> tuple[Layout, np.ndarray]:
    """The teacher network of ``cfg.data.teacher`` and its parameters (stream TEACHER)."""
    lay = build_layout(cfg.data.teacher)
    theta = np.zeros((1, lay.n_par))
    init_params(lay.init_std, np.uint64(cfg.ensemble.seed), streams.TEACHER,
                np.zeros(1, np.int64), theta)
    return lay, theta[0]


def teacher_set(cfg, lay: Layout, theta: np.ndarray, n: int, s_x: int, s_lab: int):
    """A finite teacher-student set of n samples from shared streams s_x (inputs) and s_lab."""
    X = np.zeros((n, lay.widths[0]))
    Y = np.zeros((n, lay.widths[-1]))
    if n:
        make_teacher_set(lay.arrays, theta, np.uint64(cfg.ensemble.seed), s_x, s_lab, n,
                         float(cfg.data.label_noise), losses.CODES[cfg.data.loss], X, Y)
    return X, Y


def _load_file(path: str) -> dict[str, np.ndarray]:
    try:
        if path.endswith(".npz"):
            with np.load(path) as f:
                return {k: np.asarray(f[k]) for k in f.files}
        import h5py

        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]) for k in f if isinstance(f[k], h5py.Dataset)}
    except FileNotFoundError:
        raise UserError(f"{path}: data file not found") from None
    except Exception as e:  # unreadable or not the right kind of file
        raise UserError(f"{path}: cannot read data file ({type(e).__name__}: {e})") from None


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_targets(path: str, name: str, Y: np.ndarray, loss: str) -> None:
    if loss == "hinge" and not np.all(np.isin(Y, (-1.0, 1.0))):
        raise UserError(f"{path}: {name} must be +1 or -1 for the hinge loss")
    if loss in ("cross_entropy", "kl") and (
            np.any(Y < 0) or not np.allclose(Y.sum(axis=1), 1.0, atol=1e-6)):
        raise UserError(f"{path}: {name} rows must be probabilities (>= 0, summing to 1) "
                        f"for the {loss} loss")


def _file_source(cfg, widths) -> BoundaryData:
    path = os.fspath(cfg.data.path)
    arrays = _load_file(path)
    for key in ("X", "Y"):
        if key not in arrays:
            raise UserError(f"{path}: no array {key!r} (found: {', '.join(sorted(arrays)) or 'none'})")

    def shaped(name, a, width):
        a = np.asarray(a, dtype=float)
        if a.ndim == 1 and width == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != width:
            raise UserError(f"{path}: {name} has shape {a.shape}, the network needs "
                            f"(n, {width}) (network widths {list(widths)})")
        if not np.all(np.isfinite(a)):
            raise UserError(f"{path}: {name} has non-finite values")
        return a

    X = shaped("X", arrays["X"], widths[0])
    Y = shaped("Y", arrays["Y"], widths[-1])
    if X.shape[0] != Y.shape[0]:
        raise UserError(f"{path}: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    K = cfg.data.n_probe
    if "X_probe" in arrays or "Y_probe" in arrays:
        Xp = shaped("X_probe", arrays.get("X_probe", np.zeros((0, 0))), widths[0])
        Yp = shaped("Y_probe", arrays.get("Y_probe", np.zeros((0, 0))), widths[-1])
        if Xp.shape[0] != Yp.shape[0] or Xp.shape[0] == 0:
            raise UserError(f"{path}: X_probe and Y_probe must have the same, non-zero number of rows")
    else:
        if X.shape[0] <= K:
            raise UserError(f"{path}: {X.shape[0]} samples cannot hold out data.n_probe = {K} "
                            "probe samples and still leave a training set")
        X, Xp = X[:-K], X[-K:]
        Y, Yp = Y[:-K], Y[-K:]
    P = cfg.data.n_train
    if P is not None:
        if P > X.shape[0]:
            raise UserError(f"data.n_train: {P} exceeds the {X.shape[0]} training rows of {path}")
        X, Y = X[:P], Y[:P]
    _check_targets(path, "Y", Y, cfg.data.loss)
    _check_targets(path, "Y_probe", Yp, cfg.data.loss)
    info = {"source": "file", "path": os.path.abspath(path), "sha256": _sha256(path)}
    return BoundaryData(X, Y, Xp, Yp, False, info=info)


def _digits_source(cfg, widths) -> BoundaryData:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("data.source: 'digits' needs scikit-learn "
                        "(pip install 'langevin_nn[digits]')") from None
    d = load_digits()
    X = d.data.astype(float)
    sd = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    if cfg.data.loss == "hinge":
        Y = np.where(d.target % 2 == 0, 1.0, -1.0)[:, None]
    else:
        Y = np.eye(10)[d.target]
    if widths[0] != 64 or widths[-1] != Y.shape[1]:
        raise UserError(f"network.widths: the digits set needs input width 64 and output width "
                        f"{Y.shape[1]} for the {cfg.data.loss} loss, got {list(widths)}")
    K = cfg.data.n_probe
    X, Xp, Y, Yp = X[:-K], X[-K:], Y[:-K], Y[-K:]
    if cfg.data.n_train is not None:
        if cfg.data.n_train > X.shape[0]:
            raise UserError(f"data.n_train: {cfg.data.n_train} exceeds the {X.shape[0]} "
                            "training samples of the digits set")
        X, Y = X[:cfg.data.n_train], Y[:cfg.data.n_train]
    return BoundaryData(X, Y, Xp, Yp, False, info={"source": "digits"})


def build_boundary(cfg, layout: Layout, generate: bool = True) -> BoundaryData:
    """The training set, probe set and teacher of a run (validated against the network).

    With ``generate=False`` teacher-student data are not made (that takes a compiled kernel):
    the arrays have their final shapes but are zero and ``ready`` is False; file and digits
    data are always loaded."""
    src = cfg.data.source
    if src == "file":
        return _file_source(cfg, layout.widths)
    if src == "digits":
        return _digits_source(cfg, layout.widths)
    P = 0 if cfg.data.online else cfg.data.n_train
    info = {"source": "teacher", "online": bool(cfg.data.online)}
    if not generate:
        n0, nm = layout.widths[0], layout.widths[-1]
        K = cfg.data.n_probe
        return BoundaryData(np.zeros((P, n0)), np.zeros((P, nm)), np.zeros((K, n0)),
                            np.zeros((K, nm)), bool(cfg.data.online), info=info, ready=False)
    lay, theta = teacher_layout_and_params(cfg)
    X, Y = teacher_set(cfg, lay, theta, P, streams.TRAIN_X, streams.TRAIN_LABEL)
    Xp, Yp = teacher_set(cfg, lay, theta, cfg.data.n_probe, streams.PROBE_X, streams.PROBE_LABEL)
    return BoundaryData(X, Y, Xp, Yp, bool(cfg.data.online), lay, theta, info)
