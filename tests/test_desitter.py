"""The de Sitter dictionary (SFT Eqs. 8-10): H_dS = gamma / d and the recorded action weight."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from langevin_nn.cli import cli
from langevin_nn.config import load_config
from langevin_nn.desitter import hubble
from langevin_nn.simulate import run


def test_hubble_parameter_per_field_description():
    assert hubble("sft1", 0.6) == (1, 0.6)
    assert hubble("local", 0.8) == (2, 0.4)
    assert hubble("dense", 0.9) == (3, 0.9 / 3)


def test_info_reports_hubble_and_action_weight(tmp_path):
    cfg = load_config({"network": {"architecture": "local", "width": 5, "depth": 2},
                       "data": {"n_train": 10, "n_probe": 3},
                       "dynamics": {"integrator": "heavy_ball", "eta": 0.04, "beta": 0.6,
                                    "T": 0.0},
                       "ensemble": {"replicas": 2, "steps": 20}, "recording": {"every": 5}})
    path = tmp_path / "hb.h5"
    res = run(cfg, path, progress=False)
    gamma = (1 - 0.6) / np.sqrt(0.04)  # heavy ball: (1 - beta) / sqrt(eta) per unit time
    out = CliRunner().invoke(cli, ["info", str(path)]).output
    assert f"H_dS = gamma/d = {gamma / 2:.4g}" in out
    t = 20 * np.sqrt(0.04)
    assert f"e^{gamma * t:.4g} at t = {t:g}" in out
    assert res.steps_done == 20
