"""Compiled versions of the per-trace preparation of :mod:`pstm.kernels.operator`
(oversampling and the anti-aliasing levels): the same arithmetic, in the same order where
it decides rounding, parallel over traces.

Parallel contract: ``prange`` runs over traces (the whole-array oversampling: over rows of
its work arrays, each with its traces); each iteration writes only its traces' rows of the
outputs and its own rows of the work arrays (float32 for the oversampling, float64 for the
anti-aliasing levels; allocated once per call, outside the loop).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from pstm.kernels.operator import SINC_HALF_TAPS, TraceOps, sinc_phases

#: Taps of the compiled oversampling, written out in its loop (:func:`_oversample_row`).
OVERSAMPLE_TAPS = 8
if 2 * SINC_HALF_TAPS != OVERSAMPLE_TAPS:  # pragma: no cover - a change of the interpolator
    raise ImportError(
        f"pstm.kernels._numba_traces writes out {OVERSAMPLE_TAPS} oversampling taps, "
        f"the interpolator has {2 * SINC_HALF_TAPS}: update _oversample_row"
    )

#: Work rows of the compiled oversampling (each parallel task owns one and its traces): a
#: few per thread for load balance, few enough that they stay in cache.
OVERSAMPLE_BLOCKS = 64


@njit(cache=True, inline="always")
def _oversample_row(
    data: NDArray[np.float32],
    k: int,
    taps: NDArray[np.float32],
    half: int,
    padded: NDArray[np.float32],
    acc: NDArray[np.float32],
    b: int,
    out: NDArray[np.float32],
    row: int,
) -> None:
    """out[row, m * K + p] = sum_j taps[p, j] data[k, m + j - half + 1] (zero outside),
    summed in float32 in tap order like the numpy version, with work rows ``padded[b]``
    (ns + 2 half: the zero-padded trace) and ``acc[b]`` (ns); the loops over output samples
    have no branch and vectorise. Each phase is one pass with its 8 taps in registers
    (OVERSAMPLE_TAPS; 2,000 traces of 709 samples, x8: 3.2 ms on 2 threads against 4.8 ms
    for one pass per tap), the same sums in the same order."""
    ns = data.shape[1]
    factor = taps.shape[0]
    for i in range(half):
        padded[b, i] = 0.0
        padded[b, half + ns + i] = 0.0
    for m in range(ns):
        padded[b, half + m] = data[k, m]
    for p in range(factor):
        t0, t1, t2, t3 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3]
        t4, t5, t6, t7 = taps[p, 4], taps[p, 5], taps[p, 6], taps[p, 7]
        for m in range(ns):
            s = t0 * padded[b, m + 1]
            s += t1 * padded[b, m + 2]
            s += t2 * padded[b, m + 3]
            s += t3 * padded[b, m + 4]
            s += t4 * padded[b, m + 5]
            s += t5 * padded[b, m + 6]
            s += t6 * padded[b, m + 7]
            s += t7 * padded[b, m + 8]
            acc[b, m] = s
        for m in range(ns):
            out[row, m * factor + p] = acc[b, m]


@njit(parallel=True, cache=True)
def _oversample(
    data: NDArray[np.float32],
    taps: NDArray[np.float32],
    half: int,
    padded: NDArray[np.float32],
    acc: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    """:func:`_oversample_row` of every trace k into out[k]; ``prange`` runs over the rows b
    of the work arrays: task b owns row b and traces b, b + nblk, ..."""
    ntr = data.shape[0]
    nblk = padded.shape[0]
    for b in prange(nblk):
        for k in range(b, ntr, nblk):
            _oversample_row(data, k, taps, half, padded, acc, b, out, k)


@njit(cache=True, inline="always")
def _triangle_row(
    data: NDArray[np.float32],
    k: int,
    m: int,
    lengths: NDArray[np.int64],
    pad: int,
    work: NDArray[np.float64],
    b: int,
    out: NDArray[np.float32],
    row: int,
    first: int,
    n0: int,
    n1: int,
) -> None:
    """out[row, l (m + 1) + n] for levels l >= ``first`` and samples n0 <= n < n1 (<= m):
    the triangle of half-length lengths[l] centred on sample n of data[k, :m] (see
    :func:`pstm.kernels.operator.triangle_filtered`), and a zero at n = m; the other
    samples of each level are not written. ``work[b]`` (float64, at least m + 2 pad) holds
    the double running sum of the trace from sample a = max(n0 - pad, 0) on: a second
    difference at +-j around n >= a + j is the same whether the sums start at a or at 0
    (the sums differ by a straight line in n), so a trace's levels cost what its read range
    (LEVEL_RANGES) costs. The reference removes the first sum's mean and the second's
    straight-line trend, which the second differences cancel: here they are not removed
    (RAW_SUMS), so the levels equal the reference's up to float64 rounding, which grows
    about as eps W^2 / j^2 times the trace's offset over the level's value (W the summed
    length, j the half-length): 1e-9 relative with 32,000 samples and an offset 10^4 times
    the signal, below the float32 rounding of the levels (tested). ``data`` may be ``out``
    itself (its level 0: the trace, LEVEL0_IN_PLACE) with ``first`` = 1. Requires
    pad > max(lengths): the second differences index the work row without sign
    (c - j >= 0), and numba checks no bounds."""
    a = max(n0 - pad, 0)
    hi = min(n1 + pad, m)  # samples a..hi-1 are summed; zeros after them
    width = n1 - a + 2 * pad  # work entries the second differences read
    for i in range(pad):
        work[b, i] = 0.0
    first_sum, second = 0.0, 0.0
    i = pad
    stop = pad + hi - a
    # SUMS4: four samples per step, each running sum advanced by one add of the step's own
    # partial sums, so their serial chains take a quarter of the adds
    while i + 4 <= stop:
        x0 = np.float64(data[k, i - pad + a])
        p1 = x0 + np.float64(data[k, i - pad + a + 1])
        p2 = p1 + np.float64(data[k, i - pad + a + 2])
        p3 = p2 + np.float64(data[k, i - pad + a + 3])
        e0, e1, e2, e3 = first_sum + x0, first_sum + p1, first_sum + p2, first_sum + p3
        q1 = e0 + e1
        q2 = q1 + e2
        work[b, i] = second + e0
        work[b, i + 1] = second + q1
        work[b, i + 2] = second + q2
        second = second + (q2 + e3)
        work[b, i + 3] = second
        first_sum = first_sum + p3
        i += 4
    for j in range(i, stop):
        first_sum += np.float64(data[k, j - pad + a])
        second += first_sum
        work[b, j] = second
    for j in range(stop, width):
        second += first_sum
        work[b, j] = second
    stride = m + 1
    # unsigned sample indices: no negative-index wrap-around, so these loops vectorise
    # (2,000 traces of 5,672 resampled samples, 5 levels: 3x faster than signed ones);
    # n >= n0 >= a, and c - j >= 0 (n - a >= pad > j or a = 0)
    shift = np.uint64(pad - 1)
    ua = np.uint64(a)
    for level in range(first, lengths.shape[0]):
        j = lengths[level]
        base = np.uint64(level * stride)
        out[row, base + np.uint64(m)] = 0.0
        if j == 1:
            for n in range(np.uint64(n0), np.uint64(n1)):
                out[row, base + n] = data[k, n]
            continue
        jj = np.float64(j * j)
        ju = np.uint64(j)
        for n in range(np.uint64(n0), np.uint64(n1)):
            c = n - ua + shift
            out[row, base + n] = np.float32(
                (work[b, c + ju] - 2.0 * work[b, c] + work[b, c - ju]) / jj
            )


@njit(parallel=True, cache=True)
def _triangle_levels(
    data: NDArray[np.float32],
    lengths: NDArray[np.int64],
    pad: int,
    work: NDArray[np.float64],
    out: NDArray[np.float32],
) -> None:
    """:func:`_triangle_row` of every trace k into out[k] (ntr, L (M + 1)), every sample;
    ``work`` is one float64 row per trace (ntr, M + 2 pad)."""
    ntr, m = data.shape
    for k in prange(ntr):
        _triangle_row(data, k, m, lengths, pad, work, k, out, k, 0, 0, m)


@njit(parallel=True, cache=True)
def prepare_block(
    prep: tuple,
    k0: int,
    k1: int,
    rows: NDArray[np.float32],
    aa_rows: NDArray[np.float32],
) -> None:
    """Traces k0..k1-1 of the recorded traces, resampled into ``rows[k - k0]`` (M + 1, one
    zero past the end) or, when ``aa_rows`` has rows, into their level 0 (the first M + 1
    entries of ``aa_rows[k - k0]``, LEVEL0_IN_PLACE: ``rows`` is then not written) and their
    other anti-aliasing levels after it, on the samples of the trace's read range
    (LEVEL_RANGES, ``pstm.kernels._numba.read_ranges``): what :func:`oversample` and
    :func:`triangle_filtered` compute, for one block of traces of the numba kernels (their
    TRACE_BLOCKS), into buffers that stay in cache. ``prep`` = (recorded traces (ntr, ns),
    oversampling taps (K, 2 half), its work rows padded (block, ns + 2 half) and acc
    (block, ns), the anti-aliasing half-lengths, their float64 work rows (block, M + 2 pad),
    pad > max(half-lengths), the read ranges (ntr, 2)): see :func:`_triangle_row` and
    ``pstm.kernels._numba._block_buffers``. ``prange`` runs over the block's traces; each
    owns its rows of every buffer."""
    raw, taps, padded, acc, lengths, work, ranges = prep
    half = (padded.shape[1] - raw.shape[1]) // 2
    m = raw.shape[1] * taps.shape[0]
    pad = (work.shape[1] - m) // 2
    antialias = aa_rows.shape[0] > 0
    for i in prange(k1 - k0):
        out = aa_rows if antialias else rows  # LEVEL0_IN_PLACE: level 0 is the trace
        if taps.shape[0] == 1:  # no oversampling: the recorded samples, as prepare() copies
            for n in range(m):
                out[i, n] = raw[k0 + i, n]
        else:
            _oversample_row(raw, k0 + i, taps, half, padded, acc, i, out, i)
        out[i, m] = 0.0
        if antialias:
            n0, n1 = ranges[k0 + i, 0], ranges[k0 + i, 1]
            _triangle_row(aa_rows, i, m, lengths, pad, work, i, aa_rows, i, 1, n0, n1)


def oversample(
    data: NDArray[np.float32], factor: int, out: NDArray[np.float32]
) -> NDArray[np.float32]:
    """:func:`pstm.kernels.operator.oversample` into ``out`` (ntr, ns * factor), compiled."""
    ntr, ns = data.shape
    nblk = max(1, min(ntr, OVERSAMPLE_BLOCKS))
    padded = np.empty((nblk, ns + 2 * SINC_HALF_TAPS), np.float32)
    acc = np.empty((nblk, ns), np.float32)
    taps = sinc_phases(factor).astype(np.float32)
    _oversample(np.ascontiguousarray(data), taps, SINC_HALF_TAPS, padded, acc, out)
    return out


def triangle_filtered(data: NDArray[np.float32], lengths: tuple[int, ...]) -> NDArray[np.float32]:
    ntr, m = data.shape
    pad = max(lengths) + 1
    out = np.empty((ntr, len(lengths) * (m + 1)), dtype=np.float32)
    work = np.empty((ntr, m + 2 * pad), dtype=np.float64)
    _triangle_levels(np.ascontiguousarray(data), np.asarray(lengths, np.int64), pad, work, out)
    return out.reshape(ntr, len(lengths), m + 1)


#: The trace operations of the numba backend, for :func:`pstm.kernels.operator.prepare`.
NUMBA_TRACE_OPS = TraceOps(oversample=oversample, triangle_filtered=triangle_filtered)
#: The same, resampling and building the levels per block of traces inside the kernels
#: (:func:`prepare_block`): the numba backend's.
NUMBA_IN_KERNEL_OPS = TraceOps(
    oversample=oversample, triangle_filtered=triangle_filtered, in_kernel=True
)
