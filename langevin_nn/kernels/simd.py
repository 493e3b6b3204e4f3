"""Explicit SIMD vectors for the product kernels (``products``), the small-batch backward
(``network.dense_loss_grad``) and the noise loops (``philox``).

Numba has no vector type, and LLVM's vectoriser keeps the accumulators of a small matrix product
in memory (one load and one store of C per rank update) or needs a horizontal sum per element.
A register-tiled micro-kernel needs accumulators that live in registers across the k loop: here
they are values of the Numba type ``Vec``, an LLVM vector ``<q x double>`` or ``<q x float>``,
made and used through a handful of intrinsics:

    vzeros_1/v/2v/4v(arr)  a zero vector of 1, V, 2V or 4V lanes of arr's dtype (V: ``lanes``)
    vload(proto, arr, i)   arr[i : i + q] as a vector of proto's type (q its lanes)
    vload_part(proto, arr, i, count)   the same, lanes >= count zero (a masked load)
    vbcast(proto, arr, i)  arr[i] in every lane
    vfma(a, b, c)          a * b + c lane by lane, rounded once (``llvm.fma``)
    vstore(arr, i, v)      arr[i : i + q] = v (rounded to arr's dtype)
    vwidth(v)              q, a compile-time constant
    vsum4(a, b, c, d)      the four lane sums [sum a, sum b, sum c, sum d] as a 4-lane vector
    vsum1(a)               [sum a], a 1-lane vector, by the same tree
    vadd(a, b), vmul(a, b) a + b, a * b lane by lane (IEEE, no fast-math flags)
    vsplat(proto, x)       the scalar x in every lane
    vload_interleaved4(proto, a, b, c, d, k)   [a[k], b[k], c[k], d[k], a[k + 1], ...]
    vfirst(v)              lane 0 of v as a scalar

V is the number of lanes of one vector register on the host: 512-bit registers where the CPU has
AVX-512 (8 float64, 16 float32), else 256-bit. A vector of 2V or 4V lanes is split by LLVM into 2
or 4 registers, which is how the kernels write a tile of several registers per row once for every
width. ``WIDE`` tells whether the host has 32 vector registers (AVX-512), enough for a 4 x 4V
tile and its operands.

No bounds are checked: callers guarantee ``0 <= i`` and ``i + q <= arr.size`` (``i + min(q,
count) <= arr.size`` for ``vload_part``, which touches no element beyond). Loads and stores
are unaligned (element alignment). ``vfma`` is fused whatever the fast-math flags, so a sum taken
as a chain of ``vfma`` is rounded the same way in every tile width, on every CPU.
"""
from __future__ import annotations

import os

import llvmlite.binding as _llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model


def _register_bytes() -> int:
    """Bytes in one vector register of the host: 64 with AVX-512, else 32. The environment
    variable ``LANGEVIN_NN_SIMD_BYTES=32`` forces the AVX2 tiles on an AVX-512 host (the tests
    use it, with a Numba cache of their own: Numba's cache key does not see it)."""
    forced = os.environ.get("LANGEVIN_NN_SIMD_BYTES")
    if forced in ("32", "64"):
        return int(forced)
    return 64 if _llvm.get_host_cpu_features().get("avx512f", False) else 32


#: Bytes per vector register on this host, and whether it has AVX-512's 32 of them.
REGISTER_BYTES = _register_bytes()
#: The host's own register bytes, never forced (0: no AVX): where ``_opaque``'s inline assembly
#: may hold a 256-bit vector in one register.
_HOST_FEATURES = _llvm.get_host_cpu_features()
_HOST_BYTES = (64 if _HOST_FEATURES.get("avx512f", False) else
               32 if _HOST_FEATURES.get("avx", False) else 0)
WIDE = REGISTER_BYTES == 64


def lanes(dtype) -> int:
    """Lanes of one host vector register for a Numba float type (float64: 8 with AVX-512)."""
    return REGISTER_BYTES // (dtype.bitwidth // 8)


class Vec(types.Type):
    """An LLVM vector of ``q`` elements of the float type ``dtype``."""

    def __init__(self, dtype, q):
        self.dtype = dtype
        self.q = q
        super().__init__(name=f"Vec({dtype}x{q})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.q))


def _is_float_array(t) -> bool:
    return isinstance(t, types.Array) and isinstance(t.dtype, types.Float)


def _vector_of(v, arr) -> bool:
    """Typing guard of the memory intrinsics: v a ``Vec`` of arr's float dtype."""
    return isinstance(v, Vec) and _is_float_array(arr) and arr.dtype == v.dtype


def _element_pointer(context, builder, arr_type, arr, index, index_type):
    a = context.make_array(arr_type)(context, builder, arr)
    i = context.cast(builder, index, index_type, types.intp)
    return builder.gep(a.data, [i])


def _vector_pointer(context, builder, arr_type, arr, index, index_type, vector_type):
    """``&arr[index]`` as a pointer to the LLVM vector type ``vector_type``."""
    p = _element_pointer(context, builder, arr_type, arr, index, index_type)
    return builder.bitcast(p, vector_type.as_pointer())


def _shuffle(builder, x, y, mask):
    """LLVM's ``shufflevector`` of x and y with the constant lane indices ``mask``."""
    return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)),
                                                    mask))


def _zeros(multiple):
    """Intrinsic ``vzeros(arr)``: zero vector of ``multiple`` registers' lanes (0: one lane)."""
    @intrinsic
    def vzeros(typingctx, arr):
        if not _is_float_array(arr):
            return None
        vt = Vec(arr.dtype, multiple * lanes(arr.dtype) if multiple else 1)

        def codegen(context, builder, sig, args):
            return ir.Constant(context.get_value_type(vt), [0.0] * vt.q)
        return vt(arr), codegen
    return vzeros


vzeros_1 = _zeros(0)
vzeros_v = _zeros(1)
vzeros_2v = _zeros(2)
vzeros_4v = _zeros(4)


@intrinsic
def vload(typingctx, proto, arr, i):
    """``arr[i : i + q]`` as a vector of proto's type."""
    if not _vector_of(proto, arr):
        return None

    def codegen(context, builder, sig, args):
        vp = _vector_pointer(context, builder, sig.args[1], args[1], args[2], sig.args[2],
                             context.get_value_type(proto))
        return builder.load(vp, align=proto.dtype.bitwidth // 8)
    return proto(proto, arr, i), codegen


@intrinsic
def vbcast(typingctx, proto, arr, i):
    """``arr[i]`` in every lane of a vector of proto's type."""
    if not _vector_of(proto, arr):
        return None

    def codegen(context, builder, sig, args):
        p = _element_pointer(context, builder, sig.args[1], args[1], args[2], sig.args[2])
        return _splat(builder, context.get_value_type(proto), builder.load(p))
    return proto(proto, arr, i), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once."""
    if not (isinstance(a, Vec) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        vt = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vt, [vt, vt, vt]),
            f"llvm.fma.v{a.q}f{a.dtype.bitwidth}")
        return builder.call(fn, args)
    return a(a, b, c), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """``arr[i : i + q] = v``; a vector of another float type is rounded to arr's lane by lane
    first (as the scalar assignment would)."""
    if not (isinstance(v, Vec) and _is_float_array(arr)):
        return None

    def codegen(context, builder, sig, args):
        x = args[2]
        if arr.dtype != v.dtype:
            et = ir.VectorType(context.get_value_type(arr.dtype), v.q)
            grow = arr.dtype.bitwidth > v.dtype.bitwidth
            x = builder.fpext(x, et) if grow else builder.fptrunc(x, et)
        vp = _vector_pointer(context, builder, sig.args[0], args[0], args[1], sig.args[1],
                             x.type)
        builder.store(x, vp, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.void(arr, i, v), codegen


@intrinsic
def vwidth(typingctx, v):
    """The number of lanes q of v's type, as an int64 constant."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.IntType(64), v.q)
    return types.int64(v), codegen


def _splat(builder, vt, x):
    """x in every lane of the LLVM vector type vt."""
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return _shuffle(builder, v, ir.Constant(vt, ir.Undefined), [0] * vt.count)


@intrinsic
def vload_part(typingctx, proto, arr, i, count):
    """``arr[i : i + min(q, count)]`` in the first lanes of a vector of proto's type, zeros in
    the others; no element beyond is read (``llvm.masked.load``)."""
    if not (_vector_of(proto, arr) and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        vt = context.get_value_type(proto)
        vp = _vector_pointer(context, builder, sig.args[1], args[1], args[2], sig.args[2], vt)
        i64 = ir.IntType(64)
        lanes_ = ir.Constant(ir.VectorType(i64, proto.q), list(range(proto.q)))
        n = _splat(builder, ir.VectorType(i64, proto.q),
                   context.cast(builder, args[3], sig.args[3], types.int64))
        mask = builder.icmp_signed("<", lanes_, n)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vt, [vt.as_pointer(), ir.IntType(32), mask.type, vt]),
            f"llvm.masked.load.v{proto.q}f{proto.dtype.bitwidth}.p0")
        return builder.call(fn, [vp, ir.Constant(ir.IntType(32), proto.dtype.bitwidth // 8),
                                 mask, ir.Constant(vt, [0.0] * proto.q)])
    return proto(proto, arr, i, count), codegen


def _tree_summable(a) -> bool:
    """Typing guard of the lane sums: a ``Vec`` of at least 4 lanes, a power of two."""
    return isinstance(a, Vec) and a.q >= 4 and a.q & (a.q - 1) == 0


def _sum4_tree(builder, a, b, c, d, q):
    """The 4-lane vector of the lane sums of the q-lane vectors a, b, c, d (see ``vsum4``)."""
    def shuffle(x, y, mask):
        return _shuffle(builder, x, y, mask)

    def pairs(x, y):      # lane 2i: x[2i] + x[2i+1], lane 2i+1: y[2i] + y[2i+1]
        ev = [j + (q if j % 2 else 0) - (j % 2) for j in range(q)]
        od = [e + 1 for e in ev]
        return builder.fadd(shuffle(x, y, ev), shuffle(x, y, od))

    u, v = pairs(a, b), pairs(c, d)
    lo = [4 * i + j + (q - 2 if j >= 2 else 0) for i in range(q // 4) for j in range(4)]
    hi = [x + 2 for x in lo]
    t = builder.fadd(shuffle(u, v, lo), shuffle(u, v, hi))  # lanes 4i + j: partial of j
    w = q
    while w > 4:
        w //= 2
        t = builder.fadd(shuffle(t, t, list(range(w))), shuffle(t, t, list(range(w, 2 * w))))
    return t


@intrinsic
def vsum4(typingctx, a, b, c, d):
    """``[sum(a), sum(b), sum(c), sum(d)]``: the lanes of each summed by one fixed tree (pairs of
    neighbouring lanes, then pairs of those, then halves), the same for the four, so that
    ``vsum1(a)`` has the bits of ``vsum4(a, b, c, d)[0]``. q >= 4, a power of two."""
    if not (_tree_summable(a) and a == b == c == d):
        return None
    q = a.q
    out = Vec(a.dtype, 4)

    def codegen(context, builder, sig, args):
        return _sum4_tree(builder, *args, q)
    return out(a, b, c, d), codegen


@intrinsic
def vsum1(typingctx, a):
    """``[sum(a)]`` as a one-lane vector, by the tree of ``vsum4`` (the same bits as its lane
    for a)."""
    if not _tree_summable(a):
        return None
    out = Vec(a.dtype, 1)

    def codegen(context, builder, sig, args):
        t = _sum4_tree(builder, args[0], args[0], args[0], args[0], a.q)
        return _shuffle(builder, t, t, [0])
    return out(a), codegen


def _lanewise(op):
    """Intrinsic ``f(a, b)``: the IEEE operation ``op`` (an IRBuilder method) lane by lane,
    rounded once per lane and without fast-math flags (the bits of the scalar operation)."""
    @intrinsic
    def f(typingctx, a, b):
        if not (isinstance(a, Vec) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(*args)
        return a(a, b), codegen
    return f


vadd = _lanewise("fadd")
vmul = _lanewise("fmul")


@intrinsic
def vsplat(typingctx, proto, x):
    """The scalar x (converted to proto's element type) in every lane of a vector of proto's
    type."""
    if not (isinstance(proto, Vec) and isinstance(x, (types.Float, types.Integer))):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[1], sig.args[1], proto.dtype)
        return _splat(builder, context.get_value_type(proto), v)
    return proto(proto, x), codegen


def _gather_blocks(builder, blocks, s):
    """The vector of the 128-bit blocks ``blocks`` (pairs (vector, block index), s elements
    each) in their order: one shuffle of two sources, or halves joined (more sources)."""
    sources = list(dict.fromkeys(v for v, _ in blocks))
    if len(sources) <= 2:
        x = sources[0]
        y = sources[1] if len(sources) == 2 else x
        n = x.type.count
        mask = [(n if v is not x else 0) + b * s + i for v, b in blocks for i in range(s)]
        return _shuffle(builder, x, y, mask)
    h = len(blocks) // 2
    lo = _gather_blocks(builder, blocks[:h], s)
    hi = _gather_blocks(builder, blocks[h:], s)
    return _shuffle(builder, lo, hi, list(range(lo.type.count + hi.type.count)))


def _opaque(builder, v):
    """v through an empty inline-asm statement (an XMM/YMM register in and out): no code, but
    LLVM can no longer see through it, so shuffles on either side are not merged."""
    return builder.asm(ir.FunctionType(v.type, [v.type]), "", "=x,0", [v], side_effect=False)


def _interleave4_blocks(builder, loads, s):
    """``vload_interleaved4``'s tree for loads of n lanes, n a multiple of the s elements of a
    128-bit block: unpacks within blocks (AVX's ``unpck*``), then whole blocks moved
    (``vperm2f128``, ``vshuf*x2``). Returns the output registers, n lanes each.

    For float32 in 256-bit registers the four in-block transposes are made opaque before the
    blocks move: LLVM's shuffle combiner otherwise merged the two steps into 16 shuffles
    (``vpermpd``, blends) for the 12 of the tree, and the update loop of float32 runs spent
    371 ns on 2176 elements with the 12, 480 with the 16 and 521 with LLVM's lowering of
    the general tree (22; 236-262 with no interleaving at all), on a Zen 3 core."""
    n = loads[0].type.count
    nb = n // s

    def unpack(x, y, half):  # per block, pairs x_i y_i of its lower or upper half
        return _shuffle(builder, x, y, [b * s + i + (n if j else 0) for b in range(nb)
                                        for i in range(half * s // 2, (half + 1) * s // 2)
                                        for j in (0, 1)])
    ab = [unpack(loads[0], loads[1], h) for h in (0, 1)]
    cd = [unpack(loads[2], loads[3], h) for h in (0, 1)]
    if s == 2:      # a block of ab[h] holds a_e b_e, e = 2 block + h: a group is two blocks
        groups = [[(ab[e % 2], e // 2), (cd[e % 2], e // 2)] for e in range(n)]
    else:           # s == 4: blocks of a_e b_e c_e d_e, e = 4 block + t, in T[t]
        t = [_shuffle(builder, ab[h], cd[h], [b * s + i + (n if j else 0) for b in range(nb)
                                               for j in (0, 1) for i in (2 * p, 2 * p + 1)])
             for h in (0, 1) for p in (0, 1)]
        if n * 32 == 256 and _HOST_BYTES >= 32:
            t = [_opaque(builder, v) for v in t]
        groups = [[(t[e % 4], e // 4)] for e in range(n)]
    flat = [blk for g in groups for blk in g]
    return [_gather_blocks(builder, flat[r * nb:(r + 1) * nb], s) for r in range(4)]


@intrinsic
def vload_interleaved4(typingctx, proto, a, b, c, d, k):
    """``[a[k], b[k], c[k], d[k], a[k + 1], b[k + 1], ...]``: ``q / 4`` elements from each of
    four arrays, interleaved, as one vector of proto's type (q lanes, a multiple of 4): four
    loads and a fixed tree of shuffles. Where each load fills whole 128-bit blocks, the tree
    is the transpose of 4 x 4 (float32) or 2 x 2 (float64) tiles within blocks, then whole blocks
    moved (``_interleave4_blocks``: 12 shuffles for 32 float32 lanes on AVX2, where LLVM's
    lowering of the general tree took 22 and loaded each input twice); else pairs of arrays
    zipped lane by lane, then pairs of pairs."""
    if not (all(_vector_of(proto, x) for x in (a, b, c, d)) and proto.q % 4 == 0):
        return None
    n = proto.q // 4
    s = 128 // proto.dtype.bitwidth

    def codegen(context, builder, sig, args):
        part = ir.VectorType(context.get_value_type(proto.dtype), n)
        loads = [builder.load(_vector_pointer(context, builder, sig.args[j], args[j], args[5],
                                              sig.args[5], part),
                              align=proto.dtype.bitwidth // 8)
                 for j in range(1, 5)]
        if n % s == 0:
            r = _interleave4_blocks(builder, loads, s)
            return _shuffle(builder, _shuffle(builder, r[0], r[1], list(range(2 * n))),
                            _shuffle(builder, r[2], r[3], list(range(2 * n))),
                            list(range(4 * n)))
        # x0 y0 x1 y1 ... from two n-lane vectors, then the pairs of ab and cd alternately
        zip1 = [i // 2 + (n if i % 2 else 0) for i in range(2 * n)]
        ab = _shuffle(builder, loads[0], loads[1], zip1)
        cd = _shuffle(builder, loads[2], loads[3], zip1)
        zip2 = [2 * (i // 4) + i % 2 + (2 * n if i % 4 >= 2 else 0) for i in range(4 * n)]
        return _shuffle(builder, ab, cd, zip2)
    return proto(proto, a, b, c, d, k), codegen


@intrinsic
def vfirst(typingctx, v):
    """Lane 0 of v, as a scalar (of a one-lane ``vsum1`` above all)."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], ir.Constant(ir.IntType(32), 0))
    return v.dtype(v), codegen
