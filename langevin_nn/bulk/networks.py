"""Architectures and the flat parameter layout of one replica (physics.md section 1, BBD Eq. 1).

The parameters theta of a replica form one flat vector of n_par numbers: link by link
(m = 0 .. M-1), first the weight block of W^(m), then the bias b^(m) (N_{m+1}) if the network
has biases. Weight blocks:

* dense: W^(m) is N_{m+1} x N_m, row-major (theta[w_off + i * N_m + j] = W_ij).
* local (BBD Fig. 2): all widths N, neuron i of layer m+1 sees neurons i-k .. i+k (mod N) of
  layer m. Untied: N x (2k+1) block, entry [i, o + k] is the weight from j = i + o (periodic);
  tied (a true circular convolution): one weight per offset, 2k+1 numbers shared by every i.
* sft1 (SFT Eq. 13): N inputs, N outputs, 2N weights in the paper's site order: weight 2i
  connects input i-1 (mod N) to output i and weight 2i+1 connects input i to output i
  (input i is the paper's X_{2i+1}, output i its Y_{2i}); no biases; sigma = p x + q at the output.
* sft2 (SFT Eq. 18 with the typo corrected, physics.md section 1): N inputs, N hidden, N outputs.
  W^(1) and W^(2) each hold 2N weights, weight j sitting on the paper's even site 2j. Hidden unit u
  sees input u-1 through W^(1)_{2u-1} and input u through W^(1)_{2u}; output i sees hidden i
  through W^(2)_{2i} and hidden i+1 through W^(2)_{2i+1} (all indices periodic).

Initialisation: W_ij ~ N(0, sigma_w2 / fan_in) (fan_in = N_m dense, 2k+1 local, 2 for the SFT
examples) and b_i ~ N(0, sigma_b2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.network import DENSE, TABLE, NetArrays
from .activations import code_and_params


@dataclass(frozen=True)
class Layout:
    """A network's architecture as the kernels see it, plus the Python-side bookkeeping.

    Attributes: ``arrays`` (``NetArrays`` for the kernels), ``widths`` (N_0..N_M), ``init_std``
    (n_par,) standard deviations of the initial parameters, ``architecture``.
    """

    architecture: str
    widths: tuple[int, ...]
    arrays: NetArrays
    init_std: np.ndarray

    @property
    def n_par(self) -> int:
        return int(self.arrays.n_par)

    @property
    def depth(self) -> int:
        """M, the number of links."""
        return len(self.widths) - 1

    @property
    def has_bias(self) -> bool:
        return bool(np.all(self.arrays.b_off >= 0))

    def w_slice(self, m: int) -> slice:
        o = int(self.arrays.w_off[m])
        return slice(o, o + int(self.arrays.w_size[m]))

    def b_slice(self, m: int) -> slice | None:
        o = int(self.arrays.b_off[m])
        return None if o < 0 else slice(o, o + self.widths[m + 1])

    def static(self) -> dict[str, np.ndarray]:
        """The layout arrays to store in an ensemble file (group ``network``)."""
        a = self.arrays
        return {
            "network/widths": a.widths, "network/link_kind": a.kind, "network/w_offset": a.w_off,
            "network/w_size": a.w_size, "network/b_offset": a.b_off, "network/fan_in": a.fan,
            "network/table_offset": a.tab_off, "network/conn_in": a.conn_in,
            "network/conn_w": a.conn_w, "network/activation_code": a.act,
            "network/activation_params": a.act_prm, "network/init_std": self.init_std,
        }


def _local_table(n: int, k: int, tied: bool):
    F = 2 * k + 1
    i = np.arange(n)[:, None]
    o = np.arange(F)[None, :]
    conn_in = (i + o - k) % n
    conn_w = np.broadcast_to(o, (n, F)) if tied else i * F + o
    return conn_in, conn_w, (F if tied else n * F)


def _sft1_table(n: int):
    i = np.arange(n)
    conn_in = np.stack([(i - 1) % n, i], axis=1)
    conn_w = np.stack([2 * i, 2 * i + 1], axis=1)
    return conn_in, conn_w, 2 * n


def _sft2_tables(n: int):
    u = np.arange(n)
    first = (np.stack([(u - 1) % n, u], axis=1), np.stack([(2 * u - 1) % (2 * n), 2 * u], axis=1), 2 * n)
    second = (np.stack([u, (u + 1) % n], axis=1), np.stack([2 * u, 2 * u + 1], axis=1), 2 * n)
    return [first, second]


def build_layout(net) -> Layout:
    """The ``Layout`` of a ``NetworkConfig`` (architecture, widths, k, tied, activations, bias,
    sigma_w2, sigma_b2)."""
    widths = tuple(int(w) for w in net.widths)
    M = len(widths) - 1
    if net.architecture == "dense":
        tables = [None] * M
    elif net.architecture == "local":
        tables = [_local_table(widths[0], net.k, net.tied) for _ in range(M)]
    elif net.architecture == "sft1":
        tables = [_sft1_table(widths[0])]
    elif net.architecture == "sft2":
        tables = _sft2_tables(widths[0])
    else:
        raise ValueError(f"unknown architecture {net.architecture!r}")
    kind, w_off, w_size, b_off, fan, tab_off = (np.zeros(M, np.int64) for _ in range(6))
    conn_in, conn_w, stds = [], [], []
    act = np.zeros(M, np.int64)
    act_prm = np.zeros((M, 3))
    off = 0
    toff = 0
    for m in range(M):
        spec = net.output_activation if m == M - 1 else net.activation
        act[m], act_prm[m] = code_and_params(spec)
        if tables[m] is None:
            kind[m], fan[m], w_size[m] = DENSE, widths[m], widths[m + 1] * widths[m]
        else:
            ci, cw, size = tables[m]
            kind[m], fan[m], w_size[m] = TABLE, ci.shape[1], size
            tab_off[m] = toff
            conn_in.append(ci.ravel())
            conn_w.append(cw.ravel())
            toff += ci.size
        w_off[m] = off
        off += w_size[m]
        stds.append(np.full(w_size[m], np.sqrt(net.sigma_w2 / fan[m])))
        if net.bias:
            b_off[m] = off
            off += widths[m + 1]
            stds.append(np.full(widths[m + 1], np.sqrt(net.sigma_b2)))
        else:
            b_off[m] = -1
    lay_off = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    empty = np.zeros(0, np.int64)
    arrays = NetArrays(
        widths=np.array(widths, np.int64), lay_off=lay_off, kind=kind, w_off=w_off,
        w_size=w_size, b_off=b_off, fan=fan, tab_off=tab_off,
        conn_in=np.concatenate(conn_in).astype(np.int64) if conn_in else empty,
        conn_w=np.concatenate(conn_w).astype(np.int64) if conn_w else empty,
        act=act, act_prm=act_prm, n_par=int(off),
    )
    return Layout(net.architecture, widths, arrays, np.concatenate(stds))
