"""The summary of a sweep folder that ``langevin-nn info DIR`` prints: its axes and a table of
every point, statuses read from the files now."""
from __future__ import annotations

import json
from typing import Any

from .index import INDEX, STATUSES, SweepIndex, refresh
from .spec import _short_names


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def format_sweep(outdir, *, max_points: int = 200) -> str:
    """A readable summary of a sweep folder, statuses read from the files now."""
    idx = SweepIndex.load(outdir)
    refresh(idx)
    d = idx.data
    c = idx.counts()
    lines = [f"sweep:         {idx.name} (hash {idx.hash})",
             f"folder:        {idx.dir}",
             f"sweep file:    {d.get('source') or '?'}" + (f" (base: {d['base']})" if d.get("base") else "")
             + (f"; --set {' '.join(d['overrides'])}" if d.get("overrides") else ""),
             f"created:       {d.get('created', '?')}, updated {d.get('updated', '?')}",
             f"points:        {len(idx.points)} ("
             + ", ".join(f"{c[s]} {s}" for s in STATUSES if c.get(s)) + ")"]
    if d.get("slurm"):
        s = d["slurm"]
        lines.append(f"slurm:         array {s.get('array_id')} ({s.get('tasks')} tasks), "
                     f"collect {s.get('collect_id')}, submitted {s.get('submitted')}")
    lines.append("axes:" + ("  (independent seeds)" if d.get("independent_seeds") else ""))
    for a in d.get("axes", []):
        vals = [v if len(v) > 1 else v[0] for v in a["values"]]
        shown = ", ".join(_fmt(v) for v in vals[:12]) + (", ..." if len(vals) > 12 else "")
        lines.append(f"  {' + '.join(a['keys'])} ({len(vals)}): {shown}   [{a['origin']}]")
    keys = idx.keys
    short = _short_names(keys)
    head = ["#", *[short[k] for k in keys], "status", "steps", "diverged", "file"]
    rows = []
    for p in idx.points[:max_points]:
        steps = f"{p['steps_done'] if p.get('steps_done') is not None else '-'}/{p['steps']}"
        div = "-" if p.get("diverged") is None else f"{p['diverged']}/{p['replicas']}"
        rows.append([str(p["index"]), *[_fmt(p["values"].get(k)) for k in keys], p["status"],
                     steps, div, p["file"]])
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines.append("  " + "  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    for r in rows:
        lines.append("  " + "  ".join(x.ljust(w[i]) for i, x in enumerate(r)).rstrip())
    if len(idx.points) > max_points:
        lines.append(f"  ... {len(idx.points) - max_points} more points (all in {INDEX})")
    errs = [p for p in idx.points if p.get("error")]
    for p in errs[:10]:
        lines.append(f"error: {p['name']}: {p['error']}")
    return "\n".join(lines)
