"""Data sources (file, digits, teacher-student finite and online) and the bookkeeping of a run:
branching from another ensemble file, divergence flags, schedules and the recorded time."""
from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

import naive
from helpers import assert_same, dump, merge, run_memory
from langevin_nn import open_ensemble, rng
from langevin_nn import run as run_file
from langevin_nn.boundary import losses
from langevin_nn.bulk.networks import build_layout
from langevin_nn.config import load_config
from langevin_nn.errors import UserError

#: A tiny teacher-student problem (3 inputs, one hidden layer of 4, scalar output).
TINY = {
    "network": {"architecture": "dense", "widths": [3, 4, 1], "sigma_b2": 0.1},
    "data": {"n_train": 16, "n_probe": 5, "batch": 4, "loss": "mse"},
    "dynamics": {"integrator": "overdamped", "eta": 0.05},
    "ensemble": {"replicas": 3, "steps": 10, "seed": 11},
    "recording": {"every": 1, "snapshot_every": 1},
}


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ------------------------------------------------------------------------------ file source

def _file_arrays(n=24, n0=3, n_out=1, seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, n0)), g.normal(size=(n, n_out))


@pytest.mark.parametrize("ext", ["npz", "h5"])
def test_file_source_probe_is_last_rows(tmp_path, ext):
    X, Y = _file_arrays()
    data = tmp_path / f"data.{ext}"
    if ext == "npz":
        np.savez(data, X=X, Y=Y[:, 0])  # a 1-d Y for a scalar output
    else:
        with h5py.File(data, "w") as f:
            f["X"], f["Y"] = X, Y
    K = 5
    table = merge(TINY, {"data": {"source": "file", "path": str(data), "n_train": None,
                                  "n_probe": K, "batch": 4},
                         "ensemble": {"steps": 3}})
    table["data"].pop("n_train")
    out = tmp_path / "run.h5"
    res = run_file(table, str(out), progress=False)
    assert res.steps_done == 3
    with open_ensemble(out) as ens:
        np.testing.assert_array_equal(ens.read("data/X_train"), X[:-K])
        np.testing.assert_array_equal(ens.read("data/Y_train"), Y[:-K])
        np.testing.assert_array_equal(ens.read("data/X_probe"), X[-K:])
        np.testing.assert_array_equal(ens.read("data/Y_probe"), Y[-K:])
        assert ens.attrs["data_source"] == "file"
        assert ens.attrs["data_path"] == str(data.resolve())
        assert ens.attrs["data_sha256"] == sha256(data)
        assert np.all(np.isfinite(ens.read("records/loss_probe")))
        assert "data/teacher_theta" not in [f"data/{v}" for v in ens.vars("data")]


@pytest.mark.parametrize("ext", ["npz", "hdf5"])
def test_file_source_with_probe_arrays_and_n_train(tmp_path, ext):
    X, Y = _file_arrays(20, 3, 2, seed=1)
    Xp, Yp = _file_arrays(6, 3, 2, seed=2)
    data = tmp_path / f"data.{ext}"
    if ext == "npz":
        np.savez(data, X=X, Y=Y, X_probe=Xp, Y_probe=Yp)
    else:
        with h5py.File(data, "w") as f:
            f["X"], f["Y"], f["X_probe"], f["Y_probe"] = X, Y, Xp, Yp
            f["group/ignored"] = np.zeros(3)
    table = merge(TINY, {"network": {"widths": [3, 4, 2]},
                         "data": {"source": "file", "path": str(data), "n_train": 12,
                                  "batch": "full"},
                         "ensemble": {"steps": 2}})
    table["data"].pop("n_probe")
    out = tmp_path / "run.h5"
    run_file(table, str(out), progress=False)
    with open_ensemble(out) as ens:
        np.testing.assert_array_equal(ens.read("data/X_train"), X[:12])
        np.testing.assert_array_equal(ens.read("data/Y_train"), Y[:12])
        np.testing.assert_array_equal(ens.read("data/X_probe"), Xp)
        np.testing.assert_array_equal(ens.read("data/Y_probe"), Yp)
        assert ens.attrs["data_path"] == str(data.resolve())
        assert ens.attrs["data_sha256"] == sha256(data)
        # full batch: the minibatch loss is the training loss
        np.testing.assert_allclose(ens.read("records/loss_batch"), ens.read("records/loss_train"),
                                   rtol=1e-12)


def test_file_source_bad_contents_name_the_file(tmp_path):
    X, Y = _file_arrays()
    cases = {
        "wide.npz": dict(X=np.hstack([X, X]), Y=Y),
        "noy.npz": dict(X=X),
        "rows.npz": dict(X=X, Y=Y[:-1]),
        "nan.npz": dict(X=np.where(X > 1, np.nan, X), Y=Y),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        table = merge(TINY, {"data": {"source": "file", "path": str(tmp_path / name),
                                      "n_probe": 5}})
        table["data"].pop("n_train")
        cfg = load_config(table)
        out = tmp_path / f"{name}.h5"
        with pytest.raises(UserError) as e:
            run_file(cfg, str(out), progress=False)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(str(tmp_path / name)), msg
        assert not out.exists()
    (tmp_path / "junk.h5").write_text("not hdf5")
    table = merge(TINY, {"data": {"source": "file", "path": str(tmp_path / "junk.h5")}})
    table["data"].pop("n_train")
    with pytest.raises(UserError, match="junk.h5"):
        run_memory(table)


# ------------------------------------------------------------------------------ digits

def test_digits_source():
    pytest.importorskip("sklearn", reason="the digits source needs scikit-learn")
    table = {"network": {"widths": [64, 16, 10]},
             "data": {"source": "digits", "loss": "cross_entropy", "n_train": 200,
                      "n_probe": 50, "batch": 16},
             "dynamics": {"eta": 0.05},
             "ensemble": {"replicas": 2, "steps": 20, "seed": 3},
             "recording": {"every": 10}}
    cfg, rd, res = run_memory(table)
    assert res.steps_done == 20
    Xt, Yt = rd.read("data/X_train"), rd.read("data/Y_train")
    Xp, Yp = rd.read("data/X_probe"), rd.read("data/Y_probe")
    assert Xt.shape == (200, 64) and Yt.shape == (200, 10)
    assert Xp.shape == (50, 64) and Yp.shape == (50, 10)
    np.testing.assert_array_equal(Yt.sum(axis=1), 1.0)
    lp = rd.read("records/loss_probe")
    assert lp.shape == (2, 3) and np.all(np.isfinite(lp)) and np.all(lp > 0)
    assert rd.attrs["data_source"] == "digits"
    # the probe set is the last 50 of the 1797 digits
    from sklearn.datasets import load_digits
    np.testing.assert_array_equal(np.argmax(Yp, axis=1), load_digits().target[-50:])


# ------------------------------------------------------------------------------ online teacher

ONLINE = merge(TINY, {"data": {"online": True, "batch": 4, "n_probe": 6},
                      "network": {"widths": [3, 5, 1]},
                      "ensemble": {"replicas": 2, "steps": 6}})
ONLINE["data"].pop("n_train")


def test_online_reproducible_and_shares_probe_set():
    _, rd1, _ = run_memory(ONLINE)
    _, rd2, _ = run_memory(ONLINE)
    assert_same(dump(rd1), dump(rd2))
    assert rd1.attrs["data_online"] in (True, "True", 1)
    assert "X_train" not in rd1.vars("data")
    finite = merge(ONLINE, {"data": {"online": False, "n_train": 32}})
    _, rd3, _ = run_memory(finite)
    for name in ("data/X_probe", "data/Y_probe", "data/teacher_theta"):
        np.testing.assert_array_equal(rd1.read(name), rd3.read(name), err_msg=name)
    # same seed, same initial networks, but other training data: other minibatch losses
    np.testing.assert_array_equal(rd1.read("snapshots/theta")[:, 0],
                                  rd3.read("snapshots/theta")[:, 0])
    np.testing.assert_array_equal(rd1.read("records/loss_probe")[:, 0],
                                  rd3.read("records/loss_probe")[:, 0])
    lb1, lb3 = rd1.read("records/loss_batch"), rd3.read("records/loss_batch")
    assert np.all(np.isfinite(lb1)) and np.all(np.isfinite(lb3))
    assert not np.any(lb1 == lb3)


def test_online_minibatch_is_teacher_on_fresh_gaussians():
    table = merge(ONLINE, {"data": {"label_noise": 0.3, "teacher": {"widths": [3, 2, 1],
                                                                    "sigma_w2": 2.0}},
                           "dynamics": {"T": 0.0}})
    cfg, rd, _ = run_memory(table)
    seed, B = cfg.ensemble.seed, cfg.data.batch
    n0, nm = cfg.network.widths[0], cfg.network.widths[-1]
    student = build_layout(cfg.network)
    teacher = build_layout(cfg.data.teacher)
    for key, arr in teacher.static().items():
        np.testing.assert_array_equal(rd.read(key.replace("network/", "data/teacher/")), arr,
                                      err_msg=key)
    ttheta = rd.read("data/teacher_theta")
    assert ttheta.shape == (teacher.n_par,)
    snaps = rd.read("snapshots/theta")
    lb = rd.read("records/loss_batch")
    assert np.array_equal(rd.read("records/step"), np.arange(cfg.ensemble.steps + 1))
    for r in range(cfg.ensemble.replicas):
        for s in range(cfg.ensemble.steps):
            X = rng.gaussians(seed, rng.ONLINE_X, r, s, B * n0).reshape(B, n0)
            _, ht = naive.forward(cfg.data.teacher, teacher, ttheta, X)
            noise = rng.gaussians(seed, rng.ONLINE_LABEL, r, s, B * nm).reshape(B, nm)
            Y = losses.target_map("mse", ht[-1] + cfg.data.label_noise * noise)
            want = naive.loss_value(cfg.network, student, snaps[r, s], X, Y, "mse")
            np.testing.assert_allclose(lb[r, s], want, rtol=1e-12, err_msg=f"replica {r} step {s}")
    # T = 0: the update is plain SGD on that minibatch
    r = 1
    X = rng.gaussians(seed, rng.ONLINE_X, r, 0, B * n0).reshape(B, n0)
    noise = rng.gaussians(seed, rng.ONLINE_LABEL, r, 0, B * nm).reshape(B, nm)
    Y = naive.forward(cfg.data.teacher, teacher, ttheta, X)[1][-1] + cfg.data.label_noise * noise
    g = naive.gradient(cfg.network, student, snaps[r, 0], X, Y, "mse")
    np.testing.assert_allclose(snaps[r, 1], snaps[r, 0] - cfg.dynamics.eta.value(0) * g,
                               rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------ branching

@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """An ensemble file of TINY: 3 replicas, 10 steps, snapshots every 5 steps."""
    path = tmp_path_factory.mktemp("parent") / "parent.h5"
    run_file(merge(TINY, {"recording": {"every": 5, "snapshot_every": 5}}), str(path),
             progress=False)
    return path


def _child(parent_path, **init):
    return merge(TINY, {"init": {"from": str(parent_path), **init},
                        "ensemble": {"steps": 2}})


def test_branch_from_final_state(parent):
    with open_ensemble(parent) as ens:
        theta = ens.state()["theta"]
        last_probe = ens.read("records/loss_probe", index=-1)
        last_train = ens.read("records/loss_train", index=-1)
        assert ens.read("records/step")[-1] == ens.steps_done == 10
    _, rd, res = run_memory(_child(parent, at="final"))
    assert res.steps_done == 2
    snaps = rd.read("snapshots/theta")
    np.testing.assert_array_equal(snaps[:, 0], theta)
    assert not np.array_equal(snaps[:, 2], theta)
    np.testing.assert_array_equal(rd.read("records/loss_probe")[:, 0], last_probe)
    np.testing.assert_array_equal(rd.read("records/loss_train")[:, 0], last_train)
    # "final" is the default
    _, rd2, _ = run_memory(_child(parent))
    assert_same(dump(rd), dump(rd2))


@pytest.mark.parametrize("at", [0, 1, -1])
def test_branch_from_snapshot(parent, at):
    with open_ensemble(parent) as ens:
        want = ens.read("snapshots/theta", index=at)
        assert ens.read("snapshots/step").tolist() == [0, 5, 10]
    _, rd, _ = run_memory(merge(_child(parent, at=at), {"ensemble": {"steps": 0}}))
    np.testing.assert_array_equal(rd.read("snapshots/theta")[:, 0], want)
    np.testing.assert_array_equal(rd.state()["theta"], want)


def test_branch_errors_are_one_line(parent, tmp_path):
    out = tmp_path / "child.h5"
    cases = [
        (merge(_child(parent), {"network": {"widths": [3, 6, 1]}}), "init.from"),
        (merge(_child(parent), {"network": {"widths": [3, 4, 4, 1]}}), "init.from"),
        (merge(_child(parent), {"ensemble": {"replicas": 5}}), "init.from"),
        (_child(parent, at=7), "init.at"),
    ]
    for table, key in cases:
        cfg = load_config(table)
        with pytest.raises(UserError) as e:
            run_file(cfg, str(out), progress=False)
        msg = str(e.value)
        assert msg.startswith(key + ":") and "\n" not in msg, msg
        assert not out.exists()
    nosnap = tmp_path / "nosnap.h5"
    run_file(merge(TINY, {"recording": {"snapshot_every": 0}, "ensemble": {"steps": 1}}),
             str(nosnap), progress=False)
    with pytest.raises(UserError, match=r"^init\.at:"):
        run_memory(_child(nosnap, at=0))


def test_branch_keeps_momenta_underdamped(tmp_path):
    dyn = {"integrator": "underdamped", "dt": 0.05, "gamma": 1.0, "T": 0.1}
    ud = merge(TINY, {"dynamics": dyn})
    ud["dynamics"].pop("eta")
    src = tmp_path / "ud.h5"
    run_file(merge(ud, {"ensemble": {"steps": 5}}), str(src), progress=False)
    with open_ensemble(src) as ens:
        st = ens.state()
    assert np.all(np.abs(st["mom"]).sum(axis=1) > 0)
    child = merge(ud, {"init": {"from": str(src), "momenta": "keep"}, "ensemble": {"steps": 0}})
    _, rd, _ = run_memory(child)
    np.testing.assert_array_equal(rd.state()["mom"], st["mom"])
    np.testing.assert_array_equal(rd.state()["theta"], st["theta"])
    # the recorded kinetic energy at step 0 is that of the kept momenta
    np.testing.assert_allclose(rd.read("records/kinetic")[:, 0],
                               0.5 * np.sum(st["mom"] ** 2, axis=1), rtol=1e-12)
    zero = merge(child, {"init": {"momenta": "zero"}})
    _, rd0, _ = run_memory(zero)
    np.testing.assert_array_equal(rd0.state()["mom"], 0.0)


# ------------------------------------------------------------------------------ divergence

def test_divergence_freezes_some_replicas():
    base = merge(TINY, {"data": {"batch": "full"}, "dynamics": {"eta": 0.01},
                        "ensemble": {"replicas": 6, "steps": 12}})
    _, pilot, _ = run_memory(merge(base, {"ensemble": {"steps": 0}}))
    l0 = np.sort(pilot.read("records/loss_batch")[:, 0])
    assert np.all(np.diff(l0) > 0)
    bound = float(0.5 * (l0[2] + l0[3]))
    cfg, rd, res = run_memory(merge(base, {"dynamics": {"divergence_bound": bound}}))
    loss0 = rd.read("records/loss_batch")[:, 0]
    st = rd.state()
    div, dstep = np.asarray(st["diverged"], bool), st["diverged_step"]
    np.testing.assert_array_equal(div, loss0 > bound)
    np.testing.assert_array_equal(res.diverged, div)
    assert div.sum() == 3
    steps = rd.read("records/step")
    snaps = rd.read("snapshots/theta")
    for r in range(6):
        rec = {v: rd.read(f"records/{v}", replicas=r) for v in rd.vars("records")}
        if div[r]:
            assert 0 <= dstep[r] < cfg.ensemble.steps
            after = steps > dstep[r]
            for v, a in rec.items():
                assert np.all(np.isnan(a[after])), v
                assert np.all(np.isfinite(a[~after])), v
            assert np.all(np.isnan(snaps[r, after]))
            # frozen: the state is the last finite snapshot
            np.testing.assert_array_equal(st["theta"][r], snaps[r, dstep[r]])
        else:
            assert dstep[r] == -1
            for v, a in rec.items():
                assert np.all(np.isfinite(a)), v
            assert np.all(np.diff(rec["loss_train"]) < 0)  # full-batch descent goes on
            assert not np.array_equal(snaps[r, -1], snaps[r, 0])
            np.testing.assert_array_equal(st["theta"][r], snaps[r, -1])


# ------------------------------------------------------------------------------ schedules

def test_linear_eta_schedule_time():
    eta = {"kind": "linear", "start": 0.1, "end": 0.01, "begin": 0, "until": 50, "unit": "steps"}
    table = merge(TINY, {"dynamics": {"eta": eta}, "ensemble": {"replicas": 1, "steps": 60,
                                                                "chunk": 7},
                         "recording": {"every": 1, "snapshot_every": 0}})
    cfg, rd, res = run_memory(table)
    vals = np.array([cfg.dynamics.eta.value(s) for s in range(60)])
    assert vals[0] == 0.1 and vals[-1] == 0.01 and vals[25] == pytest.approx(0.055)
    want = np.concatenate([[0.0], np.cumsum(vals)])
    np.testing.assert_array_equal(rd.read("records/step"), np.arange(61))
    np.testing.assert_allclose(rd.read("records/time"), want, rtol=1e-14, atol=0)
    assert float(rd.state()["time"]) == pytest.approx(want[-1], rel=1e-14)
    assert int(rd.state()["step"]) == 60


@pytest.mark.parametrize("at, values", [(1.0, (0.25, 0.125)), (0.35, (0.1, 0.02))])
def test_piecewise_eta_in_time_switches_at_node(at, values):
    eta = {"kind": "piecewise", "at": [at], "values": list(values), "unit": "time"}
    table = merge(TINY, {"dynamics": {"eta": eta}, "ensemble": {"replicas": 1, "steps": 12,
                                                                "chunk": 5},
                         "recording": {"every": 1, "snapshot_every": 0}})
    cfg, rd, _ = run_memory(table)
    t = rd.read("records/time")
    dt = np.diff(t)
    # recompute the time step by step with the schedule in time
    tt = [0.0]
    for _ in range(12):
        tt.append(tt[-1] + cfg.dynamics.eta.value(tt[-1]))
    np.testing.assert_array_equal(t, tt)
    expect = np.where(t[:-1] < at, values[0], values[1])
    np.testing.assert_array_equal(dt, np.diff(np.array(tt)))
    np.testing.assert_allclose(dt, expect, rtol=1e-12)
    k = int(np.argmax(t >= at))  # the first step starting at or after the node
    assert 0 < k < 12
    assert np.all(np.isclose(dt[:k], values[0])) and np.all(np.isclose(dt[k:], values[1]))
    if at == 1.0:  # exact binary arithmetic: the node is hit exactly and belongs to the new value
        assert t[4] == 1.0 and k == 4 and dt[4] == 0.125
