"""Backend conformance: every registered backend against the numpy reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pstm.config import AntiAlias, Backend, Interpolation, Traveltime, Weights
from pstm.errors import BackendUnavailableError
from pstm.kernels import (
    ImageTarget,
    KernelOptions,
    TraceBatch,
    get_kernel,
    registered_backends,
    resolve_backend,
    unavailable_reason,
)

#: every backend that can run here (cuda without a GPU: tests/test_backends_gpu.py simulates it)
FAST = [
    b for b in registered_backends() if b is not Backend.NUMPY and unavailable_reason(b) is None
]


def random_problem(seed: int, nx: int, ny: int, nt: int, ntr: int, ncls: int = 1):
    rng = np.random.default_rng(seed)
    ns = 200
    dt_in = 0.004
    x0, y0 = 500_000.0, 6_000_000.0  # UTM-like magnitudes: precision must survive them
    ang = rng.uniform(0, np.pi)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    x = x0 + 20.0 * (i * np.cos(ang) - j * np.sin(ang))
    y = y0 + 20.0 * (i * np.sin(ang) + j * np.cos(ang))
    mx = rng.uniform(x0 - 400, x0 + 600, ntr)
    my = rng.uniform(y0 - 400, y0 + 600, ntr)
    h = rng.uniform(0, 800, ntr)
    az = rng.uniform(0, 2 * np.pi, ntr)
    sx, sy = mx - h * np.cos(az), my - h * np.sin(az)
    rx, ry = mx + h * np.cos(az), my + h * np.sin(az)
    vrms = rng.uniform(1500, 3500, (nx, ny, 1)) + 800 * np.linspace(0, 1, nt)[None, None, :]
    # Random but band-limited traces (as recorded data is: below ~half Nyquist). White noise
    # would make float32 traveltime rounding (~1e-5 sample at 1 s) look like a kernel error.
    white = rng.standard_normal((ntr, ns + 8))
    smooth = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16.0
    traces = np.apply_along_axis(
        lambda r: np.convolve(r, np.convolve(smooth, smooth), "same"), 1, white
    )[:, 4:-4]
    batch = TraceBatch(
        traces.astype(np.float32),
        0.0,
        dt_in,
        sx,
        sy,
        rx,
        ry,
        rng.integers(0, ncls, ntr).astype(np.int32),
    )
    target = ImageTarget(x, y, 0.02, 0.004, vrms.astype(np.float32))
    return batch, target, KernelOptions(aperture_m=700.0, n_offset_classes=ncls, threads=2)


#: Operator settings the conformance suite runs every backend with: each interpolation, and
#: every imaging feature at once (tapers, angle limit, time-variant aperture, stretch mute,
#: true-amplitude weights, anti-aliasing).
#: tapers whose weight varies along a pair's samples (angle limit, time-variant aperture)
TAPERS: dict[str, Any] = {
    "aperture_time_s": (0.1, 0.6),
    "aperture_table_m": (300.0, 700.0),
    "aperture_taper_m": 150.0,
    "max_angle_deg": 60.0,
    "angle_taper_deg": 10.0,
}
FEATURES: dict[str, dict[str, Any]] = {
    "plain": {},
    # the default operator: a constant aperture with a taper (one taper weight per pair)
    "aperture_taper": {"aperture_taper_m": 150.0},
    "tapers": TAPERS,
    "linear": {"interpolation": Interpolation.LINEAR},
    "oversampled_linear": {"interpolation": Interpolation.OVERSAMPLED_LINEAR, "oversampling": 4},
    # the speed mode of the plain operator (exact every 8 output samples, linear between)
    "interpolated_traveltime": {
        "aperture_taper_m": 150.0,
        "traveltime": Traveltime.INTERPOLATED,
        "traveltime_node_samples": 8,
    },
    "everything": {
        **TAPERS,
        "max_stretch": 0.6,
        "weights": Weights.TRUE_AMPLITUDE,
        "antialias": AntiAlias.TRIANGLE,
        # unequal inline and crossline spacings on a rotated grid: the full quadratic form
        # of the anti-aliasing rule (operator.antialias_form)
        "antialias_spacing_m": (30.0, 45.0),
        "antialias_rotation_deg": 30.0,
        "antialias_max_samples": 4,
    },
}


def with_features(options: KernelOptions, name: str) -> KernelOptions:
    return dataclasses.replace(options, **FEATURES[name])


def run(backend: Backend, batch, target, options):
    nx, ny, nt = target.shape
    g = np.zeros((options.n_offset_classes, nx, ny, nt), np.float32)
    f = np.zeros(g.shape, np.int32)
    n = get_kernel(backend)(batch, target, options, g, f)
    return g, f, n


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("features", list(FEATURES))
@pytest.mark.parametrize(
    ("seed", "nx", "ny", "nt", "ntr", "ncls"),
    [(1, 6, 5, 120, 150, 1), (2, 9, 1, 150, 200, 1), (3, 1, 1, 90, 80, 1), (4, 7, 4, 100, 150, 3)],
)
def test_backend_matches_reference(
    backend: Backend, features: str, seed: int, nx: int, ny: int, nt: int, ntr: int, ncls: int
) -> None:
    batch, target, options = random_problem(seed, nx, ny, nt, ntr, ncls)
    options = with_features(options, features)
    reason = unavailable_reason(backend, True, options.traveltime)
    if reason is not None:
        pytest.skip(reason)
    g_ref, f_ref, n_ref = run(Backend.NUMPY, batch, target, options)
    g, f, n = run(backend, batch, target, options)
    assert n_ref > 0 and np.abs(g_ref).sum() > 0, "the problem must exercise the kernel"
    assert rel_l2(g, g_ref) < 1e-5
    # fold may differ only where a traveltime lands within float32 rounding of the trace end
    assert np.abs(f.astype(np.int64) - f_ref).sum() <= 1e-4 * f_ref.sum()
    assert abs(n - n_ref) <= 1e-4 * n_ref


@pytest.mark.parametrize("backend", [Backend.NUMPY, *FAST])
@pytest.mark.parametrize("features", ["plain", "everything"])
def test_a_batch_without_traces_adds_nothing(backend: Backend, features: str) -> None:
    """An empty batch (a tile's last, empty read, a caller's edge case) is no error: no
    contributions, the image untouched (the numba kernels' trace blocks stay >= 1)."""
    batch, target, options = random_problem(3, 4, 2, 50, 10, 2)
    empty = dataclasses.replace(
        batch, data=batch.data[:0], sx=batch.sx[:0], sy=batch.sy[:0], rx=batch.rx[:0],
        ry=batch.ry[:0], offset_class=batch.offset_class[:0],
    )  # fmt: skip
    g, f, n = run(backend, empty, target, with_features(options, features))
    assert n == 0 and not g.any() and not f.any()


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("per_block", [1, 7])
@pytest.mark.parametrize("features", list(FEATURES))
def test_numba_trace_blocks_leave_the_image_unchanged(
    features: str, per_block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The numba kernels take the traces in blocks (TRACE_BLOCKS): small blocks (a multiple
    of the threads: 1 or 7 traces rounded up, to 2 and 8 on 2 threads; with anti-aliasing
    AA_BLOCK_SCALE times that, 2 and 14), the last one partial, give the same image as one
    block of every trace, bit for bit (each output sample still sums its traces in order)."""
    from pstm.kernels import _numba
    from pstm.kernels.operator import prepare

    batch, target, options = random_problem(5, 6, 3, 100, 121, 2)
    options = with_features(options, features)
    monkeypatch.setattr(_numba, "TRACE_BLOCK_BYTES", 1 << 40)  # one block
    g_one, f_one, n_one = run(Backend.NUMBA, batch, target, options)
    p = prepare(batch, target, options, _numba.TRACE_OPS)
    row_bytes = _numba.block_row_bytes(p, p.aa_levels > 0)
    monkeypatch.setattr(_numba, "TRACE_BLOCK_BYTES", per_block * row_bytes)
    g, f, n = run(Backend.NUMBA, batch, target, options)
    assert n_one > 0 and np.abs(g_one).sum() > 0, "the problem must exercise the kernel"
    assert np.array_equal(g, g_one) and np.array_equal(f, f_one) and n == n_one


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("factor", [1, 2, 8])
def test_numba_trace_preparation_equals_numpy(factor: int) -> None:
    """The compiled oversampling computes what the numpy reference computes, bit for bit
    (the same float32 operations in the same order); the anti-aliasing levels agree to
    float32 rounding (the reference removes the double integral's mean and trend, the
    compiled build does not: RAW_SUMS); the kernels' in-call build equals the compiled
    whole-array one bit for bit."""
    from pstm.kernels._numba_traces import NUMBA_TRACE_OPS, prepare_block
    from pstm.kernels.operator import (
        NUMPY_TRACE_OPS,
        SINC_HALF_TAPS,
        antialias_lengths,
        sinc_phases,
    )

    batch, _, _ = random_problem(6, 1, 1, 10, 70)
    ntr, ns = batch.data.shape
    out = {}
    for name, ops in (("numpy", NUMPY_TRACE_OPS), ("numba", NUMBA_TRACE_OPS)):
        resampled = ops.oversample(batch.data, factor, np.empty((ntr, ns * factor), np.float32))
        levels = ops.triangle_filtered(resampled, antialias_lengths(factor, 8))
        out[name] = (resampled, levels)
    assert np.abs(out["numpy"][1]).max() > 0
    assert np.array_equal(out["numpy"][0][:, ::factor], batch.data)  # phase 0: the samples
    assert np.array_equal(out["numba"][0], out["numpy"][0])
    levels, ref = out["numba"][1], out["numpy"][1]
    assert np.abs(levels - ref).max() <= 2e-7 * np.abs(ref).max()
    # the numba kernels' own path: one block of traces (here all but the first), in call,
    # without and with anti-aliasing (LEVEL0_IN_PLACE: the trace is then level 0, and
    # every sample is in the read range here)
    lengths = np.asarray(antialias_lengths(factor, 8), np.int64)
    m, pad, k0 = ns * factor, int(lengths.max()) + 1, 1
    prep = (
        batch.data, sinc_phases(factor).astype(np.float32),
        np.empty((ntr - k0, ns + 2 * SINC_HALF_TAPS), np.float32),
        np.empty((ntr - k0, ns), np.float32), lengths, np.empty((ntr - k0, m + 2 * pad)),
        np.tile(np.array([0, m], np.int64), (ntr, 1)),
    )  # fmt: skip
    rows = np.empty((ntr - k0, m + 1), np.float32)
    prepare_block(prep, k0, ntr, rows, rows[:0])
    assert np.array_equal(rows[:, :m], out["numpy"][0][k0:]) and not rows[:, m].any()
    aa_rows = np.empty((ntr - k0, len(lengths) * (m + 1)), np.float32)
    prepare_block(prep, k0, ntr, rows[:0], aa_rows)
    assert np.array_equal(aa_rows.reshape(ntr - k0, len(lengths), m + 1), levels[k0:])


def _read_indices(p, k: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Every level-row sample index the numba kernels compute for trace k: the nearest
    sample of every output sample of every column (inside a pair's aperture or not), in
    the reference's float32 operations."""
    from pstm.kernels import _numpy

    return (_numpy._trace_terms(p, k)["sc"] + np.float32(0.5)).astype(np.int64)


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("record", [1, 8])
def test_numba_read_ranges_hold_every_sample_the_kernels_read(record: int) -> None:
    """LEVEL_RANGES: the samples of each trace whose levels the numba kernels build contain
    every sample they can read from it; with records 8x longer (zeros appended) most of
    each record is left out, so a range that covered every trace would fail here."""
    from pstm.kernels import _numba
    from pstm.kernels.operator import prepare

    batch, target, options = random_problem(7, 5, 4, 60, 40)
    data = np.zeros((batch.ntr, batch.data.shape[1] * record), np.float32)
    data[:, : batch.data.shape[1]] = batch.data
    batch = dataclasses.replace(batch, data=data)
    options = with_features(options, "everything")
    p = prepare(batch, target, options, _numba.TRACE_OPS)
    m = p.n_valid
    *_, ranges = _numba._block_buffers(p, True, 2)[3]
    assert ranges.shape == (p.ntr, 2) and (ranges[:, 0] < ranges[:, 1]).all()
    for k in range(p.ntr):
        read = _read_indices(p, k)
        assert ranges[k, 0] <= read.min() and read.max() < ranges[k, 1] <= m, k
    covered = float((ranges[:, 1] - ranges[:, 0]).mean()) / m
    assert covered < 0.25 if record == 8 else covered > 0.5


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
def test_numba_read_ranges_are_tight_where_the_bound_is_reached() -> None:
    """With one output column and a constant velocity the bound's extremes are samples the
    kernels compute (the first and the last output sample of that column), so the ranges
    are the read indices plus the stated margin, exactly: one sample below (two where the
    first index was rounded up), one above, and nothing the rounding cannot explain."""
    from pstm.kernels import _numba
    from pstm.kernels.operator import prepare

    batch, target, options = random_problem(9, 1, 1, 60, 40)
    target = dataclasses.replace(target, vrms=np.full_like(target.vrms, 2500.0))
    data = np.zeros((batch.ntr, batch.data.shape[1] * 8), np.float32)
    data[:, : batch.data.shape[1]] = batch.data
    batch = dataclasses.replace(batch, data=data)
    p = prepare(batch, target, with_features(options, "everything"), _numba.TRACE_OPS)
    *_, ranges = _numba._block_buffers(p, True, 2)[3]
    for k in range(p.ntr):
        read = _read_indices(p, k)
        lowest = max(int(read.min()) - 2, 0)
        assert lowest <= ranges[k, 0] <= max(int(read.min()) - 1, 0), k
        assert ranges[k, 1] == min(int(read.max()) + 2, p.n_valid), k


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize(
    "case", ["window_loads", "gathers", "factor_1", "late_traces", "short_records"]
)
def test_numba_kernels_read_no_sample_outside_the_read_ranges(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LEVEL_RANGES, read side: with every block buffer filled with NaN before the call (one
    block of all traces, so no earlier trace's values stay in them), the anti-aliased
    kernel gives the same image, and no NaN: it reads no level sample outside a trace's
    read range, not even with weight 0 (a NaN times 0 is NaN). Through the window loads and
    the gathers, without oversampling (several levels of half-length 1), traces that start
    after time 0 and records shorter than the output window (positions clamped)."""
    from pstm.kernels import _numba

    batch, target, options = random_problem(10, 5, 4, 60, 40, 2)
    options = with_features(options, "everything")
    if case == "gathers":
        monkeypatch.setattr(_numba, "WINDOW_LOADS", False)
    elif case == "factor_1":
        options = dataclasses.replace(options, interpolation=Interpolation.LINEAR)
    elif case == "late_traces":
        batch = dataclasses.replace(batch, t0=0.3)
    elif case == "short_records":
        batch = dataclasses.replace(batch, data=np.ascontiguousarray(batch.data[:, :40]))
    monkeypatch.setattr(_numba, "TRACE_BLOCK_BYTES", 1 << 40)  # one block
    g_ref, f_ref, n_ref = run(Backend.NUMBA, batch, target, options)
    clean = _numba._rows_with_slack

    def poisoned(n: int, width: int) -> np.ndarray:
        rows = clean(n, width)
        rows.base.fill(np.nan)  # the rows and the slack after them
        return rows

    monkeypatch.setattr(_numba, "_rows_with_slack", poisoned)
    g, f, n = run(Backend.NUMBA, batch, target, options)
    assert n_ref > 0 and np.abs(g_ref).sum() > 0, "the problem must exercise the kernel"
    assert not np.isnan(g).any()
    assert np.array_equal(g, g_ref) and np.array_equal(f, f_ref) and n == n_ref


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("factor", [1, 8])
def test_numba_levels_on_narrow_ranges_equal_the_whole_trace_build(factor: int) -> None:
    """_triangle_row on a range n0..n1-1 (sums started at max(n0 - pad, 0)) gives the levels
    of the whole-trace build on that range, to float32 rounding (the shorter float64 sums
    round differently), level 0 (the trace) exactly, and the zero after each level's last
    sample; half-length-1 levels (factor 1) are exact copies."""
    from pstm.kernels._numba_traces import NUMBA_TRACE_OPS, prepare_block
    from pstm.kernels.operator import SINC_HALF_TAPS, antialias_lengths, sinc_phases

    rng = np.random.default_rng(12)
    batch, _, _ = random_problem(11, 1, 1, 10, 30)
    raw = np.ascontiguousarray(np.tile(batch.data, (1, 4)))
    ntr, ns = raw.shape
    m = ns * factor
    lengths = np.asarray(antialias_lengths(factor, 8), np.int64)
    pad = int(lengths.max()) + 1
    resampled = NUMBA_TRACE_OPS.oversample(raw, factor, np.empty((ntr, m), np.float32))
    whole = NUMBA_TRACE_OPS.triangle_filtered(resampled, tuple(int(j) for j in lengths))
    n0 = rng.integers(0, m // 2, ntr)
    n1 = n0 + rng.integers(1, m // 2, ntr)
    n0[0], n1[0] = 0, m  # one trace whole
    prep = (
        raw, sinc_phases(factor).astype(np.float32),
        np.empty((ntr, ns + 2 * SINC_HALF_TAPS), np.float32), np.empty((ntr, ns), np.float32),
        lengths, np.empty((ntr, m + 2 * pad)), np.stack([n0, n1], axis=1).astype(np.int64),
    )  # fmt: skip
    aa_rows = np.full((ntr, len(lengths) * (m + 1)), np.nan, np.float32)
    prepare_block(prep, 0, ntr, aa_rows[:0, : m + 1], aa_rows)
    levels = aa_rows.reshape(ntr, len(lengths), m + 1)
    scale = float(np.abs(whole).max())
    for k in range(ntr):
        assert np.array_equal(levels[k, 0], whole[k, 0])
        part, ref = levels[k, 1:, n0[k] : n1[k]], whole[k, 1:, n0[k] : n1[k]]
        assert np.abs(part - ref).max() <= 2e-7 * scale, k
        assert not levels[k, 1:, m].any()
        for level, j in enumerate(lengths):
            if level and j == 1:
                assert np.array_equal(levels[k, level, n0[k] : n1[k]], resampled[k, n0[k] : n1[k]])


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("window_s", [0.02, 6.0])
def test_numba_levels_on_read_ranges_leave_the_image_unchanged(
    window_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building a trace's anti-aliasing levels on its read range only (LEVEL_RANGES: the
    double running sums start there, the rest of its rows is not written) gives the image
    that levels built on every sample give, on records 13x longer than their first 0.8 s
    (13 reversed copies), with the output window (0.24 s) at their start and 6 s into
    them: the same fold and counts, the image to float32 rounding (the shorter float64
    sums round differently: a level may change by one unit in its last place)."""
    from pstm.kernels import _numba

    batch, target, options = random_problem(8, 5, 4, 60, 40, 2)
    data = np.concatenate([batch.data] + [batch.data[:, ::-1]] * 12, axis=1)
    batch = dataclasses.replace(batch, data=np.ascontiguousarray(data))
    target = dataclasses.replace(target, t0=window_s)
    options = with_features(options, "everything")
    g_ranged, f_ranged, n_ranged = run(Backend.NUMBA, batch, target, options)

    def everywhere(sx, sy, rx, ry, box, tables, m, out):  # type: ignore[no-untyped-def]
        out[:, 0], out[:, 1] = 0, m

    monkeypatch.setattr(_numba, "read_ranges", everywhere)
    g, f, n = run(Backend.NUMBA, batch, target, options)
    assert n > 0 and np.abs(g).sum() > 0, "the problem must exercise the kernel"
    assert np.array_equal(f_ranged, f) and n_ranged == n
    assert np.abs(g_ranged - g).max() <= 1e-6 * np.abs(g).max()


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
def test_numba_levels_of_long_traces_with_a_large_offset_equal_numpy() -> None:
    """RAW_SUMS: the compiled levels keep the double running sum's mean and trend (the
    second differences cancel them): on long traces (32,000 resampled samples) with a DC
    offset 10^4 times their signal, the levels still agree with the reference's, which
    removes both, to float32 rounding of the levels' scale."""
    from pstm.kernels._numba_traces import NUMBA_TRACE_OPS
    from pstm.kernels.operator import NUMPY_TRACE_OPS, antialias_lengths

    rng = np.random.default_rng(11)
    data = (1.0e4 + rng.standard_normal((3, 32_000))).astype(np.float32)
    lengths = antialias_lengths(8, 8)
    ref = NUMPY_TRACE_OPS.triangle_filtered(data, lengths)
    levels = NUMBA_TRACE_OPS.triangle_filtered(data, lengths)
    assert np.abs(levels - ref).max() <= 2e-7 * np.abs(ref).max()
    # the smoothing is visible above the offset: the levels are not the trace itself
    assert np.abs(levels[:, -2, 16:-17] - data[:, 16:-16]).max() > 0.5


def test_antialias_level_takes_the_longest_level_not_longer_than_the_ideal_length() -> None:
    """AA_RULE: level l >= 1 (nominal half-length 2^((l - 1) / 2) input samples) from its
    nominal length on, level 0 (the trace itself) below one input sample, at most ``top``;
    just below and just above each nominal length."""
    from pstm.kernels.operator import antialias_level

    top = 6
    for level in range(1, top + 1):
        nominal = 2.0 ** ((level - 1) / 2.0)  # input samples
        y = np.array([(nominal * 0.999) ** 2, (nominal * 1.001) ** 2], np.float32)
        assert antialias_level(y, top).tolist() == [level - 1, level]
    y = np.array([0.0, -1e-30, 0.5, 1e30], np.float32)  # zero dip, rounding below 0, huge
    assert antialias_level(y, top).tolist() == [0, 0, 0, top]


@pytest.mark.parametrize(
    ("spacing_m", "rotation_deg"), [((25.0, 25.0), 0.0), ((12.5, 50.0), 0.0), ((12.5, 50.0), 37.0)]
)
def test_antialias_y_is_the_squared_operator_dip_times_the_spacing(
    spacing_m: tuple[float, float], rotation_deg: float
) -> None:
    """AA_RULE: the kernels' y (no leg vectors, no square root) equals
    ((p.u_il) dil / dt)^2 + ((p.u_xl) dxl / dt)^2 computed directly in float64, with the
    operator dip p = grad_M t = ((S - x)/t_s + (R - x)/t_r) / v^2 and u_il, u_xl the grid's
    directions, to float32 rounding, for random 3D legs, times and velocities; equal
    spacings give |p| d / dt."""
    from pstm.kernels.operator import antialias_form, antialias_pair, antialias_y

    rng = np.random.default_rng(7)
    n, dt = 1000, 0.004
    s_rel, r_rel = rng.uniform(-3000.0, 3000.0, (2, n, 2))
    tau = rng.uniform(0.0, 3.0, n)
    v = rng.uniform(1400.0, 5000.0, n)
    ts = np.sqrt(tau**2 / 4 + (s_rel**2).sum(axis=1) / v**2)
    tr = np.sqrt(tau**2 / 4 + (r_rel**2).sum(axis=1) / v**2)
    grad = (s_rel / ts[:, None] + r_rel / tr[:, None]) / (v**2)[:, None]
    r = np.radians(rotation_deg)
    u_il, u_xl = np.array([np.cos(r), np.sin(r)]), np.array([-np.sin(r), np.cos(r)])
    expected = ((grad @ u_il) * spacing_m[0] / dt) ** 2 + ((grad @ u_xl) * spacing_m[1] / dt) ** 2
    if spacing_m[0] == spacing_m[1]:
        assert np.allclose(expected, (np.hypot(*grad.T) * spacing_m[0] / dt) ** 2)
    f = np.float32
    form = antialias_form(spacing_m, rotation_deg, dt)
    ks, kr, ksr = antialias_pair(form, *(a.astype(f) for a in (*s_rel.T, *r_rel.T)))
    qs, qr = (ts**2).astype(f), (tr**2).astype(f)
    p = (ts * tr).astype(f)
    y = antialias_y((1.0 / v**2).astype(f), ks, kr, ksr, qs, qr, p, f(1.0) / (qs * qr))
    scale = np.maximum(expected, 1e-3 * expected.max())  # cancellation: relative to the range
    assert np.abs(y - expected).max() / scale.max() < 1e-5
    assert np.all(np.abs(y - expected) <= 1e-4 * scale)


#: ZONE_VECTORS edge cases for one trace and one column (see the test below): a time-variant
#: aperture without taper width (the first visited sample sits on the aperture's edge), an
#: angle limit without an angle taper, every feature, every feature on fewer output
#: samples than one vector, and every feature with the aperture's taper varying at the
#: pair's midpoint (APERTURE_TAPER_FREE does not apply)
SINGLE_PAIR_CASES: dict[str, tuple[dict[str, Any], int]] = {
    "aperture_table_no_taper": (
        {"aperture_time_s": (0.0, 1.0), "aperture_table_m": (0.0, 1000.0), "aperture_taper_m": 0.0},
        100,
    ),
    "angle_limit_no_taper": ({"max_angle_deg": 60.0, "angle_taper_deg": 0.0}, 100),
    "everything": (FEATURES["everything"], 100),
    "everything_short": (FEATURES["everything"], 11),
    # the aperture's taper varies at the pair's midpoint (its smallest aperture is 120 m):
    # the zone's loop computes both tapers (APERTURE_TAPER_FREE does not apply)
    "everything_aperture_edge": (
        {**FEATURES["everything"], "aperture_table_m": (120.0, 700.0)},
        100,
    ),
}


@pytest.mark.skipif(Backend.NUMBA not in FAST, reason="numba is not available")
@pytest.mark.parametrize("case", list(SINGLE_PAIR_CASES))
@pytest.mark.parametrize("offset_m", [0.0, 60.0])
def test_numba_single_pair_matches_reference_sample_by_sample(case: str, offset_m: float) -> None:
    """ZONE_VECTORS: the features kernel's loops start before the aperture's first sample
    and run the taper zone's loop into the samples inside both tapers; sample by sample
    the image equals the reference's to float32 rounding and the fold exactly (the
    conformance test's L2 and fold tolerances could hide one lost sample). With true-
    amplitude weights so the features kernel runs. The zone's loop with only the angle
    taper (APERTURE_TAPER_FREE: "everything", midpoint 40 m inside a 300 m aperture with a
    150 m taper; at offset 60 m two contributing samples have an angle taper below 1, at
    offset 0 the stretch mute removes the zone) and with both ("everything_aperture_edge":
    the aperture's taper below 1 at 32-34 contributing samples)."""
    extra, nt = SINGLE_PAIR_CASES[case]
    rng = np.random.default_rng(3)
    ns = 260
    data = np.convolve(rng.standard_normal(ns + 8), np.ones(5) / 5, "same")[4:-4]
    mid, half = 40.0, offset_m / 2
    batch = TraceBatch(
        data[None].astype(np.float32), 0.0, 0.004, np.array([mid - half]), np.array([0.0]),
        np.array([mid + half]), np.array([0.0]), np.zeros(1, np.int32),
    )  # fmt: skip
    v = np.full((1, 1, nt), 2000.0, np.float32)
    target = ImageTarget(np.zeros((1, 1)), np.zeros((1, 1)), 0.0, 0.004, v)
    options = dataclasses.replace(
        KernelOptions(aperture_m=1000.0, threads=1),
        **{"weights": Weights.TRUE_AMPLITUDE, **extra},
    )
    g_ref, f_ref, n_ref = run(Backend.NUMPY, batch, target, options)
    g, f, n = run(Backend.NUMBA, batch, target, options)
    assert n_ref > 0, "the pair must contribute"
    np.testing.assert_array_equal(f, f_ref)
    assert n == n_ref
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-6 * np.abs(g_ref).max())


def test_reference_single_contribution_is_linear_interpolation() -> None:
    """One trace, one output sample: the reference returns exactly the lerp at the DSR time."""
    ns, dt = 100, 0.004
    data = np.arange(ns, dtype=np.float32)[None, :] ** 2
    batch = TraceBatch(
        data,
        0.0,
        dt,
        np.array([-300.0]),
        np.array([0.0]),
        np.array([200.0]),
        np.array([0.0]),
        np.zeros(1, np.int32),
    )
    v, tau = 2000.0, 0.2
    target = ImageTarget(
        np.array([[10.0]]), np.array([[0.0]]), tau, dt, np.full((1, 1, 1), v, np.float32)
    )
    linear = KernelOptions(aperture_m=1000.0, interpolation=Interpolation.LINEAR)
    g, f, n = run(Backend.NUMPY, batch, target, linear)
    t = np.sqrt(tau**2 / 4 + 310.0**2 / v**2) + np.sqrt(tau**2 / 4 + 190.0**2 / v**2)
    s = t / dt
    i = int(s)
    expected = (1 - (s - i)) * i**2 + (s - i) * (i + 1) ** 2
    assert n == 1 and f[0, 0, 0, 0] == 1
    assert g[0, 0, 0, 0] == pytest.approx(expected, rel=1e-6)


def test_aperture_excludes_far_midpoints() -> None:
    batch, target, options = random_problem(5, 4, 4, 50, 100)
    far = KernelOptions(aperture_m=1.0, n_offset_classes=1)
    g, f, n = run(Backend.NUMPY, batch, target, far)
    assert n == 0 and not g.any()


def test_explicit_unknown_backend_is_an_error() -> None:
    with pytest.raises(BackendUnavailableError, match="get_kernel needs a resolved backend"):
        get_kernel(Backend.AUTO)


def test_auto_resolves_to_a_registered_backend_with_reason() -> None:
    backend, why = resolve_backend(Backend.AUTO)
    assert backend in registered_backends() and why.startswith("auto")


def test_unavailable_backend_names_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a)
    )
    with pytest.raises(
        BackendUnavailableError,
        match=r"'numba' cannot run here: package 'numba' is not installed.*Available on this machine: numpy",
    ):
        resolve_backend(Backend.NUMBA)
    assert resolve_backend(Backend.AUTO)[0] is Backend.NUMPY


def test_interpolation_accuracy_against_band_limited() -> None:
    """Each trace interpolation's error against exact band-limited interpolation, on traces
    with energy up to half Nyquist (documented in README, "Trace interpolation")."""
    from pstm.bench import interpolation_error

    linear = interpolation_error(Interpolation.LINEAR, 8, 0.5)
    nearest = interpolation_error(Interpolation.OVERSAMPLED_NEAREST, 8, 0.5)
    over_linear = interpolation_error(Interpolation.OVERSAMPLED_LINEAR, 8, 0.5)
    assert 0.05 < linear < 0.2  # linear between recorded samples: ~10 % at half Nyquist
    assert nearest < linear / 2.5  # nearest of 8x oversampled: error <= dt/16 in time
    assert over_linear < 0.005
    # doubling the oversampling halves the nearest-sample error
    assert interpolation_error(Interpolation.OVERSAMPLED_NEAREST, 16, 0.5) < 0.6 * nearest


def test_taper_polynomial_is_the_cosine_taper() -> None:
    from pstm.kernels.operator import taper01

    z = np.linspace(-0.5, 1.5, 2001).astype(np.float32)
    exact = 0.5 - 0.5 * np.cos(np.pi * np.clip(z.astype(np.float64), 0.0, 1.0))
    np.testing.assert_allclose(taper01(z), exact, atol=5e-7)  # float32 rounding
    assert taper01(np.array([1.0, 5.0], np.float32)).tolist() == [1.0, 1.0]


def test_head_node_without_gpu_checks_cuda_packages_only() -> None:
    """workflow/profiles/slurm-gpu sets execution.check_backend_device false: the Snakefile
    is parsed on a head node without a GPU; the jobs that run kernels check the device."""
    from pstm.kernels import unavailable_reason
    from pstm.pipeline import prepare_run

    if unavailable_reason(Backend.CUDA, check_device=False) is not None:
        pytest.skip("numba-cuda not installed")
    if unavailable_reason(Backend.CUDA) is None:
        pytest.skip("this machine has a GPU")
    cfg = {"migration": {"backend": "cuda"}}
    with pytest.raises(BackendUnavailableError, match="'cuda' cannot run here"):
        prepare_run(cfg)
    run_ = prepare_run({**cfg, "execution": {"check_backend_device": False}})
    assert run_.config.migration.backend is Backend.CUDA
    assert "device checked by the tile jobs" in run_.backend_reason
    with pytest.raises(BackendUnavailableError, match="no NVIDIA GPU"):
        get_kernel(Backend.CUDA)
    # the profile's own config entries (key=YAML, as Snakemake parses them) ask for both
    import yaml

    profile = Path(__file__).parents[1] / "workflow/profiles/slurm-gpu/config.yaml"
    entries = dict(e.split("=", 1) for e in yaml.safe_load(profile.read_text())["config"])
    overrides = {key: yaml.safe_load(value) for key, value in entries.items()}
    assert overrides == {
        "execution": {"check_backend_device": False},
        "migration": {"backend": "cuda"},
    }
    # its preflight job, on a CPU node, reports without a kernel timing
    from tests.helpers import tiny_config
    from tests.test_preflight import report

    text = report(tiny_config(**overrides))
    assert "kernel timing    : not here" in text and "no NVIDIA GPU" in text
