"""``langevin-nn analyze`` end to end (click's CliRunner on the command object): a small
quickstart-like dense ensemble, a local-architecture ensemble, and a file recorded with less
(reports what it can and names the switches), plus one-line errors for files it cannot read."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import langevin_nn
from langevin_nn.cli_analysis import analyze
from langevin_nn.errors import UserError

QUICK = {  # the quickstart (8-32-32-32-1 tanh teacher-student, SGLD), smaller and shorter
    "network": {"architecture": "dense", "widths": [8, 32, 32, 32, 1], "activation": "tanh",
                "sigma_w2": 1.5, "sigma_b2": 0.05},
    "data": {"n_train": 128, "n_probe": 32, "batch": 8},
    "dynamics": {"eta": 0.01, "T": 1e-4},
    "ensemble": {"replicas": 12, "seed": 1, "steps": 400},
    "recording": {"every": 10, "snapshot_every": 100, "probe_z_every": 50},
}
LOCAL = {
    "network": {"architecture": "local", "width": 12, "depth": 6, "activation": "tanh"},
    "data": {"n_train": 64, "n_probe": 8, "batch": 8},
    "dynamics": {"integrator": "underdamped", "dt": 0.05, "gamma": 1.0, "T": 0.01},
    "ensemble": {"replicas": 10, "seed": 2, "steps": 200},
    "recording": {"every": 10, "probe_z_every": 50, "snapshot_every": 100},
}
LESS = {
    "network": {"widths": [4, 8, 8, 1]}, "data": {"n_train": 16, "n_probe": 4},
    "ensemble": {"replicas": 3, "steps": 20}, "recording": {"every": 5, "norms": False,
                                                            "train_loss": False},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    out = {}
    for name, cfg in (("quick", QUICK), ("local", LOCAL), ("less", LESS)):
        out[name] = d / f"{name}.h5"
        langevin_nn.run(cfg, out[name])
    return out


def invoke(*args):
    res = CliRunner().invoke(analyze, [str(a) for a in args])
    return res


def load(outdir):
    with open(outdir / "summary.json") as f:
        return json.load(f)


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def test_analyze_quickstart_like(files, tmp_path):
    out = tmp_path / "report"
    res = invoke(files["quick"], "-o", out)
    assert res.exit_code == 0, res.output + repr(res.exception)
    s = load(out)
    for png in ("loss_curves.png", "kernels.png", "G_r.png", "xi_time.png", "G_matrix.png",
                "cka.png", "ntk_drift.png"):
        assert png in s["figures"] and (out / png).stat().st_size > 1000
    assert (out / "report.md").read_text().startswith("# Analysis of `quick.h5`")
    assert s["run"]["replicas"] == 12 and s["run"]["steps_done"] == 400
    loss = s["loss"]["loss_train"]
    assert finite(loss["final"]["value"]) and loss["final"]["error"] > 0
    ta = loss["time_average_second_half"]
    assert ta["tau_int"] >= 0 and ta["error"] > 0 and "emcee" in loss["tau_int_convention"]
    k = s["kernels"]
    assert set(k["entries"]) == {"step_0", "step_400"}
    assert len(k["mean_field"]["q"]) == 4
    assert np.all(np.abs(k["mean_field"]["z_q"][:3]) < 5)  # hidden layers at initialisation
    dc = s["depth_correlations"]
    assert 0 <= dc["translation_test"]["p"] <= 1 and len(dc["xi_vs_time"]["xi"]["value"]) == 9
    assert "long_range_order" in dc["verdict"]
    assert np.allclose(np.diag(np.array(s["cka"]["cka"]["value"])), 1.0)
    assert s["chi_1"]["chi_1"]["error"] > 0 and finite(s["chi_1"]["mean_field_on_links"])
    assert s["ntk"]["drift"]["value"][0] == 0 and s["ntk"]["drift"]["value"][-1] > 0
    skipped = {x["section"]: x for x in s["skipped"]}
    assert "recording.bbd" in skipped["Lagrangian density (depth x time)"]["switch"]
    with open(out / "summary.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["quantity", "value", "error", "tau_int"]
    names = {r[0] for r in rows[1:]}
    assert "chi_1.chi_1" in names and "loss.loss_train.time_average_second_half" in names
    assert any(r[0] == "loss.loss_train.time_average_second_half" and r[3] for r in rows)


def test_analyze_local_architecture(files, tmp_path):
    out = tmp_path / "local"
    res = invoke(files["local"], "-o", out, "--window", "2", "5", "--r-max", "2")
    assert res.exit_code == 0, res.output + repr(res.exception)
    s = load(out)
    for png in ("field_C.png", "structure_factor.png", "kernels.png", "G_r.png", "ntk_drift.png"):
        assert png in s["figures"]
    f = s["field_correlators"]
    assert len(f["z"]["structure_factor"]["k"]) == 12
    assert "w" in f and "dw" in f
    assert s["depth_correlations"]["translation_test"]["window_layers"] == [2, 5]
    assert s["depth_correlations"]["translation_test"]["r_max"] == 2
    assert "mean_field" not in s["kernels"]  # no mean-field theory for a fan-in of 3


def test_analyze_file_recorded_with_less(files, tmp_path):
    out = tmp_path / "less"
    res = invoke(files["less"], "-o", out, "--no-figures")
    assert res.exit_code == 0, res.output + repr(res.exception)
    s = load(out)
    assert s["figures"] == [] and "loss_batch" in s["loss"]
    switches = {x["switch"] for x in s["skipped"]}
    for sw in ("recording.probe_z_every > 0", "recording.snapshot_every > 0",
               "recording.norms = true", "recording.train_loss = true"):
        assert sw in switches
    report = (out / "report.md").read_text()
    assert "## Not measured" in report and "recording.probe_z_every" in report
    assert "recording.snapshot_every" in res.output  # the command names them too


def test_analyze_leaves_out_diverged_replicas(tmp_path):
    path = tmp_path / "div.h5"
    langevin_nn.run({"network": {"widths": [4, 16, 16, 1]},
                     # eta = 0.4: 2 of these 8 replicas diverge, the others do not
                     "data": {"n_train": 32, "n_probe": 8, "batch": 8}, "dynamics": {"eta": 0.4},
                     "ensemble": {"replicas": 8, "steps": 200, "seed": 1},
                     "recording": {"every": 50, "snapshot_every": 100, "probe_z_every": 100}}, path)
    res = invoke(path, "-o", tmp_path / "r", "--no-figures")
    assert res.exit_code == 0, res.output + repr(res.exception)
    s = load(tmp_path / "r")
    n_div = s["run"]["diverged"]
    assert 0 < n_div < 7
    assert s["loss"]["loss_train"]["replicas_used"] == 8 - n_div
    assert finite(s["loss"]["loss_train"]["final"]["value"])
    assert all(finite(x) for x in s["kernels"]["entries"]["step_200"]["q"]["value"])
    assert all(finite(x) for x in s["ntk"]["drift"]["value"])


def test_library_names_the_switch_on_missing_data(files):
    from langevin_nn.analysis.correlations import cka, depth_two_point
    from langevin_nn.analysis.ntk import ntk_drift

    for call, switch in ((lambda: cka(files["less"]), "recording.probe_z_every"),
                         (lambda: ntk_drift(files["less"]), "recording.snapshot_every"),
                         (lambda: depth_two_point(files["less"], "w_norm2"), "recording.norms")):
        with pytest.raises(UserError) as e:
            call()
        msg = str(e.value)
        assert switch in msg and "less.h5" in msg and "\n" not in msg


def test_unreadable_files_give_one_line(tmp_path):
    bad = tmp_path / "not.h5"
    bad.write_text("hello")
    for path in (bad, tmp_path / "missing.h5"):
        res = invoke(path, "-o", tmp_path / "x")
        assert isinstance(res.exception, UserError)
        assert str(path.name) in str(res.exception) and "\n" not in str(res.exception)
