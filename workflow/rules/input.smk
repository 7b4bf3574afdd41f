# Input stage: the built-in synthetic survey (user data is read in place).


rule synthesize:
    output:
        traces=directory("results/input/traces.zarr"),
        headers="results/input/headers.parquet",
        truth="results/input/truth.json",
    params:
        **RUN.params("synthesize", "synthetic"),
    conda:
        "../../environment.yml"
    log:
        "logs/synthesize/synthesize.log",
    script:
        "../scripts/synthesize.py"
