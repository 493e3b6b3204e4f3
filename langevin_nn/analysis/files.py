"""Reading ensemble files for the estimators: what a file holds, the recording switch behind
each dataset, the network section of its configuration, and replica blocks for lazy reading.

A missing dataset is a user mistake with a one-line message naming the switch, e.g.
``run.h5: no probe pre-activations (probe_z/z_1); record them with recording.probe_z_every > 0``.
"""
from __future__ import annotations

import contextlib
import math
import tomllib

import numpy as np

from ..errors import UserError
from ..store import Ensemble, open_ensemble

#: dataset (or group) -> (what it is, the recording switch that makes the engine write it)
SWITCHES = {
    "probe_z": ("probe pre-activations", "recording.probe_z_every > 0"),
    "snapshots": ("parameter snapshots", "recording.snapshot_every > 0"),
    "records/w_norm2": ("weight norms", "recording.norms = true"),
    "records/b_norm2": ("bias norms", "recording.norms = true (and a network with biases)"),
    "records/loss_train": ("training loss", "recording.train_loss = true"),
}
#: the per-link bulk-boundary terms (physics.md section 4), group ``bbd`` (docs/bbd.md)
BBD_VARS = ("kin_W", "kin_z", "cross", "quad")
BBD_SWITCH = "recording.bbd = true (needs network.bias = true)"


@contextlib.contextmanager
def ensemble(source):
    """An open :class:`Ensemble` from a path (opened and closed here) or an open Ensemble."""
    if isinstance(source, Ensemble):
        yield source
        return
    ens = open_ensemble(source)
    try:
        yield ens
    finally:
        ens.close()


def has(ens: Ensemble, name: str) -> bool:
    """Whether ``name`` (a cadence group, or ``group/var``) exists with at least one committed entry."""
    group, _, var = name.partition("/")
    if group not in [c.group for c in ens.schema.cadences]:
        return False
    if var and var not in ens.vars(group):
        return False
    return ens.entries.get(group, 0) > 0


def require(ens: Ensemble, name: str, what: str | None = None) -> None:
    """Raise a one-line UserError naming the recording switch if ``name`` (a cadence group or
    ``group/var``) is missing or has no committed entry."""
    if has(ens, name):
        return
    group, _, var = name.partition("/")
    desc, switch = SWITCHES.get(name, SWITCHES.get(group, (name, None)))
    if var in BBD_VARS or group == "bbd":
        desc, switch = "bulk-boundary terms", BBD_SWITCH
    desc = what or desc
    cadences = [c.group for c in ens.schema.cadences]
    if group in cadences and (not var or var in ens.vars(group)):
        raise UserError(f"{ens.path}: no committed entries of {group} yet (the run has not "
                        "checkpointed); wait for a checkpoint or let the run finish")
    shown = f"{name}/z_1" if name == "probe_z" else name
    hint = f"; record them with {switch}" if switch else ""
    raise UserError(f"{ens.path}: no {desc} ({shown}){hint}")


def config_table(ens: Ensemble) -> dict:
    """The effective configuration of the run as a dict ({} if the file has none)."""
    text = ens.config_effective
    if not text:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def network_table(ens: Ensemble) -> dict:
    """The [network] table of the effective configuration ({} if absent)."""
    return dict(config_table(ens).get("network", {}))


def variances(ens: Ensemble) -> tuple[float, float]:
    """(sigma_w^2, sigma_b^2) of the initialisation (NaN if the file does not say)."""
    net = network_table(ens)
    sb2 = float(net.get("sigma_b2", math.nan)) if net.get("bias", True) else 0.0
    return float(net.get("sigma_w2", math.nan)), sb2


def replica_blocks(n_replicas: int, bytes_per_replica: float, budget: float = 128e6):
    """Consecutive replica slices whose data stay under ``budget`` bytes each (at least one
    replica per block), so that a file larger than memory is read chunk by chunk."""
    step = max(1, int(budget // max(bytes_per_replica, 1.0)))
    for start in range(0, n_replicas, step):
        yield slice(start, min(start + step, n_replicas))


def block_rows(rows, blk: slice):
    """The file rows of a block of selected replicas: a slice when they are contiguous (h5py
    reads slices much faster than index lists), else the index array."""
    sel = rows[blk]
    if sel.size and np.all(np.diff(sel) == 1):
        return slice(int(sel[0]), int(sel[-1]) + 1)
    return sel
