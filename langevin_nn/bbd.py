"""The bulk-boundary decomposition as recorded (group ``bbd``; kernels/bbd.py computes it):
dataset names and meanings, and the identity check printed by ``langevin-nn info``.

See docs/bbd.md for every quantity with its formula and BBD equation.
"""
from __future__ import annotations

import numpy as np

from .store import Var

#: BBD datasets (group ``bbd``, kernels/bbd.py): per-link terms, then totals; "_probe" = the
#: fixed-probe variant. Names and meanings are in docs/bbd.md.
BBD_LINK = ("kin_W", "kin_b", "kin_z", "cross", "quad", "kin_W_drift")
BBD_TOT = ("loss", "L", "bulk", "boundary_in", "boundary_out", "residual", "norm")
BBD_DOC = {
    "kin_W": "1/2 |D W^(m)|^2 per link", "kin_b": "1/2 |D b^(m)|^2 per link",
    "kin_z": "1/2 |D z^(m)|^2 per layer m = 1..M (batch mean)",
    "cross": "-D z^(m+1) . D A^(m) per link (batch mean)",
    "quad": "1/2 |D A^(m)|^2 per link (batch mean)",
    "kin_W_drift": "1/2 |D W^(m)|^2 of the drift -eta grad alone (overdamped; NaN otherwise)",
    "loss": "l: the dynamics' cost at t (reduction applied)",
    "L": "L = sum kin_W + sum kin_b - l (BBD Eq. 5)", "bulk": "L_bulk",
    "boundary_in": "cross^(0) + quad^(0)", "boundary_out": "-l",
    "residual": "|L - L_bulk - L_boundary| / norm (round-off)",
    "norm": "sum of the absolute values of all terms",
}
BBD_STATE = {"bbd_theta": ("param",), "bbd_z": ("bbd_sample", "bbd_unit"),
              "bbd_A": ("bbd_sample", "bbd_unit"), "bbd_zp": ("probe", "bbd_unit"),
              "bbd_Ap": ("probe", "bbd_unit"), "bbd_scal": ("bbd_scalar",)}


def bbd_vars() -> tuple:
    """The ``Var`` list of the ``bbd`` cadence group."""
    out = []
    for suffix, names in (("", BBD_LINK + BBD_TOT), ("_probe", ("kin_z", "cross", "quad") + BBD_TOT)):
        for n in names:
            dims = ("layer",) if n == "kin_z" else (("link",) if n in BBD_LINK else ())
            doc = BBD_DOC[n] + (" (fixed probe inputs)" if suffix else " (minibatch of each step)")
            out.append(Var(n + suffix, dims, "float64", doc))
    return tuple(out)




def identity_summary(ens) -> str | None:
    """One line on the BBD identity L = L_bulk + L_boundary of an ensemble (None without BBD):
    the largest residual relative to the sum of |terms|, for both variants."""
    if "bbd" not in [c.group for c in ens.schema.cadences] or ens.entries.get("bbd", 0) == 0:
        return None
    parts = []
    for v, what in (("residual", "minibatch"), ("residual_probe", "probe")):
        r = np.asarray(ens.read(f"bbd/{v}"), dtype=float)
        parts.append(f"{np.nanmax(r):.2e} ({what})" if np.isfinite(r).any() else f"n/a ({what})")
    return ("BBD identity:  max |L - L_bulk - L_boundary| / sum|terms| = " + ", ".join(parts)
            + f" over {ens.entries['bbd']} entries")
