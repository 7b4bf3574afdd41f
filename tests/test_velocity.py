"""Velocity inputs: every kind, the Dix conversion, smoothing, and every bad-velocity error.

Test files are written by the tests. Where a kind can reproduce a known field exactly
(a field linear in x, y and t is reproduced exactly by linear/trilinear interpolation),
the test checks exact values; IDW is checked on its defining properties.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pstm.config import VelocityConfig
from pstm.errors import ConfigError, InputDataError, InputFileNotFoundError, PstmError
from pstm.grid import OutputGrid
from pstm.velocity import (
    _moving_average,
    build_velocity,
    build_velocity_file,
    check_velocity,
    dix_to_rms,
    read_velocity,
    vrms_of_time,
    write_velocity,
)

#: A small rotated output grid: 6 inlines x 5 crosslines x 50 samples of 4 ms.
GRID = OutputGrid(
    ox=1000.0,
    oy=2000.0,
    rotation_deg=30.0,
    dil=25.0,
    dxl=20.0,
    nil=6,
    nxl=5,
    t0=0.0,
    dt=0.004,
    nt=50,
    first_inline=100,
    first_crossline=10,
)


def vel(**kw: Any) -> VelocityConfig:
    return VelocityConfig.model_validate(kw)


def linear_field(x: Any, y: Any, t: Any) -> Any:
    """A velocity linear in x, y and t (reproduced exactly by (tri)linear resampling)."""
    return 2000.0 + 0.5 * (x - 1000.0) - 0.25 * (y - 2000.0) + 800.0 * t


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- kinds


def test_constant() -> None:
    cube = build_velocity(vel(kind="constant", constant_mps=2500.0), GRID)
    assert cube.shape == (6, 5, 50) and cube.dtype == np.float32
    assert np.all(cube == 2500.0)


def test_table_inline_is_linear_in_time_and_constant_beyond() -> None:
    cfg = vel(kind="table", table={"time_s": [0.05, 0.15], "vrms_mps": [1500.0, 2500.0]})
    cube = build_velocity(cfg, GRID)
    expect = np.interp(GRID.times, [0.05, 0.15], [1500.0, 2500.0])
    np.testing.assert_allclose(cube[2, 3], expect, rtol=1e-6)
    assert np.all(cube == cube[:1, :1])  # laterally constant
    assert cube[0, 0, 0] == 1500.0 and cube[0, 0, -1] == 2500.0


@pytest.mark.parametrize(
    "text",
    [
        "time_s,velocity_mps\n0.05,1500\n0.15,2500\n",
        "# exported by some tool\ntime_s  velocity_mps   # header\n\n0.05 1500\n0.15\t2500\n",
        "velocity_mps;time_s\n1500;0.05\n2500;0.15\n",
    ],
    ids=["csv", "whitespace-with-comments", "semicolon-reordered"],
)
def test_table_csv_equals_inline_table(tmp_path: Path, text: str) -> None:
    path = write_text(tmp_path / "v.csv", text)
    from_file = build_velocity(vel(kind="table_csv", file=str(path)), GRID)
    inline = build_velocity(
        vel(kind="table", table={"time_s": [0.05, 0.15], "vrms_mps": [1500.0, 2500.0]}), GRID
    )
    np.testing.assert_array_equal(from_file, inline)
    np.testing.assert_allclose(
        vrms_of_time(vel(kind="table_csv", file=str(path)), GRID.times), inline[0, 0], rtol=1e-6
    )


def _picks_csv(tmp_path: Path, locations: list[tuple[float, float]], by: str) -> Path:
    cols = "x_m,y_m" if by == "xy" else "inline,crossline"
    rows = [f"{cols},time_s,velocity_mps"]
    for k, (a, b) in enumerate(locations):
        rows += [f"{a},{b},0.0,{1800 + 200 * k}", f"{a},{b},0.2,{2400 + 200 * k}"]
    return write_text(tmp_path / "picks.csv", "\n".join(rows) + "\n")


@pytest.mark.parametrize("by", ["xy", "inline_crossline"])
def test_picks_idw(tmp_path: Path, by: str) -> None:
    # analyses at bins (0, 0), (5, 4) and (2, 3) of the output grid
    bins = [(0, 0), (5, 4), (2, 3)]
    x, y = GRID.bin_xy()
    if by == "xy":
        locations = [(float(x[i, j]), float(y[i, j])) for i, j in bins]
    else:
        locations = [
            (float(GRID.first_inline + i), float(GRID.first_crossline + j)) for i, j in bins
        ]
    path = _picks_csv(tmp_path, locations, by)
    cube = build_velocity(vel(kind="picks", file=str(path), picks_location=by), GRID)
    for k, (i, j) in enumerate(bins):  # a bin on an analysis takes its picks exactly
        expect = np.interp(GRID.times, [0.0, 0.2], [1800 + 200 * k, 2400 + 200 * k])
        np.testing.assert_allclose(cube[i, j], expect, rtol=1e-6)
    # IDW is a convex combination: never outside the picked values at that time
    lo = np.interp(GRID.times, [0.0, 0.2], [1800, 2400])
    hi = np.interp(GRID.times, [0.0, 0.2], [2200, 2800])
    assert np.all(cube >= lo - 1e-3) and np.all(cube <= hi + 1e-3)
    # and a bin nearer to analysis 0 than to the others leans to it
    assert cube[1, 0, 0] < cube[4, 4, 0]
    # a single analysis location is laterally constant
    one = _picks_csv(tmp_path, locations[:1], by)
    cube1 = build_velocity(vel(kind="picks", file=str(one), picks_location=by), GRID)
    np.testing.assert_allclose(cube1, np.broadcast_to(cube1[0, 0], cube1.shape))


def test_picks_idw_matches_naive_weights(tmp_path: Path) -> None:
    locs = [(1010.0, 2030.0), (1100.0, 2100.0), (950.0, 2090.0)]
    path = _picks_csv(tmp_path, locs, "xy")
    cube = build_velocity(vel(kind="picks", file=str(path), picks_idw_power=3.0), GRID)
    x, y = GRID.bin_xy()
    i, j, k = 3, 2, 10
    w = np.array([1 / math.hypot(x[i, j] - a, y[i, j] - b) ** 3 for a, b in locs])
    vals = np.array(
        [np.interp(GRID.times[k], [0, 0.2], [1800 + 200 * n, 2400 + 200 * n]) for n in range(3)]
    )
    assert cube[i, j, k] == pytest.approx((w @ vals) / w.sum(), rel=1e-6)


def _cube_axes() -> dict[str, float]:
    # the cube's own grid: rotated differently, coarser, covering the output grid
    return {
        "origin_x_m": 900.0,
        "origin_y_m": 1950.0,
        "rotation_deg": 20.0,
        "inline_spacing_m": 40.0,
        "crossline_spacing_m": 50.0,
        "t0_s": 0.0,
        "dt_s": 0.008,
    }


def _cube_values(at: dict[str, float], n_il: int, n_xl: int, nt: int) -> np.ndarray:
    r = math.radians(at["rotation_deg"])
    i = np.arange(n_il)[:, None, None] * at["inline_spacing_m"]
    j = np.arange(n_xl)[None, :, None] * at["crossline_spacing_m"]
    x = at["origin_x_m"] + i * math.cos(r) - j * math.sin(r)
    y = at["origin_y_m"] + i * math.sin(r) + j * math.cos(r)
    t = at["t0_s"] + at["dt_s"] * np.arange(nt)[None, None, :]
    return np.asarray(linear_field(x, y, t), dtype=np.float64)


def _expected_on_grid() -> np.ndarray:
    x, y = GRID.bin_xy()
    return np.asarray(linear_field(x[:, :, None], y[:, :, None], GRID.times[None, None, :]))


def _write_zarr_cube(path: Path, values: np.ndarray, attrs: dict[str, Any]) -> Path:
    import zarr

    arr = zarr.create_array(str(path), shape=values.shape, dtype="float32", zarr_format=3)
    arr[...] = values.astype(np.float32)
    arr.attrs.update(attrs)
    return path


def test_cube_zarr_resampled_trilinearly(tmp_path: Path) -> None:
    at = _cube_axes()
    path = _write_zarr_cube(tmp_path / "v.zarr", _cube_values(at, 12, 10, 30), at)
    cube = build_velocity(vel(kind="cube_zarr", file=str(path)), GRID)
    np.testing.assert_allclose(cube, _expected_on_grid(), rtol=2e-6)


def _write_segy_cube(
    path: Path,
    values: np.ndarray,
    at: dict[str, float],
    scalar: int = -100,
    crossline_sorted: bool = False,
    endian: str = "big",
) -> Path:
    import segyio

    n_il, n_xl, nt = values.shape
    spec = segyio.spec()
    sorting = segyio.TraceSortingFormat
    spec.sorting = sorting.CROSSLINE_SORTING if crossline_sorted else sorting.INLINE_SORTING
    spec.format = 1  # IBM float
    spec.samples = list(1000.0 * (at["t0_s"] + at["dt_s"] * np.arange(nt)))
    spec.ilines = list(range(201, 201 + n_il))
    spec.xlines = list(range(301, 301 + n_xl))
    r = math.radians(at["rotation_deg"])
    factor = -scalar if scalar < 0 else 1.0 / scalar
    order = [(a, b) for a in range(n_il) for b in range(n_xl)]
    if crossline_sorted:
        order = [(a, b) for b in range(n_xl) for a in range(n_il)]
    spec.endian = endian
    with segyio.create(str(path), spec) as f:
        for k, (a, b) in enumerate(order):
            i, j = a * at["inline_spacing_m"], b * at["crossline_spacing_m"]
            x = at["origin_x_m"] + i * math.cos(r) - j * math.sin(r)
            y = at["origin_y_m"] + i * math.sin(r) + j * math.cos(r)
            f.header[k] = {
                segyio.TraceField.INLINE_3D: spec.ilines[a],
                segyio.TraceField.CROSSLINE_3D: spec.xlines[b],
                segyio.TraceField.CDP_X: round(x * factor),
                segyio.TraceField.CDP_Y: round(y * factor),
                segyio.TraceField.SourceGroupScalar: scalar,
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: round(at["dt_s"] * 1e6),
            }
            f.trace[k] = values[a, b].astype(np.float32)
        f.bin.update(hdt=round(at["dt_s"] * 1e6), hns=nt)
    return path


@pytest.mark.parametrize(
    ("scalar", "crossline_sorted", "endian"),
    [(-100, False, "big"), (-100, True, "big"), (10, False, "little")],
)
def test_cube_segy_resampled_trilinearly(
    tmp_path: Path, scalar: int, crossline_sorted: bool, endian: str
) -> None:
    at = _cube_axes()
    values = _cube_values(at, 12, 10, 30)
    path = _write_segy_cube(tmp_path / "v.sgy", values, at, scalar, crossline_sorted, endian)
    cube = build_velocity(vel(kind="cube_segy", file=str(path), segy_endian=endian), GRID)
    # IBM float and integer coordinates (cm, or 10 m with scalar +10): the field is linear,
    # so rounding the coordinates shifts the result by at most a few m/s
    atol = 0.05 if scalar < 0 else 5.0
    np.testing.assert_allclose(cube, _expected_on_grid(), rtol=1e-5, atol=atol)


def test_velocity_times_in_milliseconds_are_an_error() -> None:
    """1500 "s" is no record length: the times were given in ms; the stage stops (the
    image would be migrated with the first velocity only). Times past 100 s that do not
    match the output's as milliseconds (a long table for long output) are not an error."""
    cfg = vel(kind="table", table={"time_s": [0.0, 150.0], "vrms_mps": [1800.0, 2400.0]})
    with pytest.raises(InputDataError, match=r"velocity.table.*150 s.*divide them by 1000"):
        build_velocity(cfg, GRID)  # output 0 .. 0.196 s: 150 ms matches it
    long = OutputGrid(**{**dataclasses.asdict(GRID), "t0": 120.0})
    cfg = vel(kind="table", table={"time_s": [0.0, 125.0], "vrms_mps": [1800.0, 2400.0]})
    assert build_velocity(cfg, long).shape == (long.nil, long.nxl, long.nt)


@pytest.mark.parametrize(
    ("time_s", "warning"),
    [
        ([0.0, 0.2], None),  # covers the output's 0 .. 0.196 s
        ([0.0, 0.1], "48% of the output times take its first or last value"),
    ],
    ids=["covers", "half"],
)
def test_a_velocity_that_misses_the_output_times_is_warned(
    caplog: pytest.LogCaptureFixture, time_s: list[float], warning: str | None
) -> None:
    cfg = vel(kind="table", table={"time_s": time_s, "vrms_mps": [1800.0, 2400.0]})
    with caplog.at_level("WARNING", logger="pstm.velocity"):
        build_velocity(cfg, GRID)
    said = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    if warning is None:
        assert said == ""
    else:
        assert warning in said and "velocity.table" in said


def test_vrms_of_time_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    """The synthetic survey asks a velocity at single event times: not output times."""
    cfg = vel(kind="table", table={"time_s": [0.0, 1.5], "vrms_mps": [1800.0, 2400.0]})
    with caplog.at_level("WARNING", logger="pstm.velocity"):
        vrms_of_time(cfg, np.array([0.1]))
    assert not caplog.records


def test_picks_located_by_the_other_columns_name_the_setting(tmp_path: Path) -> None:
    path = _picks_csv(tmp_path, [(100.0, 10.0)], "inline_crossline")
    with pytest.raises(InputDataError, match=r"set velocity\.picks_location: inline_crossline"):
        build_velocity(vel(kind="picks", file=str(path)), GRID)  # picks_location: xy


def test_picks_off_the_grid_are_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Analyses numbered in another scheme than the grid's (inline 10 on a grid of 100..105)."""
    path = _picks_csv(tmp_path, [(10.0, 20.0)], "inline_crossline")
    with caplog.at_level("WARNING", logger="pstm.velocity"):
        build_velocity(vel(kind="picks", file=str(path), picks_location="inline_crossline"), GRID)
    assert "none of its 1 analysis locations lies on the output grid; the nearest" in caplog.text
    assert " km from it (check velocity.picks_location" in caplog.text


def test_a_pick_far_off_the_grid_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One analysis with a northing missing a digit (5,400 km away), the others on the
    grid: named, since inverse-distance weighting spreads it over the whole grid."""
    x, y = GRID.bin_xy()
    on = [(float(x[0, 0]), float(y[0, 0])), (float(x[5, 4]), float(y[5, 4]))]
    path = _picks_csv(tmp_path, [*on, (float(x[2, 2]), float(y[2, 2]) - 5.4e6)], "xy")
    with caplog.at_level("WARNING", logger="pstm.velocity"):
        build_velocity(vel(kind="picks", file=str(path)), GRID)
    assert "1 of its 3 analysis locations lie more than 50 km from the output grid" in caplog.text
    caplog.clear()
    regional = _picks_csv(tmp_path, [*on, (float(x[2, 2]) + 20_000.0, float(y[2, 2]))], "xy")
    with caplog.at_level("WARNING", logger="pstm.velocity"):
        build_velocity(vel(kind="picks", file=str(regional)), GRID)
    assert "from the output grid" not in caplog.text  # regional picks, 20 km away: fine


def test_cube_is_constant_beyond_its_edges(tmp_path: Path) -> None:
    at = {**_cube_axes(), "origin_x_m": 1050.0, "origin_y_m": 2050.0, "t0_s": 0.1}
    values = np.full((2, 2, 3), 2000.0)
    values[1] = 3000.0
    path = _write_zarr_cube(tmp_path / "v.zarr", values, at)
    cube = build_velocity(vel(kind="cube_zarr", file=str(path)), GRID)
    assert cube.min() >= 2000.0 and cube.max() <= 3000.0
    np.testing.assert_array_equal(cube[..., 0], cube[..., 10])  # before t0: first sample


# --------------------------------------------------------------------------- Dix, smoothing


def test_dix_constant_interval_is_the_same_rms() -> None:
    cube = build_velocity(vel(kind="constant", constant_mps=2200.0, type="interval"), GRID)
    np.testing.assert_allclose(cube, 2200.0, rtol=1e-6)


def test_dix_linear_interval_matches_analytic() -> None:
    a, b = 1600.0, 1500.0  # v_int(t) = a + b t
    cfg = vel(kind="table", type="interval", table={"time_s": [0.0, 1.0], "vrms_mps": [a, a + b]})
    grid = OutputGrid(0, 0, 0, 25, 25, 2, 2, t0=0.1, dt=0.004, nt=100)  # t0 off 0: from 0 s
    cube = build_velocity(cfg, grid)
    t = grid.times
    expect = np.sqrt(a * a + a * b * t + b * b * t * t / 3.0)
    np.testing.assert_allclose(cube[1, 1], expect, rtol=1e-5)
    # RMS lags the interval velocity when it increases
    assert np.all(cube[0, 0] < a + b * t)
    np.testing.assert_allclose(vrms_of_time(cfg, t), expect, rtol=1e-5)


def test_dix_two_layers() -> None:
    t = 0.004 * np.arange(201)
    v_int = np.where(t < 0.4, 2000.0, 3000.0)
    rms = dix_to_rms(v_int, 0.0, 0.004)
    k = 200  # t = 0.8 s: half the time in each layer (trapezoid smears the step by one sample)
    assert rms[k] == pytest.approx(math.sqrt((2000.0**2 + 3000.0**2) / 2), rel=2e-3)


def _naive_boxcar(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    a = np.moveaxis(a, axis, -1)
    out = np.empty_like(a)
    half = n // 2
    for k in range(a.shape[-1]):
        idx = np.clip(np.arange(k - half, k + half + 1), 0, a.shape[-1] - 1)
        out[..., k] = a[..., idx].mean(axis=-1)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize(("n", "axis"), [(1, 0), (3, 0), (5, 2), (7, 1), (9, 2)])
def test_moving_average_matches_naive(n: int, axis: int) -> None:
    a = np.random.default_rng(n).normal(size=(6, 7, 8))
    np.testing.assert_allclose(_moving_average(a, n, axis), _naive_boxcar(a, n, axis), atol=1e-12)


def test_boxcar_smoothing(tmp_path: Path) -> None:
    path = _picks_csv(tmp_path, [(1000.0, 2000.0), (1100.0, 2100.0)], "xy")
    raw = build_velocity(vel(kind="picks", file=str(path)), GRID)
    smooth = build_velocity(
        vel(
            kind="picks",
            file=str(path),
            smoothing="boxcar",
            smoothing_length_m=60.0,
            smoothing_length_s=0.02,
        ),
        GRID,
    )
    assert not np.allclose(raw, smooth)
    assert np.abs(np.diff(smooth, axis=0)).max() < np.abs(np.diff(raw, axis=0)).max()
    expect = _naive_boxcar(_naive_boxcar(_naive_boxcar(raw.astype(float), 3, 0), 3, 1), 5, 2)
    np.testing.assert_allclose(smooth, expect, rtol=1e-5)
    # a laterally and temporally constant field is left unchanged
    const = vel(kind="constant", constant_mps=2000.0, smoothing="boxcar")
    assert np.all(build_velocity(const, GRID) == 2000.0)


@pytest.mark.parametrize("kind", ["picks", "cube_zarr"])
def test_blocks_of_inlines_equal_one_block(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pstm.velocity

    if kind == "picks":
        path = _picks_csv(tmp_path, [(1000.0, 2000.0), (1100.0, 2100.0)], "xy")
    else:
        at = _cube_axes()
        path = _write_zarr_cube(tmp_path / "v.zarr", _cube_values(at, 12, 10, 30) ** 1.1, at)
    cfg = vel(
        kind=kind,
        file=str(path),
        type="interval",
        smoothing="boxcar",
        smoothing_length_m=60.0,  # 3 inlines: a halo of 1 on each side of a block
        smoothing_length_s=0.02,
    )
    whole = build_velocity(cfg, GRID)
    # 3 x 50 samples per inline: blocks of 1 inline (+ halo) each
    monkeypatch.setattr(pstm.velocity, "VELOCITY_BLOCK_SAMPLES", 3 * GRID.nxl * 50)
    blocks = build_velocity(cfg, GRID)
    np.testing.assert_array_equal(blocks, whole)
    on_disk = build_velocity_file(cfg, GRID, tmp_path / "vrms.npy")
    np.testing.assert_array_equal(on_disk, whole)
    assert not list(tmp_path.glob(".vrms.npy.tmp-*"))


def test_write_read_contract(tmp_path: Path) -> None:
    cube = build_velocity(vel(), GRID)
    write_velocity(tmp_path / "vrms.npy", cube)
    back = read_velocity(tmp_path / "vrms.npy")
    assert back.shape == (GRID.nil, GRID.nxl, GRID.nt) and back.dtype == np.float32
    np.testing.assert_array_equal(back, cube)


# --------------------------------------------------------------------------- errors

BAD_TABLES = {
    "nan": ("time_s,velocity_mps\n0.0,1500\n0.1,nan\n", "not finite"),
    "zero": ("time_s,velocity_mps\n0.0,1500\n0.1,0\n", "not positive"),
    "negative": ("time_s,velocity_mps\n0.0,-1500\n0.1,2000\n", "not positive"),
    "km_per_s": (
        "time_s,velocity_mps\n0.0,1.5\n0.1,2.0\n",
        "velocity 1.5 at entry 1 is outside the plausible range 300..10000",
    ),
    "time_decreasing": (
        "time_s,velocity_mps\n0.0,1500\n0.2,1600\n0.1,1700\n",
        "strictly increasing",
    ),
    "time_duplicate": ("time_s,velocity_mps\n0.0,1500\n0.0,1600\n", "strictly increasing"),
    "time_nan": ("time_s,velocity_mps\n0.0,1500\nnan,1600\n", "finite"),
    "missing_column": ("time_s,vrms\n0.0,1500\n", "missing ['velocity_mps']"),
    "not_a_number": ("time_s,velocity_mps\n0.0,fast\n", "expected numbers"),
    "ragged": ("time_s,velocity_mps\n0.0,1500,3\n", "3 fields"),
    "empty": ("# nothing\n", "no header row"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_table_file(tmp_path: Path, case: str) -> None:
    text, message = BAD_TABLES[case]
    path = write_text(tmp_path / "v.csv", text)
    with pytest.raises(InputDataError, match=None) as info:
        build_velocity(vel(kind="table_csv", file=str(path)), GRID)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_picks_name_the_analysis(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "p.csv",
        "x_m,y_m,time_s,velocity_mps\n1000,2000,0.0,1800\n1100,2100,0.1,1900\n"
        "1100,2100,0.05,2000\n",
    )
    with pytest.raises(InputDataError, match=r"x_m=1100, y_m=2100.*strictly increasing"):
        build_velocity(vel(kind="picks", file=str(path)), GRID)
    path = write_text(tmp_path / "p.csv", "inline,crossline,time_s,velocity_mps\n100,10,0,1800\n")
    with pytest.raises(InputDataError, match=r"missing \['x_m', 'y_m'\]"):
        build_velocity(vel(kind="picks", file=str(path)), GRID)
    path = write_text(tmp_path / "p.csv", "x_m,y_m,time_s,velocity_mps\n1000,2000,0,18000\n")
    with pytest.raises(InputDataError, match="plausible range"):
        build_velocity(vel(kind="picks", file=str(path)), GRID)


def test_missing_files(tmp_path: Path) -> None:
    for kind in ("table_csv", "picks", "cube_zarr", "cube_segy"):
        with pytest.raises(InputFileNotFoundError, match="not found"):
            build_velocity(vel(kind=kind, file=str(tmp_path / "nope")), GRID)


def test_bad_zarr_cubes(tmp_path: Path) -> None:
    at = _cube_axes()
    good = _cube_values(at, 12, 10, 30)
    cases: list[tuple[np.ndarray, dict[str, Any], str]] = [
        (good, {k: v for k, v in at.items() if k != "dt_s"}, "attributes ['dt_s'] are missing"),
        (good, {**at, "dt_s": 0.0}, "dt_s must be positive"),
        (good[0], at, "must be 3D"),
        (np.where(good > 2100, np.nan, good), at, "not finite"),
        (good - 2500.0, at, "not positive"),
        (good * 10.0, at, "plausible range"),
    ]
    for k, (values, attrs, message) in enumerate(cases):
        path = _write_zarr_cube(tmp_path / f"v{k}.zarr", values, attrs)
        with pytest.raises(InputDataError, match=None) as info:
            build_velocity(vel(kind="cube_zarr", file=str(path)), GRID)
        assert message in str(info.value), (k, str(info.value))


def test_bad_segy_cubes(tmp_path: Path) -> None:
    at = _cube_axes()
    values = _cube_values(at, 4, 3, 10)
    values[2, 1, 5] = 50.0
    path = _write_segy_cube(tmp_path / "v.sgy", values, at)
    with pytest.raises(InputDataError, match=r"index \(2, 1, 5\) is outside the plausible"):
        build_velocity(vel(kind="cube_segy", file=str(path)), GRID)
    with pytest.raises(InputDataError, match="segy_inline_byte"):
        build_velocity(vel(kind="cube_segy", file=str(path), segy_inline_byte=17), GRID)


def test_final_check_names_the_sample() -> None:
    # RMS (Dix) and boxcar smoothing are averages, so a checked input cannot leave the
    # range; the final check is the safety net for the file the tile jobs read.
    cube = np.full((2, 3, 4), 2000.0, np.float32)
    cube[1, 2, 3] = np.nan
    with pytest.raises(InputDataError, match=r"output grid.*index \(1, 2, 3\) is not finite"):
        check_velocity(cube, "v_rms on the output grid", vel())


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"kind": "picks"}, "needs 'file: <path>'"),
        ({"kind": "cube_zarr"}, "needs 'file: <path>'"),
        ({"kind": "constant", "constant_mps": 2000, "file": "v.csv"}, "'file' is not used"),
        (
            {"kind": "table_csv", "file": "v.csv", "constant_mps": 2000},
            "'constant_mps' is not used",
        ),
        (
            {"kind": "picks", "file": "p.csv", "table": {"time_s": [0], "vrms_mps": [2000]}},
            "'table' is not used",
        ),
        ({"kind": "constant", "constant_mps": 2.2}, "plausible range"),
        ({"table": {"time_s": [0, 1], "vrms_mps": [2000, 20000]}}, "plausible range"),
        ({"plausible_min_mps": 5000, "plausible_max_mps": 4000}, "must be below"),
        ({"kind": "isotropic"}, "velocity.kind"),
        ({"type": "average"}, "velocity.type"),
        ({"smoothing": "gaussian"}, "velocity.smoothing"),
    ],
)
def test_bad_velocity_config(section: dict[str, Any], message: str) -> None:
    from pstm.config import parse_config

    with pytest.raises(ConfigError, match=None) as info:
        parse_config({"velocity": section}, "test")
    assert message in str(info.value)


def test_vrms_of_time_needs_a_laterally_constant_kind(tmp_path: Path) -> None:
    path = _picks_csv(tmp_path, [(1000.0, 2000.0)], "xy")
    with pytest.raises(PstmError, match="varies laterally"):
        vrms_of_time(vel(kind="picks", file=str(path)), GRID.times)
