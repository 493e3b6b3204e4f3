"""``langevin-nn sft CONFIG``: the synaptic-field-theory couplings of a network and its data,
and (``--compare``) the predicted against the measured synaptic two-point function.

Parses, calls ``langevin_nn.sft``, prints; no physics here. Register with
``cli.add_command(sft)``. Bad input raises ``UserError`` (one line naming the key or file).
"""
from __future__ import annotations

import tomllib

import click
import numpy as np

from .errors import UserError


def _load(config: str, sets):
    from .config import load_config

    try:  # built-in examples (``quickstart``) as the main command resolves them
        from .cli import _config_source

        source = _config_source(config)
    except ImportError:  # pragma: no cover - cli without the helper
        source = config
    return load_config(source, overrides=tuple(sets))


def _ensemble_dynamics(cfg, info: dict, path: str):
    """The dynamics the ensemble ran with (its effective config), checked against CONFIG: the
    network, the data and lambda must agree (they define the cost)."""
    from .config import load_config

    text = info.get("config_effective") or ""
    if not text:
        return cfg.dynamics, []
    try:
        eff = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise UserError(f"{path}: unreadable config_effective attribute") from None
    mine = cfg.to_dict()
    for section in ("network", "data"):
        theirs = eff.get(section, {})
        for key, value in mine[section].items():
            if key in ("n_probe", "batch"):  # they do not change the full-batch cost
                continue
            if theirs.get(key) != value:
                raise UserError(f"{section}.{key}: {path} was run with {theirs.get(key)!r}, "
                                f"CONFIG has {value!r} (the cost must be the ensemble's)")
    dyn = load_config({"dynamics": eff.get("dynamics", {})}).dynamics
    if dyn.lam != cfg.dynamics.lam:
        raise UserError(f"dynamics.lambda: {path} was run with {dyn.lam.to_toml()!r}, CONFIG has "
                        f"{cfg.dynamics.lam.to_toml()!r}")
    notes = []
    for name in ("eta", "T", "beta", "dt"):
        s = getattr(dyn, name)
        if s.kind != "constant":
            notes.append(f"note: dynamics.{name} is a schedule; the prediction uses its value "
                         "at the last sampled step")
    if eff.get("data", {}).get("batch", "full") != "full":
        notes.append("note: minibatch run: the prediction has no minibatch noise (full-batch "
                     "gradients only)")
    return dyn, notes


@click.command("sft")
@click.argument("config")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set data.reduction=sum (repeatable).")
@click.option("--at", "at", default="zero", show_default=True, metavar="zero|init|FILE[:K]",
              help="Reference point: W = 0, the initial weights, or the final state (snapshot K) "
                   "of an ensemble file.")
@click.option("--replica", type=int, default=0, show_default=True,
              help="Replica whose initial weights or state is the reference point.")
@click.option("--field", "field_names", multiple=True, metavar="NAME",
              help="Field to list by site and to compare (w_1, w_2, b_1, ...; repeatable; "
                   "default: all fields listed, weight fields compared).")
@click.option("--spacing", type=float, default=1.0, show_default=True,
              help="Lattice spacing a of the continuum limit (Eq. 17).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the couplings (and the comparison) as JSON.")
@click.option("--h5", "h5_out", type=click.Path(dir_okay=False), default=None,
              help="Write the couplings, the Hessian (and the comparison) as HDF5.")
@click.option("--hessian/--no-hessian", "with_hessian", default=False,
              help="Include the full Hessian in the JSON output (always in HDF5).")
@click.option("--compare", "compare_file", type=click.Path(dir_okay=False), default=None,
              help="Ensemble file of this network and data: predicted vs measured C(d).")
@click.option("--snapshots", "snapshots_from", type=int, default=None, metavar="K",
              help="With --compare: use snapshots K.. of every replica instead of the final state.")
def sft(config, sets, at, replica, field_names, spacing, json_out, h5_out, with_hessian,
        compare_file, snapshots_from):
    """Synaptic-field-theory couplings of CONFIG's network and data (SFT Eqs. 11-19)."""
    from . import sft as S
    from .boundary.sources import build_boundary
    from .bulk.networks import build_layout

    if not spacing > 0:
        raise UserError(f"--spacing: the lattice spacing must be > 0, got {spacing!r}")
    cfg = _load(config, sets)
    layout = build_layout(cfg.network)
    fields = S.lattice_fields(layout, cfg.network)
    for name in field_names:
        S.field_by_name(fields, name)
    bd = build_boundary(cfg, layout)
    cost = S.training_cost(cfg, layout, bd)
    theta0, ref = S.reference_point(at, cfg, layout, replica)
    quad = S.is_quadratic(cfg)
    meta = {"config": str(config), "config_hash": cfg.hash, "architecture": layout.architecture,
            "widths": list(layout.widths), "n_par": layout.n_par, "P": int(bd.X_train.shape[0]),
            "loss": cfg.data.loss, "reduction": cfg.data.reduction, "lambda": cost.lam,
            "scale": cost.scale}
    ex = S.expand(cost, theta0, fields, a=spacing, quadratic=quad, reference=ref, meta=meta)

    where = {"zero": "W = 0", "init": f"initial weights of replica {replica}"}.get(
        ref["kind"], f"replica {replica} of {ref.get('file')} at {ref.get('at')} "
                     f"(step {ref.get('step')})")
    kind = ("exactly quadratic (one linear layer, MSE): the expansion is exact"
            if quad else "not quadratic: Taylor expansion to second order about the reference")
    click.echo(f"SFT of {config}: {layout.architecture} network {list(layout.widths)}, "
               f"{layout.n_par} parameters; P = {meta['P']} samples, {cfg.data.loss} "
               f"({cfg.data.reduction}), lambda = {cost.lam:g}")
    click.echo(f"reference: {where}; cost {kind}")
    click.echo(f"C0 = {ex.value:.6g}, |dC/dtheta| = {np.linalg.norm(ex.gradient):.3g}, "
               f"Hessian eigenvalues in [{ex.eig_min:.4g}, {ex.eig_max:.4g}]")
    click.echo("")
    click.echo(ex.table(set(field_names) if field_names else None))

    out = ex.to_dict()
    if not with_hessian:
        out_json = {k: v for k, v in out.items() if k != "hessian"}
    else:
        out_json = out

    if compare_file is not None:
        samples, info = S.ensemble_samples(compare_file, layout, snapshots_from)
        dyn, notes = _ensemble_dynamics(cfg, info, compare_file)
        pred, desc = S.dynamics_covariance(dyn, ex.hessian, step=info["step"])
        chosen = ([S.field_by_name(fields, n) for n in field_names] if field_names
                  else [f for f in fields if f.kind == "weight"])
        comp = S.compare_two_point(samples, pred, chosen, desc)
        click.echo("")
        click.echo(f"two-point function C(d) = mean_i Cov(W_i, W_(i+d)) of "
                   f"{', '.join(f.name for f in chosen)}: {compare_file} ({info['samples']}, "
                   f"{info['replicas']} replicas, {info['diverged']} diverged) against the "
                   f"prediction ({desc}) from the Hessian at the reference point")
        gnorm = np.linalg.norm(ex.gradient)
        if not quad and gnorm > 1e-6 * max(1.0, abs(ex.eig_max)):
            notes.append(f"note: the reference point is not a stationary point (|dC/dtheta| = "
                         f"{gnorm:.3g}); the harmonic prediction assumes a minimum")
        if dyn.integrator == "overdamped":
            tau = 1.0 / (float(dyn.eta.value(info["step"])) * ex.eig_min)
            notes.append(f"slowest relaxation: 1/(eta lambda_min) = {tau:.4g} steps "
                         f"(samples up to step {info['step']})")
        for n in notes:
            click.echo(n)
        click.echo(comp.table())
        if len(chosen) > 1:
            for f in chosen:
                c1 = S.compare_two_point(samples, pred, [f], desc)
                click.echo(f"  {f.name}: chi^2 = {c1.chi2:.2f} for {c1.dof}, p = {c1.p_value:.3g}")
        cd = comp.to_dict()
        out["compare"] = cd
        out_json["compare"] = cd
        out["compare_info"] = {k: v for k, v in info.items() if k != "config_effective"}

    if json_out:
        S.write_json(json_out, out_json)
        click.echo(f"wrote {json_out}", err=True)
    if h5_out:
        S.write_h5(h5_out, out)
        click.echo(f"wrote {h5_out}", err=True)


__all__ = ["sft"]
