"""``traveltime: interpolated``: its error bound, where it may be used, and its benchmark."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from numpy.typing import NDArray

from pstm.cli import main
from pstm.config import (
    TRAVELTIME_MAX_ERROR_SAMPLES,
    Backend,
    Traveltime,
    parse_config,
)
from pstm.errors import BackendUnavailableError, ConfigError
from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, resolve_backend
from pstm.kernels.operator import (
    Prepared,
    interpolated_positions,
    interpolation_allowed,
    interpolation_bound_constants,
    prepare,
    require_exact_traveltime,
)

from .test_kernels import random_problem, rel_l2, run

#: Oversampling of the resampled trace the positions index (the default interpolation's).
FACTOR = 8
DT_IN_S = 0.004


H = DT_IN_S / FACTOR


def positions(
    dt_out: float,
    ds: NDArray[np.float64],
    dr: NDArray[np.float64],
    vrms: NDArray,
    node: int,
    t0: float = 0.0,
) -> tuple[NDArray[np.float32], NDArray[np.float32], Prepared]:
    """Exact and interpolated sample positions (pairs, nt) in resampled samples, as the
    reference computes them (one output column per pair, output times from ``t0``),
    tolerance 0.05 input sample; and the prepared problem."""
    n, nt = vrms.shape
    zero = np.zeros(n)
    batch = TraceBatch(
        np.zeros((1, 10), np.float32), 0.0, DT_IN_S, zero[:1], zero[:1], zero[:1], zero[:1],
        np.zeros(1, np.int32),
    )  # fmt: skip
    target = ImageTarget(zero[:, None], zero[:, None], t0, dt_out, vrms[:, None, :])
    options = KernelOptions(
        aperture_m=1e9, traveltime=Traveltime.INTERPOLATED, traveltime_node_samples=node
    )
    p = prepare(batch, target, options)
    ds2, dr2 = (ds**2).astype(np.float32), (dr**2).astype(np.float32)
    exact = (np.sqrt(p.th2 + ds2[:, None] * p.sl2) + np.sqrt(p.th2 + dr2[:, None] * p.sl2)) * (
        np.float32(p.inv_h)
    )
    return exact, interpolated_positions(exact, node, interpolation_allowed(p, ds2, dr2)), p


def random_vrms(rng: np.random.Generator, dt_out: float, nt: int, n: int) -> NDArray:
    """RMS velocities (n, nt) by Dix from random interval velocities: layers 40-400 ms
    thick, 1400-4500 m/s, low-velocity layers included."""
    vint = np.empty((n, nt))
    for row in vint:
        i = 0
        while i < nt:
            thick = int(rng.uniform(0.04, 0.4) / dt_out) + 1
            row[i : i + thick] = rng.uniform(1400.0, 4500.0)
            i += thick
    tau = dt_out * (np.arange(nt) + 0.5)
    result: NDArray = np.sqrt(np.cumsum(vint**2, axis=1) * dt_out / tau)
    return result


def random_pairs(rng: np.random.Generator, n: int) -> tuple[NDArray, NDArray]:
    """Leg distances of n pairs, 0-4 km; the first 50 at an apex (both legs 0)."""
    ds = np.concatenate([np.zeros(50), rng.uniform(0, 4000, n - 50)])
    dr = np.concatenate([np.zeros(50), rng.uniform(0, 4000, n - 50)])
    return ds, dr


@pytest.mark.parametrize("node", [8, 16, 32, 64])
@pytest.mark.parametrize("dt_out", [0.002, 0.004])
def test_interpolated_traveltime_error_is_bounded(node: int, dt_out: float) -> None:
    """Over random geometries (apexes included) and random blocky v(t) (Dix RMS of random
    layers, inversions included), no interpolated position is off by more than the
    tolerance (0.05 input sample)."""
    rng = np.random.default_rng(node)
    nt, n = int(3.0 / dt_out), 3000
    ds, dr = random_pairs(rng, n)
    exact, used, _ = positions(dt_out, ds, dr, random_vrms(rng, dt_out, nt, n), node)
    error = np.abs(used.astype(np.float64) - exact)
    assert error.max() <= TRAVELTIME_MAX_ERROR_SAMPLES * FACTOR, f"{error.max() / FACTOR:.3f}"
    assert (used != exact).any()


@pytest.mark.parametrize("dt_out", [0.002, 0.004])
def test_interpolated_traveltime_interpolates_most_samples(dt_out: float) -> None:
    """On a smooth v(t) (a linear increase) and legs up to 2 km, most samples of blocks of
    32 ms are interpolated."""
    rng = np.random.default_rng(1)
    nt, n, node = int(3.0 / dt_out), 2000, int(round(0.032 / dt_out))
    ds, dr = rng.uniform(0, 2000, n), rng.uniform(0, 2000, n)
    slope = rng.uniform(200.0, 800.0, n)[:, None]
    vrms = 1500.0 + slope * dt_out * np.arange(nt)[None, :]
    exact, used, _ = positions(dt_out, ds, dr, vrms, node)
    assert np.abs(used.astype(np.float64) - exact).max() <= TRAVELTIME_MAX_ERROR_SAMPLES * FACTOR
    assert (used != exact).mean() > 0.6


@pytest.mark.parametrize("node", [8, 16])
def test_numba_positions_equal_the_reference(node: int) -> None:
    """The compiled position pass (nodes, bound, blocks) gives the reference's positions
    bit for bit, over whole pairs and over ranges starting and ending inside blocks."""
    from pstm.kernels._numba import _fill_positions

    rng = np.random.default_rng(node)
    dt_out, nt, n = 0.004, 500, 300
    ds, dr = rng.uniform(1.0, 3000, n), rng.uniform(1.0, 3000, n)
    exact, expected, p = positions(dt_out, ds, dr, random_vrms(rng, dt_out, nt, n), node, 0.1)
    ds2, dr2 = (ds**2).astype(np.float32), (dr**2).astype(np.float32)
    nn = (nt - 1) // node + 1
    pos, nodes, flags = (
        np.zeros((1, m), d) for m, d in ((nt, np.float32), (nn, np.float32), (nn, np.uint8))
    )
    for c in range(n):
        lo, hi = (
            (0, nt) if c % 2 else (int(rng.integers(0, nt // 2)), int(rng.integers(nt // 2, nt)))
        )
        pos[:] = np.nan
        _fill_positions(
            pos, nodes, flags, 0, p.th2, p.sl2, p.th2[::node].copy(),
            np.ascontiguousarray(p.sl2[:, ::node]), p.tt_blocks, p.tt_times, interpolation_bound_constants(p), c, ds2[c],
            dr2[c], np.float32(0.0), np.float32(p.inv_h), node, lo, hi,
        )  # fmt: skip
        np.testing.assert_array_equal(pos[0, lo:hi], expected[c, lo:hi])
    assert (expected != exact).mean() > 0.2


def test_without_the_bound_the_error_exceeds_the_tolerance() -> None:
    """The bound above comes from the test of each block, not from easy data: interpolating
    every block errs by far more than the tolerance on the same kind of problem."""
    rng = np.random.default_rng(0)
    nt, n = 750, 500
    ds, dr = random_pairs(rng, n)
    exact, _, _ = positions(0.004, ds, dr, random_vrms(rng, 0.004, nt, n), 16)
    every = np.ones((n, (nt - 1) // 16), dtype=bool)
    used = interpolated_positions(exact, 16, every)
    assert np.abs(used - exact).max() > 10 * TRAVELTIME_MAX_ERROR_SAMPLES * FACTOR


def test_interpolated_image_is_close_to_the_exact_one() -> None:
    """The two modes differ (the mode is not a no-op), by a small fraction of the image."""
    batch, target, options = random_problem(5, 8, 3, 150, 200)
    exact = KernelOptions(aperture_m=700.0, aperture_taper_m=150.0, threads=2)
    interp = KernelOptions(
        aperture_m=700.0,
        aperture_taper_m=150.0,
        traveltime=Traveltime.INTERPOLATED,
        traveltime_node_samples=8,
        threads=2,
    )
    g_exact, _, n_exact = run(Backend.NUMBA, batch, target, exact)
    g_interp, _, n_interp = run(Backend.NUMBA, batch, target, interp)
    assert not np.array_equal(g_interp, g_exact)
    assert rel_l2(g_interp, g_exact) < 0.05
    assert abs(n_interp - n_exact) <= 1e-3 * n_exact


def test_interpolated_traveltime_rejects_other_features() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"migration": {"traveltime": "interpolated", "weights": "true_amplitude"}})
    msg = str(err.value)
    assert "migration" in msg and "traveltime: interpolated" in msg
    assert "weights: true_amplitude" in msg
    batch, target, _ = random_problem(1, 2, 1, 20, 5)
    options = KernelOptions(
        aperture_m=500.0, max_angle_deg=60.0, traveltime=Traveltime.INTERPOLATED
    )
    with pytest.raises(ValueError, match="max_angle_deg: 60"):
        prepare(batch, target, options)


def test_tolerance_above_the_bound_is_an_error() -> None:
    with pytest.raises(ConfigError, match="traveltime_tolerance_samples"):
        parse_config({"migration": {"traveltime_tolerance_samples": 0.2}})


def test_gpu_backends_do_not_take_interpolated_traveltimes() -> None:
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed (the package check comes first)")
    with pytest.raises(BackendUnavailableError, match="traveltime 'interpolated'"):
        resolve_backend(Backend.CUDA, check_device=False, traveltime=Traveltime.INTERPOLATED)
    backend, _ = resolve_backend(Backend.AUTO, traveltime=Traveltime.INTERPOLATED)
    assert backend in (Backend.NUMBA, Backend.NUMPY)


def test_exact_only_backends_refuse_an_interpolated_problem() -> None:
    """Called directly (not through the config), a GPU backend refuses rather than
    computing exact traveltimes silently."""
    batch, target, _ = random_problem(1, 2, 1, 20, 5)
    p = prepare(batch, target, KernelOptions(aperture_m=500.0, traveltime=Traveltime.INTERPOLATED))
    with pytest.raises(BackendUnavailableError, match="does not implement"):
        require_exact_traveltime(p, "cuda")


def test_bench_reports_both_traveltime_modes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench", "--backend", "numba", "--traces", "40", "--nx", "20", "--nt", "120",
            "--repeat", "1", "--traveltime", "exact", "--traveltime", "interpolated", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    runs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["traveltime"] for r in runs] == ["exact", "interpolated"]
    assert runs[0]["contributions"] == runs[1]["contributions"] > 0
    assert all(r["contributions_per_s"] > 0 for r in runs)
