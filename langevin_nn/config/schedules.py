"""Schedules from their TOML form, and the [dynamics] section: the integrator and its schedules."""
from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import ConfigError
from .checks import _choice, _float, _is_number, _known, _show
from .keys import (INTEGRATOR_SCHEDULES, INTEGRATORS, SCHEDULE_DEFAULTS, SCHEDULE_KINDS,
                   SCHEDULE_NAMES, SCHEDULE_TABLE_KEYS, SCHEDULE_UNITS)
from .model import DynamicsConfig, Schedule


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
