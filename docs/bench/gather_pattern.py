"""Cost of one gathered load per element against the pattern of its indices
(docs/benchmarks.md): a vectorised numba loop ``out[j] += row[idx[j]]`` over a row of the
size of one resampled trace of ``pstm bench`` (5,672 float32, 22 KB, in L1), one thread.

    NUMBA_NUM_THREADS=1 .venv/bin/python docs/bench/gather_pattern.py
"""

import time

import numpy as np
from numba import njit

NONNEG31 = np.uint32(0x7FFFFFFF)  # as pstm.kernels._numba: 32-bit indices, 16 lanes


@njit(fastmath=True)
def gather_add(row, idx, out, reps):  # type: ignore[no-untyped-def]
    for _ in range(reps):
        for j in range(idx.shape[0]):
            out[j] += row[np.uint32(idx[j]) & NONNEG31]


def main() -> None:
    rng = np.random.default_rng(0)
    row = rng.standard_normal(5672).astype(np.float32)
    n, reps = 4096, 2000
    patterns = {
        "stride 8 (consecutive outputs, stretch 1, 8x oversampled)": np.arange(n) * 8 % 5600,
        "stride 5": np.arange(n) * 5 % 5600,
        "stride 1 (16 lanes in one or two cache lines)": np.arange(n) % 5600,
        "random": rng.integers(0, 5600, n),
        "one index": np.zeros(n),
    }
    for name, idx in patterns.items():
        idx32 = idx.astype(np.int32)
        out = np.zeros(n, np.float32)
        gather_add(row, idx32, out, 1)
        best = min(_timed(row, idx32, out, reps) for _ in range(5))
        print(f"{best / (reps * n) * 1e9:5.2f} ns per element  {name}")


def _timed(row: np.ndarray, idx: np.ndarray, out: np.ndarray, reps: int) -> float:
    t = time.perf_counter()
    gather_add(row, idx, out, reps)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
