# Migration stage: one job per tile; each tile file is a checkpoint. Tiles are grouped
# into at most execution.max_tile_jobs batches (pstm.plan.plan_tiles); on a cluster each
# batch is one submitted job (docs/scaling.md).


rule compile_kernels:
    output:
        "results/jit/kernels.json",
    params:
        **RUN.params("compile_kernels", variant=kernel_variant()),
    conda:
        "../../environment.yml"
    log:
        "logs/compile_kernels/compile_kernels.log",
    script:
        "../scripts/compile_kernels.py"


rule migrate_tile:
    input:
        **TILE_INPUTS,  # the index, compiled kernels, coverage gate, traces, velocity
    output:
        "results/tiles/{tile}.npz",
    params:
        **RUN.params("migrate", *MIGRATE_SECTIONS),
        tile=tile_extent,  # (RUN.tile_params() gives the same, for pstm status)
    group:
        tile_batch
    threads: RUN.plan.threads_per_job
    priority: tile_priority
    resources:
        mem_mb=RUN.plan.mem_mb_per_job,
    conda:
        "../../environment.yml"
    log:
        "logs/migrate/{tile}.log",
    script:
        "../scripts/migrate_tile.py"


rule tile_batch:
    input:
        batch_tile_files,
    output:
        "results/tiles/batches/{batch}.json",
    group:
        batch_group
    resources:
        # sized like a tile job so that it never widens its group's SLURM request
        mem_mb=RUN.plan.mem_mb_per_job,
        runtime=BATCH_MANIFEST_RUNTIME_MIN,
    conda:
        "../../environment.yml"
    log:
        "logs/tile_batch/{batch}.log",
    script:
        "../scripts/tile_batch.py"
