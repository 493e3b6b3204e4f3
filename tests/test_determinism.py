"""The randomness contract's consequences, bit for bit (datasets, not file bytes):
the same run with 1 or 2 threads, the first replicas of a larger ensemble, any chunking,
and the memory and HDF5 writers all give identical data."""
from __future__ import annotations

import numba
import pytest

from helpers import assert_same, dump, merge, run_memory
from langevin_nn import open_ensemble
from langevin_nn.config import load_config
from langevin_nn.simulate import run

CASES = {
    "sgld_minibatch": {
        "network": {"architecture": "dense", "widths": [5, 7, 6, 2], "activation": "tanh",
                    "sigma_b2": 0.05},
        "data": {"n_train": 40, "n_probe": 6, "batch": 3, "label_noise": 0.1},
        "dynamics": {"integrator": "overdamped", "eta": 0.05, "T": 1e-3},
    },
    "baoab_online_local": {
        "network": {"architecture": "local", "width": 6, "depth": 3, "activation": "erf"},
        "data": {"online": True, "n_probe": 5, "batch": 2, "loss": "cross_entropy"},
        "dynamics": {"integrator": "underdamped", "dt": 0.05, "gamma": 1.0, "T": 1e-3,
                     "lambda": 0.01},
    },
    "heavy_ball_sft2": {
        "network": {"architecture": "sft2", "width": 4},
        "data": {"n_train": 16, "n_probe": 4, "batch": "full", "reduction": "sum"},
        "dynamics": {"integrator": "heavy_ball", "eta": 0.002, "beta": 0.5, "T": 1e-3},
    },
}
RECORDING = {"every": 3, "snapshot_every": 6, "probe_z_every": 6}


def case(name, replicas=8, steps=25, chunk=0, seed=11):
    return merge(CASES[name], {"ensemble": {"replicas": replicas, "steps": steps, "seed": seed,
                                            "chunk": chunk},
                               "recording": RECORDING})


@pytest.fixture(params=sorted(CASES))
def name(request):
    return request.param


def test_thread_count_does_not_change_data(name):
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = dump(run_memory(case(name))[1])
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = dump(run_memory(case(name))[1])
    finally:
        numba.set_num_threads(threads)
    assert_same(one, two)


def test_first_replicas_equal_a_smaller_ensemble(name):
    big = dump(run_memory(case(name, replicas=8))[1], replicas=slice(0, 4))
    small = dump(run_memory(case(name, replicas=4))[1])
    assert_same(big, small)


def test_chunking_does_not_change_data(name):
    ref = dump(run_memory(case(name, chunk=1))[1])
    for chunk in (7, 25, 0):
        assert_same(dump(run_memory(case(name, chunk=chunk))[1]), ref)


def test_hdf5_file_holds_the_same_data_as_memory(tmp_path):
    cfg = load_config(case("sgld_minibatch"))
    mem = dump(run(cfg, None, progress=False).writer.reader())
    run(cfg, tmp_path / "ens.h5", progress=False)
    with open_ensemble(tmp_path / "ens.h5") as ens:
        assert ens.steps_done == 25
        assert ens.config_hash == cfg.hash
        assert_same(dump(ens), mem)


def test_seed_changes_data():
    a = dump(run_memory(case("sgld_minibatch", seed=1))[1])
    b = dump(run_memory(case("sgld_minibatch", seed=2))[1])
    assert (a["records/loss_batch"] != b["records/loss_batch"]).all()
