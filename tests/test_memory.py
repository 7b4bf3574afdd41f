"""Memory: the peak resident memory of tile jobs, measured, stays under the ``mem_mb`` each
job declares (the plan's memory model, :func:`pstm.plan.tile_memory_bytes`), for three
grid sizes from a few thousand to a few million output samples per tile.

The peak is ``ru_maxrss`` of the children of a small wrapper process that runs Snakemake on
the tile jobs only (inputs are built beforehand): the largest of Snakemake itself and every
tile job, an upper bound of each tile job's own peak; and each tile job's own
``ru_maxrss``, which every stage logs (``peak memory ... MB``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pstm.pipeline import prepare_run
from tests.helpers import make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.workflow

PREREQUISITES = (
    "results/index",
    "results/coverage.json",
    "results/precondition/traces.zarr",
    "results/velocity/vrms.npy",
)

_WRAPPER = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
print(json.dumps({"rc": proc.returncode, "peak_mb": peak_kb / 1024, "err": proc.stderr[-3000:]}))
"""

#: (name, grid, execution): small tiles; one 32 x 32 x 300 tile; one 64 x 48 x 600 tile.
SIZES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("4x3x100", {}, {"tile_n_inline": 4, "tile_n_crossline": 3}),
    (
        "32x32x300",
        {"n_inline": 32, "n_crossline": 32, "nt": 300, "origin_x_m": 0.0, "origin_y_m": -300.0},
        {"tile_n_inline": 32, "tile_n_crossline": 32},
    ),
    (
        "64x48x600",
        {"n_inline": 64, "n_crossline": 48, "nt": 600, "origin_x_m": -500.0, "origin_y_m": -500.0},
        {"tile_n_inline": 64, "tile_n_crossline": 48},
    ),
]


@pytest.mark.parametrize(("grid", "execution"), [s[1:] for s in SIZES], ids=[s[0] for s in SIZES])
def test_tile_peak_memory_under_declared(
    tmp_path: Path, grid: dict[str, Any], execution: dict[str, Any]
) -> None:
    cfg = tiny_config(grid=grid, execution=execution)
    cfg["synthetic"] = {**cfg["synthetic"], "n_samples": max(150, cfg["grid"]["nt"] + 20)}
    plan = prepare_run(cfg, "test").plan
    work = make_workdir(tmp_path, cfg)
    snakemake(work, *PREREQUISITES)
    tiles = [f"results/tiles/{t.id}.npz" for t in plan.tiles]
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *tiles]
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    record = json.loads(out.stdout)
    assert record["rc"] == 0, record["err"]
    assert all((work / t).exists() for t in tiles)
    # each tile job logs its own peak (ru_maxrss of its process)
    own = [
        float(line.split("peak memory ")[1].split()[0])
        for t in plan.tiles
        for line in (work / "logs" / "migrate" / f"{t.id}.log").read_text().splitlines()
        if "peak memory " in line
    ]
    assert len(own) == len(plan.tiles)
    print(
        f"tile {plan.tile_nil}x{plan.tile_nxl}x{cfg['grid']['nt']}: tile job peak "
        f"{max(own):.0f} MB, Snakemake + jobs peak {record['peak_mb']:.0f} MB, "
        f"declared {plan.mem_mb_per_job} MB"
    )
    assert max(own) <= record["peak_mb"] + 1  # the two measurements agree
    assert max(own) < plan.mem_mb_per_job
    assert record["peak_mb"] < plan.mem_mb_per_job
