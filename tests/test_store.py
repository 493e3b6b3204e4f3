"""The store: memory and HDF5 writers give identical readers; commit, resume, layout, errors."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from langevin_nn.errors import FormatError, UserError
from langevin_nn.store import (FORMAT_NAME, FORMAT_VERSION, Cadence, Ensemble, HDF5Writer,
                               MemoryWriter, Schema, Var, format_info, open_ensemble)

R_GLOBAL = np.array([4, 5, 6], dtype=np.int64)  # a shard holding global replicas 4..6
N_PAR, K, N1, M = 5, 3, 4, 2
DT = 0.01
#: How docs/format.md opens a file with xarray while something else holds it (here: ``ens``).
NO_LOCK = {"locking": False}

SCHEMA = Schema(
    cadences=(
        Cadence("records", "record", 10, (
            Var("loss_train", (), "float64", "training loss (dimensionless)"),
            Var("w_norm2", ("link",), "float32", "squared Frobenius norm of each link's weights"),
            Var("n_bad", (), "int32", "non-finite entries seen"),
        )),
        Cadence("snapshots", "snapshot", 50, (
            Var("theta", ("param",), "float64", "all parameters"),
        )),
        Cadence("probe_z", "zrecord", 25, (
            Var("z_1", ("probe", "neuron_1"), "float32", "pre-activations of layer 1 on the probe set"),
        )),
    ),
    coords={"link": np.arange(M), "layer": np.arange(1, M + 1), "param": np.arange(N_PAR),
            "probe": np.arange(K), "neuron_1": np.arange(N1)},
    state={"theta": (("param",), "float64"), "momentum": (("param",), "float64"),
           "diverged": ((), "bool"), "diverged_step": ((), "int64")},
    state_scalars={"step": "int64", "time": "float64"},
)
ATTRS = {"config_text": "[run]\nsteps = 100\n", "config_effective": "[run]\nsteps = 100\nseed = 7\n",
         "config_hash": "c0ffee", "seed": 7, "package_version": "0.1.0", "n_replicas_total": 8}
STATIC = {"network/w_offset": np.array([0, 3, 7]), "data/X_train": np.linspace(0, 1, 12).reshape(6, 2),
          "network/activation": np.array(["tanh", "relu"])}


def _values(group: str, steps: np.ndarray) -> dict[str, np.ndarray]:
    """Deterministic record values: a pure function of (group, step), so a resumed run can
    regenerate exactly what an uninterrupted one wrote."""
    cad = SCHEMA.cadence(group)
    out = {}
    for v in cad.vars:
        block = [np.random.default_rng([int(s), len(v.name)]).normal(size=(len(R_GLOBAL), *SCHEMA.shape(v.dims)))
                 for s in steps]
        arr = np.stack(block, axis=1) if block else np.zeros((len(R_GLOBAL), 0, *SCHEMA.shape(v.dims)))
        out[v.name] = (arr * 100).astype(v.dtype) if np.dtype(v.dtype).kind == "i" else arr.astype(v.dtype)
    return out


def _state(step: int) -> tuple[dict, dict]:
    rng = np.random.default_rng([step, 99])
    diverged = np.array([False, step >= 40, False])
    state = {"theta": rng.normal(size=(3, N_PAR)), "momentum": rng.normal(size=(3, N_PAR)),
             "diverged": diverged, "diverged_step": np.where(diverged, 40, -1)}
    return state, {"step": step, "time": step * DT}


def _drive(writer, start: int, stop: int, chunk: int = 20, checkpoint: bool = True) -> None:
    """The driver's loop: per chunk of steps, append the entries of each cadence that fall in
    it (often none), then checkpoint the state after the chunk."""
    for a in range(start, stop, chunk):
        b = min(a + chunk, stop)
        for cad in SCHEMA.cadences:
            steps = np.array([s for s in range(a, b) if s % cad.every == 0], dtype=np.int64)
            writer.append(cad.group, steps, steps * DT, _values(cad.group, steps))
        if checkpoint:
            writer.checkpoint(*_state(b))


def _create(path, **kw) -> HDF5Writer:
    return HDF5Writer.create(path, attrs=ATTRS, schema=SCHEMA, replicas=R_GLOBAL, static=STATIC, **kw)


def _memory() -> MemoryWriter:
    return MemoryWriter(attrs=ATTRS, schema=SCHEMA, replicas=R_GLOBAL, static=STATIC)


def _names(ens: Ensemble) -> list[str]:
    names = []
    for group in ens.groups():
        names += [f"{group}/{v}" for v in ens.vars(group)]
    for cad in ens.schema.cadences:
        names += [f"{cad.group}/{n}" for n in ("step", "time", "replica", cad.dim)]
        names += [f"{cad.group}/{d}" for d in dict.fromkeys(d for v in cad.vars for d in v.dims)]
    return names


def assert_same(a: Ensemble, b: Ensemble) -> None:
    """Every dataset of two readers equal, bit for bit, with the same dtype."""
    drop = {"created"}
    assert {k: v for k, v in a.attrs.items() if k not in drop} == {k: v for k, v in b.attrs.items() if k not in drop}
    assert a.groups() == b.groups()
    assert _names(a) == _names(b)
    assert a.steps_done == b.steps_done and a.time_done == b.time_done
    np.testing.assert_array_equal(a.replicas, b.replicas)
    for name in _names(a):
        x, y = a.read(name), b.read(name)
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape == a.shape(name) == b.shape(name), name
        np.testing.assert_array_equal(x, y, err_msg=name)
    sa, sb = a.state(), b.state()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].shape == sb[k].shape, k
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


# ---- (1) memory and HDF5 give the same reader --------------------------------------------


def test_memory_and_hdf5_writers_agree(tmp_path):
    path = tmp_path / "run.h5"
    mem, h5 = _memory(), _create(path)
    for w in (mem, h5):
        _drive(w, 0, 100)
        w.close()
    with open_ensemble(path) as ens:
        ref = mem.reader()
        assert_same(ref, ens)
        # the file describes itself: the schema read back is the one written
        assert [(c.group, c.dim, c.every) for c in ens.schema.cadences] == \
               [(c.group, c.dim, c.every) for c in SCHEMA.cadences]
        for c, d in zip(ens.schema.cadences, SCHEMA.cadences):
            assert [(v.name, v.dims, np.dtype(v.dtype), v.doc) for v in c.vars] == \
                   [(v.name, v.dims, np.dtype(v.dtype), v.doc) for v in d.vars]
        assert ens.schema.state == SCHEMA.state and ens.schema.state_scalars == SCHEMA.state_scalars
        for d in ("link", "param", "probe", "neuron_1"):
            np.testing.assert_array_equal(ens.schema.coords[d], SCHEMA.coords[d])
        # content checks, beyond agreement
        assert ens.steps_done == 100 and ens.time_done == pytest.approx(1.0)
        np.testing.assert_array_equal(ens["records/step"], np.arange(0, 100, 10))
        np.testing.assert_array_equal(ens["snapshots/step"], [0, 50])
        np.testing.assert_array_equal(ens["probe_z/step"], [0, 25, 50, 75])
        np.testing.assert_array_equal(ens["records/replica"], R_GLOBAL)
        np.testing.assert_array_equal(ens["network/activation"], STATIC["network/activation"])
        np.testing.assert_array_equal(ens["records/w_norm2"], _values("records", np.arange(0, 100, 10))["w_norm2"])
        assert ens.shape("probe_z/z_1") == (3, 4, K, N1)
        assert ens.config_text == ATTRS["config_text"] and ens.config_hash == "c0ffee"
        assert ens.attrs["format"] == FORMAT_NAME and ens.attrs["format_version"] == FORMAT_VERSION


SELECTIONS = [(slice(None), slice(None)), ([2, 0], slice(2, None, 3)), (1, -1), (slice(None, None, -1), [4, 1, 1]),
              (np.array([True, False, True]), np.arange(3)), ([0, 2, 1], [5, 3]), (slice(0, 0), slice(None)),
              (-1, slice(8, 100))]


@pytest.mark.parametrize("replicas,index", SELECTIONS)
def test_read_selections_follow_numpy(tmp_path, replicas, index):
    path = tmp_path / "run.h5"
    with _create(path) as w:
        _drive(w, 0, 100)
    mem = _memory()
    _drive(mem, 0, 100)
    with open_ensemble(path) as ens:
        for reader in (ens, mem.reader()):
            full = reader.read("records/w_norm2")
            want = full[replicas] if isinstance(replicas, int) else full[np.arange(3)[replicas]]
            want = want[:, index] if not isinstance(replicas, int) else want[index]
            got = reader.read("records/w_norm2", replicas=replicas, index=index)
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(ens.read("records/step", index=-1), 90)
        np.testing.assert_array_equal(ens.read("state/theta", replicas=[2, 0]), ens.state()["theta"][[2, 0]])
        assert ens.shape("state/slot1/theta") == ens.shape("state/theta") == (3, N_PAR)
        with pytest.raises(ValueError):
            ens.read("data/X_train", replicas=[0])
        with pytest.raises(IndexError):
            ens.read("records/step", index=10)


# ---- (2) commit and resume ---------------------------------------------------------------


def test_uncommitted_entries_are_invisible_and_discarded_by_resume(tmp_path):
    path = tmp_path / "run.h5"
    w = _create(path)
    _drive(w, 0, 60)                          # committed up to step 60
    _drive(w, 60, 85, checkpoint=False)       # entries at 60..80: never committed
    with open_ensemble(path) as ens:          # in-process reader while the writer holds the file
        assert ens.steps_done == 60
        np.testing.assert_array_equal(ens["records/step"], np.arange(0, 60, 10))
        np.testing.assert_array_equal(ens["probe_z/step"], [0, 25, 50])
        assert "+3 uncommitted" in format_info(ens)
    _drive(w, 85, 95, checkpoint=False)       # closing that reader left the writer working
    w.close()
    with h5py.File(path, "r") as f:
        assert f["records/loss_train"].shape == (3, 10) and f["records/step"].shape == (10,)

    w = HDF5Writer.resume(path)
    with h5py.File(path, "r", locking="best-effort") as f:  # resized back to the committed length
        assert f["records/loss_train"].shape == (3, 6) and f["records/record"].shape == (6,)
        assert f["probe_z/z_1"].shape[1] == 3
    np.testing.assert_array_equal(w.reader().state()["theta"], _state(60)[0]["theta"])
    _drive(w, 60, 100)
    w.close()

    mem = _memory()
    _drive(mem, 0, 100)
    with open_ensemble(path) as ens:
        assert_same(mem.reader(), ens)
        np.testing.assert_array_equal(ens["records/record"], np.arange(10))


def test_kill_during_checkpoint_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    w = _create(path)
    _drive(w, 0, 40)

    def killed(self, k, entries):
        raise KeyboardInterrupt

    monkeypatch.setattr(HDF5Writer, "_commit", killed)
    with pytest.raises(KeyboardInterrupt):
        _drive(w, 40, 60)                     # the slot is written, the flag never flipped
    w.close()
    with open_ensemble(path) as ens:
        assert ens.steps_done == 40
        np.testing.assert_array_equal(ens["state/theta"], _state(40)[0]["theta"])
        np.testing.assert_array_equal(ens["records/step"], [0, 10, 20, 30])


def test_resume_without_checkpoint_starts_empty(tmp_path):
    path = tmp_path / "run.h5"
    w = _create(path)
    _drive(w, 0, 30, checkpoint=False)
    w.close()
    with open_ensemble(path) as ens:
        assert ens.steps_done == 0 and ens.state() == {} and ens.shape("records/loss_train") == (3, 0, )
        assert "no committed checkpoint" in format_info(ens)
        with pytest.raises(UserError, match="no committed checkpoint"):
            ens.read("state/theta")
    HDF5Writer.resume(path).close()
    with h5py.File(path, "r") as f:
        assert f["records/step"].shape == (0,)


# ---- (3) xarray sees labelled arrays ------------------------------------------------------


def test_xarray_opens_every_group(tmp_path):
    xr = pytest.importorskip("xarray", reason="xarray is needed to check netCDF-style dimensions")
    pytest.importorskip("h5netcdf", reason="h5netcdf is needed to check netCDF-style dimensions")
    path = tmp_path / "run.h5"
    with _create(path) as w:
        _drive(w, 0, 100)
    expected = {
        "records": {"loss_train": ("replica", "record"), "w_norm2": ("replica", "record", "link"),
                    "n_bad": ("replica", "record")},
        "snapshots": {"theta": ("replica", "snapshot", "param")},
        "probe_z": {"z_1": ("replica", "zrecord", "probe", "neuron_1")},
        "state": {"committed": (), "committed_entries": ("cadence",)},
        "state/slot0": {"theta": ("replica", "param"), "momentum": ("replica", "param"), "diverged": ("replica",),
                        "diverged_step": ("replica",), "step": (), "time": (), "entries": ("cadence",)},
    }
    expected["state/slot1"] = expected["state/slot0"]
    with open_ensemble(path) as ens:
        for group, variables in expected.items():
            with xr.open_dataset(path, engine="h5netcdf", group=group, driver_kwds=NO_LOCK) as ds:
                assert not [d for d in ds.dims if "phony" in str(d)], (group, ds.dims)
                for name, dims in variables.items():
                    assert ds[name].dims == dims, (group, name)
                if group in ("records", "snapshots", "probe_z"):
                    np.testing.assert_array_equal(ds["replica"], R_GLOBAL)
                    for name in variables:
                        np.testing.assert_array_equal(ds[name].values, ens[f"{group}/{name}"])
                        np.testing.assert_array_equal(ds[name]["step"], ens[f"{group}/step"])  # step, time are coords
                        assert ds[name].attrs["description"]
                    dim = ens.schema.cadence(group).dim
                    np.testing.assert_array_equal(ds[dim], np.arange(ens.entries[group]))
                for d in ("link", "param", "probe", "neuron_1"):
                    if d in ds.coords:
                        np.testing.assert_array_equal(ds[d], SCHEMA.coords[d])
                if group == "state":
                    assert list(ds["cadence"].values) == ["records", "snapshots", "probe_z"]
                    np.testing.assert_array_equal(ds["committed_entries"], [10, 2, 4])
        with xr.open_dataset(path, engine="h5netcdf", group="state/slot1", driver_kwds=NO_LOCK) as ds:  # 5 checkpoints: 0,1,0,1,0
            np.testing.assert_array_equal(ds["step"], 80)
        with xr.open_dataset(path, engine="h5netcdf", group="state/slot0", driver_kwds=NO_LOCK) as ds:
            np.testing.assert_array_equal(ds["theta"], ens.state()["theta"])
            assert ds["diverged"].dtype == bool
    with xr.open_dataset(path, engine="h5netcdf", group="records") as ds, open_ensemble(path) as ens:
        np.testing.assert_array_equal(ds["loss_train"], ens["records/loss_train"])  # the other way round


def test_layout_chunks_compression_libver(tmp_path):
    path = tmp_path / "run.h5"
    with _create(path) as w:
        _drive(w, 0, 40)
    with h5py.File(path, "r") as f:
        assert f.id.get_create_plist().get_version()[0] <= 2  # superblock readable by HDF5 1.8
        for name in ("records/loss_train", "records/w_norm2", "snapshots/theta", "probe_z/z_1"):
            ds = f[name]
            assert ds.chunks[0] <= 64 and ds.maxshape[1] is None
            # growing data stay uncompressed: a kill can then only spoil uncommitted entries
            assert ds.compression is None
            assert 64 * 1024 <= np.prod(ds.chunks) * ds.dtype.itemsize <= 1024 * 1024
        assert f["records/step"].maxshape == (None,)
        assert f["records"].attrs["every"] == 10 and f["records"].attrs["dimension"] == "record"
        assert f["state/committed"][()] in (0, 1) and f["state/committed"].dtype == np.int8
        assert f.attrs["created"].endswith("Z")


# ---- (4) no accidental overwrite ----------------------------------------------------------


def test_create_refuses_existing_path(tmp_path):
    path = tmp_path / "run.h5"
    path.write_bytes(b"precious")
    with pytest.raises(UserError, match="exists \\(use --overwrite\\)") as err:
        _create(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == b"precious"
    _create(path, overwrite=True).close()
    with open_ensemble(path) as ens:
        assert ens.steps_done == 0 and ens.shape("records/step") == (0,)


# ---- (5) foreign, broken and missing files -------------------------------------------------


def test_open_rejects_foreign_broken_missing(tmp_path):
    real = tmp_path / "real.h5"
    with _create(real) as w:
        _drive(w, 0, 100)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    no_state = tmp_path / "no_state.h5"
    with h5py.File(no_state, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
    newer = tmp_path / "newer.h5"
    shutil.copy(real, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5\n")
    truncated = tmp_path / "truncated.h5"
    data = real.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for path, error in ((foreign, FormatError), (no_state, FormatError), (newer, FormatError), (text, FormatError),
                        (truncated, FormatError), (tmp_path / "missing.h5", UserError)):
        with pytest.raises(error) as err:
            open_ensemble(path)
        message = str(err.value)
        assert str(path) in message and "\n" not in message, message
        with pytest.raises(error):
            HDF5Writer.resume(path)


# ---- (6) the info summary ------------------------------------------------------------------


def test_format_info_reports_key_facts(tmp_path):
    path = tmp_path / "run.h5"
    with _create(path) as w:
        _drive(w, 0, 100)
    with open_ensemble(path) as ens:
        text = format_info(ens)
    for fact in (FORMAT_NAME, f"version {FORMAT_VERSION}", "langevin_nn 0.1.0", "c0ffee", "replicas:      3 (4..6)",
                 "steps done:    100 (time 1)", "records/  every 10 steps, 10 entries", "snapshots/  every 50 steps",
                 "probe_z/  every 25 steps, 4 entries", "z_1", "(replica, zrecord, probe, neuron_1) = (3, 4, 3, 4)",
                 "diverged:      1 of 3 replicas: replica 5 at step 40", "data/  static", "X_train",
                 "seed             7", "n_replicas_total 8", "config_text      (3 lines of text)"):
        assert fact in text, (fact, text)


# ---- (7) zero-length appends, several cadences ----------------------------------------------


def test_zero_length_append_and_independent_cadences(tmp_path):
    path = tmp_path / "run.h5"
    mem = _memory()
    with _create(path) as h5:
        for w in (mem, h5):
            w.append("snapshots", np.zeros(0, np.int64), np.zeros(0), _values("snapshots", np.zeros(0, np.int64)))
            w.append("records", [0, 10], [0.0, 0.1], _values("records", np.array([0, 10])))
            w.append("probe_z", [0], [0.0], _values("probe_z", np.array([0])))
            w.append("records", [20], [0.2], _values("records", np.array([20])))
            w.checkpoint(*_state(25))
        with pytest.raises(ValueError, match="missing vars"):
            h5.append("records", [30], [0.3], {})
        with pytest.raises(ValueError, match="shape"):
            h5.append("records", [30], [0.3], _values("records", np.array([30, 40])))
    with open_ensemble(path) as ens:
        assert_same(mem.reader(), ens)
        assert ens.entries == {"records": 3, "snapshots": 0, "probe_z": 1}
        assert ens.shape("snapshots/theta") == (3, 0, N_PAR)
        np.testing.assert_array_equal(ens["records/step"], [0, 10, 20])


# ---- live inspection from another process -------------------------------------------------


def test_other_process_reads_while_run_writes_but_cannot_write(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "run.h5"
    code = f"""
from langevin_nn.store import open_ensemble, HDF5Writer
from langevin_nn.errors import UserError
with open_ensemble({str(path)!r}) as ens:
    print(ens.steps_done, ens.shape("records/loss_train"))
try:
    HDF5Writer.resume({str(path)!r})
except UserError as e:
    print("UserError", e)
"""
    with _create(path) as w:
        _drive(w, 0, 40)
        _drive(w, 40, 60, checkpoint=False)
        root = str(Path(__file__).resolve().parents[1])
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": root}, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "40 (3, 4)"
    assert lines[1].startswith("UserError") and "locked by another process" in lines[1]
