# pstm: Kirchhoff pre-stack time migration.
#   config.yaml -> validated model -> tile plan -> one job per tile -> assembled image
from snakemake.utils import min_version

from pstm.pipeline import check_config_file

min_version("9.17")  # callable rule priorities (workflow/rules/common.smk)
check_config_file("config.yaml")  # a malformed file: pstm's message, with its line


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/input.smk"
include: "workflow/rules/precondition.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/velocity.smk"
include: "workflow/rules/migrate.smk"
include: "workflow/rules/assemble.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        # Tiles are listed too: a deleted or corrupted tile is then redone, and the
        # assembly after it (Snakemake does not regenerate a missing intermediate otherwise).
        tile_outputs(),
        batch_outputs(),  # one manifest per batch of tiles (none unless batched)
        "results/image.zarr",
        expand("results/qc/{figure}.png", figure=QC_FIGURES),
        "results/summary.json",
        "results/summary.html",
        "results/resolved_config.yaml",
        "results/preflight.txt",
        "results/export/stack.sgy",
        "results/export/gathers.sgy",
    default_target: True


# a run through a cluster executor leaves a marker: resuming a killed run then asks SLURM
# for its jobs (pstm.resume); its --config overrides are kept for pstm status
onstart:
    record_executor(workflow.executor_plugin.name if workflow.executor_plugin else None)
    record_config_overrides(workflow.config_settings.overwrite_config)


# Snakemake's scheduler leaves a one-second timer behind that delays its exit
# (pstm.pipeline.release_scheduler_timers)
onsuccess:
    release_scheduler_timers()


onerror:
    release_scheduler_timers()
