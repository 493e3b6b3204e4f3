"""Any scalar result of ``analyze`` tabulated and plotted against the varied values of a sweep.

    python analysis/sweep_table.py DIR [-q PATTERN ...] [--combine-seeds] [-o OUTDIR] [--no-figures]

DIR is a sweep folder (``langevin-nn sweep SWEEP.toml -o DIR``). Every complete point is analysed
once (``analyze`` without figures, cached in DIR/points/NAME/analysis/summary.json); the scalars
(``{value, error}`` results and plain numbers, dotted names such as ``loss.loss_probe.final``,
``depth_correlations.fit.xi``, ``depth_correlations.translation_test.p``, ``chi_1.chi_1``) are
written to OUTDIR/table.csv and table.json (and, with ensemble.seed varied, the means over seeds
to table_seed_mean.csv), one figure per quantity with errors against the first varied key, and
for a sweep over network.sigma_w2 the critical point (critical_point.json, critical_point.png).
``-q`` selects quantities by glob (repeatable; default: all) and prints them as a table (their
tables and figures then go to OUTDIR = DIR/analysis/selection unless -o says otherwise).

Examples (runs/):
    python analysis/sweep_table.py out/temperature -q 'depth_correlations.fit.xi' \\
        -q 'depth_correlations.translation_test.p' -q 'loss.loss_probe.final' --combine-seeds
    python analysis/sweep_table.py out/otc -q 'chi_1.chi_1' -q 'chi_1.chi_c'
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from langevin_nn.analysis.errors import Estimate
from langevin_nn.errors import UserError
from langevin_nn.sweep_analysis import tabulate, write_report


def _cell(v: float, e: float) -> str:
    if not math.isfinite(v):
        return "-"
    if math.isfinite(e) and e > 0:
        return str(Estimate(v, e))
    return f"{v:.6g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("-q", "--quantity", action="append", default=None, metavar="PATTERN",
                    help="glob over the scalar names (repeatable; default: all)")
    ap.add_argument("-o", "--outdir", default=None,
                    help="default: SWEEP_DIR/analysis (with -q: SWEEP_DIR/analysis/selection)")
    ap.add_argument("--combine-seeds", action="store_true",
                    help="print means over ensemble.seed (the CSVs hold both)")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--refresh", action="store_true", help="re-run analyze on every point")
    a = ap.parse_args(argv)
    outdir = a.outdir
    if outdir is None and a.quantity:  # a selection does not replace the full table
        outdir = os.path.join(a.sweep_dir, "analysis", "selection")
    try:
        out = write_report(a.sweep_dir, outdir, quantities=a.quantity,
                           figures=not a.no_figures, refresh_cache=a.refresh,
                           log=lambda m: print(m, file=sys.stderr))
        table = tabulate(a.sweep_dir, a.quantity)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.combine_seeds:
        table = table.combine_seeds()
    if a.quantity:
        keys = table.keys
        head = [k.rsplit(".", 1)[-1] for k in keys] + (["n"] if a.combine_seeds else []) + table.quantities
        rows = []
        for i, r in enumerate(table.rows):
            row = [str(r["values"].get(k)) for k in keys] + ([str(table.n[i])] if a.combine_seeds else [])
            row += [_cell(table.value[i, j], table.error[i, j]) for j in range(len(table.quantities))]
            rows.append(row)
        w = [max(len(x[c]) for x in [head, *rows]) for c in range(len(head))]
        print("  ".join(h.rjust(w[c]) for c, h in enumerate(head)))
        for row in rows:
            print("  ".join(x.rjust(w[c]) for c, x in enumerate(row)))
    for c in out["critical_points"]:
        g = ", ".join(f"{k} = {v}" for k, v in c["group"].items())
        print(f"critical sigma_w^2{f' ({g})' if g else ''}: {c['sigma_w2_critical']:.4f} +- "
              f"{c['error']:.4f} (stat {c['statistical']:.4f}, finite-width syst "
              f"{c['systematic']:.4f}); mean field {c['mean_field']:.4f}")
    print(f"{len(table.quantities)} quantities x {len(table.rows)} rows; tables and "
          f"{len(out['figures'])} figures in {out['outdir']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
