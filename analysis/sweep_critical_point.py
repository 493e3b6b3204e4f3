"""The critical sigma_w^2 of a sweep over network.sigma_w2 at initialisation, and its figure.

    python analysis/sweep_critical_point.py DIR [-o critical_point.png] [--json]

DIR is a sweep folder of zero-step ensembles with snapshot 0 (``runs/sweep_order_to_chaos.toml``:
``langevin-nn sweep runs/sweep_order_to_chaos.toml -o DIR``). For each group of points that
differ only in sigma_w^2 (and seed or width), the measured chi_1 of every complete file
(``analysis.chi.measure_chi1``: jackknife over replicas, O(1/N) finite-width systematic) is
fitted near 1 and the crossing located (``analysis.chi.critical_point``); its uncertainty is
the statistical error (Monte Carlo over the points) and the finite-width systematic in
quadrature. Printed beside the mean-field value (tanh, sigma_b^2 = 0.05: 1.7610), with
z = (data - mean field) / uncertainty; the figure shows chi_1(sigma_w^2) with both error bars, the
crossing band and the mean-field curve.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from langevin_nn.errors import UserError
from langevin_nn.sweep_analysis import critical_points, draw_critical_point


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("-o", "--output", default=None,
                    help="PNG (default SWEEP_DIR/analysis/critical_point.png; one per group: _K)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    try:
        cps = critical_points(a.sweep_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = a.output or os.path.join(a.sweep_dir, "analysis", "critical_point.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    results = []
    for k, c in enumerate(cps):
        path = out if len(cps) == 1 else f"{os.path.splitext(out)[0]}_{k}.png"
        draw_critical_point(path, c)
        d = c.to_dict()
        d["figure"] = path
        results.append(d)
        if a.json:
            continue
        g = ", ".join(f"{key} = {v}" for key, v in c.group.items())
        print(f"{c.activation}, sigma_b^2 = {c.sigma_b2:g}{f', {g}' if g else ''}:")
        for p in sorted(c.critical.points, key=lambda p: p.sigma_w2):
            print(f"  sigma_w^2 = {p.sigma_w2:<6g} N = {p.width:<4d} chi_1 = {p.chi_1}  "
                  f"(finite-width syst {p.systematic:.4f})")
        print(f"  critical sigma_w^2 = {c.value:.4f} +- {c.error:.4f} (stat "
              f"{c.critical.statistical:.4f}, finite-width syst {c.critical.systematic:.4f}); "
              f"mean field {c.mean_field:.4f}; z = {c.z:+.2f} "
              f"({'within' if c.consistent else 'outside'} the stated uncertainty)"
              + (f"; per width {c.critical.per_width}" if len(c.critical.per_width) > 1 else ""))
        print(f"  figure: {path}")
    if a.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
