"""The one place that decides how Numba compiles langevin_nn's kernels.

Fastmath flags are listed explicitly: reassociation and contraction let LLVM vectorise
reductions and fuse multiply-adds, but ``nnan`` and ``ninf`` are left out so that the
divergence guards (``x != x``, ``abs(x) > bound``) keep working.

Every kernel is compiled with ``cache=True`` so that a second run loads machine code from
``__pycache__`` instead of compiling (about 3.5 s per parallel signature on 2 cores).
"""
from __future__ import annotations

import numba
import numpy as np

#: LLVM fast-math flags used by every kernel (no ``nnan``/``ninf``: NaN guards must work).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Flags for helpers whose rounding is part of their accuracy (range reductions with a two-part
#: constant, compensated sums): no ``reassoc`` (it would fold ``x - k*c_hi - k*c_lo`` into
#: ``x - k*(c_hi + c_lo)``) and no ``arcp``. They still vectorise once LLVM inlines them into a
#: loop (fast-math flags are per instruction and survive inlining).
EXACT = {"nsz", "contract", "afn"}

#: Zero typed as ``int64`` rather than ``Literal[int](0)``: a literal constant passed to a jitted
#: helper makes Numba compile a separate specialisation of the helper (and of everything inlined
#: into it) for that pattern of constants; pass ``I0`` instead of ``0``.
I0 = np.int64(0)

#: Options for serial helpers inlined into kernels. ``_nrt`` is always given (Numba's reference
#: counting of arrays, see ``NOREF``): a function that does not say inherits its first caller's.
SERIAL = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", _nrt=True)

#: Extra options for the helpers of every step (``jit(**NOREF)``): no reference counting. Numba
#: (NRT) increments and decrements, atomically, the reference count of every array a function
#: binds: each array argument (a tuple of arrays counts each one: the network's NetArrays hold
#: 12) and each view it takes, when its optimiser cannot pair the two up (it cannot across
#: loops). Without them (and with ``ensemble._force`` a call) a step of (256, 16, 8, 1) went from
#: 5.6-5.9 to 4.25-4.45 us on an AVX-512 Xeon (docs/performance.md). Such helpers only read and
#: write arrays that their caller holds and take views of them; they never allocate or return an
#: array (Numba refuses to compile one that does), so BLAS calls (``np.dot``) stay in counted
#: helpers.
NOREF = dict(_nrt=False)

#: Options for the parallel ensemble kernels (``prange`` over replicas).
PARALLEL = dict(SERIAL, parallel=True)


def jit(fn=None, **extra):
    """``numba.njit`` with the project's serial options (plus ``extra``)."""
    opts = dict(SERIAL, **extra)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def pjit(fn=None, **extra):
    """``numba.njit`` with the project's parallel options (plus ``extra``)."""
    opts = dict(PARALLEL, **extra)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


# --------------------------------------------------------------------------- 512-bit vectors
from numba import types as _types  # noqa: E402
from numba.extending import intrinsic as _intrinsic  # noqa: E402
from numba.extending import overload as _overload  # noqa: E402

def _edits_caller(stub):
    """Decorator: ``edit(function)`` is applied to the LLVM function of every kernel that calls
    ``stub()`` (an intrinsic that edits ``builder.function``, reached through an overload of the
    stub with ``inline="always"``, so that it lands on the caller's function and not on a helper
    of its own). The stub stays a no-op in plain Python."""
    def register(edit):
        @_intrinsic
        def _apply(typingctx):
            def codegen(context, builder, signature, args):
                edit(builder.function)
                return context.get_dummy_value()
            return _types.void(), codegen

        @_overload(stub, inline="always")
        def _ol():
            def impl():
                _apply()
            return impl
        return edit
    return register


#: LLVM function attribute that lets the vectorisers use 512-bit registers in one function.
_WIDE = '"prefer-vector-width"="512"'


def wide_vectors():
    """Call first thing in a kernel: its loops may be vectorised with 512-bit registers.

    LLVM prefers 256-bit vectors on AVX-512 CPUs (the ``prefer-256-bit`` tuning of the CPU
    model), which halves the throughput of the integer-heavy Philox and Box-Muller loops
    (+35 % Gaussians/s with 512 bits on a Sapphire Rapids core). ``NUMBA_CPU_FEATURES=...,
    -prefer-256-bit`` would change that for the whole process (every Numba function of every
    library); this sets, on the function being compiled only, the attribute that clang's
    ``-mprefer-vector-width=512`` sets. It changes nothing on CPUs without AVX-512, and it is a
    no-op when the kernel runs as plain Python (``py_func``)."""


@_edits_caller(wide_vectors)
def _wide(function):
    # llvmlite's attribute set only accepts flag attributes: add the key-value one to the
    # underlying set (it is printed verbatim into the function's attribute group). Should a
    # later llvmlite refuse, the kernel is simply compiled with LLVM's default width.
    try:
        set.add(function.attributes, _WIDE)
    except Exception:  # pragma: no cover
        pass


# --------------------------------------------------------------------------- disjoint arrays
def disjoint_arrays():
    """Call first thing in a kernel whose array arguments never overlap in memory (distinct
    buffers, or disjoint slices of one): the data pointers of its float64/float32 array
    arguments are marked ``noalias`` (what C's ``restrict`` says).

    Without it, every vectorised loop that stores into one array and loads from others is
    preceded by run-time overlap checks, one per pair of distinct array slices it touches: a
    rank-4 update of four rows of C from four rows of B checks sixteen pairs on every entry. On
    rows of 32 elements that cost as much as the arithmetic (the auto-vectorised rank-4 loops
    that preceded ``products._mm_nn``, 8 x 32 x 32: 0.50 -> 0.34 us). Caller's contract: no two
    array arguments share an element that one of them writes; overlapping arguments give wrong
    results, not an error. A no-op in plain Python (``py_func``)."""


def _data_pointers(function):
    """The LLVM arguments of ``function`` that are array data pointers: Numba passes an array
    argument as its flattened fields (meminfo, parent, nitems, itemsize, data, shape, strides),
    named ``arg.<name>.4`` for the data; only float64/float32 pointers are taken."""
    return [a for a in function.args
            if a.name.startswith("arg.") and a.name.endswith(".4")
            and str(a.type) in ("double*", "float*")]


@_edits_caller(disjoint_arrays)
def _noalias(function):
    for a in _data_pointers(function):
        a.add_attribute("noalias")
