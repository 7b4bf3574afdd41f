"""``pstm init``: inspect a survey (SEG-Y, or Zarr + Parquet) and write a commented
``config.yaml`` with an output grid that covers it. Non-interactive: every choice has a
flag, and the summary printed at the end says what was found and proposed.

Grid proposal:

- **With inline/crossline numbers in the headers** (not all equal), the midpoints are
  fitted by least squares as ``m = a + b * inline + c * crossline``: ``|b|`` and ``|c|`` are
  the bin spacings, the direction of ``b`` the grid rotation, and inline/crossline numbers
  of the grid are those of the survey. (If crosslines increase clockwise from inlines,
  which the grid convention cannot express, the spacings and rotation are kept, grid
  crossline numbers run the other way from 1, and the summary says so.)
- **Without them**, the rotation is that of the minimum-area rectangle around the
  midpoints (rounded to :data:`ROTATION_STEP_DEG`) and the bins are square, half the median
  receiver interval (consecutive traces of one shot), or ``--bin-m``.

The grid then spans every midpoint: bin centres from the lowest to the highest fractional
bin index, so each midpoint lies inside a bin.
"""

from __future__ import annotations

import argparse
import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from numpy.typing import NDArray

from pstm.commands import finite_float, positive_float
from pstm.config import SegyEndian, SegyInputConfig, parse_config
from pstm.errors import ConfigError, InputDataError
from pstm.grid import OutputGrid
from pstm.io.headermap import HeaderWord
from pstm.io.headers import Geometry

#: The proposed rotation without inline/crossline headers is rounded to this step.
ROTATION_STEP_DEG = 1.0
#: Below this fraction of bins holding a midpoint, the summary warns that the grid or the
#: coordinates are likely wrong (a real survey's grid is mostly covered).
INIT_MIN_COVERAGE = 0.01
#: The proposed aperture (the largest offset) is rounded up to a multiple of this.
APERTURE_ROUND_M = 50.0
#: A least-squares inline/crossline fit is trusted when its RMS residual is below this
#: fraction of the smaller bin spacing.
FIT_TOLERANCE = 0.25
#: The headers' CDP X/Y replace the midpoints in the inline/crossline fit only where their
#: fit lies within this many bins of the midpoints' at every trace.
CDP_AGREEMENT = 0.5
#: Proposed coordinates and spacings are rounded to this (metres).
COORDINATE_ROUND_M = 0.01
#: A fitted rotation is rounded to this (1e-4 deg moves a bin 10 km away by 1.7 cm).
ROTATION_ROUND_DEG = 1e-4


@dataclass(frozen=True)
class Survey(Geometry):
    """What ``pstm init`` reads: sampling and, besides the coordinates (metres) of
    :class:`pstm.io.headers.Geometry`, the inline/crossline numbers when present."""

    source: str
    ns: int
    dt_s: float
    t0_s: float
    inline: NDArray[np.int64] | None
    crossline: NDArray[np.int64] | None
    #: the bin centres the headers give (SEG-Y CDP X/Y, bytes 181/185), where present: on a
    #: survey binned by its processor they fit the numbers exactly, the midpoints only to
    #: their scatter within the bins
    cdp_x: NDArray[np.float64] | None = None
    cdp_y: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class GridProposal:
    grid: OutputGrid
    how: str  # how rotation and spacing were found (for the summary and config comments)


def _numbers(values: NDArray[np.generic] | None) -> NDArray[np.int64] | None:
    """Inline or crossline numbers, or None when the header word holds one value only."""
    if values is None or len(np.unique(values)) < 2:
        return None
    return np.asarray(values, dtype=np.int64)


def _cdp(x: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Survey's cdp_x/cdp_y where the headers hold them (not all zero)."""
    from pstm.io.headers import has_positions

    return {"cdp_x": x, "cdp_y": y} if has_positions(x, y) else {}


def read_segy_survey(cfg: SegyInputConfig) -> Survey:
    from pstm.io.headers import has_positions
    from pstm.io.segy import (
        check_coordinate_scale,
        check_positions,
        first_start_time_s,
        inspect_layout,
        read_canonical,
    )

    layout = inspect_layout(cfg.path, cfg.endian)
    words = read_canonical(cfg, layout)
    t0_s = first_start_time_s(layout)
    f64 = {w: np.asarray(words[w], dtype=np.float64) for w in HeaderWord}
    sx, sy = f64[HeaderWord.SOURCE_X], f64[HeaderWord.SOURCE_Y]
    rx, ry = f64[HeaderWord.RECEIVER_X], f64[HeaderWord.RECEIVER_Y]
    check_positions(cfg.path, cfg.header_bytes, has_positions(sx, sy), has_positions(rx, ry))
    if cfg.check_coordinate_scale:
        check_coordinate_scale(cfg.path, cfg.header_bytes, words)
    return Survey(
        source=str(cfg.path),
        ns=layout.ns,
        dt_s=layout.dt_s,
        t0_s=t0_s,
        sx=sx,
        sy=sy,
        rx=rx,
        ry=ry,
        inline=_numbers(words[HeaderWord.INLINE]),
        crossline=_numbers(words[HeaderWord.CROSSLINE]),
        **_cdp(f64[HeaderWord.CDP_X], f64[HeaderWord.CDP_Y]),
    )


def read_zarr_survey(traces: Path, headers: Path) -> Survey:
    from pstm.io.headers import read_geometry
    from pstm.io.traces import open_traces

    store = open_traces(traces)
    geo = read_geometry(headers)
    names = pq.ParquetFile(headers).schema_arrow.names
    extra = {
        c: pq.read_table(headers, columns=[c]).column(c).to_numpy()
        for c in ("inline", "crossline", "cdp_x", "cdp_y")
        if c in names
    }
    cdp = (
        _cdp(np.asarray(extra["cdp_x"], np.float64), np.asarray(extra["cdp_y"], np.float64))
        if "cdp_x" in extra and "cdp_y" in extra
        else {}
    )
    return Survey(
        source=str(traces),
        ns=store.ns,
        dt_s=store.dt,
        t0_s=store.t0,
        sx=geo.sx,
        sy=geo.sy,
        rx=geo.rx,
        ry=geo.ry,
        inline=_numbers(extra["inline"]) if "inline" in extra else None,
        crossline=_numbers(extra["crossline"]) if "crossline" in extra else None,
        **cdp,
    )


def _hull(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Convex hull (Andrew's monotone chain), counter-clockwise."""
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        out: list[NDArray[np.float64]] = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def min_area_rotation_deg(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Rotation (degrees, in [0, 90)) of the minimum-area rectangle around the points
    (one of its sides is parallel to a convex-hull edge)."""
    hull = _hull(np.column_stack([x, y]))
    if len(hull) < 3:
        dx, dy = x.max() - x.min(), y.max() - y.min()
        return math.degrees(math.atan2(dy, dx)) % 90.0 if dx or dy else 0.0
    best, best_area = 0.0, math.inf
    edges = np.roll(hull, -1, axis=0) - hull
    for ex, ey in edges:
        theta = math.atan2(ey, ex)
        c, s = math.cos(theta), math.sin(theta)
        u, v = hull[:, 0] * c + hull[:, 1] * s, -hull[:, 0] * s + hull[:, 1] * c
        area = float((u.max() - u.min()) * (v.max() - v.min()))
        if area < best_area:
            best, best_area = math.degrees(theta) % 90.0, area
    return best


def receiver_interval_m(survey: Survey) -> float | None:
    """Median distance between the receivers of consecutive traces of one shot."""
    same_shot = (np.diff(survey.sx) == 0) & (np.diff(survey.sy) == 0)
    step = np.hypot(np.diff(survey.rx), np.diff(survey.ry))[same_shot]
    step = step[step > 0]
    return float(np.median(step)) if step.size else None


def _fit_inline_crossline(
    survey: Survey,
) -> tuple[NDArray[np.float64], float, str] | None:
    """Least-squares a, b, c of p = a + b * inline + c * crossline (rows of a 3x2 array),
    the RMS residual and what p was: the midpoints, or the headers' CDP X/Y where those fit
    better (a processor's bin centres fit exactly); None without usable numbers."""
    if survey.inline is None or survey.crossline is None:
        return None
    A = np.column_stack(
        [np.ones(survey.ntr), survey.inline.astype(float), survey.crossline.astype(float)]
    )

    def fit(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
        p = np.column_stack([x, y])
        coef, *_ = np.linalg.lstsq(A, p, rcond=None)
        return coef, float(np.sqrt(np.mean(np.sum((A @ coef - p) ** 2, axis=1))))

    coef, rms = fit(survey.mx, survey.my)
    if survey.cdp_x is None or survey.cdp_y is None:
        return coef, rms, "midpoints"
    cdp_coef, cdp_rms = fit(survey.cdp_x, survey.cdp_y)
    # the headers' bin centres are used only where they are those of the midpoints' grid:
    # at every trace within CDP_AGREEMENT bins of the midpoint fit (another datum, scalar,
    # axis order or a local frame fits its numbers just as exactly, elsewhere)
    bin_m = min(float(np.hypot(*coef[1])), float(np.hypot(*coef[2])))
    apart = float(np.max(np.hypot(*(A @ (cdp_coef - coef)).T))) if bin_m > 0 else math.inf
    if cdp_rms < rms and apart <= CDP_AGREEMENT * bin_m:
        return cdp_coef, cdp_rms, "CDP X/Y (bin centres from the headers)"
    return (
        coef,
        rms,
        (
            f"midpoints (the headers' CDP X/Y fit the numbers {apart:.1f} m away from them: "
            "not used)"
            if cdp_rms < rms
            else "midpoints"
        ),
    )


def _round(v: float, step: float = COORDINATE_ROUND_M) -> float:
    return round(round(v / step) * step, 6)


def propose_grid(survey: Survey, bin_m: float | None, rotation_deg: float | None) -> GridProposal:
    """An output grid that covers every midpoint of ``survey`` (see the module notes)."""
    fit = _fit_inline_crossline(survey)
    first_il = first_xl = 1
    origin: tuple[float, float] | None = None
    how = ""
    rot = 0.0
    numbered = False
    if fit is not None and bin_m is None and rotation_deg is None:
        coef, rms, fitted = fit
        b, c = coef[1], coef[2]
        dil, dxl = float(np.hypot(*b)), float(np.hypot(*c))
        right_handed = b[0] * c[1] - b[1] * c[0] > 0
        if dil > 0 and dxl > 0 and rms < FIT_TOLERANCE * min(dil, dxl):
            rot = math.degrees(math.atan2(b[1], b[0]))
            first_il, first_xl = int(survey.inline.min()), int(survey.crossline.min())  # type: ignore[union-attr]
            o = coef[0] + b * first_il + c * first_xl
            origin = (float(o[0]), float(o[1]))
            numbered = right_handed
            how = (
                f"least-squares fit of {fitted} to inline/crossline numbers "
                f"(RMS residual {rms:.2f} m)"
            )
            if not right_handed:
                how += (
                    "; the survey's crosslines increase clockwise from its inlines, which the "
                    "grid cannot follow: grid crossline numbers run the other way, from 1"
                )
        else:
            how = (
                "inline/crossline numbers not used: the midpoints do not follow them "
                f"(RMS residual {rms:.1f} m); "
            )
    if origin is None:
        if rotation_deg is not None:
            rot = rotation_deg
        else:
            rot = ROTATION_STEP_DEG * round(
                min_area_rotation_deg(survey.mx, survey.my) / ROTATION_STEP_DEG
            )
            rot = (rot + 45.0) % 90.0 - 45.0  # the rectangle's axis nearest +x
        if bin_m is None:
            interval = receiver_interval_m(survey)
            if interval is None:
                raise InputDataError(
                    f"{survey.source}: cannot tell the bin size (no inline/crossline numbers, "
                    "and no two consecutive traces share a source); give --bin-m"
                )
            bin_m = 0.5 * interval
            how += f"bins half the median receiver interval ({interval:.2f} m); "
        how += (
            "rotation given"
            if rotation_deg is not None
            else f"rotation of the minimum-area rectangle around the midpoints, rounded to {ROTATION_STEP_DEG:g} deg"
        )
        dil = dxl = bin_m
        origin = (float(survey.mx.min()), float(survey.my.min()))
    dil, dxl = _round(dil), _round(dxl)
    probe = OutputGrid(origin[0], origin[1], rot, dil, dxl, 1, 1, survey.t0_s, survey.dt_s, 1)
    fil, fxl = probe.to_grid(survey.mx, survey.my)
    i0, i1 = math.floor(fil.min() + 0.5), math.floor(fil.max() + 0.5)
    j0, j1 = math.floor(fxl.min() + 0.5), math.floor(fxl.max() + 0.5)
    ox, oy = probe.bin_xy(i0, 1, j0, 1)
    grid = OutputGrid(
        ox=_round(float(ox[0, 0])),
        oy=_round(float(oy[0, 0])),
        rotation_deg=_round(rot, ROTATION_ROUND_DEG),
        dil=dil,
        dxl=dxl,
        nil=i1 - i0 + 1,
        nxl=j1 - j0 + 1,
        t0=survey.t0_s,
        dt=survey.dt_s,
        nt=survey.ns,
        # survey numbering where the fit gave it, else 1, 2, ...
        first_inline=first_il + i0 if numbered else 1,
        first_crossline=first_xl + j0 if numbered else 1,
    )
    return GridProposal(grid, how)


def proposed_aperture_m(survey: Survey) -> float:
    """The largest offset, rounded up to :data:`APERTURE_ROUND_M` (a common start)."""
    return max(
        APERTURE_ROUND_M, math.ceil(survey.offset.max() / APERTURE_ROUND_M) * APERTURE_ROUND_M
    )


def coverage(grid: OutputGrid, survey: Survey) -> tuple[float, NDArray[np.int64]]:
    """Fraction of bins holding at least one midpoint, and the midpoint count per bin."""
    fil, fxl = grid.to_grid(survey.mx, survey.my)
    i, j = np.floor(fil + 0.5).astype(np.int64), np.floor(fxl + 0.5).astype(np.int64)
    inside = (i >= 0) & (i < grid.nil) & (j >= 0) & (j < grid.nxl)
    fold = np.zeros((grid.nil, grid.nxl), np.int64)
    np.add.at(fold, (i[inside], j[inside]), 1)
    return float((fold > 0).mean()), fold


def config_text(
    input_section: dict[str, Any], proposal: GridProposal, aperture_m: float, survey: Survey
) -> str:
    g = proposal.grid
    grid_section = {
        "origin_x_m": g.ox,
        "origin_y_m": g.oy,
        "rotation_deg": g.rotation_deg,
        "inline_spacing_m": g.dil,
        "crossline_spacing_m": g.dxl,
        "n_inline": g.nil,
        "n_crossline": g.nxl,
        "first_inline": g.first_inline,
        "first_crossline": g.first_crossline,
        "t0_s": g.t0,
        "dt_s": g.dt,
        "nt": g.nt,
    }

    def block(data: dict[str, Any]) -> str:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    today = datetime.date.today().isoformat()
    return "\n".join(
        [
            f"# pstm configuration written by `pstm init` on {today} from {survey.source}",
            f"# {survey.ntr} traces x {survey.ns} samples, dt {survey.dt_s * 1000:g} ms.",
            "# Every key is documented in README.md (Configuration); unset keys take defaults.",
            "",
            block({"input": input_section}).rstrip(),
            "",
            "# Output grid covering every midpoint. Found by: " + proposal.how + ".",
            "# Bin (i, j) centre = origin + i*inline_spacing*(cos r, sin r)",
            "#                           + j*crossline_spacing*(-sin r, cos r), r = rotation_deg.",
            "# Time axis: that of the input traces.",
            block({"grid": grid_section}).rstrip(),
            "",
            "# Aperture: the largest offset, rounded up; widen it for steep dips, narrow it",
            "# for speed. Tile sizes 'auto': pstm.plan sizes tiles to execution.memory_budget_mb.",
            block(
                {
                    "migration": {"aperture_m": aperture_m},
                    "execution": {"tile_n_inline": "auto", "tile_n_crossline": "auto"},
                }
            ).rstrip(),
            "",
            "# Velocity: none is read from the data. The default below is a placeholder:",
            "# replace it with your v_rms (see README, velocity).",
            block(
                {
                    "velocity": {
                        "kind": "table",
                        "table": {"time_s": [0.0, 1.5], "vrms_mps": [1800.0, 2400.0]},
                    }
                }
            ).rstrip(),
            "",
        ]
    )


def _parse_header_bytes(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        word, _, byte = item.partition("=")
        if not byte.strip().isdigit():
            raise ConfigError(
                f"--header-byte {item!r}: expected WORD=BYTE, e.g. source_x=181; words: "
                f"{', '.join(w.key for w in HeaderWord)}"
            )
        out[word.strip()] = int(byte)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="a SEG-Y file, or a Zarr trace array (with --headers)"
    )
    parser.add_argument("--headers", type=Path, help="Parquet headers when SOURCE is a Zarr array")
    parser.add_argument(
        "--endian", choices=[e.value for e in SegyEndian], default=SegyEndian.BIG.value
    )
    parser.add_argument(
        "--header-byte",
        action="append",
        default=[],
        metavar="WORD=BYTE",
        help="override a trace-header byte, e.g. source_x=181 (repeatable)",
    )
    parser.add_argument(
        "--bin-m",
        type=positive_float,
        help="square bins of this size (skips the inline/crossline fit)",
    )
    parser.add_argument(
        "--rotation-deg", type=finite_float, help="grid rotation (skips the inline/crossline fit)"
    )
    parser.add_argument(
        "--aperture-m",
        type=positive_float,
        help=f"migration aperture (default: the largest offset, rounded up to {APERTURE_ROUND_M:g} m)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("config.yaml"),
        help="where to write the config (default: config.yaml; an existing file needs --force)",
    )  # fmt: skip
    parser.add_argument(
        "--no-check-coordinate-scale",
        action="store_true",
        help="accept coordinates that give offsets a power of ten off the offset word (byte "
        "37) where that word is what is wrong (written into the config as "
        "input.segy.check_coordinate_scale: false)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args: argparse.Namespace) -> int:
    from pstm.io.atomic import atomic_output
    from pstm.pipeline import prepare_run

    if args.output.exists() and not args.force:
        raise ConfigError(f"{args.output} exists; pass --force to overwrite it or -o elsewhere")
    source = args.source.resolve()
    input_section: dict[str, Any]
    if args.headers is not None:
        survey = read_zarr_survey(source, args.headers)
        input_section = {
            "kind": "zarr",
            "traces_zarr": str(source),
            "headers_parquet": str(args.headers.resolve()),
        }
    else:
        segy: dict[str, Any] = {"path": str(source), "endian": args.endian}
        if args.no_check_coordinate_scale:
            segy["check_coordinate_scale"] = False
        overrides = _parse_header_bytes(args.header_byte)
        if overrides:
            segy["header_bytes"] = overrides
        cfg = parse_config({"input": {"kind": "segy", "segy": segy}}, "pstm init flags")
        assert cfg.input.segy is not None
        survey = read_segy_survey(cfg.input.segy)
        input_section = {"kind": "segy", "segy": segy}
    proposal = propose_grid(survey, args.bin_m, args.rotation_deg)
    aperture = args.aperture_m if args.aperture_m is not None else proposed_aperture_m(survey)
    text = config_text(input_section, proposal, aperture, survey)
    run_ = prepare_run(yaml.safe_load(text), source=f"{args.output} (proposed)")
    frac, fold = coverage(proposal.grid, survey)
    g = proposal.grid
    with atomic_output(args.output) as tmp:
        tmp.write_text(text)
    lines = [
        f"survey          : {survey.source}",
        f"traces          : {survey.ntr} x {survey.ns} samples, dt {survey.dt_s * 1000:g} ms, "
        f"{survey.t0_s:g} to {survey.t0_s + (survey.ns - 1) * survey.dt_s:g} s",
        f"midpoints       : x {survey.mx.min():.1f} .. {survey.mx.max():.1f} m, "
        f"y {survey.my.min():.1f} .. {survey.my.max():.1f} m",
        f"offsets         : {survey.offset.min():.1f} .. {survey.offset.max():.1f} m "
        f"(median {np.median(survey.offset):.1f})",
        "inline/crossline: "
        + (
            f"{survey.inline.min()}..{survey.inline.max()} x "
            f"{survey.crossline.min()}..{survey.crossline.max()}"
            if survey.inline is not None and survey.crossline is not None
            else "not in the headers"
        ),
        f"grid            : {g.nil} x {g.nxl} bins of {g.dil:g} x {g.dxl:g} m, origin "
        f"({g.ox:.2f}, {g.oy:.2f}), rotation {g.rotation_deg:g} deg (inline axis azimuth from +x)",
        f"                  {proposal.how}",
        f"coverage        : {100 * frac:.0f}% of bins hold a midpoint; midpoints per bin "
        f"max {fold.max()}, median {np.median(fold):g}"
        + (
            f"\n                  WARNING: under {INIT_MIN_COVERAGE:.0%} of bins hold a "
            "midpoint: check the "
            "coordinate bytes (--header-byte) and the bin size (--bin-m)"
            if frac < INIT_MIN_COVERAGE
            else ""
        ),
        f"aperture        : {aperture:g} m",
        f"tiles           : {len(run_.plan.tiles)} of {run_.plan.tile_nil} x {run_.plan.tile_nxl} bins",
        f"wrote           : {args.output} (set the velocity before a real run)",
    ]
    print("\n".join(lines))
    return 0
