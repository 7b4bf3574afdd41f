"""Compiled versions of the per-trace preparation of :mod:`pstm.kernels.operator`
(oversampling and the anti-aliasing levels): the same arithmetic, in the same order where
it decides rounding, parallel over traces.

Parallel contract: ``prange`` runs over traces (the oversampling: over blocks of traces,
each with its own rows of the work arrays); each iteration writes only its traces' rows of
the outputs and its own rows of the float64 work arrays (allocated once per call, outside
the loop).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from pstm.kernels.operator import SINC_HALF_TAPS, TraceOps, sinc_phases

#: Work rows of the compiled oversampling (each parallel task owns one and its traces): a
#: few per thread for load balance, few enough that they stay in cache.
OVERSAMPLE_BLOCKS = 64


@njit(parallel=True, cache=True)
def _oversample(
    data: NDArray[np.float32],
    taps: NDArray[np.float32],
    half: int,
    padded: NDArray[np.float32],
    acc: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    """out[k, m * K + p] = sum_j taps[p, j] data[k, m + j - half + 1] (zero outside), summed
    in float32 in tap order like the numpy version. ``prange`` runs over the rows b of the
    work arrays ``padded`` (nblk, ns + 2 half: the zero-padded trace) and ``acc`` (nblk, ns):
    task b owns row b and traces b, b + nblk, ...; the loops over output samples have no
    branch and vectorise."""
    ntr, ns = data.shape
    factor, ntaps = taps.shape
    nblk = padded.shape[0]
    for b in prange(nblk):
        for i in range(padded.shape[1]):
            padded[b, i] = 0.0
        for k in range(b, ntr, nblk):
            for m in range(ns):
                padded[b, half + m] = data[k, m]
            for p in range(factor):
                for m in range(ns):
                    acc[b, m] = 0.0
                for j in range(ntaps):
                    tap = taps[p, j]
                    for m in range(ns):
                        acc[b, m] += tap * padded[b, m + j + 1]
                for m in range(ns):
                    out[k, m * factor + p] = acc[b, m]


@njit(parallel=True, cache=True)
def _triangle_levels(
    data: NDArray[np.float32],
    lengths: NDArray[np.int64],
    pad: int,
    work: NDArray[np.float64],
    out: NDArray[np.float32],
) -> None:
    """out[k, l, n] = triangle of half-length lengths[l] centred on sample n (see
    :func:`pstm.kernels.operator.triangle_filtered`); ``work`` is one float64 row per trace
    (ntr, M + 2 pad) for the double running sum."""
    ntr, m = data.shape
    width = m + 2 * pad
    u_mean = (width - 1) / 2.0
    u_norm = 0.0
    for i in range(width):
        u_norm += (i - u_mean) ** 2
    for k in prange(ntr):
        row = work[k]
        acc = 0.0
        for i in range(width):  # first running sum
            if pad <= i < pad + m:
                acc += np.float64(data[k, i - pad])
            row[i] = acc
        mean = 0.0
        for i in range(width):
            mean += row[i]
        mean /= width
        acc = 0.0
        for i in range(width):  # second running sum of the mean-free first
            acc += row[i] - mean
            row[i] = acc
        mean, slope = 0.0, 0.0
        for i in range(width):  # straight-line trend
            mean += row[i]
            slope += row[i] * (i - u_mean)
        mean /= width
        slope /= u_norm
        for i in range(width):
            row[i] -= mean + slope * (i - u_mean)
        for level in range(lengths.shape[0]):
            j = lengths[level]
            if j == 1:
                out[k, level, :m] = data[k]
                continue
            jj = np.float64(j * j)
            for n in range(m):
                b = n + pad - 1
                out[k, level, n] = np.float32((row[b + j] - 2.0 * row[b] + row[b - j]) / jj)


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
    out = np.zeros((ntr, len(lengths), m + 1), dtype=np.float32)
    work = np.empty((ntr, m + 2 * pad), dtype=np.float64)
    _triangle_levels(np.ascontiguousarray(data), np.asarray(lengths, np.int64), pad, work, out)
    return out


#: The trace operations of the numba backend, for :func:`pstm.kernels.operator.prepare`.
NUMBA_TRACE_OPS = TraceOps(oversample=oversample, triangle_filtered=triangle_filtered)
