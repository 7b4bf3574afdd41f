"""Trace headers in Parquet: one row per trace, in trace order.

Required (canonical) columns, metres: ``source_x, source_y, receiver_x, receiver_y``.
pstm derives ``midpoint_x, midpoint_y, offset, azimuth`` (degrees counter-clockwise from
+x, source to receiver). Any other column is kept untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pstm.errors import InputDataError, InputFileNotFoundError
from pstm.io.atomic import atomic_output

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a table is read or written, not with this module: tile jobs
# use the Geometry type (through pstm.index) but no Parquet (about 25 ms of their start)

REQUIRED_COLUMNS = ("source_x", "source_y", "receiver_x", "receiver_y")
DERIVED_COLUMNS = ("midpoint_x", "midpoint_y", "offset", "azimuth")


@dataclass(frozen=True)
class Geometry:
    """Source/receiver coordinates of every trace, float64, in trace order."""

    sx: NDArray[np.float64]
    sy: NDArray[np.float64]
    rx: NDArray[np.float64]
    ry: NDArray[np.float64]

    @property
    def ntr(self) -> int:
        return len(self.sx)

    @property
    def mx(self) -> NDArray[np.float64]:
        return 0.5 * (self.sx + self.rx)

    @property
    def my(self) -> NDArray[np.float64]:
        return 0.5 * (self.sy + self.ry)

    @property
    def offset(self) -> NDArray[np.float64]:
        return np.hypot(self.rx - self.sx, self.ry - self.sy)

    @property
    def azimuth_deg(self) -> NDArray[np.float64]:
        return np.degrees(np.arctan2(self.ry - self.sy, self.rx - self.sx))


def with_derived(table: pa.Table) -> pa.Table:
    """Add (or replace) the derived columns computed from the canonical ones."""
    import pyarrow as pa

    g = geometry_from_table(table, source="table")
    for name, values in zip(DERIVED_COLUMNS, (g.mx, g.my, g.offset, g.azimuth_deg), strict=True):
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, pa.array(values, type=pa.float64()))
    return table


def write_headers(path: str | Path, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    with atomic_output(path) as tmp:
        pq.write_table(with_derived(table), tmp)


def geometry_from_table(table: pa.Table, source: str) -> Geometry:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputDataError(
            f"{source}: missing required column(s) {missing}; headers need "
            f"{list(REQUIRED_COLUMNS)} in metres (have {table.column_names[:12]})"
        )
    cols = [
        np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
        for c in REQUIRED_COLUMNS
    ]
    for name, values in zip(REQUIRED_COLUMNS, cols, strict=True):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputDataError(
                f"{source}: column {name} is not finite at row {bad[0]} ({bad.size} rows in all)"
            )
    return Geometry(*cols)


#: The coordinate columns of each side of a trace, in Parquet and in the canonical words.
POSITION_COLUMNS = {
    "source": ("source_x", "source_y"),
    "receiver": ("receiver_x", "receiver_y"),
}


def has_positions(x: NDArray[np.generic], y: NDArray[np.generic]) -> bool:
    """Whether any trace has a non-zero coordinate (x, y) on one side."""
    return bool(np.any(np.asarray(x) != 0) or np.any(np.asarray(y) != 0))


#: Traces with an offset word (SEG-Y byte 37, integer metres) at least this long take part in
#: :func:`coordinate_scale_factor` (its rounding is then below 1 %).
SCALE_CHECK_MIN_OFFSET_M = 100.0
#: Fewest such traces for the check to say anything.
SCALE_CHECK_MIN_TRACES = 20
#: Relative agreement of an offset ratio with a power of ten, and the share of the traces
#: that must agree, for the coordinates to count as scaled by it.
SCALE_CHECK_TOLERANCE = 0.02
SCALE_CHECK_SHARE = 0.9


def coordinate_scale_factor(
    offset_word: NDArray[np.generic],
    sx: NDArray[np.generic],
    sy: NDArray[np.generic],
    rx: NDArray[np.generic],
    ry: NDArray[np.generic],
) -> float | None:
    """The power of ten (not 1) by which the offsets the coordinates give differ from the
    offset word's on nearly every trace, or None: a missing or wrong coordinate scalar (0
    where the file stores centimetres, say) shows as offsets exactly 100x too long."""
    word = np.abs(np.asarray(offset_word, dtype=np.float64))
    f64 = [np.asarray(v, np.float64) for v in (sx, sy, rx, ry)]
    dist = np.hypot(f64[2] - f64[0], f64[3] - f64[1])
    use = (word >= SCALE_CHECK_MIN_OFFSET_M) & (dist > 0)
    if int(use.sum()) < SCALE_CHECK_MIN_TRACES:
        return None
    ratio = dist[use] / word[use]
    power = float(10.0 ** np.round(np.log10(np.median(ratio))))
    agree = np.abs(ratio / power - 1.0) <= SCALE_CHECK_TOLERANCE
    return power if power != 1.0 and float(agree.mean()) >= SCALE_CHECK_SHARE else None


def positions_problem(sources_seen: bool, receivers_seen: bool) -> str | None:
    """What is wrong when every source coordinate, or every receiver coordinate, is zero
    (None when both sides have positions): the positions are elsewhere (other header
    bytes or columns) or missing, and midpoints from them would be wrong. (A survey whose
    sources, or receivers, all sit exactly at (0, 0) cannot be told from that: shift its
    coordinates.)"""
    if sources_seen and receivers_seen:
        return None
    if not (sources_seen or receivers_seen):
        return "every source and receiver coordinate is zero"
    side, other = ("source", "receivers") if not sources_seen else ("receiver", "sources")
    return f"every {side} coordinate is zero while the {other} have positions"


def require_headers(path: str | Path) -> None:
    """Fail when the headers file is missing: at the workflow's start too (Snakemake skips
    a job whose input is missing while its outputs exist, so after a run the old index
    would stay in use with the new path recorded)."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(
            f"headers not found: {path} (looked for {path.resolve()}; set input.headers_parquet)"
        )


def read_geometry(path: str | Path) -> Geometry:
    """Read and validate the canonical coordinate columns."""
    import pyarrow.parquet as pq

    path = Path(path)
    require_headers(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputDataError(f"{path} is not a readable Parquet file: {exc}") from None
    if "trace_id" in table.column_names:
        ids = table.column("trace_id").to_numpy()
        if len(np.unique(ids)) != len(ids):
            uniq, counts = np.unique(ids, return_counts=True)
            raise InputDataError(
                f"{path}: duplicate trace_id values, e.g. {uniq[counts > 1][:5].tolist()}; "
                "each row must describe a different trace"
            )
    geometry = geometry_from_table(table, source=str(path))
    problem = positions_problem(
        has_positions(geometry.sx, geometry.sy), has_positions(geometry.rx, geometry.ry)
    )
    if problem is not None and geometry.ntr:
        names = ", ".join(c for side in POSITION_COLUMNS.values() for c in side)
        raise InputDataError(
            f"{path}: {problem} (columns {names}); pstm needs source and receiver positions. "
            "Fill those columns"
        )
    return geometry
