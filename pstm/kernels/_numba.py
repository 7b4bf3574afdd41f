"""Numba CPU backend: the reference operator, compiled and parallel over output columns.

Parallel contract: ``prange`` runs over output columns (bins); each iteration owns its
column of ``gathers``/``fold`` and its slot of ``counts``, so no two threads write the
same memory and no atomics are needed. Nothing is allocated inside the parallel loop.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from pstm.kernels import ImageTarget, KernelOptions, TraceBatch


@njit(parallel=True, fastmath=True, cache=True)
def _migrate_columns(
    data: NDArray[np.float32],  # (ntr, ns)
    t0_in: float,
    dt_in: float,
    sx: NDArray[np.float64],  # (ntr,) relative to the tile origin
    sy: NDArray[np.float64],
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
    cls: NDArray[np.int32],
    x: NDArray[np.float64],  # (ncol,) relative to the tile origin
    y: NDArray[np.float64],
    vrms: NDArray[np.float32],  # (ncol, nt)
    t0_out: float,
    dt_out: float,
    aperture2: float,
    gathers: NDArray[np.float32],  # (ncls, ncol, nt)
    fold: NDArray[np.int32],  # (ncls, ncol, nt)
    counts: NDArray[np.int64],  # (ncol,)
) -> None:
    ntr, ns = data.shape
    ncol, nt = vrms.shape
    inv_dt = np.float32(1.0 / dt_in)
    s_max = np.float32(ns - 1)
    for c in prange(ncol):
        xc, yc = x[c], y[c]
        n = 0
        for k in range(ntr):
            mx = 0.5 * (sx[k] + rx[k]) - xc
            my = 0.5 * (sy[k] + ry[k]) - yc
            if mx * mx + my * my > aperture2:
                continue
            ds2 = np.float32((sx[k] - xc) ** 2 + (sy[k] - yc) ** 2)
            dr2 = np.float32((rx[k] - xc) ** 2 + (ry[k] - yc) ** 2)
            g = cls[k]
            for it in range(nt):
                th = np.float32(0.5 * (t0_out + it * dt_out))
                th2 = th * th
                v = vrms[c, it]
                s2 = np.float32(1.0) / (v * v)
                t = np.sqrt(th2 + ds2 * s2) + np.sqrt(th2 + dr2 * s2)
                s = (t - np.float32(t0_in)) * inv_dt
                if s >= 0 and s < s_max:
                    i = int(s)
                    w = s - np.float32(i)
                    gathers[g, c, it] += (np.float32(1.0) - w) * data[k, i] + w * data[k, i + 1]
                    fold[g, c, it] += 1
                    n += 1
        counts[c] = n


def migrate(
    batch: TraceBatch,
    target: ImageTarget,
    options: KernelOptions,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> int:
    nx, ny, nt = target.shape
    numba.set_num_threads(min(options.threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    ox, oy = float(target.x.mean()), float(target.y.mean())  # local origin keeps float32 exact
    ncls = gathers.shape[0]
    g = gathers.reshape(ncls, nx * ny, nt)
    f = fold.reshape(ncls, nx * ny, nt)
    counts = np.zeros(nx * ny, dtype=np.int64)
    _migrate_columns(
        np.ascontiguousarray(batch.data, dtype=np.float32),
        float(batch.t0),
        float(batch.dt),
        batch.sx - ox,
        batch.sy - oy,
        batch.rx - ox,
        batch.ry - oy,
        np.ascontiguousarray(batch.offset_class, dtype=np.int32),
        (target.x - ox).ravel(),
        (target.y - oy).ravel(),
        np.ascontiguousarray(target.vrms.reshape(nx * ny, nt), dtype=np.float32),
        float(target.t0),
        float(target.dt),
        float(options.aperture_m) ** 2,
        g,
        f,
        counts,
    )
    assert np.shares_memory(g, gathers) and np.shares_memory(f, fold), "outputs must be contiguous"
    return int(counts.sum())
