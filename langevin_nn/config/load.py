"""Loading a configuration: a TOML file or a dict, the ``--set`` overrides, then validation."""
from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import tomllib
from typing import Any, Mapping, Sequence

import tomli_w

from ..errors import ConfigError
from ..tomlfile import read_toml
from .checks import _join, _show
from .keys import NETWORK_KEYS, SCHEDULE_NAMES, SCHEDULE_TABLE_KEYS, SCHEMA
from .sections import _build
from .model import Config

_PARAM_KEYS = ("p", "q", "r")


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
