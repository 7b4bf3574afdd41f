"""What the Snakefile needs, computed once at parse time: the validated config, the
resolved backend, the grid, the tile plan, input paths and each stage's ``params``.

Each stage's params hold exactly the config sections it depends on, as sorted JSON data,
plus a hash of the pstm modules it runs, so an edit reruns only what it affects.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import importlib.util
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pstm import __version__
from pstm.config import (
    AUTO,
    Backend,
    InputKind,
    MigrationConfig,
    PstmConfig,
    RhoFilter,
    parse_config,
    read_yaml,
    section_params,
)
from pstm.errors import ConfigError, PstmError
from pstm.grid import OutputGrid
from pstm.io.headers import require_headers
from pstm.kernels import resolve_backend
from pstm.plan import TilePlan, plan_tiles
from pstm.velocity import require_input_files as require_velocity_files

log = logging.getLogger(__name__)

RESULTS = Path("results")
SYNTHETIC_TRACES = RESULTS / "input" / "traces.zarr"
SYNTHETIC_HEADERS = RESULTS / "input" / "headers.parquet"
SYNTHETIC_TRUTH = RESULTS / "input" / "truth.json"

#: The pstm modules (or packages) each stage runs; their source hash is part of its params.
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "synthesize": ("pstm.synthetic", "pstm.io", "pstm.velocity"),
    "import_segy": ("pstm.io",),
    "export": ("pstm.export", "pstm.io", "pstm.grid"),
    "precondition": ("pstm.precondition", "pstm.io", "pstm.migrate"),
    "index": ("pstm.index", "pstm.io", "pstm.grid"),
    "coverage": ("pstm.index", "pstm.grid"),
    "velocity": ("pstm.velocity", "pstm.grid"),
    "migrate": ("pstm.migrate", "pstm.kernels", "pstm.index", "pstm.io", "pstm.grid", "pstm.plan"),
    "compile_kernels": ("pstm.migrate", "pstm.kernels"),
    "assemble": ("pstm.assemble", "pstm.migrate", "pstm.io", "pstm.grid"),
    "qc": ("pstm.qc",),
    "qc_velocity": ("pstm.qc", "pstm.grid"),
    "summary": ("pstm.summary", "pstm.index"),
}


#: The config sections a tile job depends on: with the stage's code hash and the tile's
#: extent, its Snakemake params (workflow/rules/migrate.smk, :meth:`Run.tile_params`).
MIGRATE_SECTIONS = ("grid", "migration", "input")


#: What a tile job reads (workflow/rules/migrate.smk). Snakemake redoes a tile whose file is
#: older than one of them, and ``pstm status`` counts such a tile as outdated.
TILE_INPUTS = {
    "index": "results/index",
    "jit": "results/jit/kernels.json",  # kernels compiled once, before any tile job
    "coverage": "results/coverage.json",  # gate: fails early when no trace is in aperture
    "traces": "results/precondition/traces.zarr",
    "vrms": "results/velocity/vrms.npy",
}


#: Snakemake's job scheduler (9.x) re-evaluates once a second through a
#: ``threading.Timer`` (its ``--max-jobs-per-timespan`` rate limiter, on by default) that is
#: not a daemon thread: at exit Python waits for the last one, up to a second after the
#: last job. This names that timer's function, the only one
#: :func:`release_scheduler_timers` cancels.
SNAKEMAKE_REEVALUATION_TIMER = "JobScheduler._schedule_reevalutation.<locals>.<lambda>"


#: The ``--config`` (and ``--configfile``) overrides of the last run in a workflow
#: directory, written by the Snakefile's ``onstart`` (:func:`record_config_overrides`):
#: ``pstm status`` applies them to ``config.yaml`` as Snakemake did.
CONFIG_OVERRIDES_FILE = Path(".snakemake") / "pstm-config-overrides.yaml"


def record_config_overrides(overrides: dict[str, Any], workdir: Path | None = None) -> None:
    """Keep a run's config overrides (Snakemake's ``overwrite_config``) in
    :data:`CONFIG_OVERRIDES_FILE`, or remove it for a run without any."""
    path = (workdir or Path.cwd()) / CONFIG_OVERRIDES_FILE
    if not overrides:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(overrides), sort_keys=False))


def with_config_overrides(raw: Any, workdir: Path) -> tuple[Any, dict[str, Any]]:
    """``raw`` (config.yaml's data) with the last run's recorded overrides merged in by
    Snakemake's own merge (``snakemake.utils.update_config``), and the overrides ({}
    without a record)."""
    from snakemake.utils import update_config

    path = workdir / CONFIG_OVERRIDES_FILE
    overrides = read_yaml(path) if path.exists() else None
    if not isinstance(overrides, dict) or not overrides:
        return raw, {}
    merged = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    update_config(merged, overrides)
    return merged, overrides


def stop_workflow(exc: PstmError) -> NoReturn:
    """End a Snakefile's parse on a pstm error: its one message, exit status 1, no
    traceback (Snakemake would print one for an exception)."""
    sys.stderr.write(f"pstm: {exc}\n")
    raise SystemExit(1)


def check_config_file(path: str) -> None:
    """Stop the workflow on a malformed YAML file with pstm's message (the file, the line
    and the column), before Snakemake's ``configfile:`` reads it and says neither (the
    Snakefile calls it first). A missing file is left to Snakemake."""
    if Path(path).exists():
        try:
            read_yaml(path)
        except ConfigError as exc:
            stop_workflow(exc)


def release_scheduler_timers() -> int:
    """Cancel Snakemake's pending re-evaluation timers once the run is over (the
    Snakefile's ``onsuccess``/``onerror``), so that ``snakemake`` exits when its last job
    has finished rather than up to a second later. Other threads are left alone. Returns
    how many timers it cancelled."""
    timers = [
        t
        for t in threading.enumerate()
        if isinstance(t, threading.Timer)
        and getattr(t.function, "__qualname__", "") == SNAKEMAKE_REEVALUATION_TIMER
    ]
    for timer in timers:
        timer.cancel()
    return len(timers)


def numba_cache_dir() -> Path:
    """Numba's kernel cache of the workflow: ``.numba_cache/<hash of pstm.kernels' sources>``
    next to the pstm checkout. numba checks a cached function against its own source file
    only, and the numba kernels inline code of other modules
    (:mod:`pstm.kernels._numba_traces`, :mod:`pstm.kernels._numba_windows`): after a
    change there alone one cache directory
    would hand out the old machine code; one directory per version of the kernel sources
    cannot."""
    root = Path(importlib.import_module("pstm").__file__ or "").resolve().parent.parent
    return root / ".numba_cache" / code_hash(("pstm.kernels",))


def store_stamp(path: str | Path) -> str:
    """What Snakemake cannot see of a directory input (a Zarr store the user gives): its
    files' count, total size and newest modification, hashed; "" for a file (Snakemake
    compares a file's own mtime) or a missing path. Rewriting a chunk inside a store leaves
    the directory's mtime alone, so a rule reading an external store takes this as a
    param: an edit inside the store reruns it (and what depends on it)."""
    root = Path(path)
    if not root.is_dir():
        return ""
    count = size = newest = 0
    for f in root.rglob("*"):
        if f.is_file():
            st = f.stat()
            count, size, newest = count + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    digest = hashlib.sha256(f"{count} {size} {newest}".encode()).hexdigest()[:16]
    return f"{count} files, {size} bytes, {digest}"


@functools.cache
def code_hash(modules: tuple[str, ...]) -> str:
    """SHA-256 (first 16 hex digits) of the source files of the given modules/packages
    (once per process: the Snakefile asks for the same modules' hash many times). Found
    without importing them (``find_spec`` imports only their parent packages): the
    Snakefile's parse then imports no zarr or pyarrow."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no source for module {name!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Run:
    config: PstmConfig  # with ``auto`` resolved
    backend_reason: str
    grid: OutputGrid
    plan: TilePlan
    traces: Path
    headers: Path
    ns_in: int  # samples per input trace
    #: migration.rho_filter was ``auto``, resolved from the grid alone (pstm.index checks it
    #: against the data: check_line_rho)
    rho_from_grid: bool = False

    def params(self, stage: str, *sections: str, **extra: Any) -> dict[str, Any]:
        """JSON-able params of a stage: the named config sections, any extra plain values,
        and the hash of the stage's code."""
        out: dict[str, Any] = {s: section_params(getattr(self.config, s)) for s in sections}
        out.update(extra)
        out["code"] = code_hash(STAGE_MODULES[stage])
        return out

    def config_params(self) -> dict[str, Any]:
        """The whole validated config as params, one per section (the preflight's): after an
        edit Snakemake's reason names the changed sections only, not the whole config."""
        return {s: section_params(getattr(self.config, s)) for s in type(self.config).model_fields}

    def tile_params(self) -> dict[str, dict[str, Any]]:
        """Each tile's job params by tile id, as the Snakefile gives them (its config
        sections, the code hash, the tile's extent)."""
        shared = self.params("migrate", *MIGRATE_SECTIONS)
        return {t.id: {**shared, "tile": t.as_params()} for t in self.plan.tiles}

    def resolved_yaml(self) -> str:
        header = (
            f"# resolved by pstm {__version__}: defaults filled in, 'auto' resolved.\n"
            f"# migration.backend: {self.backend_reason}\n"
            f"# tiles: {len(self.plan.tiles)} of {self.plan.tile_nil} x {self.plan.tile_nxl} bins ({self.plan.reason})\n"
        )
        body: str = yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
        return header + body


def input_n_samples(cfg: PstmConfig, traces: Path) -> int:
    """Samples per input trace, from config (synthetic) or the Zarr metadata."""
    if cfg.input.kind is InputKind.SYNTHETIC:
        return cfg.synthetic.n_samples
    if cfg.input.kind is InputKind.SEGY:
        from pstm.io.segy import segy_n_samples

        assert cfg.input.segy is not None
        return segy_n_samples(cfg.input.segy)
    from pstm.io.traces import open_traces

    return open_traces(traces).ns


def resolve_rho_filter(requested: RhoFilter, grid: OutputGrid) -> RhoFilter:
    """``auto``: the 2D filter for a single-crossline (2D line) grid, else the 3D one."""
    if requested is not RhoFilter.AUTO:
        return requested
    rho = RhoFilter.TWO_D if grid.nxl == 1 else RhoFilter.THREE_D
    log.info("migration.rho_filter auto -> %s (grid has %d crossline(s))", rho.value, grid.nxl)
    return rho


def resolve_antialias_spacing(migration: MigrationConfig, grid: OutputGrid) -> tuple[float, float]:
    """The (inline, crossline) trace spacing of the anti-aliasing rule: one number for both;
    ``auto``: the output bin spacings (the midpoint spacings of a regular survey); on a 2D
    line (one crossline, or one inline) the spacing along it for both (the other is no trace
    spacing)."""
    spacing = migration.antialias_spacing_m
    if isinstance(spacing, tuple):
        return float(spacing[0]), float(spacing[1])
    if spacing != AUTO:
        return float(spacing), float(spacing)
    if grid.nxl == 1 or grid.nil == 1:  # a line: its own spacing for both directions
        along = grid.dil if grid.nxl == 1 else grid.dxl
        log.info("migration.antialias_spacing_m auto -> %g m (a 2D line's bin spacing)", along)
        return along, along
    log.info(
        "migration.antialias_spacing_m auto -> [%g, %g] m (the bin spacings)", grid.dil, grid.dxl
    )
    return grid.dil, grid.dxl


def prepare_run(raw: dict[str, Any] | None, source: str = "config") -> Run:
    """Validate, resolve ``auto`` and plan. Raises :class:`pstm.errors.PstmError`."""
    cfg = parse_config(raw, source)
    require_velocity_files(cfg.velocity)
    backend, why = resolve_backend(
        cfg.migration.backend, cfg.execution.check_backend_device, cfg.migration.traveltime
    )
    if cfg.migration.backend is Backend.AUTO:
        log.info("migration.backend auto -> %s (%s)", backend.value, why)
    # synthetic and segy input are written to results/input by rule synthesize / import_segy
    if cfg.input.kind in (InputKind.SYNTHETIC, InputKind.SEGY):
        traces, headers = SYNTHETIC_TRACES, SYNTHETIC_HEADERS
    else:
        assert cfg.input.traces_zarr is not None and cfg.input.headers_parquet is not None
        traces, headers = cfg.input.traces_zarr, cfg.input.headers_parquet
    grid = OutputGrid.from_config(cfg.grid)
    rho = resolve_rho_filter(cfg.migration.rho_filter, grid)
    ns_in = input_n_samples(cfg, traces)  # opens the traces: a missing store stops here
    if cfg.input.kind not in (InputKind.SYNTHETIC, InputKind.SEGY):  # the user's own files
        require_headers(headers)
    plan = plan_tiles(grid, cfg.execution, cfg.migration, ns_in)
    resolved = cfg.model_copy(
        update={
            "migration": cfg.migration.model_copy(
                update={
                    "backend": backend,
                    "rho_filter": rho,
                    "antialias_spacing_m": resolve_antialias_spacing(cfg.migration, grid),
                }
            ),
            "execution": cfg.execution.model_copy(
                update={"tile_n_inline": plan.tile_nil, "tile_n_crossline": plan.tile_nxl}
            ),
        }
    )
    rho_from_grid = cfg.migration.rho_filter is RhoFilter.AUTO
    return Run(resolved, why, grid, plan, Path(traces), Path(headers), ns_in, rho_from_grid)
