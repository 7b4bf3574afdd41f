"""Tile planning: the one function that cuts the output grid into tiles and the tiles
into batches (the jobs a cluster runs).

Every caller (the Snakefile, ``pstm preflight``, the tests) uses :func:`plan_tiles`.
A tile job's memory is modelled by :func:`tile_memory_bytes` from the named constants
below; ``auto`` tile sizes are the largest square tiles that fit the memory budget,
shrunk until there are at least ``min_tile_jobs`` tiles, then evened out: along each
axis, the same number of tiles, made as equal in size as a regular lattice allows.

Batches: when there are more tiles than ``execution.max_tile_jobs``, consecutive tiles
(in tile order, so neighbours that share aperture traces) are grouped into at most that
many batches of nearly equal size. Each tile stays one Snakemake job with one output
file (its checkpoint); the workflow gives each batch one Snakemake ``group``, which a
cluster executor submits as one job (see docs/scaling.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pstm.config import AUTO, AntiAlias, ExecutionConfig, Interpolation, MigrationConfig
from pstm.errors import PlanError
from pstm.grid import OutputGrid
from pstm.io.traces import TRACE_CHUNK
from pstm.kernels.operator import prepared_trace_bytes

#: Resident memory of a tile job before it allocates anything for its tile: the Python
#: interpreter with numpy, numba, zarr and pyarrow imported (measured 180-250 MB; rounded up).
PROCESS_BASELINE_MB = 400
#: Bytes held per output sample besides gathers and fold: the v_rms tile (4) plus the
#: reference kernel's per-trace float64 temporaries (traveltime, index, weight, value:
#: ~6 arrays of 8 bytes over the in-aperture samples).
WORK_BYTES_PER_OUTPUT_SAMPLE = 52
#: Bytes per output sample per offset class: float32 gathers + int32 fold, the int32 fold
#: starts of the numba plain kernel, and the copy made when the tile file is written.
BYTES_PER_CLASS_SAMPLE = 20
#: Trace batches are held twice (as read from Zarr and as a contiguous float32 copy).
TRACE_BATCH_COPIES = 2
#: Declared memory = modelled memory x this factor (head room for allocator slack).
MEMORY_SAFETY_FACTOR = 1.25
#: Smallest side of an auto tile, in bins; below it the aperture halo dominates the reads.
MIN_AUTO_TILE_BINS = 4
#: Traces the preconditioning filters per chunk (:mod:`pstm.precondition`); it holds up to
#: as many chunks (and their FFTs) at once as it has threads (:func:`precondition_threads`).
PRECONDITION_CHUNK_TRACES = 8 * TRACE_CHUNK
#: Bytes held per input sample of a chunk in flight: the float32 traces read, their
#: decoding buffers and the float32 result; the rho filter's spectra are those of
#: :data:`pstm.precondition.RHO_BLOCK_TRACES` traces at a time (measured: one chunk of
#: 8,192 traces x 750 samples peaked 105 MB above the process baseline, two chunks in
#: flight 187 MB, i.e. 15-17 bytes per sample; modelled 20).
PRECONDITION_BYTES_PER_SAMPLE = 20
#: Name of batch ``k`` (a Snakemake group name: the cluster job that runs the batch), and
#: the pattern that matches every such name (the workflow's ``batch`` wildcard).
BATCH_ID_FORMAT = "tiles{:05d}"
BATCH_ID_PATTERN = r"tiles\d{5}"


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
class Batch:
    """Consecutive tiles run by one cluster job (one Snakemake group)."""

    id: str
    tile_ids: tuple[str, ...]


@dataclass(frozen=True)
class TilePlan:
    tiles: tuple[Tile, ...]
    tile_nil: int
    tile_nxl: int
    mem_mb_per_job: int  # per tile, declared to the scheduler (safety factor included)
    threads_per_job: int  # per tile
    reason: str  # how the tile size was chosen
    batches: tuple[Batch, ...]  # every tile in exactly one batch, in tile order

    def by_id(self) -> dict[str, Tile]:
        return {t.id: t for t in self.tiles}

    def batch_of(self) -> dict[str, str]:
        """Tile id -> id of the batch that runs it."""
        return {tid: b.id for b in self.batches for tid in b.tile_ids}

    def start_priority(self) -> dict[str, int]:
        """Tile id -> its Snakemake priority (higher starts first): tiles nearer the grid's
        centre first. They usually have the most traces within aperture (the survey covers
        the grid; its edges have lower fold), so the longest jobs start first and the short
        ones fill the end: with one tile job per core, no core is left with a long tile
        after the others finished (longest-processing-time-first; on the end-to-end
        benchmark survey the centre tiles take 1.4x the edge ones). Of tiles as far from the
        centre, the earlier in tile order starts first."""
        nil = max(t.il0 + t.nil for t in self.tiles)
        nxl = max(t.xl0 + t.nxl for t in self.tiles)

        def last_first(item: tuple[int, Tile]) -> tuple[int, int]:
            k, t = item
            return (2 * t.il0 + t.nil - nil) ** 2 + (2 * t.xl0 + t.nxl - nxl) ** 2, k

        order = sorted(enumerate(self.tiles), key=last_first, reverse=True)
        return {t.id: rank for rank, (_, t) in enumerate(order)}

    @property
    def max_tiles_per_batch(self) -> int:
        return max(len(b.tile_ids) for b in self.batches)

    @property
    def batched(self) -> bool:
        """Whether some batch holds more than one tile (else each tile is its own job)."""
        return self.max_tiles_per_batch > 1


def batch_tiles(tile_ids: tuple[str, ...], max_jobs: int) -> tuple[Batch, ...]:
    """Cut ``tile_ids`` (in order) into ``min(len, max_jobs)`` consecutive batches whose
    sizes differ by at most one."""
    n_batches = min(len(tile_ids), max_jobs)
    size, extra = divmod(len(tile_ids), n_batches)
    batches, start = [], 0
    for k in range(n_batches):
        stop = start + size + (1 if k < extra else 0)
        batches.append(Batch(BATCH_ID_FORMAT.format(k), tile_ids[start:stop]))
        start = stop
    return tuple(batches)


def n_offset_classes(migration: MigrationConfig) -> int:
    edges = migration.offset_classes_m
    return max(len(edges) - 1, 1)


def tile_memory_bytes(
    nil: int,
    nxl: int,
    nt: int,
    n_classes: int,
    trace_batch: int,
    ns_in: int,
    prepared_trace_bytes: int = 0,
) -> int:
    """Modelled peak memory of one tile job (without the safety factor);
    ``prepared_trace_bytes``: what the kernel's preparation holds per trace
    (:func:`kernel_trace_bytes`)."""
    samples = nil * nxl * nt
    return (
        PROCESS_BASELINE_MB * 2**20
        + samples * (WORK_BYTES_PER_OUTPUT_SAMPLE + BYTES_PER_CLASS_SAMPLE * n_classes)
        + trace_batch * (ns_in * 4 * TRACE_BATCH_COPIES + prepared_trace_bytes)
    )


def kernel_trace_bytes(migration: MigrationConfig, ns_in: int) -> int:
    """Bytes the kernel's trace preparation holds per trace (oversampled trace and, with
    anti-aliasing, its filtered levels): see :func:`pstm.kernels.operator.prepare`."""
    factor = 1 if migration.interpolation is Interpolation.LINEAR else migration.oversampling
    return prepared_trace_bytes(
        ns_in,
        factor,
        migration.antialias is AntiAlias.TRIANGLE,
        migration.antialias_max_samples,
    )


def _count(n: int, size: int) -> int:
    return math.ceil(n / size)


def plan_tiles(
    grid: OutputGrid, execution: ExecutionConfig, migration: MigrationConfig, ns_in: int
) -> TilePlan:
    """Cut the grid into tiles, and the tiles into at most ``execution.max_tile_jobs``
    batches. Raises :class:`PlanError` when the settings cannot work."""
    ncls = n_offset_classes(migration)
    budget = execution.memory_budget_mb * 2**20
    per_trace = kernel_trace_bytes(migration, ns_in)

    def fits(nil: int, nxl: int) -> bool:
        mem = tile_memory_bytes(nil, nxl, grid.nt, ncls, migration.trace_batch, ns_in, per_trace)
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
            tile_memory_bytes(tnil, tnxl, grid.nt, ncls, migration.trace_batch, ns_in, per_trace)
            * MEMORY_SAFETY_FACTOR
        )
        raise PlanError(
            f"execution.memory_budget_mb={execution.memory_budget_mb} is too small for one "
            f"{tnil} x {tnxl} x {grid.nt} tile, which needs ~{math.ceil(need / 2**20)} MB "
            f"(incl. {PROCESS_BASELINE_MB} MB process baseline); raise the budget"
            + (", make tiles smaller" if tnil * tnxl > 1 else "")
            + " or lower migration.trace_batch"
        )
    tiles = tuple(
        Tile(f"{a:04d}_{b:04d}", il0, min(tnil, grid.nil - il0), xl0, min(tnxl, grid.nxl - xl0))
        for a, il0 in enumerate(range(0, grid.nil, tnil))
        for b, xl0 in enumerate(range(0, grid.nxl, tnxl))
    )
    mem = (
        tile_memory_bytes(tnil, tnxl, grid.nt, ncls, migration.trace_batch, ns_in, per_trace)
        * MEMORY_SAFETY_FACTOR
    )
    batches = batch_tiles(tuple(t.id for t in tiles), execution.max_tile_jobs)
    return TilePlan(
        tiles, tnil, tnxl, math.ceil(mem / 2**20), execution.threads_per_job, reason, batches
    )


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
    a, b = sides(side)
    # Evened out: along each auto axis the same number of tiles, as equal in size as a
    # regular lattice allows (a 120-bin axis in tiles of 39 gave 39, 39, 39, 3; now 30, 30,
    # 30, 30). Never larger, so still within the budget; tiles of equal size take similar
    # times.
    even = (
        _balanced(grid.nil, a) if explicit[0] == AUTO else a,
        _balanced(grid.nxl, b) if explicit[1] == AUTO else b,
    )
    if even != (a, b):
        reason += f", evened out from {a} x {b}"
    return *even, reason


def _balanced(n: int, size: int) -> int:
    """The smallest tile size that cuts ``n`` bins into as few tiles as ``size`` does."""
    return math.ceil(n / _count(n, size))


def _precondition_chunk_mb(ns: int) -> float:
    return PRECONDITION_CHUNK_TRACES * ns * PRECONDITION_BYTES_PER_SAMPLE / 2**20


def precondition_threads(cores: int, ns: int, execution: ExecutionConfig) -> int:
    """Threads of the preconditioning job: every tile job waits for it, so as many as the
    run's ``cores``, but no more chunks in flight than fit ``execution.memory_budget_mb``
    (the per-job budget) beside the process baseline; at least one."""
    chunk_mb = _precondition_chunk_mb(ns)
    fit = int((execution.memory_budget_mb / MEMORY_SAFETY_FACTOR - PROCESS_BASELINE_MB) // chunk_mb)
    return max(1, min(cores, fit))


def precondition_mem_mb(threads: int, ns: int) -> int:
    """The memory the preconditioning job declares (its ``mem_mb``, e.g. to SLURM): the
    process baseline and one chunk in flight per thread, with the safety factor, by the
    model :func:`precondition_threads` sizes its threads with."""
    return math.ceil(
        (PROCESS_BASELINE_MB + threads * _precondition_chunk_mb(ns)) * MEMORY_SAFETY_FACTOR
    )
