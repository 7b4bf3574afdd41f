"""The migration velocity on the output grid: read, interpolate, convert, smooth, check.

Every :class:`~pstm.config.VelocityKind` funnels into one chain (:func:`build_velocity`):

1. **Sample** the given velocity on the output bins and a regular *work* time axis
   (the output times; from 0 s when a Dix conversion needs the whole column):

   - ``constant``, ``table``, ``table_csv``: linear in time, constant beyond the ends.
   - ``picks``: each analysis location is linear in time (constant beyond its ends), then
     every output bin takes the inverse-distance weighted mean of all locations,
     ``w_k = 1 / d_k^p`` (``p = picks_idw_power``; a bin on a location takes its value).
     IDW is a convex combination, so it never overshoots the picked values, needs no
     triangulation, and works for one location, collinear locations (2D lines) and bins
     outside the convex hull of the analyses.
   - ``cube_zarr``, ``cube_segy``: trilinear resampling from the cube's own regular grid
     (bilinear in inline/crossline, linear in time), constant beyond its edges (the number
     of output bins outside the cube is logged).

2. **Dix** (``type: interval``): ``v_rms(t)^2 = (1/t) * integral_0^t v_int(s)^2 ds``
   (trapezoidal rule on the output sample interval, from t = 0).
3. **Smooth** (``smoothing: boxcar``): separable moving averages of
   ``smoothing_length_m`` along inline and crossline and ``smoothing_length_s`` in time,
   with the edge values repeated beyond the grid (a constant field stays constant).
4. **Check**: finite, positive, inside ``plausible_min_mps..plausible_max_mps``.

Inputs are checked when read (finite, positive, plausible, time axis strictly increasing);
every failure is an :class:`~pstm.errors.InputDataError` that names the file, the row or
location, and the fix. The result is ``vrms.npy``: float32, (n_inline, n_crossline, nt).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pstm.config import (
    PickLocation,
    SegyEndian,
    VelocityConfig,
    VelocityKind,
    VelocitySmoothing,
    VelocityType,
)
from pstm.errors import ConfigError, InputDataError, InputFileNotFoundError
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output

log = logging.getLogger(__name__)

#: Inverse-distance weights (bins x analysis locations) computed at once: bounds that
#: temporary to ~32 MB (float64) however many analyses there are.
IDW_MAX_WEIGHTS = 4_000_000
#: Samples (inlines x crosslines x work times) the velocity chain holds at once; the
#: output is filled a block of inlines at a time (float64 work arrays of ~32 MB each), so
#: a cube larger than memory can be written to a memory-mapped ``vrms.npy``.
VELOCITY_BLOCK_SAMPLES = 4_000_000
#: Fraction of the output times a velocity may leave beyond its own first or last time
#: (where it is extended as a constant) before :func:`check_time_coverage` warns.
EXTRAPOLATED_TIME_WARN = 0.1
#: Velocity times past this (s) are taken for milliseconds (an error) where, read as ms,
#: they match the output's time range (within MS_MATCH_FACTOR): no reflection record is
#: that long.
MAX_PLAUSIBLE_TIME_S = 100.0
#: How closely a velocity's last time / 1000 must match the output's last time to count as
#: milliseconds (a factor either way); elsewhere long times are only warned about.
MS_MATCH_FACTOR = 10.0
#: Velocity picks farther than this from the output grid (and than the grid's own size) are
#: warned about: regional picks lie nearer, a coordinate typo (a missing digit) farther.
FAR_PICKS_M = 50_000.0
#: Sample interval of the work axis of :func:`vrms_of_time` (its times are arbitrary).
VRMS_OF_TIME_DT_S = 0.001
#: Required attributes of a Zarr velocity cube (its own regular grid, as in ``grid``).
ZARR_CUBE_ATTRS = (
    "origin_x_m",
    "origin_y_m",
    "rotation_deg",
    "inline_spacing_m",
    "crossline_spacing_m",
    "t0_s",
    "dt_s",
)
#: Column names of the text tables (header row; comma, semicolon or whitespace separated).
TABLE_COLUMNS = ("time_s", "velocity_mps")
PICK_LOCATION_COLUMNS: dict[PickLocation, tuple[str, str]] = {
    PickLocation.XY: ("x_m", "y_m"),
    PickLocation.INLINE_CROSSLINE: ("inline", "crossline"),
}

Float64Array = NDArray[np.float64]


# --------------------------------------------------------------------------- checks


def check_times(times_s: Float64Array, where: str) -> None:
    """A time axis must be finite and strictly increasing."""
    t = np.asarray(times_s, dtype=np.float64)
    if not np.isfinite(t).all():
        raise InputDataError(f"{where}: time values must be finite, got {t[~np.isfinite(t)][:5]}")
    steps = np.diff(t)
    if (steps <= 0).any():
        k = int(np.argmax(steps <= 0))
        raise InputDataError(
            f"{where}: the time axis must be strictly increasing, but time {t[k + 1]:g} s "
            f"(entry {k + 2}) follows {t[k]:g} s (entry {k + 1}); sort the rows by time and "
            "remove duplicates"
        )


def check_values(
    values: NDArray[Any], velocity: VelocityConfig, where: str, offset: tuple[int, ...] = ()
) -> None:
    """Velocities must be finite, positive and inside the configured plausible range
    (``offset`` is added to the reported index, for a block of a larger array)."""
    v = np.asarray(values)
    lo, hi = velocity.plausible_min_mps, velocity.plausible_max_mps
    for bad, what, fix in (
        (~np.isfinite(v), "is not finite", "fill the gap or remove the entry"),
        (np.isfinite(v) & (v <= 0), "is not positive", "velocities are speeds in m/s"),
        (
            np.isfinite(v) & (v > 0) & ((v < lo) | (v > hi)),
            f"is outside the plausible range {lo:g}..{hi:g} m/s",
            "check the units (m/s, not km/s or ft/s), or widen velocity.plausible_min_mps / "
            "velocity.plausible_max_mps",
        ),
    ):
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            at = tuple(i + o for i, o in zip(idx, offset + (0,) * len(idx), strict=False))
            place = f"entry {at[0] + 1}" if len(at) == 1 else f"index {at}"  # 1D: counted from 1
            raise InputDataError(
                f"{where}: velocity {float(v[idx]):.8g} at {place} {what} "
                f"({int(bad.sum())} such value(s)); {fix}"
            )


def check_velocity(cube: NDArray[np.float32], source: str, velocity: VelocityConfig) -> None:
    """The final cube: finite, positive, plausible (index = inline, crossline, time)."""
    check_values(cube, velocity, f"{source} (index = inline, crossline, time index)")


# --------------------------------------------------------------------------- text tables


class MissingColumnsError(InputDataError):
    """A text table's header row lacks columns; ``header`` holds the columns it has."""

    def __init__(self, message: str, header: list[str]) -> None:
        super().__init__(message)
        self.header = header


def read_table(path: str | Path, columns: tuple[str, ...]) -> dict[str, Float64Array]:
    """Named float columns of a small text table: a header row, then one row per entry,
    separated by commas, semicolons or whitespace; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"velocity file not found: {path} (velocity.file)")
    header: list[str] | None = None
    rows: list[list[float]] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        if header is None:
            header = [f.strip().lower() for f in fields]
            missing = [c for c in columns if c not in header]
            if missing:
                raise MissingColumnsError(
                    f"{path}: the header row (line {lineno}) has columns {header} but needs "
                    f"{list(columns)}; missing {missing}. Rename the columns in the file.",
                    header,
                )
            continue
        if len(fields) != len(header):
            raise InputDataError(
                f"{path}, line {lineno}: {len(fields)} fields but the header has "
                f"{len(header)} ({header})"
            )
        try:
            rows.append([float(fields[header.index(c)]) for c in columns])
        except ValueError:
            raise InputDataError(
                f"{path}, line {lineno}: expected numbers in columns {list(columns)}, got {raw!r}"
            ) from None
    if header is None or not rows:
        raise InputDataError(f"{path}: no header row and data rows found; see README, 'Velocity'")
    data = np.asarray(rows, dtype=np.float64)
    return {c: data[:, k] for k, c in enumerate(columns)}


def read_time_table(
    path: str | Path, velocity: VelocityConfig
) -> tuple[Float64Array, Float64Array]:
    """A v(t) table file (columns time_s, velocity_mps), checked."""
    cols = read_table(path, TABLE_COLUMNS)
    t, v = cols["time_s"], cols["velocity_mps"]
    check_times(t, f"{path} (column time_s)")
    check_values(
        v, velocity, f"{path} (column velocity_mps; entries are the data rows after the header)"
    )
    return t, v


@dataclass(frozen=True)
class Picks:
    """Velocity analyses: location k at world (x[k], y[k]) has picks ``times[k]``,
    ``values[k]``."""

    x: Float64Array
    y: Float64Array
    times: tuple[Float64Array, ...]
    values: tuple[Float64Array, ...]


def read_picks(path: str | Path, velocity: VelocityConfig, grid: OutputGrid) -> Picks:
    """Rows of (location, time_s, velocity_mps); rows of one location (same coordinates)
    must have strictly increasing times, in file order."""
    loc_cols = PICK_LOCATION_COLUMNS[velocity.picks_location]
    try:
        cols = read_table(path, (*loc_cols, *TABLE_COLUMNS))
    except MissingColumnsError as exc:  # located by the other columns? name the setting
        other = [
            kind
            for kind, names in PICK_LOCATION_COLUMNS.items()
            if kind is not velocity.picks_location and all(n in exc.header for n in names)
        ]
        if not other:
            raise
        raise InputDataError(
            f"{exc} Or, if the file locates its analyses by "
            f"{' and '.join(PICK_LOCATION_COLUMNS[other[0]])}, set velocity.picks_location: "
            f"{other[0].value}"
        ) from None
    a, b = cols[loc_cols[0]], cols[loc_cols[1]]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputDataError(f"{path}: location columns {list(loc_cols)} must be finite")
    check_values(
        cols["velocity_mps"],
        velocity,
        f"{path} (column velocity_mps; entries are the data rows after the header)",
    )
    keys, inverse = np.unique(np.stack([a, b], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    times, values = [], []
    for k in range(len(keys)):
        rows = np.flatnonzero(inverse == k)
        where = f"{path}, analysis at {loc_cols[0]}={keys[k, 0]:g}, {loc_cols[1]}={keys[k, 1]:g}"
        check_times(cols["time_s"][rows], where)
        times.append(cols["time_s"][rows])
        values.append(cols["velocity_mps"][rows])
    if velocity.picks_location is PickLocation.XY:
        x, y = keys[:, 0], keys[:, 1]
    else:
        x, y = _grid_xy(grid, keys[:, 0] - grid.first_inline, keys[:, 1] - grid.first_crossline)
    return Picks(x, y, tuple(times), tuple(values))


def _grid_xy(
    grid: OutputGrid, fil: Float64Array, fxl: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """World x, y of fractional (inline index, crossline index)."""
    (ai, bi), (aj, bj) = grid.u_il, grid.u_xl
    i, j = fil * grid.dil, fxl * grid.dxl
    return grid.ox + i * ai + j * aj, grid.oy + i * bi + j * bj


# --------------------------------------------------------------------------- cubes


@dataclass(frozen=True)
class Cube:
    """A velocity cube on its own regular grid: trace (i, j) sits at
    ``origin + i * step_il + j * step_xl`` (world metres); sample k at ``t0_s + k * dt_s``."""

    values: NDArray[np.float32]  # (n_inline, n_crossline, nt)
    origin: tuple[float, float]
    step_il: tuple[float, float]
    step_xl: tuple[float, float]
    t0_s: float
    dt_s: float

    def fractional_indices(
        self, x: Float64Array, y: Float64Array
    ) -> tuple[Float64Array, Float64Array]:
        """Fractional (i, j) of world points (solves the 2 x 2 affine system)."""
        (a, c), (b, d) = self.step_il, self.step_xl  # columns of [[a, b], [c, d]]
        det = a * d - b * c
        dx, dy = x - self.origin[0], y - self.origin[1]
        return (d * dx - b * dy) / det, (-c * dx + a * dy) / det


def _cube_steps(
    n_il: int, n_xl: int, step_il: tuple[float, float], step_xl: tuple[float, float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A single inline (or crossline) has no step: use a unit vector perpendicular to the
    other one, so the affine system stays solvable (the index is clamped to 0 anyway)."""
    if n_il == 1 and n_xl == 1:
        return (1.0, 0.0), (0.0, 1.0)
    if n_il == 1:
        norm = math.hypot(*step_xl)
        return (step_xl[1] / norm, -step_xl[0] / norm), step_xl
    if n_xl == 1:
        norm = math.hypot(*step_il)
        return step_il, (-step_il[1] / norm, step_il[0] / norm)
    return step_il, step_xl


def read_cube_zarr(path: str | Path) -> Cube:
    """A Zarr v3 float array (n_inline, n_crossline, nt) with the attributes
    :data:`ZARR_CUBE_ATTRS` (its grid, in the conventions of the ``grid`` section)."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"velocity cube not found: {path} (velocity.file)")
    try:
        arr = zarr.open_array(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for "not an array"
        raise InputDataError(
            f"{path}: not a readable Zarr array ({exc}); kind cube_zarr needs a Zarr v3 array"
        ) from None
    missing = [a for a in ZARR_CUBE_ATTRS if a not in arr.attrs]
    if missing:
        raise InputDataError(
            f"{path}: velocity cube attributes {missing} are missing; it needs {list(ZARR_CUBE_ATTRS)} "
            "(see README, 'Velocity')"
        )
    if arr.ndim != 3:
        raise InputDataError(
            f"{path}: a velocity cube must be 3D (inline, crossline, time), got shape {arr.shape}"
        )
    at = {k: float(arr.attrs[k]) for k in ZARR_CUBE_ATTRS}  # type: ignore[arg-type]
    for name in ("inline_spacing_m", "crossline_spacing_m", "dt_s"):
        if not at[name] > 0:
            raise InputDataError(f"{path}: attribute {name} must be positive, got {at[name]}")
    r = math.radians(at["rotation_deg"])
    step_il = (at["inline_spacing_m"] * math.cos(r), at["inline_spacing_m"] * math.sin(r))
    step_xl = (-at["crossline_spacing_m"] * math.sin(r), at["crossline_spacing_m"] * math.cos(r))
    return Cube(
        np.asarray(arr[...], dtype=np.float32),
        (at["origin_x_m"], at["origin_y_m"]),
        step_il,
        step_xl,
        at["t0_s"],
        at["dt_s"],
    )


def read_cube_segy(
    path: str | Path, inline_byte: int, crossline_byte: int, endian: SegyEndian
) -> Cube:
    """A SEG-Y velocity cube sorted by inline and crossline (segyio geometry). Trace
    positions from CDP X/Y (bytes 181/185) with the coordinate scalar (byte 71: positive
    multiplies, negative divides); times from the delay (byte 109) and sample interval."""
    import segyio

    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"velocity cube not found: {path} (velocity.file)")
    try:
        with segyio.open(
            str(path), "r", iline=inline_byte, xline=crossline_byte, endian=endian.value
        ) as f:
            values = np.asarray(segyio.tools.cube(f), dtype=np.float32)
            if f.sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING:
                values = values.transpose(1, 0, 2)
            n_il, n_xl = len(f.ilines), len(f.xlines)
            tf = segyio.TraceField
            scalar = f.attributes(tf.SourceGroupScalar)[:].astype(np.float64)
            cdp_x = f.attributes(tf.CDP_X)[:].astype(np.float64)
            cdp_y = f.attributes(tf.CDP_Y)[:].astype(np.float64)
            ilines = f.attributes(inline_byte)[:]
            xlines = f.attributes(crossline_byte)[:]
            samples_ms = np.asarray(f.samples, dtype=np.float64)
            dt_s = segyio.tools.dt(f) / 1e6
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputDataError(
            f"{path}: cannot read a regular inline/crossline velocity cube ({exc}); check "
            "velocity.segy_inline_byte / segy_crossline_byte / segy_endian and that every (inline, "
            "crossline) pair has exactly one trace"
        ) from None
    factor = np.where(scalar > 0, scalar, np.where(scalar < 0, -1.0 / scalar, 1.0))
    x, y = cdp_x * factor, cdp_y * factor
    il_order, xl_order = np.unique(ilines), np.unique(xlines)

    def xy_of(il: int, xl: int) -> tuple[float, float]:
        k = int(np.flatnonzero((ilines == il) & (xlines == xl))[0])
        return float(x[k]), float(y[k])

    o = xy_of(il_order[0], xl_order[0])
    p_il = xy_of(il_order[-1], xl_order[0])
    p_xl = xy_of(il_order[0], xl_order[-1])
    step_il = ((p_il[0] - o[0]) / max(n_il - 1, 1), (p_il[1] - o[1]) / max(n_il - 1, 1))
    step_xl = ((p_xl[0] - o[0]) / max(n_xl - 1, 1), (p_xl[1] - o[1]) / max(n_xl - 1, 1))
    if (n_il > 1 and math.hypot(*step_il) == 0) or (n_xl > 1 and math.hypot(*step_xl) == 0):
        raise InputDataError(
            f"{path}: traces of different inlines/crosslines share one CDP X/Y; the cube "
            "needs CDP coordinates (bytes 181/185) to place it on the output grid"
        )
    step_il, step_xl = _cube_steps(n_il, n_xl, step_il, step_xl)
    return Cube(values, o, step_il, step_xl, float(samples_ms[0]) / 1000.0, dt_s)


def check_cube(cube: Cube, velocity: VelocityConfig, source: str) -> None:
    if not (cube.dt_s > 0 and math.isfinite(cube.t0_s)):
        raise InputDataError(
            f"{source}: the time axis must be increasing (dt_s > 0), got t0 {cube.t0_s}, "
            f"dt {cube.dt_s}"
        )
    check_values(cube.values, velocity, f"{source} (index = inline, crossline, time index)")


def _linear_weights(f: Float64Array, n: int) -> tuple[NDArray[np.intp], Float64Array]:
    """Lower neighbour index and weight of the upper one, clamped to [0, n - 1]."""
    f = np.clip(f, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(f).astype(np.intp), max(n - 2, 0))
    return i0, f - i0 if n > 1 else np.zeros_like(f)


def resample_cube(
    cube: Cube, x: Float64Array, y: Float64Array, times_s: Float64Array
) -> NDArray[np.float64]:
    """Trilinear resampling onto bins at world (x, y), each shaped (nil, nxl), and the given
    times (constant beyond the cube's edges)."""
    n_il, n_xl, nt_c = cube.values.shape
    fi, fj = cube.fractional_indices(x, y)
    outside = (fi < -0.5) | (fi > n_il - 0.5) | (fj < -0.5) | (fj > n_xl - 0.5)
    if outside.any():
        log.warning(
            "velocity cube: %d of %d output bins lie outside the cube; they take the value of "
            "its nearest edge",
            int(outside.sum()),
            outside.size,
        )
    i0, wi = _linear_weights(fi, n_il)
    j0, wj = _linear_weights(fj, n_xl)
    i1, j1 = np.minimum(i0 + 1, n_il - 1), np.minimum(j0 + 1, n_xl - 1)
    k0, wk = _linear_weights((times_s - cube.t0_s) / cube.dt_s, nt_c)
    k1 = np.minimum(k0 + 1, nt_c - 1)
    out = np.empty((*x.shape, len(times_s)), np.float64)
    v = cube.values
    for il in range(x.shape[0]):  # one output inline at a time bounds the temporaries
        a, b, c, d = (
            v[i0[il], j0[il]],
            v[i1[il], j0[il]],
            v[i0[il], j1[il]],
            v[i1[il], j1[il]],
        )
        w_i, w_j = wi[il][:, None], wj[il][:, None]
        col = (a * (1 - w_i) + b * w_i) * (1 - w_j) + (c * (1 - w_i) + d * w_i) * w_j
        out[il] = col[:, k0] * (1 - wk) + col[:, k1] * wk
    return out


# --------------------------------------------------------------------------- picks


def idw_picks(
    picks: Picks, x: Float64Array, y: Float64Array, times_s: Float64Array, power: float
) -> Float64Array:
    """Inverse-distance weighted picks at bins at world (x, y), each shaped (nil, nxl);
    returns (nil, nxl, len(times))."""
    traces = np.stack(
        [np.interp(times_s, t, v) for t, v in zip(picks.times, picks.values, strict=True)]
    )  # (n_locations, nt)
    bx, by = x.reshape(-1), y.reshape(-1)
    out = np.empty((bx.size, len(times_s)), np.float64)
    block = max(1, IDW_MAX_WEIGHTS // len(picks.x))
    for start in range(0, bx.size, block):
        sl = slice(start, start + block)
        d = np.hypot(bx[sl, None] - picks.x[None, :], by[sl, None] - picks.y[None, :])
        on_pick = d == 0
        with np.errstate(divide="ignore"):
            w = np.where(on_pick.any(axis=1, keepdims=True), on_pick * 1.0, d**-power)
        out[sl] = (w @ traces) / w.sum(axis=1, keepdims=True)
    return out.reshape(*x.shape, len(times_s))


# --------------------------------------------------------------------------- chain


def dix_to_rms(v_int: NDArray[np.float64], t0_s: float, dt_s: float) -> NDArray[np.float64]:
    """RMS from interval velocity along the last axis, sampled from t0_s = 0:
    ``v_rms(t)^2 = (1/t) * integral_0^t v_int^2`` (trapezoidal rule); v_rms(0) = v_int(0)."""
    if t0_s != 0.0:
        raise ValueError("dix_to_rms needs a time axis starting at 0 s")
    sq = v_int.astype(np.float64) ** 2
    integral = np.zeros_like(sq)
    integral[..., 1:] = np.cumsum(0.5 * (sq[..., 1:] + sq[..., :-1]) * dt_s, axis=-1)
    t = dt_s * np.arange(sq.shape[-1])
    out = np.empty_like(sq)
    out[..., 0] = v_int[..., 0]
    out[..., 1:] = np.sqrt(integral[..., 1:] / t[1:])
    return out


def _moving_average(a: NDArray[np.float64], n: int, axis: int) -> NDArray[np.float64]:
    """Centred boxcar of n (odd) samples along ``axis``, edge values repeated."""
    if n <= 1 or a.shape[axis] == 1:
        return a
    half = n // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (half + 1, half)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    hi = np.take(c, np.arange(n, n + a.shape[axis]), axis=axis)
    lo = np.take(c, np.arange(0, a.shape[axis]), axis=axis)
    return (hi - lo) / n


def _odd_samples(length: float, step: float) -> int:
    """A boxcar length in samples: odd, at least 1."""
    n = int(round(length / step))
    return n + 1 if n % 2 == 0 else n


def smooth(
    v: NDArray[np.float64], velocity: VelocityConfig, dil: float, dxl: float, dt: float
) -> NDArray[np.float64]:
    """The configured smoothing of a (nil, nxl, nt) cube."""
    if velocity.smoothing is VelocitySmoothing.NONE:
        return v
    for axis, step, length in (
        (0, dil, velocity.smoothing_length_m),
        (1, dxl, velocity.smoothing_length_m),
        (2, dt, velocity.smoothing_length_s),
    ):
        v = _moving_average(v, _odd_samples(length, step), axis)
    return v


def _work_times(velocity: VelocityConfig, times_s: Float64Array, dt_s: float) -> Float64Array:
    """RMS velocity is sampled at the output times; interval velocity from 0 s on a
    regular axis, because Dix integrates the whole column."""
    if velocity.type is VelocityType.RMS:
        return times_s
    n = int(math.ceil(float(times_s[-1]) / dt_s - 1e-9)) + 1
    return dt_s * np.arange(max(n, 2), dtype=np.float64)


Sampler = Callable[[int, int], Float64Array]


def _sampler(velocity: VelocityConfig, grid: OutputGrid, t_work: Float64Array) -> Sampler:
    """Step 1: reads (and checks) the input once; returns ``sample(il0, nil)``, the given
    velocity on output inlines il0 .. il0 + nil - 1 and the work times. Warns where the
    input's time axis misses the output's (:func:`check_time_coverage`)."""
    kind = velocity.kind
    if kind in (VelocityKind.CONSTANT, VelocityKind.TABLE, VelocityKind.TABLE_CSV):
        column = _laterally_constant(velocity, t_work, grid.times)
        return lambda il0, nil: np.broadcast_to(column, (nil, grid.nxl, len(t_work))).copy()
    assert velocity.file is not None  # guaranteed by the model validator
    if kind is VelocityKind.PICKS:
        picks = read_picks(velocity.file, velocity, grid)
        log.info("velocity picks: %d analysis locations from %s", len(picks.x), velocity.file)
        first = min(float(t[0]) for t in picks.times)
        last = max(float(t[-1]) for t in picks.times)
        check_time_coverage(str(velocity.file), first, last, grid.times)
        fil, fxl = grid.to_grid(picks.x, picks.y)
        inside = (fil > -0.5) & (fil < grid.nil - 0.5) & (fxl > -0.5) & (fxl < grid.nxl - 0.5)
        # farther from the grid than FAR_PICKS_M and than its own size, in metres: a typo
        # or another coordinate system (regional picks around a small patch are nearer)
        du, dv = grid.outside_m(fil, fxl)
        size = math.hypot(grid.nil * grid.dil, grid.nxl * grid.dxl)
        distance = np.hypot(du, dv)
        far = distance > max(FAR_PICKS_M, size)
        if not inside.any():
            k = int(np.argmin(distance))
            log.warning(
                "%s: none of its %d analysis locations lies on the output grid; the nearest, "
                "x %.1f, y %.1f m, is %.3g km from it (check velocity.picks_location and the "
                "locations' numbers or coordinates)",
                velocity.file,
                len(picks.x),
                float(picks.x[k]),
                float(picks.y[k]),
                float(distance[k]) / 1000.0,
            )
        elif far.any():
            k = int(np.flatnonzero(far)[0])
            log.warning(
                "%s: %d of its %d analysis locations lie more than %g km from the output "
                "grid, e.g. x %.1f, y %.1f m (grid inline %.0f, crossline %.0f): check their "
                "coordinates (inverse-distance weighting still spreads them over the grid)",
                velocity.file,
                int(far.sum()),
                len(picks.x),
                max(FAR_PICKS_M, size) / 1000.0,
                float(picks.x[k]),
                float(picks.y[k]),
                grid.first_inline + float(fil[k]),
                grid.first_crossline + float(fxl[k]),
            )
        power = velocity.picks_idw_power
        return lambda il0, nil: idw_picks(picks, *grid.bin_xy(il0, nil), t_work, power)
    if kind is VelocityKind.CUBE_ZARR:
        cube = read_cube_zarr(velocity.file)
    elif kind is VelocityKind.CUBE_SEGY:
        cube = read_cube_segy(
            velocity.file,
            velocity.segy_inline_byte,
            velocity.segy_crossline_byte,
            velocity.segy_endian,
        )
    else:
        raise AssertionError(f"unhandled velocity kind {kind}")
    check_cube(cube, velocity, str(velocity.file))
    log.info("velocity cube %s: %s samples", velocity.file, cube.values.shape)
    last = cube.t0_s + (cube.values.shape[2] - 1) * cube.dt_s
    check_time_coverage(str(velocity.file), cube.t0_s, last, grid.times, cube=True)
    return lambda il0, nil: resample_cube(cube, *grid.bin_xy(il0, nil), t_work)


def check_time_coverage(
    source: str, first_s: float, last_s: float, times_s: Float64Array, cube: bool = False
) -> None:
    """Check a velocity's time axis (``first_s`` .. ``last_s``) against the output times
    ``times_s``: times past MAX_PLAUSIBLE_TIME_S that match the output's as milliseconds
    (MS_MATCH_FACTOR) are an error (no record is that long), and more than EXTRAPOLATED_TIME_WARN of the output times beyond its ends, where
    the velocity is extended as a constant, a warning (a table too short; a ``cube`` with
    its axes in another order, or a wrong dt)."""
    end = float(times_s[-1])
    beyond = float(np.mean((times_s < first_s) | (times_s > last_s)))
    as_ms = last_s / 1000.0  # the times read as milliseconds
    if last_s > MAX_PLAUSIBLE_TIME_S and end / MS_MATCH_FACTOR <= as_ms <= end * MS_MATCH_FACTOR:
        raise InputDataError(
            f"{source}: its times reach {last_s:g} s, past any seismic record "
            f"({MAX_PLAUSIBLE_TIME_S:g} s): velocity times are in seconds; if these are "
            "milliseconds, divide them by 1000"
        )
    if beyond > EXTRAPOLATED_TIME_WARN:
        check = (
            "its axes (inline, crossline, time) and its dt"
            if cube
            else "that it reaches the output's last time"
        )
        log.warning(
            "%s: its times span %g..%g s and the output's %g..%g s: %.0f%% of the output "
            "times take its first or last value (extended as a constant); check %s",
            source,
            first_s,
            last_s,
            float(times_s[0]),
            end,
            100.0 * beyond,
            check,
        )


def _laterally_constant(
    velocity: VelocityConfig, t_work: Float64Array, output_times: Float64Array | None = None
) -> Float64Array:
    """The velocity of a laterally constant kind at the work times; with ``output_times``
    (building the output velocity) a table's time axis is checked against them
    (:func:`check_time_coverage`)."""
    if velocity.kind is VelocityKind.CONSTANT:
        assert velocity.constant_mps is not None  # guaranteed by the model validator
        return np.full(t_work.shape, velocity.constant_mps)
    if velocity.kind is VelocityKind.TABLE:
        assert velocity.table is not None
        t, v = np.asarray(velocity.table.time_s), np.asarray(velocity.table.vrms_mps)
        source = "velocity.table"
    elif velocity.kind is VelocityKind.TABLE_CSV:
        assert velocity.file is not None
        source, (t, v) = str(velocity.file), read_time_table(velocity.file, velocity)
    else:
        raise ConfigError(
            f"velocity kind '{velocity.kind.value}' varies laterally; a single v_rms(t) needs "
            "kind constant, table or table_csv"
        )
    if output_times is not None:
        check_time_coverage(source, float(t[0]), float(t[-1]), output_times)
    return np.interp(t_work, t, v)


def _to_times(v: Float64Array, t_work: Float64Array, times_s: Float64Array) -> Float64Array:
    """Linear resampling along the last axis from the work times to the output times."""
    if t_work is times_s:
        return v
    k0, w = _linear_weights(
        np.interp(times_s, t_work, np.arange(len(t_work), dtype=float)), len(t_work)
    )
    k1 = np.minimum(k0 + 1, len(t_work) - 1)
    out: Float64Array = v[..., k0] * (1 - w) + v[..., k1] * w
    return out


def build_velocity(
    velocity: VelocityConfig, grid: OutputGrid, out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """v_rms at every output sample, shaped (n_inline, n_crossline, nt), float32 (the
    chain in the module docstring), into ``out`` (e.g. a memory map) or a new array.

    Blocks of inlines are processed one at a time; a block is extended by half the inline
    smoothing length on each side, so smoothing across block edges is exact."""
    shape = (grid.nil, grid.nxl, grid.nt)
    cube = np.empty(shape, np.float32) if out is None else out
    if cube.shape != shape:
        raise ValueError(f"out has shape {cube.shape}, expected {shape}")
    times = grid.times
    t_work = _work_times(velocity, times, grid.dt)
    sample = _sampler(velocity, grid, t_work)
    halo = 0
    if velocity.smoothing is VelocitySmoothing.BOXCAR:
        halo = _odd_samples(velocity.smoothing_length_m, grid.dil) // 2
    block = max(1, VELOCITY_BLOCK_SAMPLES // (grid.nxl * len(t_work)) - 2 * halo)
    for i0 in range(0, grid.nil, block):
        i1 = min(grid.nil, i0 + block)
        a0, a1 = max(0, i0 - halo), min(grid.nil, i1 + halo)
        v = sample(a0, a1 - a0)
        if velocity.type is VelocityType.INTERVAL:
            v = dix_to_rms(v, 0.0, grid.dt)
        v = smooth(v, velocity, grid.dil, grid.dxl, grid.dt)
        part = _to_times(v[i0 - a0 : i1 - a0], t_work, times).astype(np.float32)
        check_values(
            part,
            velocity,
            "v_rms on the output grid (index = inline, crossline, time index)",
            offset=(i0, 0, 0),
        )
        cube[i0:i1] = part
    return cube


def vrms_of_time(velocity: VelocityConfig, times_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """v_rms at the given times for a laterally constant kind (constant, table, table_csv),
    through the same chain as :func:`build_velocity` on a regular axis of
    :data:`VRMS_OF_TIME_DT_S` from 0 s."""
    times_s = np.asarray(times_s, dtype=np.float64)
    where = f"v_rms at the times (s) {np.array2string(times_s, threshold=6, precision=4)}"
    if velocity.type is VelocityType.RMS and velocity.smoothing is VelocitySmoothing.NONE:
        exact = _laterally_constant(velocity, times_s)  # nothing to integrate or smooth
        check_values(exact, velocity, where)
        return exact
    t_end = max(float(times_s.max(initial=0.0)), VRMS_OF_TIME_DT_S)
    n = int(math.ceil(t_end / VRMS_OF_TIME_DT_S)) + 2
    t_work = VRMS_OF_TIME_DT_S * np.arange(n, dtype=np.float64)
    v = _laterally_constant(velocity, t_work)[None, None, :]
    if velocity.type is VelocityType.INTERVAL:
        v = dix_to_rms(v, 0.0, VRMS_OF_TIME_DT_S)
    v = smooth(v, velocity, 1.0, 1.0, VRMS_OF_TIME_DT_S)
    out: NDArray[np.float64] = np.interp(times_s, t_work, v[0, 0])
    check_values(out, velocity, where)
    return out


# --------------------------------------------------------------------------- files


def velocity_info(
    velocity: VelocityConfig, grid: OutputGrid, cube: NDArray[np.float32]
) -> dict[str, Any]:
    """What the QC figure and the run summary show about the velocity actually used."""
    info: dict[str, Any] = {
        "kind": velocity.kind.value,
        "type": velocity.type.value,
        "smoothing": velocity.smoothing.value,
        "vrms_min_mps": float(cube.min()),
        "vrms_max_mps": float(cube.max()),
        "locations_il_xl": [],
    }
    if velocity.kind is VelocityKind.PICKS:
        assert velocity.file is not None
        picks = read_picks(velocity.file, velocity, grid)
        fil, fxl = grid.to_grid(picks.x, picks.y)
        info["locations_il_xl"] = [
            [float(grid.first_inline + a), float(grid.first_crossline + b)]
            for a, b in zip(fil, fxl, strict=True)
        ]
    return info


def input_files(velocity: VelocityConfig) -> list[str]:
    """The files the velocity stage reads (its Snakemake inputs)."""
    return [] if velocity.file is None else [str(velocity.file)]


def require_input_files(velocity: VelocityConfig) -> None:
    """Fail before any job when a file the velocity stage reads is missing. Snakemake itself
    would not: it skips a job whose input is missing while its outputs exist, so after an
    earlier run a misspelt or moved velocity file would leave the old velocity (and the
    image migrated with it) in place, with the new file recorded in the resolved config."""
    for name in input_files(velocity):
        if not Path(name).exists():
            raise InputFileNotFoundError(
                f"velocity file not found: {name} (looked for {Path(name).resolve()}; "
                f"velocity.file, kind {velocity.kind.value}; a relative path is read from the "
                "workflow directory): fix the path or the kind"
            )


def write_velocity(path: str | Path, cube: NDArray[np.float32]) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, cube)


def build_velocity_file(
    velocity: VelocityConfig, grid: OutputGrid, path: str | Path
) -> NDArray[np.float32]:
    """:func:`build_velocity` straight into a memory-mapped ``.npy`` (written atomically);
    returns it, read-only memory-mapped."""
    with atomic_output(path) as tmp:
        mm = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(grid.nil, grid.nxl, grid.nt)
        )
        build_velocity(velocity, grid, out=mm)
        mm.flush()
        del mm
    return read_velocity(path)


def write_velocity_info(path: str | Path, info: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(info, indent=1))


def read_velocity(path: str | Path) -> NDArray[np.float32]:
    """Memory-mapped velocity cube (a tile reads only its part)."""
    cube: NDArray[np.float32] = np.load(path, mmap_mode="r")
    return cube
