"""The order-to-chaos transition of deep dense tanh networks at initialisation, from ensemble files.

    python analysis/order_to_chaos.py FILE [FILE ...] [-o OUTDIR]
    python analysis/order_to_chaos.py --generate DIR [--width 256 ...] [-o OUTDIR]

Each FILE is a zero-step ensemble (``ensemble.steps = 0``, ``recording.snapshot_every`` and
``recording.probe_z_every`` > 0) of one dense network at one sigma_w^2; all share the activation
and sigma_b^2. ``--generate`` writes such files first: widths [N_0, N x depth, 1], probe inputs
whose layer-1 kernel is the mean-field fixed point (q*, c*) in the chaotic phase and (q*, 0.8) in
the ordered one (``theory.meanfield.inputs_for_kernel``), so that every layer measures the
gains at (q*, c*) and c^(m) approaches c* = 1 exponentially from the first layers on.

Per file: the measured chi_1 and chi_c (``analysis.chi.measure_chi1``, jackknife over replicas,
finite-width systematic), xi_c = -1/ln chi_1 (ordered) or -1/ln chi_c (chaotic), the fit of
c^(m) -> 1 (ordered), and the largest deviation of q^(m), c^(m) from the mean-field profile of the
same inputs. Across files: the critical sigma_w^2 where chi_1 crosses 1 (``critical_point``).
Disk: a zero-step file holds the snapshot and the two checkpoint slots (theta, momenta, force),
about 7 x 8 bytes x replicas x parameters: 0.3 GB at N = 128, 1.4 GB at N = 256 (24 replicas,
depth 24), 3 GB at N = 512 (16 replicas); --generate of the default grid at N = 128 and 256 writes
about 15 GB.
Writes order_to_chaos.json, chi_crossing.png, xi_c.png and profiles.png to OUTDIR (default .),
prints a table. Reference (physics.md section 6, tanh, sigma_b^2 = 0.05): critical sigma_w^2 1.761,
xi_c 7.83 at 1.3 and 25.2 at 2.0.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import langevin_nn
from langevin_nn import plots
from langevin_nn.analysis.chi import critical_point, measure_chi1
from langevin_nn.analysis.errors import propagate
from langevin_nn.analysis.files import ensemble, variances
from langevin_nn.analysis.forward import StoredNetwork
from langevin_nn.analysis.kernels import layer_kernels
from langevin_nn.analysis.order import xi_from_profile
from langevin_nn.errors import UserError
from langevin_nn.theory.meanfield import (critical_sigma_w2, inputs_for_kernel, kernel_profile,
                                          mean_field, profile_summary)
from langevin_nn.analysis.errors import Estimate
from langevin_nn.config import ActivationSpec

GRID = (1.0, 1.3, 1.5, 1.65, 1.76, 1.85, 2.0, 2.5, 3.0)


def generate(outdir, *, widths=(256,), depth=24, replicas=24, probes=24, sigma_b2=0.05,
             grid=GRID, seed=1, activation="tanh") -> list[str]:
    """Write one zero-step ensemble per (width, sigma_w^2); returns the paths."""
    os.makedirs(outdir, exist_ok=True)
    n_in = max(64, probes + 1)
    paths = []
    for N in widths:
        for i, sw2 in enumerate(grid):
            mf = mean_field(activation, sw2, sigma_b2)
            c1 = mf.c_star if mf.c_star < 1 else 0.8
            X = inputs_for_kernel(probes, n_in, mf.q_star, c1, sw2, sigma_b2, seed=seed + i)
            data = os.path.join(outdir, f"probes_N{N}_sw{sw2:g}.npz")
            np.savez(data, X=np.random.default_rng(0).normal(size=(8, n_in)), Y=np.zeros(8),
                     X_probe=X, Y_probe=np.zeros(probes))
            path = os.path.join(outdir, f"otc_N{N}_sw{sw2:g}.h5")
            cfg = {"network": {"architecture": "dense", "widths": [n_in] + [N] * depth + [1],
                               "activation": activation, "sigma_w2": sw2, "sigma_b2": sigma_b2},
                   "data": {"source": "file", "path": data, "n_probe": probes},
                   "ensemble": {"replicas": replicas, "steps": 0, "seed": seed + 1000 * N + i},
                   "recording": {"every": 1, "snapshot_every": 1, "probe_z_every": 1,
                                 "probe_z_dtype": "float64"}}
            t0 = time.perf_counter()
            langevin_nn.run(cfg, path, overwrite=True, progress=False)
            print(f"wrote {path} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            paths.append(path)
    return paths


def _xi(chi: Estimate, syst: float) -> tuple[float, float, float]:
    """xi = -1/ln chi with its statistical (jackknife) and systematic errors."""
    if not 0 < chi.value < 1:
        return math.nan, math.nan, math.nan
    xi = propagate(lambda x: -1.0 / np.log(x), chi)
    d = 1.0 / (chi.value * math.log(chi.value) ** 2)
    return float(xi.value), float(xi.error), syst * d


def analyse_file(path):
    """(a JSON-ready row of numbers, the Chi1 measurement) for one ensemble file."""
    with ensemble(path) as ens:
        net = StoredNetwork.from_ensemble(ens)
        sw2, sb2 = variances(ens)
        X = np.asarray(ens.read("data/X_probe"), dtype=float)
        c = measure_chi1(ens)
        lk = layer_kernels(ens, index=0)
    act = net.hidden
    mf = mean_field(act, sw2, sb2)
    M = net.depth
    prof = profile_summary(kernel_profile(act, sw2, sb2, X, M))
    hid = slice(0, M - 1)
    eps = lk.q_spread[0, hid] / 2
    zq = (lk.q.value[0, hid] - prof["q"][hid]) / np.hypot(lk.q.error[0, hid], eps * prof["q"][hid])
    zc = (lk.c.value[0, hid] - prof["c"][hid]) / np.hypot(lk.c.error[0, hid], eps)
    out = {"file": path, "activation": {"name": act.name, "p": act.p, "q": act.q, "r": act.r},
           "sigma_w2": sw2, "sigma_b2": sb2, "width": c.width, "depth": M,
           "replicas": int(c.chi_1.n_replicas), "probes": int(X.shape[0]), "phase": mf.phase,
           "chi_1": c.chi_1.to_dict(), "chi_c": c.chi_c.to_dict(), "systematic": c.systematic,
           "bulk_links": list(c.bulk), "mean_field": mf.to_dict(),
           "max_z_q": float(np.max(np.abs(zq))), "max_z_c": float(np.max(np.abs(zc))),
           "profile": {"q": lk.q[0].to_dict(), "c": lk.c[0].to_dict(),
                       "q_mf": prof["q"].tolist(), "c_mf": prof["c"].tolist()}}
    chi = c.chi_1 if mf.phase == "ordered" else c.chi_c
    xi, stat, syst = _xi(chi, c.systematic)
    out["xi_c"] = {"value": xi, "statistical": stat, "systematic": syst,
                   "from": "chi_1" if mf.phase == "ordered" else "chi_c (pairs at c*)"}
    if mf.phase == "ordered":
        fit = xi_from_profile(lk.layers, lk.c[0], fixed_point=1.0, window=(3, M - 1))
        ref = xi_from_profile(lk.layers, Estimate(prof["c"], np.full(M, 1e-6)), fixed_point=1.0,
                              window=(3, M - 1))
        out["xi_c_profile_fit"] = {"xi": fit.xi.to_dict(), "chi2": fit.chi2, "dof": fit.dof,
                                   "mean_field_same_window": float(ref.xi.value)}
    return out, c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("-o", "--outdir", default=".")
    ap.add_argument("--generate", metavar="DIR", help="write the ensembles into DIR first")
    ap.add_argument("--width", type=int, action="append", help="hidden width (repeatable; default 256)")
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--replicas", type=int, default=24)
    ap.add_argument("--probes", type=int, default=24)
    ap.add_argument("--sigma-b2", type=float, default=0.05)
    ap.add_argument("--sigma-w2", type=str, default=",".join(map(str, GRID)))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    files = list(a.files)
    if a.generate:
        files += generate(a.generate, widths=tuple(a.width or (256,)), depth=a.depth,
                          replicas=a.replicas, probes=a.probes, sigma_b2=a.sigma_b2,
                          grid=tuple(float(x) for x in a.sigma_w2.split(",")), seed=a.seed)
    if not files:
        ap.error("give ensemble files or --generate DIR")
    t1 = time.perf_counter()
    try:
        done = [analyse_file(f) for f in files]
        rows = [d[0] for d in done]
        cp = critical_point([d[1] for d in done])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: (r["width"], r["sigma_w2"]))
    act = ActivationSpec(**rows[0]["activation"])
    sb2 = rows[0]["sigma_b2"]
    crit_mf = critical_sigma_w2(act, sb2)
    summary = {"critical_sigma_w2": cp.to_dict(), "critical_sigma_w2_mean_field": crit_mf,
               "files": rows, "seconds_generate": round(t1 - t0, 1),
               "seconds_analyse": round(time.perf_counter() - t1, 1)}
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "order_to_chaos.json"), "w") as f:
        json.dump(summary, f, indent=1, default=lambda o: None)

    print(f"{'N':>4} {'sigma_w2':>8} {'chi_1':>16} {'MF':>7} {'chi_c':>16} {'MF':>7} "
          f"{'xi_c (stat)(syst)':>22} {'MF':>7} {'max|z| q, c':>12}")
    for r in rows:
        m = r["mean_field"]
        x = r["xi_c"]
        print(f"{r['width']:4d} {r['sigma_w2']:8.3g} {str(Estimate(r['chi_1']['value'], r['chi_1']['error'])):>16} "
              f"{m['chi_1']:7.4f} {str(Estimate(r['chi_c']['value'], r['chi_c']['error'])):>16} {m['chi_c']:7.4f} "
              f"{x['value']:9.2f} ({x['statistical']:.2f})({x['systematic']:.2f}) {m['xi_c']:7.2f} "
              f"{r['max_z_q']:5.1f} {r['max_z_c']:5.1f}")
        if "xi_c_profile_fit" in r:
            p = r["xi_c_profile_fit"]
            print(f"{'':14} c^(m) -> 1 fit: xi = {Estimate(p['xi']['value'], p['xi']['error'])} "
                  f"(mean-field profile, same window: {p['mean_field_same_window']:.2f})")
    print(f"critical sigma_w^2 from data: {cp.sigma_w2.value:.4f} +- {cp.sigma_w2.error:.4f} "
          f"(stat {cp.statistical:.4f}, finite-width syst {cp.systematic:.4f}); mean field {crit_mf:.4f}"
          + (f"; per width {cp.per_width}" if len(cp.per_width) > 1 else ""))

    widest = max(r["width"] for r in rows)
    wr = [r for r in rows if r["width"] == widest]
    sw = np.array([r["sigma_w2"] for r in wr])
    fine = np.linspace(sw.min(), sw.max(), 80)
    mfs = [mean_field(act, s, sb2) for s in fine]
    plots.chi_crossing(os.path.join(a.outdir, "chi_crossing.png"), sw,
                       [r["chi_1"]["value"] for r in wr], [r["chi_1"]["error"] for r in wr],
                       critical=(cp.sigma_w2.value, cp.sigma_w2.error),
                       theory=(fine, [m.chi_1 for m in mfs]))
    plots.xi_scan(os.path.join(a.outdir, "xi_c.png"), sw, [r["xi_c"]["value"] for r in wr],
                  [math.hypot(r["xi_c"]["statistical"] or 0, r["xi_c"]["systematic"] or 0) for r in wr],
                  theory=(fine, [m.xi_c for m in mfs]), critical=(cp.sigma_w2.value, cp.sigma_w2.error))
    pick = [min(wr, key=lambda r: abs(r["sigma_w2"] - s)) for s in (1.3, 2.0)]
    layers = np.arange(1, pick[0]["depth"] + 1)
    series = {f"sigma_w^2 = {r['sigma_w2']:g}": (r["profile"]["q"]["value"], r["profile"]["q"]["error"],
                                                  r["profile"]["c"]["value"], r["profile"]["c"]["error"])
              for r in pick}
    theory = {f"mean field {r['sigma_w2']:g}": (r["profile"]["q_mf"], r["profile"]["c_mf"]) for r in pick}
    plots.kernel_profiles(os.path.join(a.outdir, "profiles.png"), layers, series, theory=theory)
    print(f"figures and order_to_chaos.json in {a.outdir} (generate {t1 - t0:.0f} s, "
          f"analyse {time.perf_counter() - t1:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
