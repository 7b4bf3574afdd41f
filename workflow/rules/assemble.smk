# Assembly stage: stitch tiles into results/image.zarr.


rule assemble:
    input:
        tile_outputs,
    output:
        directory("results/image.zarr"),
    params:
        **RUN.params("assemble", "grid", "migration"),
        tile_shape=[RUN.plan.tile_nil, RUN.plan.tile_nxl],
    conda:
        "../../environment.yml"
    log:
        "logs/assemble/assemble.log",
    script:
        "../scripts/assemble.py"
