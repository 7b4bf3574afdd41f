"""Spatial index over trace midpoints: output-grid bins -> trace ids (CSR layout).

Every trace falls in the cell of the output bin nearest its midpoint; cells extend past
the grid so that traces outside it but within aperture are found. A tile asks for the
traces within ``aperture_m`` of its rectangle and reads only the cell rows it needs.

On disk it is a directory of ``.npy`` files (memory-mapped by readers) and ``meta.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pstm.config import MigrationConfig, RhoFilter
from pstm.errors import InputDataError
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output
from pstm.io.headers import Geometry

#: Traces whose stored bin positions :meth:`MidpointIndex.matches` checks against a grid.
INDEX_CHECK_TRACES = 1000

_ARRAYS = ("order", "cell_start", "mil", "mxl", "sx", "sy", "rx", "ry")


@dataclass(frozen=True)
class MidpointIndex:
    """Trace ids sorted by cell; cell (a, b) (offsets from ``il0``/``xl0``) holds
    ``order[cell_start[k]:cell_start[k + 1]]`` with ``k = a * ncell_xl + b``."""

    il0: int
    xl0: int
    ncell_il: int
    ncell_xl: int
    order: NDArray[np.int64]
    cell_start: NDArray[np.int64]
    mil: NDArray[np.float64]  # fractional inline index of each trace's midpoint
    mxl: NDArray[np.float64]
    sx: NDArray[np.float64]
    sy: NDArray[np.float64]
    rx: NDArray[np.float64]
    ry: NDArray[np.float64]
    dil: float
    dxl: float

    @property
    def ntr(self) -> int:
        return len(self.order)

    def matches(self, grid: OutputGrid, sample: int = INDEX_CHECK_TRACES) -> bool:
        """Whether this index was built for ``grid``: the same bin spacings, and the
        fractional bin positions it stored for its first ``sample`` traces are where
        ``grid`` puts their midpoints (an index of another origin or rotation is not)."""
        if (self.dil, self.dxl) != (grid.dil, grid.dxl):
            return False
        n = min(sample, self.ntr)
        mil, mxl = grid.to_grid(
            0.5 * (self.sx[:n] + self.rx[:n]), 0.5 * (self.sy[:n] + self.ry[:n])
        )
        return bool(
            np.allclose(mil, self.mil[:n], atol=1e-6) and np.allclose(mxl, self.mxl[:n], atol=1e-6)
        )

    def query(self, il0: int, nil: int, xl0: int, nxl: int, aperture_m: float) -> NDArray[np.int64]:
        """Sorted ids of traces whose midpoint is within ``aperture_m`` of the tile's bins."""
        pad_il = math.ceil(aperture_m / self.dil) + 1
        pad_xl = math.ceil(aperture_m / self.dxl) + 1
        a0 = max(il0 - pad_il - self.il0, 0)
        a1 = min(il0 + nil + pad_il - self.il0, self.ncell_il)
        b0 = max(xl0 - pad_xl - self.xl0, 0)
        b1 = min(xl0 + nxl + pad_xl - self.xl0, self.ncell_xl)
        if a0 >= a1 or b0 >= b1:
            return np.zeros(0, dtype=np.int64)
        rows = np.arange(a0, a1) * self.ncell_xl
        starts, stops = self.cell_start[rows + b0], self.cell_start[rows + b1]
        if not len(starts) or int((stops - starts).sum()) == 0:
            return np.zeros(0, dtype=np.int64)
        cand = np.concatenate([self.order[s:e] for s, e in zip(starts, stops, strict=True)])
        mil, mxl = self.mil[cand], self.mxl[cand]
        du = np.maximum(np.maximum(il0 - mil, mil - (il0 + nil - 1)), 0.0) * self.dil
        dv = np.maximum(np.maximum(xl0 - mxl, mxl - (xl0 + nxl - 1)), 0.0) * self.dxl
        keep = du * du + dv * dv <= aperture_m * aperture_m
        return np.sort(cand[keep])


def build_index(geometry: Geometry, grid: OutputGrid) -> MidpointIndex:
    mil, mxl = grid.to_grid(geometry.mx, geometry.my)
    cil = np.rint(mil).astype(np.int64)
    cxl = np.rint(mxl).astype(np.int64)
    il0, xl0 = int(cil.min()), int(cxl.min())
    ncell_il, ncell_xl = int(cil.max()) - il0 + 1, int(cxl.max()) - xl0 + 1
    cell = (cil - il0) * ncell_xl + (cxl - xl0)
    order = np.argsort(cell, kind="stable").astype(np.int64)
    counts = np.bincount(cell, minlength=ncell_il * ncell_xl)
    cell_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return MidpointIndex(
        il0=il0,
        xl0=xl0,
        ncell_il=ncell_il,
        ncell_xl=ncell_xl,
        order=order,
        cell_start=cell_start,
        mil=mil,
        mxl=mxl,
        sx=geometry.sx,
        sy=geometry.sy,
        rx=geometry.rx,
        ry=geometry.ry,
        dil=grid.dil,
        dxl=grid.dxl,
    )


def write_index(path: str | Path, index: MidpointIndex) -> None:
    with atomic_output(path) as tmp:
        tmp.mkdir()
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(index, name))
        meta = {k: getattr(index, k) for k in ("il0", "xl0", "ncell_il", "ncell_xl", "dil", "dxl")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))


def read_index(path: str | Path) -> MidpointIndex:
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    return MidpointIndex(**meta, **arrays)


@dataclass(frozen=True)
class Coverage:
    """How the trace midpoints lie relative to the output grid."""

    n_traces: int
    n_within_aperture: int  # midpoints within the aperture of some output bin
    n_inside_grid: int  # midpoints inside the grid rectangle
    aperture_m: float
    data_x_m: tuple[float, float]
    data_y_m: tuple[float, float]
    grid_x_m: tuple[float, float]
    grid_y_m: tuple[float, float]
    #: a one-crossline grid (a 2D line): the median distance (m) of the midpoints within
    #: aperture from its line (:func:`check_line_rho`); None for other grids or none within
    offline_median_m: float | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def coverage(index: MidpointIndex, grid: OutputGrid, aperture_m: float) -> Coverage:
    """Count midpoints inside the grid and within ``aperture_m`` of any of its bins."""
    nil, nxl = grid.nil, grid.nxl
    du, dv = grid.outside_m(np.asarray(index.mil), np.asarray(index.mxl))
    mx = 0.5 * (np.asarray(index.sx) + np.asarray(index.rx))
    my = 0.5 * (np.asarray(index.sy) + np.asarray(index.ry))
    corners = [grid.bin_xy(i, 1, j, 1) for i in (0, nil - 1) for j in (0, nxl - 1)]
    gx = [float(c[0][0, 0]) for c in corners]
    gy = [float(c[1][0, 0]) for c in corners]
    within = du * du + dv * dv <= aperture_m * aperture_m
    return Coverage(
        n_traces=index.ntr,
        n_within_aperture=int(within.sum()),
        n_inside_grid=int(((du == 0) & (dv == 0)).sum()),
        aperture_m=aperture_m,
        data_x_m=(float(mx.min()), float(mx.max())) if len(mx) else (math.nan, math.nan),
        data_y_m=(float(my.min()), float(my.max())) if len(my) else (math.nan, math.nan),
        grid_x_m=(min(gx), max(gx)),
        grid_y_m=(min(gy), max(gy)),
        # on a line of bins, dv is the distance from the line
        offline_median_m=float(np.median(dv[within])) if nxl == 1 and within.any() else None,
    )


def check_coverage(cov: Coverage) -> None:
    """Raise :class:`InputDataError` when no trace can contribute to the image."""
    if cov.n_within_aperture > 0:
        return
    raise InputDataError(
        f"no trace midpoint lies within the migration aperture ({cov.aperture_m:g} m) of the "
        f"output grid: the {cov.n_traces} midpoints span x {cov.data_x_m[0]:.1f}..{cov.data_x_m[1]:.1f} m, "
        f"y {cov.data_y_m[0]:.1f}..{cov.data_y_m[1]:.1f} m, but the grid bins span "
        f"x {cov.grid_x_m[0]:.1f}..{cov.grid_x_m[1]:.1f} m, y {cov.grid_y_m[0]:.1f}..{cov.grid_y_m[1]:.1f} m; "
        "move the grid over the data (grid.origin_x_m, grid.origin_y_m, grid.rotation_deg) "
        "or check the header coordinates (units, scalars)"
    )


def write_coverage(path: str | Path, cov: Coverage) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(cov.as_dict(), indent=2) + "\n")


def max_aperture_m(migration: MigrationConfig) -> float:
    """The largest aperture any output sample uses (the time-variant table's last value)."""
    if migration.aperture_table is not None:
        return float(max(migration.aperture_table.aperture_m))
    return float(migration.aperture_m)


#: Above this median distance of its traces' midpoints from a one-crossline grid (a 2D line),
#: as a fraction of the aperture, the data under the line are areal (a 3D survey): each
#: bin's Kirchhoff sum then runs over an area, so the 3D rho filter (-d/dt) is right and the
#: 2D one (a half-derivative) leaves a 45 deg phase error. A crooked 2D line's midpoints
#: scatter by tens of metres about it; a 3D survey's within aperture by about half the
#: aperture.
AREAL_OFFLINE_FRACTION = 0.1


def check_line_rho(cov: Coverage, rho: RhoFilter, from_grid: bool) -> str | None:
    """On a 2D line over areal data (``cov.offline_median_m`` above
    :data:`AREAL_OFFLINE_FRACTION` of the aperture) with the 2D rho filter: raise
    :class:`InputDataError` where ``auto`` chose it from the grid (``from_grid``), else
    return a warning (the user set it)."""
    median, aperture_m = cov.offline_median_m, cov.aperture_m
    if (
        rho is not RhoFilter.TWO_D
        or median is None
        or median <= AREAL_OFFLINE_FRACTION * aperture_m
    ):
        return None
    what = (
        f"the output grid is one line of bins, but the midpoints within its aperture lie a "
        f"median {median:.0f} m off it (aperture {aperture_m:g} m): the data are areal (a 3D "
        "survey under a line of bins), so each bin sums over an area and the 3D rho filter is "
        "right; the 2D one leaves a 45 deg phase error"
    )
    if from_grid:
        raise InputDataError(
            f"migration.rho_filter: auto chose 2d from the grid's single crossline, but {what}. "
            "Set migration.rho_filter: 3d (or 2d for a 2D line this crooked)"
        )
    return f"migration.rho_filter: 2d, but {what}"
