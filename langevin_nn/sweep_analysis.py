"""Analysis across a sweep: the scalar results of ``analyze`` against the varied values, and the
critical sigma_w^2 from the sweep's files.

    t = tabulate("out/otc")                        # every scalar of analyze, per point
    v, e = t.column("loss.loss_probe.final")       # values and errors (NaN where missing)
    t.combine_seeds().to_csv("table.csv")          # means over ensemble.seed
    for cp in critical_points("out/otc"):          # one per group of the other varied values
        print(cp.value, cp.error, cp.mean_field)   # data (stat (+) finite-width syst) vs mean field
    write_report("out/otc")                        # DIR/analysis: tables, critical point, figures

Per point, ``analyze`` (``langevin_nn.analysis.report``, without figures) writes its
``summary.json`` into ``DIR/points/NAME/analysis/``; it is reused while it is newer than the
ensemble file. A *scalar* is any number of the summary: a ``{value, error}`` pair (the
estimators' results: final losses, their time averages, xi and the fit parameters, chi_1, ...)
or a plain number (the translation test's p-value and largest deviation, counts, ...), named by
its dotted path (``depth_correlations.fit.xi``). Arrays (per layer, per link) are left out.

Combining seeds: points that differ only in ``ensemble.seed`` are independent ensembles of the
same physics; their mean has error sqrt(sum e_i^2) / n when every point has an error, else the
standard error of the seeds' scatter, std / sqrt(n).

The critical point: ``analysis.chi.critical_point`` over the complete files of each group of
points that differ only in ``network.sigma_w2`` (and seed, width, and keys zipped with
sigma_w^2): the crossing of the measured chi_1 with 1, its statistical error and the O(1/N)
finite-width systematic combined in quadrature (docs/analysis.md), beside the mean-field value
``theory.meanfield.critical_sigma_w2`` of the same activation and sigma_b^2.
"""
from __future__ import annotations

import csv
import fnmatch
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .analysis.report import json_default
from .errors import UserError
from .sweep import SweepIndex, refresh

__all__ = ["SweepTable", "SweepCriticalPoint", "point_summary", "scalars", "tabulate",
           "critical_points", "write_report", "ANALYSIS_DIR"]

ANALYSIS_DIR = "analysis"
SEED_KEY = "ensemble.seed"
SW2_KEY = "network.sigma_w2"
#: keys that may vary inside one critical-point group (width: critical_point extrapolates in 1/N)
_CRIT_FREE = (SW2_KEY, SEED_KEY, "network.widths", "network.width")
#: summary sections that are bookkeeping, not results
_SKIP = ("skipped", "figures", "seconds", "run")
#: plain numbers (no error) that are results and get a figure by default
PLAIN_FIGURES = ("*.translation_test.p", "*.translation_test.max_deviation_sigma")


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def scalars(summary: dict) -> dict[str, tuple[float, float]]:
    """Every scalar of an ``analyze`` summary: dotted name -> (value, error); the error is NaN
    for plain numbers. Arrays and the bookkeeping sections (run, skipped, figures) are left out."""
    out: dict[str, tuple[float, float]] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            if "value" in obj and "error" in obj:
                v, e = obj["value"], obj["error"]
                if _num(v) or v is None:
                    out[prefix] = (math.nan if v is None else float(v),
                                   float(e) if _num(e) else math.nan)
                return
            for k, x in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif _num(obj):
            out[prefix] = (float(obj), math.nan)

    for k, v in summary.items():
        if k not in _SKIP:
            walk(k, v)
    return out


def point_summary(idx: SweepIndex, p: dict, *, refresh_cache: bool = False,
                  figures: bool = False) -> dict:
    """The ``analyze`` summary of one complete point (computed once, cached beside its file)."""
    from .analysis.report import analyze

    path = idx.path_of(p)
    outdir = os.path.join(idx.point_dir(p), ANALYSIS_DIR)
    cached = os.path.join(outdir, "summary.json")
    if (not refresh_cache and os.path.exists(cached)
            and os.path.getmtime(cached) >= os.path.getmtime(path)):
        with open(cached) as f:
            return json.load(f)
    return analyze(path, outdir, figures=figures)


@dataclass
class SweepTable:
    """Scalars per point: ``rows`` (name, file, status, values of the varied ``keys``),
    ``quantities`` (dotted names), ``value`` and ``error`` of shape (points, quantities), NaN
    where a point lacks a quantity; ``n`` (points, ) counts the seeds behind each row."""

    keys: list[str]
    rows: list[dict]
    quantities: list[str]
    value: np.ndarray
    error: np.ndarray
    n: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.n is None:
            self.n = np.ones(len(self.rows), dtype=int)

    def column(self, quantity: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, errors) of one quantity over the rows."""
        if quantity not in self.quantities:
            close = fnmatch.filter(self.quantities, f"*{quantity.rsplit('.', 1)[-1]}*")[:5]
            raise UserError(f"{quantity}: not a scalar of this sweep's analysis"
                            + (f" (similar: {', '.join(close)})" if close else ""))
        j = self.quantities.index(quantity)
        return self.value[:, j], self.error[:, j]

    def x(self, key: str) -> list:
        """The values of a varied key over the rows."""
        return [r["values"].get(key) for r in self.rows]

    def select(self, patterns: Sequence[str]) -> "SweepTable":
        """The quantities matching any of the glob patterns (``loss.*.final``)."""
        keep = [j for j, q in enumerate(self.quantities)
                if any(fnmatch.fnmatchcase(q, pat) for pat in patterns)]
        if not keep:
            raise UserError(f"no scalar of the sweep's analysis matches {', '.join(patterns)}")
        return SweepTable(self.keys, self.rows, [self.quantities[j] for j in keep],
                          self.value[:, keep], self.error[:, keep], self.n)

    def combine_seeds(self) -> "SweepTable":
        """Rows that differ only in ensemble.seed averaged (see the module docstring)."""
        if SEED_KEY not in self.keys:
            return self
        keys = [k for k in self.keys if k != SEED_KEY]
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.rows):
            g = json.dumps([r["values"].get(k) for k in keys], default=str)
            groups.setdefault(g, []).append(i)
        rows, vals, errs, ns = [], [], [], []
        for g, members in groups.items():
            v, e = self.value[members], self.error[members]
            mean = np.full(v.shape[1], np.nan)
            err = np.full(v.shape[1], np.nan)
            for j in range(v.shape[1]):
                ok = np.isfinite(v[:, j])
                m = int(ok.sum())
                if not m:
                    continue
                mean[j] = v[ok, j].mean()
                ej = e[ok, j]
                if np.all(np.isfinite(ej)):
                    err[j] = math.sqrt(float(np.sum(ej ** 2))) / m
                elif m > 1:
                    err[j] = float(v[ok, j].std(ddof=1)) / math.sqrt(m)
            first = self.rows[members[0]]
            rows.append({"name": "+".join(self.rows[i]["name"] for i in members),
                         "values": {k: first["values"].get(k) for k in keys},
                         "status": ",".join(sorted({self.rows[i]["status"] for i in members})),
                         "seeds": [self.rows[i]["values"].get(SEED_KEY) for i in members],
                         "file": [self.rows[i]["file"] for i in members]})
            vals.append(mean)
            errs.append(err)
            ns.append(len(members))
        return SweepTable(keys, rows, list(self.quantities), np.array(vals), np.array(errs),
                          np.array(ns))

    def to_records(self) -> list[dict]:
        out = []
        for i, r in enumerate(self.rows):
            rec = {"name": r["name"], **{k: r["values"].get(k) for k in self.keys},
                   "status": r["status"], "n": int(self.n[i])}
            for j, q in enumerate(self.quantities):
                rec[q] = _clean(self.value[i, j])
                rec[f"{q}.error"] = _clean(self.error[i, j])
            out.append(rec)
        return out

    def to_csv(self, path) -> str:
        """Wide CSV: name, the varied keys, status, n, then value and error of each quantity."""
        recs = self.to_records()
        head = ["name", *self.keys, "status", "n"]
        for q in self.quantities:
            head += [q, f"{q}.error"]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(head)
            for r in recs:
                w.writerow(["" if r.get(h) is None else
                            (json.dumps(r[h]) if isinstance(r[h], (dict, list)) else r[h])
                            for h in head])
        return str(path)

    def to_json(self, path) -> str:
        with open(path, "w") as f:
            json.dump({"keys": self.keys, "quantities": self.quantities,
                       "rows": self.to_records()}, f, indent=1, default=str)
        return str(path)


def _clean(x):
    x = float(x)
    return x if math.isfinite(x) else None


def tabulate(sweep_dir, quantities: Sequence[str] | None = None, *, refresh_cache: bool = False,
             log=None) -> SweepTable:
    """Every scalar of ``analyze`` (or those matching the glob ``quantities``) for every
    complete point of the sweep in ``sweep_dir``; points not complete get NaN rows."""
    idx = refresh(SweepIndex.load(sweep_dir))
    rows, per_point = [], []
    names: dict[str, None] = {}
    for p in idx.points:
        rows.append({"name": p["name"], "values": dict(p["values"]), "status": p["status"],
                     "file": idx.path_of(p)})
        if p["status"] != "complete":
            per_point.append({})
            continue
        try:
            sc = scalars(point_summary(idx, p, refresh_cache=refresh_cache))
        except UserError as e:
            if log:
                log(f"{p['name']}: not analysed: {e}")
            sc = {}
        per_point.append(sc)
        names.update(dict.fromkeys(sc))
    if not names:
        raise UserError(f"{idx.dir}: no complete point to tabulate "
                        f"({', '.join(f'{v} {k}' for k, v in idx.counts().items())})")
    qs = list(names)
    value = np.full((len(rows), len(qs)), np.nan)
    error = np.full((len(rows), len(qs)), np.nan)
    for i, sc in enumerate(per_point):
        for j, q in enumerate(qs):
            if q in sc:
                value[i, j], error[i, j] = sc[q]
    t = SweepTable(idx.keys, rows, qs, value, error)
    return t.select(quantities) if quantities else t


# --------------------------------------------------------------------------------------------
# The critical point


@dataclass
class SweepCriticalPoint:
    """The critical sigma_w^2 of one group of sweep points (``group``: the values of the other
    varied keys), from ``analysis.chi.critical_point``; ``mean_field``: the mean-field value of
    the same activation and sigma_b^2."""

    group: dict
    critical: Any  # analysis.chi.CriticalPoint
    mean_field: float
    activation: str
    sigma_b2: float
    files: list

    @property
    def value(self) -> float:
        return float(self.critical.sigma_w2.value)

    @property
    def error(self) -> float:
        return float(self.critical.sigma_w2.error)

    @property
    def z(self) -> float:
        """(data - mean field) / stated uncertainty."""
        return (self.value - self.mean_field) / self.error if self.error > 0 else math.nan

    @property
    def consistent(self) -> bool:
        """Whether the mean-field value lies within the stated uncertainty."""
        return abs(self.value - self.mean_field) <= self.error

    def to_dict(self) -> dict:
        return {"group": self.group, "sigma_w2_critical": self.value, "error": self.error,
                "statistical": self.critical.statistical, "systematic": self.critical.systematic,
                "mean_field": self.mean_field, "z": self.z, "within_error": self.consistent,
                "activation": self.activation, "sigma_b2": self.sigma_b2,
                "detail": self.critical.to_dict()}


def critical_points(sweep_dir, *, snapshot: int = 0, links=None, n_mc: int = 400,
                    seed: int = 0) -> list[SweepCriticalPoint]:
    """The critical sigma_w^2 of a sweep over ``network.sigma_w2`` (one result per group of
    the other varied keys), from the complete points' files (``snapshot`` 0: initialisation)."""
    from .analysis.chi import critical_point
    from .config import load_config
    from .theory.meanfield import SUPPORTED, critical_sigma_w2

    idx = refresh(SweepIndex.load(sweep_dir))
    if SW2_KEY not in idx.keys:
        raise UserError(f"{idx.dir}: the sweep does not vary {SW2_KEY} (varied: "
                        f"{', '.join(idx.keys)}); the critical point needs several sigma_w^2")
    zipped = set()
    for a in idx.data.get("axes", []):
        if SW2_KEY in a["keys"]:
            zipped.update(a["keys"])
    group_keys = [k for k in idx.keys if k not in _CRIT_FREE and k not in zipped]
    groups: dict[str, list[dict]] = {}
    for p in idx.complete():
        g = json.dumps([p["values"].get(k) for k in group_keys], default=str)
        groups.setdefault(g, []).append(p)
    if not groups:
        raise UserError(f"{idx.dir}: no complete point yet "
                        f"({', '.join(f'{v} {k}' for k, v in idx.counts().items())})")
    out = []
    for members in groups.values():
        files = [idx.path_of(p) for p in members]
        with warnings.catch_warnings():  # polyfit through few points near the crossing
            warnings.simplefilter("ignore", np.exceptions.RankWarning
                                  if hasattr(np, "exceptions") else np.RankWarning)
            cp = critical_point(files, snapshot=snapshot, links=links, n_mc=n_mc, seed=seed)
        cfg = load_config(idx.path_of(members[0], "config"))
        act = cfg.network.activation
        sb2 = cfg.network.sigma_b2 if cfg.network.bias else 0.0
        mf = critical_sigma_w2(act, sb2) if act.name in SUPPORTED else math.nan
        out.append(SweepCriticalPoint({k: members[0]["values"].get(k) for k in group_keys}, cp,
                                      float(mf), act.name, float(sb2), files))
    return out


# --------------------------------------------------------------------------------------------
# Report


def _x_key(keys: Sequence[str], table: SweepTable) -> str | None:
    """The first varied key with numeric values (not the seed): the abscissa of the figures."""
    for k in keys:
        if k == SEED_KEY:
            continue
        if all(_num(v) for v in table.x(k)):
            return k
    return next((k for k in keys if k != SEED_KEY), keys[0] if keys else None)


def _series(table: SweepTable, quantity: str, xkey: str) -> dict:
    others = [k for k in table.keys if k != xkey]
    v, e = table.column(quantity)
    series: dict[str, tuple[list, list, list]] = {}
    for i, r in enumerate(table.rows):
        if not math.isfinite(v[i]):
            continue
        label = ", ".join(f"{k.rsplit('.', 1)[-1]} = {r['values'].get(k)}" for k in others)
        s = series.setdefault(label, ([], [], []))
        s[0].append(r["values"].get(xkey))
        s[1].append(v[i])
        s[2].append(e[i])
    return series


def _fig_name(q: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in q) + ".png"


def write_report(sweep_dir, outdir=None, *, quantities: Sequence[str] | None = None,
                 figures: bool = True, refresh_cache: bool = False, log=None) -> dict:
    """Tabulate the sweep (``table.csv``/``table.json``; with ensemble.seed varied also
    ``table_seed_mean.csv``), locate the critical point when network.sigma_w2 is varied
    (``critical_point.json``), draw one figure per quantity with errors against the first varied
    key and the chi_1 crossing, write ``report.md``; all into ``outdir``
    (default DIR/analysis). Returns what was written."""
    idx = SweepIndex.load(sweep_dir)
    outdir = os.fspath(outdir) if outdir else os.path.join(idx.dir, ANALYSIS_DIR)
    os.makedirs(outdir, exist_ok=True)
    if figures:
        try:
            from . import sweep_plots
        except ImportError:
            raise UserError("figures need matplotlib (pip install 'langevin_nn[plots]'); "
                            "or ask for no figures") from None
    table = tabulate(idx.dir, quantities, refresh_cache=refresh_cache, log=log)
    written = {"outdir": outdir, "tables": [table.to_csv(os.path.join(outdir, "table.csv")),
                                            table.to_json(os.path.join(outdir, "table.json"))],
               "figures": [], "critical_points": [], "skipped": []}
    shown = table
    if SEED_KEY in table.keys and len(table.keys) > 1:
        shown = table.combine_seeds()
        written["tables"].append(shown.to_csv(os.path.join(outdir, "table_seed_mean.csv")))
    md = [f"# Sweep `{idx.name}`", "",
          f"{len(idx.points)} points over {', '.join(idx.keys)}; "
          + ", ".join(f"{v} {k}" for k, v in idx.counts().items()) + ".",
          "Tables: `table.csv` (one row per point, value and error of every scalar of `analyze`)"
          + (", `table_seed_mean.csv` (means over seeds)" if shown is not table else "") + ".", ""]
    xkey = _x_key(shown.keys, shown)
    if figures and xkey is not None:
        # results with an error bar of their own (not a scatter over seeds), and a few plain ones
        fig_qs = [q for j, q in enumerate(table.quantities)
                  if np.any(np.isfinite(table.error[:, j]))
                  or any(fnmatch.fnmatchcase(q, pat) for pat in PLAIN_FIGURES)]
        for q in fig_qs:
            series = _series(shown, q, xkey)
            if not series:
                continue
            path = os.path.join(outdir, _fig_name(q))
            sweep_plots.quantity(path, series, xlabel=xkey, ylabel=q,
                                 title=f"{q} against {xkey}")
            written["figures"].append(os.path.basename(path))
    if SW2_KEY in idx.keys:
        try:
            cps = critical_points(idx.dir)
        except UserError as e:
            written["skipped"].append({"section": "critical point", "reason": str(e)})
            md += ["## Critical point", "", f"Not located: {e}", ""]
        else:
            written["critical_points"] = [c.to_dict() for c in cps]
            with open(os.path.join(outdir, "critical_point.json"), "w") as f:
                json.dump(written["critical_points"], f, indent=1, default=json_default)
            md += ["## Critical point (chi_1 = 1)", "",
                   "| group | sigma_w^2 (data) | stat | finite-width syst | mean field | z |",
                   "| --- | --- | --- | --- | --- | --- |"]
            for k, c in enumerate(cps):
                g = ", ".join(f"{a} = {b}" for a, b in c.group.items()) or "all"
                md.append(f"| {g} | {c.value:.4f} +- {c.error:.4f} | {c.critical.statistical:.4f} "
                          f"| {c.critical.systematic:.4f} | {c.mean_field:.4f} | {c.z:+.2f} |")
                if figures:
                    name = "critical_point.png" if len(cps) == 1 else f"critical_point_{k}.png"
                    draw_critical_point(os.path.join(outdir, name), c)
                    written["figures"].append(name)
            md.append("")
    if written["figures"]:
        md += ["## Figures", "", *[f"- `{n}`" for n in written["figures"]], ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(md))
    return written


def draw_critical_point(path, c: SweepCriticalPoint) -> str:
    """The measured chi_1 against sigma_w^2 with the crossing and the mean-field curve."""
    from . import sweep_plots
    from .theory.meanfield import mean_field

    pts = c.critical.points
    sw2 = np.array([p.sigma_w2 for p in pts])
    chi = np.array([float(p.chi_1.value) for p in pts])
    err = np.array([float(p.chi_1.error) for p in pts])
    syst = np.array([p.systematic for p in pts])
    theory = None
    if math.isfinite(c.mean_field):
        fine = np.linspace(sw2.min(), sw2.max(), 80)
        theory = (fine, [mean_field(c.activation, s, c.sigma_b2).chi_1 for s in fine]) \
            if c.activation in ("tanh", "erf", "relu", "sigmoid", "softplus", "identity") else None
    g = ", ".join(f"{a} = {b}" for a, b in c.group.items())
    return sweep_plots.critical_point(
        path, sw2, chi, err, syst, critical=(c.value, c.error), mean_field=c.mean_field,
        theory=theory, title=f"{c.activation}, sigma_b^2 = {c.sigma_b2:g}" + (f", {g}" if g else ""))
