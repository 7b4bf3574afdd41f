# Preconditioning stage: NaN/Inf check and rho filter, once per trace.


rule precondition:
    input:
        str(RUN.traces),
    output:
        directory("results/precondition/traces.zarr"),
    params:
        **RUN.params("precondition", "input", rho_filter=RUN.config.migration.rho_filter.value),
        # a user's Zarr store: an edit inside it reruns (pstm.pipeline.store_stamp)
        # (a function: evaluated only where the job is in the DAG, not on every parse)
        traces_store=lambda wildcards: (
            store_stamp(RUN.traces) if RUN.config.input.kind is InputKind.ZARR else ""
        ),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../environment.yml"
    threads: PRECONDITION_THREADS
    resources:
        mem_mb=precondition_mem_mb(PRECONDITION_THREADS, RUN.ns_in),  # its threads' model
    log:
        "logs/precondition/precondition.log",
    script:
        "../scripts/precondition.py"
