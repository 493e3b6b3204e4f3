"""The synaptic fields: one per weight block (``w_1`` .. ``w_M``) and bias block (``b_1`` ..) of
theta, each a periodic chain of sites in the layout's site order (``langevin_nn.bulk.networks``:
the papers' order for sft1/sft2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bulk.networks import Layout
from ..errors import UserError


@dataclass(frozen=True)
class Field:
    """A synaptic field: a block of theta whose entries are the sites of a periodic chain.

    name: ``w_m`` (weights of link m-1, the paper's w_m) or ``b_m`` (biases of link m-1);
    start, stop: its slice of theta; site i is theta[start + i] (layout order, the papers' site
    order for sft1/sft2; for a local network site (2k+1) n + o is the weight from neuron
    n + o - k of the layer below to neuron n, so the chain has a (2k+1)-site unit cell).
    """

    name: str
    start: int
    stop: int
    link: int
    kind: str  # "weight" or "bias"

    @property
    def n_sites(self) -> int:
        return self.stop - self.start

    @property
    def sites(self) -> np.ndarray:
        return np.arange(self.start, self.stop)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def lattice_fields(layout: Layout, net=None) -> list[Field]:
    """The fields of a lattice network (local untied, sft1, sft2): weight blocks, then bias
    blocks, each in site order. Dense and tied networks have no lattice ordering of their
    weights: ``UserError`` naming the config key."""
    if layout.architecture == "dense":
        raise UserError("network.architecture: \"dense\" has no lattice order of its weights, "
                        "so SFT couplings are undefined (use local, sft1 or sft2)")
    if net is not None and getattr(net, "tied", False) and layout.architecture == "local":
        raise UserError("network.tied: tied weights form no chain along the width (one weight "
                        "per offset), so SFT couplings are undefined; use tied = false")
    out = []
    for m in range(layout.depth):
        s = layout.w_slice(m)
        out.append(Field(f"w_{m + 1}", s.start, s.stop, m, "weight"))
    for m in range(layout.depth):
        s = layout.b_slice(m)
        if s is not None:
            out.append(Field(f"b_{m + 1}", s.start, s.stop, m, "bias"))
    return out


def field_by_name(fields: list[Field], name: str) -> Field:
    for f in fields:
        if f.name == name:
            return f
    raise UserError(f"--field: no field {name!r} (fields: {', '.join(f.name for f in fields)})")
