"""Re-run one tile job of a finished workflow run with given thread counts (docs/benchmarks.md).

Usage, after ``bash docs/bench/run_e2e.sh docs/bench/e2e_100k_3s.yaml`` (it prints its
work directory), from the repository root:

    .venv/bin/python docs/bench/tile_time.py WORKDIR 0000_0001 2 1

Each thread count runs the tile job's own code (``pstm.stages.migrate``: kernel load, index
query, trace reads, kernel, write) on that run's inputs, logs its JSON record (kernel
seconds and the rest) and writes the tile to a scratch file, never into WORKDIR/results.
"""

import logging
import os
import sys
import tempfile
from pathlib import Path

import yaml

from pstm.pipeline import numba_cache_dir, prepare_run

# the workflow's numba cache (workflow/rules/common.smk), so that nothing is compiled here
os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
from pstm import stages  # after NUMBA_CACHE_DIR: numba reads it when first imported

work, tile_id, *threads = sys.argv[1:]
os.chdir(work)
logging.basicConfig(level=logging.INFO, format="%(message)s")
run = prepare_run(yaml.safe_load(Path("config.yaml").read_text()), source="config.yaml")
tile = run.plan.by_id()[tile_id]
params = run.params("migrate", "grid", "migration", "input", tile=tile.as_params())
with tempfile.TemporaryDirectory() as scratch:
    for n in map(int, threads):
        stages.migrate(
            params,
            "results/index",
            "results/precondition/traces.zarr",
            "results/velocity/vrms.npy",
            f"{scratch}/{tile_id}.npz",
            n,
        )
