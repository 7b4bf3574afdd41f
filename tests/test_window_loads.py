"""WINDOW_LOADS: the plain kernel's nearest-sample reads from windows of the trace in
registers (pstm/kernels/_numba_windows.py) give the same image as the gathers, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numba import njit

import pstm.kernels._numba as numba_kernels
from pstm.config import Backend
from pstm.kernels import ImageTarget, TraceBatch
from pstm.kernels._numba_windows import (
    WINDOW_LANES,
    WINDOW_SAMPLES,
    WINDOW_SLACK,
    WINDOWS_MAX,
    add_nearest16,
)
from tests.test_kernels import random_problem, run, with_features


@njit(cache=False)
def _add(gathers, g, c, it, rows, k, positions, i, w, smax):  # type: ignore[no-untyped-def]
    add_nearest16(gathers, g, c, it, rows, k, positions, i, w, smax)


def _positions(case: str, rng: np.random.Generator) -> np.ndarray:
    start = rng.uniform(0.0, 50.0)
    steps = {
        "increasing": rng.uniform(0.0, 8.0, WINDOW_LANES),
        "constant": np.zeros(WINDOW_LANES),
        "decreasing": -rng.uniform(0.0, 3.0, WINDOW_LANES),
        "unordered": rng.uniform(-20.0, 20.0, WINDOW_LANES),
        # spans just below and at every window boundary, and beyond the last window
        **{
            f"span_{n}": np.r_[np.zeros(WINDOW_LANES - 1), n].astype(np.float64)
            for w in range(1, WINDOWS_MAX + 1)
            for n in (w * WINDOW_SAMPLES - 1, w * WINDOW_SAMPLES)
        },
        "one_step_per_lane": np.ones(WINDOW_LANES),
        # from below the trace's start to past its end (clamped to its first and last sample)
        "beyond_the_ends": np.r_[0.0, np.full(WINDOW_LANES - 1, 5.5)],
    }[case]
    if case == "beyond_the_ends":
        return (np.cumsum(steps) - 3.0).astype(np.float32)
    start += max(0.0, -np.cumsum(steps).min())  # every index >= 0
    return (start + np.cumsum(steps) - steps[0]).astype(np.float32)


CASES = [
    "increasing",
    "constant",
    "decreasing",
    "unordered",
    "one_step_per_lane",
    "beyond_the_ends",
] + [
    f"span_{n}"
    for w in range(1, WINDOWS_MAX + 1)
    for n in (w * WINDOW_SAMPLES - 1, w * WINDOW_SAMPLES)
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("w", [1.0, 0.37])
def test_add_nearest16_reads_the_nearest_samples(case: str, w: float) -> None:
    """The permuted windows (or, for wide or unordered indices, the gather) read exactly the
    samples the fused loop reads: out += rows[k, int(position + 0.5)] * w, in float32."""
    rng = np.random.default_rng(len(case))
    pos = _positions(case, rng)
    it, k, i = 5, 2, 1
    positions = np.zeros((3, it + WINDOW_LANES + 3), np.float32)
    positions[i, it : it + WINDOW_LANES] = pos
    ns = int(pos.max()) + 2 if case != "beyond_the_ends" else 60
    smax = np.float32(ns - 1)
    flat = np.zeros(4 * ns + WINDOW_SLACK, np.float32)  # the kernel's allocation: slack after
    flat[: 4 * ns] = rng.standard_normal(4 * ns)
    flat[4 * ns :] = np.nan  # never selected
    rows = flat[: 4 * ns].reshape(4, ns)
    gathers = rng.standard_normal((2, 3, it + WINDOW_LANES + 4)).astype(np.float32)
    expected = gathers.copy()
    index = (np.clip(pos, np.float32(0.0), smax) + np.float32(0.5)).astype(np.int32)
    expected[1, 2, it : it + WINDOW_LANES] += rows[k, index] * np.float32(w)
    _add(gathers, 1, 2, it, rows, k, positions, i, np.float32(w), smax)
    np.testing.assert_array_equal(gathers, expected)


def _both(monkeypatch: pytest.MonkeyPatch, batch, target, options):  # type: ignore[no-untyped-def]
    results = []
    for flag in (False, True):
        monkeypatch.setattr(numba_kernels, "WINDOW_LOADS", flag)
        results.append(run(Backend.NUMBA, batch, target, options))
    return results


def _coarse_output(batch: TraceBatch, target: ImageTarget) -> tuple[TraceBatch, ImageTarget]:
    """Traces at 1 ms, output at 4 ms: 16 output samples span up to 512 resampled samples,
    more than the windows hold (the gather fallback)."""
    data = np.repeat(batch.data, 4, axis=1)
    return dataclasses.replace(batch, data=data, dt=batch.dt / 4), target


def _steep_velocity(batch: TraceBatch, target: ImageTarget) -> tuple[TraceBatch, ImageTarget]:
    """RMS velocity growing so fast that far traces' positions decrease with output time
    (unordered indices: the gather fallback) in parts of the section."""
    nt = target.vrms.shape[2]
    v = 1400.0 + 20000.0 * np.linspace(0.0, 1.0, nt) ** 2
    vrms = np.broadcast_to(v.astype(np.float32), target.vrms.shape).copy()
    return batch, dataclasses.replace(target, vrms=vrms)


@pytest.mark.parametrize("features", ["plain", "aperture_taper"])
@pytest.mark.parametrize("variant", ["random", "coarse_output", "steep_velocity"])
@pytest.mark.parametrize(
    ("seed", "nx", "ny", "nt", "ntr"), [(1, 6, 5, 120, 150), (2, 9, 1, 150, 200)]
)
def test_window_loads_give_the_same_image(
    monkeypatch: pytest.MonkeyPatch,
    features: str,
    variant: str,
    seed: int,
    nx: int,
    ny: int,
    nt: int,
    ntr: int,
) -> None:
    batch, target, options = random_problem(seed, nx, ny, nt, ntr)
    if variant == "coarse_output":
        batch, target = _coarse_output(batch, target)
    elif variant == "steep_velocity":
        batch, target = _steep_velocity(batch, target)
    (g0, f0, n0), (g1, f1, n1) = _both(monkeypatch, batch, target, with_features(options, features))
    assert n0 > 0 and np.abs(g0).max() > 0
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(f1, f0)
    assert n1 == n0
