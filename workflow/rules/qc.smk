# QC stage: figures of the assembled image.


rule qc:
    input:
        "results/image.zarr",
    output:
        expand("results/qc/{figure}.png", figure=QC_FIGURES),
    params:
        **RUN.params("qc", "qc"),
    conda:
        "../../environment.yml"
    log:
        "logs/qc/qc.log",
    script:
        "../scripts/qc.py"
