"""The configuration tree: frozen dataclasses loaded from TOML and validated in one place.

Every other module trusts a :class:`Config`; nothing downstream validates it again. Every error
is a one-line :class:`~langevin_nn.errors.ConfigError` whose message starts with the TOML key
(``network.widths: expected a list of at least 2 positive integers, got [8]``), or with the file
name for a file that cannot be read or parsed. The keys, defaults and units are documented in
``docs/config.md``; the physics conventions (losses, integrators, time units) in ``physics.md``.

    load_config(path_or_dict, overrides=("dynamics.T=0.1",), replicas=64) -> Config
    Config.to_dict() / to_toml()     the effective configuration, every key resolved
    Config.hash                      16 hex chars identifying the physics (HASH_EXCLUDED left out)

Time-like values of a schedule are in steps or in the integrator's own time unit
(dt = eta overdamped, dt = h underdamped, dt = sqrt(eta) heavy ball; physics.md section 3).
"""
from __future__ import annotations

import bisect
import copy
import dataclasses
import hashlib
import json
import math
import numbers
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import tomli_w

from .errors import ConfigError
from .tomlfile import read_toml

__all__ = [
    "ActivationSpec", "NetworkConfig", "Schedule", "DataConfig", "DynamicsConfig",
    "EnsembleConfig", "RecordingConfig", "InitConfig", "Config", "HASH_EXCLUDED",
    "load_config", "parse_schedule",
]

#: Keys left out of :attr:`Config.hash`: they change how a run is executed, not what it computes
#: (``steps`` is excluded so that an extended run keeps its hash).
HASH_EXCLUDED = ("ensemble.threads", "ensemble.steps", "ensemble.checkpoint_every", "ensemble.chunk")

ARCHITECTURES = ("dense", "local", "sft1", "sft2")
ACTIVATIONS = ("tanh", "sigmoid", "erf", "relu", "linear", "quadratic", "softplus", "identity")
#: Activations with coefficients: linear p x + q, quadratic p x^2 + q x + r.
ACTIVATION_PARAMS = {"linear": ("p", "q"), "quadratic": ("p", "q", "r")}
SOURCES = ("teacher", "file", "digits")
LOSSES = ("mse", "cross_entropy", "kl", "hinge")
REDUCTIONS = ("mean", "sum")
INTEGRATORS = ("overdamped", "underdamped", "heavy_ball")
SCHEDULE_KINDS = ("constant", "linear", "exponential", "piecewise")
SCHEDULE_UNITS = ("steps", "time")
DTYPES = ("float64", "float32")
MOMENTA = ("zero", "keep")
DATA_SUFFIXES = (".npz", ".h5", ".hdf5")

#: The bundled digits set (scikit-learn's 8x8 digits): inputs, classes, rows.
DIGITS_INPUTS, DIGITS_CLASSES, DIGITS_ROWS = 64, 10, 1797

#: Limits of the randomness contract (docs/architecture.md): steps < 2^48, replicas < 2^32.
MAX_STEPS = 2**48
MAX_REPLICAS = 2**32
MAX_SEED = 2**64

#: Which schedules each integrator uses (TOML names; ``lambda`` is ``DynamicsConfig.lam``).
INTEGRATOR_SCHEDULES = {
    "overdamped": ("eta", "T", "lambda"),
    "underdamped": ("dt", "gamma", "T", "lambda"),
    "heavy_ball": ("eta", "beta", "T", "lambda"),
}
SCHEDULE_NAMES = ("eta", "T", "dt", "gamma", "beta", "lambda")
SCHEDULE_DEFAULTS = {"eta": 1e-3, "T": 0.0, "dt": 1e-2, "gamma": 1.0, "beta": 0.9, "lambda": 0.0}

#: Shape keys of each architecture (everything else in [network] applies to all of them).
SHAPE_KEYS = ("widths", "width", "depth", "k", "tied")
ARCH_SHAPE_KEYS = {
    "dense": ("widths",),
    "local": ("width", "depth", "k", "tied"),
    "sft1": ("width",),
    "sft2": ("width",),
}
DEFAULT_WIDTHS = (8, 32, 32, 1)

#: The TOML schema: section -> known keys. Sub-tables are listed in ``_SUBTABLES``.
NETWORK_KEYS = (
    "architecture", "widths", "width", "depth", "k", "tied", "activation", "activation_params",
    "output_activation", "output_activation_params", "bias", "sigma_w2", "sigma_b2",
)
SCHEMA: dict[str, tuple[str, ...]] = {
    "network": NETWORK_KEYS,
    "data": ("source", "n_train", "online", "n_probe", "batch", "loss", "reduction",
             "label_noise", "path", "teacher"),
    "dynamics": ("integrator",) + SCHEDULE_NAMES + ("divergence_bound",),
    "ensemble": ("replicas", "seed", "steps", "dtype", "threads", "checkpoint_every", "chunk"),
    "recording": ("every", "train_loss", "norms", "snapshot_every", "probe_z_every",
                  "probe_z_dtype", "bbd"),
    "init": ("from", "at", "momenta", "replica"),
}
SCHEDULE_TABLE_KEYS = ("kind", "unit", "value", "start", "end", "begin", "until", "at", "values")
_PARAM_KEYS = ("p", "q", "r")


# --------------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------------

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
# Loading
# --------------------------------------------------------------------------------------------

def load_config(
    source: str | os.PathLike | Mapping,
    overrides: Sequence[str] = (),
    *,
    replicas: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
) -> Config:
    """Load, override and validate a configuration.

    source: a path to a TOML file, or a dict of the same shape (None values count as absent).
    overrides: ``"section.key=value"`` strings (``--set``), applied in order; nested keys such as
    ``data.teacher.sigma_w2=2.0`` or ``dynamics.eta.end=1e-4`` work. The value is read as a TOML
    value, or as a bare string when it is not one (``network.activation=relu``).
    replicas, steps, seed, threads: shortcuts for ``ensemble.<key>=value``, applied after the
    overrides (None = not given); they are appended to ``Config.overrides``.

    Relative paths (``data.path``, ``init.from``) are relative to the directory of the TOML
    file, or to the working directory for a dict source and for values given by an override.
    """
    if isinstance(source, Mapping):
        raw = _plain(source, "")
        text = None  # dumped after validation, which names the key of a bad value
        base_dir = os.getcwd()
    elif isinstance(source, (str, os.PathLike)):
        text, raw = read_toml(os.fspath(source), "config", ConfigError)
        base_dir = os.path.dirname(os.path.abspath(os.fspath(source)))
    else:
        raise ConfigError(f"<source>: expected a TOML file path or a dict, got {type(source).__name__}")

    if isinstance(overrides, str):
        raise TypeError("overrides must be a sequence of 'section.key=value' strings, not one string")
    applied = list(overrides)
    for name, value in (("replicas", replicas), ("steps", steps), ("seed", seed),
                        ("threads", threads)):
        if value is not None:
            applied.append(f"ensemble.{name}={_show(value)}")

    original, raw = raw, copy.deepcopy(raw)
    overridden: set[str] = set()
    for item in applied:
        overridden.add(_apply_override(raw, item))

    def base_for(key: str) -> str:
        return os.getcwd() if key in overridden else base_dir

    cfg = _build(raw, base_for)
    if text is None:
        try:
            text = tomli_w.dumps(original)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"<dict>: not representable as TOML: {exc}") from None
    return dataclasses.replace(cfg, text=text, overrides=tuple(applied))


def _plain(obj: Any, key: str) -> Any:
    """A dict source made TOML-shaped: None dropped, paths as str, tuples as lists, numbers plain."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ConfigError(f"{_join(key, repr(k))}: keys must be strings")
            if v is not None:
                out[k] = _plain(v, _join(key, k))
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v, key) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (bool, str, int, float)):
        return obj
    if isinstance(obj, numbers.Integral) and not _is_boolish(obj):
        return int(obj)
    if isinstance(obj, numbers.Real) and not _is_boolish(obj):
        return float(obj)
    return obj  # left for the validator to reject with the key's message


def _is_boolish(obj: Any) -> bool:
    return type(obj).__name__ in ("bool", "bool_")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _override_target(path: list[str]) -> bool:
    """Whether a dotted path names a key of the schema."""
    section, rest = path[0], path[1:]
    if section not in SCHEMA or not rest or rest[0] not in SCHEMA[section]:
        return False
    key, rest = rest[0], rest[1:]
    if section == "data" and key == "teacher":
        if not rest:
            return True
        return rest[0] in NETWORK_KEYS and _network_subkey_ok(rest[0], rest[1:])
    if section == "network":
        return _network_subkey_ok(key, rest)
    if section == "dynamics" and key in SCHEDULE_NAMES:
        return len(rest) == 0 or (len(rest) == 1 and rest[0] in SCHEDULE_TABLE_KEYS)
    return not rest


def _network_subkey_ok(key: str, rest: list[str]) -> bool:
    if key in ("activation_params", "output_activation_params"):
        return len(rest) == 0 or (len(rest) == 1 and rest[0] in _PARAM_KEYS)
    return not rest


def _apply_override(raw: dict, item: str) -> str:
    """Apply one ``section.key=value`` to the raw tree; return the dotted key."""
    if not isinstance(item, str):
        raise ConfigError(f"--set {item!r}: expected a string section.key=value")
    dotted, sep, text = item.partition("=")
    dotted, text = dotted.strip(), text.strip()
    if not sep or not dotted:
        raise ConfigError(f"--set {item}: expected section.key=value")
    path = [part.strip() for part in dotted.split(".")]
    if len(path) < 2:
        raise ConfigError(f"--set {dotted}: expected section.key=value")
    if not _override_target(path):
        raise ConfigError(f"--set {dotted}: no such key")
    try:
        value = tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        value = text
    table = raw
    for depth, part in enumerate(path[:-1]):
        sub = table.setdefault(part, {})
        if not isinstance(sub, dict):
            here = ".".join(path[: depth + 1])
            raise ConfigError(f"--set {dotted}: {here} is {_show(sub)}, not a table")
        table = sub
    table[path[-1]] = value
    return dotted


# --------------------------------------------------------------------------------------------
# Typed readers: each raises ConfigError("<key>: expected ..., got <value>")
# --------------------------------------------------------------------------------------------

def _show(v: Any) -> str:
    """A value as TOML would spell it, for error messages."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (int, float)):
        return repr(v)
    return f"{v!r} ({type(v).__name__})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(key: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (never a bool) with lo <= v < hi."""
    ok = _is_int(v) and (lo is None or v >= lo) and (hi is None or v < hi)
    if not ok:
        if lo is not None and hi is not None:
            want = f"an integer in [{lo}, {hi})"
        elif lo is not None:
            want = {0: "a non-negative integer", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")
        else:
            want = "an integer"
        raise ConfigError(f"{key}: expected {want}, got {_show(v)}")
    return int(v)


def _float(key: str, v: Any, *, gt: float | None = None, ge: float | None = None,
           allow_inf: bool = False) -> float:
    """A real number (an int is accepted, a bool is not), finite unless allow_inf."""
    ok = _is_number(v) and not math.isnan(v) and (allow_inf or not math.isinf(v))
    ok = ok and (gt is None or v > gt) and (ge is None or v >= ge)
    if not ok:
        want = "a finite number" if not allow_inf else "a number"
        if gt is not None:
            want = "a positive number" if gt == 0 else f"a number > {gt!r}"
        elif ge is not None:
            want = "a non-negative number" if ge == 0 else f"a number >= {ge!r}"
        raise ConfigError(f"{key}: expected {want}, got {_show(v)}")
    return float(v)


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{key}: expected true or false, got {_show(v)}")
    return v


def _choice(key: str, v: Any, choices: Sequence[str]) -> str:
    if not isinstance(v, str) or v not in choices:
        options = ", ".join(json.dumps(c) for c in choices)
        raise ConfigError(f"{key}: expected one of {options}, got {_show(v)}")
    return v


def _table(key: str, v: Any) -> dict:
    if not isinstance(v, Mapping):
        raise ConfigError(f"{key}: expected a table, got {_show(v)}")
    return dict(v)


def _known(prefix: str, t: Mapping, known: Sequence[str], what: str = "key") -> None:
    for k in t:
        if k not in known:
            raise ConfigError(f"{_join(prefix, str(k))}: unknown {what} (known: {', '.join(known)})")


def _path(key: str, v: Any, base_dir: str) -> str:
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{key}: expected a file path (a string), got {_show(v)}")
    path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(v)))
    if not os.path.exists(path):
        raise ConfigError(f"{key}: no such file: {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: not a file: {path}")
    return path


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------

def _build(raw: dict, base_for) -> Config:
    _known("", raw, tuple(SCHEMA), what="section")
    t = {name: _table(name, raw.get(name, {})) for name in SCHEMA}
    for name in SCHEMA:
        _known(name, t[name], SCHEMA[name])

    network = _network("network", t["network"])
    data = _data(t["data"], network, t["network"], base_for)
    dynamics = _dynamics(t["dynamics"])
    ensemble = _ensemble(t["ensemble"])
    recording = _recording(t["recording"])
    if recording.bbd and not network.bias:
        raise ConfigError("recording.bbd: the bulk-boundary decomposition changes variables "
                          "b -> z (BBD Eq. 6) and needs biases, but network.bias = false")
    init = _init(t["init"], dynamics, base_for)
    return Config(network, data, dynamics, ensemble, recording, init)


def _network(prefix: str, t: dict) -> NetworkConfig:
    """[network] (or the merged [data.teacher] table, with prefix "data.teacher")."""
    def key(k: str) -> str:
        return f"{prefix}.{k}"

    arch = _choice(key("architecture"), t.get("architecture", "dense"), ARCHITECTURES)
    allowed = ARCH_SHAPE_KEYS[arch]
    for k in SHAPE_KEYS:
        if k in t and k not in allowed:
            if arch == "dense":
                hint = "dense takes widths = [N_0, ..., N_M]"
            elif arch == "local":
                hint = "local takes width, depth, k, tied"
            else:
                hint = f"{arch} takes width only"
            raise ConfigError(f"{key(k)}: not used by architecture {json.dumps(arch)} ({hint})")

    k_local, tied = 1, False
    if arch == "dense":
        widths = t.get("widths", DEFAULT_WIDTHS)
        if not (isinstance(widths, (list, tuple)) and len(widths) >= 2
                and all(_is_int(n) and n >= 1 for n in widths)):
            raise ConfigError(f"{key('widths')}: expected a list of at least 2 positive integers, "
                              f"got {_show(widths)}")
        widths = tuple(int(n) for n in widths)
    elif arch == "local":
        for k in ("width", "depth"):
            if k not in t:
                raise ConfigError(f"{key(k)}: required for architecture \"local\"")
        width = _int(key("width"), t["width"], lo=1)
        depth = _int(key("depth"), t["depth"], lo=1)
        k_local = _int(key("k"), t.get("k", 1), lo=0)
        if 2 * k_local + 1 > width:
            raise ConfigError(f"{key('k')}: fan-in 2k+1 = {2 * k_local + 1} exceeds "
                              f"{key('width')} = {width}")
        tied = _bool(key("tied"), t.get("tied", False))
        widths = (width,) * (depth + 1)
    else:
        if "width" not in t:
            raise ConfigError(f"{key('width')}: required for architecture {json.dumps(arch)}")
        width = _int(key("width"), t["width"], lo=2)
        widths = (width,) * (2 if arch == "sft1" else 3)

    if arch == "sft1":
        for k in ("activation", "activation_params"):
            if k in t:
                raise ConfigError(f"{key(k)}: sft1 has no hidden layer; its sigma (SFT Eq. 13) "
                                  f"is {key('output_activation')}")
        activation = ActivationSpec("tanh")  # unused: no hidden layer
    else:
        default = ActivationSpec("quadratic", 1.0, 1.0, 1.0) if arch == "sft2" else ActivationSpec("tanh")
        activation = _activation(prefix, t, "activation", default)
    out_default = ActivationSpec("linear", 1.0, 0.0) if arch == "sft1" else ActivationSpec("identity")
    output_activation = _activation(prefix, t, "output_activation", out_default)

    bias = _bool(key("bias"), t.get("bias", arch in ("dense", "local")))
    sigma_w2 = _float(key("sigma_w2"), t.get("sigma_w2", 1.0), gt=0)
    sigma_b2 = _float(key("sigma_b2"), t.get("sigma_b2", 0.0), ge=0)
    if not bias and sigma_b2 > 0:
        raise ConfigError(f"{key('sigma_b2')}: {sigma_b2!r} given but {key('bias')} = false")
    return NetworkConfig(arch, widths, k_local, tied, activation, output_activation, bias,
                         sigma_w2, sigma_b2)


def _activation(prefix: str, t: dict, name_key: str, default: ActivationSpec) -> ActivationSpec:
    """``activation`` + ``activation_params`` (or the output pair) -> ActivationSpec.

    Without the name key the architecture's default (with its coefficients) is the base;
    with it, ActivationSpec's defaults (p = 1, q = r = 0). The params table updates the base.
    """
    key = f"{prefix}.{name_key}"
    pkey = f"{key}_params"
    if name_key in t:
        spec = ActivationSpec(_choice(key, t[name_key], ACTIVATIONS))
    else:
        spec = default
    if f"{name_key}_params" not in t:
        return spec
    params = _table(pkey, t[f"{name_key}_params"])
    if spec.name not in ACTIVATION_PARAMS:
        raise ConfigError(f"{pkey}: only for linear or quadratic activations, "
                          f"{key} is {json.dumps(spec.name)}")
    names = ACTIVATION_PARAMS[spec.name]
    for k in params:
        if k not in names:
            raise ConfigError(f"{pkey}.{k}: unknown key for {spec.name} (known: {', '.join(names)})")
    spec = dataclasses.replace(spec, **{k: _float(f"{pkey}.{k}", v) for k, v in params.items()})
    if spec.name == "linear" and spec.p == 0:
        raise ConfigError(f"{pkey}.p: a linear activation needs p != 0 (p = 0 is a constant)")
    if spec.name == "quadratic" and spec.p == 0 and spec.q == 0:
        raise ConfigError(f"{pkey}: a quadratic activation needs p or q != 0 (else a constant)")
    return spec


def _teacher_table(student: dict, student_arch: str, teacher: dict) -> dict:
    """The student's [network] table updated by [data.teacher].

    A teacher of another architecture inherits nothing (shape keys do not carry over); a
    teacher that names an activation does not inherit the student's coefficients for it; a
    teacher with ``bias = false`` does not inherit ``sigma_b2``.
    """
    if "architecture" in teacher and teacher["architecture"] != student_arch:
        return dict(teacher)
    merged = dict(student)
    for name in ("activation", "output_activation"):
        if name in teacher:
            merged.pop(f"{name}_params", None)
    if teacher.get("bias") is False and "sigma_b2" not in teacher:
        merged.pop("sigma_b2", None)
    merged.update(teacher)
    return merged


def _data(t: dict, net: NetworkConfig, raw_network: dict, base_for) -> DataConfig:
    source = _choice("data.source", t.get("source", "teacher"), SOURCES)
    teacher_src = source == "teacher"
    online = _bool("data.online", t.get("online", False))
    if online and not teacher_src:
        raise ConfigError(f"data.online: only with data.source = \"teacher\", got {json.dumps(source)}")

    if online:
        if "n_train" in t:
            raise ConfigError("data.n_train: not used with data.online = true "
                              "(fresh samples every step)")
        n_train = None
    elif teacher_src:
        n_train = _int("data.n_train", t.get("n_train", 256), lo=1)
    else:
        n_train = _int("data.n_train", t["n_train"], lo=1) if "n_train" in t else None

    n_probe = _int("data.n_probe", t.get("n_probe", 64), lo=1)

    batch_raw = t.get("batch", 8)
    if batch_raw == "full":
        if online:
            raise ConfigError("data.batch: \"full\" needs a finite training set, "
                              "not data.online = true")
        batch = None
    elif _is_int(batch_raw) and batch_raw >= 1:
        batch = int(batch_raw)
    else:
        raise ConfigError(f"data.batch: expected a positive integer or \"full\", got {_show(batch_raw)}")

    loss = _choice("data.loss", t.get("loss", "mse"), LOSSES)
    reduction = _choice("data.reduction", t.get("reduction", "mean"), REDUCTIONS)
    n_out = net.widths[-1]
    if loss == "hinge" and n_out != 1:
        raise ConfigError(f"data.loss: hinge needs a scalar output (last width 1), got {n_out}")
    if loss in ("cross_entropy", "kl") and n_out < 2:
        raise ConfigError(f"data.loss: {loss} needs an output of width >= 2 "
                          f"(softmax over the outputs), got {n_out}")

    label_noise = _float("data.label_noise", t.get("label_noise", 0.0), ge=0)
    if label_noise > 0 and not teacher_src:
        raise ConfigError(f"data.label_noise: only with data.source = \"teacher\", "
                          f"got {json.dumps(source)}")

    if source == "file":
        if "path" not in t:
            raise ConfigError("data.path: required for data.source = \"file\"")
        path = _path("data.path", t["path"], base_for("data.path"))
        if not path.lower().endswith(DATA_SUFFIXES):
            raise ConfigError(f"data.path: expected a .npz, .h5 or .hdf5 file, got {path}")
    elif "path" in t:
        raise ConfigError(f"data.path: only with data.source = \"file\", got {json.dumps(source)}")
    else:
        path = None

    if source == "digits":
        # targets: one-hot over the 10 classes, or +1 even / -1 odd digit for hinge
        want = 1 if loss == "hinge" else DIGITS_CLASSES
        if net.widths[0] != DIGITS_INPUTS or n_out != want:
            raise ConfigError(f"data.source: \"digits\" with the {loss} loss needs "
                              f"{DIGITS_INPUTS} inputs and {want} output(s), the network maps "
                              f"{net.widths[0]} -> {n_out}")
        used = (n_train or 0) + n_probe
        if used > DIGITS_ROWS or (n_train is None and n_probe >= DIGITS_ROWS):
            raise ConfigError(f"data.n_train: n_train + n_probe = {used} exceeds the "
                              f"{DIGITS_ROWS} digits")

    teacher = None
    if teacher_src:
        extra = _table("data.teacher", t.get("teacher", {}))
        _known("data.teacher", extra, NETWORK_KEYS)
        merged = _teacher_table(raw_network, net.architecture, extra)
        teacher = _network("data.teacher", merged)
        for end, name in ((0, "input"), (-1, "output")):
            if teacher.widths[end] != net.widths[end]:
                k = "widths" if teacher.architecture == "dense" else "width"
                raise ConfigError(f"data.teacher.{k}: teacher {name} width {teacher.widths[end]} "
                                  f"must equal the student's {net.widths[end]}")
    elif "teacher" in t:
        raise ConfigError(f"data.teacher: only with data.source = \"teacher\", got {json.dumps(source)}")

    return DataConfig(source, n_train, online, n_probe, batch, loss, reduction, label_noise,
                      path, teacher)


def parse_schedule(key: str, value: Any) -> Schedule:
    """A schedule from its TOML form: a number (constant) or a table with ``kind``.

    {kind = "constant", value = v}
    {kind = "linear" | "exponential", start, end, until, begin = 0, unit = "steps"}
    {kind = "piecewise", at = [x1, ...], values = [v0, v1, ...], unit = "steps"}
    Range checks that depend on the quantity (eta > 0, ...) are made by the caller on nodes().
    """
    if _is_number(value):
        return Schedule("constant", values=(_float(key, value),))
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a number or a schedule table "
                          f"{{kind = ..., ...}}, got {_show(value)}")
    t = dict(value)
    _known(key, t, SCHEDULE_TABLE_KEYS)
    if "kind" not in t:
        raise ConfigError(f"{key}.kind: required (one of {', '.join(SCHEDULE_KINDS)})")
    kind = _choice(f"{key}.kind", t["kind"], SCHEDULE_KINDS)
    unit = _choice(f"{key}.unit", t.get("unit", "steps"), SCHEDULE_UNITS)
    fields = {"constant": ("value",), "linear": ("start", "end", "begin", "until"),
              "exponential": ("start", "end", "begin", "until"), "piecewise": ("at", "values")}[kind]
    for k in t:
        if k not in ("kind", "unit") + fields:
            raise ConfigError(f"{key}.{k}: not used by kind = {json.dumps(kind)} "
                              f"(it takes {', '.join(fields)}, unit)")
    for k in fields:
        if k not in t and k != "begin":
            raise ConfigError(f"{key}.{k}: required for kind = {json.dumps(kind)}")

    if kind == "constant":
        return Schedule("constant", values=(_float(f"{key}.value", t["value"]),))
    if kind == "piecewise":
        at, values = t["at"], t["values"]
        if not isinstance(at, (list, tuple)) or not at:
            raise ConfigError(f"{key}.at: expected a non-empty list of numbers, got {_show(at)}")
        at = tuple(_float(f"{key}.at", x, ge=0) for x in at)
        if any(b <= a for a, b in zip(at, at[1:])):
            raise ConfigError(f"{key}.at: must be strictly increasing, got {_show(list(at))}")
        if not isinstance(values, (list, tuple)) or len(values) != len(at) + 1:
            raise ConfigError(f"{key}.values: expected len(at) + 1 = {len(at) + 1} numbers, "
                              f"got {_show(values)}")
        values = tuple(_float(f"{key}.values", x) for x in values)
        return Schedule("piecewise", unit=unit, at=at, values=values)

    start = _float(f"{key}.start", t["start"])
    end = _float(f"{key}.end", t["end"])
    begin = _float(f"{key}.begin", t.get("begin", 0.0), ge=0)
    until = _float(f"{key}.until", t["until"])
    if until <= begin:
        raise ConfigError(f"{key}.until: must exceed begin = {begin!r}, got {until!r}")
    if kind == "exponential" and (start <= 0 or end <= 0):
        raise ConfigError(f"{key}: exponential needs start > 0 and end > 0, "
                          f"got start = {start!r}, end = {end!r}")
    return Schedule(kind, unit=unit, start=start, end=end, begin=begin, until=until)


#: Allowed range of each schedule at every node: (lower bound, inclusive?, upper bound or None).
_SCHEDULE_RANGES = {
    "eta": (0.0, False, None), "dt": (0.0, False, None), "T": (0.0, True, None),
    "gamma": (0.0, True, None), "beta": (0.0, True, 1.0), "lambda": (0.0, True, None),
}


def _dynamics(t: dict) -> DynamicsConfig:
    integrator = _choice("dynamics.integrator", t.get("integrator", "overdamped"), INTEGRATORS)
    used = INTEGRATOR_SCHEDULES[integrator]
    for name in SCHEDULE_NAMES:
        if name in t and name not in used:
            raise ConfigError(f"dynamics.{name}: not used by the {integrator} integrator "
                              f"(it uses {', '.join(used)})")
    sched = {}
    for name in SCHEDULE_NAMES:
        key = f"dynamics.{name}"
        s = parse_schedule(key, t.get(name, SCHEDULE_DEFAULTS[name]))
        lo, inclusive, hi = _SCHEDULE_RANGES[name]
        for v in s.nodes():
            bad = (v < lo) if inclusive else (v <= lo)
            if bad or (hi is not None and v >= hi):
                want = (f">= {lo!r}" if inclusive else f"> {lo!r}") + (f" and < {hi!r}" if hi else "")
                raise ConfigError(f"{key}: must be {want} at every node, got {v!r}")
        sched[name] = s
    bound = _float("dynamics.divergence_bound", t.get("divergence_bound", 1e8), gt=0,
                   allow_inf=True)
    return DynamicsConfig(integrator, sched["eta"], sched["T"], sched["dt"], sched["gamma"],
                          sched["beta"], sched["lambda"], bound)


def _ensemble(t: dict) -> EnsembleConfig:
    return EnsembleConfig(
        replicas=_int("ensemble.replicas", t.get("replicas", 16), lo=1, hi=MAX_REPLICAS),
        seed=_int("ensemble.seed", t.get("seed", 0), lo=0, hi=MAX_SEED),
        steps=_int("ensemble.steps", t.get("steps", 1000), lo=0, hi=MAX_STEPS),
        dtype=_choice("ensemble.dtype", t.get("dtype", "float64"), DTYPES),
        threads=_int("ensemble.threads", t.get("threads", 0), lo=0),
        checkpoint_every=_float("ensemble.checkpoint_every", t.get("checkpoint_every", 300.0),
                                gt=0, allow_inf=True),
        chunk=_int("ensemble.chunk", t.get("chunk", 0), lo=0),
    )


def _recording(t: dict) -> RecordingConfig:
    every = _int("recording.every", t.get("every", 10), lo=1)
    cadences = {}
    for name in ("snapshot_every", "probe_z_every"):
        n = _int(f"recording.{name}", t.get(name, 0), lo=0)
        if n % every:
            raise ConfigError(f"recording.{name}: must be a multiple of recording.every = "
                              f"{every} (0 = off), got {n}")
        cadences[name] = n
    return RecordingConfig(
        every=every,
        train_loss=_bool("recording.train_loss", t.get("train_loss", True)),
        norms=_bool("recording.norms", t.get("norms", True)),
        snapshot_every=cadences["snapshot_every"],
        probe_z_every=cadences["probe_z_every"],
        probe_z_dtype=_choice("recording.probe_z_dtype", t.get("probe_z_dtype", "float32"), DTYPES),
        bbd=_bool("recording.bbd", t.get("bbd", False)),
    )


def _init(t: dict, dynamics: DynamicsConfig, base_for) -> InitConfig:
    if "from" not in t:
        for k in ("at", "momenta", "replica"):
            if k in t:
                raise ConfigError(f"init.{k}: only with init.from (a fresh initialisation has "
                                  f"no state to pick)")
        return InitConfig(None, "final", "zero")
    file = _path("init.from", t["from"], base_for("init.from"))
    at = t.get("at", "final")
    if at != "final" and not _is_int(at):
        raise ConfigError(f"init.at: expected \"final\" or a snapshot index (an integer), got {_show(at)}")
    momenta = _choice("init.momenta", t.get("momenta", "zero"), MOMENTA)
    if momenta == "keep":
        if at != "final":
            raise ConfigError(f"init.momenta: \"keep\" needs init.at = \"final\" "
                              f"(snapshots hold no momenta), got init.at = {_show(at)}")
        if dynamics.integrator == "overdamped":
            raise ConfigError("init.momenta: \"keep\" needs an integrator with momenta "
                              "(underdamped or heavy_ball), got overdamped")
    replica = None
    if "replica" in t:
        replica = _int("init.replica", t["replica"], lo=0)
    return InitConfig(file, at, momenta, replica)


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
