"""The JAX reference of the benchmark: what a competent JAX user writes for the standard workload.

x64 enabled; one threefry key per replica; the minibatch indices and the noise are drawn inside the
compiled graph; ``lax.scan`` over 100 steps of a ``vmap``-ed step per call; parameters and keys
donated; XLA defaults. Runs in any interpreter with ``jax`` and ``numpy`` (no langevin_nn needed),
so that the benchmark can use a side environment: ``python benchmarks/jax_ref.py IN.npz OUT.npz``
checks agreement on the job in IN.npz (see ``main``), and ``python benchmarks/jax_ref.py --serve
IN.npz`` is a process that answers timing requests (``serve``); ``benchmarks/bench.py`` writes
and reads those files and drives the server.
"""
from __future__ import annotations

import sys
import time

import numpy as np

STEPS_PER_CALL = 100


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def build(N, M, B, P, eta, T, X, Y):
    """(run, run_with_indices): ``run(Ws, bs, keys)`` advances every replica by 100 steps and
    returns (Ws, bs, keys); ``run_with_indices(Ws, bs, idx)`` does T = 0 steps on given indices
    idx (steps, R, B) (the agreement check)."""
    jax = _jax()
    import jax.numpy as jnp
    from jax import lax

    X = jnp.asarray(X)
    Y = jnp.asarray(Y)
    amp = float(np.sqrt(2.0 * eta * T))

    def net_loss(params, x, y):
        Ws, bs = params
        h = x
        for m in range(M):
            z = h @ Ws[m].T + bs[m]
            h = jnp.tanh(z) if m < M - 1 else z
        return jnp.sum((h - y) ** 2)  # MSE, sum over outputs and over the B samples

    grad = jax.grad(net_loss)

    def step(params, key):
        key, k_idx, k_w, k_b = jax.random.split(key, 4)
        idx = jax.random.randint(k_idx, (B,), 0, P)
        g = grad(params, X[idx], Y[idx])
        Ws, bs = params
        Ws = Ws - eta * g[0] + amp * jax.random.normal(k_w, Ws.shape, Ws.dtype)
        bs = bs - eta * g[1] + amp * jax.random.normal(k_b, bs.shape, bs.dtype)
        return (Ws, bs), key

    vstep = jax.vmap(step)

    def body(carry, _):
        params, keys = carry
        return vstep(params, keys), None

    def run(Ws, bs, keys):
        ((Ws, bs), keys), _ = lax.scan(body, ((Ws, bs), keys), None, length=STEPS_PER_CALL)
        return Ws, bs, keys

    def det_step(params, idx):
        g = grad(params, X[idx], Y[idx])
        return (params[0] - eta * g[0], params[1] - eta * g[1])

    vdet = jax.vmap(det_step)

    def run_idx(Ws, bs, idx):
        def b2(p, ix):
            return vdet(p, ix), None
        (Ws, bs), _ = lax.scan(b2, (Ws, bs), idx)
        return Ws, bs

    return (jax.jit(run, donate_argnums=(0, 1, 2)), jax.jit(run_idx))


class Timer:
    """The workload compiled and warmed (the first call, which compiles, is not timed);
    ``once()`` times ``calls`` calls of 100 steps and returns replica-steps/s."""

    def __init__(self, N, M, B, P, eta, T, X, Y, Ws, bs, seed, calls):
        jax = _jax()
        import jax.numpy as jnp

        self.jax = jax
        self.run, _ = build(N, M, B, P, eta, T, X, Y)
        self.R = Ws.shape[0]
        self.calls = calls
        keys = jax.random.split(jax.random.key(seed), self.R)
        self.state = self.run(jnp.asarray(Ws), jnp.asarray(bs), keys)
        jax.block_until_ready(self.state)

    def once(self):
        Ws, bs, keys = self.state
        t0 = time.perf_counter()
        for _ in range(self.calls):
            Ws, bs, keys = self.run(Ws, bs, keys)
        self.jax.block_until_ready((Ws, bs))
        dt = time.perf_counter() - t0
        self.state = (Ws, bs, keys)
        return self.R * STEPS_PER_CALL * self.calls / dt


def _version(jax):
    return (f"jax {jax.__version__}, jaxlib {getattr(__import__('jaxlib'), '__version__', '?')}, "
            f"devices {[d.platform for d in jax.devices()]}")


def serve(path):
    """Timing server: compile the job of ``path``, print ``ready <version>``, then answer each
    line ``time`` on stdin with one timing (replica-steps/s) on stdout, until end of input. The
    benchmark interleaves these timings with its own, so that ratios span the same phases of a
    shared machine."""
    job = np.load(path)
    N, M, B, P = (int(v) for v in job["shape"])
    eta, T = (float(v) for v in job["dyn"])
    timer = Timer(N, M, B, P, eta, T, job["X"], job["Y"], job["Wt"], job["bt"], int(job["seed"]),
                  int(job["calls"]))
    print("ready", _version(timer.jax), flush=True)
    for line in sys.stdin:
        if line.strip() == "time":
            print(repr(timer.once()), flush=True)


def agree(N, M, B, P, eta, X, Y, Ws, bs, idx):
    """Parameters after T = 0 steps on the given indices idx (steps, R, B)."""
    import jax.numpy as jnp

    _, run_idx = build(N, M, B, P, eta, 0.0, X, Y)
    Wo, bo = run_idx(jnp.asarray(Ws), jnp.asarray(bs), jnp.asarray(idx))
    return np.asarray(Wo), np.asarray(bo)


def main(argv):
    """Agreement check: the parameters after T = 0 steps on the job's indices (``idx``) from
    ``W0``, ``b0``, written to ``argv[2]`` (or an ``error``)."""
    job = np.load(argv[1])
    N, M, B, P = (int(v) for v in job["shape"])
    eta = float(job["dyn"][0])
    try:
        _jax()
    except ImportError:
        np.savez(argv[2], error=np.array("jax is not installed"))
        return
    Wo, bo = agree(N, M, B, P, eta, job["X"], job["Y"], job["W0"], job["b0"], job["idx"])
    np.savez(argv[2], W_after=Wo, b_after=bo)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main(sys.argv)
