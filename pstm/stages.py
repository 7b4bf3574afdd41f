"""The workflow stages, one function each, called by the thin scripts in
``workflow/scripts``. Each takes plain paths and the stage's params (JSON sections,
re-validated here into the config model) and logs what it did."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pstm.config import (
    Backend,
    GridConfig,
    InputConfig,
    MigrationConfig,
    PstmConfig,
    QcConfig,
    RhoFilter,
    SyntheticConfig,
    VelocityConfig,
)
from pstm.errors import InputDataError, PstmError
from pstm.grid import OutputGrid
from pstm.index import build_index, read_index, write_index
from pstm.io.atomic import atomic_output
from pstm.io.headers import read_geometry
from pstm.io.traces import open_traces
from pstm.plan import Tile

log = logging.getLogger("pstm")


def synthesize(params: dict[str, Any], traces: str, headers: str, truth: str) -> None:
    from pstm.synthetic import write_survey

    cfg = SyntheticConfig.model_validate(params["synthetic"])
    ntr = write_survey(cfg, traces, headers, truth)
    log.info("synthetic survey: %d traces x %d samples, dt %.4f s", ntr, cfg.n_samples, cfg.dt_s)


def import_segy(params: dict[str, Any], traces: str, headers: str) -> None:
    from pstm.config import SegyInputConfig
    from pstm.io.segy import import_segy as import_file

    stats = import_file(SegyInputConfig.model_validate(params["segy"]), traces, headers)
    log.info("SEG-Y import: %d traces x %d samples, dt %.6f s", stats.ntr, stats.ns, stats.dt_s)


def export_segy(params: dict[str, Any], image: str, stack: str, gathers: str, fold: str) -> None:
    from pstm.config import ExportConfig
    from pstm.export import export_image

    cfg = ExportConfig.model_validate(params["export"])
    n_stack, n_gathers = export_image(image, cfg, stack, gathers, fold)
    log.info(
        "SEG-Y export: %s and %s (%d traces each), %s (%d traces)",
        stack,
        fold,
        n_stack,
        gathers,
        n_gathers,
    )


def index(params: dict[str, Any], traces: str, headers: str, out: str) -> None:
    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    store = open_traces(traces)
    geometry = read_geometry(headers)
    if geometry.ntr != store.ntr:
        raise InputDataError(
            f"{headers} has {geometry.ntr} rows but {traces} has {store.ntr} traces; "
            "headers must have exactly one row per trace, in trace order"
        )
    idx = build_index(geometry, grid)
    write_index(out, idx)
    log.info("index: %d traces in %d x %d cells", idx.ntr, idx.ncell_il, idx.ncell_xl)


def coverage(params: dict[str, Any], index_dir: str, out: str) -> None:
    """Fail before any tile job when no trace lies within aperture of the output grid, or
    when ``auto`` chose the 2D rho filter for a line of bins over areal data."""
    from pstm.index import check_coverage, check_line_rho, coverage, write_coverage

    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    cov = coverage(read_index(index_dir), grid, float(params["aperture_m"]))
    check_coverage(cov)
    warning = check_line_rho(cov, RhoFilter(params["rho_filter"]), params["rho_from_grid"])
    if warning is not None:
        log.warning("%s", warning)
    write_coverage(out, cov)
    log.info(
        "coverage: %d of %d midpoints inside the grid, %d within %g m aperture",
        cov.n_inside_grid,
        cov.n_traces,
        cov.n_within_aperture,
        cov.aperture_m,
    )


def precondition(params: dict[str, Any], traces: str, out: str, threads: int = 1) -> None:
    from pstm.precondition import precondition as precondition_traces

    inp = InputConfig.model_validate(params["input"])
    rho = RhoFilter(params["rho_filter"])
    n = precondition_traces(open_traces(traces), rho, inp.non_finite, out, threads)
    log.info("preconditioned %d traces (rho filter %s)", n, rho.value)


def velocity(params: dict[str, Any], out: str, out_info: str) -> None:
    from pstm.velocity import build_velocity_file, velocity_info, write_velocity_info

    cfg = VelocityConfig.model_validate(params["velocity"])
    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    cube = build_velocity_file(cfg, grid, out)
    write_velocity_info(out_info, velocity_info(cfg, grid, cube))
    log.info(
        "velocity: %s (%s), v_rms %.0f..%.0f m/s on %s",
        cfg.kind.value,
        cfg.type.value,
        cube.min(),
        cube.max(),
        cube.shape,
    )


def migrate(
    params: dict[str, Any], index_dir: str, traces: str, vrms: str, out: str, threads: int
) -> None:
    from pstm.migrate import KernelVariant, migrate_tile, params_digest, warm_up, write_tile
    from pstm.velocity import read_velocity

    migration = MigrationConfig.model_validate(params["migration"])
    assert migration.backend is not Backend.AUTO, "the Snakefile passes the resolved backend"
    # load the compiled kernels from numba's cache (or the device context) first, so the
    # kernel time below is the migration alone and the load is reported on its own
    seconds_load = warm_up(KernelVariant.of(migration), threads)
    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    inp = InputConfig.model_validate(params["input"])
    tile = Tile(**params["tile"])
    gathers, fold, stats = migrate_tile(
        tile,
        grid,
        migration,
        migration.backend,
        read_index(index_dir),
        open_traces(traces),
        read_velocity(vrms),
        inp.non_finite,
        threads,
    )
    seconds_write = write_tile(out, tile, gathers, fold, params_digest(params))
    record = {
        **stats.as_dict(),
        "seconds_kernel_load": round(seconds_load, 4),
        "seconds_write": seconds_write,
        "threads": threads,
    }
    log.info("tile %s: %s", tile.id, json.dumps(record))


def compile_kernels(params: dict[str, Any], out: str) -> None:
    """Compile the kernels the migration settings use once, before any tile job."""
    import numba

    from pstm.migrate import KernelVariant, warm_up

    variant = KernelVariant.model_validate(params["variant"])
    seconds = warm_up(variant, threads=1)
    record = {
        "backend": variant.backend.value,
        "seconds": round(seconds, 3),
        "numba_cache_dir": numba.config.CACHE_DIR or "(next to the pstm sources)",  # type: ignore[attr-defined]
    }
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    log.info("kernels compiled or loaded from cache in %.2f s", seconds)


def batch_manifest(batch_id: str, tiles: Sequence[str], out: str) -> None:
    """Record the finished tiles of one batch (the last job of its group; docs/scaling.md)."""
    record = {
        "batch": batch_id,
        "tiles": [{"path": t, "bytes": Path(t).stat().st_size} for t in tiles],
    }
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    log.info("batch %s: %d tiles", batch_id, len(tiles))


def assemble(params: dict[str, Any], tiles: Sequence[str], out: str) -> None:
    from pstm.assemble import assemble as assemble_tiles

    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    migration = MigrationConfig.model_validate(params["migration"])
    nil, nxl = params["tile_shape"]
    assemble_tiles(tiles, (int(nil), int(nxl)), grid, migration, out)
    log.info("assembled %d tiles into %s", len(tiles), out)


def qc(params: dict[str, Any], image: str, out_dir: str) -> None:
    from pstm.qc import write_qc

    written = write_qc(image, QcConfig.model_validate(params["qc"]), out_dir)
    log.info("qc figures: %s", ", ".join(str(p) for p in written))


def qc_velocity(params: dict[str, Any], vrms: str, vrms_info: str, out: str) -> None:
    from pstm.qc import write_velocity_qc

    grid = OutputGrid.from_config(GridConfig.model_validate(params["grid"]))
    write_velocity_qc(vrms, vrms_info, grid, QcConfig.model_validate(params["qc"]), out)
    log.info("qc figure: %s", out)


def summary(root: str, out_json: str, out_html: str, jobs: dict[str, Any]) -> None:
    """The run summary of the workflow's ``jobs`` (``{"stages": [rule names], "ids":
    {stage: [job ids]}}``: a summary rule's params)."""
    from pstm.summary import RunJobs, write_summary

    run_jobs = RunJobs(frozenset(jobs["stages"]), {k: frozenset(v) for k, v in jobs["ids"].items()})
    record = write_summary(Path(root), out_json, out_html, run_jobs)
    log.info("run summary: %s", json.dumps(record["totals"]))
    for w in record["warnings"]:
        log.warning("%s: %s", w["stage"], w["message"])


def preflight(
    params: dict[str, Any], index_dir: str, traces: str, out_resolved: str, out_report: str
) -> None:
    from pstm.pipeline import prepare_run
    from pstm.preflight import preflight_report

    config = {section: params[section] for section in PstmConfig.model_fields}
    run = prepare_run(config, source="resolved config")
    plan = dataclasses.replace(run.plan, reason=params["plan_reason"])
    run = dataclasses.replace(run, backend_reason=params["backend_reason"], plan=plan)
    report = preflight_report(run, read_index(index_dir), open_traces(traces).dt)
    for path, content in ((out_resolved, run.resolved_yaml()), (out_report, report.text)):
        with atomic_output(path) as tmp:
            tmp.write_text(content)
    log.info("%s", report.text)
    for warning in report.warnings:  # each also as a warning of its own, for the run summary
        log.warning("%s", warning)


def params_of(smk: Any) -> dict[str, Any]:
    """A Snakemake job's params as a plain dict."""
    return dict(smk.params.items())


def run_logged(log_path: str | None, fn: Callable[[], None]) -> NoReturn:
    """Run a stage as the whole of a workflow job's process: log to ``log_path`` and stderr;
    a :class:`PstmError` becomes one clear message and exit status 1 (no traceback),
    anything else is a bug and keeps its traceback; success ends the process at once
    (:func:`end_job`). Only for the job scripts (workflow/scripts): it never returns."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    t0 = time.perf_counter()
    try:
        fn()
    except PstmError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    log.info("peak memory %.0f MB", peak_memory_mb())
    age = process_seconds()
    if age is not None:  # the whole job: interpreter start, imports, Snakemake's preamble
        log.info("process %.2f s since its start", age)
    log.info("done in %.2f s", time.perf_counter() - t0)
    end_job()


def end_job() -> NoReturn:
    """End a finished job's process without the interpreter's tear-down. Every output is
    complete and renamed into place before the stage returns (pstm.io.atomic), and the log
    and the standard streams are flushed here, so nothing is lost; what is skipped is the
    destruction, object by object, of what the process loaded: 0.32-0.37 s after the
    numba kernels were loaded against 0.016 s with ``os._exit`` (measured), about 2 % of
    the cores' time of the end-to-end benchmark's tile jobs (docs/benchmarks.md)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def process_seconds() -> float | None:
    """Seconds since this process started, from Linux's /proc (10 ms resolution: the
    kernel's clock ticks); None where there is no /proc."""
    try:
        # field 22 of /proc/self/stat, the start time in clock ticks after boot (the fields
        # after the command name's closing parenthesis start at field 3)
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss`` is in KiB), to
    compare with the ``mem_mb`` a job declares."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
