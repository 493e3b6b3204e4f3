"""The whole tree from the raw TOML tables, and the sections [data], [ensemble], [recording],
[init]; [network] is built in ``network.py``, [dynamics] in ``schedules.py``."""
from __future__ import annotations

import json

from ..errors import ConfigError
from .checks import _bool, _choice, _float, _int, _is_int, _known, _path, _show, _table
from .keys import (DATA_SUFFIXES, DIGITS_CLASSES, DIGITS_INPUTS, DIGITS_ROWS, DTYPES, LOSSES,
                   MAX_REPLICAS, MAX_SEED, MAX_STEPS, MOMENTA, NETWORK_KEYS, REDUCTIONS, SCHEMA,
                   SOURCES)
from .network import _network
from .schedules import _dynamics
from .model import (Config, DataConfig, DynamicsConfig, EnsembleConfig, InitConfig, NetworkConfig,
                    RecordingConfig)


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
