"""Numba CPU backend: the reference operator (:mod:`pstm.kernels._numpy`), compiled.

Parallel contract: per block of traces, first ``prange`` over the block's traces
(:func:`pstm.kernels._numba_traces.prepare_block`: each iteration writes only its trace's
rows of the block buffers), then ``prange`` over chunks of output columns (bins): each
iteration owns its columns ``gathers[:, c, :]`` and ``fold[:, c, :]``, and row ``i`` (its
own iteration index) of the per-task arrays: the contribution counts and the work rows
(AA_TWO_PASSES; WINDOW_LOADS' positions and weights; the interpolated traveltimes'
positions), so no two threads write the
same memory and no atomics are needed. TASK_ROWS: those rows are indexed by the
iteration ``i``, which numba hands to each thread as one contiguous run, not by the column
chunk it maps to (CYCLIC_CHUNKS interleaves the chunks of the threads), and the counts
take a cache line per row (COUNT_ROW): rows of the two threads side by side in one cache
line made the interpolated-traveltime kernel 1.5x slower (false sharing;
docs/benchmarks.md). Nothing is allocated inside the parallel loops (the block buffers and
work rows are allocated once per call, in :func:`run_prepared`). CYCLIC_CHUNKS: numba
splits a ``prange`` into one contiguous run of iterations per thread; the kernels map
those to column chunks cyclically (thread t migrates chunks t, t + T, t + 2T, ...),
because the traces of one block come from a small area of a sorted survey and reach only
part of a tile: contiguous halves left one thread idle (a 3D tile job of 57,591 traces:
3.97 s contiguous, 3.40 s cyclic, 6.4 s on one thread; docs/benchmarks.md).

Speed (see docs/benchmarks.md): TRACE_MAJOR order: a parallel task owns a chunk of
``COLUMN_CHUNK`` columns and visits every trace once, migrating it into all the chunk's
columns in turn: the trace's resampled samples (gathered, scattered over many cache lines)
stay in L1 while its columns (read and written contiguously) stream from L2. TRACE_BLOCKS:
the traces are taken in blocks of about ``TRACE_BLOCK_BYTES``: first the block's traces
are resampled (and their anti-aliasing levels built) into buffers of one block
(:func:`pstm.kernels._numba_traces.prepare_block`, parallel over the block's traces),
then one parallel region over every column chunk migrates the block, which the chunks
find in cache: the resampled traces never go to main memory, and no chunk reads a trace
from there again. LEVEL0_IN_PLACE: with anti-aliasing a trace is resampled straight into
its level 0 (no copy of it). LEVEL_RANGES: its other levels, and the double running sums
they come from, are built only on the samples the call can read from it, a range bounded
from the output columns' bounding box and the extremes of the time and slowness tables
(:func:`read_ranges`): the same image up to the float64 rounding of the shorter sums
(rarely one float32 unit in the last place of a level, no less accurate); the 2D
benchmark line's build 8.3-8.4 -> 7.6-7.7 ms (the whole call no faster there), and with
records twice as long as its output window needs 17.7 -> 10.8 ms ("everything" 4.5 %
faster; docs/benchmarks.md). Per (trace, column) pair the aperture limits become an index range
(samples outside are never visited, except the up to 15 before it that the features
kernel's whole vectors compute with validity 0, ZONE_VECTORS), found by a search that
gallops out from the neighbouring column's answer (APERTURE_HINT: with an angle limit or
a time-variant aperture the bisections' mispredicted branches were 3.5 % of
"everything"; 2D 0.0771-0.0794 -> 0.0723-0.0738 s, 3D 0.750-0.766 -> 0.730-0.736 s;
plain unchanged, its benchmark's aperture needs no search; docs/benchmarks.md); the
inner loop over output time has no data-dependent branch (traces carry a zero sample past
their end, positions are clamped, the validity is a 0/1 factor, unused features take
neutral tables), so LLVM vectorises it with gathers.
NEAR_HINT: the plain kernels' searches for a pair's proven-inside and past-the-end samples
start from the last column's answers for the same trace (a few samples away), galloping,
instead of bisecting the whole trace: on short records, where far traces end inside the
output window, the searches were about a fifth of a tile's kernel time (docs/benchmarks.md).
WINDOW_LOADS (AVX-512): the plain kernels' proven-inside samples are read without gathers,
from windows of the trace permuted in registers (:mod:`pstm.kernels._numba_windows`):
the gathers were two thirds of the plain call. CHECKED_WINDOWS: so are the checked ones
near a trace's end (a weight per sample, 0 past the end; the reads stop at the last
sample inside), which far traces of short records reach (docs/benchmarks.md, curve), and
(AA_WINDOWS) the anti-aliased kernel's reads from its level rows, by index.
COUNT32: each time loop counts its contributions in an int32 (a pair has fewer than 2^31
samples): LLVM sizes its vectors by the widest value a loop loads, stores or reduces, and
an int64 count (numba's int32 + int32 is int64, hence the ``np.int32(n + ...)``) halved
them to 8 lanes of AVX-512 (``everything`` on the 2D line: 0.176 -> 0.145 s;
docs/benchmarks.md). Floating-point contraction is off (``fastmath`` without
``contract``), so the sample positions equal the reference's bit for bit.

Three kernels. Every time loop's switches are compile-time constants (LLVM stops
vectorising a loop that tests a run-time switch): a run-time flag selects between whole
loops, each inlined with constant switches. :func:`_migrate_plain` (nearest sample,
weight 1: the default; a kernel of its own: inlining a second, different time loop into
it stops LLVM from vectorising its loop), :func:`_migrate_plain_interpolated` (the same
with ``traveltime: interpolated``) and :func:`_migrate_features` (weights, stretch mute,
linear interpolation, tapers, anti-aliasing: its three loops, anti-aliased / nearest /
linear, run at the speed they ran as separate kernels).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic, overload
from numpy.typing import NDArray

from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, column_views
from pstm.kernels._numba_traces import NUMBA_IN_KERNEL_OPS, prepare_block
from pstm.kernels._numba_windows import (
    WINDOW_LANES,
    WINDOW_SLACK,
    add_indexed16,
    add_read16,
    window_loads_available,
)
from pstm.kernels.operator import (
    NO_LIMIT,
    SINC_HALF_TAPS,
    TINY_Q,
    Prepared,
    interpolation_bound_constants,
    prepare,
    sinc_phases,
)

#: The trace preparation this backend uses (see :func:`pstm.kernels.get_trace_ops`).
TRACE_OPS = NUMBA_IN_KERNEL_OPS
#: Most columns one parallel task migrates together (trace-major, see the module
#: docstring): a trace is read once per chunk while it is in L1 and the chunk's image
#: columns stay in L2. 8 measured best (docs/benchmarks.md). The chunks of a call are a
#: multiple of the threads in number and as equal as whole columns allow (200 columns on
#: 2 threads: 26 chunks of 7-8 columns, not 25 of 8, one thread doing 13 of them).
COLUMN_CHUNK = 8
#: Smallest number of chunks per thread (load balance on small tiles).
CHUNKS_PER_THREAD = 4
#: int64 counts per row of the per-task contribution counts: one 64-byte cache line, so no
#: two threads write the same line (TASK_ROWS in the module docstring).
COUNT_ROW = 8
#: Bytes of prepared trace rows (the resampled trace, or its anti-aliasing levels, of which
#: the trace is level 0: LEVEL0_IN_PLACE) per block of
#: traces (see TRACE_BLOCKS in the module docstring). About one core's L2; blocks measured
#: 1.3x faster than none on the plain and the anti-aliased kernels, flat from 0.2 to
#: 1.5 MB (docs/benchmarks.md). A block has a multiple of the threads in traces, at least
#: one per thread (its preparation runs in parallel over its traces), whatever their size.
TRACE_BLOCK_BYTES = 1 << 20
#: With anti-aliasing a trace's rows are all its levels (5 x 22 KB on the benchmark line,
#: more than L1, read again by every column chunk): its blocks hold this many times
#: TRACE_BLOCK_BYTES and its chunks AA_COLUMN_CHUNK columns, so each trace's levels are
#: read by half as many chunks. 2D everything, interleaved: 0.0815 -> 0.0796 s, in a slow
#: phase of the guest 0.115 -> 0.102 s; 3D (6,000 traces, 32 x 32 x 300) 0.755 -> 0.743 s
#: (docs/benchmarks.md).
AA_BLOCK_SCALE = 2
#: Most columns per parallel task with anti-aliasing (see AA_BLOCK_SCALE).
AA_COLUMN_CHUNK = 16
#: Mask of a sample index known to be >= 0: ``uint32(i) & NONNEG31`` has 31 significant bits,
#: so LLVM gathers with 32-bit indices (16 lanes of AVX-512) instead of 64-bit ones (8 lanes)
#: and needs no negative-index wrap-around.
NONNEG31 = np.uint32(0x7FFFFFFF)
#: WINDOW_LOADS: the plain kernel's samples (proven inside; checked ones: CHECKED_WINDOWS)
#: read 16 at a time from windows of the trace in registers
#: (:func:`pstm.kernels._numba_windows.add_read16`) instead of
#: gathers, where numba's CPU target has AVX-512 (the same image bit for bit: tested):
#: their positions first into the task's work row, then the windows. 2D benchmark line:
#: plain 0.062-0.065 -> 0.042-0.043 s (docs/benchmarks.md). Read by :func:`run_prepared`
#: and passed to the kernels; tests switch it to check both paths. (The interpolated
#: traveltimes' second pass reads through the same call: it already has its positions in
#: a row.)
WINDOW_LOADS = window_loads_available()
#: ZONE_VECTORS: the features kernel's two loops per pair run whole vectors of this many
#: samples (AVX-512: 16 float32 lanes; :func:`_features_pair`), so they have no scalar
#: remainders, the loop inside both tapers whole pairs of them (PAIRED_VECTORS)
#: (docs/benchmarks.md).
ZONE_LANES = 16
#: The features kernel's time loops (:func:`_features_loop`): inside both tapers, in the
#: taper zone with only the angle taper varying (APERTURE_TAPER_FREE: the pair's midpoint
#: is at least the aperture taper's width inside the smallest aperture, so that taper is 1
#: at every sample), and with both.
TAPER_NONE, TAPER_ANGLE, TAPER_BOTH = 0, 1, 2
#: fastmath flags: no NaN/sign-of-zero care, but no contraction or reassociation, so the
#: float32 operations round exactly like the numpy reference's.
FASTMATH = {"nnan", "nsz"}


@intrinsic
def _float32_bits(typingctx: object, x: types.Type) -> tuple[object, object] | None:
    """The bits of a float32 as an int32 (a bitcast: free, and LLVM vectorises it)."""
    if x != types.float32:
        return None

    def codegen(context: object, builder: object, signature: object, args: list) -> object:
        return builder.bitcast(args[0], context.get_value_type(types.int32))  # type: ignore[attr-defined]

    return types.int32(types.float32), codegen


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _first_at_least(values: NDArray[np.float32], row: int, threshold: np.float32, hint: int) -> int:
    """First index i with values[row, i] >= threshold in a nondecreasing row (its length if
    none). Indexes the 2D array (no row view), which keeps LLVM's alias analysis intact.
    APERTURE_HINT: the search gallops out from ``hint`` (the answer for the same trace at
    the neighbouring column, a few samples away; < 0: none), clamped to 1..n-2, before it
    bisects, as NEAR_HINT does; the same index from any hint."""
    n = values.shape[1]
    if not values[row, n - 1] >= threshold:  # none (or NaN): e.g. outside a constant aperture
        return n
    if values[row, 0] >= threshold:  # all: e.g. a pair inside a constant aperture
        return 0
    lo, hi = 1, n - 1  # values[row, 0] < threshold <= values[row, n - 1]
    if hint >= 0 and n > 2:  # narrow lo..hi around the hint (lo < hint < hi)
        hint = min(max(hint, 1), n - 2)
        step = 1
        if values[row, hint] >= threshold:
            hi = hint
            while hint - step > lo:
                if values[row, hint - step] >= threshold:
                    hi = hint - step
                    step *= 2
                else:
                    lo = hint - step + 1
                    break
        else:
            lo = hint + 1
            while hint + step < hi:
                if values[row, hint + step] >= threshold:
                    hi = hint + step
                    break
                lo = hint + step + 1
                step *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if values[row, mid] >= threshold:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _taper01(z: np.float32) -> np.float32:
    """The cosine taper 0.5 - 0.5 cos(pi z) = sin^2(pi z / 2) on z clamped to [0, 1], by a
    degree-11 Taylor polynomial (error < 5e-7 in float32; vectorisable, unlike libm). Identical
    to :func:`pstm.kernels.operator.taper01`."""
    zc = min(max(z, np.float32(0.0)), np.float32(1.0))
    x = zc * np.float32(1.5707963267948966)
    x2 = x * x
    p = np.float32(-2.505210838544172e-08)
    p = np.float32(2.7557319223985893e-06) + x2 * p
    p = np.float32(-0.0001984126984126984) + x2 * p
    p = np.float32(0.008333333333333333) + x2 * p
    p = np.float32(-0.16666666666666666) + x2 * p
    p = np.float32(1.0) + x2 * p
    sine = x * p
    return np.float32(1.0) if zc >= np.float32(1.0) else min(sine * sine, np.float32(1.0))


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _position(
    q: np.float32,
    v2: np.float32,
    ds2: np.float32,
    dr2: np.float32,
    t0_in: np.float32,
    inv_h: np.float32,
) -> np.float32:
    """Resampled sample position of the DSR time sqrt(q + ds2 v2) + sqrt(q + dr2 v2)
    (q = (tau/2)^2, v2 = 1/v^2), the reference's float32 operations in their order."""
    return (np.sqrt(q + ds2 * v2) + np.sqrt(q + dr2 * v2) - t0_in) * inv_h


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _leg_extent(s: np.float32, lo: np.float32, hi: np.float32) -> tuple[np.float32, np.float32]:
    """Smallest and largest |s - x| over lo <= x <= hi, in float32: a bound of the kernels'
    fl(s - x) for every column x in it (rounding is monotone)."""
    near = np.float32(0.0)
    if s < lo:
        near = lo - s
    elif s > hi:
        near = s - hi
    return near, max(abs(s - lo), abs(s - hi))


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def read_ranges(
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    box: NDArray[np.float32],
    tables: NDArray[np.float32],
    m: int,
    out: NDArray[np.int64],
) -> None:
    """LEVEL_RANGES: out[k] = (n0, n1), resampled samples n0..n1-1 containing every sample
    the kernels can read from trace k: each position they compute (:func:`_position`, of
    every output sample of every column, inside a pair's aperture or not) clamped to
    0..M - 1 and rounded, lies between :func:`_position` taken with the smallest and with
    the largest q (``th2``), s2 (``sl2``) and squared leg lengths over the output columns'
    bounding box (float32 rounding is monotone), one sample of margin each side. ``box`` = (x min, x max, y min,
    y max) of the columns, ``tables`` = (th2 min, th2 max, sl2 min, sl2 max, t0, 1 / h,
    M - 1). Parallel over traces; each writes its own row."""
    q_lo, q_hi, s2_lo, s2_hi = tables[0], tables[1], tables[2], tables[3]
    t0_in, inv_h, smax = tables[4], tables[5], tables[6]
    zero, half = np.float32(0.0), np.float32(0.5)
    for k in prange(sx.shape[0]):
        sxn, sxf = _leg_extent(sx[k], box[0], box[1])
        syn, syf = _leg_extent(sy[k], box[2], box[3])
        rxn, rxf = _leg_extent(rx[k], box[0], box[1])
        ryn, ryf = _leg_extent(ry[k], box[2], box[3])
        lo = _position(q_lo, s2_lo, sxn * sxn + syn * syn, rxn * rxn + ryn * ryn, t0_in, inv_h)
        hi = _position(q_hi, s2_hi, sxf * sxf + syf * syf, rxf * rxf + ryf * ryf, t0_in, inv_h)
        first = int(min(max(lo, zero), smax))  # truncation: the rounded index is >= it
        last = int(min(max(hi, zero), smax) + half)  # the rounded index of the largest
        out[k, 0] = max(first - 1, 0)
        out[k, 1] = min(last + 2, m)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _accumulate(
    data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    g: int,
    c: int,
    it: int,
    s: np.float32,
    sc: np.float32,
    smax: np.float32,
    w: np.float32,
    checked: bool,
) -> np.int32:
    """One sample of the plain kernels: add w times the resampled sample nearest to ``sc``
    (the position ``s``, clamped where it may leave the trace); ``checked`` (a constant at
    each call site) also tests s against the trace's ends and counts the fold, else the
    caller proved the sample inside and counts it with :func:`_mark_proven`."""
    index = np.uint32(np.int32(sc + np.float32(0.5))) & NONNEG31
    if checked:
        ok = (s >= np.float32(0.0)) & (s <= smax)
        gathers[g, c, it] += data[k, index] * w * np.float32(ok)
        fold[g, c, it] += np.int32(ok)
        return np.int32(ok)
    gathers[g, c, it] += data[k, index] * w
    return np.int32(0)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _mark_proven(starts: NDArray[np.int32], g: int, c: int, it0: int, it1: int) -> int:
    """Fold += 1 on the proven-inside samples it0..it1-1: +1 in ``starts[g, c, it0]``, -1
    in ``starts[g, c, it1]`` (summed by :func:`_add_fold_starts`); returns their count."""
    starts[g, c, it0] += 1
    if it1 < starts.shape[2]:
        starts[g, c, it1] -= 1
    return it1 - it0


def _weight_at(w: object, row: int, it: int) -> np.float32:
    """A read's weight: ``w`` itself (one per pair) or ``w[row, it]`` (one per sample)."""
    raise NotImplementedError("compiled only (see its overload)")


@overload(_weight_at, inline="always")
def _weight_at_overload(w: Any, row: Any, it: Any) -> Any:
    # (numba requires the same parameters, annotations included, in the implementations)
    if isinstance(w, types.Array):

        def per_sample(w: Any, row: Any, it: Any) -> Any:
            return w[row, it]

        return per_sample

    def per_pair(w: Any, row: Any, it: Any) -> Any:
        return w

    return per_pair


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _windowed_reads(
    gathers: NDArray[np.float32],
    g: int,
    c: int,
    data: NDArray[np.float32],
    k: int,
    pos: NDArray[np.float32],
    row: int,
    w: np.float32 | NDArray[np.float32],
    smax: np.float32,
    lerp: np.float32,
    it0: int,
    it1: int,
) -> None:
    """WINDOW_LOADS: ``gathers[g, c, it] += value * weight`` for it0 <= it < it1, the value
    read at ``pos[row, it]`` (clamped to the trace): the nearest sample (``lerp`` 0) or
    linear between the two around it (``lerp`` 1), 16 samples per :func:`add_read16`, the
    rest one by one with the same float32 operations. ``w``: one weight, or one per sample
    in ``w[row]``."""
    it = it0
    while it + WINDOW_LANES <= it1:
        add_read16(gathers, g, c, it, data, k, pos, row, w, smax, lerp)  # type: ignore[call-arg]
        it += WINDOW_LANES
    round_off = np.float32(0.5) if lerp == np.float32(0.0) else np.float32(0.0)
    for j in range(it, it1):
        p = min(max(pos[row, j], np.float32(0.0)), smax)
        i = np.uint32(np.int32(p + round_off)) & NONNEG31
        value = data[k, i]
        if lerp != np.float32(0.0):
            value = value + (p - np.float32(i)) * lerp * (data[k, i + np.uint32(1)] - value)
        gathers[g, c, j] += value * _weight_at(w, row, j)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _plain_nearest(
    data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    starts: NDArray[np.int32],
    g: int,
    c: int,
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    ds2: np.float32,
    dr2: np.float32,
    t0_in: np.float32,
    inv_h: np.float32,
    smax: np.float32,
    w: np.float32,
    checked: bool,
    it0: int,
    it1: int,
    windows: bool,
    work: NDArray[np.float32],
    work_w: NDArray[np.float32],
    i: int,
) -> int:
    """Plain DSR, nearest resampled sample, one weight ``w`` for the pair (1, or its
    aperture-taper weight where that is the same at all its samples): the fast path.
    ``checked`` (a constant at each call site) tests each sample against the trace's ends;
    the caller passes False when a bound proves every sample lies inside, and the fold of
    the range it0..it1-1 is then +1 in ``starts[g, c, it0]`` and -1 in
    ``starts[g, c, it1]`` instead of a read-modify-write per sample. (Arrays are indexed
    whole, not through row views, so LLVM knows they do not alias and vectorises.)
    ``windows`` (a constant): WINDOW_LOADS, the positions first into the task's row
    ``work[i]``, then 16 samples per :func:`add_read16` (the same sums); on a checked
    range each sample's weight w * ok goes into ``work_w[i]`` (CHECKED_WINDOWS: value *
    (w * ok) equals (value * w) * ok bit for bit for ok in {0, 1}, as w >= 0: the same
    zero's sign) and the fold is counted per sample."""
    if windows and not checked:
        for it in range(np.uint64(it0), np.uint64(it1)):
            work[i, it] = _position(th2[it], sl2[c, it], ds2, dr2, t0_in, inv_h)
        _windowed_reads(gathers, g, c, data, k, work, i, w, smax, np.float32(0.0), it0, it1)
        return _mark_proven(starts, g, c, it0, it1)
    if windows:  # checked
        m = np.int32(0)  # COUNT32
        last = np.int32(-1)  # the last sample inside: the reads stop there
        for it in range(np.uint64(it0), np.uint64(it1)):
            s = _position(th2[it], sl2[c, it], ds2, dr2, t0_in, inv_h)
            ok = (s >= np.float32(0.0)) & (s <= smax)
            # clamped here: past the trace's end the positions stay ordered (all smax), so
            # the windows read them rather than the gather fallback
            work[i, it] = min(max(s, np.float32(0.0)), smax)
            work_w[i, it] = w * np.float32(ok)
            fold[g, c, it] += np.int32(ok)
            m = np.int32(m + np.int32(ok))
            last = max(last, np.int32(np.int32(np.int32(it) + np.int32(1)) * np.int32(ok) - 1))
        _windowed_reads(
            gathers, g, c, data, k, work, i, work_w, smax, np.float32(0.0), it0, int(last) + 1
        )
        return int(m)
    n = np.int32(0)  # COUNT32
    # unsigned loop index: no negative-index wrap-around code, so the loop vectorises
    for it in range(np.uint64(it0), np.uint64(it1)):
        s = _position(th2[it], sl2[c, it], ds2, dr2, t0_in, inv_h)
        sc = min(max(s, np.float32(0.0)), smax) if checked else s  # proven inside: no clamp
        n = np.int32(n + _accumulate(data, k, gathers, fold, g, c, it, s, sc, smax, w, checked))
    if not checked:
        return _mark_proven(starts, g, c, it0, it1)
    return int(n)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _pair(
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    k: int,
    c: int,
    hint_lo: int,
    hint_full: int,
) -> tuple[int, int, np.float32, np.float32, np.float32, np.float32, np.float32]:
    """Per (trace, column) pair: first sample inside the aperture, first sample inside both
    tapers, source/receiver offsets from the column and the squared midpoint distance.
    ``hint_lo``, ``hint_full``: where the two searches start (APERTURE_HINT,
    :func:`_first_at_least`: the neighbouring column's answers; any value gives the
    same)."""
    sxr, syr = sx[k] - x[c], sy[k] - y[c]
    rxr, ryr = rx[k] - x[c], ry[k] - y[c]
    mxr, myr = (sxr + rxr) * np.float32(0.5), (syr + ryr) * np.float32(0.5)
    d2 = mxr * mxr + myr * myr
    lo = _first_at_least(rout2, c, d2, hint_lo)
    full = _first_at_least(rin2, c, d2, hint_full) if lo < rout2.shape[1] else lo
    return lo, full, sxr, syr, rxr, ryr, d2


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _first_above(
    th2: NDArray[np.float32],
    s2: NDArray[np.float32],
    c: int,
    ds2: np.float32,
    dr2: np.float32,
    t0_in: np.float32,
    inv_h: np.float32,
    smax: np.float32,
    it0: int,
    hint: int,
) -> int:
    """First index it >= it0 where the sample position computed with the slowness table
    ``s2[c]``, (sqrt(th2 + ds2 s2) + sqrt(th2 + dr2 s2) - t0) / h, exceeds ``smax`` (len(th2)
    if none). ``s2[c]`` is nondecreasing (a running max or suffix min of 1/v^2) and th2
    increases, so the position is nondecreasing in it (float32 sqrt, + and * round
    monotonically) and a search finds it. NEAR_HINT: the search gallops out from ``hint``
    (the answer of the pair before, the same trace at the neighbouring column, which is
    usually a few samples away) and bisects the bracket it finds: a few evaluations instead
    of log2(nt) dependent ones; the same index from any hint (< 0: none, bisection)."""
    n = th2.shape[0]
    if _position(th2[n - 1], s2[c, n - 1], ds2, dr2, t0_in, inv_h) <= smax:
        return n  # none: one evaluation instead of a search (e.g. traces longer than needed)
    h = min(max(hint, it0), n - 1)  # the answer is in it0..n-1; bracket it: lo..hi
    step = 1
    if hint < 0:  # no hint: bisect it0..n-1
        lo, hi = it0, n - 1
    elif _position(th2[h], s2[c, h], ds2, dr2, t0_in, inv_h) > smax:
        lo, hi = it0, h  # at or below h: gallop down
        while h - step > it0:
            if _position(th2[h - step], s2[c, h - step], ds2, dr2, t0_in, inv_h) > smax:
                hi = h - step
                step *= 2
            else:
                lo = h - step + 1
                break
    else:
        lo, hi = h + 1, n - 1  # above h (n - 1 is above smax): gallop up
        while h + step < n - 1:
            if _position(th2[h + step], s2[c, h + step], ds2, dr2, t0_in, inv_h) > smax:
                hi = h + step
                break
            lo = h + step + 1
            step *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _position(th2[mid], s2[c, mid], ds2, dr2, t0_in, inv_h) > smax:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _plain_ranges(
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    th2: NDArray[np.float32],
    s2_premax: NDArray[np.float32],
    s2_sufmin: NDArray[np.float32],
    t0_in: np.float32,
    inv_h: np.float32,
    smax: np.float32,
    uniform_taper: bool,
    ap0: np.float32,
    inv_ap_taper: np.float32,
    margin: np.float32,
    k: int,
    c: int,
    hint_b: int,
    hint_e: int,
    hint_lo: int,
    hint_full: int,
) -> tuple[int, int, int, np.float32, np.float32, np.float32, int, int]:
    """The plain kernels' sample ranges of pair (k, c): it0 (first sample migrated; nt:
    none), itb and ite, and its taper weight w and squared leg distances ds2, dr2.

    Bounds of the sample position s (float32 sqrt, + and * round monotonically): with the
    running max of 1/v^2 it bounds s from above for every earlier sample, with the suffix
    min from below for every later one. So samples it0..itb-1 are proven inside the trace
    (no checks), samples from ite on proven past its end (never visited: typically the
    late samples of far traces), and only itb..ite-1 are checked one by one. ``margin``
    (resampled samples) narrows the proven ranges by the error allowed to positions that
    are not exact (``traveltime: interpolated``; 0 for exact ones). ``hint_b``, ``hint_e``:
    where to start the searches for itb and ite (NEAR_HINT; any value gives the same);
    ``hint_lo``, ``hint_full``: those of :func:`_pair` (APERTURE_HINT), whose answers are
    returned last, for the next column's hints."""
    lo, full, sxr, syr, rxr, ryr, d2 = _pair(
        sx, sy, rx, ry, x, y, rout2, rin2, k, c, hint_lo, hint_full
    )
    it0 = lo if uniform_taper else full
    w = np.float32(1.0)
    ds2 = sxr * sxr + syr * syr
    dr2 = rxr * rxr + ryr * ryr
    itb, ite = it0, it0
    if it0 < th2.shape[0]:  # (one return point: an early one stops LLVM vectorising the caller)
        if it0 < full:  # in the taper zone at every sample (uniform_taper)
            w = _taper01((ap0 - np.sqrt(d2)) * inv_ap_taper)
        s_lo = _position(th2[it0], s2_sufmin[c, it0], ds2, dr2, t0_in, inv_h)
        ite = _first_above(th2, s2_sufmin, c, ds2, dr2, t0_in, inv_h, smax + margin, it0, hint_e)
        if s_lo >= margin:
            itb = _first_above(
                th2, s2_premax, c, ds2, dr2, t0_in, inv_h, smax - margin, it0, hint_b
            )
    return it0, itb, ite, w, ds2, dr2, lo, full


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _leg_bound(
    d: np.float32,
    ua: np.float32,
    du: np.float32,
    pp: np.float32,
    qq: np.float32,
    c0: np.float32,
    b0: np.float32,
    a: np.float32,
    inv2a: np.float32,
    n: np.float32,
    k: np.float32,
) -> tuple[np.float32, np.bool_]:
    """One leg's bound of the interpolation error on a block and whether its smallest q is
    above TINY_Q: the float32 expressions of
    :func:`pstm.kernels.operator.interpolation_allowed`, in its order (branch-free)."""
    b = b0 + d * du
    c = c0 + d * ua
    disc = d * (pp - d * qq)
    x = min(max(-b * inv2a, np.float32(0.0)), n)
    q = (a * x + b) * x + c
    qs = max(q, np.float32(TINY_Q))
    return k * abs(disc) / (qs * np.sqrt(qs)), q > np.float32(TINY_Q)


@njit(fastmath=FASTMATH, cache=True)
def _fill_positions(
    pos: NDArray[np.float32],
    nodes: NDArray[np.float32],
    flags: NDArray[np.uint8],
    row: int,
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    th2_nodes: NDArray[np.float32],
    sl2_nodes: NDArray[np.float32],
    blocks: NDArray[np.float32],
    times: NDArray[np.float32],
    bp: NDArray[np.float32],
    c: int,
    ds2: np.float32,
    dr2: np.float32,
    t0_in: np.float32,
    inv_h: np.float32,
    node: int,
    it0: int,
    it1: int,
) -> None:
    """pos[row, it] = the sample position of ``traveltime: interpolated`` at it0..it1-1, in
    three vectorised passes over the blocks (block b = samples b node .. b node + node - 1):
    the exact positions at the nodes b node (th2_nodes, sl2_nodes: the tables there) into
    nodes[row, b]; the bound of :func:`pstm.kernels.operator.interpolation_allowed` (tables
    ``blocks``, ``times``; ``bp`` = A, 1/(2A), node, K, tolerance/2) into flags[row, b];
    then each block, linear between its nodes where allowed, else exact. Not inlined: in
    the caller's body its loops stop LLVM from vectorising the gather loops."""
    n_blocks = blocks.shape[2]  # blocks whose end node exists
    b0, b1 = it0 // node, min((it1 - 1) // node + 1, n_blocks)
    for b in range(np.uint64(b0), np.uint64(b1 + 1)):  # two square roots per block
        q = th2_nodes[b]
        v2 = sl2_nodes[c, b]
        t = np.sqrt(q + ds2 * v2) + np.sqrt(q + dr2 * v2)  # q >= LEG_TIME_MIN_S^2 (QMIN_TABLE)
        nodes[row, b] = (t - t0_in) * inv_h
    a, inv2a, n, k, half = bp[0], bp[1], bp[2], bp[3], bp[4]
    legs = np.sqrt(ds2) + np.sqrt(dr2)
    for b in range(np.uint64(b0), np.uint64(b1)):
        ua, du, pp, qq = blocks[0, c, b], blocks[1, c, b], blocks[2, c, b], blocks[3, c, b]
        c0, bb = times[0, b], times[1, b]
        err_s, pos_s = _leg_bound(ds2, ua, du, pp, qq, c0, bb, a, inv2a, n, k)
        err_r, pos_r = _leg_bound(dr2, ua, du, pp, qq, c0, bb, a, inv2a, n, k)
        ok = ((err_s + err_r) <= half) & (legs * blocks[4, c, b] <= half) & pos_s & pos_r
        flags[row, b] = np.uint8(ok)
    inv_node = np.float32(1.0 / node)
    for b in range(it0 // node, (it1 - 1) // node + 1):
        a0 = b * node
        lo, hi = max(a0, it0), min(a0 + node, it1)
        if b < n_blocks and flags[row, b] != 0:
            s0 = nodes[row, b]
            step = (nodes[row, b + 1] - s0) * inv_node
            for j in range(np.uint64(lo - a0), np.uint64(hi - a0)):
                # int32 -> float32 converts in one vector instruction (uint64 does not)
                pos[row, np.uint64(a0) + j] = s0 + np.float32(np.int32(j)) * step
        else:
            for it in range(np.uint64(lo), np.uint64(hi)):
                pos[row, it] = _position(th2[it], sl2[c, it], ds2, dr2, t0_in, inv_h)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _gather_positions(
    data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    starts: NDArray[np.int32],
    g: int,
    c: int,
    pos: NDArray[np.float32],
    row: int,
    smax: np.float32,
    w: np.float32,
    checked: bool,
    it0: int,
    it1: int,
    windows: bool,
) -> int:
    """:func:`_plain_nearest` on the positions pos[row, it0..it1-1] (clamped to the trace
    either way: an interpolated position may stray by the allowed error); ``windows`` (a
    constant, unchecked ranges only): 16 samples at a time (WINDOW_LOADS)."""
    if windows and not checked:
        _windowed_reads(gathers, g, c, data, k, pos, row, w, smax, np.float32(0.0), it0, it1)
        return _mark_proven(starts, g, c, it0, it1)
    n = np.int32(0)  # COUNT32
    for it in range(np.uint64(it0), np.uint64(it1)):
        s = pos[row, it]
        sc = min(max(s, np.float32(0.0)), smax)
        n = np.int32(n + _accumulate(data, k, gathers, fold, g, c, it, s, sc, smax, w, checked))
    if not checked:
        return _mark_proven(starts, g, c, it0, it1)
    return int(n)


@njit(cache=True, inline="always")
def _chunk_columns(i: int, per: int, nthr: int, ncol: int) -> tuple[int, int]:
    """The columns c0..c1-1 of iteration ``i`` of ``prange(per * nthr)``: those of chunk
    ``ic`` (CYCLIC_CHUNKS: numba gives thread t the iterations t per .. (t + 1) per - 1,
    which map to the chunks t, t + nthr, t + 2 nthr, ...). The ``per * nthr`` chunks cut
    the columns as evenly as whole columns allow (sizes differ by at most one; empty when
    there are fewer columns than chunks). Per-task rows are indexed by ``i`` (TASK_ROWS)."""
    ic = (i % per) * nthr + i // per
    n = per * nthr
    return ic * ncol // n, (ic + 1) * ncol // n


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _add_fold_starts(starts: NDArray[np.int32], fold: NDArray[np.int32], c: int) -> None:
    """fold[g, c, it] += sum of starts[g, c, :it + 1]: the number of proven-inside ranges
    of column c that cover sample it (each is +1 at its start, -1 past its end)."""
    for g in range(fold.shape[0]):
        run = np.int32(0)
        for it in range(fold.shape[2]):
            run += starts[g, c, it]
            fold[g, c, it] += run


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _migrate_plain(
    data: NDArray[np.float32],
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    cls: NDArray[np.int32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    s2_premax: NDArray[np.float32],
    s2_sufmin: NDArray[np.float32],
    t0_in: np.float32,
    inv_h: np.float32,
    smax: np.float32,
    uniform_taper: bool,
    ap0: np.float32,
    inv_ap_taper: np.float32,
    prep: tuple,  # see _block_buffers
    per: int,
    nthr: int,
    block: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    starts: NDArray[np.int32],
    counts: NDArray[np.int64],
    windows: bool,
    work: NDArray[np.float32],
    work_w: NDArray[np.float32],
) -> None:
    """Plain DSR, nearest sample: the samples inside both tapers (the taper zones go to
    :func:`_migrate_features`), or, with ``uniform_taper`` (a constant aperture ``ap0``
    and no angle limit: a pair's taper weight is the same at every sample), every sample
    inside the aperture, a taper-zone pair weighted by its one taper weight. A kernel of its
    own: inlining a second, different time loop into the same function stops LLVM from
    vectorising this one."""
    ntr = prep[0].shape[0]
    ncol, nt = sl2.shape
    for k0 in range(0, ntr, block):  # see TRACE_BLOCKS in the module docstring
        k1 = min(ntr, k0 + block)
        prepare_block(prep, k0, k1, data, data[:0])  # no anti-aliasing levels
        for i in prange(per * nthr):
            c0, c1 = _chunk_columns(i, per, nthr, ncol)  # see CYCLIC_CHUNKS
            for k in range(k0, k1):  # trace-major: see TRACE_MAJOR
                hint_b, hint_e = -1, -1  # NEAR_HINT: the last column's itb and ite (none yet)
                hint_lo, hint_full = -1, -1  # APERTURE_HINT: the last column's lo and full
                for c in range(c0, c1):
                    it0, itb, ite, w, ds2, dr2, hint_lo, hint_full = _plain_ranges(
                        sx, sy, rx, ry, x, y, rout2, rin2, th2, s2_premax, s2_sufmin, t0_in, inv_h,
                        smax, uniform_taper, ap0, inv_ap_taper, np.float32(0.0), k, c, hint_b,
                        hint_e, hint_lo, hint_full,
                    )  # fmt: skip
                    if it0 >= nt:
                        continue
                    hint_b, hint_e = itb, ite
                    n = 0
                    if itb > it0 and windows:
                        n += _plain_nearest(
                            data, k - k0, gathers, fold, starts, cls[k], c, th2, sl2, ds2, dr2, t0_in,
                            inv_h, smax, w, False, it0, itb, True, work, work_w, i,
                        )  # fmt: skip
                    elif itb > it0:
                        n += _plain_nearest(
                            data, k - k0, gathers, fold, starts, cls[k], c, th2, sl2, ds2, dr2, t0_in,
                            inv_h, smax, w, False, it0, itb, False, work, work_w, i,
                        )  # fmt: skip
                    if itb < ite and windows:
                        n += _plain_nearest(
                            data, k - k0, gathers, fold, starts, cls[k], c, th2, sl2, ds2, dr2, t0_in,
                            inv_h, smax, w, True, itb, ite, True, work, work_w, i,
                        )  # fmt: skip
                    elif itb < ite:
                        n += _plain_nearest(
                            data, k - k0, gathers, fold, starts, cls[k], c, th2, sl2, ds2, dr2, t0_in,
                            inv_h, smax, w, True, itb, ite, False, work, work_w, i,
                        )  # fmt: skip
                    counts[i, 0] += n  # TASK_ROWS
    for c in prange(ncol):
        _add_fold_starts(starts, fold, c)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _migrate_plain_interpolated(
    data: NDArray[np.float32],
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    cls: NDArray[np.int32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    s2_premax: NDArray[np.float32],
    s2_sufmin: NDArray[np.float32],
    t0_in: np.float32,
    inv_h: np.float32,
    smax: np.float32,
    ap0: np.float32,
    inv_ap_taper: np.float32,
    node: int,
    margin: np.float32,
    prep: tuple,  # see _block_buffers
    per: int,
    nthr: int,
    block: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    starts: NDArray[np.int32],
    counts: NDArray[np.int64],
    th2_nodes: NDArray[np.float32],
    sl2_nodes: NDArray[np.float32],
    blocks: NDArray[np.float32],
    times: NDArray[np.float32],
    bp: NDArray[np.float32],
    pos: NDArray[np.float32],
    nodes: NDArray[np.float32],
    flags: NDArray[np.uint8],
    windows: bool,
) -> None:
    """:func:`_migrate_plain` (with a uniform taper: ``traveltime: interpolated`` allows no
    other) in two passes per pair: its sample positions into ``pos[task]`` (nchunk, nt) by
    :func:`_fill_positions`, then the gathers; the proven ranges are narrowed by ``margin``,
    the error allowed to an interpolated position."""
    ntr = prep[0].shape[0]
    ncol, nt = sl2.shape
    for k0 in range(0, ntr, block):  # see TRACE_BLOCKS in the module docstring
        k1 = min(ntr, k0 + block)
        prepare_block(prep, k0, k1, data, data[:0])  # no anti-aliasing levels
        for i in prange(per * nthr):
            c0, c1 = _chunk_columns(i, per, nthr, ncol)  # see CYCLIC_CHUNKS
            for k in range(k0, k1):  # trace-major: see TRACE_MAJOR
                hint_b, hint_e = -1, -1  # NEAR_HINT: the last column's itb and ite (none yet)
                hint_lo, hint_full = -1, -1  # APERTURE_HINT: the last column's lo and full
                for c in range(c0, c1):
                    it0, itb, ite, w, ds2, dr2, hint_lo, hint_full = _plain_ranges(
                        sx, sy, rx, ry, x, y, rout2, rin2, th2, s2_premax, s2_sufmin, t0_in, inv_h,
                        smax, True, ap0, inv_ap_taper, margin, k, c, hint_b, hint_e, hint_lo,
                        hint_full,
                    )  # fmt: skip
                    if it0 >= ite:
                        continue
                    hint_b, hint_e = itb, ite
                    _fill_positions(
                        pos, nodes, flags, i, th2, sl2, th2_nodes, sl2_nodes, blocks, times, bp, c,
                        ds2, dr2, t0_in, inv_h, node, it0, ite,
                    )  # fmt: skip
                    n = 0
                    if itb > it0 and windows:
                        n += _gather_positions(
                            data, k - k0, gathers, fold, starts, cls[k], c, pos, i, smax, w, False, it0,
                            itb, True,
                        )  # fmt: skip
                    elif itb > it0:
                        n += _gather_positions(
                            data, k - k0, gathers, fold, starts, cls[k], c, pos, i, smax, w, False, it0,
                            itb, False,
                        )  # fmt: skip
                    if itb < ite:
                        n += _gather_positions(
                            data, k - k0, gathers, fold, starts, cls[k], c, pos, i, smax, w, True, itb,
                            ite, False,
                        )  # fmt: skip
                    counts[i, 0] += n  # TASK_ROWS
    for c in prange(ncol):
        _add_fold_starts(starts, fold, c)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _features_loop(
    data: NDArray[np.float32],
    aa_data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    g: int,
    c: int,
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    wta: NDArray[np.float32],
    stretch: NDArray[np.float32],
    ap: NDArray[np.float32],
    ang: NDArray[np.float32],
    inv_ang_taper: NDArray[np.float32],
    legs: tuple[np.float32, np.float32, np.float32, np.float32, np.float32],
    fp: NDArray[np.float32],
    antialias: bool,
    tapered: int,
    nearest: bool,
    it0: int,
    it1: int,
    first: int,
    zone_end: int,
    work_i: NDArray[np.uint32],
    work_w: NDArray[np.float32],
    row: int,
    windows: bool,
    work_p: NDArray[np.float32],
) -> int:
    """Every feature on samples it0..it1-1 of one pair, without a branch per feature: an
    unused feature takes neutral values (``stretch`` = NO_LIMIT; weight ``fp[4] + wta * ...``
    with ``wta`` = 0 and fp[4] = 1; the tapers are 1 inside both). ``antialias``,
    ``tapered`` (TAPER_NONE, TAPER_ANGLE or TAPER_BOTH: which tapers the loop computes)
    and ``nearest`` are constants at each call site; ``nearest`` reads one
    resampled sample, else the lerp weight is ``fp[6]`` (1 for the linear interpolations).
    AA_TWO_PASSES: with ``antialias`` the loop writes each sample's level-row index and
    weight (0 where invalid) into its task's rows ``work_i[row]``, ``work_w[row]``
    (TASK_ROWS) and a second loop (:func:`_features_reads`, once per pair after both of
    its ranges) gathers and adds them: the gather's address then no
    longer waits at the end of the long chain of the level's arithmetic (square roots,
    division, exponent) in the same loop (2D line: everything 0.113 -> 0.106-0.109 s; 3D
    about 2 %; docs/benchmarks.md). The same products in the same order:
    value * (weight * ok) equals (value * weight) * ok for ok in {0, 1}. ``windows`` (a
    constant, WINDOW_LOADS): with ``antialias`` (AA_WINDOWS) the second pass reads 16
    level-row indices at a time through :func:`add_indexed16` (windows within one level;
    a group that changes level takes scalar loads: 7 % of the groups on the 2D benchmark
    line; everything 0.1035 -> 0.0993 s, docs/benchmarks.md); without, the same two
    passes for the nearest or linear read, each sample's clamped position into
    ``work_p[row]`` and its weight into ``work_w[row]``, then 16 samples at a time through
    :func:`add_read16` (a weight per sample; the lerp factor ``lin``, 0 for the nearest
    sample). The loop here is the first pass; without either, it reads and adds itself."""
    t0_in, inv_h, smax, inv_ap_taper = fp[0], fp[1], fp[2], fp[3]
    w_off, round_off, lin, top = fp[4], fp[5], fp[6], np.int32(fp[7])
    kxx, kxy2, kyy = fp[8], fp[10], fp[11]  # the anti-aliasing form (operator.antialias_form)
    sxr, syr, rxr, ryr, d = legs  # d: the midpoint's distance (from _pair)
    stride = np.int32(np.int32(smax) + 2)  # M + 1 samples per anti-aliasing level
    zero, half = np.float32(0.0), np.float32(0.5)
    ds2 = sxr * sxr + syr * syr
    dr2 = rxr * rxr + ryr * ryr
    # AA_RULE: operator.antialias_pair's float32 operations in its order, once per call
    ks = (kxx * sxr) * sxr + (kyy * syr) * syr + (kxy2 * sxr) * syr
    kr = (kxx * rxr) * rxr + (kyy * ryr) * ryr + (kxy2 * rxr) * ryr
    ksr = np.float32(2.0) * ((kxx * sxr) * rxr + (kyy * syr) * ryr) + kxy2 * (sxr * ryr + syr * rxr)
    n = np.int32(0)  # COUNT32
    for it in range(np.uint64(it0), np.uint64(it1)):  # unsigned: see _plain_nearest
        q = th2[it]
        s2 = sl2[c, it]
        qs = q + ds2 * s2  # >= LEG_TIME_MIN_S^2: th2 is floored there (QMIN_TABLE)
        qr = q + dr2 * s2
        ts = np.sqrt(qs)
        tr = np.sqrt(qr)
        t = ts + tr
        tstr = ts * tr
        inv_p2 = np.float32(1.0) / (qs * qr)  # 1 / (ts tr)^2
        s = (t - t0_in) * inv_h
        ok = (s >= zero) & (s <= smax) & (stretch[it] * t >= tstr)
        if tapered:  # ZONE_VECTORS: samples before the aperture's first count nothing
            ok = ok & (it >= np.uint64(first))
        sc = min(max(s, zero), smax)
        if antialias:
            # AA_RULE: operator.antialias_y's float32 operations in its order (no sqrt)
            y = s2 * s2 * (ks * qr + kr * qs + ksr * tstr) * inv_p2
            exponent = _float32_bits(y) >> np.int32(23)  # type: ignore[call-arg]
            # floor(log2 y) + 1 = exponent - 126, clamped (operator.antialias_level); int32
            # throughout (COUNT32: numba's int32 arithmetic gives int64 values)
            level = np.int32(min(max(np.int32(exponent - 126), np.int32(0)), top))
            index = np.int32(np.int32(level * stride) + np.int32(sc + half))  # sc >= 0
            if windows:  # AA_WINDOWS: read as int32 vectors, no mask needed
                work_i[row, it] = np.uint32(index)
            else:  # non-negative int32 indices (31 bits), gathered with 16 lanes
                work_i[row, it] = np.uint32(index) & NONNEG31
            value = np.float32(1.0)  # read in the second pass (AA_TWO_PASSES)
        elif windows:  # read in the second pass (WINDOW_LOADS)
            work_p[row, it] = sc
            value = np.float32(1.0)
        elif nearest:  # one gathered load (the same value as the lerp below with lin = 0)
            value = data[k, np.uint32(np.int32(sc + half)) & NONNEG31]
        else:
            i = np.uint32(np.int32(sc + round_off)) & NONNEG31
            w = (sc - np.float32(i)) * lin
            a = data[k, i]
            value = a + w * (data[k, i + np.uint32(1)] - a)
        weight = w_off + wta[c, it] * t * ((qs + qr) * inv_p2)
        if tapered:  # in the zone only (ZONE_VECTORS: 1 past it, as in the reference)
            taper = _taper01((ang[c, it] - d) * inv_ang_taper[c, it])
            if tapered == TAPER_BOTH:  # else the aperture's taper is 1 (APERTURE_TAPER_FREE)
                taper = _taper01((ap[it] - d) * inv_ap_taper) * taper
            weight = weight * (taper if it < np.uint64(zone_end) else np.float32(1.0))
        if antialias or windows:
            work_w[row, it] = weight * np.float32(ok)
        else:
            gathers[g, c, it] += value * weight * np.float32(ok)
        fold[g, c, it] += np.int32(ok)
        n = np.int32(n + np.int32(ok))
    return int(n)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _features_reads(
    data: NDArray[np.float32],
    aa_data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    g: int,
    c: int,
    fp: NDArray[np.float32],
    antialias: bool,
    windows: bool,
    it0: int,
    it1: int,
    work_i: NDArray[np.uint32],
    work_w: NDArray[np.float32],
    row: int,
    work_p: NDArray[np.float32],
) -> None:
    """The second pass of :func:`_features_loop` (``antialias`` or ``windows``, constants)
    over samples it0..it1-1 of a pair, whose first passes wrote the task's work rows: the
    reads from the level rows (AA_TWO_PASSES; 16 at a time with ``windows``, AA_WINDOWS)
    or through :func:`add_read16` (WINDOW_LOADS; lerp factor fp[6]: 0 nearest, 1 linear)."""
    if antialias:
        rest = it0
        if windows:  # AA_WINDOWS: 16 at a time from windows of the level rows
            while rest + WINDOW_LANES <= it1:
                add_indexed16(gathers, g, c, rest, aa_data, k, work_i, row, work_w)  # type: ignore[call-arg]
                rest += WINDOW_LANES
        for it in range(np.uint64(rest), np.uint64(it1)):
            gathers[g, c, it] += aa_data[k, work_i[row, it]] * work_w[row, it]
    elif windows:
        _windowed_reads(gathers, g, c, data, k, work_p, row, work_w, fp[2], fp[6], it0, it1)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def _features_pair(
    data: NDArray[np.float32],
    aa_data: NDArray[np.float32],
    k: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    g: int,
    c: int,
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    wta: NDArray[np.float32],
    stretch: NDArray[np.float32],
    ap: NDArray[np.float32],
    ang: NDArray[np.float32],
    inv_ang_taper: NDArray[np.float32],
    legs: tuple[np.float32, np.float32, np.float32, np.float32, np.float32],
    fp: NDArray[np.float32],
    antialias: bool,
    nearest: bool,
    lo: int,
    full: int,
    end: int,
    work_i: NDArray[np.uint32],
    work_w: NDArray[np.float32],
    row: int,
    windows: bool,
    work_p: NDArray[np.float32],
) -> int:
    """One pair through :func:`_features_loop`: its taper zone start..split-1, then
    split..end-1 inside both tapers, then (two passes) the reads of start..end-1 at once
    (:func:`_features_reads`). ZONE_VECTORS: both loops run whole vectors of ZONE_LANES
    samples, so neither has a scalar remainder: ``split`` is the taper zone's end ``full``
    moved on (by fewer than 2 ZONE_LANES samples, at most to ``end``) to make end - split
    a whole number of vector pairs (PAIRED_VECTORS: LLVM runs the loop inside both tapers
    two vectors per iteration, and a single vector left over went through its 4-lane
    remainder loop, 2 % of the call's samples in ``perf``; 2D everything 0.0707-0.0713 ->
    0.0699-0.0708 s, docs/benchmarks.md), ``start`` the aperture's first sample ``lo``
    moved back to make split - start a whole number of vectors (not before sample 0; the
    zone's loop counts nothing before ``lo``); the zone's loop takes the taper weight 1 at
    its samples past ``full``, as the reference does inside both tapers (not the taper
    formula: a taper of zero width would give 0 at its edge).
    APERTURE_TAPER_FREE: where the pair's midpoint distance is at least the aperture
    taper's width inside the smallest aperture (fp[9]), the zone's loop computes only the
    angle taper (the aperture's is 1.0 at every sample: float32 subtraction and product
    round monotonically; 2D benchmark line, everything: 0.0758-0.0765 -> 0.0753-0.0755 s,
    docs/benchmarks.md). ``antialias``, ``nearest`` and ``windows`` must be constants at
    each call site."""
    # lo <= full <= end (rin2 <= rout2, config.py; full <= nt)
    split = end - (end - full) // (2 * ZONE_LANES) * (2 * ZONE_LANES)
    start = max(split - (split - lo + ZONE_LANES - 1) // ZONE_LANES * ZONE_LANES, 0)
    if (fp[9] - legs[4]) * fp[3] >= np.float32(1.0):  # APERTURE_TAPER_FREE
        n = _features_loop(
            data, aa_data, k, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
            inv_ang_taper, legs, fp, antialias, TAPER_ANGLE, nearest, start, split, lo, full,
            work_i, work_w, row, windows, work_p,
        )  # fmt: skip
    else:
        n = _features_loop(
            data, aa_data, k, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
            inv_ang_taper, legs, fp, antialias, TAPER_BOTH, nearest, start, split, lo, full,
            work_i, work_w, row, windows, work_p,
        )  # fmt: skip
    n += _features_loop(
        data, aa_data, k, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
        inv_ang_taper, legs, fp, antialias, TAPER_NONE, nearest, split, end, lo, full, work_i,
        work_w, row, windows, work_p,
    )  # fmt: skip
    if antialias or windows:
        _features_reads(
            data, aa_data, k, gathers, g, c, fp, antialias, windows, start, end, work_i, work_w,
            row, work_p,
        )  # fmt: skip
    return n


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _migrate_features(
    data: NDArray[np.float32],
    aa_data: NDArray[np.float32],
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    cls: NDArray[np.int32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    ap: NDArray[np.float32],
    ang: NDArray[np.float32],
    inv_ang_taper: NDArray[np.float32],
    wta: NDArray[np.float32],
    stretch: NDArray[np.float32],
    fp: NDArray[np.float32],
    zones_only: bool,
    antialias: bool,
    nearest: bool,
    prep: tuple,  # see _block_buffers
    per: int,
    nthr: int,
    block: int,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    counts: NDArray[np.int64],
    work_i: NDArray[np.uint32],
    work_w: NDArray[np.float32],
    windows: bool,
    work_p: NDArray[np.float32],
) -> None:
    """Every feature on samples lo..nt-1 of each pair, or only on its taper zone lo..full-1
    when ``zones_only`` (the rest then goes to :func:`_migrate_plain`; see
    :func:`_features_pair` for the samples before ``lo`` its loops compute with validity 0);
    ``antialias``: read
    the anti-aliasing level of each sample (nearest sample of it), else ``nearest``: the
    oversampled-nearest interpolation, one gathered load per sample, else linear.
    ``work_i``, ``work_w``: one row of nt per task (AA_TWO_PASSES, TASK_ROWS; unused
    without ``antialias`` or ``windows``); ``windows`` (WINDOW_LOADS): the reads 16 at a
    time, from the level rows' indices (AA_WINDOWS) or the positions in ``work_p``'s
    rows."""
    ntr = prep[0].shape[0]
    ncol, nt = sl2.shape
    for k0 in range(0, ntr, block):  # see TRACE_BLOCKS in the module docstring
        k1 = min(ntr, k0 + block)
        prepare_block(prep, k0, k1, data, aa_data)
        for i in prange(per * nthr):
            c0, c1 = _chunk_columns(i, per, nthr, ncol)  # see CYCLIC_CHUNKS
            for k in range(k0, k1):  # trace-major: see TRACE_MAJOR
                hint_lo, hint_full = -1, -1  # APERTURE_HINT: the last column's (none yet)
                for c in range(c0, c1):
                    lo, full, sxr, syr, rxr, ryr, d2 = _pair(
                        sx, sy, rx, ry, x, y, rout2, rin2, k, c, hint_lo, hint_full
                    )
                    hint_lo, hint_full = lo, full
                    if lo >= nt:
                        continue
                    g, legs = cls[k], (sxr, syr, rxr, ryr, np.sqrt(d2))
                    end = full if zones_only else nt
                    if antialias and windows:  # compile-time constants in each call below
                        n = _features_pair(
                            data, aa_data, k - k0, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
                            inv_ang_taper, legs, fp, True, False, lo, full,
                            end, work_i, work_w, i, True, work_p,
                        )  # fmt: skip
                    elif antialias:
                        n = _features_pair(
                            data, aa_data, k - k0, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
                            inv_ang_taper, legs, fp, True, False, lo, full,
                            end, work_i, work_w, i, False, work_p,
                        )  # fmt: skip
                    elif windows:  # nearest or linear: the lerp factor fp[6] says which
                        n = _features_pair(
                            data, aa_data, k - k0, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
                            inv_ang_taper, legs, fp, False, False, lo,
                            full, end, work_i, work_w, i, True, work_p,
                        )  # fmt: skip
                    elif nearest:
                        n = _features_pair(
                            data, aa_data, k - k0, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
                            inv_ang_taper, legs, fp, False, True, lo, full,
                            end, work_i, work_w, i, False, work_p,
                        )  # fmt: skip
                    else:
                        n = _features_pair(
                            data, aa_data, k - k0, gathers, fold, g, c, th2, sl2, wta, stretch, ap, ang,
                            inv_ang_taper, legs, fp, False, False, lo,
                            full, end, work_i, work_w, i, False, work_p,
                        )  # fmt: skip
                    counts[i, 0] += n  # TASK_ROWS


def block_row_bytes(p: Prepared, antialias: bool) -> int:
    """Bytes of one trace's rows in the block buffers: the resampled trace or, with
    anti-aliasing, its levels (the trace is level 0: LEVEL0_IN_PLACE)."""
    return (p.n_valid + 1) * 4 * (p.aa_levels if antialias else 1)


def _rows_with_slack(n: int, width: int) -> NDArray[np.float32]:
    """An (n, width) float32 buffer with WINDOW_SLACK floats allocated after its last row:
    the window reads (WINDOW_LOADS) load up to that far past the last index they read
    (those lanes are never selected)."""
    flat = np.zeros(n * width + WINDOW_SLACK, np.float32)
    return flat[: n * width].reshape(n, width)


def _block_buffers(
    p: Prepared, antialias: bool, threads: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], int, tuple]:
    """The buffers of one block of traces (TRACE_BLOCKS) and the kernels' ``prep`` tuple for
    :func:`pstm.kernels._numba_traces.prepare_block`: (recorded traces, oversampling taps,
    its two work rows per trace, the anti-aliasing half-lengths, their float64 work rows,
    each trace's read range (LEVEL_RANGES; (0, 2) without anti-aliasing)). Returns the
    resampled rows (block, M + 1) or, with anti-aliasing, (0, M + 1) (LEVEL0_IN_PLACE), the
    level rows (block, L (M + 1)) or (0, 1), the block's size and ``prep``."""
    ns, m = p.data.shape[1], p.n_valid
    levels = p.aa_levels if antialias else 0
    budget = TRACE_BLOCK_BYTES * (AA_BLOCK_SCALE if antialias else 1)
    per_thread = max(1, -(-(budget // block_row_bytes(p, antialias)) // threads))
    block = max(1, min(p.ntr, per_thread * threads))  # whole traces per thread, >= 1 each
    pad = max(p.aa_lengths) + 1 if antialias else 0
    ranges = np.empty((p.ntr if antialias else 0, 2), np.int64)
    if antialias:  # LEVEL_RANGES: the samples of each trace the kernels can read
        box = np.array([p.x.min(), p.x.max(), p.y.min(), p.y.max()], np.float32)
        tables = np.array(
            [p.th2.min(), p.th2.max(), p.sl2.min(), p.sl2.max(), p.t0_in, p.inv_h, m - 1],
            np.float32,
        )
        read_ranges(p.sx, p.sy, p.rx, p.ry, box, tables, m, ranges)
    prep = (
        p.data,
        sinc_phases(m // max(ns, 1)).astype(np.float32),
        np.empty((block, ns + 2 * SINC_HALF_TAPS), np.float32),
        np.empty((block, ns), np.float32),
        np.asarray(p.aa_lengths if antialias else (1,), np.int64),
        np.empty((block, m + 2 * pad) if antialias else (1, m), np.float64),
        ranges,
    )
    # LEVEL0_IN_PLACE: with anti-aliasing the resampled trace is level 0 of the level rows
    rows = _rows_with_slack(0 if antialias else block, m + 1)
    aa_rows = _rows_with_slack(block if antialias else 0, levels * (m + 1))  # AA_WINDOWS
    return rows, aa_rows, block, prep


def run_prepared(
    p: Prepared, gathers: NDArray[np.float32], fold: NDArray[np.int32], threads: int
) -> int:
    """Run the compiled kernels on a prepared problem; gathers/fold are (ncls, ncol, nt)."""
    if p.resampled:
        raise ValueError("the numba kernels resample the traces themselves: prepare with TRACE_OPS")
    if not (gathers.flags.c_contiguous and fold.flags.c_contiguous):
        raise ValueError("gathers and fold must be C-contiguous (WINDOW_LOADS writes vectors)")
    nthr = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    numba.set_num_threads(nthr)
    ncol, nt = p.sl2.shape
    most = AA_COLUMN_CHUNK if p.aa_levels > 0 else COLUMN_CHUNK
    chunk = max(1, min(most, ncol // (CHUNKS_PER_THREAD * nthr)))
    per = ((ncol + chunk - 1) // chunk + nthr - 1) // nthr  # chunks per thread (<= chunk columns)
    counts = np.zeros((per * nthr, COUNT_ROW), dtype=np.int64)  # TASK_ROWS
    use_ta, use_st, use_aa = p.wta.size > 0, p.stretch.size > 0, p.aa_levels > 0
    fp = np.array(
        [
            p.t0_in,
            p.inv_h,
            p.n_valid - 1,
            p.inv_ap_taper,
            0.0 if use_ta else 1.0,  # weight offset (neutral weight 1 without true amplitude)
            0.5 if p.nearest else 0.0,  # rounding offset of the sample index
            0.0 if p.nearest else 1.0,  # linear interpolation weight factor
            max(p.aa_levels - 1, 0),  # highest anti-aliasing level
            p.aa_form[0],  # anti-aliasing rule: kxx (operator.antialias_form)
            p.ap.min(),  # the smallest aperture (APERTURE_TAPER_FREE)
            p.aa_form[1],  # 2 kxy
            p.aa_form[2],  # kyy
        ],
        dtype=np.float32,
    )
    wta = p.wta if use_ta else np.zeros((ncol, nt), dtype=np.float32)
    stretch = p.stretch if use_st else np.full(nt, NO_LIMIT, dtype=np.float32)
    rows, aa_rows, block, prep = _block_buffers(p, use_aa, nthr)
    args = (
        rows, aa_rows, p.sx, p.sy, p.rx, p.ry, p.cls, p.x, p.y, p.th2, p.sl2, p.rout2,
        p.rin2, p.ap, p.ang, p.inv_ang_taper, wta, stretch, fp,
    )  # fmt: skip
    # every kernel's reads through the window loads (WINDOW_LOADS; AA_WINDOWS)
    windows = WINDOW_LOADS
    nchunk = per * nthr
    # one row per task (TASK_ROWS) of sample positions: the window loads' first pass, in
    # every kernel, and the interpolated traveltimes' (which need them either way)
    positions = np.empty((nchunk if (WINDOW_LOADS or p.tt_node) else 0, nt), np.float32)
    rows_aa = nchunk if use_aa else 0  # AA_TWO_PASSES: level-row indices, one row per task
    # their weights (AA or WINDOW_LOADS; the plain kernel's checked ranges: CHECKED_WINDOWS)
    rows_w = nchunk if (use_aa or windows) else 0
    work = (
        np.empty((rows_aa, nt), np.uint32),
        np.empty((rows_w, nt), np.float32),
        windows,
        positions,
    )
    if use_aa or use_ta or use_st or not p.nearest:
        _migrate_features(
            *args, False, use_aa, p.nearest, prep, per, nthr, block, gathers, fold, counts, *work
        )
    else:
        # constant aperture, no angle limit: a pair's taper weight is the same at all samples
        uniform = bool((p.ap == p.ap[0]).all() and (p.ang >= np.float32(NO_LIMIT)).all())
        # taper zones of varying weight (this call resamples each block twice, once per kernel)
        if not uniform and bool((p.rin2 < p.rout2).any()):
            _migrate_features(
                *args, True, False, p.nearest, prep, per, nthr, block, gathers, fold, counts, *work
            )
        premax = np.maximum.accumulate(p.sl2, axis=1)
        sufmin = np.ascontiguousarray(np.minimum.accumulate(p.sl2[:, ::-1], axis=1)[:, ::-1])
        geometry = (rows, p.sx, p.sy, p.rx, p.ry, p.cls, p.x, p.y, p.th2, p.sl2, p.rout2, p.rin2)
        if p.tt_node:  # traveltime: interpolated (prepare() allows it with the plain operator)
            node = p.tt_node
            nn = (nt - 1) // node + 1
            _migrate_plain_interpolated(
                *geometry, premax, sufmin, fp[0], fp[1], fp[2], p.ap[0], fp[3], node,
                np.float32(p.tt_tolerance), prep, per, nthr, block, gathers, fold,
                np.zeros_like(fold),
                counts, p.th2[::node].copy(), np.ascontiguousarray(p.sl2[:, ::node]), p.tt_blocks,
                p.tt_times, interpolation_bound_constants(p), positions,
                np.empty((nchunk, nn), np.float32), np.empty((nchunk, nn), np.uint8), WINDOW_LOADS,
            )  # fmt: skip
        else:
            _migrate_plain(
                *geometry, premax, sufmin, fp[0], fp[1], fp[2], uniform, p.ap[0], fp[3], prep,
                per, nthr, block, gathers, fold, np.zeros_like(fold), counts, windows,
                positions, work[1],
            )  # fmt: skip
    return int(counts.sum())


def migrate(
    batch: TraceBatch,
    target: ImageTarget,
    options: KernelOptions,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> int:
    g, f = column_views(target, gathers, fold)
    return run_prepared(prepare(batch, target, options, TRACE_OPS), g, f, options.threads)
