"""Explicit SIMD vectors for the product kernels (``products``).

Numba has no vector type, and LLVM's vectoriser keeps the accumulators of a small matrix product
in memory (one load and one store of C per rank update) or needs a horizontal sum per element.
A register-tiled micro-kernel needs accumulators that live in registers across the k loop: here
they are values of the Numba type ``Vec``, an LLVM vector ``<q x double>`` or ``<q x float>``,
made and used through a handful of intrinsics:

    vzeros_1/v/2v/4v(arr)  a zero vector of 1, V, 2V or 4V lanes of arr's dtype (V: ``lanes``)
    vload(proto, arr, i)   arr[i : i + q] as a vector of proto's type (q its lanes)
    vbcast(proto, arr, i)  arr[i] in every lane
    vfma(a, b, c)          a * b + c lane by lane, rounded once (``llvm.fma``)
    vstore(arr, i, v)      arr[i : i + q] = v
    vwidth(v)              q, a compile-time constant

V is the number of lanes of one vector register on the host: 512-bit registers where the CPU has
AVX-512 (8 float64, 16 float32), else 256-bit. A vector of 2V or 4V lanes is split by LLVM into 2
or 4 registers, which is how the kernels write a tile of several registers per row once for every
width. ``WIDE`` tells whether the host has 32 vector registers (AVX-512), enough for a 4 x 4V
tile and its operands.

No bounds are checked: callers guarantee ``0 <= i`` and ``i + q <= arr.size``. Loads and stores
are unaligned (element alignment). ``vfma`` is fused whatever the fast-math flags, so a sum taken
as a chain of ``vfma`` is rounded the same way in every tile width, on every CPU.
"""
from __future__ import annotations

import llvmlite.binding as _llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model


def _register_bytes() -> int:
    """Bytes in one vector register of the host: 64 with AVX-512, else 32."""
    return 64 if _llvm.get_host_cpu_features().get("avx512f", False) else 32


#: Bytes per vector register on this host, and whether it has AVX-512's 32 of them.
REGISTER_BYTES = _register_bytes()
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


def _element_pointer(context, builder, arr_type, arr, index, index_type):
    a = context.make_array(arr_type)(context, builder, arr)
    i = context.cast(builder, index, index_type, types.intp)
    return builder.gep(a.data, [i])


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
    if not (isinstance(proto, Vec) and _is_float_array(arr) and arr.dtype == proto.dtype):
        return None

    def codegen(context, builder, sig, args):
        p = _element_pointer(context, builder, sig.args[1], args[1], args[2], sig.args[2])
        vp = builder.bitcast(p, context.get_value_type(proto).as_pointer())
        return builder.load(vp, align=proto.dtype.bitwidth // 8)
    return proto(proto, arr, i), codegen


@intrinsic
def vbcast(typingctx, proto, arr, i):
    """``arr[i]`` in every lane of a vector of proto's type."""
    if not (isinstance(proto, Vec) and _is_float_array(arr) and arr.dtype == proto.dtype):
        return None

    def codegen(context, builder, sig, args):
        p = _element_pointer(context, builder, sig.args[1], args[1], args[2], sig.args[2])
        x = builder.load(p)
        vt = context.get_value_type(proto)
        i32 = ir.IntType(32)
        v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(i32, 0))
        mask = ir.Constant(ir.VectorType(i32, proto.q), [0] * proto.q)
        return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined), mask)
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
    """``arr[i : i + q] = v``."""
    if not (isinstance(v, Vec) and _is_float_array(arr) and arr.dtype == v.dtype):
        return None

    def codegen(context, builder, sig, args):
        p = _element_pointer(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        vp = builder.bitcast(p, args[2].type.as_pointer())
        builder.store(args[2], vp, align=v.dtype.bitwidth // 8)
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
