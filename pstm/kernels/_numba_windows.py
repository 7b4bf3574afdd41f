"""Window loads: the nearest-sample read of 16 output samples from registers, not a gather.

The plain kernel reads one resampled trace sample per contribution, at an index computed
from the traveltime: with LLVM's vectorised loop that is a gathered load (``vgatherdps``),
and the gathers were two thirds of the plain call (docs/benchmarks.md: a contiguous load in
their place took 0.022 s of 0.064 s; a gather costs 0.33 ns per element whatever the
indices). But the indices of 16 consecutive output samples of one (trace, column) pair lie
close together: the DSR time grows at most as fast as the output time (dt/dtau <= 1), so
with the traces oversampled 8x and output at the trace's sample interval, 16 samples span
at most 121 resampled samples. :func:`add_read16` loads that stretch of the trace as
windows of 32 samples (two 16-lane loads each) and picks each lane's sample with a
two-register permute (AVX-512 ``vpermt2ps``, ``llvm.x86.avx512.vpermi2var.ps.512``), one
per window, selecting per lane the window its index falls in. The result is the same
sample the gather reads, so the image is bit for bit the same (tested).

When the 16 indices span ``WINDOWS_MAX`` windows or more (output sampled more coarsely
than the traces, e.g. 4 ms output from 1 ms traces) or are not in increasing order (an RMS
velocity that grows faster than the DSR time with output time), the same call falls back
to a gather (16 scalar loads: no LLVM intrinsic whose name depends on LLVM's version), so it
is correct for any indices. On a target without AVX-512 the intrinsic compiles to that
gather alone; the kernels do not call it there and keep their fused loops
(:func:`window_loads_available`, ``WINDOW_LOADS`` in :mod:`pstm.kernels._numba`).
:func:`add_indexed16` reads the same way from given indices: the anti-aliased kernel's
second pass, whose indices point into a trace's rows of anti-aliasing levels (a group of
16 that changes level jumps by a row and takes the scalar loads).
The arrays must be C-contiguous (typing refuses others): the windows, the positions and
the 16 output samples are read and written as contiguous vectors.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.registry import cpu_target
from numba.extending import intrinsic

#: Output samples per call: one AVX-512 vector of float32.
WINDOW_LANES = 16
#: Samples in one window: the two 16-lane registers a ``vpermt2ps`` selects from.
WINDOW_SAMPLES = 32
#: Most windows per call; wider index spans are read one lane at a time instead. 4 windows
#: cover the 121 resampled samples that 16 output samples can span with 8x oversampling at
#: the trace's own sample interval; more permutes per call would cost about what a gather
#: does.
WINDOWS_MAX = 4
#: float32 elements that may be loaded past the last index a call reads (its last window's
#: end): the buffers it reads need this much allocated slack after their last row.
WINDOW_SLACK = WINDOW_SAMPLES

_F16 = ir.VectorType(ir.FloatType(), WINDOW_LANES)
_I16 = ir.VectorType(ir.IntType(32), WINDOW_LANES)
_B16 = ir.VectorType(ir.IntType(1), WINDOW_LANES)
_I32 = ir.IntType(32)


def _has_avx512f(codegen: Any) -> bool:
    """Whether a numba CPU codegen targets AVX-512F (its features string, a private
    attribute; without it: False, the scalar reads)."""
    features = getattr(codegen, "_tm_features", "")
    return isinstance(features, str) and "+avx512f" in features.split(",")


def window_loads_available() -> bool:
    """Whether numba's CPU target (the host, or ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``
    where set, e.g. for caches shared across a cluster) has AVX-512F, so
    :func:`add_read16` compiles to permutes. numba keeps the target's features in a
    private attribute; without it this answers False (the fused gather loop: correct, only
    slower)."""
    return _has_avx512f(cpu_target.target_context.codegen())


def _splat(builder: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(
        one, ir.Constant(vector, ir.Undefined), ir.Constant(_I16, [0] * WINDOW_LANES)
    )


def _pointer(context: Any, builder: ir.IRBuilder, aryty: types.Array, ary: Any, inds: list) -> Any:
    array = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer2(
        context, builder, data=array.data, shape=cgutils.unpack_tuple(builder, array.shape),
        strides=cgutils.unpack_tuple(builder, array.strides), layout=aryty.layout, inds=inds,
    )  # fmt: skip


def _gather(builder: ir.IRBuilder, row: ir.Value, idx: ir.Value) -> ir.Value:
    """The 16 floats row[idx], one scalar load per lane."""
    values = ir.Constant(_F16, ir.Undefined)
    for j in range(WINDOW_LANES):
        lane = ir.Constant(_I32, j)
        at = builder.sext(builder.extract_element(idx, lane), ir.IntType(64))
        values = builder.insert_element(values, builder.load(builder.gep(row, [at]), align=4), lane)
    return values


def _windows(builder: ir.IRBuilder, start: ir.Value, rel: ir.Value, span: ir.Value) -> ir.Value:
    """Lane j: start[rel[j]], 0 <= rel[j] <= span < WINDOWS_MAX * WINDOW_SAMPLES, from windows
    of WINDOW_SAMPLES loaded at start, each permuted into the lanes whose index it holds."""
    permute = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(_F16, [_F16, _I16, _F16]),
        "llvm.x86.avx512.vpermi2var.ps.512",
    )
    fvec = _F16.as_pointer()
    result = cgutils.alloca_once(builder, _F16)

    def window(w: int) -> ir.Value:
        at = [ir.Constant(ir.IntType(64), w * WINDOW_SAMPLES + h * WINDOW_LANES) for h in (0, 1)]
        lo, hi = (builder.load(builder.bitcast(builder.gep(start, [a]), fvec), align=4) for a in at)
        return builder.call(permute, [lo, rel, hi])  # uses the index's low 5 bits

    builder.store(window(0), result)
    for w in range(1, WINDOWS_MAX):
        first = w * WINDOW_SAMPLES
        with builder.if_then(builder.icmp_signed(">=", span, ir.Constant(_I32, first))):
            mine = builder.icmp_signed(">=", rel, ir.Constant(_I16, [first] * WINDOW_LANES))
            builder.store(builder.select(mine, window(w), builder.load(result)), result)
    return builder.load(result)


def _read16(context: Any, builder: ir.IRBuilder, row: ir.Value, idx: ir.Value) -> ir.Value:
    """The 16 floats row[idx]: from windows where the target has AVX-512 and the indices are
    increasing and span fewer than WINDOWS_MAX windows, else lane by lane."""
    if not _has_avx512f(context.codegen()):
        return _gather(builder, row, idx)
    values = cgutils.alloca_once(builder, _F16)
    first = builder.extract_element(idx, ir.Constant(_I32, 0))
    span = builder.sub(builder.extract_element(idx, ir.Constant(_I32, WINDOW_LANES - 1)), first)
    rel = builder.sub(idx, _splat(builder, first, _I16))
    # increasing indices lie in [first, last]: one unsigned compare checks both ends
    inside = builder.icmp_unsigned("<=", rel, _splat(builder, span, _I16))
    all_inside = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.IntType(1), [_B16]), "llvm.vector.reduce.and.v16i1"
    )
    fits = builder.icmp_unsigned("<", span, ir.Constant(_I32, WINDOWS_MAX * WINDOW_SAMPLES))
    with builder.if_else(builder.and_(builder.call(all_inside, [inside]), fits), likely=True) as (
        windows,
        gather,
    ):
        with windows:
            start = builder.gep(row, [builder.sext(first, ir.IntType(64))])
            builder.store(_windows(builder, start, rel, span), values)
        with gather:
            builder.store(_gather(builder, row, idx), values)
    return builder.load(values)


def _c_arrays(*arrays: tuple[Any, int, Any]) -> bool:
    """Each (type, ndim, dtype): a C-contiguous array of that rank and dtype."""
    return all(
        isinstance(a, types.Array) and a.ndim == n and a.dtype == dtype and a.layout == "C"
        for a, n, dtype in arrays
    )


def _intp_args(context: Any, builder: ir.IRBuilder, signature: Any, args: list) -> list:
    """The call's arguments, integers cast to intp (array indices)."""
    return [
        context.cast(builder, a, t, types.intp) if isinstance(t, types.Integer) else a
        for a, t in zip(args, signature.args, strict=True)
    ]


def _vector_at(context: Any, builder: ir.IRBuilder, aryty: Any, ary: Any, inds: list) -> Any:
    return builder.bitcast(_pointer(context, builder, aryty, ary, inds), _F16.as_pointer())


def _add_weighted(builder: ir.IRBuilder, out: ir.Value, value: ir.Value, weight: ir.Value) -> None:
    """out[0:16] += value * weight (the kernels' float32 product, then the sum)."""
    added = builder.fadd(builder.load(out, align=4), builder.fmul(value, weight))
    builder.store(added, out, align=4)


def _add_read(context: Any, builder: ir.IRBuilder, signature: Any, args: list) -> Any:
    """gathers[g, c, it:it+16] += value * weight, value the sample read at the clamped
    positions[i, it:it+16]: the nearest (``lerp`` 0) or linear between the two around it
    (``lerp`` the lerp factor, 1), the kernels' float32 operations in their order."""
    ty = signature.args
    ga, gi, ci, iti, ra, ki, pa, ii, wv, sv, lv = _intp_args(context, builder, signature, args)
    out = _vector_at(context, builder, ty[0], ga, [gi, ci, iti])
    row = _pointer(context, builder, ty[4], ra, [ki, context.get_constant(types.intp, 0)])
    if isinstance(ty[8], types.Array):
        weight = builder.load(_vector_at(context, builder, ty[8], wv, [ii, iti]), align=4)
    else:
        weight = _splat(builder, wv, _F16)
    pos = builder.load(_vector_at(context, builder, ty[6], pa, [ii, iti]), align=4)
    zero = ir.Constant(_F16, [0.0] * WINDOW_LANES)
    pos = builder.select(builder.fcmp_ordered(">", pos, zero), pos, zero)
    top = _splat(builder, sv, _F16)
    pos = builder.select(builder.fcmp_ordered("<", pos, top), pos, top)
    linear = builder.fcmp_ordered("!=", lv, ir.Constant(ir.FloatType(), 0.0))
    half = ir.Constant(ir.FloatType(), 0.5)
    offset = _splat(builder, builder.select(linear, ir.Constant(ir.FloatType(), 0.0), half), _F16)
    idx = builder.fptosi(builder.fadd(pos, offset), _I16)
    value = cgutils.alloca_once(builder, _F16)
    a = _read16(context, builder, row, idx)
    with builder.if_else(linear) as (lerped, nearest):
        with lerped:  # a + (p - i) lerp (b - a), as the kernels' linear read
            b = _read16(
                context, builder, row, builder.add(idx, ir.Constant(_I16, [1] * WINDOW_LANES))
            )
            frac = builder.fmul(
                builder.fsub(pos, builder.sitofp(idx, _F16)), _splat(builder, lv, _F16)
            )
            builder.store(builder.fadd(a, builder.fmul(frac, builder.fsub(b, a))), value)
        with nearest:
            builder.store(a, value)
    _add_weighted(builder, out, builder.load(value), weight)
    return context.get_dummy_value()


@intrinsic
def add_read16(
    typingctx: Any,
    gathers: Any,
    g: Any,
    c: Any,
    it: Any,
    rows: Any,
    k: Any,
    positions: Any,
    i: Any,
    w: Any,
    smax: Any,
    lerp: Any,
) -> tuple[object, object] | None:
    """``gathers[g, c, it + j] += value_j * w`` for j = 0..15, with ``p = min(max(
    positions[i, it + j], 0), smax)`` and, where ``lerp`` is 0, the nearest sample
    ``value_j = rows[k, int(p + 0.5)]`` (the plain kernels' read), else the linear read
    ``value_j = a + (p - q) lerp (rows[k, q + 1] - a)``, ``q = int(p)``, ``a = rows[k, q]``
    (the general kernel's, lerp = 1): their float32 operations in their order, so the
    same sums. The clamp changes nothing where the caller proved the positions inside the
    trace, keeps an interpolated position that strays by its allowed error on the trace's
    end sample, as the fused loops do, and reads a checked sample outside the trace (weight
    0) at the trace's end. ``w`` is one weight (a float32), or a 2D
    float32 array of weights per sample, ``w[i, it + j]`` (the general kernel: weights,
    tapers and validity already multiplied in). The caller guarantees it + 16 <= the
    row's end, smax + 2 <= the length of ``rows``' rows (the zero sample past a trace's
    end), and ``WINDOW_SLACK`` floats allocated past the end of ``rows`` (a window loads
    up to 31 samples beyond the last index it reads; those lanes are never selected)."""
    f32 = types.float32
    if not _c_arrays((gathers, 3, f32), (rows, 2, f32), (positions, 2, f32)):
        return None
    if isinstance(w, types.Array) and not _c_arrays((w, 2, f32)):
        return None
    weight = w if isinstance(w, types.Array) else f32
    sig = types.void(gathers, g, c, it, rows, k, positions, i, weight, f32, f32)
    return sig, _add_read


def _add_indexed(context: Any, builder: ir.IRBuilder, signature: Any, args: list) -> Any:
    """gathers[g, c, it:it+16] += rows[k, indices[i, it:it+16]] * weights[i, it:it+16]."""
    ty = signature.args
    ga, gi, ci, iti, ra, ki, ia, ii, wa = _intp_args(context, builder, signature, args)
    out = _vector_at(context, builder, ty[0], ga, [gi, ci, iti])
    row = _pointer(context, builder, ty[4], ra, [ki, context.get_constant(types.intp, 0)])
    at = _pointer(context, builder, ty[6], ia, [ii, iti])
    idx = builder.load(builder.bitcast(at, _I16.as_pointer()), align=4)
    weight = builder.load(_vector_at(context, builder, ty[8], wa, [ii, iti]), align=4)
    _add_weighted(builder, out, _read16(context, builder, row, idx), weight)
    return context.get_dummy_value()


@intrinsic
def add_indexed16(
    typingctx: Any,
    gathers: Any,
    g: Any,
    c: Any,
    it: Any,
    rows: Any,
    k: Any,
    indices: Any,
    i: Any,
    weights: Any,
) -> tuple[object, object] | None:
    """``gathers[g, c, it + j] += rows[k, indices[i, it + j]] * weights[i, it + j]`` for
    j = 0..15: the anti-aliased kernel's second pass (AA_WINDOWS in
    :mod:`pstm.kernels._numba`), whose indices point into a trace's row of anti-aliasing
    levels (level l at l (M + 1)). Within one level the indices of consecutive output samples
    increase as slowly as the plain kernel's positions, so :func:`_read16` reads them from
    windows; a group of 16 that changes level (its indices jump by a whole row) or spans too
    much falls back to the scalar loads. The same float32 product and sum as the loop
    ``gathers[...] += rows[k, index] * weight``. The caller guarantees indices below
    2^31 and inside ``rows[k]``, it + 16 <= the rows' end, and ``WINDOW_SLACK`` floats
    allocated past the end of ``rows``."""
    f32, u32 = types.float32, types.uint32
    if not _c_arrays((gathers, 3, f32), (rows, 2, f32), (indices, 2, u32), (weights, 2, f32)):
        return None
    sig = types.void(gathers, g, c, it, rows, k, indices, i, weights)
    return sig, _add_indexed


__all__ = [
    "WINDOW_LANES",
    "WINDOW_SLACK",
    "add_indexed16",
    "add_read16",
    "window_loads_available",
]
