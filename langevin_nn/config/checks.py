"""Typed readers of TOML values: each raises ConfigError("<key>: expected ..., got <value>")."""
from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

from ..errors import ConfigError


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


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
