"""Shards, merge and resume: the merged ensemble and a resumed or extended run equal a single
uninterrupted single-process run bit for bit."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from helpers import assert_same, dump
from langevin_nn import open_ensemble
from langevin_nn.config import load_config
from langevin_nn.errors import UserError
from langevin_nn.merge import merge
from langevin_nn.simulate import run

TABLE = {
    "network": {"architecture": "dense", "widths": [4, 6, 3], "activation": "tanh"},
    "data": {"n_train": 20, "n_probe": 4, "batch": 2},
    "dynamics": {"integrator": "underdamped", "dt": 0.05, "gamma": 1.0, "T": 1e-3},
    "ensemble": {"replicas": 7, "steps": 30, "seed": 4},
    "recording": {"every": 5, "snapshot_every": 10, "probe_z_every": 10},
}


def cfg(**ens):
    t = {k: dict(v) for k, v in TABLE.items()}
    t["ensemble"].update(ens)
    return load_config(t)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "ens.h5"
    run(cfg(), path, progress=False)
    with open_ensemble(path) as ens:
        return dump(ens)


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    paths = [str(d / f"s{i}.h5") for i in range(4)]
    for i, p in enumerate(paths):
        run(cfg(), p, shard=(i, 4), progress=False)
    return paths


@pytest.mark.parametrize("copy", [False, True])
def test_merged_shards_equal_single_run(single, shard_files, tmp_path, copy):
    out = tmp_path / "merged.h5"
    merge(shard_files[::-1], out, copy=copy)  # order of the arguments does not matter
    with open_ensemble(out) as ens:
        assert list(ens.replicas) == list(range(7))
        assert_same(dump(ens), single)
    with h5py.File(out, "r") as f:
        assert f["records/loss_probe"].is_virtual != copy
    if not copy:  # the virtual file is read from any working directory
        cwd = os.getcwd()
        try:
            os.chdir(tmp_path.parent)
            with open_ensemble(out) as ens:
                assert_same(dump(ens), single)
        finally:
            os.chdir(cwd)


def test_xarray_reads_merged_file(shard_files, tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    out = tmp_path / "merged.h5"
    merge(shard_files, out)
    ds = xr.open_dataset(out, engine="h5netcdf", group="records")
    assert ds["loss_probe"].dims == ("replica", "record")
    assert ds.sizes["replica"] == 7


def test_merge_refuses_incomplete_or_foreign_sets(shard_files, tmp_path):
    with pytest.raises(UserError, match="no shard given|are in no shard"):
        merge(shard_files[:3], tmp_path / "a.h5")
    other = str(tmp_path / "other.h5")
    run(cfg(seed=5), other, shard=(3, 4), progress=False)
    with pytest.raises(UserError, match="other.h5: belongs to another config"):
        merge(shard_files[:3] + [other], tmp_path / "b.h5")
    with pytest.raises(UserError, match="overlap"):
        merge(shard_files + [shard_files[1]], tmp_path / "c.h5")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()


def test_resume_extends_a_finished_run(single, tmp_path):
    path = tmp_path / "ext.h5"
    run(cfg(steps=10), path, progress=False)
    res = run(cfg(steps=30), path, resume=True, progress=False)
    assert res.steps_done == 30 and not res.already_done
    with open_ensemble(path) as ens:
        assert_same(dump(ens), single)
    again = run(cfg(steps=30), path, resume=True, progress=False)
    assert again.already_done


def test_resume_without_file_starts_fresh(single, tmp_path):
    path = tmp_path / "fresh.h5"
    run(cfg(), path, resume=True, progress=False)
    with open_ensemble(path) as ens:
        assert_same(dump(ens), single)


def test_resume_refuses_another_config(tmp_path):
    path = tmp_path / "x.h5"
    run(cfg(steps=5), path, progress=False)
    before = path.read_bytes()
    t = {k: dict(v) for k, v in TABLE.items()}
    t["dynamics"]["T"] = 2e-3
    with pytest.raises(UserError, match="another config"):
        run(load_config(t), path, resume=True, progress=False)
    with pytest.raises(UserError, match="another --shard"):
        run(cfg(steps=5), path, resume=True, shard=(1, 2), progress=False)
    assert path.read_bytes() == before


def test_shard_replicas_are_contiguous_blocks():
    from langevin_nn.simulate import shard_replicas
    blocks = [shard_replicas(10, (i, 3)) for i in range(3)]
    assert [list(b) for b in blocks] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(UserError):
        shard_replicas(3, (0, 4))
    np.testing.assert_array_equal(shard_replicas(5, None), np.arange(5))
