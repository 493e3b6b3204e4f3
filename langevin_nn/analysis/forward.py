"""A stored network in NumPy: weights, forward pass, layer Jacobians and the NTK of one replica.

Rebuilt from the static ``network/`` arrays of an ensemble file (the layout of
``langevin_nn.bulk.networks``), so it works on any file without parsing its configuration.
Dense links are full matrices; table links (local, SFT) are scattered into dense N_{m+1} x N_m
matrices (W_ij summed over the table entries that connect j to i).

    z^(m+1) = W^(m) h^(m) + b^(m),  h^(0) = X,  h^(m) = sigma(z^(m)),  Z = sigma_out(z^(M))   (BBD Eq. 1)

Shapes: K inputs, N_m widths, M links; theta (n_par,) for one replica.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bulk.activations import CODES, evaluate
from ..config import ActivationSpec
from ..errors import UserError
from ..kernels.network import DENSE, NetArrays

_NAMES = {code: name for name, code in CODES.items()}
_NETWORK_ARRAYS = ("widths", "link_kind", "w_offset", "w_size", "b_offset", "fan_in",
                   "table_offset", "conn_in", "conn_w", "activation_code", "activation_params")


def _spec(code: int, prm) -> ActivationSpec:
    return ActivationSpec(_NAMES[int(code)], float(prm[0]), float(prm[1]), float(prm[2]))


@dataclass(frozen=True)
class StoredNetwork:
    """The architecture of an ensemble file: ``arrays`` (NetArrays), ``hidden`` and ``output``
    activations, ``architecture`` (file attribute), ``widths`` N_0..N_M."""

    arrays: NetArrays
    hidden: ActivationSpec
    output: ActivationSpec
    architecture: str

    @classmethod
    def from_ensemble(cls, ens) -> "StoredNetwork":
        have = set(ens.vars("network")) if "network" in ens.groups() else set()
        missing = [n for n in _NETWORK_ARRAYS if n not in have]
        if missing:
            raise UserError(f"{ens.path}: no network layout (network/{missing[0]} missing); "
                            "not a file written by langevin_nn.run")
        a = {n: np.asarray(ens.read(f"network/{n}")) for n in _NETWORK_ARRAYS}
        widths = a["widths"].astype(np.int64)
        M = len(widths) - 1
        arrays = NetArrays(
            widths=widths, lay_off=np.concatenate([[0], np.cumsum(widths)]).astype(np.int64),
            kind=a["link_kind"], w_off=a["w_offset"], w_size=a["w_size"], b_off=a["b_offset"],
            fan=a["fan_in"], tab_off=a["table_offset"], conn_in=a["conn_in"], conn_w=a["conn_w"],
            act=a["activation_code"], act_prm=a["activation_params"],
            n_par=int(a["w_offset"][-1] + a["w_size"][-1] + (widths[-1] if a["b_offset"][-1] >= 0 else 0)))
        hidden = _spec(arrays.act[0], arrays.act_prm[0]) if M > 1 else _spec(arrays.act[-1], arrays.act_prm[-1])
        output = _spec(arrays.act[M - 1], arrays.act_prm[M - 1])
        return cls(arrays, hidden, output, str(ens.attrs.get("architecture", "dense")))

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(w) for w in self.arrays.widths)

    @property
    def depth(self) -> int:
        return len(self.arrays.widths) - 1

    @property
    def has_bias(self) -> bool:
        return bool(np.all(self.arrays.b_off >= 0))

    def activation(self, m: int) -> ActivationSpec:
        """sigma applied to z^(m) (m = 1..M): the hidden activation, the output one at m = M."""
        return self.output if m == self.depth else _spec(self.arrays.act[m - 1], self.arrays.act_prm[m - 1])

    def weights(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W^(m) (N_{m+1}, N_m), b^(m) (N_{m+1},) or zeros)] for m = 0..M-1."""
        a = self.arrays
        out = []
        for m in range(self.depth):
            n_in, n_out = int(a.widths[m]), int(a.widths[m + 1])
            w = theta[int(a.w_off[m]): int(a.w_off[m]) + int(a.w_size[m])]
            if a.kind[m] == DENSE:
                W = w.reshape(n_out, n_in)
            else:
                F, to = int(a.fan[m]), int(a.tab_off[m])
                ci = a.conn_in[to: to + n_out * F].reshape(n_out, F)
                cw = a.conn_w[to: to + n_out * F].reshape(n_out, F)
                W = np.zeros((n_out, n_in))
                np.add.at(W, (np.repeat(np.arange(n_out), F), ci.ravel()), w[cw.ravel()])
            bo = int(a.b_off[m])
            b = theta[bo: bo + n_out] if bo >= 0 else np.zeros(n_out)
            out.append((W, b))
        return out

    def forward(self, theta: np.ndarray, X: np.ndarray, weights=None) -> list[np.ndarray]:
        """Pre-activations [z^(1), ..., z^(M)], each (K, N_m), for inputs X (K, N_0)."""
        ws = weights if weights is not None else self.weights(theta)
        h = np.asarray(X, dtype=float)
        zs = []
        for m, (W, b) in enumerate(ws):
            z = h @ W.T + b
            zs.append(z)
            h = evaluate(self.activation(m + 1), z)
        return zs

    def link_gains(self, theta: np.ndarray, X: np.ndarray, pairs: bool = False):
        """The per-link mean squared gain of a small perturbation (physics.md section 6).

        For link m (z^(m) -> z^(m+1), m = 1..M-1) the Jacobian is J = W^(m) diag(sigma'(z^(m))),
        and for a perturbation u of z^(m) drawn isotropically,

            chi^(m)_a = E_u[|J u|^2 / N_{m+1}] / (|u|^2 / N_m) = (1/N_{m+1}) sum_ij W_ij^2 sigma'(z_aj)^2

        (exactly the trace, no random direction): its mean-field value is chi_1 at q^(m). With
        ``pairs`` also chi^(m)_ab = (1/N_{m+1}) sum_ij W_ij^2 sigma'(z_aj) sigma'(z_bj), the
        gain of a perturbation common to inputs a and b (chi_c at (q*, c*)).
        Returns (M-1, K) and, with pairs, (M-1, K, K).
        """
        ws = self.weights(theta)
        zs = self.forward(theta, X, ws)
        gains, gpairs = [], []
        for m in range(1, self.depth):
            W = ws[m][0]
            col = (W * W).sum(axis=0) / W.shape[0]  # (N_m,)
            d = evaluate(self.activation(m), zs[m - 1], 1)  # (K, N_m)
            gains.append((d * d) @ col)
            if pairs:
                gpairs.append((d * col) @ d.T)
        if pairs:
            return np.array(gains), np.array(gpairs)
        return np.array(gains)

    def jacobian_norms(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """|dz^(m)/dX|_F^2 / N_m for m = 1..M and each input: (M, K). The ratio of consecutive
        layers is the gain of the input-output Jacobian per layer (chi_1 in the mean field)."""
        ws = self.weights(theta)
        zs = self.forward(theta, X, ws)
        K = zs[0].shape[0]
        out = np.empty((self.depth, K))
        J = np.broadcast_to(ws[0][0], (K,) + ws[0][0].shape)  # dz^(1)/dX: (K, N_1, N_0)
        out[0] = (J ** 2).sum(axis=(1, 2)) / J.shape[1]
        for m in range(1, self.depth):
            d = evaluate(self.activation(m), zs[m - 1], 1)  # (K, N_m)
            J = np.einsum("ij,kj,kjl->kil", ws[m][0], d, J, optimize=True)
            out[m] = (J ** 2).sum(axis=(1, 2)) / J.shape[1]
        return out

    def ntk(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Empirical NTK Theta_ab = sum_o sum_theta dZ_ao/dtheta dZ_bo/dtheta on inputs X: (K, K).

        Back-propagated delta^(m)_{a,o} = dZ_o/dz^(m) (K, N_out, N_m); per dense link
        Theta += sum_o (delta^(m+1)_a . delta^(m+1)_b)_o (h^(m)_a . h^(m)_b + [bias]); table links
        gather the gradient of each weight of the block explicitly.
        """
        a = self.arrays
        ws = self.weights(theta)
        zs = self.forward(theta, X, ws)
        X = np.asarray(X, dtype=float)
        hs = [X] + [evaluate(self.activation(m), zs[m - 1]) for m in range(1, self.depth)]
        K = X.shape[0]
        M = self.depth
        n_out = self.widths[-1]
        delta = np.einsum("ko,op->kop", evaluate(self.output, zs[M - 1], 1), np.eye(n_out))
        theta_ab = np.zeros((K, K))
        for m in range(M - 1, -1, -1):
            h = hs[m]  # (K, N_m)
            if a.kind[m] == DENSE:
                dd = np.einsum("aoi,boi->ab", delta, delta)
                theta_ab += dd * (h @ h.T)
            else:
                n_o, F, to = int(a.widths[m + 1]), int(a.fan[m]), int(a.tab_off[m])
                ci = a.conn_in[to: to + n_o * F].reshape(n_o, F)
                cw = a.conn_w[to: to + n_o * F].reshape(n_o, F)
                contrib = delta[:, :, :, None] * h[:, None, ci]  # (K, N_out, n_o, F)
                g = np.zeros((K, n_out, int(a.w_size[m])))
                np.add.at(g, (slice(None), slice(None), cw.ravel()), contrib.reshape(K, n_out, -1))
                gf = g.reshape(K, -1)
                theta_ab += gf @ gf.T
            if a.b_off[m] >= 0:
                theta_ab += np.einsum("aoi,boi->ab", delta, delta)
            if m > 0:
                d = evaluate(self.activation(m), zs[m - 1], 1)
                delta = np.einsum("koi,ij->koj", delta, ws[m][0]) * d[:, None, :]
        return theta_ab
