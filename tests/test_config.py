"""Tests of langevin_nn.config: defaults, round trip, hash, overrides, every error, schedules."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from langevin_nn.config import (
    HASH_EXCLUDED, ActivationSpec, Config, Schedule, load_config, parse_schedule,
)
from langevin_nn.errors import ConfigError, UserError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding the files that configs may name."""
    for name in ("train.npz", "train.h5", "notes.txt", "parent.h5"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------

def test_defaults():
    cfg = load_config({})
    n = cfg.network
    assert (n.architecture, n.widths, n.k, n.tied, n.bias) == ("dense", (8, 32, 32, 1), 1, False, True)
    assert n.activation == ActivationSpec("tanh")
    assert n.output_activation == ActivationSpec("identity")
    assert (n.sigma_w2, n.sigma_b2) == (1.0, 0.0)
    d = cfg.data
    assert (d.source, d.n_train, d.online, d.n_probe, d.batch) == ("teacher", 256, False, 64, 8)
    assert (d.loss, d.reduction, d.label_noise, d.path) == ("mse", "mean", 0.0, None)
    assert d.teacher == n
    y = cfg.dynamics
    assert y.integrator == "overdamped"
    assert y.eta == Schedule("constant", values=(1e-3,))
    assert [s.value(123) for s in (y.T, y.dt, y.gamma, y.beta, y.lam)] == [0.0, 1e-2, 1.0, 0.9, 0.0]
    assert y.divergence_bound == 1e8
    e = cfg.ensemble
    assert (e.replicas, e.seed, e.steps, e.dtype, e.threads, e.checkpoint_every, e.chunk) == (
        16, 0, 1000, "float64", 0, 300.0, 0)
    r = cfg.recording
    assert (r.every, r.train_loss, r.norms, r.snapshot_every, r.probe_z_every, r.probe_z_dtype) == (
        10, True, True, 0, 0, "float32")
    assert (cfg.init.file, cfg.init.at, cfg.init.momenta) == (None, "final", "zero")
    assert cfg.overrides == ()


def test_empty_file_equals_empty_dict(tmp_path):
    text = "# nothing here\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg == load_config({})
    assert cfg.text == text
    assert load_config(str(write(tmp_path, text))).hash == cfg.hash


def test_architecture_defaults_and_resolved_widths():
    local = load_config({"network": {"architecture": "local", "width": 9, "depth": 3, "k": 2,
                                     "tied": True}}).network
    assert (local.widths, local.k, local.tied, local.bias) == ((9, 9, 9, 9), 2, True, True)
    sft1 = load_config({"network": {"architecture": "sft1", "width": 6}}).network
    assert sft1.widths == (6, 6) and not sft1.bias
    assert sft1.output_activation == ActivationSpec("linear", 1.0, 0.0)
    sft2 = load_config({"network": {"architecture": "sft2", "width": 8}}).network
    assert sft2.widths == (8, 8, 8) and not sft2.bias
    assert sft2.activation == ActivationSpec("quadratic", 1.0, 1.0, 1.0)
    assert sft2.output_activation == ActivationSpec("identity")


def test_activation_params():
    # The params table updates the architecture's default when the name is left out ...
    sft2 = load_config({"network": {"architecture": "sft2", "width": 8,
                                    "activation_params": {"r": 0.5}}}).network
    assert sft2.activation == ActivationSpec("quadratic", 1.0, 1.0, 0.5)
    # ... and ActivationSpec's defaults when the name is given.
    sft2 = load_config({"network": {"architecture": "sft2", "width": 8, "activation": "quadratic",
                                    "activation_params": {"r": 2}}}).network
    assert sft2.activation == ActivationSpec("quadratic", 1.0, 0.0, 2.0)
    sft1 = load_config({"network": {"architecture": "sft1", "width": 4,
                                    "output_activation_params": {"p": 2.0, "q": -1}}}).network
    assert sft1.output_activation == ActivationSpec("linear", 2.0, -1.0)


def test_data_sources(workdir):
    f = load_config({"data": {"source": "file", "path": "train.npz", "batch": "full"}}).data
    assert (f.n_train, f.batch, f.teacher, f.label_noise) == (None, None, None, 0.0)
    assert f.path == str(workdir / "train.npz")
    online = load_config({"data": {"online": True, "batch": 32}}).data
    assert (online.online, online.n_train, online.batch) == (True, None, 32)
    digits = load_config({"network": {"widths": [64, 32, 10]},
                          "data": {"source": "digits", "loss": "cross_entropy", "n_train": 1000}})
    assert digits.data.n_train == 1000
    hinge = load_config({"network": {"widths": [64, 1]}, "data": {"source": "digits", "loss": "hinge"}})
    assert hinge.data.n_train is None


def test_teacher_inheritance():
    base = {"network": {"widths": [4, 16, 2], "activation": "linear",
                        "activation_params": {"p": 2.0}, "sigma_b2": 0.1}}
    same = load_config(base).data.teacher
    assert same == load_config(base).network
    t = load_config({**base, "data": {"teacher": {"widths": [4, 3, 3, 2], "sigma_w2": 2.0}}}).data.teacher
    assert t.widths == (4, 3, 3, 2) and t.sigma_w2 == 2.0
    assert t.activation == ActivationSpec("linear", 2.0) and t.sigma_b2 == 0.1
    # naming an activation drops the student's coefficients; bias = false drops sigma_b2
    t = load_config({**base, "data": {"teacher": {"activation": "tanh", "bias": False}}}).data.teacher
    assert t.activation == ActivationSpec("tanh") and (t.bias, t.sigma_b2) == (False, 0.0)
    # another architecture inherits nothing
    t = load_config({"network": {"architecture": "local", "width": 8, "depth": 4, "k": 2},
                     "data": {"teacher": {"architecture": "dense", "widths": [8, 8]}}}).data.teacher
    assert (t.architecture, t.widths, t.k) == ("dense", (8, 8), 1)


def test_config_is_frozen_and_equality_ignores_text():
    cfg = load_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.network.sigma_w2 = 2.0  # type: ignore[misc]
    other = dataclasses.replace(cfg, text="something else", overrides=("a.b=1",))
    assert other == cfg and other.hash == cfg.hash


def test_dict_source_accepts_numpy_scalars():
    np = pytest.importorskip("numpy")
    cfg = load_config({"network": {"widths": list(np.array([8, 4, 1])), "sigma_w2": np.float64(2)},
                       "ensemble": {"seed": np.uint64(2**63)}})
    assert cfg.network.widths == (8, 4, 1) and cfg.network.sigma_w2 == 2.0
    assert cfg.ensemble.seed == 2**63 and type(cfg.ensemble.seed) is int
    assert "seed = 9223372036854775808" in cfg.text
    with pytest.raises(ConfigError, match=r"^ensemble\.replicas: "):
        load_config({"ensemble": {"replicas": np.bool_(True)}})


def test_dict_source_accepts_tuples_paths_and_none(workdir):
    cfg = load_config({"network": {"widths": (8, 4, 1), "sigma_b2": None},
                       "data": {"source": "file", "path": workdir / "train.h5"}})
    assert cfg.network.widths == (8, 4, 1) and cfg.network.sigma_b2 == 0.0
    assert "widths" in cfg.text and "sigma_b2" not in cfg.text


# --------------------------------------------------------------------------------------------
# Round trip and hash
# --------------------------------------------------------------------------------------------

ROUND_TRIP = {
    "default": {},
    "local": {"network": {"architecture": "local", "width": 12, "depth": 5, "k": 2, "tied": True,
                          "activation": "erf", "sigma_w2": 1.7, "sigma_b2": 0.05}},
    "sft1": {"network": {"architecture": "sft1", "width": 10,
                         "output_activation_params": {"p": 0.5, "q": 0.25}},
             "data": {"reduction": "sum", "batch": "full", "n_train": 20}},
    "sft2": {"network": {"architecture": "sft2", "width": 8, "activation_params": {"r": 0.3}}},
    "teacher": {"network": {"widths": [5, 7, 3], "activation": "quadratic",
                            "activation_params": {"q": 1.0}},
                "data": {"loss": "kl", "label_noise": 0.2,
                         "teacher": {"activation": "relu", "widths": [5, 3], "bias": False}}},
    "online_hinge": {"network": {"widths": [6, 1], "output_activation": "tanh"},
                     "data": {"online": True, "loss": "hinge", "batch": 1}},
    "underdamped": {"dynamics": {"integrator": "underdamped",
                                 "dt": {"kind": "linear", "start": 0.1, "end": 0.01, "until": 50,
                                        "unit": "time"},
                                 "gamma": {"kind": "exponential", "start": 2.0, "end": 0.5,
                                           "begin": 10, "until": 1000},
                                 "T": {"kind": "piecewise", "at": [10.0, 20.5],
                                       "values": [0.1, 0.05, 0.0], "unit": "time"},
                                 "lambda": {"kind": "constant", "value": 1e-3}},
                    "init": {"from": "parent.h5", "momenta": "keep"}},
    "heavy_ball": {"dynamics": {"integrator": "heavy_ball", "beta": 0.5, "eta": 0.01,
                                "divergence_bound": float("inf")},
                   "ensemble": {"replicas": 3, "seed": 2**64 - 1, "steps": 0, "dtype": "float32",
                                "threads": 2, "checkpoint_every": 10, "chunk": 100},
                   "recording": {"every": 5, "train_loss": False, "norms": False,
                                 "snapshot_every": 50, "probe_z_every": 5,
                                 "probe_z_dtype": "float64"},
                   "init": {"from": "parent.h5", "at": -2}},
    "file": {"network": {"widths": [3, 2]},
             "data": {"source": "file", "path": "train.npz", "loss": "cross_entropy",
                      "n_probe": 7}},
    "digits": {"network": {"widths": [64, 10]}, "data": {"source": "digits"}},
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_round_trip(name, workdir):
    cfg = load_config(ROUND_TRIP[name])
    back = load_config(write(workdir, cfg.to_toml(), "effective.toml"))
    assert back == cfg
    assert back.hash == cfg.hash
    assert back.to_dict() == cfg.to_dict()
    assert back.to_toml() == cfg.to_toml()
    assert load_config(cfg.to_dict()) == cfg


def test_hash_format():
    h = load_config({}).hash
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert load_config({}).hash == h  # deterministic


@pytest.mark.parametrize("override", [
    "ensemble.threads=4", "ensemble.steps=123456", "ensemble.checkpoint_every=1.5",
    "ensemble.chunk=64",
])
def test_hash_ignores_excluded_keys(override):
    assert override.split("=")[0] in HASH_EXCLUDED
    base = load_config({})
    changed = load_config({}, [override])
    assert changed != base
    assert changed.hash == base.hash


@pytest.mark.parametrize("override", [
    "recording.every=20", "dynamics.T=0.1", "network.sigma_w2=2.0", "ensemble.seed=1",
    "ensemble.replicas=8", "ensemble.dtype=float32", "data.batch=full", "data.n_probe=65",
    "network.widths=[8,32,1]", "data.teacher.sigma_w2=1.5", "dynamics.lambda=1e-4",
    "recording.probe_z_every=10", "dynamics.divergence_bound=1e9",
    "dynamics.eta={kind='linear',start=1e-3,end=1e-4,until=100}",
])
def test_hash_changes_with_other_keys(override):
    assert load_config({}, [override]).hash != load_config({}).hash


def test_shortcut_hash():
    base = load_config({})
    assert load_config({}, steps=5, threads=3).hash == base.hash
    assert load_config({}, seed=5).hash != base.hash


# --------------------------------------------------------------------------------------------
# Overrides and shortcuts
# --------------------------------------------------------------------------------------------

def test_overrides_parse_toml_values_and_bare_strings():
    cfg = load_config({}, [
        "network.activation=relu",
        "network.widths=[4, 16, 2]",
        "dynamics.T=0.25",
        "data.batch=full",
        "data.loss=\"cross_entropy\"",
        " ensemble.seed = 7 ",
        "data.teacher.sigma_w2=2.0",
        "dynamics.eta={kind=\"linear\", start=1e-2, end=1e-3, until=100}",
        "dynamics.eta.end=1e-4",
    ])
    assert cfg.network.activation == ActivationSpec("relu")
    assert cfg.network.widths == (4, 16, 2)
    assert cfg.dynamics.T.value(0) == 0.25
    assert cfg.data.batch is None and cfg.data.loss == "cross_entropy"
    assert cfg.ensemble.seed == 7
    assert cfg.data.teacher.sigma_w2 == 2.0 and cfg.network.sigma_w2 == 1.0
    assert cfg.dynamics.eta.kind == "linear" and cfg.dynamics.eta.end == 1e-4


def test_overrides_apply_in_order_and_are_recorded(tmp_path):
    path = write(tmp_path, "[dynamics]\nT = 0.5\n")
    sets = ["dynamics.T=0.1", "dynamics.T=0.2", "network.activation_params.q=0.5",
            "network.activation=linear"]
    cfg = load_config(path, sets)
    assert cfg.dynamics.T.value(0) == 0.2
    assert cfg.network.activation == ActivationSpec("linear", 1.0, 0.5)
    assert cfg.overrides == tuple(sets)
    assert cfg.text == "[dynamics]\nT = 0.5\n"
    assert load_config(path) != cfg


def test_shortcuts_after_overrides():
    cfg = load_config({"ensemble": {"replicas": 2}}, ["ensemble.replicas=3", "ensemble.seed=9"],
                      replicas=4, steps=50, seed=None, threads=1)
    e = cfg.ensemble
    assert (e.replicas, e.steps, e.seed, e.threads) == (4, 50, 9, 1)
    assert cfg.overrides == ("ensemble.replicas=3", "ensemble.seed=9", "ensemble.replicas=4",
                             "ensemble.steps=50", "ensemble.threads=1")
    # text + overrides rebuild the same configuration
    assert load_config({"ensemble": {"replicas": 2}}, cfg.overrides) == cfg


def test_relative_paths(tmp_path, monkeypatch):
    confdir, other = tmp_path / "conf", tmp_path / "cwd"
    confdir.mkdir()
    other.mkdir()
    (confdir / "a.npz").write_bytes(b"")
    (other / "b.npz").write_bytes(b"")
    monkeypatch.chdir(other)
    path = write(confdir, '[data]\nsource = "file"\npath = "a.npz"\n')
    assert load_config(path).data.path == str(confdir / "a.npz")  # relative to the file
    assert load_config(path, ["data.path=b.npz"]).data.path == str(other / "b.npz")  # to cwd
    with pytest.raises(ConfigError, match=r"^data\.path: no such file"):
        load_config(path, ["data.path=a.npz"])


# --------------------------------------------------------------------------------------------
# Errors: every message is one line and starts with the key
# --------------------------------------------------------------------------------------------

def net(**kw):
    return {"network": kw}


def local(**kw):
    return net(architecture="local", **{"width": 8, "depth": 2, **kw})


def dyn(**kw):
    return {"dynamics": kw}


def data(**kw):
    return {"data": kw}


def lin(**kw):
    return {"kind": "linear", "start": 1.0, "end": 0.5, "until": 10, **kw}


BAD = [
    # structure
    ("netwrk", {"netwrk": {}}),
    ("network", {"network": 3}),
    ("network.widht", net(widht=[8, 1])),
    ("network.architecture", net(architecture="conv")),
    # dense widths
    ("network.widths", net(widths=[8])),
    ("network.widths", net(widths=[8, 0])),
    ("network.widths", net(widths=[8, 2.0])),
    ("network.widths", net(widths=[8, True])),
    ("network.widths", net(widths=8)),
    ("network.widths", net(widths="8,1")),
    ("network.width", net(width=8)),
    ("network.depth", net(depth=2)),
    ("network.k", net(k=1)),
    ("network.tied", net(tied=False)),
    # local
    ("network.widths", local(widths=[8, 8])),
    ("network.width", net(architecture="local", depth=3)),
    ("network.depth", net(architecture="local", width=8)),
    ("network.depth", local(depth=0)),
    ("network.width", local(width=0)),
    ("network.width", local(width=8.0)),
    ("network.k", local(width=4, k=2)),
    ("network.k", local(k=-1)),
    ("network.k", local(k=True)),
    ("network.tied", local(tied=1)),
    # sft
    ("network.width", net(architecture="sft1")),
    ("network.width", net(architecture="sft1", width=1)),
    ("network.k", net(architecture="sft1", width=4, k=1)),
    ("network.tied", net(architecture="sft2", width=4, tied=True)),
    ("network.depth", net(architecture="sft2", width=4, depth=1)),
    ("network.widths", net(architecture="sft2", widths=[4, 4, 4])),
    ("network.activation", net(architecture="sft1", width=4, activation="linear")),
    ("network.activation_params", net(architecture="sft1", width=4, activation_params={"p": 1})),
    # activations
    ("network.activation", net(activation="swish")),
    ("network.activation", net(activation=1)),
    ("network.activation_params", net(activation_params={"p": 2.0})),
    ("network.activation_params", net(activation="linear", activation_params=2.0)),
    ("network.activation_params.r", net(activation="linear", activation_params={"r": 1.0})),
    ("network.activation_params.s", net(activation="quadratic", activation_params={"s": 1.0})),
    ("network.activation_params.p", net(activation="linear", activation_params={"p": 0})),
    ("network.activation_params.p", net(activation="linear", activation_params={"p": "1"})),
    ("network.activation_params.q", net(activation="linear", activation_params={"q": math.nan})),
    ("network.activation_params", net(activation="quadratic", activation_params={"p": 0})),
    ("network.output_activation", net(output_activation="softmax")),
    ("network.output_activation_params",
     net(output_activation="relu", output_activation_params={"p": 1.0})),
    ("network.output_activation_params.p",
     net(output_activation="linear", output_activation_params={"p": True})),
    # init variances and bias
    ("network.bias", net(bias="yes")),
    ("network.sigma_w2", net(sigma_w2=0)),
    ("network.sigma_w2", net(sigma_w2=-1.0)),
    ("network.sigma_w2", net(sigma_w2=math.nan)),
    ("network.sigma_w2", net(sigma_w2=math.inf)),
    ("network.sigma_w2", net(sigma_w2=True)),
    ("network.sigma_b2", net(sigma_b2=-0.1)),
    ("network.sigma_b2", net(bias=False, sigma_b2=0.5)),
    ("network.sigma_b2", net(architecture="sft1", width=4, sigma_b2=0.5)),
    # data
    ("data.source", data(source="mnist")),
    ("data.sourc", data(sourc="teacher")),
    ("data.loss", {**net(widths=[8, 3]), **data(loss="hinge")}),
    ("data.loss", data(loss="cross_entropy")),
    ("data.loss", data(loss="kl")),
    ("data.loss", data(loss="l1")),
    ("data.reduction", data(reduction="avg")),
    ("data.online", data(source="digits", online=True)),
    ("data.online", data(online="yes")),
    ("data.batch", data(online=True, batch="full")),
    ("data.batch", data(batch=0)),
    ("data.batch", data(batch="half")),
    ("data.batch", data(batch=True)),
    ("data.batch", data(batch=4.0)),
    ("data.n_train", data(n_train=0)),
    ("data.n_train", data(n_train=True)),
    ("data.n_train", data(online=True, n_train=100)),
    ("data.n_probe", data(n_probe=0)),
    ("data.label_noise", data(label_noise=-0.1)),
    ("data.label_noise", data(label_noise="0.1")),
    ("data.label_noise", {**net(widths=[64, 10]), **data(source="digits", label_noise=0.1)}),
    ("data.path", data(source="file")),
    ("data.path", data(source="file", path="missing.npz")),
    ("data.path", data(source="file", path="notes.txt")),
    ("data.path", data(source="file", path=3)),
    ("data.path", data(source="file", path=".")),
    ("data.path", data(path="train.npz")),
    ("data.source", data(source="digits")),
    ("data.source", {**net(widths=[64, 1]), **data(source="digits")}),
    ("data.source", {**net(widths=[65, 10]), **data(source="digits", loss="kl")}),
    ("data.n_train", {**net(widths=[64, 10]), **data(source="digits", n_train=1790)}),
    ("data.teacher", {**net(widths=[64, 10]), **data(source="digits", teacher={})}),
    ("data.teacher", data(teacher=3)),
    ("data.teacher.widht", data(teacher={"widht": [8, 1]})),
    ("data.teacher.widths", data(teacher={"widths": [4, 32, 1]})),
    ("data.teacher.widths", data(teacher={"widths": [8, 32, 2]})),
    ("data.teacher.width",
     {**local(width=8), **data(teacher={"architecture": "sft1", "width": 4})}),
    ("data.teacher.width", data(teacher={"architecture": "local", "depth": 2})),
    ("data.teacher.sigma_w2", data(teacher={"sigma_w2": 0.0})),
    ("data.teacher.activation", data(teacher={"activation": "swish"})),
    # dynamics
    ("dynamics.integrator", dyn(integrator="langevin")),
    ("dynamics.temperature", dyn(temperature=0.1)),
    ("dynamics.eta", dyn(eta=0)),
    ("dynamics.eta", dyn(eta=-1e-3)),
    ("dynamics.eta", dyn(eta="fast")),
    ("dynamics.eta", dyn(eta=[1e-3])),
    ("dynamics.eta", dyn(eta=math.inf)),
    ("dynamics.eta", dyn(eta=lin(end=0.0))),
    ("dynamics.T", dyn(T=-0.1)),
    ("dynamics.T", dyn(T=True)),
    ("dynamics.T", dyn(T={"kind": "piecewise", "at": [5], "values": [0.1, -1.0]})),
    ("dynamics.lambda", dyn(**{"lambda": -1.0})),
    ("dynamics.dt", dyn(integrator="underdamped", dt=0.0)),
    ("dynamics.gamma", dyn(integrator="underdamped", gamma=-1.0)),
    ("dynamics.beta", dyn(integrator="heavy_ball", beta=1.0)),
    ("dynamics.beta", dyn(integrator="heavy_ball", beta=-0.1)),
    ("dynamics.beta", dyn(integrator="heavy_ball", beta=lin(start=0.5, end=1.0))),
    ("dynamics.gamma", dyn(gamma=1.0)),
    ("dynamics.dt", dyn(integrator="heavy_ball", dt=0.1)),
    ("dynamics.eta", dyn(integrator="underdamped", eta=0.1)),
    ("dynamics.beta", dyn(integrator="underdamped", beta=0.5)),
    ("dynamics.divergence_bound", dyn(divergence_bound=0)),
    ("dynamics.divergence_bound", dyn(divergence_bound=math.nan)),
    # schedule tables
    ("dynamics.eta.kind", dyn(eta={"start": 1.0})),
    ("dynamics.eta.kind", dyn(eta={"kind": "cosine"})),
    ("dynamics.eta.unit", dyn(eta=lin(unit="epochs"))),
    ("dynamics.eta.until", dyn(eta=lin(begin=10))),
    ("dynamics.eta.until", dyn(eta=lin(until=-1))),
    ("dynamics.eta.start", dyn(eta={"kind": "linear", "end": 1.0, "until": 5})),
    ("dynamics.eta.end", dyn(eta=lin(end="x"))),
    ("dynamics.eta.begin", dyn(eta=lin(begin=-1))),
    ("dynamics.eta.at", dyn(eta=lin(at=[1.0]))),
    ("dynamics.eta.foo", dyn(eta=lin(foo=1))),
    ("dynamics.eta", dyn(eta={"kind": "exponential", "start": 1.0, "end": 0.0, "until": 5})),
    ("dynamics.T", dyn(T={"kind": "exponential", "start": -1.0, "end": 1.0, "until": 5})),
    ("dynamics.T.at", dyn(T={"kind": "piecewise", "at": [2.0, 1.0], "values": [0, 0, 0]})),
    ("dynamics.T.at", dyn(T={"kind": "piecewise", "at": [1.0, 1.0], "values": [0, 0, 0]})),
    ("dynamics.T.at", dyn(T={"kind": "piecewise", "at": [], "values": [0]})),
    ("dynamics.T.at", dyn(T={"kind": "piecewise", "at": 1.0, "values": [0, 0]})),
    ("dynamics.T.at", dyn(T={"kind": "piecewise", "at": [-1.0], "values": [0, 0]})),
    ("dynamics.T.values", dyn(T={"kind": "piecewise", "at": [1.0], "values": [0.1]})),
    ("dynamics.T.values", dyn(T={"kind": "piecewise", "at": [1.0], "values": [0.1, "a"]})),
    ("dynamics.T.value", dyn(T={"kind": "constant"})),
    ("dynamics.T.start", dyn(T={"kind": "constant", "value": 0.1, "start": 0.1})),
    # ensemble
    ("ensemble.replicas", {"ensemble": {"replicas": 0}}),
    ("ensemble.replicas", {"ensemble": {"replicas": -3}}),
    ("ensemble.replicas", {"ensemble": {"replicas": True}}),
    ("ensemble.replicas", {"ensemble": {"replicas": 2.0}}),
    ("ensemble.replicas", {"ensemble": {"replicas": 2**32}}),
    ("ensemble.seed", {"ensemble": {"seed": -1}}),
    ("ensemble.seed", {"ensemble": {"seed": 2**64}}),
    ("ensemble.seed", {"ensemble": {"seed": "42"}}),
    ("ensemble.steps", {"ensemble": {"steps": -1}}),
    ("ensemble.steps", {"ensemble": {"steps": 2**48}}),
    ("ensemble.steps", {"ensemble": {"steps": False}}),
    ("ensemble.dtype", {"ensemble": {"dtype": "float16"}}),
    ("ensemble.threads", {"ensemble": {"threads": -1}}),
    ("ensemble.checkpoint_every", {"ensemble": {"checkpoint_every": 0}}),
    ("ensemble.checkpoint_every", {"ensemble": {"checkpoint_every": "5m"}}),
    ("ensemble.chunk", {"ensemble": {"chunk": -1}}),
    ("ensemble.chunks", {"ensemble": {"chunks": 1}}),
    # recording
    ("recording.every", {"recording": {"every": 0}}),
    ("recording.every", {"recording": {"every": 1.5}}),
    ("recording.train_loss", {"recording": {"train_loss": 1}}),
    ("recording.norms", {"recording": {"norms": "true"}}),
    ("recording.snapshot_every", {"recording": {"snapshot_every": 15}}),
    ("recording.snapshot_every", {"recording": {"snapshot_every": -10}}),
    ("recording.probe_z_every", {"recording": {"every": 4, "probe_z_every": 6}}),
    ("recording.probe_z_dtype", {"recording": {"probe_z_dtype": "float16"}}),
    # init
    ("init.at", {"init": {"at": 3}}),
    ("init.momenta", {"init": {"momenta": "keep"}}),
    ("init.from", {"init": {"from": "missing.h5"}}),
    ("init.from", {"init": {"from": 1}}),
    ("init.at", {"init": {"from": "parent.h5", "at": "last"}}),
    ("init.at", {"init": {"from": "parent.h5", "at": True}}),
    ("init.at", {"init": {"from": "parent.h5", "at": 1.0}}),
    ("init.momenta", {"init": {"from": "parent.h5", "momenta": "random"}}),
    ("init.momenta", {"init": {"from": "parent.h5", "momenta": "keep"}}),
    ("init.momenta", {**dyn(integrator="underdamped"),
                      "init": {"from": "parent.h5", "momenta": "keep", "at": -1}}),
    ("init.fom", {"init": {"fom": "parent.h5"}}),
]


@pytest.mark.parametrize("key,source", BAD, ids=[f"{i}-{k}" for i, (k, _) in enumerate(BAD)])
def test_bad_config(key, source, workdir):
    with pytest.raises(ConfigError) as info:
        load_config(source)
    msg = str(info.value)
    assert msg.startswith(key + ":"), msg
    assert "\n" not in msg


def test_bad_config_is_a_user_error():
    with pytest.raises(UserError):
        load_config(net(widths=[8]))


@pytest.mark.parametrize("message,source", [
    ("network.widths: expected a list of at least 2 positive integers, got [8]",
     net(widths=[8])),
    ("data.loss: hinge needs a scalar output (last width 1), got 3",
     {**net(widths=[8, 3]), **data(loss="hinge")}),
    ("ensemble.replicas: expected an integer in [1, 4294967296), got true",
     {"ensemble": {"replicas": True}}),
    ("dynamics.beta: must be >= 0.0 and < 1.0 at every node, got 1.0",
     dyn(integrator="heavy_ball", beta=1.0)),
])
def test_exact_messages(message, source):
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert str(info.value) == message


def test_unknown_key_lists_known_keys():
    with pytest.raises(ConfigError, match=r"^network\.widht: unknown key \(known: architecture, widths, "):
        load_config(net(widht=[8, 1]))
    with pytest.raises(ConfigError, match=r"^dynamcs: unknown section \(known: network, data, "):
        load_config({"dynamcs": {}})


@pytest.mark.parametrize("key,overrides", [
    ("--set dynamics.Tx", ["dynamics.Tx=1"]),
    ("--set foo.bar", ["foo.bar=1"]),
    ("--set dynamics", ["dynamics=1"]),
    ("--set network.activation_params.s", ["network.activation_params.s=1"]),
    ("--set network.widths.x", ["network.widths.x=1"]),
    ("--set data.teacher.foo", ["data.teacher.foo=1"]),
    ("--set dynamics.eta.foo", ["dynamics.eta.foo=1"]),
    ("--set network.activation", ["network.activation"]),
    ("--set dynamics.eta.end", ["dynamics.eta=1e-3", "dynamics.eta.end=1e-4"]),
    ("network.activation", ["network.activation=swish"]),
    ("ensemble.replicas", ["ensemble.replicas=true"]),
    ("network.widths", ["network.widths=8"]),
])
def test_bad_overrides(key, overrides):
    with pytest.raises(ConfigError) as info:
        load_config({}, overrides)
    assert str(info.value).startswith(key + ":"), str(info.value)


def test_no_such_key_message():
    with pytest.raises(ConfigError) as info:
        load_config({}, ["dynamics.Tx=1"])
    assert str(info.value) == "--set dynamics.Tx: no such key"


@pytest.mark.parametrize("kw", [{"replicas": 0}, {"steps": -1}, {"seed": -1}, {"threads": -2},
                                {"replicas": True}])
def test_bad_shortcuts(kw):
    (name,) = kw
    with pytest.raises(ConfigError, match=rf"^ensemble\.{name}: "):
        load_config({}, **kw)


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, "[network]\nwidths = [8,\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: not valid TOML: ") and "\n" not in msg
    assert "line" in msg or "end of document" in msg


def test_invalid_toml_duplicate_key(tmp_path):
    path = write(tmp_path, "[dynamics]\nT = 1\nT = 2\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 3"):
        load_config(path)


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_config(tmp_path)


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------

def test_constant_schedule():
    s = parse_schedule("dynamics.T", 0.5)
    assert s == Schedule("constant", values=(0.5,))
    assert s.value(0) == s.value(1e9) == 0.5 and s.nodes() == (0.5,)
    assert parse_schedule("dynamics.T", {"kind": "constant", "value": 0.5, "unit": "time"}) == s
    assert parse_schedule("dynamics.T", 2) == Schedule("constant", values=(2.0,))


def test_linear_schedule():
    s = parse_schedule("dynamics.eta", {"kind": "linear", "start": 1e-2, "end": 1e-3,
                                        "begin": 100, "until": 1100})
    assert (s.unit, s.begin, s.until) == ("steps", 100.0, 1100.0)
    assert s.value(0) == s.value(100) == 1e-2
    assert s.value(1100) == s.value(10**9) == 1e-3
    assert s.value(600) == pytest.approx(5.5e-3, rel=1e-14)
    assert s.value(350) == pytest.approx(1e-2 - 0.25 * 9e-3, rel=1e-14)
    assert s.nodes() == (1e-2, 1e-3)
    assert parse_schedule("x", {"kind": "linear", "start": 1, "end": 2, "until": 4}).begin == 0.0


def test_exponential_schedule_is_geometric():
    s = parse_schedule("dynamics.gamma", {"kind": "exponential", "start": 10.0, "end": 0.1,
                                          "begin": 0, "until": 100, "unit": "time"})
    assert s.unit == "time"
    assert s.value(-1) == 10.0 and s.value(100) == 0.1 and s.value(500) == 0.1
    assert s.value(50) == pytest.approx(1.0, rel=1e-14)  # geometric mean, not 5.05
    assert s.value(25) == pytest.approx(10 ** 0.5, rel=1e-14)
    ratios = [s.value(x + 10) / s.value(x) for x in range(0, 90, 10)]
    assert ratios == pytest.approx([10 ** -0.2] * 9, rel=1e-12)  # constant ratio per interval


def test_piecewise_boundaries():
    s = parse_schedule("dynamics.T", {"kind": "piecewise", "at": [10, 20.5],
                                      "values": [0.3, 0.2, 0.1], "unit": "time"})
    assert s.at == (10.0, 20.5) and s.values == (0.3, 0.2, 0.1)
    assert s.value(0) == s.value(9.999) == 0.3
    assert s.value(10) == 0.2  # at[i-1] <= x < at[i]
    assert s.value(20.4999) == 0.2
    assert s.value(20.5) == s.value(1e6) == 0.1
    assert s.nodes() == (0.3, 0.2, 0.1)


def test_schedules_are_checked_at_every_node():
    ok = {"kind": "piecewise", "at": [5], "values": [0.5, 0.0]}
    assert load_config(dyn(integrator="heavy_ball", beta=ok)).dynamics.beta.value(5) == 0.0
    with pytest.raises(ConfigError, match=r"^dynamics\.eta: must be > 0\.0 at every node, got 0\.0$"):
        load_config(dyn(eta=ok))


# --------------------------------------------------------------------------------------------
# The documentation's examples load
# --------------------------------------------------------------------------------------------

def test_docs_examples_load(workdir):
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        cfg = load_config(write(workdir, block, f"doc{i}.toml"))
        assert isinstance(cfg, Config)
    complete = load_config(write(workdir, blocks[-1], "complete.toml"))
    assert complete.network.widths == (32,) * 9
    assert complete.data.teacher.sigma_w2 == 1.0 and complete.network.sigma_w2 == 1.5
    assert complete.dynamics.eta.value(5000) == pytest.approx(10 ** -2.5)
    assert complete.dynamics.T.value(50.0) == 0.0
