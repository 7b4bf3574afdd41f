# Migration stage: one job per tile; each tile file is a checkpoint.


rule migrate_tile:
    input:
        index="results/index",
        coverage="results/coverage.json",  # gate: fails early when no trace is in aperture
        traces="results/precondition/traces.zarr",
        vrms="results/velocity/vrms.npy",
    output:
        "results/tiles/{tile}.npz",
    params:
        **RUN.params("migrate", "grid", "migration", "input"),
        tile=tile_extent,
    threads: RUN.plan.threads_per_job
    resources:
        mem_mb=RUN.plan.mem_mb_per_job,
    conda:
        "../../environment.yml"
    log:
        "logs/migrate/{tile}.log",
    script:
        "../scripts/migrate_tile.py"
