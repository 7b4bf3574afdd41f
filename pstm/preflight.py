"""What will really run: backend (and why), tiles, traces per tile, memory per job, the
contributions and run time to expect (from a quick kernel timing), and warnings for grids
outside the data, very low fold and aliased sampling."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from pstm.config import Interpolation, MigrationConfig, Traveltime
from pstm.errors import BackendUnavailableError, InputDataError
from pstm.index import MidpointIndex, check_line_rho, coverage, max_aperture_m
from pstm.pipeline import Run
from pstm.plan import Tile

#: Bins sampled per tile to estimate contributions and fold (corners and centre).
SAMPLED_BINS_PER_TILE = 5
#: At most this many tiles are sampled (evenly spread); the estimate is scaled up.
MAX_SAMPLED_TILES = 200
#: A bin with fewer traces than this within aperture has "very low fold".
LOW_FOLD_TRACES = 10
#: A bin with no midpoint within this many bin spacings (the larger spacing) lies beyond
#: the survey's midpoints: its image is made of far traces only (migration swings), even
#: where the aperture reaches traces.
OFF_DATA_BINS = 4
#: ... and is warned about only where more than this share of the sampled bins is (a hole or
#: a missing corner of an irregular survey is not worth a warning).
OFF_DATA_WARN_SHARE = 0.1
#: Size of the kernel timing problem (traces x bins x samples): a fraction of a second,
#: but big enough that per-call overheads do not dominate.
TIMING_TRACES, TIMING_BINS, TIMING_SAMPLES = 2000, 64, 250


def _sample_bins(tile: Tile) -> list[tuple[int, int]]:
    il1, xl1 = tile.il0 + tile.nil - 1, tile.xl0 + tile.nxl - 1
    bins = {
        (tile.il0, tile.xl0),
        (tile.il0, xl1),
        (il1, tile.xl0),
        (il1, xl1),
        ((tile.il0 + il1) // 2, (tile.xl0 + xl1) // 2),
    }
    return sorted(bins)[:SAMPLED_BINS_PER_TILE]


def kernel_rate(run: Run) -> float:
    """Contributions per second of one tile job (its threads, this run's operator
    settings), timed on a small synthetic problem after a warm-up call."""
    from pstm.bench import make_problem
    from pstm.kernels import get_kernel
    from pstm.migrate import kernel_options

    migration = run.config.migration
    options = dataclasses.replace(
        kernel_options(migration, run.grid.rotation_deg, run.plan.threads_per_job),
        aperture_m=1e9,
        aperture_time_s=(),
        aperture_table_m=(),
        n_offset_classes=1,
    )
    problem = make_problem(TIMING_TRACES, TIMING_BINS, 1, TIMING_SAMPLES)
    kernel = get_kernel(migration.backend)
    shape = (1, TIMING_BINS, 1, TIMING_SAMPLES)

    def once() -> tuple[int, float]:
        gathers = np.zeros(shape, np.float32)
        t0 = time.perf_counter()
        n = kernel(problem.batch, problem.target, options, gathers, np.zeros(shape, np.int32))
        return n, time.perf_counter() - t0

    once()  # compile or load from cache
    n, seconds = min((once() for _ in range(3)), key=lambda r: r[1])
    return n / seconds


def operator_summary(m: MigrationConfig) -> str:
    """The operator settings that decide which kernel runs and what it computes."""
    interp = m.interpolation.value
    if m.interpolation is not Interpolation.LINEAR:
        interp += f" x{m.oversampling}"
    traveltime = m.traveltime.value
    if m.traveltime is Traveltime.INTERPOLATED:
        traveltime += (
            f" (exact every {m.traveltime_node_samples} samples, error <= "
            f"{m.traveltime_tolerance_samples:g} input sample)"
        )
    return (
        f"interpolation {interp}, traveltime {traveltime}, weights {m.weights.value}, "
        f"antialias {m.antialias.value}"
    )


@dataclasses.dataclass(frozen=True)
class PreflightReport:
    """What :func:`preflight_report` found: the report's lines and its warnings apart (the
    workflow's preflight job logs each warning as one, for the run summary)."""

    lines: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def text(self) -> str:
        """The report as ``results/preflight.txt`` and ``pstm preflight`` show it."""
        return "\n".join([*self.lines, *(f"  WARNING: {w}" for w in self.warnings)]) + "\n"


def preflight_report(
    run: Run, index: MidpointIndex | None, input_dt_s: float | None
) -> PreflightReport:
    cfg, plan, grid = run.config, run.plan, run.grid
    aperture = max_aperture_m(cfg.migration)
    lines = [
        "pstm preflight",
        f"  backend          : {cfg.migration.backend.value} ({run.backend_reason})",
        f"  grid             : {grid.nil} inlines x {grid.nxl} crosslines x {grid.nt} samples "
        f"(dt {grid.dt * 1e3:.2f} ms), rotation {grid.rotation_deg} deg",
        f"  tiles            : {len(plan.tiles)} of {plan.tile_nil} x {plan.tile_nxl} bins "
        f"({plan.reason}), {len(plan.batches)} batch(es)",
        f"  memory per job   : {plan.mem_mb_per_job} MB declared, budget "
        f"{cfg.execution.memory_budget_mb} MB",
        f"  threads per job  : {plan.threads_per_job}",
        f"  aperture         : {aperture} m",
        f"  operator         : {operator_summary(cfg.migration)}",
    ]
    warnings = []
    if input_dt_s is not None and grid.dt > input_dt_s * (1 + 1e-9):
        warnings.append(
            f"output dt {grid.dt * 1e3:g} ms is coarser than the input's {input_dt_s * 1e3:g} ms: "
            f"the image aliases frequencies above {0.5 / grid.dt:g} Hz (set grid.dt_s <= "
            f"{input_dt_s:g})"
        )
    if index is None:
        lines.append(
            "  input traces     : not counted: no midpoint index of this grid (build it with "
            "snakemake --cores 1 results/index; then traces per tile and bin, contributions, "
            "the kernel timing and the grid's data warnings are shown)"
        )
    else:
        step = max(1, len(plan.tiles) // MAX_SAMPLED_TILES)
        sampled = plan.tiles[::step]
        counts, fold, near, contributions = [], [], [], 0.0
        near_m = OFF_DATA_BINS * max(grid.dil, grid.dxl)
        for tile in sampled:
            counts.append(len(index.query(tile.il0, tile.nil, tile.xl0, tile.nxl, aperture)))
            bins = _sample_bins(tile)
            per_bin = [len(index.query(i, 1, j, 1, aperture)) for i, j in bins]
            fold += per_bin
            near += [len(index.query(i, 1, j, 1, near_m)) for i, j in bins]
            contributions += float(np.mean(per_bin)) * tile.nil * tile.nxl * grid.nt
        contributions *= len(plan.tiles) / len(sampled)
        fold_arr = np.asarray(fold)
        lines += [
            f"  input traces     : {index.ntr}",
            f"  traces per tile  : min {min(counts)}, median {int(np.median(counts))}, "
            f"max {max(counts)}" + (f" ({len(sampled)} tiles sampled)" if step > 1 else ""),
            f"  traces per bin   : min {fold_arr.min()}, median {int(np.median(fold_arr))} "
            f"within aperture ({len(fold_arr)} bins sampled)",
            f"  contributions    : about {contributions:.3g} (sampled bins x samples; the "
            "time-variant aperture, angle limit and mutes make it fewer)",
        ]
        empty = int((fold_arr == 0).sum())
        off_data = int((np.asarray(near) == 0).sum())
        low = int(((fold_arr > 0) & (fold_arr < LOW_FOLD_TRACES)).sum())
        if empty:
            warnings.append(
                f"{empty} of {len(fold_arr)} sampled bins have no trace within aperture: the "
                "grid reaches outside the data (check grid origin, rotation and size)"
            )
        if off_data > empty and off_data > OFF_DATA_WARN_SHARE * len(fold_arr):
            warnings.append(
                f"{off_data} of {len(fold_arr)} sampled bins ({100.0 * off_data / len(fold_arr):.0f}"
                f"%) have no trace midpoint within {near_m:g} m ({OFF_DATA_BINS} times the "
                "larger bin spacing): the grid reaches beyond the survey's midpoints, where the "
                "image holds only far traces' migration swings (check grid origin, rotation "
                "and size, unless the survey has holes there)"
            )
        try:
            cov = coverage(index, grid, aperture)
            line = check_line_rho(cov, cfg.migration.rho_filter, run.rho_from_grid)
        except InputDataError as exc:
            line = f"{exc} (the workflow's coverage check stops on it)"
        if line is not None:
            warnings.append(line)
        if low:
            warnings.append(
                f"{low} of {len(fold_arr)} sampled bins have fewer than {LOW_FOLD_TRACES} "
                "traces within aperture (very low fold)"
            )
        if contributions > 0:
            try:
                rate = kernel_rate(run)
            except BackendUnavailableError as exc:  # e.g. a cuda run's CPU-only preflight job
                lines.append(f"  kernel timing    : not here ({exc})")
            else:
                seconds = contributions / rate
                lines.append(
                    f"  kernel timing    : {rate:.3g} contributions/s per tile job (quick "
                    f"timing on this machine) -> about {seconds:.3g} s of tile-job time in "
                    f"all, {seconds / len(plan.tiles):.3g} s per tile job on average (size a "
                    "cluster's runtime from it; divide by the tile jobs running at once for "
                    "the wall time)"
                )
    return PreflightReport(tuple(lines), tuple(warnings))
