"""Tile planning: the one function that cuts the output grid into tile jobs.

Every caller (the Snakefile, ``pstm preflight``, the tests) uses :func:`plan_tiles`.
A tile job's memory is modelled by :func:`tile_memory_bytes` from the named constants
below; ``auto`` tile sizes are the largest square tiles that fit the memory budget,
shrunk until there are at least ``min_tile_jobs`` tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pstm.config import AUTO, ExecutionConfig, MigrationConfig
from pstm.errors import PlanError
from pstm.grid import OutputGrid

#: Resident memory of a tile job before it allocates anything for its tile: the Python
#: interpreter with numpy, numba, zarr and pyarrow imported (measured ~250 MB; rounded up).
PROCESS_BASELINE_MB = 400
#: Bytes held per output sample besides gathers and fold: the v_rms tile (4) plus the
#: reference kernel's per-trace float64 temporaries (traveltime, index, weight, value:
#: ~6 arrays of 8 bytes over the in-aperture samples).
WORK_BYTES_PER_OUTPUT_SAMPLE = 52
#: Bytes per output sample per offset class: float32 gathers + int32 fold, and the copy
#: made when the tile file is written.
BYTES_PER_CLASS_SAMPLE = 16
#: Trace batches are held twice (as read from Zarr and as a contiguous float32 copy).
TRACE_BATCH_COPIES = 2
#: Declared memory = modelled memory x this factor (head room for allocator slack).
MEMORY_SAFETY_FACTOR = 1.25
#: Smallest side of an auto tile, in bins; below it the aperture halo dominates the reads.
MIN_AUTO_TILE_BINS = 4


@dataclass(frozen=True)
class Tile:
    id: str
    il0: int
    nil: int
    xl0: int
    nxl: int

    def as_params(self) -> dict[str, int | str]:
        return {"id": self.id, "il0": self.il0, "nil": self.nil, "xl0": self.xl0, "nxl": self.nxl}


@dataclass(frozen=True)
class TilePlan:
    tiles: tuple[Tile, ...]
    tile_nil: int
    tile_nxl: int
    mem_mb_per_job: int  # declared to the scheduler (safety factor included)
    threads_per_job: int
    reason: str  # how the tile size was chosen

    def by_id(self) -> dict[str, Tile]:
        return {t.id: t for t in self.tiles}


def n_offset_classes(migration: MigrationConfig) -> int:
    edges = migration.offset_classes_m
    return max(len(edges) - 1, 1)


def tile_memory_bytes(
    nil: int, nxl: int, nt: int, n_classes: int, trace_batch: int, ns_in: int
) -> int:
    """Modelled peak memory of one tile job (without the safety factor)."""
    samples = nil * nxl * nt
    return (
        PROCESS_BASELINE_MB * 2**20
        + samples * (WORK_BYTES_PER_OUTPUT_SAMPLE + BYTES_PER_CLASS_SAMPLE * n_classes)
        + trace_batch * ns_in * 4 * TRACE_BATCH_COPIES
    )


def _count(n: int, size: int) -> int:
    return math.ceil(n / size)


def plan_tiles(
    grid: OutputGrid, execution: ExecutionConfig, migration: MigrationConfig, ns_in: int
) -> TilePlan:
    """Cut the grid into tiles. Raises :class:`PlanError` when the settings cannot work."""
    ncls = n_offset_classes(migration)
    budget = execution.memory_budget_mb * 2**20

    def fits(nil: int, nxl: int) -> bool:
        mem = tile_memory_bytes(nil, nxl, grid.nt, ncls, migration.trace_batch, ns_in)
        return mem * MEMORY_SAFETY_FACTOR <= budget

    explicit = (execution.tile_n_inline, execution.tile_n_crossline)
    for name, value, n in (
        ("tile_n_inline", explicit[0], grid.nil),
        ("tile_n_crossline", explicit[1], grid.nxl),
    ):
        if value != AUTO and int(value) > n:
            raise PlanError(
                f"execution.{name}={value} is larger than the grid ({n} bins along that axis); "
                f"use at most {n}, or 'auto'"
            )
    if explicit[0] != AUTO and explicit[1] != AUTO:
        tnil, tnxl = int(explicit[0]), int(explicit[1])
        reason = "explicit tile size"
    else:
        tnil, tnxl, reason = _auto_size(grid, execution, explicit, fits)
    if not fits(tnil, tnxl):
        need = (
            tile_memory_bytes(tnil, tnxl, grid.nt, ncls, migration.trace_batch, ns_in)
            * MEMORY_SAFETY_FACTOR
        )
        raise PlanError(
            f"execution.memory_budget_mb={execution.memory_budget_mb} is too small for one "
            f"{tnil} x {tnxl} x {grid.nt} tile, which needs ~{math.ceil(need / 2**20)} MB "
            f"(incl. {PROCESS_BASELINE_MB} MB process baseline); raise the budget, make tiles "
            "smaller, or lower migration.trace_batch"
        )
    tiles = tuple(
        Tile(f"{a:04d}_{b:04d}", il0, min(tnil, grid.nil - il0), xl0, min(tnxl, grid.nxl - xl0))
        for a, il0 in enumerate(range(0, grid.nil, tnil))
        for b, xl0 in enumerate(range(0, grid.nxl, tnxl))
    )
    if len(tiles) > execution.max_tile_jobs:
        raise PlanError(
            f"{len(tiles)} tiles of {tnil} x {tnxl} bins exceed execution.max_tile_jobs="
            f"{execution.max_tile_jobs}; use larger tiles (a larger memory_budget_mb or explicit "
            "tile_n_inline/tile_n_crossline) or raise max_tile_jobs"
        )
    mem = (
        tile_memory_bytes(tnil, tnxl, grid.nt, ncls, migration.trace_batch, ns_in)
        * MEMORY_SAFETY_FACTOR
    )
    return TilePlan(tiles, tnil, tnxl, math.ceil(mem / 2**20), execution.threads_per_job, reason)


def _auto_size(
    grid: OutputGrid, execution: ExecutionConfig, explicit: tuple[object, object], fits: object
) -> tuple[int, int, str]:
    assert callable(fits)

    def sides(side: int) -> tuple[int, int]:
        a = min(side, grid.nil) if explicit[0] == AUTO else int(explicit[0])  # type: ignore[call-overload]
        b = min(side, grid.nxl) if explicit[1] == AUTO else int(explicit[1])  # type: ignore[call-overload]
        return a, b

    side = max(grid.nil, grid.nxl)
    while side > 1 and not fits(*sides(side)):
        side = max(side * 3 // 4, 1) if side > 8 else side - 1
    reason = f"auto: largest square tile within memory_budget_mb={execution.memory_budget_mb}"
    min_side = min(MIN_AUTO_TILE_BINS, side)
    while (
        side > min_side
        and _count(grid.nil, sides(side)[0]) * _count(grid.nxl, sides(side)[1])
        < execution.min_tile_jobs
    ):
        side -= 1
        reason = f"auto: shrunk to give >= min_tile_jobs={execution.min_tile_jobs} jobs (or reach {MIN_AUTO_TILE_BINS} bins)"
    return *sides(side), reason
