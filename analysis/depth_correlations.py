"""Depth correlations of a layer scalar: translational symmetry, correlation length, xi against time.

    python analysis/depth_correlations.py FILE [--observable q|c|w_norm2|b_norm2] [--window FIRST LAST]
                                               [--r-max R] [--plateau] [-o OUTDIR]

For the chosen layer scalar O_m (q^(m) or c^(m) from the probe pre-activations, or a records
variable with a link axis) at every recorded entry: the connected G_O(m, m') over replicas, the
translation test inside the bulk window (given, or found on half of the replicas and tested on the
other half), G(r) averaged over the window with the fit A exp(-r/xi) (+ B), xi_eff(r), the
long-range-order verdict at the last entry, and xi against training time.
Writes depth_correlations.json, G_r.png, xi_time.png and G_matrix.png to OUTDIR (default .).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from langevin_nn import plots
from langevin_nn.analysis.correlations import connected_two_point, layer_scalar, translation_average
from langevin_nn.analysis.errors import Estimate
from langevin_nn.analysis.files import ensemble
from langevin_nn.analysis.order import (fit_correlation_length, long_range_order, xi_effective,
                                        xi_vs_time)
from langevin_nn.analysis.symmetry import translation_test, translation_test_layers
from langevin_nn.errors import UserError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--observable", default="q")
    ap.add_argument("--window", nargs=2, type=int, metavar=("FIRST", "LAST"))
    ap.add_argument("--r-max", type=int, default=None)
    ap.add_argument("--plateau", action="store_true", help="fit a plateau B as well")
    ap.add_argument("-o", "--outdir", default=".")
    a = ap.parse_args(argv)
    try:
        with ensemble(a.file) as ens:
            O, labels = layer_scalar(ens, a.observable)  # (R, S, M)
            group = "probe_z" if a.observable in ("q", "c") else "records"
            t = np.atleast_1d(ens.read(f"{group}/time"))
            steps = np.atleast_1d(ens.read(f"{group}/step"))
            unit = ens.attrs.get("time_unit", "")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    O = O[np.all(np.isfinite(O.reshape(O.shape[0], -1)), axis=1)]  # drop diverged replicas
    last = O[:, -1]
    M = last.shape[1]
    if a.window:
        lo, hi = (int(np.searchsorted(labels, a.window[0])), int(np.searchsorted(labels, a.window[1])))
        test = translation_test(connected_two_point(last), (lo, hi), a.r_max, labels=labels)
    else:
        test = translation_test_layers(last, "auto", a.r_max, labels=labels)
    lo, hi = test.window
    r = np.arange(hi - lo + 1)
    profiles = [translation_average(connected_two_point(O[:, s]), (lo, hi), hi - lo) for s in range(O.shape[1])]
    fit = fit_correlation_length(r, profiles[-1], plateau=a.plateau)
    verdict = long_range_order(fit, M)
    xis, _ = xi_vs_time(r, profiles, plateau=a.plateau)
    G = connected_two_point(last)
    summary = {"file": a.file, "observable": a.observable, "layers": [int(x) for x in labels],
               "replicas": int(O.shape[0]), "translation_test": test.to_dict(), "fit": fit.to_dict(),
               "xi_eff": xi_effective(profiles[-1]).to_dict(), "verdict": verdict.to_dict(),
               "xi_vs_time": {"step": steps.tolist(), "time": t.tolist(), "xi": xis.to_dict()}}
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "depth_correlations.json"), "w") as f:
        json.dump(summary, f, indent=1, default=lambda o: None)
    rf = np.linspace(0, r[-1], 100)
    plots.correlator(os.path.join(a.outdir, "G_r.png"), r, profiles[-1].value, profiles[-1].error,
                     fit=(rf, fit.curve(rf), f"xi = {fit.xi}"),
                     title=f"G_{a.observable}(r), layers {labels[lo]}..{labels[hi]}")
    plots.xi_vs_time(os.path.join(a.outdir, "xi_time.png"), t, xis.value, xis.error, time_unit=unit)
    plots.matrix(os.path.join(a.outdir, "G_matrix.png"), G.value, labels,
                 title=f"G_{a.observable}(m, m')", symmetric=True)
    print(f"{a.observable}: window {labels[lo]}..{labels[hi]}, translation test p = {test.p:.3g} "
          f"(largest deviation {test.max_deviation:.1f} sigma); xi = {fit.xi} "
          f"(chi2/dof {fit.chi2:.1f}/{fit.dof}); {verdict.reason}")
    print(f"xi against time ({unit}): " + ", ".join(
        f"{tt:g}: {Estimate(x, e)}" for tt, x, e in zip(t, xis.value, xis.error)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
