"""Cost of each imaging feature in "everything" (docs/benchmarks.md): the benchmark's 2D
line (`pstm bench`'s problem) with every feature on, then with one feature off at a time;
best of 7 calls each, after a warm-up call.

Usage: NUMBA_NUM_THREADS=2 python docs/bench/feature_costs.py
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from pstm.bench import Problem, make_problem, options_for
from pstm.config import AntiAlias, Backend, Interpolation, Weights
from pstm.kernels import KernelOptions, get_kernel

NX, NT, TRACES = 200, 500, 2000
VARIANTS: dict[str, dict[str, Any]] = {
    "everything": {},
    "no aperture taper": {"aperture_taper_m": 0.0},
    "no angle taper": {"angle_taper_deg": 0.0},
    "no tapers": {"aperture_taper_m": 0.0, "angle_taper_deg": 0.0},
    "no angle limit": {"max_angle_deg": 90.0, "angle_taper_deg": 0.0},
    "no anti-aliasing": {"antialias": AntiAlias.NONE},
    "no weights": {"weights": Weights.NONE},
    "no stretch mute": {"max_stretch": None},
    "one offset class": {"n_offset_classes": 1},
}


def best_seconds(problem: Problem, options: KernelOptions, repeat: int = 7) -> tuple[float, int]:
    kernel = get_kernel(Backend.NUMBA)
    shape = (options.n_offset_classes, NX, 1, NT)

    def once() -> tuple[float, int]:
        gathers, fold = np.zeros(shape, np.float32), np.zeros(shape, np.int32)
        t0 = time.perf_counter()
        n = kernel(problem.batch, problem.target, options, gathers, fold)
        return time.perf_counter() - t0, n

    once()
    return min(once() for _ in range(repeat))


def main() -> None:
    base = options_for("everything", Interpolation.OVERSAMPLED_NEAREST, 8, 2)
    problem = make_problem(TRACES, NX, 1, NT)
    for name, change in VARIANTS.items():
        seconds, n = best_seconds(problem, dataclasses.replace(base, **change))
        print(f"{name:18} {seconds:.4f} s  {n:.3g} contributions")


if __name__ == "__main__":
    main()
