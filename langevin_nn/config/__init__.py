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

The modules, in import order:

    keys.py       the constants of the TOML schema: sections and keys, choices, defaults, limits
    model.py      the dataclasses (ActivationSpec ... Config), back to TOML, the config hash
    checks.py     the typed readers of single values (_int, _float, _choice, _path, ...)
    schedules.py  parse_schedule, and the [dynamics] section with the ranges of its schedules
    network.py    the [network] section (also the network of [data.teacher]) and its activations
    sections.py   the whole tree (_build), [data], [ensemble], [recording], [init]
    load.py       load_config: a TOML file or a dict, the --set overrides, then validation
"""
from __future__ import annotations

from .keys import HASH_EXCLUDED
from .load import load_config
from .model import (ActivationSpec, Config, DataConfig, DynamicsConfig, EnsembleConfig, InitConfig,
                    NetworkConfig, RecordingConfig, Schedule)
from .schedules import parse_schedule

__all__ = [
    "ActivationSpec", "NetworkConfig", "Schedule", "DataConfig", "DynamicsConfig",
    "EnsembleConfig", "RecordingConfig", "InitConfig", "Config", "HASH_EXCLUDED",
    "load_config", "parse_schedule",
]
