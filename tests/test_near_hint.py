"""NEAR_HINT: the plain kernels' searches for a pair's last proven-inside sample and its
first sample past the trace's end (one function, :func:`_first_above`, on the running max
or the suffix min of 1/v^2) give the same index from any hint as a scan does; so does
APERTURE_HINT's search of the aperture tables (:func:`_first_at_least`)."""

from __future__ import annotations

import numpy as np
import pytest

from pstm.kernels._numba import _first_above, _first_at_least, _position


def _scan(th2, s2, c, ds2, dr2, t0_in, inv_h, smax, it0) -> int:  # type: ignore[no-untyped-def]
    """The first it >= it0 whose position exceeds smax, one sample after the other."""
    for it in range(it0, th2.shape[0]):
        if _position(th2[it], s2[c, it], ds2, dr2, t0_in, inv_h) > smax:
            return it
    return int(th2.shape[0])


@pytest.mark.parametrize("seed", range(6))
def test_first_above_equals_a_scan_from_any_hint(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nt = int(rng.integers(2, 90))
    tau = np.sort(rng.uniform(0.0, 3.0, nt)) + np.arange(nt) * 1e-3
    tau[nt // 3 : nt // 2] = tau[nt // 3]  # a plateau: positions repeat
    th2 = ((tau / 2.0) ** 2).astype(np.float32)
    # nondecreasing slowness rows (a running max of 1/v^2), two columns
    s2 = np.maximum.accumulate(rng.uniform(1.5e-7, 4e-7, (2, nt)), axis=1).astype(np.float32)
    f32 = np.float32
    for _ in range(40):
        c = int(rng.integers(0, 2))
        ds2, dr2 = f32(rng.uniform(0, 4e6)), f32(rng.uniform(0, 4e6))
        t0_in, inv_h = f32(0.0), f32(rng.uniform(100.0, 2000.0))
        ends = [_position(th2[i], s2[c, i], ds2, dr2, t0_in, inv_h) for i in (0, nt - 1)]
        smax = f32(rng.uniform(ends[0] - 5.0, ends[1] + 5.0))  # the answer anywhere, or none
        if rng.random() < 0.3:  # exactly a sample's position: "above" is strict
            j = int(rng.integers(0, nt))
            smax = _position(th2[j], s2[c, j], ds2, dr2, t0_in, inv_h)
        it0 = int(rng.integers(0, nt))
        want = _scan(th2, s2, c, ds2, dr2, t0_in, inv_h, smax, it0)
        for hint in (-1, 0, it0, want - 1, want, want + 1, nt - 1, nt + 3, *rng.integers(0, nt, 4)):
            got = _first_above(th2, s2, c, ds2, dr2, t0_in, inv_h, smax, it0, int(hint))
            assert got == want, (hint, it0, got, want)


def _scan_at_least(values, row, threshold) -> int:  # type: ignore[no-untyped-def]
    """The first i with values[row, i] >= threshold, one entry after the other."""
    for i in range(values.shape[1]):
        if values[row, i] >= threshold:
            return i
    return int(values.shape[1])


@pytest.mark.parametrize("seed", range(8))
def test_first_at_least_equals_a_scan_from_any_hint(seed: int) -> None:
    """APERTURE_HINT: the search of a pair's first sample inside an aperture table (a
    nondecreasing row of squared radii per column) gallops out from the neighbouring
    column's answer; any hint gives the scan's index, including none (past the row's end)
    and all (0)."""
    rng = np.random.default_rng(seed)
    n = (1, 2, 3, 4)[seed] if seed < 4 else int(rng.integers(5, 90))  # short rows too
    rows = np.sort(rng.uniform(0.0, 1e6, (3, n)), axis=1).astype(np.float32)
    rows[0, n // 3 : n // 2] = rows[0, n // 3]  # a plateau: the same radius repeats
    rows[2] = np.float32(1e36)  # no limit (NO_LIMIT squared)
    for _ in range(60):
        row = int(rng.integers(0, 3))
        choice = rng.random()
        if choice < 0.3:  # exactly a table entry: "at least" includes it
            threshold = rows[row, int(rng.integers(0, n))]
        elif choice < 0.4:  # below the whole row or above it
            threshold = np.float32(rng.choice([-1.0, 2e6]))
        else:
            threshold = np.float32(rng.uniform(-1e4, 1.1e6))
        want = _scan_at_least(rows, row, threshold)
        hints = (-1, 0, 1, want - 1, want, want + 1, n - 2, n - 1, n, n + 3)
        for hint in (*hints, *rng.integers(0, n, 4)):
            got = _first_at_least(rows, row, threshold, int(hint))
            assert got == want, (hint, got, want)
