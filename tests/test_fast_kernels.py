"""Correctness of the fast paths (docs/performance.md): the libm-free tanh, the per-layer activation
loops, the dense BLAS/feature-major passes against the generic ones, the noise fused into the
update against the NumPy twin, and bitwise determinism where BLAS products are taken (including
products split into several BLAS calls). No timings here: see benchmarks/."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from helpers import assert_same, dump, run_memory
from langevin_nn import rng
from langevin_nn.boundary import losses
from langevin_nn.bulk.networks import build_layout
from langevin_nn.config import load_config
from langevin_nn.kernels import activations as act
from langevin_nn.kernels import convert
from langevin_nn.kernels import philox
from langevin_nn.kernels.ensemble import loss_and_grad
from langevin_nn.kernels.network import FM_MIN_BATCH, dense_loss_grad


# ------------------------------------------------------------------ tanh
@numba.njit
def _tanh_many(x, f):
    """``f(x[i])`` for every element (``act.tanh_d`` or ``act.tanh_d32``)."""
    t = np.empty_like(x)
    d = np.empty_like(x)
    for i in range(x.size):
        t[i], d[i] = f(x[i])
    return t, d


def _ulps(got, ref):
    """|got - ref| in units of the spacing of got's dtype at ref (ref in long double; the
    smallest subnormal where ref underflows)."""
    tiny = np.finfo(got.dtype).smallest_subnormal
    sp = np.maximum(np.spacing(np.abs(ref.astype(got.dtype))), tiny)
    return np.abs((got.astype(np.longdouble) - ref) / sp.astype(np.longdouble)).astype(float)


def _tanh_points():
    rs = np.random.default_rng(7)
    tiny = 2.2250738585072014e-308
    special = [0.0, 1e-300, 1e-20, 1e-16, 1e-9, 1e-8, 3e-8, 1e-4, 0.1, 0.5, 0.549, 0.55, 0.625,
               1.0, 2.0, 5.0, 10.0, 19.0, 19.1, 20.0, 21.0, 30.0, 40.0, 100.0, 354.0, 360.0,
               372.0, 372.9, 373.0, 373.5, 400.0, 1e10, 1e300,
               5e-324, 1e-323, 1e-310, np.nextafter(tiny, 0), tiny, np.nextafter(tiny, 1)]
    x = np.concatenate([special, rs.normal(size=20000) * 3, rs.uniform(-25, 25, 20000),
                        np.exp(rs.uniform(np.log(1e-320), np.log(700.0), 40000))])
    return np.concatenate([x, -x])


def test_tanh_few_ulp_everywhere():
    x = _tanh_points()
    t, d = _tanh_many(x, act.tanh_d)
    xl = x.astype(np.longdouble)
    with np.errstate(over="ignore"):
        ref_t = np.tanh(xl)
        ref_d = 1 / np.cosh(xl) ** 2            # long double: exact enough, 0 where it underflows
    assert _ulps(t, ref_t).max() <= 4.0
    assert _ulps(d, ref_d).max() <= 8.0         # counted in subnormal spacings where sech^2 underflows
    big = np.abs(x) <= 300
    rel = np.abs((d[big] - ref_d[big]) / ref_d[big]).astype(float)
    assert rel.max() < 2e-15                    # relative accuracy kept where 1 - t^2 would cancel
    # against NumPy's tanh and its derivative where 1 - t^2 is accurate
    assert np.all(np.abs(t - np.tanh(x)) <= 4 * np.spacing(np.abs(np.tanh(x))))
    small = np.abs(x) < 0.5
    nd = 1 - np.tanh(x[small]) ** 2
    assert np.all(np.abs(d[small] - nd) <= 4 * np.spacing(nd))


def test_tanh32_few_ulp_everywhere():
    """The float32 tanh of float32 runs: within 4 float32 ulp (tanh) and 8 (sech^2, subnormal
    spacings where it underflows) of the exact values, from the smallest subnormal to 3e38."""
    rs = np.random.default_rng(7)
    special = np.array([0.0, 1e-45, 1e-40, 1.1754944e-38, 1e-20, 1e-8, 1e-4, 0.1, 0.5, 0.55, 1.0,
                        5.0, 9.0, 9.1, 10.0, 20.0, 50.0, 52.0, 52.5, 53.0, 100.0, 1e10, 3e38],
                       np.float32)
    x = np.concatenate([special, (rs.normal(size=20000) * 3).astype(np.float32),
                        rs.uniform(-25, 25, 20000).astype(np.float32),
                        np.exp(rs.uniform(np.log(1e-44), np.log(80.0), 40000)).astype(np.float32)])
    x = np.concatenate([x, -x])
    t, d = _tanh_many(x, act.tanh_d32)
    assert t.dtype == np.float32 and d.dtype == np.float32
    xl = x.astype(np.longdouble)
    with np.errstate(over="ignore"):
        ref_t = np.tanh(xl)
        ref_d = 1 / np.cosh(xl) ** 2
    assert _ulps(t, ref_t).max() <= 4.0
    assert _ulps(d, ref_d).max() <= 8.0
    big = np.abs(x) <= 40
    rel = np.abs((d[big] - ref_d[big]) / ref_d[big]).astype(float)
    assert rel.max() < 8 * 2.0 ** -24                # relative accuracy where 1 - t^2 cancels
    s = np.array([0.0, -0.0, 1e-45, -1e-40, np.inf, -np.inf, np.nan], np.float32)
    ts, ds = _tanh_many(s, act.tanh_d32)
    np.testing.assert_array_equal(ts[:4], s[:4])     # zeros and subnormals: tanh x = x
    assert np.signbit(ts[1]) and not np.signbit(ts[0])
    np.testing.assert_array_equal(ds[:4], 1.0)
    assert ts[4] == 1.0 and ts[5] == -1.0 and ds[4] == 0.0 and ds[5] == 0.0
    assert np.isnan(ts[6]) and np.isnan(ds[6])


def test_tanh_special_values():
    x = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e-9, -1e-9, np.inf, -np.inf, np.nan, 1e300])
    t, d = _tanh_many(x, act.tanh_d)
    np.testing.assert_array_equal(t[:5], x[:5])            # zeros and subnormals: tanh x = x
    assert np.all(np.abs(t[5:7] - x[5:7]) <= np.abs(np.spacing(x[5:7])))  # within 1 ulp of x
    assert np.signbit(t[1]) and not np.signbit(t[0])        # signed zero kept
    assert np.all(np.abs(d[:7] - 1.0) <= 2.3e-16)
    assert t[7] == 1.0 and t[8] == -1.0 and d[7] == 0.0 and d[8] == 0.0
    assert np.isnan(t[9]) and np.isnan(d[9])                # NaN propagates (divergence guards)
    assert t[10] == 1.0 and d[10] == 0.0


@numba.njit
def _f2i_many(v):
    out = np.empty(v.size, np.int64)
    for i in range(v.size):
        out[i] = convert.f2i(v[i])
    return out


def test_f2i_is_the_exact_conversion():
    """tanh's float64 -> int64 conversion by the 1.5 * 2**52 addition (vectorisable on AVX2)
    equals np.int64 on integer-valued floats |v| < 2**51, k's range in tanh and far beyond."""
    big = 2.0 ** 51 - 1
    v = np.concatenate([np.arange(-1100.0, 2.0), [-big, big, -2.0 ** 40, 2.0 ** 40, -0.0],
                        np.random.default_rng(3).integers(-2**50, 2**50, 1000).astype(float)])
    np.testing.assert_array_equal(_f2i_many(v), v.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_act_rows_equals_elementwise(dtype):
    """The per-layer vector loops give the activation catalogue's values and derivatives."""
    from langevin_nn.bulk.activations import CODES, evaluate
    from langevin_nn.config import ActivationSpec

    rs = np.random.default_rng(3)
    z = (rs.normal(size=(5, 37)) * 2).astype(dtype)
    for name, code in CODES.items():
        p, q, r = (0.7, 0.3, -0.2)
        H = z.copy()
        D = np.zeros_like(H)
        act.act_rows(code, p, q, r, H, D, 1, 4, 3, 30)
        spec = ActivationSpec(name, p, q, r) if name in ("linear", "quadratic") \
            else ActivationSpec(name)
        zz = z[1:4, 3:30].astype(float)
        tol = 1e-14 if dtype == np.float64 else 2e-7
        np.testing.assert_allclose(H[1:4, 3:30], evaluate(spec, zz), rtol=tol, atol=tol,
                                   err_msg=name)
        np.testing.assert_allclose(D[1:4, 3:30], evaluate(spec, zz, 1), rtol=tol, atol=tol,
                                   err_msg=name)
        np.testing.assert_array_equal(H[0], z[0])            # outside the block: untouched
        np.testing.assert_array_equal(H[1:4, :3], z[1:4, :3])


# ------------------------------------------------------------------ dense fast path
def _layout(widths, act_name="tanh", bias=True, out_act="identity"):
    cfg = load_config({"network": {"architecture": "dense", "widths": widths,
                                   "activation": act_name, "output_activation": out_act,
                                   "bias": bias}})
    return build_layout(cfg.network)


@pytest.mark.parametrize("B", [1, 3, FM_MIN_BATCH, 8, 13])
@pytest.mark.parametrize("widths,act_name,bias,loss", [
    ([5, 7, 6, 2], "tanh", True, "mse"),
    ([4, 9, 3], "relu", False, "cross_entropy"),
    ([6, 8, 8, 8, 1], "softplus", True, "hinge"),
    ([3, 5, 4], "quadratic", True, "kl"),
    ([20, 33, 17, 3], "tanh", True, "mse"),    # rows of several vectors and a tail, float32 too
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_fast_path_equals_generic(B, widths, act_name, bias, loss, dtype):
    lay = _layout(widths, act_name, bias)
    a = lay.arrays
    rs = np.random.default_rng(B)
    L = a.lay_off[-1]
    nm = widths[-1]
    theta = (rs.normal(size=lay.n_par) * 0.7).astype(dtype)
    X = rs.normal(size=(B, widths[0]))
    if loss == "mse":
        Y = rs.normal(size=(B, nm))
    elif loss == "hinge":
        Y = rs.choice([-1.0, 1.0], size=(B, 1))
    else:
        Y = rs.dirichlet(np.ones(nm), size=B)

    def bufs():
        H = np.zeros((B + 2, L), dtype)
        H[:B, :widths[0]] = X
        return H, np.zeros((B + 2, L), dtype), np.zeros((B + 2, L), dtype)

    code = losses.CODES[loss]
    H, D, G = bufs()
    g_ref = np.zeros(lay.n_par, dtype)
    l_ref = loss_and_grad(a, code, theta, B, H, D, G, Y.astype(dtype), g_ref, -0.5, True)
    H, D, G = bufs()
    g = np.full(lay.n_par, np.nan, dtype)                  # overwritten, not accumulated
    HT = np.zeros((B + 2) * L, dtype)
    DT = np.zeros((B + 2) * L, dtype)
    l_fast = dense_loss_grad(a, code, theta, B, H, D, G, Y.astype(dtype), g, -0.5, HT, DT)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert l_fast == pytest.approx(l_ref, rel=tol, abs=tol)
    np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol * np.abs(g_ref).max())


# ------------------------------------------------------------------ noise fused into the update
@pytest.mark.parametrize("n", [1, 2, 4, 7, 4 * philox._CHUNK, 4 * philox._CHUNK + 3,
                               4 * philox._CHUNK + 4, 12 * philox._CHUNK + 5, 1537])
def test_noisy_axpby_matches_twin(n):
    rs = np.random.default_rng(n)
    y0, x = rs.normal(size=n), rs.normal(size=n)
    y = y0.copy()
    buf = np.empty(philox.NOISE_BUF)
    ssq = philox.noisy_axpby(np.uint64(99), rng.NOISE, 5, 12, y, 0.9, x, 0.01, 0.3, buf)
    ref = 0.9 * y0 + 0.01 * x + 0.3 * rng.gaussians(99, rng.NOISE, 5, 12, n)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-14)
    assert ssq == pytest.approx(np.sum(ref * ref), rel=1e-13)
    # the update is (a y + b x) + scale g with each operation rounded once, in the vector loop
    # and in its tail alike: the same bits as NumPy's arithmetic on the same Gaussians
    g = np.empty(n)
    philox.fill_noise(np.uint64(99), rng.NOISE, 5, 12, g, 1.0, buf)
    np.testing.assert_array_equal(y, (0.9 * y0 + 0.01 * x) + 0.3 * g)
    y = y0.copy()                                           # scale 0: no noise at all
    philox.noisy_axpby(np.uint64(99), rng.NOISE, 5, 12, y, 0.9, x, 0.01, 0.0, buf)
    np.testing.assert_allclose(y, 0.9 * y0 + 0.01 * x, rtol=0, atol=1e-15)
    # float32 (a float32 run): float32 arithmetic and the float32 transform
    y32, x32 = y0.astype(np.float32), x.astype(np.float32)
    ref32 = ((np.float32(0.9) * y32 + np.float32(0.01) * x32)
             + np.float32(0.3) * rng.gaussians(99, rng.NOISE, 5, 12, n, dtype=np.float32))
    philox.noisy_axpby(np.uint64(99), rng.NOISE, 5, 12, y32, 0.9, x32, 0.01, 0.3,
                       np.empty(philox.NOISE_BUF, np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ref32, rtol=0, atol=4e-6)


# ------------------------------------------------------------------ determinism with BLAS
def _wide_case(N, B, replicas, dtype="float64", chunk=0):
    return {"network": {"architecture": "dense", "widths": [N, N, N, N], "activation": "tanh",
                        "output_activation": "identity", "sigma_b2": 0.0},
            "data": {"n_train": 64, "n_probe": 4, "batch": B, "loss": "mse", "reduction": "sum"},
            "dynamics": {"integrator": "overdamped", "eta": 1e-3, "T": 1e-4},
            "ensemble": {"replicas": replicas, "steps": 6, "seed": 3, "chunk": chunk,
                         "dtype": dtype},
            "recording": {"every": 2, "snapshot_every": 6}}


@pytest.mark.parametrize("N,B", [(64, 8), (256, 8)])
def test_blas_path_is_deterministic(N, B):
    """N = 64, B = 8 takes the BLAS path; at N = 256 the products (B N^2 = 524288 multiply-adds)
    are above the size from which OpenBLAS would split a gemm over its threads were it not held
    to the calling thread while kernels run (ensemble.ReplicaBlocks)."""
    assert B >= FM_MIN_BATCH
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = dump(run_memory(_wide_case(N, B, 4))[1])
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = dump(run_memory(_wide_case(N, B, 4))[1])
    finally:
        numba.set_num_threads(threads)
    assert_same(one, two)
    assert_same(dump(run_memory(_wide_case(N, B, 4, chunk=1))[1]), one)
    assert_same(dump(run_memory(_wide_case(N, B, 2))[1]), dump(run_memory(_wide_case(N, B, 4))[1],
                                                                replicas=slice(0, 2)))


def test_float32_run_follows_float64():
    """float32 runs take the same fast paths (sgemm, float32 activations) and stay close to
    the float64 run over a few steps."""
    d64 = dump(run_memory(_wide_case(64, 8, 2))[1])
    d32 = dump(run_memory(_wide_case(64, 8, 2, dtype="float32"))[1])
    assert d32["state/theta"].dtype == np.float32
    np.testing.assert_allclose(d32["state/theta"], d64["state/theta"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(d32["records/loss_batch"], d64["records/loss_batch"], rtol=1e-4)


def test_blas_held_to_one_thread_while_kernels_run():
    """ReplicaBlocks keeps every BLAS at one thread while it exists and gives the previous
    setting back afterwards (the user's NumPy is not left single-threaded)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from langevin_nn.kernels.ensemble import ReplicaBlocks

    def blas_threads():
        return [d["num_threads"] for d in threadpoolctl.threadpool_info()
                if d["user_api"] == "blas"]

    before = blas_threads()
    with ReplicaBlocks(4, 2):
        inside = blas_threads()
    assert inside and all(n == 1 for n in inside)
    assert blas_threads() == before


@pytest.mark.parametrize("R, threads", [(1, 2), (3, 2), (16, 2), (1000, 2), (7, 1), (5, 3)])
def test_replica_blocks_run_every_replica_once_per_chunk(monkeypatch, R, threads):
    """The threads take contiguous blocks from a shared queue: every replica is advanced
    exactly once per call, by guided blocks (each ceil(left / (2 threads)) replicas of those
    left, so the sizes never grow and the last is one replica; one block on one thread), and
    each call starts from the first block again."""
    import threading
    import time

    from langevin_nn.kernels import ensemble

    calls, lock = [], threading.Lock()

    def fake_block(net, tnet, bd, dyn, st, rec, s0, n, bbd_on, r0, r1):
        time.sleep(0.001 * (r1 - r0) * (1 + (threading.get_ident() % 3)))  # uneven threads
        with lock:
            calls.append((s0, r0, r1))

    monkeypatch.setattr(ensemble, "run_block", fake_block)
    with ensemble.ReplicaBlocks(R, threads) as run_chunk:
        for s0 in (0, 5):
            run_chunk(None, None, None, None, None, None, s0, 5, None)
    for s0 in (0, 5):
        spans = sorted((r0, r1) for s, r0, r1 in calls if s == s0)
        covered = [r for r0, r1 in spans for r in range(r0, r1)]
        assert covered == list(range(R))
        T = min(threads, R)
        sizes = [r1 - r0 for r0, r1 in spans]
        if T == 1:
            assert sizes == [R]
            continue
        assert sizes == [-(-(R - r0) // (2 * T)) for r0, _ in spans]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1


# ------------------------------------------------------------------ options.disjoint_arrays
def test_disjoint_arrays_marks_data_pointers_noalias():
    """The intrinsic finds the array data pointers in Numba's flattened calling convention
    (should a Numba release rename them, the kernels would silently get the overlap checks
    back): noalias on the float arrays' data, not on the int array's or the scalars."""
    from langevin_nn.kernels.options import disjoint_arrays

    @numba.njit(cache=False)
    def axpy(y, x, idx, a):
        disjoint_arrays()
        for i in range(y.size):
            y[i] += a * x[i] + idx[i]

    y = np.zeros(5)
    axpy(y, np.ones(5), np.arange(5), 2.0)
    np.testing.assert_array_equal(y, 2.0 + np.arange(5))
    ir = next(iter(axpy.inspect_llvm().values()))
    head = next(line for line in ir.splitlines()
                if line.startswith("define") and "arg.y.4" in line)
    params = {p.strip().split()[-1].strip('"%'): p for p in head.split("(", 1)[1].split(",")}
    assert "noalias" in params["arg.y.4"] and "noalias" in params["arg.x.4"]
    assert "noalias" not in params["arg.idx.4"]


# ------------------------------------------------------------------ record cadences
def _observes(t, every, snap, z, bbd, pending):
    """Whether ``ensemble._observe`` has anything to do at step t (its conditions, written out)."""
    return (t % every == 0 or (snap > 0 and t % snap == 0) or (z > 0 and t % z == 0)
            or (bbd > 0 and (pending or t % bbd == 0)))


@pytest.mark.parametrize("bbd_on", [None, True])
def test_next_due_is_the_first_step_observe_acts_on(bbd_on):
    """``replica_chunk`` runs the steps before ``_next_due`` without looking at the records:
    the first step at or after t with a record, snapshot, probe-z or BBD entry (or a pending
    BBD entry, completed at once), for every combination of cadences, with BBD compiled in or
    left out (then the BBD cadence is not looked at)."""
    from langevin_nn.kernels import ensemble as ens

    a = np.zeros(1)
    for every, snap, z, bbd in [(1, 0, 0, 0), (3, 0, 0, 0), (5, 6, 0, 0), (4, 0, 6, 0),
                                (7, 3, 5, 0), (100, 0, 0, 3), (6, 4, 0, 9), (1000, 7, 11, 13)]:
        rec = ens.Rec(every, a, a, a, a, a, a, a, a, snap, a, z, a, bbd, a, a, a, a)
        for pending in (False, True):
            st = ens.State(a, a, a, a, a, a, a, np.array([pending]), a, a, a, a, a, a)
            b = bbd if bbd_on else 0
            for t in range(0, 60):
                want = next(u for u in range(t, t + 1001)
                            if _observes(u, every, snap, z, b, pending and b > 0))
                assert ens._next_due(st, rec, bbd_on, 0, t) == want, (every, snap, z, bbd, t)
