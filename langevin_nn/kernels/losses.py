"""The output boundary: BBD Table I losses by runtime code, and the teacher's target maps.

Codes (``langevin_nn.boundary.losses`` owns the names): 0 MSE, 1 cross-entropy, 2 KL, 3 hinge.

    MSE   l = sum_i (Z_i - Y_i)^2                 dl/dZ = 2 (Z - Y)       (no 1/2: the papers' convention)
    CE    l = -sum_i p_i log q_i,  q = softmax(Z)  dl/dZ = q sum(p) - p
    KL    l = sum_i p_i log(p_i / q_i)             dl/dZ = q sum(p) - p   (0 log 0 = 0)
    hinge l = max(0, 1 - Z Y) (scalar Z, Y = +-1) dl/dZ = -Y if Z Y < 1 else 0 (0 at the kink)
"""
from __future__ import annotations

import math

from .options import NOREF, jit

MSE, CROSS_ENTROPY, KL, HINGE = range(4)


@jit(**NOREF)
def loss_grad(code, z, y, dz):
    """Loss of one sample; writes dl/dZ into ``dz``. z, y, dz: 1-d arrays of length N_M."""
    n = z.shape[0]
    if code == MSE:
        s = 0.0
        for i in range(n):
            d = z[i] - y[i]
            s += d * d
            dz[i] = 2.0 * d
        return s
    if code == HINGE:
        m = 1.0 - z[0] * y[0]
        if m > 0.0:
            dz[0] = -y[0]
            return m
        dz[0] = 0.0
        return 0.0
    # cross-entropy and KL share the log-softmax
    zmax = z[0]
    for i in range(1, n):
        zmax = max(zmax, z[i])
    se = 0.0
    for i in range(n):
        se += math.exp(z[i] - zmax)
    lse = zmax + math.log(se)
    s = 0.0
    psum = 0.0
    for i in range(n):
        p = y[i]
        psum += p
        if p > 0.0:
            s -= p * (z[i] - lse)
            if code == KL:
                s += p * math.log(p)
    for i in range(n):
        dz[i] = math.exp(z[i] - lse) * psum - y[i]
    return s


@jit
def target_map(code, zt, out):
    """Targets from a teacher's output ``zt`` (label noise already added): MSE: Y = zt;
    CE/KL: p = softmax(zt); hinge: Y = sign(zt) (+1 at zt = 0)."""
    n = zt.shape[0]
    if code == MSE:
        for i in range(n):
            out[i] = zt[i]
    elif code == HINGE:
        out[0] = 1.0 if zt[0] >= 0.0 else -1.0
    else:
        zmax = zt[0]
        for i in range(1, n):
            zmax = max(zmax, zt[i])
        se = 0.0
        for i in range(n):
            out[i] = math.exp(zt[i] - zmax)
            se += out[i]
        for i in range(n):
            out[i] = out[i] / se
