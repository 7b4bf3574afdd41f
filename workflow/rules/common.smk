# Validate the config once, resolve 'auto' choices and plan the tiles (pstm.pipeline).
import logging
import os
import sys

from pstm.errors import PstmError
from pstm.pipeline import (
    MIGRATE_SECTIONS,
    TILE_INPUTS,
    numba_cache_dir,
    prepare_run,
    record_config_overrides,
    release_scheduler_timers,
    stop_workflow,
    store_stamp,
)
from pstm.plan import BATCH_ID_PATTERN, precondition_mem_mb, precondition_threads
from pstm.qc import IMAGE_FIGURES, QC_FIGURES, VELOCITY_FIGURE
from pstm.resume import record_executor

_log = logging.getLogger("pstm")
if not _log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("pstm: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False
# Numba's kernel cache: one directory per version of the kernel sources under
# `.numba_cache` next to the pstm checkout (pstm.pipeline.numba_cache_dir; the
# `.numba_cache` entry of .gitignore), shared by every run and, on a cluster, by every
# node: the checkout and its venv must be on the shared filesystem anyway. Jobs inherit
# this environment (the SLURM plugin submits with --export=ALL); export NUMBA_CACHE_DIR to
# put it elsewhere (then clear it after changing pstm.kernels).
os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
try:
    RUN = prepare_run(config, source="config.yaml (with any --config overrides)")
except PstmError as _exc:
    stop_workflow(_exc)

TILES = RUN.plan.by_id()
BATCHES = {batch.id: batch for batch in RUN.plan.batches}
BATCH_OF_TILE = RUN.plan.batch_of()
TILE_PRIORITY = RUN.plan.start_priority()
#: Minutes declared for a batch's manifest job (it only stats the batch's tile files);
#: a profile's set-resources (tile_batch: runtime) overrides it.
BATCH_MANIFEST_RUNTIME_MIN = 2



wildcard_constraints:
    tile=r"\d{4}_\d{4}",
    batch=BATCH_ID_PATTERN,


def tile_extent(wildcards):
    """The extent of one tile (part of its params: a re-plan reruns the tiles it changes)."""
    return TILES[wildcards.tile].as_params()


def tile_priority(wildcards):
    """The Snakemake priority of a tile job: centre tiles first (TilePlan.start_priority),
    in [0, 1): below every rule given a priority of 1 or more."""
    return TILE_PRIORITY[wildcards.tile] / len(TILE_PRIORITY)


def tile_batch(wildcards):
    """The Snakemake group of a tile job: its batch, when the plan batches tiles (more
    tiles than execution.max_tile_jobs); else none. A cluster executor submits a group
    as one job; local execution ignores groups."""
    return BATCH_OF_TILE[wildcards.tile] if RUN.plan.batched else None


def batch_group(wildcards):
    return wildcards.batch


def batch_tile_files(wildcards):
    """The tile files of one batch (inputs of its manifest job, which makes the batch one
    connected part of the DAG, hence one group job: Snakemake splits a group into its
    connected parts)."""
    return [f"results/tiles/{tile_id}.npz" for tile_id in BATCHES[wildcards.batch].tile_ids]


def batch_outputs(wildcards=None):
    """Batch manifests, one per batch; none when tiles are not batched."""
    if not RUN.plan.batched:
        return []
    return [f"results/tiles/batches/{batch_id}.json" for batch_id in BATCHES]


def tile_outputs(wildcards=None):
    return [f"results/tiles/{tile_id}.npz" for tile_id in TILES]


def summary_jobs(wildcards=None):
    """The run's stages (its rules' log directories) and its tile plan's job ids
    (pstm.summary.RunJobs): the summary counts only their logs, not those of an earlier
    plan or input kind."""
    ids = {"migrate": sorted(TILES), "tile_batch": sorted(BATCHES) if RUN.plan.batched else []}
    stages = {os.path.basename(os.path.dirname(log)) for r in workflow.rules for log in r.log}
    return {"stages": sorted(stages), "ids": ids}


def kernel_variant():
    """What decides the compiled kernels (pstm.migrate.KernelVariant), as plain JSON."""
    from pstm.migrate import KernelVariant

    return KernelVariant.of(RUN.config.migration).model_dump(mode="json")


# Snakemake priority of the long jobs on the path to the first tile job (the input stage,
# then the preconditioning): started first, so that the short jobs the tiles also wait for
# (velocity, kernel compilation, index, coverage) run beside them on the other cores instead
# of before them. The preflight report has it too: it is ready with the first tiles and is
# read before them.
CRITICAL_PATH_PRIORITY = 10

# Threads of the preconditioning job (pstm.plan.precondition_threads): the cores
# of the run (--cores, or a profile's `cores`) within the per-job memory budget.
PRECONDITION_THREADS = precondition_threads(
    workflow.cores if isinstance(workflow.cores, int) else 1,
    RUN.ns_in,
    RUN.config.execution,
)
