# Export stage: the stack, the offset-class gathers and the fold as SEG-Y.


rule export_segy:
    input:
        "results/image.zarr",
    output:
        stack="results/export/stack.sgy",
        gathers="results/export/gathers.sgy",
        fold="results/export/fold.sgy",
    params:
        **RUN.params("export", "export"),
    conda:
        "../../environment.yml"
    log:
        "logs/export/export.log",
    script:
        "../scripts/export_segy.py"
