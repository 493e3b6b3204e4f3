"""Figures of a sweep: matplotlib's Agg canvas only (no pyplot), plain arrays in, a PNG out.

    quantity(path, {label: (x, y, err)}, xlabel=..., ylabel=...)   one scalar against a varied key
    critical_point(path, sw2, chi, err, syst, critical=(v, e), mean_field=v, theory=(x, y))
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["quantity", "critical_point"]


def _figure(size=(5.5, 4.0)):
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _numeric(xs) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)


def quantity(path, series: dict, *, xlabel: str = "", ylabel: str = "", title: str = "") -> str:
    """series: label -> (x, y, err): points with error bars (NaN errors drawn without), one
    line per series, sorted by x; categorical x (strings, tables) at integer positions; a
    logarithmic x axis when positive values span more than two decades (symlog with a zero)."""
    fig, ax = _figure()
    allx = [x for s in series.values() for x in s[0]]
    numeric = _numeric(allx)
    cats = [] if numeric else sorted({str(x) for x in allx})
    for label, (x, y, e) in series.items():
        if numeric:
            xv = np.asarray(x, dtype=float)
        else:
            xv = np.array([cats.index(str(v)) for v in x], dtype=float)
        order = np.argsort(xv, kind="stable")
        xv, yv = xv[order], np.asarray(y, dtype=float)[order]
        ev = np.asarray(e, dtype=float)[order]
        ev = np.where(np.isfinite(ev), ev, 0.0)
        ax.errorbar(xv, yv, yerr=ev, marker="o", ms=4, capsize=3, lw=1, label=label or None)
    if numeric and allx:
        xs = np.asarray(allx, dtype=float)
        pos = xs[xs > 0]
        if np.all(xs >= 0) and pos.size >= 2 and pos.max() / pos.min() > 100:
            if np.all(xs > 0):
                ax.set_xscale("log")
            else:  # zero beside decades of positive values (T = 0, 1e-4, ..., 1e-2)
                ax.set_xscale("symlog", linthresh=float(pos.min()))
    if cats:
        ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    if any(series) and len(series) <= 12:
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return str(path)


def critical_point(path, sw2, chi, err, syst, *, critical=None, mean_field=None, theory=None,
                   title: str = "") -> str:
    """Measured chi_1 against sigma_w^2: statistical error bars, the statistical (+) finite-width
    band, the crossing with its uncertainty (shaded), the mean-field value and curve."""
    fig, ax = _figure()
    sw2, chi = np.asarray(sw2, float), np.asarray(chi, float)
    err, syst = np.asarray(err, float), np.asarray(syst, float)
    order = np.argsort(sw2)
    sw2, chi, err, syst = sw2[order], chi[order], err[order], syst[order]
    tot = np.hypot(err, syst)
    ax.errorbar(sw2, chi, yerr=tot, fmt="none", ecolor="C0", alpha=0.35, lw=4,
                label="stat (+) finite-width syst")
    ax.errorbar(sw2, chi, yerr=err, fmt="o", color="C0", ms=4, capsize=3, label="measured chi_1")
    if theory is not None:
        ax.plot(theory[0], theory[1], "k-", lw=1, label="mean field")
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    if critical is not None and math.isfinite(critical[0]):
        v, e = critical
        ax.axvspan(v - e, v + e, color="C1", alpha=0.25,
                   label=f"crossing {v:.3f} +- {e:.3f}")
        ax.axvline(v, color="C1", lw=1)
    if mean_field is not None and math.isfinite(mean_field):
        ax.axvline(mean_field, color="k", ls="--", lw=1, label=f"mean field {mean_field:.3f}")
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("chi_1")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return str(path)
