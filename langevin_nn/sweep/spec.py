"""The sweep file and its points: parse, validate and expand a TOML sweep file.

    sw = load_sweep("runs/sweep_order_to_chaos.toml")      # parse, validate every point
    sw.points[0].name, sw.points[0].values, sw.points[0].config.hash

The sweep file (docs/sweeps.md)::

    [sweep]
    name = "order_to_chaos"               # default: the file's stem
    base = "otc_base.toml"                # a config file (relative to this file) or a built-in
                                          # example; or an inline [base] table; or neither (defaults)
    set = ["ensemble.steps=0"]            # --set strings applied to the base
    seeds = [1, 2, 3]                     # or {count = 3, start = 1}: ensemble.seed as an axis
    independent_seeds = true              # seed += a hash of the point's other varied values
    shards = 1                            # SLURM: array tasks per point (point x shard)

    [axes]                                # a grid: every combination, the first axis slowest
    network.sigma_w2 = [1.0, 1.3, 1.5]    # a list of values ...
    dynamics.T = {start = 0.0, stop = 0.1, num = 5}          # ... or a range (linspace),
    dynamics.eta = {start = 1e-3, stop = 1e-1, num = 3, log = true}   # (geomspace),
    ensemble.replicas = {start = 8, stop = 32, step = 8}     # (arange, stop included)

    [[zip]]                               # keys varied together: one dimension of the grid
    network.width = [16, 32, 64]
    ensemble.replicas = [64, 32, 16]

Every point is a complete configuration, ``load_config(base, set + its values)``, written as its
effective TOML to ``DIR/points/NAME/config.toml`` (reproducible on its own:
``langevin-nn run DIR/points/NAME/config.toml``) and run into ``DIR/points/NAME/ensemble.h5``.
NAME is the varied values and the short config hash: ``sigma_w2=1.3_seed=2_h3f9c0a1b``.

Every error is a one-line :class:`UserError` naming the sweep file and the key.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping, Sequence

from ..config.checks import _is_number, _show
from ..errors import ConfigError
from ..tomlfile import read_toml

SWEEP_KEYS = ("name", "base", "set", "seeds", "independent_seeds", "shards")
TOP_KEYS = ("sweep", "base", "axes", "zip")
RANGE_KEYS = ("start", "stop", "num", "step", "log")
MAX_SEED = 2**64
_SAFE = re.compile(r"[^A-Za-z0-9._+=-]")


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: one key, or several zipped keys varied together.

    keys: dotted config keys; values[i]: the tuple of values of ``keys`` at position i;
    origin: where it came from (``axes.network.sigma_w2``, ``zip[0]``, ``sweep.seeds``)."""

    keys: tuple[str, ...]
    values: tuple[tuple, ...]
    origin: str

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict:
        return {"keys": list(self.keys), "origin": self.origin,
                "values": [list(v) for v in self.values]}


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its position, name, varied values and complete configuration."""

    index: int
    name: str
    values: dict
    config: Any = field(repr=False)  # langevin_nn.config.Config

    @property
    def hash(self) -> str:
        return self.config.hash


@dataclass(frozen=True)
class Sweep:
    """A parsed and validated sweep file (see the module docstring)."""

    name: str
    path: str | None
    text: str
    base: str | None
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    shards: int = 1
    independent_seeds: bool = False
    overrides: tuple[str, ...] = ()  # --set strings (and --steps) applied to the base

    @property
    def keys(self) -> list[str]:
        """The varied config keys, in axis order."""
        return [k for a in self.axes for k in a.keys]

    @property
    def hash(self) -> str:
        """16 hex chars identifying the sweep: its points' names and config hashes, in order
        (ensemble.steps is not in a config hash, so a sweep extended to more steps keeps it)."""
        blob = json.dumps([[p.name, p.hash] for p in self.points], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _toml_inline(v: Any) -> str:
    """A value as inline TOML (what ``--set key=...`` parses back to the same value)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_inline(x) for x in v) + "]"
    if isinstance(v, Mapping):
        parts = []
        for k, x in v.items():
            key = k if re.fullmatch(r"[A-Za-z0-9_-]+", str(k)) else json.dumps(str(k))
            parts.append(f"{key} = {_toml_inline(x)}")
        return "{" + ", ".join(parts) + "}"
    raise ConfigError(f"{v!r}: not a TOML value")


def _round(x: float) -> float:
    """12 significant digits: 0.1 + 0.2 becomes 0.3 (names and configs stay readable)."""
    return float(f"{x:.12g}")


def _range(key: str, spec: dict) -> list:
    """Values of a range table: {start, stop, num[, log]} or {start, stop, step} (stop included)."""
    for k in spec:
        if k not in RANGE_KEYS:
            raise ConfigError(f"{key}.{k}: unknown key of a range (known: {', '.join(RANGE_KEYS)})")
    for k in ("start", "stop"):
        if k not in spec:
            raise ConfigError(f"{key}.{k}: required in a range {{start, stop, num}} or "
                              "{start, stop, step}")
        if not _is_number(spec[k]) or not math.isfinite(spec[k]):
            raise ConfigError(f"{key}.{k}: expected a finite number, got {_show(spec[k])}")
    start, stop = spec["start"], spec["stop"]
    if ("num" in spec) == ("step" in spec):
        raise ConfigError(f"{key}: a range needs exactly one of num and step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log: expected true or false, got {_show(log)}")
    if "num" in spec:
        num = spec["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            raise ConfigError(f"{key}.num: expected a non-negative integer, got {_show(num)}")
        if log:
            if start <= 0 or stop <= 0:
                raise ConfigError(f"{key}: log = true needs start > 0 and stop > 0, got "
                                  f"start = {start!r}, stop = {stop!r}")
            a, b = math.log(start), math.log(stop)
            vals = [math.exp(a + (b - a) * i / (num - 1)) if num > 1 else float(start)
                    for i in range(num)]
        else:
            vals = [start + (stop - start) * i / (num - 1) if num > 1 else float(start)
                    for i in range(num)]
        if num > 1:
            vals[-1] = float(stop)
        vals = [_round(v) for v in vals]
        if (not log and isinstance(start, int) and isinstance(stop, int)
                and all(v == int(v) for v in vals)):
            return [int(v) for v in vals]
        return vals
    if log:
        raise ConfigError(f"{key}.log: only with num (a geometric range)")
    step = spec["step"]
    if not _is_number(step) or step == 0 or not math.isfinite(step):
        raise ConfigError(f"{key}.step: expected a non-zero finite number, got {_show(step)}")
    if (stop - start) * step < 0:
        raise ConfigError(f"{key}.step: {step!r} goes away from stop = {stop!r}")
    n = int(math.floor((stop - start) / step * (1 + 1e-12) + 1e-9)) + 1
    if n > 1_000_000:
        raise ConfigError(f"{key}: {n} values; more than a million points")
    ints = all(isinstance(spec[k], int) for k in ("start", "stop", "step"))
    return [start + i * step if ints else _round(start + i * step) for i in range(n)]


def _axis_values(key: str, v: Any) -> list:
    if isinstance(v, list):
        return list(v)
    if isinstance(v, Mapping):
        return _range(key, dict(v))
    raise ConfigError(f"{key}: expected a list of values or a range {{start, stop, num}} / "
                      f"{{start, stop, step}}, got {_show(v)}")


def _is_range(v: Any) -> bool:
    return (isinstance(v, Mapping) and "start" in v
            and not any(isinstance(x, (Mapping, list)) for x in v.values()))


def _flatten_axes(prefix: str, table: Mapping, out: dict, where: str) -> None:
    """{"network": {"sigma_w2": [...]}} and {"network.sigma_w2": [...]} -> {"network.sigma_w2": [...]}."""
    for k, v in table.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, list) or _is_range(v):
            if key in out:
                raise ConfigError(f"{where}.{key}: given twice")
            out[key] = v
        elif isinstance(v, Mapping):
            _flatten_axes(key, v, out, where)
        else:
            raise ConfigError(f"{where}.{key}: expected a list of values or a range "
                              f"{{start, stop, num}} / {{start, stop, step}}, got {_show(v)}")


def _check_key(where: str, key: str) -> None:
    from ..config.keys import SCHEMA
    from ..config.load import _override_target

    path = [p.strip() for p in key.split(".")]
    if len(path) < 2 or not _override_target(path):
        section = path[0]
        if section in SCHEMA and len(path) >= 2:
            hint = f" (known in [{section}]: {', '.join(SCHEMA[section])})"
        else:
            hint = f" (sections: {', '.join(SCHEMA)})"
        raise ConfigError(f"{where}: no such config key {key!r}{hint}")


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """The last component of each key where it is unambiguous, else the whole dotted key."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, str):
        return _SAFE.sub("_", v)[:40] or "_"
    blob = json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
    return "h" + hashlib.sha256(blob.encode()).hexdigest()[:6]


def point_name(values: Mapping, config_hash: str) -> str:
    """``key=value_key=value_h<hash8>``: the varied values (short key names) and the config hash."""
    short = _short_names(list(values))
    label = "_".join(f"{short[k]}={_fmt_value(v)}" for k, v in values.items())
    label = _SAFE.sub("_", label)[:180]
    return f"{label}_h{config_hash[:8]}" if label else f"h{config_hash[:8]}"


def _derived_seed(seed: int, values: Mapping) -> int:
    blob = json.dumps({k: v for k, v in values.items() if k != "ensemble.seed"}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return (seed + int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "little")) % MAX_SEED


def _base_source(sweep_path: str | None, t: dict, raw: dict) -> tuple[Any, str | None]:
    """(source for load_config, description) of the base configuration."""
    here = os.path.dirname(os.path.abspath(sweep_path)) if sweep_path else os.getcwd()
    label = sweep_path or "<sweep>"
    if "base" in t and "base" in raw:
        raise ConfigError(f"{label}: sweep.base and a [base] table: give one of them")
    if "base" in t:
        b = t["base"]
        if not isinstance(b, str) or not b:
            raise ConfigError(f"{label}: sweep.base: expected a config file path, got {_show(b)}")
        path = os.path.join(here, os.path.expanduser(b))
        if os.path.isfile(path):
            return os.path.abspath(path), os.path.abspath(path)
        name = b[:-5] if b.endswith(".toml") else b
        ex = resources.files("langevin_nn") / "examples" / f"{name}.toml"
        if "/" not in b and ex.is_file():
            return str(ex), f"built-in example {name}"
        raise ConfigError(f"{label}: sweep.base: no such config file: {path}")
    if "base" in raw:
        if not isinstance(raw["base"], Mapping):
            raise ConfigError(f"{label}: base: expected a table of config sections, "
                              f"got {_show(raw['base'])}")
        base = json.loads(json.dumps(raw["base"]))  # a deep copy
        # relative paths of an inline base are relative to the sweep file
        for sec, key in (("data", "path"), ("init", "from")):
            v = base.get(sec, {}).get(key) if isinstance(base.get(sec), dict) else None
            if isinstance(v, str) and v and not os.path.isabs(os.path.expanduser(v)):
                base[sec][key] = os.path.join(here, v)
        return base, "inline [base]"
    return {}, None


def load_sweep(source, overrides: Sequence[str] = (), *, steps: int | None = None) -> Sweep:
    """Parse and validate a sweep file (a path or a dict of the same shape) and expand it into
    points. ``overrides`` (``--set`` strings) and ``steps`` apply to the base, before the axes.
    Every point's configuration is validated here; errors are one-line ``UserError``s."""
    if isinstance(source, Mapping):
        raw, text, path = json.loads(json.dumps(source)), None, None
        label = "<sweep>"
    else:
        path = os.fspath(source)
        label = path
        text, raw = read_toml(path, "sweep")
    try:
        return _build(raw, text, path, label, tuple(overrides), steps)
    except ConfigError as e:
        msg = str(e)
        if msg.startswith(label + ":"):
            raise
        raise ConfigError(f"{label}: {msg}") from None


def _build(raw, text, path, label, overrides, steps) -> Sweep:
    from ..config import load_config

    from ..config.keys import SCHEMA

    for k in raw:
        if k not in TOP_KEYS:
            hint = (f"; config sections go under [base.{k}]" if k in SCHEMA else "")
            raise ConfigError(f"{k}: unknown section (known: {', '.join(TOP_KEYS)}){hint}")
    t = raw.get("sweep", {})
    if not isinstance(t, Mapping):
        raise ConfigError(f"sweep: expected a table, got {_show(t)}")
    for k in t:
        if k not in SWEEP_KEYS:
            raise ConfigError(f"sweep.{k}: unknown key (known: {', '.join(SWEEP_KEYS)})")
    name = t.get("name")
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0] if path else "sweep"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"sweep.name: expected a non-empty string, got {_show(name)}")
    sets = t.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise ConfigError(f"sweep.set: expected a list of \"section.key=value\" strings, got {_show(sets)}")
    indep = t.get("independent_seeds", False)
    if not isinstance(indep, bool):
        raise ConfigError(f"sweep.independent_seeds: expected true or false, got {_show(indep)}")
    shards = t.get("shards", 1)
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ConfigError(f"sweep.shards: expected a positive integer, got {_show(shards)}")

    source, base_desc = _base_source(path, t, raw)
    base_sets = list(sets) + list(overrides)
    if steps is not None:
        base_sets.append(f"ensemble.steps={steps}")
    try:
        base_cfg = load_config(source, base_sets)
    except ConfigError as e:
        raise ConfigError(f"base ({base_desc or 'defaults'}): {e}") from None

    # the axes ------------------------------------------------------------------------------
    axes: list[Axis] = []
    flat: dict[str, Any] = {}
    a = raw.get("axes", {})
    if not isinstance(a, Mapping):
        raise ConfigError(f"axes: expected a table of key = [values], got {_show(a)}")
    _flatten_axes("", a, flat, "axes")
    seen: dict[str, str] = {}

    def claim(key: str, origin: str) -> None:
        _check_key(origin, key)
        if key in seen:
            raise ConfigError(f"{origin}: {key} is varied twice (also by {seen[key]})")
        set_keys = [s.partition("=")[0].strip() for s in sets]
        if key in set_keys:
            raise ConfigError(f"{origin}: {key} is also set by sweep.set")
        seen[key] = origin

    for key, v in flat.items():
        origin = f"axes.{key}"
        claim(key, origin)
        vals = _axis_values(origin, v)
        if not vals:
            raise ConfigError(f"{origin}: empty list (an empty grid: every axis needs a value)")
        axes.append(Axis((key,), tuple((x,) for x in vals), origin))
    zips = raw.get("zip", [])
    if isinstance(zips, Mapping):
        zips = [zips]
    if not isinstance(zips, list) or not all(isinstance(z, Mapping) for z in zips):
        raise ConfigError(f"zip: expected [[zip]] tables of key = [values], got {_show(zips)}")
    for i, z in enumerate(zips):
        where = f"zip[{i}]"
        zf: dict[str, Any] = {}
        _flatten_axes("", z, zf, where)
        if not zf:
            raise ConfigError(f"{where}: no keys (an empty grid)")
        cols = {}
        for key, v in zf.items():
            claim(key, f"{where}.{key}")
            cols[key] = _axis_values(f"{where}.{key}", v)
        lens = {k: len(v) for k, v in cols.items()}
        if len(set(lens.values())) > 1:
            desc = ", ".join(f"{k} has {n}" for k, n in lens.items())
            raise ConfigError(f"{where}: zipped axes of different lengths ({desc})")
        n = next(iter(lens.values()))
        if n == 0:
            raise ConfigError(f"{where}: empty lists (an empty grid: every axis needs a value)")
        axes.append(Axis(tuple(cols), tuple(tuple(cols[k][j] for k in cols) for j in range(n)),
                         where))
    if "seeds" in t:
        claim("ensemble.seed", "sweep.seeds")
        s = t["seeds"]
        if isinstance(s, Mapping):
            for k in s:
                if k not in ("count", "start"):
                    raise ConfigError(f"sweep.seeds.{k}: unknown key (known: count, start)")
            count, start = s.get("count"), s.get("start", 0)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ConfigError(f"sweep.seeds.count: expected a non-negative integer, got {_show(count)}")
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                raise ConfigError(f"sweep.seeds.start: expected a non-negative integer, got {_show(start)}")
            seeds = list(range(start, start + count))
        elif isinstance(s, list):
            seeds = s
        else:
            raise ConfigError(f"sweep.seeds: expected a list of integers or {{count, start}}, got {_show(s)}")
        for x in seeds:
            if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < MAX_SEED:
                raise ConfigError(f"sweep.seeds: expected integers in [0, 2^64), got {_show(x)}")
        if not seeds:
            raise ConfigError("sweep.seeds: no seeds (an empty grid)")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"sweep.seeds: repeated seeds in {_show(seeds)}")
        axes.append(Axis(("ensemble.seed",), tuple((x,) for x in seeds), "sweep.seeds"))
    if not axes:
        raise ConfigError("no axes ([axes], [[zip]] or sweep.seeds): nothing to sweep")
    n_points = math.prod(len(ax) for ax in axes)
    if n_points > 100_000:
        raise ConfigError(f"axes: {n_points} points; more than 100000 in one sweep")

    # the points ----------------------------------------------------------------------------
    points = []
    names = set()
    for combo in itertools.product(*[range(len(ax)) for ax in axes]):
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for ax, i in zip(axes, combo):
            for key, v in zip(ax.keys, ax.values[i]):
                values[key] = v
                origins[key] = ax.origin if len(ax.keys) == 1 else f"{ax.origin}.{key}"
        point_sets = [f"{k}={_toml_inline(v)}" for k, v in values.items()]
        if indep:
            seed = values.get("ensemble.seed", base_cfg.ensemble.seed)
            point_sets = [s for s in point_sets if not s.startswith("ensemble.seed=")]
            point_sets.append(f"ensemble.seed={_derived_seed(int(seed), values)}")
        try:
            cfg = load_config(source, base_sets + point_sets)
        except ConfigError as e:
            msg = str(e)
            culprit = next((k for k in values if msg.startswith(k + ":") or msg.startswith(k + ".")
                            or msg.startswith(f"--set {k}")), None)
            if culprit is not None:
                raise ConfigError(f"{origins[culprit]} = {_show(values[culprit])}: {msg}") from None
            desc = ", ".join(f"{k} = {_show(v)}" for k, v in values.items())
            raise ConfigError(f"point ({desc}): {msg}") from None
        pname = point_name(values, cfg.hash)
        if pname in names:
            raise ConfigError(f"two points with the same configuration ({pname}): repeated "
                              "values on an axis?")
        names.add(pname)
        points.append(Point(len(points), pname, values, cfg))
    extra = tuple(overrides) + ((f"ensemble.steps={steps}",) if steps is not None else ())
    return Sweep(name, os.path.abspath(path) if path else None,
                 text if text is not None else _toml_dump(raw), base_desc, tuple(axes),
                 tuple(points), shards, indep, extra)


def _toml_dump(raw: dict) -> str:
    import tomli_w

    return tomli_w.dumps(raw)
