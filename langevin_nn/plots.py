"""Figures from analysis results: matplotlib's Agg canvas only, no estimators here.

Every function takes plain arrays (values and errors computed by ``langevin_nn.analysis``) and a
PNG path, draws one figure on a ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot, no
global state, no display needed) and returns the path. Times carry their unit in the axis label.
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["loss_curves", "correlator", "xi_vs_time", "matrix", "depth_time_heatmap",
           "kernel_profiles", "structure_factor", "ntk_drift", "phase_diagram", "chi_crossing",
           "xi_scan"]


def _figure(ncols: int = 1, size=(5.5, 4.0)):
    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, path) -> str:
    fig.savefig(path, dpi=110)
    return str(path)


def loss_curves(path, curves: dict, *, time_unit: str = "") -> str:
    """curves: name -> (t (S,), mean (S,), error (S,)): lines with one-sigma bands, log y."""
    fig, (ax,) = _figure()
    for name, (t, mean, err) in curves.items():
        t, mean, err = (np.asarray(a, dtype=float) for a in (t, mean, err))
        ax.plot(t, mean, label=name)
        ax.fill_between(t, mean - err, mean + err, alpha=0.3)
    if all(np.all(np.asarray(c[1])[np.isfinite(c[1])] > 0) for c in curves.values()):
        ax.set_yscale("log")
    ax.set_xlabel(f"time{f' ({time_unit})' if time_unit else ''}")
    ax.set_ylabel("loss (replica mean)")
    ax.legend()
    return _save(fig, path)


def correlator(path, r, G, err, *, fit=None, title: str = "", ylabel: str = "G(r)",
               xlabel: str = "r (layers)", log: bool = True) -> str:
    """G(r) with error bars (log y where positive) and an optional fit (r_fine, curve, label)."""
    fig, (ax,) = _figure()
    r, G, err = (np.asarray(a, dtype=float) for a in (r, G, err))
    ax.errorbar(r, G, yerr=err, fmt="o", ms=4, capsize=2, label="data")
    if fit is not None:
        rf, yf, lab = fit
        ax.plot(rf, yf, "-", label=lab)
    if log and np.any(G > 0):
        ax.set_yscale("log")
        pos = G[G > 0]
        ax.set_ylim(pos.min() / 3, pos.max() * 2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return _save(fig, path)


def xi_vs_time(path, t, xi, err, *, time_unit: str = "", reference: float | None = None,
               label: str = "xi") -> str:
    fig, (ax,) = _figure()
    ax.errorbar(np.asarray(t, dtype=float), xi, yerr=err, fmt="o-", ms=4, capsize=2, label=label)
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, ls="--", c="k", label="mean field")
    ax.set_xlabel(f"time{f' ({time_unit})' if time_unit else ''}")
    ax.set_ylabel("correlation length (layers)")
    ax.legend()
    return _save(fig, path)


def matrix(path, values, labels, *, title: str = "", xlabel: str = "layer m'",
           ylabel: str = "layer m", cmap: str = "viridis", symmetric: bool = False) -> str:
    fig, (ax,) = _figure(size=(5.0, 4.3))
    v = np.asarray(values, dtype=float)
    kw = {}
    if symmetric:
        a = np.nanmax(np.abs(v)) or 1.0
        kw = {"vmin": -a, "vmax": a}
        cmap = "RdBu_r"
    im = ax.imshow(v, origin="lower", cmap=cmap, **kw)
    n = len(labels)
    ticks = np.arange(n) if n <= 16 else np.linspace(0, n - 1, 8).astype(int)
    ax.set_xticks(ticks, [str(labels[i]) for i in ticks])
    ax.set_yticks(ticks, [str(labels[i]) for i in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def depth_time_heatmap(path, t, layers, values, *, title: str = "", time_unit: str = "") -> str:
    """values (S, M): a depth x time map (e.g. the Lagrangian density per link)."""
    fig, (ax,) = _figure(size=(6.0, 4.0))
    t = np.asarray(t, dtype=float)
    im = ax.pcolormesh(t, np.asarray(layers), np.asarray(values, dtype=float).T, shading="nearest")
    ax.set_xlabel(f"time{f' ({time_unit})' if time_unit else ''}")
    ax.set_ylabel("link m")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def kernel_profiles(path, layers, series: dict, *, theory: dict | None = None) -> str:
    """Two panels, q^(m) and c^(m) against the layer. series: label -> (q, q_err, c, c_err);
    theory: label -> (q, c) drawn as lines (the mean-field prediction)."""
    fig, (ax_q, ax_c) = _figure(ncols=2)
    m = np.asarray(layers)
    for lab, (q, qe, c, ce) in series.items():
        ax_q.errorbar(m, q, yerr=qe, fmt="o", ms=4, capsize=2, label=lab)
        ax_c.errorbar(m, c, yerr=ce, fmt="o", ms=4, capsize=2, label=lab)
    for lab, (q, c) in (theory or {}).items():
        ax_q.plot(m, q, "-", label=lab)
        ax_c.plot(m, c, "-", label=lab)
    for ax in (ax_q, ax_c):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_q.set_xlabel("layer m")
    ax_q.set_ylabel("q^(m)")
    ax_c.set_xlabel("layer m")
    ax_c.set_ylabel("c^(m)")
    ax_q.legend(fontsize=8)
    ax_c.legend(fontsize=8)
    return _save(fig, path)


def structure_factor(path, k, S, err, layers, *, max_lines: int = 6) -> str:
    """S(m, k) against k for a few layers. S, err (M, N)."""
    fig, (ax,) = _figure()
    k = np.asarray(k, dtype=float)
    half = k <= np.pi + 1e-12
    M = len(layers)
    pick = np.unique(np.linspace(0, M - 1, min(M, max_lines)).astype(int))
    for i in pick:
        ax.errorbar(k[half], np.asarray(S)[i][half], yerr=np.asarray(err)[i][half], fmt="o-",
                    ms=3, capsize=2, label=f"m = {layers[i]}")
    ax.set_xlabel("k (2 pi n / N)")
    ax.set_ylabel("S(m, k)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def ntk_drift(path, t, drift, err, *, time_unit: str = "") -> str:
    fig, (ax,) = _figure()
    ax.errorbar(np.asarray(t, dtype=float), drift, yerr=err, fmt="o-", ms=4, capsize=2)
    ax.set_xlabel(f"time{f' ({time_unit})' if time_unit else ''}")
    ax.set_ylabel("|Theta_t - Theta_0| / |Theta_0|")
    return _save(fig, path)


def phase_diagram(path, grid: dict, line: tuple | None = None, *, activation: str = "",
                  points: list | None = None) -> str:
    """xi_c on the (sigma_w^2, sigma_b^2) plane (log colour) with the critical line
    ``line`` = (sigma_b2 values, sigma_w2_c values) and optional points [(sw2, sb2, label)]."""
    fig, (ax,) = _figure(size=(6.0, 4.5))
    xi = np.asarray(grid["xi_c"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        im = ax.pcolormesh(grid["sigma_w2"], grid["sigma_b2"], np.log10(np.clip(xi, 1e-2, 1e4)),
                           shading="nearest", cmap="magma")
    fig.colorbar(im, ax=ax, label="log10 xi_c (layers)")
    if line is not None:
        ax.plot(line[1], line[0], "c-", lw=2, label="chi_1 = 1")
    for sw2, sb2, lab in points or []:
        ax.plot([sw2], [sb2], "w*", ms=10)
        ax.annotate(lab, (sw2, sb2), color="w", fontsize=8)
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("sigma_b^2")
    ax.set_title(f"mean-field phase diagram{f' ({activation})' if activation else ''}")
    if line is not None:
        ax.legend(loc="upper left")
    return _save(fig, path)


def chi_crossing(path, sw2, chi, err, *, critical=None, theory=None) -> str:
    """Measured chi_1 against sigma_w^2 with the crossing (value, error) and an optional
    mean-field curve (sw2_fine, chi_fine)."""
    fig, (ax,) = _figure()
    ax.errorbar(sw2, chi, yerr=err, fmt="o", ms=5, capsize=3, label="measured chi_1")
    if theory is not None:
        ax.plot(theory[0], theory[1], "-", label="mean field")
    ax.axhline(1.0, c="k", lw=0.8)
    if critical is not None:
        v, e = critical
        ax.axvspan(v - e, v + e, color="C3", alpha=0.25, label=f"crossing {v:.3f} +- {e:.3f}")
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("chi_1")
    ax.legend()
    return _save(fig, path)


def xi_scan(path, sw2, xi, err, *, theory=None, critical=None, label: str = "measured xi_c") -> str:
    """Depth scale against sigma_w^2 (log y) with the mean-field curve (sw2_fine, xi_fine) and
    the measured critical point (value, error) as a band."""
    fig, (ax,) = _figure()
    sw2, xi, err = (np.asarray(a, dtype=float) for a in (sw2, xi, err))
    ok = np.isfinite(xi) & (xi > 0)
    ax.errorbar(sw2[ok], xi[ok], yerr=np.where(np.isfinite(err[ok]), err[ok], 0), fmt="o", ms=5,
                capsize=3, label=label)
    if theory is not None:
        ax.plot(theory[0], theory[1], "-", label="mean field xi_c")
    if critical is not None:
        v, e = critical
        ax.axvspan(v - e, v + e, color="C3", alpha=0.25, label=f"measured chi_1 = 1: {v:.3f} +- {e:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("xi_c (layers)")
    ax.legend(fontsize=8)
    return _save(fig, path)
