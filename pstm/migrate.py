"""One tile job: find the traces within aperture, read them, run the kernel, write the tile."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from pstm.config import (
    AntiAlias,
    Backend,
    Interpolation,
    MigrationConfig,
    NonFinitePolicy,
    Traveltime,
    Weights,
)
from pstm.errors import InputDataError
from pstm.grid import OutputGrid
from pstm.index import MidpointIndex, max_aperture_m
from pstm.io.atomic import atomic_output
from pstm.io.traces import TraceStore
from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, get_kernel
from pstm.plan import Tile, n_offset_classes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileStats:
    tile: str
    backend: str
    traces: int
    contributions: int
    seconds_query: float
    seconds_read: float
    seconds_kernel: float
    seconds_write: float

    @property
    def contributions_per_s(self) -> float:
        return self.contributions / self.seconds_kernel if self.seconds_kernel > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "contributions_per_s": self.contributions_per_s}


def offset_class_of(offset: NDArray[np.float64], migration: MigrationConfig) -> NDArray[np.int32]:
    """Class index of each offset; -1 outside ``min_offset_m``/``max_offset_m`` or outside
    every class (such traces are not migrated)."""
    edges = migration.offset_classes_m
    if edges:
        cls = np.searchsorted(np.asarray(edges), offset, side="right").astype(np.int32) - 1
        cls[(offset < edges[0]) | (offset >= edges[-1])] = -1
    else:
        cls = np.zeros(len(offset), dtype=np.int32)
    cls[offset < migration.min_offset_m] = -1
    if migration.max_offset_m is not None:
        cls[offset > migration.max_offset_m] = -1
    return cls


def kernel_options(
    migration: MigrationConfig, grid_rotation_deg: float, threads: int
) -> KernelOptions:
    """The kernel's view of the (resolved) migration settings; the grid's rotation gives the
    inline direction of the anti-aliasing spacings."""
    spacing = migration.antialias_spacing_m
    if not isinstance(spacing, tuple):
        raise ValueError(
            "migration.antialias_spacing_m must be resolved to (inline, crossline) "
            "(pstm.pipeline.resolve_antialias_spacing)"
        )
    table = migration.aperture_table
    return KernelOptions(
        aperture_m=migration.aperture_m,
        aperture_time_s=tuple(table.time_s) if table else (),
        aperture_table_m=tuple(table.aperture_m) if table else (),
        aperture_taper_m=migration.aperture_taper_m,
        max_angle_deg=migration.max_angle_deg,
        angle_taper_deg=migration.angle_taper_deg,
        max_stretch=migration.max_stretch,
        interpolation=migration.interpolation,
        oversampling=migration.oversampling,
        weights=migration.weights,
        antialias=migration.antialias,
        antialias_spacing_m=(float(spacing[0]), float(spacing[1])),
        antialias_rotation_deg=grid_rotation_deg,
        antialias_max_samples=migration.antialias_max_samples,
        traveltime=migration.traveltime,
        traveltime_node_samples=migration.traveltime_node_samples,
        traveltime_tolerance_samples=migration.traveltime_tolerance_samples,
        n_offset_classes=n_offset_classes(migration),
        threads=threads,
    )


def clean_traces(
    data: NDArray[np.float32], ids: NDArray[np.int64], policy: NonFinitePolicy, source: Path
) -> NDArray[np.float32]:
    bad = ~np.isfinite(data)
    if not bad.any():
        return data
    if policy is NonFinitePolicy.ZERO:
        data[bad] = 0.0
        log.warning(
            "zeroed %d non-finite samples in %d traces", int(bad.sum()), int(bad.any(axis=1).sum())
        )
        return data
    row, sample = (int(v) for v in np.argwhere(bad)[0])
    raise InputDataError(
        f"{source}: trace {int(ids[row])} has a non-finite sample (NaN or Inf) at sample {sample} "
        f"(both counted from 0, in the input's order: its trace {int(ids[row]) + 1}, sample "
        f"{sample + 1} counted from 1, as SEG-Y tools number them); fix the input or set "
        "input.non_finite: zero to replace such samples by 0"
    )


class KernelVariant(BaseModel):
    """The settings that decide which compiled kernels a migration runs: the params of the
    workflow's compile step (editing any other setting does not recompile)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Backend
    interpolation: Interpolation
    weights: Weights
    antialias: AntiAlias
    stretch_mute: bool
    traveltime: Traveltime
    #: taper zones whose weight varies along a (trace, bin) pair: a time-variant aperture or
    #: an angle limit with a taper (a constant aperture's taper is one weight per pair, which
    #: the plain numba kernel applies itself; the general kernel then never runs)
    varying_taper: bool

    @classmethod
    def of(cls, migration: MigrationConfig) -> KernelVariant:
        tapered = migration.aperture_taper_m > 0 or migration.angle_taper_deg > 0
        varying = migration.aperture_table is not None or migration.max_angle_deg < 90.0
        return cls(
            backend=migration.backend,
            interpolation=migration.interpolation,
            weights=migration.weights,
            antialias=migration.antialias,
            stretch_mute=migration.max_stretch is not None,
            traveltime=migration.traveltime,
            varying_taper=tapered and varying,
        )


def warm_up(variant: KernelVariant, threads: int) -> float:
    """Compile (or load from numba's on-disk cache) every kernel of ``variant`` on a tiny
    problem: run once before the tile jobs, so that no tile job pays the JIT and the first
    tiles do not compile the same code side by side. Returns seconds."""
    t0 = time.perf_counter()
    kernel = get_kernel(variant.backend)
    options = KernelOptions(
        aperture_m=500.0,
        aperture_taper_m=100.0,
        max_angle_deg=80.0 if variant.varying_taper else 90.0,
        angle_taper_deg=10.0 if variant.varying_taper else 0.0,
        max_stretch=1.0 if variant.stretch_mute else None,
        interpolation=variant.interpolation,
        weights=variant.weights,
        antialias=variant.antialias,
        traveltime=variant.traveltime,
        threads=threads,
    )
    ns, nt = 64, 16
    rng = np.random.default_rng(0)
    offsets = np.array([-200.0, 0.0, 150.0])
    batch = TraceBatch(
        rng.standard_normal((3, ns)).astype(np.float32),
        0.0,
        0.004,
        offsets,
        np.zeros(3),
        offsets + 100.0,
        np.zeros(3),
        np.zeros(3, dtype=np.int32),
    )
    x, y = np.meshgrid(np.array([0.0, 25.0]), np.array([0.0]), indexing="ij")
    target = ImageTarget(x, y, 0.0, 0.004, np.full((2, 1, nt), 2000.0, np.float32))
    gathers = np.zeros((1, 2, 1, nt), np.float32)
    kernel(batch, target, options, gathers, np.zeros(gathers.shape, np.int32))
    return time.perf_counter() - t0


def tile_target(tile: Tile, grid: OutputGrid, vrms: NDArray[np.float32]) -> ImageTarget:
    """The output points of ``tile``: its bin centres, the grid's time axis and its slice of
    the full-grid v_rms cube, in the grid centre's float32 frame."""
    x, y = grid.bin_xy(tile.il0, tile.nil, tile.xl0, tile.nxl)
    v_tile = np.ascontiguousarray(
        vrms[tile.il0 : tile.il0 + tile.nil, tile.xl0 : tile.xl0 + tile.nxl, :], dtype=np.float32
    )
    return ImageTarget(x=x, y=y, t0=grid.t0, dt=grid.dt, vrms=v_tile, origin=grid.centre)


class TileTraces(NamedTuple):
    """The traces a tile migrates (:func:`tile_traces`)."""

    ids: NDArray[np.int64]
    sx: NDArray[np.float64]
    sy: NDArray[np.float64]
    rx: NDArray[np.float64]
    ry: NDArray[np.float64]
    cls: NDArray[np.int32]  # offset class


def tile_traces(tile: Tile, migration: MigrationConfig, index: MidpointIndex) -> TileTraces:
    """The traces ``tile`` migrates: those within aperture whose offset falls in an offset
    class, with their source and receiver coordinates and their class."""
    ids = index.query(tile.il0, tile.nil, tile.xl0, tile.nxl, max_aperture_m(migration))
    sx, sy = np.asarray(index.sx[ids]), np.asarray(index.sy[ids])
    rx, ry = np.asarray(index.rx[ids]), np.asarray(index.ry[ids])
    cls = offset_class_of(np.hypot(rx - sx, ry - sy), migration)
    keep = cls >= 0
    return TileTraces(ids[keep], sx[keep], sy[keep], rx[keep], ry[keep], cls[keep])


def migrate_tile(
    tile: Tile,
    grid: OutputGrid,
    migration: MigrationConfig,
    backend: Backend,
    index: MidpointIndex,
    traces: TraceStore,
    vrms: NDArray[np.float32],
    non_finite: NonFinitePolicy,
    threads: int,
) -> tuple[NDArray[np.float32], NDArray[np.int32], TileStats]:
    """Migrate every trace within aperture of ``tile``. ``vrms`` is the full-grid cube
    (memory-mapped); returns the tile's gathers (n_classes, nil, nxl, nt), fold, stats."""
    kernel = get_kernel(backend)
    ncls = n_offset_classes(migration)
    target = tile_target(tile, grid, vrms)
    options = kernel_options(migration, grid.rotation_deg, threads)
    gathers = np.zeros((ncls, tile.nil, tile.nxl, grid.nt), dtype=np.float32)
    fold = np.zeros((ncls, tile.nil, tile.nxl, grid.nt), dtype=np.int32)

    t_start = time.perf_counter()
    ids, sx, sy, rx, ry, cls = tile_traces(tile, migration, index)
    t_query = time.perf_counter() - t_start

    t_read = t_kernel = 0.0
    contributions = 0
    for start in range(0, len(ids), migration.trace_batch):
        sl = slice(start, start + migration.trace_batch)
        t0 = time.perf_counter()
        data = clean_traces(traces.read(ids[sl]), ids[sl], non_finite, traces.path)
        t1 = time.perf_counter()
        batch = TraceBatch(data, traces.t0, traces.dt, sx[sl], sy[sl], rx[sl], ry[sl], cls[sl])
        contributions += kernel(batch, target, options, gathers, fold)
        t_read += t1 - t0
        t_kernel += time.perf_counter() - t1
    stats = TileStats(
        tile.id, backend.value, len(ids), contributions, t_query, t_read, t_kernel, 0.0
    )
    return gathers, fold, stats


#: The tile file's member holding the digest of its job's params.
TILE_PARAMS_KEY = "params_digest"


def params_digest(params: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of a tile job's params as canonical JSON. The tile
    file keeps it, so that ``pstm status`` tells a tile of an earlier configuration (or
    pstm version) from a current one. (Here, in a module the migrate stage's code hash
    covers: a change of the digest reruns the tiles.)"""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TileDigest(NamedTuple):
    """What a tile file says of its params: ``digest`` (None: written without one, by an
    earlier pstm) or ``error`` (the file cannot be read)."""

    digest: str | None
    error: str | None = None


def write_tile(
    path: str | Path,
    tile: Tile,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    digest: str,
) -> float:
    """Write a tile file atomically, with the digest of the params it was migrated with
    (:func:`params_digest`); returns the seconds it took."""
    t0 = time.perf_counter()
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            gathers=gathers,
            fold=fold,
            extent=np.array([tile.il0, tile.nil, tile.xl0, tile.nxl]),
            params_digest=np.array(digest),  # TILE_PARAMS_KEY
        )
    return time.perf_counter() - t0


def read_tile_params_digest(path: str | Path) -> TileDigest:
    """The params digest a tile file was written with (see :class:`TileDigest`)."""
    try:
        with np.load(path) as f:
            return TileDigest(str(f[TILE_PARAMS_KEY]) if TILE_PARAMS_KEY in f.files else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        return TileDigest(None, f"{type(exc).__name__}: {exc}")


def read_tile(path: str | Path) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int32]]:
    with np.load(path) as f:
        return f["extent"], f["gathers"], f["fold"]
