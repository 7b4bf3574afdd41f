"""WINDOW_LOADS: the kernels' reads from windows of the trace in registers
(pstm/kernels/_numba_windows.py) give the same image as the gathers, bit for bit: the
plain and features kernels' positions (add_read16) and the anti-aliased kernel's level-row
indices (add_indexed16, AA_WINDOWS)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

import pstm.kernels._numba as numba_kernels
from pstm.config import Backend, Weights
from pstm.kernels import ImageTarget, TraceBatch
from pstm.kernels._numba_windows import (
    WINDOW_LANES,
    WINDOW_SAMPLES,
    WINDOW_SLACK,
    WINDOWS_MAX,
    add_indexed16,
    add_read16,
    window_loads_available,
)
from tests.test_kernels import random_problem, run, with_features


@njit(cache=False)
def _add(gathers, g, c, it, rows, k, positions, i, w, smax, lerp):  # type: ignore[no-untyped-def]
    add_read16(gathers, g, c, it, rows, k, positions, i, w, smax, lerp)


@njit(cache=False)
def _add_indexed(gathers, g, c, it, rows, k, indices, i, weights):  # type: ignore[no-untyped-def]
    add_indexed16(gathers, g, c, it, rows, k, indices, i, weights)


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
@pytest.mark.parametrize("read", ["nearest", "linear"])
def test_add_read16_reads_the_samples_the_loops_read(case: str, w: float, read: str) -> None:
    """The permuted windows (or, for wide or unordered indices, the scalar loads) read
    exactly what the fused loops read, in float32: the nearest sample,
    out += rows[k, int(p + 0.5)] * w, or the linear read between q = int(p) and q + 1,
    out += (a + (p - q) (rows[k, q + 1] - a)) * w; p the position clamped to [0, smax]."""
    rng = np.random.default_rng(len(case))
    pos = _positions(case, rng)
    it, k, i = 5, 2, 1
    positions = np.zeros((3, it + WINDOW_LANES + 3), np.float32)
    positions[i, it : it + WINDOW_LANES] = pos
    ns = int(pos.max()) + 3 if case != "beyond_the_ends" else 60
    smax = np.float32(ns - 2)  # the last sample with one after it (the kernels' zero sample)
    flat = np.zeros(4 * ns + WINDOW_SLACK, np.float32)  # the kernel's allocation: slack after
    flat[: 4 * ns] = rng.standard_normal(4 * ns)
    flat[4 * ns :] = np.nan  # never selected
    rows = flat[: 4 * ns].reshape(4, ns)
    gathers = rng.standard_normal((2, 3, it + WINDOW_LANES + 4)).astype(np.float32)
    expected = gathers.copy()
    p = np.clip(pos, np.float32(0.0), smax)
    if read == "nearest":
        value = rows[k, (p + np.float32(0.5)).astype(np.int32)]
    else:
        q = p.astype(np.int32)
        a = rows[k, q]
        value = a + (p - q.astype(np.float32)) * np.float32(1.0) * (rows[k, q + 1] - a)
    expected[1, 2, it : it + WINDOW_LANES] += value * np.float32(w)
    lerp = np.float32(0.0 if read == "nearest" else 1.0)
    _add(gathers, 1, 2, it, rows, k, positions, i, np.float32(w), smax, lerp)
    np.testing.assert_array_equal(gathers, expected)


#: level-row indices of 16 output samples (a row of 4 levels of 200 samples each): within one
#: level, across a level change (down by a row, as the dip falls with time), up a level,
#: and the position cases' spans
INDEX_CASES = {
    "one_level": 200 + np.arange(WINDOW_LANES) * 7,
    "level_down": np.r_[600 + np.arange(6) * 5, 400 + 30 + np.arange(10) * 5],
    "level_up": np.r_[200 + np.arange(8) * 3, 400 + np.arange(8) * 3],
    "constant": np.full(WINDOW_LANES, 333),
    "span_127": np.r_[np.full(WINDOW_LANES - 1, 10), 137],
    "span_128": np.r_[np.full(WINDOW_LANES - 1, 10), 138],
    "unordered": np.random.default_rng(3).integers(0, 800, WINDOW_LANES),
    "last_sample": 799 - np.arange(WINDOW_LANES)[::-1],
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_add_indexed16_reads_the_samples_the_loop_reads(case: str) -> None:
    """The anti-aliased second pass's read (AA_WINDOWS) adds exactly what its loop adds,
    out += rows[k, index] * weight, in float32, from windows or, where the indices change
    level or span too much, from scalar loads."""
    rng = np.random.default_rng(len(case))
    it, k, i, width = 3, 2, 2, 800  # the last row: "last_sample" reads into the slack
    indices = np.zeros((3, it + WINDOW_LANES + 2), np.uint32)
    indices[i, it : it + WINDOW_LANES] = INDEX_CASES[case]
    weights = rng.uniform(0.0, 2.0, indices.shape).astype(np.float32)
    flat = np.full(3 * width + WINDOW_SLACK, np.nan, np.float32)  # slack: never selected
    flat[: 3 * width] = rng.standard_normal(3 * width)
    rows = flat[: 3 * width].reshape(3, width)
    gathers = rng.standard_normal((2, 2, it + WINDOW_LANES + 1)).astype(np.float32)
    expected = gathers.copy()
    window = slice(it, it + WINDOW_LANES)
    expected[1, 0, window] += rows[k, indices[i, window]] * weights[i, window]
    _add_indexed(gathers, 1, 0, it, rows, k, indices, i, weights)
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


#: the features kernel's nearest-sample loop: true-amplitude weights, a stretch mute and a
#: constant aperture's taper
WEIGHTS = {"weights": Weights.TRUE_AMPLITUDE, "max_stretch": 0.6, "aperture_taper_m": 150.0}


@pytest.mark.parametrize(
    "features",
    [
        "plain",
        "aperture_taper",
        "interpolated_traveltime",
        "tapers",
        "weights",
        "linear",
        "oversampled_linear",
        "everything",  # anti-aliasing: the level rows' reads (AA_WINDOWS)
    ],
)
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
    options = (
        dataclasses.replace(options, **WEIGHTS)
        if features == "weights"
        else with_features(options, features)
    )
    (g0, f0, n0), (g1, f1, n1) = _both(monkeypatch, batch, target, options)
    assert n0 > 0 and np.abs(g0).max() > 0
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(f1, f0)
    assert n1 == n0


def test_the_windows_are_permutes_where_the_cpu_has_avx512() -> None:
    """On an AVX-512 target the read compiles to two-register permutes (else the fused
    gather loops run, and the intrinsic compiles to scalar loads)."""
    if not window_loads_available():
        pytest.skip("numba's CPU target has no AVX-512: the kernels keep their gathers")
    test_add_read16_reads_the_samples_the_loops_read("increasing", 1.0, "nearest")  # compiles
    asm = _add.inspect_asm(_add.signatures[0])
    assert "vpermt2ps" in asm or "vpermi2ps" in asm


_SCRIPT = textwrap.dedent(
    """
    import mmap, ctypes, sys
    import numpy as np
    from numba import njit
    from pstm.kernels._numba_windows import WINDOW_LANES, add_read16, window_loads_available

    @njit(cache=False)
    def add(gathers, rows, positions, k, smax):
        add_read16(gathers, 0, 0, 0, rows, k, positions, 0, np.float32(1.0), smax, np.float32(0))

    mode, slack = sys.argv[1], int(sys.argv[2])
    ns, nrow, page = 300, 3, mmap.PAGESIZE
    need = (nrow * ns + slack) * 4
    pages = -(-need // page) + 1
    buf = mmap.mmap(-1, pages * page)
    libc = ctypes.CDLL(None)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    guard = base + (pages - 1) * page  # the last page: no access
    assert libc.mprotect(ctypes.c_void_p(guard), page, 0) == 0
    start = (pages - 1) * page - need  # the rows and their slack end where the guard starts
    flat = np.frombuffer(buf, np.float32, nrow * ns, start)
    rows = flat.reshape(nrow, ns)
    rows[:] = np.arange(nrow * ns, dtype=np.float32).reshape(nrow, ns)
    smax = np.float32(ns - 1)
    positions = np.zeros((1, WINDOW_LANES), np.float32)
    gathers = np.zeros((1, 1, WINDOW_LANES), np.float32)
    for first in (ns - 1, ns - 16, ns - 100, ns - 127):  # 1 to 4 windows up to the last sample
        positions[0] = np.linspace(first, ns - 1, WINDOW_LANES)
        gathers[:] = 0
        add(gathers, rows, positions, nrow - 1, smax)
        expected = rows[nrow - 1, (positions[0] + np.float32(0.5)).astype(np.int32)]
        assert np.array_equal(gathers[0, 0], expected), (first, gathers, expected)
    print(mode, window_loads_available())
    """
)


def _run_script(slack: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, "run", str(slack)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_the_last_row_reads_stay_inside_the_slack() -> None:
    """Windows at the last sample of the buffer's last row, with a page that faults on any
    access right after WINDOW_SLACK floats: no read reaches it (and without the slack one
    does, where the windows are permutes: the test can fail)."""
    done = _run_script(WINDOW_SLACK)
    assert done.returncode == 0, done.stderr
    if window_loads_available():
        assert _run_script(0).returncode != 0, "a window must load past the row's end"


def test_without_avx512_the_read_is_scalar_loads_and_the_same() -> None:
    """With numba's target set to a CPU without AVX-512 (as NUMBA_CPU_NAME does for a cache
    shared across a cluster), the read compiles to scalar loads and reads the same."""
    done = _run_script(
        WINDOW_SLACK, {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma,+avx,+sse4.2"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["run", "False"]
