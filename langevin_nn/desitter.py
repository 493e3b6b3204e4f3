"""The de Sitter dictionary of the synaptic field theory (SFT Eqs. 8-10, physics.md section 3).

The action S = int dt e^{gamma t} L with e^{gamma t} = sqrt(-g) = e^{d H_dS t} identifies the
Hubble parameter H_dS = gamma / d, d the number of spatial dimensions of the field description:

* d = 1 for the SFT example networks (`sft1`, `sft2`: one lattice direction);
* d = 2 for the local architecture (depth x = m and width y = i);
* d = 3 for dense networks (the index space (i, j, m) of SFT Eq. 12).

gamma is the friction per unit of the run's time t (underdamped: `dynamics.gamma`; heavy ball:
(1 - beta) / sqrt(eta)); the recorded `records/log_action_weight` is int_0^t gamma dt, so the
action's weight is its exponential.
"""
from __future__ import annotations

import math
import tomllib

SPATIAL_DIMS = {"sft1": 1, "sft2": 1, "local": 2, "dense": 3}


def hubble(architecture: str, gamma: float) -> tuple[int, float]:
    """(d, H_dS = gamma / d) for a network architecture and a friction gamma."""
    d = SPATIAL_DIMS[architecture]
    return d, gamma / d


def summary(ens) -> str | None:
    """One line for `langevin-nn info` on a momentum run (None for overdamped runs): d, the
    initial H_dS in its time unit, and the action weight reached."""
    integ = ens.attrs.get("integrator")
    if integ not in ("underdamped", "heavy_ball"):
        return None
    cfg = tomllib.loads(ens.config_effective)
    dyn = cfg.get("dynamics", {})
    if integ == "underdamped":
        g = dyn.get("gamma", 1.0)
        gamma = g if isinstance(g, (int, float)) else g.get("start", g.get("values", [None])[0])
    else:
        b, e = dyn.get("beta", 0.9), dyn.get("eta", 1e-3)
        b = b if isinstance(b, (int, float)) else b.get("start", b.get("values", [None])[0])
        e = e if isinstance(e, (int, float)) else e.get("start", e.get("values", [None])[0])
        gamma = (1.0 - b) / math.sqrt(e)
    d, h = hubble(ens.attrs.get("architecture", "dense"), float(gamma))
    line = f"de Sitter:     d = {d}, H_dS = gamma/d = {h:.4g} per unit time ({ens.attrs.get('time_unit')})"
    st = ens.state()
    if "gamma_int" in st:
        line += f"; action weight e^(int gamma dt) = e^{float(st['gamma_int']):.4g} at t = {ens.time_done:g}"
    return line
