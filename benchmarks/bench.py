"""The standard workloads of issue 3 through langevin_nn and through two references, in one run.

    python -m benchmarks.bench                         # everything (about 5-10 minutes on 2 cores)
    python -m benchmarks.bench --jax-python /path/to/python-with-jax
    python -m benchmarks.bench --workloads 0,1 --repeats 5 --json out.json

Workload (R, N, M, B): R replicas of a dense network, input width N, M links N x N with biases
(W ~ N(0, 1/N), b = 0), tanh on hidden layers, identity output, MSE loss with the ``sum``
reduction over B samples drawn uniformly per replica per step from P = 1024 teacher-student
samples, overdamped Langevin with eta = 1e-3, T = 1e-4 on every parameter, float64. One
replica-step is counted as B * M * 6 N^2 flops.

References, written in this file and in ``jax_ref.py``:

* NumPy, batched over replicas (``np.matmul`` on (R, B, N) x (R, N, N) stacks, ``np.tanh``,
  ``Generator.standard_normal`` noise and ``Generator.integers`` minibatches);
* JAX (optional: ``pip install '.[jax]'``, or any interpreter with jax given by
  ``--jax-python``; skipped with a message otherwise), see ``jax_ref.py``.

Before timing, the three are checked to agree at T = 0 on a few steps, all fed the same minibatch
indices (the NumPy twin of our index stream, ``langevin_nn.rng.indices``). Every rate is the
median of ``--repeats`` (>= 3) timings, with their spread (min-max); ratios come from the same
run. Also reported: the machine's float64 matmul rate (NumPy, all threads) and the BLAS in use,
our in-kernel Gaussian rate, our engine on 1 thread, in float32, and with recording on (loss
every 100 steps), then the linearity of our engine's rate in R and in steps (``linearity``).
The timings of a workload are taken in rounds, one of each per round (our engine's four,
NumPy's, JAX's from a side process that compiled the job once, ``JaxTimer``), so that every
ratio compares the same phases of the machine. Timings on a shared 2-core machine vary by 5-30 %
from run to run, and by up to 40 % within minutes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

WORKLOADS = [(256, 16, 8, 1), (256, 32, 8, 8), (64, 64, 16, 8), (16, 256, 8, 32)]
P = 1024
ETA, TEMP = 1e-3, 1e-4
SEED = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def flops(N, M, B):
    return B * M * 6 * N * N


def med(xs):
    xs = sorted(xs)
    return float(np.median(xs)), float(xs[0]), float(xs[-1])


#: Seconds given to thread pools to go idle before each timing. OpenBLAS's threads spin for about
#: 0.1 s after a call, taking a core from whatever runs next: right after the matmul timing the
#: in-kernel Gaussian rate measured 0.4-0.9e9/s on 2 threads, 0.1 s later and after 0.5 s 1.55e9/s.
SETTLE_S = 0.5


def settle():
    time.sleep(SETTLE_S)


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


# --------------------------------------------------------------------------- our engine
def config(R, N, M, B, steps, T=TEMP, dtype="float64", every=None, threads=0):
    from langevin_nn.config import load_config

    return load_config({
        "network": {"architecture": "dense", "widths": [N] * (M + 1), "activation": "tanh",
                    "output_activation": "identity", "bias": True, "sigma_w2": 1.0,
                    "sigma_b2": 0.0},
        "data": {"source": "teacher", "n_train": P, "n_probe": 64, "batch": B, "loss": "mse",
                 "reduction": "sum"},
        "dynamics": {"integrator": "overdamped", "eta": ETA, "T": T},
        "ensemble": {"replicas": R, "steps": steps, "seed": SEED, "dtype": dtype, "chunk": 0,
                     "threads": threads, "checkpoint_every": float("inf")},
        "recording": {"every": every or (1 << 40), "train_loss": False, "norms": False},
    })


def engine_rates(R, N, M, B, repeats, seconds, threads=0, dtype="float64", every=None):
    """Replica-steps/s of ``run(cfg, None)`` (the chunk driver; the first kernel call of each
    run is left out by RunResult), one value per repeat."""
    import numba

    kw = dict(dtype=dtype, every=every, threads=threads)
    numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)
    settle()
    steps = fitted_steps(engine_rate(R, N, M, B, 64, **kw), R, seconds)
    if every:
        steps = max(steps, 4 * every)
    out = [engine_rate(R, N, M, B, steps, **kw) for _ in range(repeats)]
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return out


def engine_rate(R, N, M, B, steps, **kw):
    """Replica-steps/s of one ``run(cfg, None)`` of ``steps`` steps (``config``'s keywords)."""
    from langevin_nn.simulate import run

    return run(config(R, N, M, B, steps, **kw), None, progress=False).replica_steps_per_second


def fitted_steps(rate, R, seconds):
    """Steps that take about ``seconds`` at ``rate`` replica-steps/s with R replicas, plus the
    first kernel call of a run (16 steps, chunk = auto), which is not timed."""
    return 16 + int(max(48, seconds * max(rate, 1.0) / R))


#: The linearity check of issue 3 ("throughput scales linearly with R and with steps"): our
#: engine on the shapes of this workload, all threads, at these replica counts (the number of
#: steps fitted to ``--seconds``) and at these step counts (R of the workload).
LIN_WORKLOAD = (256, 32, 8, 8)
LIN_REPLICAS = (64, 128, 256, 512)
LIN_STEPS = (200, 400, 800, 1600)


def linearity(repeats, seconds, log):
    """Replica-steps/s of our engine over ``LIN_REPLICAS`` and over ``LIN_STEPS``, median of
    ``repeats`` taken in rounds (one of each per round, so that every point spans the same phases
    of the machine); returns ``{"replicas": {R: (med, lo, hi)}, "steps": {S: (med, lo, hi)}}``
    and logs each series with its largest deviation from the series' median."""
    R0, N, M, B = LIN_WORKLOAD
    settle()
    est = engine_rate(R0, N, M, B, 64)
    # (series, value, replicas, steps)
    points = [("replicas", R, R, fitted_steps(est, R, seconds)) for R in LIN_REPLICAS]
    points += [("steps", S, R0, S) for S in LIN_STEPS]
    rates = {(k, v): [] for k, v, _, _ in points}
    for _ in range(repeats):
        for k, v, R, S in points:
            settle()
            rates[k, v].append(engine_rate(R, N, M, B, S))
    out = {"replicas": {}, "steps": {}}
    for (k, v), xs in rates.items():
        out[k][v] = med(xs)
    for k, what in (("replicas", "R"), ("steps", "steps")):
        meds = [x[0] for x in out[k].values()]
        mid = float(np.median(meds))
        dev = max(abs(x / mid - 1.0) for x in meds)
        cells = ", ".join(f"{what} = {v}: {fmt_rate(x[0])} [{fmt_rate(x[1])}-{fmt_rate(x[2])}]"
                          for v, x in out[k].items())
        log(f"  in {k} ((N, M, B) = {LIN_WORKLOAD[1:]}"
            f"{f', R = {R0}' if k == 'steps' else ''}): {cells}; "
            f"within {100 * dev:.0f} % of their median")
    return out


def engine_state(R, N, M, B, steps, T):
    """(theta (R, n_par), layout, X_train, Y_train) after ``steps`` steps of our engine."""
    from langevin_nn.bulk.networks import build_layout
    from langevin_nn.simulate import run

    cfg = config(R, N, M, B, steps, T=T)
    rd = run(cfg, None, progress=False).writer.reader()
    return (np.array(rd.state()["theta"]), build_layout(cfg.network), rd.read("data/X_train"),
            rd.read("data/Y_train"))


def split(theta, layout, M):
    """Flat parameters (R, n_par) -> (Ws (M, R, N, N), bs (M, R, N))."""
    R = theta.shape[0]
    Ws = [theta[:, layout.w_slice(m)].reshape(R, layout.widths[m + 1], layout.widths[m])
          for m in range(M)]
    bs = [theta[:, layout.b_slice(m)] for m in range(M)]
    return np.array(Ws), np.array(bs)


# --------------------------------------------------------------------------- NumPy reference
def numpy_steps(Ws, bs, X, Y, idx_of_step, steps, eta, amp, rs):
    """Batched over replicas: Ws (M, R, N, N), bs (M, R, N), updated in place. idx_of_step(s)
    gives the (R, B) minibatch indices of step s."""
    M = Ws.shape[0]
    for s in range(steps):
        idx = idx_of_step(s)
        x = X[idx]
        hs, ds = [x], []
        h = x
        for m in range(M):
            z = np.matmul(h, Ws[m].transpose(0, 2, 1))
            z += bs[m][:, None, :]
            if m < M - 1:
                h = np.tanh(z)
                ds.append(1.0 - h * h)
            else:
                h = z
            hs.append(h)
        g = 2.0 * (h - Y[idx])
        for m in range(M - 1, -1, -1):
            if m < M - 1:
                g *= ds[m]
            gW = np.matmul(g.transpose(0, 2, 1), hs[m])
            gb = g.sum(axis=1)
            if m > 0:
                g_next = np.matmul(g, Ws[m])
            Ws[m] -= eta * gW
            bs[m] -= eta * gb
            if amp > 0.0:
                Ws[m] += amp * rs.standard_normal(Ws[m].shape)
                bs[m] += amp * rs.standard_normal(bs[m].shape)
            if m > 0:
                g = g_next
    return Ws, bs


def numpy_timer(R, N, M, B, X, Y, seconds):
    """The NumPy reference set up and its step count calibrated (about ``seconds`` a timing);
    each call of the returned function is one timing, in replica-steps/s."""
    rs = np.random.default_rng(SEED)
    Ws = rs.standard_normal((M, R, N, N)) / np.sqrt(N)
    bs = np.zeros((M, R, N))
    amp = np.sqrt(2 * ETA * TEMP)

    def idx(_):
        return rs.integers(0, P, (R, B))

    settle()
    t0 = time.perf_counter()
    numpy_steps(Ws, bs, X, Y, idx, 2, ETA, amp, rs)
    per = (time.perf_counter() - t0) / 2
    steps = int(max(3, seconds / max(per, 1e-9)))

    def once():
        settle()
        t0 = time.perf_counter()
        numpy_steps(Ws, bs, X, Y, idx, steps, ETA, amp, rs)
        return R * steps / (time.perf_counter() - t0)

    once.estimate = R / max(per, 1e-9)
    return once


# --------------------------------------------------------------------------- JAX reference
def jax_python(arg):
    """The interpreter that runs jax_ref.py: --jax-python, else this one if it has jax."""
    if arg:
        return arg
    try:
        import jax  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def _jax_failed(py, stderr):
    """One line for a JAX reference that failed: the interpreter and the last line it printed."""
    last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return RuntimeError(f"JAX reference failed in {py}: {last[0].strip()}")


def _write_job(d, job):
    path = os.path.join(d, "in.npz")
    np.savez(path, **job)
    return path


def jax_job(py, **job):
    """Run ``jax_ref.py`` on the agreement check's job and return its output arrays."""
    settle()
    with tempfile.TemporaryDirectory() as d:
        fin, fout = _write_job(d, job), os.path.join(d, "out.npz")
        p = subprocess.run([py, os.path.join(HERE, "jax_ref.py"), fin, fout],
                           capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(fout):
            raise _jax_failed(py, p.stderr)
        with np.load(fout) as f:
            out = {k: f[k] for k in f.files}
    if "error" in out:
        raise _jax_failed(py, str(out["error"]))
    return out


class JaxTimer:
    """``jax_ref.py --serve`` in a side process, the job compiled once: each ``once()`` is one
    timing (replica-steps/s), so the benchmark can interleave JAX's timings with its own."""

    def __init__(self, py, **job):
        self._py = py
        self._dir = tempfile.TemporaryDirectory()
        self._err = open(os.path.join(self._dir.name, "stderr"), "w+")
        fin = _write_job(self._dir.name, job)
        self._p = subprocess.Popen([py, os.path.join(HERE, "jax_ref.py"), "--serve", fin],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=self._err, text=True)
        line = self._p.stdout.readline().split(maxsplit=1)
        if line[:1] != ["ready"]:
            err = self._stderr()
            self.close()
            raise _jax_failed(py, err)
        self.version = line[1].strip()

    def _stderr(self):
        self._err.seek(0)
        return self._err.read()

    def once(self):
        settle()
        self._p.stdin.write("time\n")
        self._p.stdin.flush()
        line = self._p.stdout.readline()
        if not line:
            raise _jax_failed(self._py, self._stderr())
        return float(line)

    def close(self):
        if self._p.stdin:
            self._p.stdin.close()
        self._p.wait()
        self._err.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- machine
def matmul_rate(repeats=3, n=2048):
    a = np.random.default_rng(0).standard_normal((n, n))
    b = np.random.default_rng(1).standard_normal((n, n))
    a @ b
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        out.append(2 * n ** 3 / (time.perf_counter() - t0))
    return out


def blas_info():
    parts = []
    try:
        from threadpoolctl import threadpool_info

        for d in threadpool_info():
            if d.get("user_api") == "blas":
                parts.append(f"{d.get('internal_api')} {d.get('version')} core type "
                             f"{d.get('architecture')} threads {d.get('num_threads')}")
    except ImportError:
        parts.append("threadpoolctl not installed")
    parts.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    return "; ".join(parts)


def gaussian_rate(threads, repeats=3, seconds=0.5, dtype=np.float64):
    """In-kernel Gaussians/s through the buffers the update uses, in the float64 transform or
    (dtype float32) the float32 one of float32 runs; each of the repeats draws about
    ``seconds`` worth (a few milliseconds would catch this machine's passing states)."""
    import numba

    from langevin_nn.kernels import philox

    numba.set_num_threads(threads)
    settle()
    R = 2 * threads
    proto = np.empty(0, dtype)
    philox.gaussian_throughput_kernel(np.uint64(SEED), 1000, R, proto)
    n = 2_000_000
    t0 = time.perf_counter()
    philox.gaussian_throughput_kernel(np.uint64(SEED), n, R, proto)
    n = max(n, int(seconds * n / (time.perf_counter() - t0)))
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        philox.gaussian_throughput_kernel(np.uint64(SEED), n, R, proto)
        out.append(n * R / (time.perf_counter() - t0))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return out


# --------------------------------------------------------------------------- main
def check_agreement(w, py_jax, log):
    """T = 0, a few steps, the same indices for all three: max |difference| / max |theta|."""
    from langevin_nn import rng

    R, N, M, B = w
    Rc, steps = min(R, 4), 3
    theta0, layout, X, Y = engine_state(Rc, N, M, B, 0, 0.0)
    theta, _, _, _ = engine_state(Rc, N, M, B, steps, 0.0)
    idx = np.array([[rng.indices(SEED, rng.BATCH, r, s, B, P) for r in range(Rc)]
                    for s in range(steps)])
    W0, b0 = split(theta0, layout, M)
    Wo, bo = split(theta, layout, M)
    scale = max(np.abs(Wo).max(), np.abs(bo).max())
    Wn, bn = numpy_steps(W0.copy(), b0.copy(), X, Y, lambda s: idx[s], steps, ETA, 0.0, None)
    res = {"numpy": max(np.abs(Wn - Wo).max(), np.abs(bn - bo).max()) / scale}
    if py_jax:
        out = jax_job(py_jax, shape=np.array([N, M, B, P]), dyn=np.array([ETA, 0.0]), X=X, Y=Y,
                      W0=W0.transpose(1, 0, 2, 3).copy(), b0=b0.transpose(1, 0, 2).copy(),
                      idx=idx)
        Wj = out["W_after"].transpose(1, 0, 2, 3)
        bj = out["b_after"].transpose(1, 0, 2)
        res["jax"] = max(np.abs(Wj - Wo).max(), np.abs(bj - bo).max()) / scale
    log(f"  agreement at T=0 ({Rc} replicas, {steps} steps, same indices): "
        + ", ".join(f"|{k} - ours|/|theta| = {v:.1e}" for k, v in res.items()))
    bad = {k: v for k, v in res.items() if not v < 1e-10}
    if bad:
        raise SystemExit(f"references disagree with the engine: {bad}")
    return res, X, Y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="0,1,2,3", help="indices into the standard list")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5, help="target seconds per timing")
    ap.add_argument("--jax-python", default=None,
                    help="interpreter with jax for the JAX reference (default: this one)")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="only float64 on all threads (no 1-thread, float32, recording runs, "
                    "no linearity check)")
    ap.add_argument("--no-linearity", action="store_true",
                    help="skip the linearity check in R and in steps (about 2 minutes)")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    repeats = max(3, a.repeats)
    sel = [WORKLOADS[int(i)] for i in a.workloads.split(",")]

    def log(msg):
        print(msg, flush=True)

    import numba

    import langevin_nn

    py_jax = None if a.no_jax else jax_python(a.jax_python)
    if py_jax is None and not a.no_jax:
        log("JAX reference skipped: jax is not installed here (pip install '.[jax]', or pass "
            "--jax-python PATH)")
    log(f"langevin_nn {langevin_nn.__version__}, numba {numba.__version__}, numpy "
        f"{np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{numba.config.NUMBA_NUM_THREADS} Numba threads")
    log(f"BLAS: {blas_info()}")
    mm = med(matmul_rate(repeats))
    log(f"float64 matmul (NumPy, 2048^3, all threads): {mm[0] / 1e9:.1f} GFLOP/s "
        f"[{mm[1] / 1e9:.1f}-{mm[2] / 1e9:.1f}]")
    gs = a.seconds / 3
    g1 = med(gaussian_rate(1, repeats, gs))
    g2 = med(gaussian_rate(min(2, numba.config.NUMBA_NUM_THREADS), repeats, gs))
    g32 = med(gaussian_rate(min(2, numba.config.NUMBA_NUM_THREADS), repeats, gs,
                            dtype=np.float32))
    log(f"in-kernel Gaussians (Philox4x32-10 + Box-Muller): {g1[0] / 1e9:.2f}e9/s on 1 thread, "
        f"{g2[0] / 1e9:.2f}e9/s on 2 [{g2[1] / 1e9:.2f}-{g2[2] / 1e9:.2f}]; float32 transform "
        f"{g32[0] / 1e9:.2f}e9/s on 2 [{g32[1] / 1e9:.2f}-{g32[2] / 1e9:.2f}]")
    results = {"matmul_gflops": mm[0] / 1e9, "gauss_1": g1[0], "gauss_2": g2[0],
               "gauss_2_float32": g32[0],
               "blas": blas_info(), "workloads": []}
    jax_version = None
    for w in sel:
        R, N, M, B = w
        log(f"\n(R, N, M, B) = {w}: {flops(N, M, B):,} flops per replica-step")
        _, X, Y = check_agreement(w, py_jax, log)
        row = {"workload": w}
        # every timing in rounds, one of each per round (our engine's variants, NumPy, JAX): the
        # ratios (ours / JAX, 2 threads / 1, float32 / float64) then span the same phases of a
        # shared machine
        variants = {"ours": {}}
        if not a.quick:
            variants.update(ours_1thread={"threads": 1}, ours_float32={"dtype": "float32"},
                            ours_recording={"every": 100})
        timers = {"numpy": numpy_timer(R, N, M, B, X, Y, a.seconds)}
        with contextlib.ExitStack() as stack:
            if py_jax:
                rs = np.random.default_rng(SEED)
                calls = int(max(1, a.seconds * timers["numpy"].estimate / (R * 100)))
                jx = stack.enter_context(JaxTimer(
                    py_jax, shape=np.array([N, M, B, P]), dyn=np.array([ETA, TEMP]), X=X, Y=Y,
                    Wt=rs.standard_normal((R, M, N, N)) / np.sqrt(N), bt=np.zeros((R, M, N)),
                    seed=np.array(SEED), calls=np.array(calls)))
                jax_version = jx.version
                timers["jax"] = jx.once
            rates = {k: [] for k in [*variants, *timers]}
            for _ in range(repeats):
                for k, kw in variants.items():
                    rates[k] += engine_rates(R, N, M, B, 1, a.seconds, **kw)
                for k, once in timers.items():
                    rates[k].append(once())
        for k in dict.fromkeys(["ours", *timers, *variants]):
            row[k] = med(rates[k])
        for k, v in row.items():
            if k != "workload":
                log(f"  {k:15s} {fmt_rate(v[0]):>10s} replica-steps/s  [{fmt_rate(v[1])}-"
                    f"{fmt_rate(v[2])}]  {v[0] * flops(N, M, B) / 1e9:7.2f} GFLOP/s")
        results["workloads"].append(row)
    if jax_version:
        log(f"\nJAX: {jax_version}")
    # ------------------------------------------------------------ the table
    log("\nreplica-steps/s, median of %d (ratios from this run); matmul %.1f GFLOP/s" %
        (repeats, mm[0] / 1e9))
    head = ["(R, N, M, B)", "ours", "JAX", "NumPy", "ours/JAX", "ours/NumPy", "GFLOP/s",
            "% matmul"]
    if not a.quick:
        head += ["1 thr", "2thr/1thr", "float32", "f32/f64", "rec. on"]
    log(" | ".join(head))
    log(" | ".join("---" for _ in head))
    for row in results["workloads"]:
        R, N, M, B = row["workload"]
        o = row["ours"][0]
        jx = row.get("jax", (float("nan"),))[0]
        gf = o * flops(N, M, B) / 1e9
        cells = [str(tuple(row["workload"])), fmt_rate(o), fmt_rate(jx) if jx == jx else "-",
                 fmt_rate(row["numpy"][0]), f"{o / jx:.1f}x" if jx == jx else "-",
                 f"{o / row['numpy'][0]:.1f}x", f"{gf:.1f}", f"{100 * gf / (mm[0] / 1e9):.0f}%"]
        if not a.quick:
            cells += [fmt_rate(row["ours_1thread"][0]), f"{o / row['ours_1thread'][0]:.2f}x",
                      fmt_rate(row["ours_float32"][0]), f"{row['ours_float32'][0] / o:.2f}x",
                      fmt_rate(row["ours_recording"][0])]
        log(" | ".join(cells))
    if not a.quick and not a.no_linearity:
        log(f"\nlinearity, our engine on all threads, median of {repeats}:")
        results["linearity"] = linearity(repeats, a.seconds, log)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:  # a reference that failed: one line, not a traceback
        raise SystemExit(f"bench: {e}") from None
