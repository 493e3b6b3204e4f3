"""Parameter sweeps: a TOML sweep file -> fully specified point configs -> runs -> an index.

    sw = load_sweep("runs/sweep_order_to_chaos.toml")      # parse, validate every point
    sw.points[0].name, sw.points[0].values, sw.points[0].config.hash
    run_sweep(sw, "out/otc", jobs=2)                        # skip complete, resume partial
    idx = SweepIndex.load("out/otc")                        # the index: points, values, files, status
    submit_sweep(sw, "out/otc", time="1:00:00")             # SLURM: one array + a collect job

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
The index ``DIR/sweep.json`` lists every point, its varied values, config hash, files and
status (pending, partial, complete, failed, foreign, corrupt).

Every error is a one-line :class:`UserError` naming the sweep file and the key; nothing is
written before the whole sweep (every point's config) has been validated and the folder checked.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Mapping, Sequence

from .errors import EXIT_OK, EXIT_SIGNAL, EXIT_USAGE, ConfigError, UserError

__all__ = [
    "Axis", "Point", "Sweep", "SweepIndex", "SweepRunResult", "SweepSubmission", "load_sweep",
    "prepare", "run_sweep", "submit_sweep", "collect", "refresh", "INDEX", "STATUSES",
]

INDEX = "sweep.json"
FORMAT = "langevin_nn-sweep"
FORMAT_VERSION = 1
POINTS_DIR = "points"
SLURM_DIR = "slurm"
#: point statuses (``SweepIndex``): no file; a file short of its steps (or with no checkpoint);
#: done; the last attempt raised an error; a file made by another config; an unreadable file;
#: being run by a local runner; in a SLURM array not yet collected.
STATUSES = ("pending", "partial", "complete", "failed", "foreign", "corrupt", "running",
            "submitted")

SWEEP_KEYS = ("name", "base", "set", "seeds", "independent_seeds", "shards")
TOP_KEYS = ("sweep", "base", "axes", "zip")
RANGE_KEYS = ("start", "stop", "num", "step", "log")
MAX_SEED = 2**64
_SAFE = re.compile(r"[^A-Za-z0-9._+=-]")


# --------------------------------------------------------------------------------------------
# The sweep: axes and points
# --------------------------------------------------------------------------------------------

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


def _show(v: Any) -> str:
    from .config import _show as show

    return show(v)


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


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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
    from .config import SCHEMA, _override_target

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
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise UserError(f"{path}: no such sweep file") from None
        except IsADirectoryError:
            raise UserError(f"{path}: is a directory, not a sweep file") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read sweep file: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
            raw = tomllib.loads(text)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    try:
        return _build(raw, text, path, label, tuple(overrides), steps)
    except ConfigError as e:
        msg = str(e)
        if msg.startswith(label + ":"):
            raise
        raise ConfigError(f"{label}: {msg}") from None


def _build(raw, text, path, label, overrides, steps) -> Sweep:
    from .config import load_config

    from .config import SCHEMA

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


# --------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


class SweepIndex:
    """``DIR/sweep.json``: the sweep's identity, axes and one entry per point.

    ``points``: dicts with index, name, values (dotted key -> value), config_hash, config and
    file (paths relative to DIR), steps, replicas, shards, status, steps_done, diverged, error.
    ``path_of(point, "file")`` gives an absolute path. Iterate with ``index.complete()``."""

    def __init__(self, outdir: str, data: dict):
        self.dir = os.path.abspath(outdir)
        self.data = data

    @classmethod
    def load(cls, outdir) -> "SweepIndex":
        outdir = os.fspath(outdir)
        if os.path.isfile(outdir) and os.path.basename(outdir) == INDEX:
            outdir = os.path.dirname(outdir) or "."
        p = os.path.join(outdir, INDEX)
        if not os.path.isdir(outdir):
            raise UserError(f"{outdir}: no such sweep directory")
        if not os.path.exists(p):
            raise UserError(f"{outdir}: not a sweep directory (no {INDEX})")
        try:
            with open(p) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"{p}: not a readable sweep index ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{p}: not a langevin_nn sweep index (format {data.get('format')!r})"
                            if isinstance(data, dict) else f"{p}: not a langevin_nn sweep index")
        return cls(outdir, data)

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    @property
    def hash(self) -> str:
        return self.data.get("sweep_hash", "")

    @property
    def keys(self) -> list[str]:
        return list(self.data.get("keys", []))

    @property
    def points(self) -> list[dict]:
        return self.data["points"]

    def path_of(self, point: dict, what: str = "file") -> str:
        return os.path.join(self.dir, point[what])

    def point_dir(self, point: dict) -> str:
        return os.path.join(self.dir, POINTS_DIR, point["name"])

    def complete(self) -> list[dict]:
        return [p for p in self.points if p.get("status") == "complete"]

    def by_name(self, name: str) -> dict:
        for p in self.points:
            if p["name"] == name:
                return p
        raise UserError(f"{self.dir}: no point named {name}")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.points:
            out[p.get("status", "pending")] = out.get(p.get("status", "pending"), 0) + 1
        return out

    def save(self) -> None:
        self.data["updated"] = _now()
        _write_json(os.path.join(self.dir, INDEX), self.data)


def file_status(path: str, config_hash: str, steps: int) -> dict:
    """Status of an ensemble file against its point: status, steps_done, diverged, error."""
    from .store import open_ensemble

    if not os.path.exists(path):
        return {"status": "pending", "steps_done": None, "diverged": None}
    try:
        with open_ensemble(path) as ens:
            if ens.config_hash != config_hash:
                return {"status": "foreign", "steps_done": None, "diverged": None,
                        "error": f"{path}: made by another config (hash {ens.config_hash})"}
            if not ens.has_checkpoint:
                return {"status": "partial", "steps_done": 0, "diverged": None}
            import numpy as np

            div = int(np.count_nonzero(ens.read("state/diverged")))
            done = int(ens.steps_done)
    except (UserError, OSError) as e:
        return {"status": "corrupt", "steps_done": None, "diverged": None, "error": str(e)}
    return {"status": "complete" if done >= steps else "partial", "steps_done": done,
            "diverged": div}


def _point_status(idx: SweepIndex, p: dict) -> dict:
    """The status of a point from its files (the merged file, or else its shards)."""
    st = file_status(idx.path_of(p), p["config_hash"], p["steps"])
    if st["status"] == "pending" and p.get("shards", 1) > 1:
        sub = [file_status(os.path.join(idx.point_dir(p), f"shard_{i}.h5"), p["config_hash"],
                           p["steps"]) for i in range(p["shards"])]
        bad = [s for s in sub if s["status"] in ("foreign", "corrupt")]
        if bad:
            return bad[0]
        if any(s["status"] != "pending" for s in sub):
            done = sum(s["status"] == "complete" for s in sub)
            return {"status": "partial", "steps_done": min((s["steps_done"] or 0) for s in sub),
                    "diverged": None, "shards_complete": done}
    return st


def refresh(idx: SweepIndex, names: Sequence[str] | None = None) -> SweepIndex:
    """Recompute the status of points (all, or ``names``) from their files; a ``failed``
    status and its error, or ``submitted`` (to SLURM), stay until the point's file is complete."""
    for p in idx.points:
        if names is not None and p["name"] not in names:
            continue
        st = _point_status(idx, p)
        if p.get("status") in ("failed", "submitted") and st["status"] in ("pending", "partial"):
            st = dict(st, status=p["status"], error=p.get("error"))
        p.pop("shards_complete", None)
        p.update({"error": None, **st})
    return idx


# --------------------------------------------------------------------------------------------
# The sweep folder
# --------------------------------------------------------------------------------------------

def _point_entry(sw: Sweep, p: Point, shards: int) -> dict:
    rel = os.path.join(POINTS_DIR, p.name)
    return {"index": p.index, "name": p.name, "values": p.values, "config_hash": p.hash,
            "config": os.path.join(rel, "config.toml"), "file": os.path.join(rel, "ensemble.h5"),
            "seed": p.config.ensemble.seed, "steps": p.config.ensemble.steps,
            "replicas": p.config.ensemble.replicas,
            "shards": min(shards, p.config.ensemble.replicas), "status": "pending",
            "steps_done": None, "diverged": None, "error": None}


def check_dir(sw: Sweep, outdir: str) -> SweepIndex | None:
    """The existing index of ``outdir`` if it belongs to this sweep, None for a new or empty
    folder; a one-line UserError for a folder of another sweep or of something else."""
    outdir = os.fspath(outdir)
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UserError(f"{outdir}: exists and is not a directory")
    if not os.path.isdir(outdir) or not [f for f in os.listdir(outdir) if f != ".lock"]:
        return None
    if not os.path.exists(os.path.join(outdir, INDEX)):
        raise UserError(f"{outdir}: exists and is not a sweep directory (no {INDEX}); "
                        "choose a new or empty folder")
    idx = SweepIndex.load(outdir)
    if idx.hash != sw.hash:
        raise UserError(f"{outdir}: belongs to another sweep ({idx.name!r}, hash {idx.hash}; this "
                        f"sweep {sw.name!r} has hash {sw.hash}); choose another folder")
    return idx


def prepare(sw: Sweep, outdir, *, shards: int | None = None) -> SweepIndex:
    """Create (or update) the sweep folder: the sweep file's text, every point's config and the
    index with fresh statuses. Refuses, before writing anything, a folder of another sweep."""
    from .config import load_config

    outdir = os.path.abspath(os.fspath(outdir))
    old = check_dir(sw, outdir)
    shards = sw.shards if shards is None else shards
    if shards < 1:
        raise UserError(f"--shards {shards}: expected a positive integer")
    os.makedirs(os.path.join(outdir, POINTS_DIR), exist_ok=True)
    with open(os.path.join(outdir, "sweep.toml"), "w") as f:
        f.write(sw.text)
    prior = {p["name"]: p for p in old.points} if old else {}
    entries = []
    for p in sw.points:
        d = os.path.join(outdir, POINTS_DIR, p.name)
        os.makedirs(d, exist_ok=True)
        cpath = os.path.join(d, "config.toml")
        text = p.config.to_toml()
        current = None
        if os.path.exists(cpath):
            with open(cpath) as f:
                current = f.read()
        if current != text:
            with open(cpath, "w") as f:
                f.write(text)
            if load_config(cpath).hash != p.hash:  # the written config must be the point
                raise RuntimeError(f"{cpath}: the effective config does not reproduce hash {p.hash}")
        e = _point_entry(sw, p, shards)
        if p.name in prior:
            for k in ("status", "error", "seconds"):
                if k in prior[p.name]:
                    e[k] = prior[p.name][k]
            if shards == sw.shards and prior[p.name].get("shards", 1) > 1:
                e["shards"] = prior[p.name]["shards"]  # keep a SLURM layout found on disk
        entries.append(e)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": sw.name,
            "sweep_hash": sw.hash, "source": sw.path, "base": sw.base,
            "overrides": list(sw.overrides),
            "created": old.data.get("created") if old else _now(),
            "keys": sw.keys, "axes": [a.to_dict() for a in sw.axes],
            "independent_seeds": sw.independent_seeds, "points": entries}
    idx = SweepIndex(outdir, data)
    refresh(idx)
    idx.save()
    return idx


@contextlib.contextmanager
def _lock(outdir: str, what: str):
    """One runner per sweep folder (an advisory lock on DIR/.lock)."""
    import fcntl

    path = os.path.join(outdir, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                holder = "?"
            raise UserError(f"{outdir}: another langevin-nn sweep is using it ({holder}); "
                            "wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Running locally
# --------------------------------------------------------------------------------------------

@dataclass
class SweepRunResult:
    """What ``run_sweep`` did: points run, skipped (already complete), failed (name -> error),
    interrupted (partial, resumable), and the signal that stopped the sweep, if any."""

    outdir: str
    ran: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    interrupted: list = field(default_factory=list)
    diverged: list = field(default_factory=list)
    stopped_by: str | None = None
    seconds: float = 0.0


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def plan_threads(jobs: int, threads: int | None, n_cores: int | None = None) -> tuple[int, int]:
    """(jobs, threads per job) with jobs x threads <= cores (UserError if asked for more)."""
    n = n_cores or cores()
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a positive integer")
    if jobs > n:
        raise UserError(f"--jobs {jobs}: more points at once than the {n} cores available")
    if threads is None or threads == 0:
        threads = max(1, n // jobs)
    if threads < 1:
        raise UserError(f"--threads {threads}: expected a positive integer")
    if jobs * threads > n:
        raise UserError(f"--jobs {jobs} --threads {threads}: {jobs * threads} Numba threads on "
                        f"{n} cores (oversubscribed); lower one of them")
    return jobs, threads


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child_env(threads: int) -> dict:
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    root = _package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _warm(points: Sequence[dict], idx: SweepIndex, log) -> None:
    """Compile the kernels once before several processes load them from the cache (one small
    run per distinct kind of network / integrator / dtype)."""
    from .config import load_config
    from .slurm import warm_cache

    kinds = set()
    for p in points:
        cfg = load_config(idx.path_of(p, "config"))
        d = cfg.to_dict()
        kind = json.dumps([d["network"].get("architecture"), d["network"].get("activation"),
                           d["network"].get("output_activation"), d["dynamics"]["integrator"],
                           d["ensemble"]["dtype"], d["data"].get("loss"), d["data"].get("source"),
                           d["data"].get("online"), d["recording"]["probe_z_dtype"]])
        if kind not in kinds:
            kinds.add(kind)
            t0 = time.perf_counter()
            warm_cache(cfg)
            log(f"compiled the kernels for {p['name']} ({time.perf_counter() - t0:.1f} s)")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_sweep(sw: Sweep, outdir, *, jobs: int = 1, threads: int | None = None,
              progress: bool | None = False, log: Callable[[str], None] | None = _stderr,
              warm: bool = True) -> SweepRunResult:
    """Run every point of ``sw`` that is not complete into ``outdir``, one after another
    (``jobs = 1``, in this process) or ``jobs`` at a time (subprocesses, each with
    NUMBA_NUM_THREADS = ``threads``; jobs x threads never exceeds the cores). Complete points
    are skipped without being opened for writing; partial ones are resumed (``run(...,
    resume=True)``). SIGINT/SIGTERM/SIGUSR1 stop the running points at a checkpoint and return
    with ``stopped_by`` set; running the sweep again continues them."""
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    jobs, threads = plan_threads(jobs, threads)
    outdir = os.path.abspath(os.fspath(outdir))
    check_dir(sw, outdir)  # before anything is written
    os.makedirs(outdir, exist_ok=True)
    with _lock(outdir, "run"):
        idx = prepare(sw, outdir)
        res = SweepRunResult(idx.dir)
        todo = []
        for p in idx.points:
            if p["status"] == "complete":
                res.skipped.append(p["name"])
            elif p["status"] in ("foreign", "corrupt"):
                res.failed[p["name"]] = p.get("error") or p["status"]
                log(f"{p['name']}: {p['status']}: {p.get('error')}")
            else:
                todo.append(p)
        n = len(idx.points)
        log(f"sweep {sw.name}: {n} points, {len(res.skipped)} complete, {len(todo)} to run "
            f"({jobs} at a time x {threads} threads) -> {idx.dir}")
        if todo:
            if jobs == 1:
                _run_serial(idx, todo, threads, progress, log, res)
            else:
                if warm:
                    _warm(todo, idx, log)
                _run_parallel(idx, todo, jobs, threads, log, res)
        refresh(idx)
        for p in idx.points:
            if p["name"] in res.failed and p["status"] != "complete":
                p["status"], p["error"] = "failed", res.failed[p["name"]]
            if p["status"] == "complete" and p.get("diverged") and p["diverged"] >= p["replicas"]:
                res.diverged.append(p["name"])
        idx.save()
    res.seconds = time.perf_counter() - t0
    return res


def _mark(idx: SweepIndex, p: dict, **kw) -> None:
    p.update(kw)
    idx.save()


def _run_serial(idx, todo, threads, progress, log, res) -> None:
    import numba

    from .config import load_config
    from .simulate import run

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    for k, p in enumerate(todo):
        _mark(idx, p, status="running", error=None)
        t = time.perf_counter()
        try:
            cfg = load_config(idx.path_of(p, "config"))
            r = run(cfg, idx.path_of(p), resume=True, progress=progress)
        except UserError as e:
            res.failed[p["name"]] = str(e)
            _mark(idx, p, status="failed", error=str(e))
            log(f"[{k + 1}/{len(todo)}] {p['name']}: failed: {e}")
            continue
        except BaseException:
            refresh(idx, [p["name"]])
            idx.save()
            raise
        dt = time.perf_counter() - t
        refresh(idx, [p["name"]])
        p["seconds"] = round(dt, 3)
        idx.save()
        if r.stopped_by:
            res.interrupted.append(p["name"])
            res.stopped_by = r.stopped_by
            log(f"[{k + 1}/{len(todo)}] {p['name']}: stopped by {r.stopped_by} at step "
                f"{r.steps_done}; checkpoint written")
            return
        res.ran.append(p["name"])
        div = int(r.diverged.sum())
        log(f"[{k + 1}/{len(todo)}] {p['name']}: {r.steps_done} steps x {r.replicas} replicas in "
            f"{dt:.1f} s" + (f"; {div} diverged" if div else ""))


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f.read().splitlines() if l.strip()]
    except OSError:
        return ""
    errs = [l for l in lines if l.startswith("error:")]
    return (errs[-1][len("error:"):].strip() if errs else (lines[-1] if lines else ""))


def _run_parallel(idx, todo, jobs, threads, log, res) -> None:
    queue = list(todo)
    running: dict[str, tuple[subprocess.Popen, dict, float, Any]] = {}
    stop: list[str] = []
    old = {}

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if not stop:
            stop.append(name)
            for proc, _, _, _ in running.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        with contextlib.suppress(ValueError):
            old[s] = signal.signal(s, handler)
    env = _child_env(threads)
    done = 0
    try:
        while queue or running:
            while queue and len(running) < jobs and not stop:
                p = queue.pop(0)
                logpath = os.path.join(idx.point_dir(p), "run.log")
                fh = open(logpath, "a")
                cmd = [sys.executable, "-m", "langevin_nn.sweep", "task", idx.dir, p["name"]]
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
                running[p["name"]] = (proc, p, time.perf_counter(), fh)
                _mark(idx, p, status="running", error=None)
            for name in list(running):
                proc, p, t, fh = running[name]
                rc = proc.poll()
                if rc is None:
                    continue
                fh.close()
                del running[name]
                done += 1
                dt = time.perf_counter() - t
                refresh(idx, [name])
                p["seconds"] = round(dt, 3)
                tag = f"[{done}/{len(todo)}] {name}"
                if rc == EXIT_OK and p["status"] == "complete":
                    res.ran.append(name)
                    div = p.get("diverged") or 0
                    log(f"{tag}: done in {dt:.1f} s" + (f"; {div} diverged" if div else ""))
                elif rc == EXIT_SIGNAL:
                    res.interrupted.append(name)
                    log(f"{tag}: stopped at step {p.get('steps_done')}; checkpoint written")
                else:
                    err = _tail(os.path.join(idx.point_dir(p), "run.log")) or f"exit status {rc}"
                    res.failed[name] = err
                    p["status"], p["error"] = "failed", err
                    log(f"{tag}: failed (exit {rc}): {err}")
                idx.save()
            if stop and queue:
                queue.clear()
            time.sleep(0.05)
    finally:
        for proc, p, _, fh in running.values():  # only on an exception in this loop
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            fh.close()
        for s, h in old.items():
            signal.signal(s, h)
    if stop:
        res.stopped_by = stop[0]


# --------------------------------------------------------------------------------------------
# SLURM
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepSubmission:
    """What ``submit_sweep`` wrote and submitted: the tasks (point name, shard or None) of the
    array, the points already complete, the scripts, and the job ids (None for a dry run or
    when there was nothing to run)."""

    outdir: str
    tasks: tuple
    skipped: tuple
    array_script: str | None
    collect_script: str
    array_id: str | None = None
    collect_id: str | None = None


def _template(name: str) -> str:
    return (resources.files("langevin_nn") / "templates" / name).read_text()


def write_slurm_scripts(idx: SweepIndex, tasks: Sequence[tuple[str, str | None]], *,
                        partition: str | None = None, time: str | None = None,
                        cpus_per_task: int = 1, mem: str | None = None,
                        account: str | None = None, extra_sbatch: tuple[str, ...] = (),
                        signal_seconds: int = 120, max_requeue: int = 3, copy: bool = False,
                        analyze: bool = False, name: str | None = None) -> tuple[str | None, str]:
    """Write DIR/slurm/sweep_array.sbatch (one task per (point, shard)) and
    DIR/slurm/sweep_collect.sbatch; returns their paths (no array script without tasks)."""
    sdir = os.path.join(idx.dir, SLURM_DIR)
    logs = os.path.join(sdir, "logs")
    os.makedirs(logs, exist_ok=True)
    name = name or f"lnn-sweep-{idx.hash[:8]}"
    from .slurm import sbatch_lines

    lines, env = sbatch_lines(partition, time, mem, account, extra_sbatch)
    env.append(f"export PYTHONPATH={shlex.quote(_package_root())}${{PYTHONPATH:+:$PYTHONPATH}}")
    common = dict(name=name, logs=logs, python=shlex.quote(sys.executable),
                  sbatch_lines="\n".join(lines), env_lines="\n".join(env),
                  outdir=shlex.quote(idx.dir), sweep=idx.name)
    array_path = None
    if tasks:
        table = "\n".join(f"  \"{n}{' ' + s if s else ''}\"" for n, s in tasks)
        text = _template("sweep_array.sbatch").format(
            last=len(tasks) - 1, n_tasks=len(tasks), signal_seconds=signal_seconds,
            cpus=cpus_per_task, max_requeue=max_requeue, tasks=table, **common)
        array_path = os.path.join(sdir, "sweep_array.sbatch")
        with open(array_path, "w") as f:
            f.write(text)
        os.chmod(array_path, 0o755)
    opts = (" --copy" if copy else "") + (" --analyze" if analyze else "")
    text = _template("sweep_collect.sbatch").format(options=opts, **common)
    collect_path = os.path.join(sdir, "sweep_collect.sbatch")
    with open(collect_path, "w") as f:
        f.write(text)
    os.chmod(collect_path, 0o755)
    return array_path, collect_path


def submit_sweep(sw: Sweep, outdir, *, shards: int | None = None, dry_run: bool = False,
                 warm: bool = True, log: Callable[[str], None] | None = None,
                 **opts) -> SweepSubmission:
    """Prepare the folder and submit the points not yet complete as one SLURM job array (one
    task per point, or per point x shard with ``shards`` > 1) plus a collect job that runs after
    it (``--dependency=afterok``): merges the shards, refreshes the index (and with
    ``analyze=True`` writes the sweep table). ``opts``: the scheduler options of
    ``slurm.write_scripts`` (partition, time, cpus_per_task, mem, account, extra_sbatch,
    signal_seconds, max_requeue), ``copy``, ``analyze``."""
    from .slurm import _sbatch

    log = log or (lambda msg: None)
    if shards is not None and shards < 1:
        raise UserError(f"--shards {shards}: expected a positive integer")
    outdir = os.path.abspath(os.fspath(outdir))
    check_dir(sw, outdir)  # before anything is written
    os.makedirs(outdir, exist_ok=True)
    with _lock(outdir, "submit"):
        idx = prepare(sw, outdir, shards=shards)
        tasks, skipped = [], []
        for p in idx.points:
            if p["status"] == "complete":
                skipped.append(p["name"])
                continue
            if p["status"] in ("foreign", "corrupt"):
                raise UserError(f"{idx.path_of(p)}: {p['status']}: {p.get('error')}; remove it "
                                "to run the point again")
            n = p.get("shards", 1)
            if n > 1:
                tasks += [(p["name"], f"{i}/{n}") for i in range(n)]
            else:
                tasks.append((p["name"], None))
        array, collect_script = write_slurm_scripts(idx, tasks, **opts)
        if dry_run or not tasks:
            refresh(idx)
            idx.save()
            return SweepSubmission(idx.dir, tuple(tasks), tuple(skipped), array, collect_script)
        if warm:
            _warm([idx.by_name(n) for n, _ in dict.fromkeys(tasks)], idx, log)
        array_id = _sbatch([array])
        collect_id = _sbatch([f"--dependency=afterok:{array_id}", collect_script])
        idx.data["slurm"] = {"array_id": array_id, "collect_id": collect_id,
                             "submitted": _now(), "tasks": len(tasks)}
        refresh(idx)
        for p in idx.points:
            if p["name"] in {n for n, _ in tasks} and p["status"] in ("pending", "partial"):
                p["status"] = "submitted"
        idx.save()
    return SweepSubmission(idx.dir, tuple(tasks), tuple(skipped), array, collect_script,
                           array_id, collect_id)


def collect(outdir, *, copy: bool = False, analyze: bool = False,
            log: Callable[[str], None] | None = _stderr) -> SweepIndex:
    """After the array: merge the shards of every sharded point whose shards are complete,
    refresh the index, and (``analyze``) write the sweep table into DIR/analysis."""
    from .merge import merge

    log = log or (lambda msg: None)
    idx = SweepIndex.load(outdir)
    with _lock(idx.dir, "collect"):
        for p in idx.points:
            n = p.get("shards", 1)
            if n <= 1:
                continue
            if file_status(idx.path_of(p), p["config_hash"], p["steps"])["status"] == "complete":
                continue
            files = [os.path.join(idx.point_dir(p), f"shard_{i}.h5") for i in range(n)]
            sts = [file_status(f, p["config_hash"], p["steps"])["status"] for f in files]
            if all(s == "complete" for s in sts):
                merge(files, idx.path_of(p), copy=copy, overwrite=True)
                log(f"{p['name']}: merged {n} shards")
            else:
                log(f"{p['name']}: shards not complete ({sts.count('complete')} of {n})")
        for p in idx.points:
            if p.get("status") == "submitted":
                p["status"] = "pending"
        refresh(idx)
        idx.save()
    c = idx.counts()
    log(f"{idx.dir}: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    if analyze:
        from .sweep_analysis import write_report

        out = write_report(idx.dir)
        log(f"sweep table and figures in {out['outdir']}")
    return idx


# --------------------------------------------------------------------------------------------
# Summary (``langevin-nn info DIR``)
# --------------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def format_sweep(outdir, *, max_points: int = 200) -> str:
    """A readable summary of a sweep folder, statuses read from the files now."""
    idx = SweepIndex.load(outdir)
    refresh(idx)
    d = idx.data
    c = idx.counts()
    lines = [f"sweep:         {idx.name} (hash {idx.hash})",
             f"folder:        {idx.dir}",
             f"sweep file:    {d.get('source') or '?'}" + (f" (base: {d['base']})" if d.get("base") else "")
             + (f"; --set {' '.join(d['overrides'])}" if d.get("overrides") else ""),
             f"created:       {d.get('created', '?')}, updated {d.get('updated', '?')}",
             f"points:        {len(idx.points)} ("
             + ", ".join(f"{c[s]} {s}" for s in STATUSES if c.get(s)) + ")"]
    if d.get("slurm"):
        s = d["slurm"]
        lines.append(f"slurm:         array {s.get('array_id')} ({s.get('tasks')} tasks), "
                     f"collect {s.get('collect_id')}, submitted {s.get('submitted')}")
    lines.append("axes:" + ("  (independent seeds)" if d.get("independent_seeds") else ""))
    for a in d.get("axes", []):
        vals = [v if len(v) > 1 else v[0] for v in a["values"]]
        shown = ", ".join(_fmt(v) for v in vals[:12]) + (", ..." if len(vals) > 12 else "")
        lines.append(f"  {' + '.join(a['keys'])} ({len(vals)}): {shown}   [{a['origin']}]")
    keys = idx.keys
    short = _short_names(keys)
    head = ["#", *[short[k] for k in keys], "status", "steps", "diverged", "file"]
    rows = []
    for p in idx.points[:max_points]:
        steps = f"{p['steps_done'] if p.get('steps_done') is not None else '-'}/{p['steps']}"
        div = "-" if p.get("diverged") is None else f"{p['diverged']}/{p['replicas']}"
        rows.append([str(p["index"]), *[_fmt(p["values"].get(k)) for k in keys], p["status"],
                     steps, div, p["file"]])
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines.append("  " + "  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    for r in rows:
        lines.append("  " + "  ".join(x.ljust(w[i]) for i, x in enumerate(r)).rstrip())
    if len(idx.points) > max_points:
        lines.append(f"  ... {len(idx.points) - max_points} more points (all in {INDEX})")
    errs = [p for p in idx.points if p.get("error")]
    for p in errs[:10]:
        lines.append(f"error: {p['name']}: {p['error']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry points for the workers: python -m langevin_nn.sweep task|collect ...
# --------------------------------------------------------------------------------------------

class _Stopped(Exception):
    pass


def _stop_early(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _task(outdir: str, name: str, shard: str | None, requeue: int) -> int:
    """Run one point (or one shard of it) with resume: 0 done (also when every replica
    diverged: that is a result), 75 stopped by a signal (checkpoint written; requeued inside
    SLURM), 2 bad input."""
    from .config import load_config
    from .simulate import run

    idx = SweepIndex.load(outdir)
    p = idx.by_name(name)
    cfg = load_config(idx.path_of(p, "config"))
    sh = None
    out = idx.path_of(p)
    if shard:
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise UserError(f"--shard {shard}: expected I/N") from None
        sh = (i, n)
        out = os.path.join(idx.point_dir(p), f"shard_{i}.h5")
    res = run(cfg, out, resume=True, shard=sh, progress=False)
    if res.already_done:
        _stderr(f"{out}: already complete ({res.steps_done} steps); nothing to do")
        return EXIT_OK
    div = int(res.diverged.sum())
    _stderr(f"{out}: {res.steps_done} steps x {res.replicas} replicas in {res.wall_seconds:.1f} s; "
            f"{div} diverged")
    if res.stopped_by:
        _stderr(f"stopped by {res.stopped_by} at step {res.steps_done}; checkpoint written")
        if requeue:
            from .slurm import requeue_self

            job = requeue_self(requeue)
            if job:
                _stderr(f"requeued SLURM job {job}")
        return EXIT_SIGNAL
    return EXIT_OK


def main(argv=None) -> int:
    import argparse

    for s in ("SIGTERM", "SIGUSR1"):
        signal.signal(getattr(signal, s), _stop_early)
    ap = argparse.ArgumentParser(prog="python -m langevin_nn.sweep",
                                 description="Workers of a langevin-nn sweep (used by its scripts).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("task", help="run one point (or one shard of it) of a sweep folder")
    t.add_argument("outdir")
    t.add_argument("name")
    t.add_argument("--shard", default=None)
    t.add_argument("--requeue", type=int, default=0)
    c = sub.add_parser("collect", help="merge shards, refresh the index (after the array)")
    c.add_argument("outdir")
    c.add_argument("--copy", action="store_true")
    c.add_argument("--analyze", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "task":
            return _task(a.outdir, a.name, a.shard, a.requeue)
        idx = collect(a.outdir, copy=a.copy, analyze=a.analyze)
        return EXIT_OK if all(p["status"] == "complete" for p in idx.points) else EXIT_USAGE
    except UserError as e:
        _stderr(f"error: {e}")
        return e.exit_code
    except (_Stopped, KeyboardInterrupt) as e:
        _stderr(f"stopped by {e or 'SIGINT'} before any checkpoint; nothing to resume")
        return EXIT_SIGNAL


if __name__ == "__main__":
    sys.exit(main())
