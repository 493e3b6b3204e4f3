"""The configuration tree: one frozen dataclass per section and :class:`Config`, with the way
back to TOML (``Config.to_dict`` / ``to_toml``) and the config hash."""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from .keys import ACTIVATION_PARAMS, HASH_EXCLUDED, INTEGRATOR_SCHEDULES


@dataclass(frozen=True)
class ActivationSpec:
    """An activation sigma by name, with the coefficients of the two polynomial ones.

    linear: sigma(x) = p x + q; quadratic: sigma(x) = p x^2 + q x + r (SFT Eqs. 13, 18).
    The other names ignore p, q, r (they keep their defaults).
    """

    name: str
    p: float = 1.0
    q: float = 0.0
    r: float = 0.0


@dataclass(frozen=True)
class NetworkConfig:
    """The architecture (BBD Eq. 1): widths N_0..N_M of the neuron layers, M = len(widths) - 1 links.

    ``widths`` is always resolved: dense as given; local (width,) * (depth + 1);
    sft1 (width, width); sft2 (width, width, width). ``k`` and ``tied`` matter for local only.
    Initialisation: W ~ N(0, sigma_w2 / fan_in) (fan_in = 2k + 1 for local), b ~ N(0, sigma_b2).
    """

    architecture: str
    widths: tuple[int, ...]
    k: int
    tied: bool
    activation: ActivationSpec
    output_activation: ActivationSpec
    bias: bool
    sigma_w2: float
    sigma_b2: float


@dataclass(frozen=True)
class Schedule:
    """A value that may change along the run, as a function of x = step index or time.

    x is in ``unit``: the step index s (``"steps"``) or the physical time t (``"time"``, the
    integrator's own unit: physics.md section 3); the value used by step s -> s+1 is value(x) at
    that step's start. Never relative to the total number of steps.

    * constant: ``values = (v,)``
    * linear / exponential: ``start`` for x <= begin, ``end`` for x >= until, linear resp.
      geometric interpolation in between
    * piecewise: ``values[0]`` for x < at[0], ``values[i]`` for at[i-1] <= x < at[i],
      ``values[-1]`` from at[-1] on.
    """

    kind: str
    unit: str = "steps"
    start: float = 0.0
    end: float = 0.0
    begin: float = 0.0
    until: float = 0.0
    at: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    def value(self, x: float) -> float:
        """The schedule's value at x (a step index or a time, in ``unit``)."""
        if self.kind in ("constant", "piecewise"):
            return self.values[bisect.bisect_right(self.at, x)]
        if x <= self.begin:
            return self.start
        if x >= self.until:
            return self.end
        frac = (x - self.begin) / (self.until - self.begin)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        return self.start * (self.end / self.start) ** frac  # exponential: geometric

    def nodes(self) -> tuple[float, ...]:
        """Every value the schedule takes at its nodes; all its values lie between min and max."""
        if self.kind in ("constant", "piecewise"):
            return self.values
        return (self.start, self.end)

    def to_toml(self) -> float | dict:
        """The TOML form: a plain number for a constant, a table otherwise."""
        if self.kind == "constant":
            return self.values[0]
        if self.kind == "piecewise":
            return {"kind": self.kind, "unit": self.unit, "at": list(self.at),
                    "values": list(self.values)}
        return {"kind": self.kind, "unit": self.unit, "start": self.start, "end": self.end,
                "begin": self.begin, "until": self.until}


@dataclass(frozen=True)
class DataConfig:
    """The boundary: where inputs and targets come from, the minibatch and the loss (BBD Table I).

    ``n_train`` (P) is None for online data and, for file/digits, for "every row not in the
    probe set". ``batch`` (B) is None for the full batch (all P samples in order).
    ``path`` is absolute. ``teacher`` is the teacher network for source = "teacher".
    """

    source: str
    n_train: int | None
    online: bool
    n_probe: int
    batch: int | None
    loss: str
    reduction: str
    label_noise: float
    path: str | None
    teacher: NetworkConfig | None


@dataclass(frozen=True)
class DynamicsConfig:
    """The integrator and its schedules (physics.md section 3).

    overdamped: theta += -eta grad l + sqrt(2 eta T) xi (dt = eta);
    underdamped: BAOAB with step dt = h, friction gamma per unit time;
    heavy_ball: v = beta v - eta grad l + sqrt(2 (1 - beta) eta T) xi (dt = sqrt(eta)).
    ``lam`` is the prior strength lambda (loss + lambda/2 |theta|^2; TOML key ``lambda``).
    Schedules an integrator does not use keep their defaults.
    """

    integrator: str
    eta: Schedule
    T: Schedule
    dt: Schedule
    gamma: Schedule
    beta: Schedule
    lam: Schedule
    divergence_bound: float


@dataclass(frozen=True)
class EnsembleConfig:
    """R independent replicas, the seed of every random stream, and how the run is executed."""

    replicas: int
    seed: int
    steps: int
    dtype: str
    threads: int
    checkpoint_every: float
    chunk: int


@dataclass(frozen=True)
class RecordingConfig:
    """What is recorded, and how often (in steps; records at every multiple of ``every``)."""

    every: int
    train_loss: bool
    norms: bool
    snapshot_every: int
    probe_z_every: int
    probe_z_dtype: str
    bbd: bool = False  # bulk-boundary decomposition terms at every record (needs biases)


@dataclass(frozen=True)
class InitConfig:
    """Fresh Gaussian initialisation (``file`` None) or a branch from another ensemble file."""

    file: str | None
    at: str | int
    momenta: str
    replica: int | None = None  # every replica starts from this source replica (None: replica r from r)


@dataclass(frozen=True)
class Config:
    """The whole configuration. Equality compares the six sections, not ``text``/``overrides``."""

    network: NetworkConfig
    data: DataConfig
    dynamics: DynamicsConfig
    ensemble: EnsembleConfig
    recording: RecordingConfig
    init: InitConfig
    text: str = field(default="", compare=False)
    overrides: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict:
        """The effective configuration, TOML-shaped: every key that applies, resolved.

        Keys that do not apply (``k`` of a dense network, ``gamma`` of an overdamped run, ...)
        and None values are omitted, so that loading the result gives an equal Config.
        """
        return {
            "network": _network_dict(self.network),
            "data": _data_dict(self.data),
            "dynamics": _dynamics_dict(self.dynamics),
            "ensemble": dataclasses.asdict(self.ensemble),
            "recording": dataclasses.asdict(self.recording),
            "init": _init_dict(self.init),
        }

    def to_toml(self) -> str:
        """The effective configuration as TOML text (``load_config`` of it gives an equal Config)."""
        return tomli_w.dumps(self.to_dict())

    @property
    def hash(self) -> str:
        """16 hex chars of sha256 over the canonical JSON of ``to_dict()`` minus HASH_EXCLUDED."""
        d = self.to_dict()
        for dotted in HASH_EXCLUDED:
            section, key = dotted.split(".")
            d[section].pop(key, None)
        canonical = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Back to TOML
# --------------------------------------------------------------------------------------------

def _activation_dict(d: dict, name_key: str, spec: ActivationSpec) -> None:
    d[name_key] = spec.name
    if spec.name in ACTIVATION_PARAMS:
        d[f"{name_key}_params"] = {k: getattr(spec, k) for k in ACTIVATION_PARAMS[spec.name]}


def _network_dict(n: NetworkConfig) -> dict:
    d: dict[str, Any] = {"architecture": n.architecture}
    if n.architecture == "dense":
        d["widths"] = list(n.widths)
    elif n.architecture == "local":
        d.update(width=n.widths[0], depth=len(n.widths) - 1, k=n.k, tied=n.tied)
    else:
        d["width"] = n.widths[0]
    if n.architecture != "sft1":
        _activation_dict(d, "activation", n.activation)
    _activation_dict(d, "output_activation", n.output_activation)
    d.update(bias=n.bias, sigma_w2=n.sigma_w2, sigma_b2=n.sigma_b2)
    return d


def _data_dict(c: DataConfig) -> dict:
    d: dict[str, Any] = {"source": c.source}
    if c.n_train is not None:
        d["n_train"] = c.n_train
    if c.source == "teacher":
        d["online"] = c.online
    d["n_probe"] = c.n_probe
    d["batch"] = "full" if c.batch is None else c.batch
    d.update(loss=c.loss, reduction=c.reduction)
    if c.source == "teacher":
        d["label_noise"] = c.label_noise
    if c.path is not None:
        d["path"] = c.path
    if c.teacher is not None:
        d["teacher"] = _network_dict(c.teacher)
    return d


def _dynamics_dict(c: DynamicsConfig) -> dict:
    d: dict[str, Any] = {"integrator": c.integrator}
    for name in INTEGRATOR_SCHEDULES[c.integrator]:
        d[name] = getattr(c, "lam" if name == "lambda" else name).to_toml()
    d["divergence_bound"] = c.divergence_bound
    return d


def _init_dict(c: InitConfig) -> dict:
    if c.file is None:
        return {}
    out = {"from": c.file, "at": c.at, "momenta": c.momenta}
    if c.replica is not None:
        out["replica"] = c.replica
    return out
