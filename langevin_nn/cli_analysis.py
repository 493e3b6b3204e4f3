"""The ``analyze`` and ``meanfield`` commands (registered on the ``langevin-nn`` group with
``cli.add_command``). They parse, call ``langevin_nn.analysis`` / ``langevin_nn.theory``, print.
Bad input raises ``UserError`` (one line; the CLI's ``main`` exits with status 2)."""
from __future__ import annotations

import json
import math
import os

import click

from .errors import UserError


def _fmt(x: float, spec: str = ".6g") -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


@click.command()
@click.argument("file", type=click.Path())
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for summary.json, summary.csv, report.md and the figures.")
@click.option("--window", nargs=2, type=int, default=None, metavar="FIRST LAST",
              help="Bulk window (layers) of the translation test (default: found automatically).")
@click.option("--r-max", type=int, default=None, help="Largest depth separation r tested.")
@click.option("--no-figures", is_flag=True, help="Write the numbers only.")
def analyze(file, outdir, window, r_max, no_figures):
    """Measure what the ensemble FILE allows and write a report into OUTDIR."""
    from .analysis.report import analyze as run_analysis

    summary = run_analysis(file, outdir, window=tuple(window) if window else None, r_max=r_max,
                           figures=not no_figures)
    click.echo(f"{os.path.join(outdir, 'report.md')}: {len(summary['figures'])} figures, "
               f"summary.json and summary.csv ({summary['seconds']:.1f} s)")
    for s in summary["skipped"]:
        hint = f"; set {s['switch']}" if s["switch"] else ""
        click.echo(f"  not measured: {s['section']} ({s['reason']}{hint})", err=True)


def _activation(name: str, params: str | None):
    from .config import ActivationSpec
    from .theory.meanfield import SUPPORTED

    if name not in SUPPORTED:
        raise UserError(f"--activation: unknown activation {name!r} (supported: {', '.join(SUPPORTED)})")
    kw = {}
    for item in (params or "").split(","):
        if not item.strip():
            continue
        key, _, val = item.partition("=")
        if key.strip() not in ("p", "q", "r"):
            raise UserError(f"--activation-params: expected p=..,q=..,r=.., got {item!r}")
        try:
            kw[key.strip()] = float(val)
        except ValueError:
            raise UserError(f"--activation-params: {item!r} is not a number") from None
    return ActivationSpec(name, **kw)


@click.command()
@click.option("--activation", default="tanh", show_default=True, help="Activation name.")
@click.option("--activation-params", default=None, metavar="p=..,q=..,r=..",
              help="Coefficients of linear / quadratic activations.")
@click.option("--sigma-w2", "sigma_w2", type=float, multiple=True,
              help="sigma_w^2 (repeatable; default: a few values around the critical line).")
@click.option("--sigma-b2", "sigma_b2", type=float, default=0.05, show_default=True)
@click.option("--from", "from_file", type=click.Path(), default=None,
              help="Take activation, sigma_w^2, sigma_b^2, depth and probe inputs from an ensemble file.")
@click.option("--depth", type=int, default=None, help="Print the depth profiles q^(m), c^(m).")
@click.option("--q1", type=float, default=None, help="q^(1) of the profile (default sigma_w^2 + sigma_b^2).")
@click.option("--c1", type=float, default=0.5, show_default=True, help="c^(1) of the profile.")
@click.option("--phase-diagram", type=click.Path(dir_okay=False), default=None,
              help="Draw the phase diagram (xi_c and the critical line) into this PNG.")
@click.option("--grid", type=int, default=40, show_default=True,
              help="Points along sigma_w^2 of the phase diagram (half as many along sigma_b^2).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def meanfield(activation, activation_params, sigma_w2, sigma_b2, from_file, depth, q1, c1,
              phase_diagram, grid, as_json):
    """Mean-field q*, c*, chi_1, xi_q, xi_c and the order-to-chaos line (Poole et al. 2016,
    Schoenholz et al. 2017); optionally the depth profiles and the phase diagram."""
    import numpy as np

    from .theory import meanfield as mf

    X = None
    if from_file:
        from .analysis.files import ensemble, variances
        from .analysis.forward import StoredNetwork

        with ensemble(from_file) as ens:
            net = StoredNetwork.from_ensemble(ens)
            spec = net.hidden
            sw, sb2 = variances(ens)
            if not math.isfinite(sw):
                raise UserError(f"{from_file}: the file does not say sigma_w2 (no config_effective)")
            sigma_w2, sigma_b2 = (sw,), sb2
            depth = depth or net.depth
            X = np.asarray(ens.read("data/X_probe"), dtype=float)
    else:
        spec = _activation(activation, activation_params)
    crit = mf.critical_sigma_w2(spec, sigma_b2)
    if not sigma_w2:
        base = crit if math.isfinite(crit) else 1.5
        sigma_w2 = tuple(round(base * f, 4) for f in (0.75, 1.0, 1.15))
    rows = [mf.mean_field(spec, s, sigma_b2) for s in sigma_w2]
    out = {"activation": spec.name, "sigma_b2": sigma_b2, "critical_sigma_w2": crit,
           "points": [r.to_dict() for r in rows]}
    profiles = []
    if depth:
        for r in rows:
            if X is not None:
                prof = mf.profile_summary(mf.kernel_profile(spec, r.sigma_w2, sigma_b2, X, depth))
            else:
                qa = q1 if q1 is not None else r.sigma_w2 + sigma_b2
                S0 = np.array([[qa, c1 * qa], [c1 * qa, qa]])
                # kernel_profile starts from inputs; build two inputs with that kernel at layer 1
                L = np.linalg.cholesky((S0 - sigma_b2) / r.sigma_w2 + 1e-300 * np.eye(2)) \
                    if np.all(np.linalg.eigvalsh((S0 - sigma_b2) / r.sigma_w2) > 0) else None
                if L is None:
                    raise UserError("--q1/--c1: q^(1) - sigma_b^2 must give a positive definite input kernel")
                Xp = L * np.sqrt(2.0)  # two inputs in N_0 = 2 with X X^T / N_0 = L L^T
                prof = mf.profile_summary(mf.kernel_profile(spec, r.sigma_w2, sigma_b2, Xp, depth))
            profiles.append(prof)
        out["profiles"] = [{"sigma_w2": r.sigma_w2, "q": p["q"].tolist(), "c": p["c"].tolist()}
                           for r, p in zip(rows, profiles)]
    if phase_diagram:
        from . import plots

        sw_grid = np.linspace(0.5, max(4.0, 1.5 * max(sigma_w2)), max(grid, 4))
        sb_grid = np.linspace(0.0, max(0.5, 2 * sigma_b2), max(grid // 2, 3))
        pg = mf.phase_grid(spec, sw_grid, sb_grid)
        line = (sb_grid, mf.critical_line(spec, sb_grid))
        plots.phase_diagram(phase_diagram, pg, line, activation=spec.name,
                            points=[(r.sigma_w2, sigma_b2, f"{r.sigma_w2:g}") for r in rows])
        out["phase_diagram"] = phase_diagram
    if as_json:
        click.echo(json.dumps(out, indent=1, default=lambda o: None))
        return
    click.echo(f"activation {spec.name}, sigma_b^2 = {sigma_b2:g}: critical sigma_w^2 = {_fmt(crit, '.4f')} "
               "(chi_1 = 1)")
    click.echo(f"{'sigma_w2':>9} {'q*':>9} {'c*':>8} {'chi_1':>8} {'chi_c':>8} {'xi_q':>8} {'xi_c':>9}  phase")
    for r in rows:
        click.echo(f"{r.sigma_w2:9.4g} {_fmt(r.q_star, '9.5f')} {_fmt(r.c_star, '8.4f')} "
                   f"{_fmt(r.chi_1, '8.4f')} {_fmt(r.chi_c, '8.4f')} {_fmt(r.xi_q, '8.3f')} "
                   f"{_fmt(r.xi_c, '9.3f')}  {r.phase}")
    for r, p in zip(rows, profiles):
        click.echo(f"profile at sigma_w^2 = {r.sigma_w2:g}:  m, q^(m), c^(m)")
        for m, (q, c) in enumerate(zip(p["q"], p["c"]), start=1):
            click.echo(f"  {m:3d} {q:10.6f} {c:9.6f}")
    if phase_diagram:
        click.echo(f"phase diagram: {phase_diagram}")
