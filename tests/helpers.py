"""Shared test helpers: tiny configurations and an in-process pipeline runner."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pstm.config import Backend, PstmConfig, parse_config
from pstm.grid import OutputGrid
from pstm.index import build_index, max_aperture_m
from pstm.io.headers import Geometry
from pstm.kernels import ImageTarget, TraceBatch, get_kernel
from pstm.migrate import kernel_options, offset_class_of
from pstm.pipeline import resolve_antialias_spacing, resolve_rho_filter
from pstm.plan import n_offset_classes
from pstm.precondition import apply_rho
from pstm.synthetic import make_survey
from pstm.velocity import build_velocity

REPO = Path(__file__).resolve().parents[1]

#: A small but complete survey: 3 receiver lines, 2 shot lines; 8 x 6 x 60 output grid.
TINY: dict[str, Any] = {
    "synthetic": {
        "n_receiver_lines": 3,
        "receiver_line_spacing_m": 100.0,
        "n_receivers_per_line": 12,
        "receiver_spacing_m": 50.0,
        "n_shot_lines": 2,
        "shot_line_spacing_m": 300.0,
        "n_shots_per_line": 4,
        "shot_spacing_m": 70.0,
        "n_samples": 150,
        "dt_s": 0.004,
        "diffractors": [{"x_m": 275.0, "y_m": 100.0, "time_s": 0.3}],
        "reflectors": [{"time_s": 0.45, "x_m": 275.0, "y_m": 100.0}],
    },
    "grid": {
        "origin_x_m": 175.0,
        "origin_y_m": 25.0,
        "n_inline": 8,
        "n_crossline": 6,
        "nt": 100,
        "inline_spacing_m": 25.0,
        "crossline_spacing_m": 30.0,
    },
    "migration": {"aperture_m": 400.0},
    "execution": {"tile_n_inline": 4, "tile_n_crossline": 3},
}


def tiny_config(**overrides: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(TINY)
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def migrate_in_process(
    cfg: PstmConfig, backend: Backend, tiles: list[tuple[int, int, int, int]] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Synthesize, then migrate the whole grid (or the given tiles) without Snakemake.
    Returns gathers (ncls, nil, nxl, nt), fold and the truth dictionary."""
    data, table, truth = make_survey(cfg.synthetic)
    grid = OutputGrid.from_config(cfg.grid)
    data = apply_rho(data, cfg.synthetic.dt_s, resolve_rho_filter(cfg.migration.rho_filter, grid))
    geo = Geometry(
        *(table.column(c).to_numpy() for c in ("source_x", "source_y", "receiver_x", "receiver_y"))
    )
    vel = build_velocity(cfg.velocity, grid)
    index = build_index(geo, grid)
    ncls = n_offset_classes(cfg.migration)
    gathers = np.zeros((ncls, grid.nil, grid.nxl, grid.nt), np.float32)
    fold = np.zeros(gathers.shape, np.int32)
    kernel = get_kernel(backend)
    migration = cfg.migration.model_copy(
        update={"antialias_spacing_m": resolve_antialias_spacing(cfg.migration, grid)}
    )
    options = kernel_options(migration, grid.rotation_deg, threads=2)
    for il0, nil, xl0, nxl in tiles or [(0, grid.nil, 0, grid.nxl)]:
        ids = index.query(il0, nil, xl0, nxl, max_aperture_m(cfg.migration))
        cls = offset_class_of(geo.offset[ids], cfg.migration)
        ids, cls = ids[cls >= 0], cls[cls >= 0]
        x, y = grid.bin_xy(il0, nil, xl0, nxl)
        target = ImageTarget(
            x,
            y,
            grid.t0,
            grid.dt,
            np.ascontiguousarray(vel[il0 : il0 + nil, xl0 : xl0 + nxl]),
            origin=grid.centre,
        )
        batch = TraceBatch(
            data[ids],
            0.0,
            cfg.synthetic.dt_s,
            geo.sx[ids],
            geo.sy[ids],
            geo.rx[ids],
            geo.ry[ids],
            cls,
        )
        g = np.zeros((ncls, nil, nxl, grid.nt), np.float32)
        f = np.zeros(g.shape, np.int32)
        kernel(batch, target, options, g, f)
        gathers[:, il0 : il0 + nil, xl0 : xl0 + nxl] = g
        fold[:, il0 : il0 + nil, xl0 : xl0 + nxl] = f
    return gathers, fold, truth


def parse(cfg: dict[str, Any]) -> PstmConfig:
    return parse_config(cfg, "test")


def make_workdir(tmp: Path, config: dict[str, Any]) -> Path:
    """A copy of the workflow (Snakefile, workflow/) with the given config.yaml."""
    import yaml

    for name in ("Snakefile", "environment.yml"):
        shutil.copy(REPO / name, tmp / name)
    shutil.copytree(REPO / "workflow", tmp / "workflow")
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def planned_jobs(workdir: Path, *targets: str) -> dict[str, int]:
    """Jobs a dry run (of ``targets``, or of everything) would execute, by rule (empty when
    there is nothing to do)."""
    out = snakemake(workdir, *targets, "-n", "--quiet", "rules").stdout
    jobs: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            jobs[parts[0]] = int(parts[1])
    return jobs
