"""The ``langevin-nn analyze`` pipeline: measure what the file allows, name the switches for the rest.

    analyze(path, outdir) -> summary dict, and in outdir:
        summary.json   every number with its error (and tau_int for time averages)
        summary.csv    the same, one row per number: quantity, value, error, tau_int
        report.md      a short human-readable report
        *.png          the figures (langevin_nn.plots)

Sections, each run only if its datasets exist (``skipped`` lists the others with the recording
switch to turn on): run description; losses (curves with bands, time averages over the second
half with tau_int); layer kernels q^(m), c^(m) against the mean-field prediction (dense networks);
depth two-point function of q^(m), the translation test, G(r) fits, xi against time and the
long-range-order verdict; CKA (dense) or C(m, m', dy) and the structure factor (local); weight-norm
correlations; the measured chi_1 (snapshot at step 0); the NTK drift; the depth x time map of
the Lagrangian density (BBD terms, when recorded).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time as _time

import numpy as np

from ..errors import UserError
from .errors import Estimate, jackknife, time_average
from .files import BBD_SWITCH, BBD_VARS, SWITCHES, config_table, ensemble, has, variances

__all__ = ["analyze", "MIN_REPLICAS_CORRELATIONS"]

#: replicas needed for connected correlators and their tests
MIN_REPLICAS_CORRELATIONS = 8


class _Report:
    def __init__(self, outdir: str, figures: bool):
        self.outdir = outdir
        self.figures = figures
        self.summary: dict = {}
        self.skipped: list[dict] = []
        self.figs: list[str] = []
        self.md: list[str] = []

    def skip(self, section: str, reason: str, switch: str | None = None) -> None:
        self.skipped.append({"section": section, "reason": reason, "switch": switch})

    def fig(self, name: str, draw) -> None:
        if not self.figures:
            return
        path = os.path.join(self.outdir, name)
        draw(path)
        self.figs.append(name)


def _finite_rows(values: np.ndarray) -> np.ndarray:
    """Replicas whose series are finite throughout (diverged replicas drop out)."""
    v = values.reshape(values.shape[0], -1)
    return np.all(np.isfinite(v), axis=1)


# --------------------------------------------------------------------------------------------


def _run_section(ens, rep: _Report) -> dict:
    cfg = config_table(ens)
    net = cfg.get("network", {})
    st = ens.state()
    div = np.asarray(st.get("diverged", np.zeros(len(ens.replicas), bool)), dtype=bool)
    info = {
        "file": ens.path, "architecture": ens.attrs.get("architecture", net.get("architecture")),
        "widths": [int(w) for w in ens.read("network/widths")] if has_static(ens, "network/widths") else None,
        "activation": net.get("activation"), "sigma_w2": net.get("sigma_w2"),
        "sigma_b2": net.get("sigma_b2"), "replicas": int(len(ens.replicas)),
        "diverged": int(div.sum()), "steps_done": int(ens.steps_done), "time_done": float(ens.time_done),
        "integrator": ens.attrs.get("integrator"), "time_unit": ens.attrs.get("time_unit", ""),
        "config_hash": ens.config_hash,
    }
    rep.summary["run"] = info
    return info


def has_static(ens, name: str) -> bool:
    group = name.split("/", 1)[0]
    return group in ens.groups() and name.split("/", 1)[1] in ens.vars(group)


def _loss_section(ens, rep: _Report, plots, unit: str) -> None:
    names = [v for v in ens.vars("records") if v.startswith("loss_")]
    if not has(ens, "records/loss_train"):
        rep.skip("training loss", "not recorded", SWITCHES["records/loss_train"][1])
    t = np.asarray(ens.read("records/time"), dtype=float)
    S = t.size
    every = {c.group: c.every for c in ens.schema.cadences}["records"]
    out, curves = {}, {}
    for name in names:
        v = np.asarray(ens.read(f"records/{name}"), dtype=float)  # (R, S)
        ok = _finite_rows(v)
        if ok.sum() < 2:
            rep.skip(name, "fewer than two replicas with finite values")
            continue
        v = v[ok]
        per_t = jackknife(v)
        curves[name] = (t, np.asarray(per_t.value), np.asarray(per_t.error))
        entry = {"final": per_t[S - 1].to_dict(), "replicas_used": int(ok.sum())}
        if S >= 8:
            half = v[:, S // 2:]
            ta = time_average(half)
            entry["time_average_second_half"] = ta.to_dict()
            entry["tau_int_records"] = ta.tau_int
            entry["tau_int_steps"] = ta.tau_int * every
            entry["tau_int_convention"] = "Wolff: 1/2 + sum rho (emcee's integrated_time is twice this)"
        out[name] = entry
    rep.summary["loss"] = out
    if curves:
        rep.fig("loss_curves.png", lambda p: plots.loss_curves(p, curves, time_unit=unit))
        lines = [f"| {n} | {Estimate(**{k: e['final'][k] for k in ('value', 'error')})} | "
                 + (f"{Estimate(e['time_average_second_half']['value'], e['time_average_second_half']['error'])} "
                    f"(tau_int {e['tau_int_records']:.3g} records) |" if "time_average_second_half" in e else "- |")
                 for n, e in out.items()]
        rep.md += ["## Losses", "", "| loss | final (replica mean) | second-half time average |",
                   "| --- | --- | --- |", *lines, ""]


def _kernel_section(ens, rep: _Report, plots, info) -> object:
    from .kernels import layer_kernels
    from ..theory.meanfield import SUPPORTED, kernel_profile, mean_field, profile_summary

    if not has(ens, "probe_z"):
        for s in ("layer kernels q, c", "depth correlations of q", "CKA / field correlators"):
            rep.skip(s, "no probe pre-activations (probe_z)", SWITCHES["probe_z"][1])
        return None
    lk = layer_kernels(ens)
    S = lk.step.size
    sel = [0, S - 1] if S > 1 else [0]
    out = {"layers": [int(m) for m in lk.layers], "entries": {}}
    series = {}
    for s in sel:
        key = f"step_{int(lk.step[s])}"
        out["entries"][key] = {"step": int(lk.step[s]), "time": float(lk.time[s]),
                               "q": lk.q[s].to_dict(), "c": lk.c[s].to_dict(),
                               "finite_width_spread": [float(x) for x in lk.q_spread[s]]}
        series[f"step {int(lk.step[s])}"] = (lk.q.value[s], lk.q.error[s], lk.c.value[s], lk.c.error[s])
    theory = None
    sw2, sb2 = variances(ens)
    act = info.get("activation")
    if (info.get("architecture") == "dense" and act in SUPPORTED and math.isfinite(sw2)
            and int(lk.step[0]) == 0 and len(lk.layers) >= 2):
        X = np.asarray(ens.read("data/X_probe"), dtype=float)
        spec = _activation_of(ens)
        prof = profile_summary(kernel_profile(spec, sw2, sb2, X, len(lk.layers)))
        q_mf, c_mf = prof["q"], prof["c"]
        eps = lk.q_spread[0] / 2  # ~ 1/N: the finite-width systematic scale
        sq = np.hypot(lk.q.error[0], eps * np.abs(q_mf))
        sc = np.hypot(lk.c.error[0], eps)
        mf = mean_field(spec, sw2, sb2)
        out["mean_field"] = {
            "q": [float(x) for x in q_mf], "c": [float(x) for x in c_mf],
            "z_q": [float(x) for x in (lk.q.value[0] - q_mf) / sq],
            "z_c": [float(x) for x in (lk.c.value[0] - c_mf) / sc],
            "note": "z = (measured - mean field) / sqrt(stat^2 + syst^2), syst = (Var(q)/q^2 / 2) x "
                    "(q for q, 1 for c), the measured O(1/N) finite-width scale",
            "fixed_point": mf.to_dict()}
        theory = {"mean field": (q_mf, c_mf)}
    rep.summary["kernels"] = out
    rep.fig("kernels.png", lambda p: plots.kernel_profiles(p, lk.layers, series, theory=theory))
    rep.md += ["## Layer kernels", "",
               f"q^(m) and c^(m) on {ens.shape('probe_z/z_1')[2]} probe inputs, replica means with "
               "jackknife errors (figure `kernels.png`)."]
    if theory is not None:
        zq = np.abs(out["mean_field"]["z_q"])
        zc = np.abs(out["mean_field"]["z_c"])
        rep.md.append(f"Against the mean-field prediction at initialisation: largest deviation "
                      f"{np.nanmax(zq):.1f} sigma (q), {np.nanmax(zc):.1f} sigma (c), finite-width "
                      "systematic included.")
    rep.md.append("")
    return lk


def _activation_of(ens):
    from .forward import StoredNetwork
    return StoredNetwork.from_ensemble(ens).hidden


def _depth_section(ens, rep: _Report, plots, lk, unit: str, window, r_max) -> None:
    from .correlations import connected_two_point, translation_average
    from .order import fit_correlation_length, long_range_order, xi_effective, xi_vs_time
    from .symmetry import translation_test, translation_test_layers

    if lk is None:
        return
    q_rep = lk.q_rep[lk.finite]  # diverged replicas left out
    R = q_rep.shape[0]
    M = q_rep.shape[2]
    if R < MIN_REPLICAS_CORRELATIONS or M < 4:
        rep.skip("depth correlations of q", f"needs at least {MIN_REPLICAS_CORRELATIONS} replicas and "
                 f"4 layers (the file has {R} and {M})", f"ensemble.replicas >= {MIN_REPLICAS_CORRELATIONS}")
        return
    S = lk.step.size
    O = q_rep[:, S - 1]  # (R, M)
    G = connected_two_point(O)
    if window in (None, "auto"):
        # candidates: the longest run of layers with the most common width (the output layer and
        # layers of another width are boundaries); the bulk window is searched inside it
        w = np.asarray(ens.read("network/widths"))[1:]
        vals, counts = np.unique(w, return_counts=True)
        same = w == vals[np.argmax(counts)]
        runs, start = [], None
        for i, flag in enumerate(list(same) + [False]):
            if flag and start is None:
                start = i
            elif not flag and start is not None:
                runs.append((start, i - 1))
                start = None
        a, b = max(runs, key=lambda ab: ab[1] - ab[0])
        if b - a + 1 < 3:
            a, b = 0, M - 1
        sub = translation_test_layers(O[:, a:b + 1], "auto", r_max, labels=lk.layers[a:b + 1],
                                      min_length=min(4, b - a + 1))
        test = dataclasses.replace(sub, window=(sub.window[0] + a, sub.window[1] + a))
    else:
        lo, hi = (int(np.searchsorted(lk.layers, window[0])), int(np.searchsorted(lk.layers, window[1])))
        test = translation_test(G, (lo, hi), r_max, labels=lk.layers)
    lo, hi = test.window
    Gr = translation_average(G, (lo, hi), hi - lo)
    r = np.arange(len(np.atleast_1d(Gr.value)))
    fit = fit_correlation_length(r, Gr, plateau=True) if r.size >= 6 else fit_correlation_length(r, Gr)
    if not fit.reliable and fit.plateau_free:
        fit = fit_correlation_length(r, Gr)
    verdict = long_range_order(fit, M)
    xis, _ = xi_vs_time(r, [translation_average(connected_two_point(q_rep[:, s]), (lo, hi), hi - lo)
                            for s in range(S)], plateau=False)
    out = {"observable": "q^(m) (probe-averaged layer kernel)", "step": int(lk.step[-1]),
           "G": G.to_dict(), "layers": [int(m) for m in lk.layers],
           "translation_test": test.to_dict(), "G_r": Gr.to_dict(), "fit": fit.to_dict(),
           "xi_eff": xi_effective(Gr).to_dict(), "verdict": verdict.to_dict(),
           "xi_vs_time": {"step": [int(s) for s in lk.step], "time": [float(t) for t in lk.time],
                          "xi": xis.to_dict(), "plateau": "none (G(r) = A exp(-r/xi))"}}
    rep.summary["depth_correlations"] = out
    rf = np.linspace(0, r[-1], 100)
    rep.fig("G_r.png", lambda p: plots.correlator(
        p, r, Gr.value, Gr.error, fit=(rf, fit.curve(rf), f"xi = {fit.xi}"),
        title=f"G_q(r), layers {lk.layers[lo]}..{lk.layers[hi]}, step {int(lk.step[-1])}"))
    if S > 1:
        rep.fig("xi_time.png", lambda p: plots.xi_vs_time(p, lk.time, xis.value, xis.error, time_unit=unit))
    rep.fig("G_matrix.png", lambda p: plots.matrix(p, G.value, lk.layers, title="G_q(m, m')",
                                                   symmetric=True))
    rep.md += ["## Depth correlations of q^(m)", "",
               f"Connected G_q(m, m') over {R} replicas at step {int(lk.step[-1])} (`G_matrix.png`).",
               f"Translation test in the bulk window m = {lk.layers[lo]}..{lk.layers[hi]} "
               + ("(found on half of the replicas, tested on the other half) " if window in (None, "auto") else "")
               + f"(r <= {test.r_max}, {test.n_constraints} constraints): p = {test.p:.3g}, largest "
               f"deviation {test.max_deviation:.1f} sigma -> "
               f"{'consistent with' if test.passed() else 'violates'} translation invariance.",
               f"Fit G(r) = A exp(-r/xi){' + B' if fit.plateau_free else ''}: xi = {fit.xi} layers, "
               f"chi2/dof = {fit.chi2:.1f}/{fit.dof}{'' if fit.reliable else ' (not reliable: too few layers or G(r) not exponential)'} "
               f"(`G_r.png`; xi against time in `xi_time.png`).",
               ("Verdict: " + verdict.reason + "." if verdict.reason.startswith("no verdict") else
                f"Verdict: {'long-range order' if verdict.long_range else 'no long-range order'} "
                f"({verdict.reason})."), ""]


def _width_section(ens, rep: _Report, plots, info) -> None:
    from .correlations import cka, field_correlator, structure_factor

    arch = info.get("architecture")
    if not has(ens, "probe_z"):
        return
    if arch == "dense":
        C, layers = cka(ens)
        rep.summary["cka"] = {"layers": [int(m) for m in layers], "cka": C.to_dict(),
                              "representation": "z (pre-activations)", "step": int(ens.read("probe_z/step")[-1])}
        rep.fig("cka.png", lambda p: plots.matrix(p, C.value, layers, title="linear CKA (replica mean)"))
        rep.md += ["## Representation similarity", "",
                   f"Linear CKA between layers on the probe set, last entry (`cka.png`); "
                   f"CKA(1, M) = {C[0, len(layers) - 1]}.", ""]
        return
    if arch != "local":
        rep.skip("field correlators", f"C(m, m', dy) is for the local architecture (this is {arch})")
        return
    R = len(ens.replicas)
    if R < MIN_REPLICAS_CORRELATIONS:
        rep.skip("field correlators", f"needs at least {MIN_REPLICAS_CORRELATIONS} replicas (has {R})",
                 f"ensemble.replicas >= {MIN_REPLICAS_CORRELATIONS}")
        return
    fc = field_correlator(ens, "z")
    k, Sk = structure_factor(fc.C)
    out = {"z": {"layers": [int(m) for m in fc.labels], "C_dy0": fc.C[:, :, 0].to_dict(),
                 "C_same_layer": fc.C[np.arange(len(fc.labels)), np.arange(len(fc.labels))].to_dict(),
                 "structure_factor": {"k": [float(x) for x in k], "S": Sk.to_dict()}}}
    rep.fig("field_C.png", lambda p: plots.matrix(p, fc.C.value[:, :, 0], fc.labels,
                                                  title="C_z(m, m', dy = 0)", symmetric=True))
    rep.fig("structure_factor.png", lambda p: plots.structure_factor(p, k, Sk.value, Sk.error, fc.labels))
    lines = ["Field two-point function of z averaged over the width (`field_C.png`), "
             "structure factor S(m, k) (`structure_factor.png`)."]
    if has(ens, "snapshots"):
        try:
            fw = field_correlator(ens, "w")
            out["w"] = {"links": [int(m) for m in fw.labels], "C_dy0": fw.C[:, :, 0].to_dict(),
                        "C_same_link": fw.C[np.arange(len(fw.labels)), np.arange(len(fw.labels))].to_dict()}
            lines.append("Weight field C_W(m, m', dy) at the last snapshot: in summary.json.")
            if ens.entries["snapshots"] >= 2:
                fd = field_correlator(ens, "dw")
                out["dw"] = {"links": [int(m) for m in fd.labels],
                             "C_same_link": fd.C[np.arange(len(fd.labels)), np.arange(len(fd.labels))].to_dict()}
                lines.append("Its time differences D W between the last two snapshots: in summary.json.")
        except UserError as e:
            rep.skip("weight field", str(e).split(": ", 1)[-1])
    else:
        rep.skip("weight field C_W", "no parameter snapshots", SWITCHES["snapshots"][1])
    rep.summary["field_correlators"] = out
    rep.md += ["## Width correlations (local architecture)", "", *lines, ""]


def _norms_section(ens, rep: _Report) -> None:
    from .correlations import connected_two_point

    if not has(ens, "records/w_norm2"):
        rep.skip("weight-norm correlations", "weight norms not recorded", SWITCHES["records/w_norm2"][1])
        return
    w = np.asarray(ens.read("records/w_norm2", index=-1), dtype=float)  # (R, M)
    ok = _finite_rows(w)
    out = {"mean": jackknife(w[ok]).to_dict(), "step": int(ens.read("records/step")[-1])}
    if ok.sum() >= MIN_REPLICAS_CORRELATIONS:
        out["G"] = connected_two_point(w[ok]).to_dict()
    rep.summary["weight_norms"] = out


def _chi_section(ens, rep: _Report, plots, info) -> None:
    from .chi import measure_chi1
    from ..theory.meanfield import SUPPORTED, mean_field

    if not has(ens, "snapshots"):
        rep.skip("measured chi_1", "no parameter snapshots", SWITCHES["snapshots"][1])
        rep.skip("NTK drift", "no parameter snapshots", SWITCHES["snapshots"][1])
        return
    step0 = int(np.asarray(ens.read("snapshots/step"))[0])
    widths = info.get("widths") or []
    if info.get("architecture") == "dense" and len(widths) >= 4 and step0 == 0:
        c = measure_chi1(ens, snapshot=0, jacobian=True)
        out = c.to_dict()
        sw2, sb2 = variances(ens)
        act = _activation_of(ens)
        if act.name in SUPPORTED and math.isfinite(sw2):
            from ..theory.meanfield import derivative_covariance, kernel_profile

            mf = mean_field(act, sw2, sb2)
            X = np.asarray(ens.read("data/X_probe"), dtype=float)
            prof = kernel_profile(act, sw2, sb2, X, len(widths) - 1)
            qd = np.diagonal(prof, axis1=1, axis2=2)  # (M, K)
            per_link = sw2 * derivative_covariance(act, qd, qd, qd).mean(axis=1)[:-1]  # links 1..M-1
            first, last = c.bulk
            on_links = float(per_link[first - 1:last].mean())
            sig = math.hypot(float(c.chi_1.error), c.systematic)
            out["mean_field"] = mf.to_dict()
            out["mean_field_on_links"] = on_links
            out["mean_field_per_link"] = [float(x) for x in per_link]
            out["z_chi_1_on_links"] = (float(c.chi_1.value) - on_links) / sig
        rep.summary["chi_1"] = out
        rep.md += ["## chi_1 at initialisation", "",
                   f"Mean squared gain of a small perturbation per link, links {c.bulk[0]}..{c.bulk[1]}: "
                   f"chi_1 = {c.chi_1} (finite-width systematic {c.systematic:.2g}; from the "
                   f"input-output Jacobian {c.jacobian})"
                   + (f"; mean field on the same links (at their q^(m)) {out['mean_field_on_links']:.4f}, "
                      f"at the fixed point q* {out['mean_field']['chi_1']:.4f} ({out['mean_field']['phase']})."
                      if out.get("mean_field") and out["mean_field"].get("chi_1") is not None else "."), ""]
    else:
        why = ("needs a dense network with two hidden layers or more" if step0 == 0
               else "the first snapshot is not at step 0 (the initialisation)")
        rep.skip("measured chi_1", why)
    if ens.entries["snapshots"] >= 2:
        from .ntk import ntk_drift
        d = ntk_drift(ens)
        rep.summary["ntk"] = d.to_dict()
        unit = info.get("time_unit", "")
        rep.fig("ntk_drift.png", lambda p: plots.ntk_drift(p, d.time, d.drift.value, d.drift.error,
                                                           time_unit=unit))
        rep.md += ["## Neural tangent kernel", "",
                   f"Relative drift |Theta_t - Theta_0| / |Theta_0| at the last snapshot "
                   f"(step {int(d.step[-1])}): {d.drift[len(d.step) - 1]} (`ntk_drift.png`).", ""]
    else:
        rep.skip("NTK drift", "needs two snapshots or more", SWITCHES["snapshots"][1] + " (smaller than ensemble.steps)")


def _bbd_section(ens, rep: _Report, plots, unit: str) -> None:
    has_group = "bbd" in [c.group for c in ens.schema.cadences] and ens.entries.get("bbd", 0) > 0
    present = [v for v in BBD_VARS if has_group and v in ens.vars("bbd")]
    if not present:
        rep.skip("Lagrangian density (depth x time)", "no bulk-boundary terms in the file", BBD_SWITCH)
        return
    t = np.asarray(ens.read("bbd/time"), dtype=float)
    dens = None
    for v in present:  # per link m: kin_W^(m) + kin_z^(m+1) + cross^(m) + quad^(m)
        x = np.asarray(ens.read(f"bbd/{v}"), dtype=float)  # (R, S, M)
        dens = x if dens is None else dens + x
    mean = np.nanmean(dens, axis=0)
    links = np.arange(mean.shape[1])
    res = np.asarray(ens.read("bbd/residual"), dtype=float)
    rep.summary["lagrangian_density"] = {"terms": present, "mean": mean.tolist(),
                                         "max_identity_residual": float(np.nanmax(res))}
    rep.fig("lagrangian_density.png", lambda p: plots.depth_time_heatmap(
        p, t, links, mean, title="Lagrangian density per link", time_unit=unit))


# --------------------------------------------------------------------------------------------


def _flatten(prefix: str, obj, rows: list) -> None:
    if isinstance(obj, dict):
        if "value" in obj and "error" in obj:
            v, e, tau = obj["value"], obj["error"], obj.get("tau_int")
            if isinstance(v, list):
                arr_v, arr_e = np.array(v, dtype=object), np.array(e, dtype=object)
                for idx in np.ndindex(arr_v.shape):
                    rows.append([f"{prefix}[{','.join(map(str, idx))}]", arr_v[idx], arr_e[idx], ""])
            else:
                rows.append([prefix, v, e, "" if tau is None else tau])
            return
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, rows)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        rows.append([prefix, obj, "", ""])


def json_default(o):
    """``json.dump(..., default=json_default)``: NumPy scalars and arrays as JSON values, NaN and
    inf as null; anything else is an error (a summary holds numbers, strings and lists only)."""
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def analyze(source, outdir, *, window=None, r_max: int | None = None, figures: bool = True) -> dict:
    """Run every analysis the file supports and write summary.json, summary.csv, report.md and the
    figures into ``outdir`` (created). ``window`` = (first, last) layer of the bulk window of the
    translation test, or None / "auto" (found away from the boundaries). Returns the summary."""
    if figures:
        try:
            from .. import plots
        except ImportError:
            raise UserError("figures need matplotlib (pip install 'langevin_nn[plots]'); "
                            "or run with --no-figures") from None
    else:
        plots = None  # the figure callbacks are never called
    t0 = _time.perf_counter()
    os.makedirs(outdir, exist_ok=True)
    rep = _Report(os.fspath(outdir), figures)
    with ensemble(source) as ens:
        if "records" not in [c.group for c in ens.schema.cadences] or "network" not in ens.groups():
            raise UserError(f"{ens.path}: not an ensemble written by langevin_nn.run (no records or network)")
        if ens.entries.get("records", 0) == 0:
            raise UserError(f"{ens.path}: no committed records yet (the run has not checkpointed)")
        info = _run_section(ens, rep)
        unit = info["time_unit"]
        rep.md += [f"# Analysis of `{os.path.basename(ens.path)}`", "",
                   f"{info['architecture']} network {info['widths']}, {info['activation']}, "
                   f"sigma_w^2 = {info['sigma_w2']}, sigma_b^2 = {info['sigma_b2']}; "
                   f"{info['replicas']} replicas ({info['diverged']} diverged), "
                   f"{info['steps_done']} steps, time {info['time_done']:g} ({unit}), {info['integrator']}.",
                   "", "Errors: jackknife over replicas; time averages with tau_int by Wolff's "
                   "Gamma method (tau_int = 1/2 + sum rho; emcee's convention is twice this).", ""]
        _loss_section(ens, rep, plots, unit)
        lk = _kernel_section(ens, rep, plots, info)
        _depth_section(ens, rep, plots, lk, unit, window, r_max)
        _width_section(ens, rep, plots, info)
        _norms_section(ens, rep)
        _chi_section(ens, rep, plots, info)
        _bbd_section(ens, rep, plots, unit)
    rep.summary["skipped"] = rep.skipped
    rep.summary["figures"] = rep.figs
    rep.summary["seconds"] = round(_time.perf_counter() - t0, 3)
    summary = _clean(rep.summary)
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=json_default)
    rows: list = []
    _flatten("", {k: v for k, v in summary.items() if k not in ("skipped", "figures")}, rows)
    with open(os.path.join(outdir, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["quantity", "value", "error", "tau_int"])
        w.writerows(rows)
    if rep.skipped:
        rep.md += ["## Not measured", ""]
        rep.md += [f"- {s['section']}: {s['reason']}" + (f"; switch: `{s['switch']}`" if s["switch"] else "")
                   for s in rep.skipped]
        rep.md.append("")
    if rep.figs:
        rep.md += ["## Figures", "", *[f"- `{n}`" for n in rep.figs], ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(rep.md))
    return summary
