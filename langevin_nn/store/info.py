"""The text summary of an ensemble that ``langevin-nn info FILE`` prints."""
from __future__ import annotations

import numpy as np

from .reader import Ensemble
from .schema import REPLICA_DIM, STATE_GROUP


def _replica_list(r: np.ndarray) -> str:
    if r.size and np.array_equal(r, np.arange(r[0], r[0] + r.size)):
        return f"{r[0]}..{r[-1]}" if r.size > 1 else f"{r[0]}"
    shown = ", ".join(str(x) for x in r[:8])
    return shown + (", ..." if r.size > 8 else "")


def _width(names) -> int:
    """Width of a name column: the longest name, at least 12."""
    return max([12, *(len(n) for n in names)])


def _dims_text(dims: tuple[str, ...]) -> str:
    return "(" + ", ".join(dims) + ")"


def format_info(ens: Ensemble) -> str:
    """A readable multi-line summary of an ensemble (what ``langevin-nn info FILE`` prints)."""
    a = ens.attrs
    lines = [f"file:          {ens.path}",
             f"format:        {a.get('format')} version {a.get('format_version')}",
             f"package:       langevin_nn {a.get('package_version', '?')}",
             f"created:       {a.get('created', '?')}",
             f"config hash:   {ens.config_hash or '?'}",
             f"replicas:      {len(ens.replicas)} ({_replica_list(ens.replicas)})"]
    if ens.has_checkpoint:
        lines.append(f"steps done:    {ens.steps_done} (time {ens.time_done:g})")
    else:
        lines.append("steps done:    none (no committed checkpoint yet)")
    wanted = ("diverged", "diverged_step", *ens.schema.state_scalars)  # not the big arrays
    state = {k: ens.read(f"{STATE_GROUP}/{k}") for k in wanted
             if ens.has_checkpoint and (k in ens.schema.state or k in ens.schema.state_scalars)}
    if "diverged" in state:
        div = np.asarray(state["diverged"], dtype=bool)
        which = np.flatnonzero(div)
        text = f"{which.size} of {div.size} replicas"
        if which.size:
            first = which[:5]
            if "diverged_step" in state:
                steps = np.asarray(state["diverged_step"])
                parts = [f"{ens.replicas[i]} at step {steps[i]}" for i in first]
            else:
                parts = [str(ens.replicas[i]) for i in first]
            text += ": replica " + ", ".join(parts) + (", ..." if which.size > first.size else "")
        lines.append(f"diverged:      {text}")
    lines.append("groups:")
    for c in ens.schema.cadences:
        n = ens.entries[c.group]
        extra = ens._src.stored[c.group] - n
        pending = f" (+{extra} uncommitted)" if extra else ""
        lines.append(f"  {c.group}/  every {c.every} steps, {n} entries along '{c.dim}'{pending}")
        w = _width(v.name for v in c.vars)
        for v in c.vars:
            dims = (REPLICA_DIM, c.dim, *v.dims)
            lines.append(f"    {v.name:<{w}} {np.dtype(v.dtype).name:<8} {_dims_text(dims)} = "
                         f"{ens.shape(f'{c.group}/{v.name}')}  {v.doc}".rstrip())
    lines.append(f"  {STATE_GROUP}/  checkpoint"
                 + (f" (slot {ens._src.committed})" if ens.has_checkpoint else " (none committed)"))
    w = _width([*ens.schema.state, *ens.schema.state_scalars])
    for name, (dims, dtype) in ens.schema.state.items():
        shape = (len(ens.replicas), *ens.schema.shape(dims))
        lines.append(f"    {name:<{w}} {np.dtype(dtype).name:<8} {_dims_text((REPLICA_DIM, *dims))} = {shape}")
    for name, dtype in ens.schema.state_scalars.items():
        value = f" = {state[name][()]}" if name in state else ""
        lines.append(f"    {name:<{w}} {np.dtype(dtype).name:<8} (){value}")
    for group in ens.groups():
        if group in ens._cadences or group == STATE_GROUP:
            continue
        lines.append(f"  {group}/  static")
        w = _width(ens.vars(group))
        for name in ens.vars(group):
            full = f"{group}/{name}"
            lines.append(f"    {name:<{w}} {ens.dtype(full).name:<8} {ens.shape(full)}")
    shown = {"format", "format_version", "created", "package_version", "config_hash"}
    scalars = [(k, v) for k, v in a.items() if k not in shown and isinstance(v, (int, float, str))
               and not (isinstance(v, str) and ("\n" in v or len(v) > 80))]
    long = [k for k, v in a.items() if isinstance(v, str) and "\n" in v]
    if scalars or long:
        lines.append("attributes:")
        w = _width([k for k, _ in scalars] + long)
        for k, v in scalars:
            lines.append(f"  {k:<{w}} {v}")
        for k in long:
            lines.append(f"  {k:<{w}} ({a[k].count(chr(10)) + 1} lines of text)")
    return "\n".join(lines)
