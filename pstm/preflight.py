"""What will really run: backend (and why), tiles, traces per tile, memory per job."""

from __future__ import annotations

import numpy as np

from pstm.index import MidpointIndex
from pstm.pipeline import Run


def preflight_report(run: Run, index: MidpointIndex | None) -> str:
    cfg, plan, grid = run.config, run.plan, run.grid
    lines = [
        "pstm preflight",
        f"  backend          : {cfg.migration.backend.value} ({run.backend_reason})",
        f"  grid             : {grid.nil} inlines x {grid.nxl} crosslines x {grid.nt} samples "
        f"(dt {grid.dt * 1e3:.2f} ms), rotation {grid.rotation_deg} deg",
        f"  tiles            : {len(plan.tiles)} of {plan.tile_nil} x {plan.tile_nxl} bins ({plan.reason})",
        f"  memory per job   : {plan.mem_mb_per_job} MB declared, budget {cfg.execution.memory_budget_mb} MB",
        f"  threads per job  : {plan.threads_per_job}",
        f"  aperture         : {cfg.migration.aperture_m} m",
    ]
    if index is not None:
        counts = np.array(
            [
                len(index.query(t.il0, t.nil, t.xl0, t.nxl, cfg.migration.aperture_m))
                for t in plan.tiles
            ]
        )
        samples = np.array([t.nil * t.nxl * grid.nt for t in plan.tiles])
        lines += [
            f"  input traces     : {index.ntr}",
            f"  traces per tile  : min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}",
            f"  contributions    : at most {float((counts * samples).sum()):.3g} "
            "(traces within tile aperture x tile samples)",
        ]
        empty = int((counts == 0).sum())
        if empty:
            lines.append(f"  WARNING: {empty} tile(s) have no trace within aperture")
    return "\n".join(lines) + "\n"
