# Index stage: spatial index of trace midpoints on the output grid.
from pstm.index import max_aperture_m


rule index:
    input:
        traces=str(RUN.traces),
        headers=str(RUN.headers),
    output:
        directory("results/index"),
    params:
        # the input files are the rule's inputs; no setting of the input section matters
        **RUN.params("index", "grid"),
    conda:
        "../../environment.yml"
    log:
        "logs/index/index.log",
    script:
        "../scripts/index.py"


# Fails before any tile job when no trace lies within aperture of the grid (or auto chose
# the 2D rho filter for a line of bins over areal data). Its params are only the grid, the
# largest aperture and the rho filter, so a QC or velocity edit does not rerun it.
rule coverage:
    input:
        index="results/index",
    output:
        "results/coverage.json",
    params:
        **RUN.params(
            "coverage",
            "grid",
            aperture_m=max_aperture_m(RUN.config.migration),
            # a line of bins over areal data: the 2D rho filter is wrong (pstm.index)
            rho_filter=RUN.config.migration.rho_filter.value,
            rho_from_grid=RUN.rho_from_grid,
        ),
    conda:
        "../../environment.yml"
    log:
        "logs/coverage/coverage.log",
    script:
        # not coverage.py: numba imports a package of that name from the script's folder
        "../scripts/index_coverage.py"


rule preflight:
    input:
        index="results/index",
        traces="results/precondition/traces.zarr",
        jit="results/jit/kernels.json",  # the quick kernel timing uses the compiled kernels
    output:
        resolved="results/resolved_config.yaml",
        report="results/preflight.txt",
    params:
        **RUN.config_params(),  # one per section
        backend_reason=RUN.backend_reason,
        plan_reason=RUN.plan.reason,
    threads: RUN.plan.threads_per_job  # its quick kernel timing runs as a tile job does
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../environment.yml"
    log:
        "logs/preflight/preflight.log",
    script:
        "../scripts/preflight.py"
