"""What one gathered load per contribution costs on this machine (docs/benchmarks.md).

Five loops in the shape of the plain kernel (trace-major: chunks of 8 output columns per
parallel task, 2,000 traces of 5,672 resampled samples, 500 output samples per column),
without any migration logic:

- ``contiguous``: one contiguous load per contribution (the memory-bandwidth ceiling);
- ``gather``: one 16-lane gathered load per contribution, indices read from a table;
- ``sqrt_gather``: two square roots per contribution, then one gathered load;
- ``gather_blocked``, ``sqrt_gather_blocked``: the same with the traces in blocks of about
  1 MB, one parallel region per block (as the numba kernels take them since 2026-11-30).

Usage: ``.venv/bin/python docs/bench/gather_ceiling.py`` (prints contributions per second,
best of 5, with all the machine's threads).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

FASTMATH = {"nnan", "nsz"}
NONNEG31 = np.uint32(0x7FFFFFFF)
COLUMNS = 8


@njit(fastmath=FASTMATH, parallel=True)
def contiguous(data, idx, out, nchunk):  # type: ignore[no-untyped-def]
    ntr, nt = data.shape[0], idx.shape[1]
    for r in prange(nchunk):
        for k in range(ntr):
            for c in range(COLUMNS):
                for it in range(np.uint64(0), np.uint64(nt)):
                    out[r * COLUMNS + c, it] += data[k, it + np.uint64(c)]


@njit(fastmath=FASTMATH, parallel=True)
def gather_blocked(data, idx, out, nchunk, block):  # type: ignore[no-untyped-def]
    """One gathered load per contribution, indices from a table, the traces in blocks of
    ``block`` (one parallel region per block, every chunk in it, as the numba kernels take
    them: TRACE_BLOCKS in pstm.kernels._numba); block = all traces: every chunk reads
    every trace from wherever it is."""
    ntr, nt = data.shape[0], idx.shape[1]
    for k0 in range(0, ntr, block):
        for r in prange(nchunk):
            for k in range(k0, min(ntr, k0 + block)):
                for c in range(COLUMNS):
                    for it in range(np.uint64(0), np.uint64(nt)):
                        out[r * COLUMNS + c, it] += data[k, idx[k, it] & NONNEG31]


@njit(fastmath=FASTMATH, parallel=True)
def sqrt_gather_blocked(data, th2, a2, inv_h, out, nchunk, block):  # type: ignore[no-untyped-def]
    """Two square roots per contribution, then one gathered load; blocks as in
    ``gather_blocked``."""
    ntr, nt = data.shape[0], th2.shape[0]
    for k0 in range(0, ntr, block):
        for r in prange(nchunk):
            for k in range(k0, min(ntr, k0 + block)):
                for c in range(COLUMNS):
                    a = a2[k] + np.float32(c) * np.float32(1e-3)
                    for it in range(np.uint64(0), np.uint64(nt)):
                        q = th2[it]
                        t = np.sqrt(q + a) + np.sqrt(q + a * np.float32(0.5))
                        i = np.uint32(np.int32(t * inv_h + np.float32(0.5))) & NONNEG31
                        out[r * COLUMNS + c, it] += data[k, i]


def main() -> None:
    ntr, ns, nt, nchunk = 2000, 709 * 8, 500, 25
    rng = np.random.default_rng(0)
    data = rng.standard_normal((ntr, ns)).astype(np.float32)
    th2 = ((np.arange(nt) * 0.004 / 2) ** 2).astype(np.float32)
    a2 = rng.uniform(0.0, 0.3, ntr).astype(np.float32)
    inv_h = np.float32(8 / 0.004)
    t = np.sqrt(th2[None] + a2[:, None]) + np.sqrt(th2[None] + 0.5 * a2[:, None])
    idx = np.minimum((t * inv_h + 0.5).astype(np.uint32), ns - 1)
    out = np.zeros((nchunk * COLUMNS, nt), np.float32)
    block = (1 << 20) // (ns * 4)  # traces per block, as TRACE_BLOCK_BYTES gives
    runs = {
        "contiguous": lambda: contiguous(data, idx, out, nchunk),
        "gather": lambda: gather_blocked(data, idx, out, nchunk, ntr),
        "sqrt_gather": lambda: sqrt_gather_blocked(data, th2, a2, inv_h, out, nchunk, ntr),
        "gather_blocked": lambda: gather_blocked(data, idx, out, nchunk, block),
        "sqrt_gather_blocked": lambda: sqrt_gather_blocked(
            data, th2, a2, inv_h, out, nchunk, block
        ),
    }
    for name, run in runs.items():
        run()  # compile
        best = min(_timed(run) for _ in range(5))
        print(f"{name:12} {nchunk * COLUMNS * ntr * nt / best:.3g} contributions/s")


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
