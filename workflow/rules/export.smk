# Export stage: the stack and the offset-class gathers as SEG-Y.


rule export_segy:
    input:
        "results/image.zarr",
    output:
        stack="results/export/stack.sgy",
        gathers="results/export/gathers.sgy",
    params:
        **RUN.params("export", "export"),
    conda:
        "../../environment.yml"
    log:
        "logs/export/export.log",
    script:
        "../scripts/export_segy.py"
