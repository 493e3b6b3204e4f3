"""Forward and backward passes of one replica's network on a block of samples (BBD Eq. 1).

    z^(m+1) = W^(m) h^(m) + b^(m),   h^(0) = X,   h^(m) = sigma_m(z^(m)),   Z = h^(M)

where sigma_m is the hidden activation for m < M and the output activation at m = M (identity
unless the network says otherwise, e.g. SFT example 1).

Links come in two kinds. DENSE: W^(m) is a full N_{m+1} x N_m block, row-major. TABLE: neuron i of
layer m+1 sees F inputs ``conn_in[i, f]`` through weights ``conn_w[i, f]`` (indices into the link's
weight block); this covers the local network (untied and tied, periodic in width) and the SFT
example networks, whose weight blocks are ordered as the papers' lattice sites.

Per-sample buffers concatenate all layers 0..M along the last axis (``lay_off``):
H[b] holds h^(0..M), D[b] holds sigma'(z^(1..M)), G[b] the back-propagated dl/dz.
"""
from __future__ import annotations

from collections import namedtuple

from .activations import act_fwd
from .options import jit

DENSE, TABLE = 0, 1

#: Arrays describing an architecture to the kernels (built by ``langevin_nn.bulk.networks``).
#: widths int64[M+1]; lay_off int64[M+2]; kind, w_off, w_size, b_off (-1: no bias), fan, tab_off
#: int64[M];
#: conn_in, conn_w int64[sum of table sizes]; act int64[M] (activation of layer m+1);
#: act_prm float64[M, 3] (p, q, r); n_par: parameters per replica.
NetArrays = namedtuple(
    "NetArrays",
    "widths lay_off kind w_off w_size b_off fan tab_off conn_in conn_w act act_prm n_par",
)


@jit
def forward(net, theta, nr, H, D, Zs):
    """Forward pass for samples 0..nr-1 whose inputs are already in ``H[:, lay_off[0]:lay_off[1]]``.

    Fills h^(m) (H) and sigma'(z^(m)) (D) for m = 1..M; if ``Zs.shape[0] > 0`` also stores the
    pre-activations z^(m) in Zs. Shapes: theta (n_par,), H, D, Zs (>= nr, lay_off[M+1]).
    """
    M = net.kind.shape[0]
    keep_z = Zs.shape[0] > 0
    for m in range(M):
        n_in = net.widths[m]
        n_out = net.widths[m + 1]
        o_in = net.lay_off[m]
        o_out = net.lay_off[m + 1]
        wo = net.w_off[m]
        bo = net.b_off[m]
        code = net.act[m]
        p = net.act_prm[m, 0]
        q = net.act_prm[m, 1]
        r = net.act_prm[m, 2]
        if net.kind[m] == DENSE:
            for b in range(nr):
                for i in range(n_out):
                    s = 0.0
                    if bo >= 0:
                        s = theta[bo + i]
                    row = wo + i * n_in
                    for j in range(n_in):
                        s += theta[row + j] * H[b, o_in + j]
                    if keep_z:
                        Zs[b, o_out + i] = s
                    h, d = act_fwd(code, p, q, r, s)
                    H[b, o_out + i] = h
                    D[b, o_out + i] = d
        else:
            F = net.fan[m]
            to = net.tab_off[m]
            for b in range(nr):
                for i in range(n_out):
                    s = 0.0
                    if bo >= 0:
                        s = theta[bo + i]
                    for f in range(F):
                        t = to + i * F + f
                        s += theta[wo + net.conn_w[t]] * H[b, o_in + net.conn_in[t]]
                    if keep_z:
                        Zs[b, o_out + i] = s
                    h, d = act_fwd(code, p, q, r, s)
                    H[b, o_out + i] = h
                    D[b, o_out + i] = d


@jit
def backward(net, theta, nr, H, D, G, grad, scale):
    """Back-propagate and accumulate ``scale * dl/dtheta`` into ``grad``.

    On entry G[b, lay_off[M]:] holds dl/dZ of sample b (Z = h^(M)); G is overwritten with
    dl/dz of every layer. H and D come from ``forward`` on the same samples.
    """
    M = net.kind.shape[0]
    for m in range(M - 1, -1, -1):
        n_in = net.widths[m]
        n_out = net.widths[m + 1]
        o_in = net.lay_off[m]
        o_out = net.lay_off[m + 1]
        wo = net.w_off[m]
        bo = net.b_off[m]
        for b in range(nr):
            for i in range(n_out):
                G[b, o_out + i] *= D[b, o_out + i]
        if bo >= 0:
            for b in range(nr):
                for i in range(n_out):
                    grad[bo + i] += scale * G[b, o_out + i]
        if net.kind[m] == DENSE:
            for b in range(nr):
                for i in range(n_out):
                    di = scale * G[b, o_out + i]
                    row = wo + i * n_in
                    for j in range(n_in):
                        grad[row + j] += di * H[b, o_in + j]
            if m > 0:
                for b in range(nr):
                    for j in range(n_in):
                        G[b, o_in + j] = 0.0
                    for i in range(n_out):
                        di = G[b, o_out + i]
                        row = wo + i * n_in
                        for j in range(n_in):
                            G[b, o_in + j] += theta[row + j] * di
        else:
            F = net.fan[m]
            to = net.tab_off[m]
            if m > 0:
                for b in range(nr):
                    for j in range(n_in):
                        G[b, o_in + j] = 0.0
            for b in range(nr):
                for i in range(n_out):
                    di = G[b, o_out + i]
                    for f in range(F):
                        t = to + i * F + f
                        w = wo + net.conn_w[t]
                        grad[w] += scale * di * H[b, o_in + net.conn_in[t]]
                        if m > 0:
                            G[b, o_in + net.conn_in[t]] += theta[w] * di
