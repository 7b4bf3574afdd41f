# Index stage: spatial index of trace midpoints on the output grid.


rule index:
    input:
        traces=str(RUN.traces),
        headers=str(RUN.headers),
    output:
        directory("results/index"),
    params:
        **RUN.params("index", "grid", "input"),
    conda:
        "../../environment.yml"
    log:
        "logs/index/index.log",
    script:
        "../scripts/index.py"


rule preflight:
    input:
        index="results/index",
    output:
        resolved="results/resolved_config.yaml",
        report="results/preflight.txt",
    params:
        config=RUN.config.model_dump(mode="json"),
        backend_reason=RUN.backend_reason,
        plan_reason=RUN.plan.reason,
    conda:
        "../../environment.yml"
    log:
        "logs/preflight/preflight.log",
    script:
        "../scripts/preflight.py"
