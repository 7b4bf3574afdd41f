# QC stage: figures of the assembled image and of the velocity, a run summary, and what
# `snakemake --report results/report.html` shows (captions under workflow/report/).


report: "../report/workflow.rst"


rule qc:
    input:
        image="results/image.zarr",
    output:
        report(
            expand("results/qc/{figure}.png", figure=IMAGE_FIGURES),
            caption="../report/qc.rst",
            category="QC figures",
        ),
    params:
        **RUN.params("qc", "qc"),
    conda:
        "../../environment.yml"
    log:
        "logs/qc/qc.log",
    script:
        "../scripts/qc.py"


# The velocity's figure needs only the velocity stage: drawn while the data are prepared,
# before any tile job, and redrawn only when the velocity, the grid or the QC settings change.
rule qc_velocity:
    input:
        vrms="results/velocity/vrms.npy",
        vrms_info="results/velocity/velocity.json",
    output:
        report(
            f"results/qc/{VELOCITY_FIGURE}.png",
            caption="../report/qc.rst",
            category="QC figures",
        ),
    params:
        **RUN.params("qc_velocity", "qc", "grid"),
    conda:
        "../../environment.yml"
    log:
        "logs/qc_velocity/qc_velocity.log",
    script:
        "../scripts/qc_velocity.py"


rule summary:
    input:
        tiles=tile_outputs,
        image="results/image.zarr",
        qc=expand("results/qc/{figure}.png", figure=QC_FIGURES),
        preflight="results/preflight.txt",
        # after the export too, so that its stage table covers every stage of the run
        export=[f"results/export/{name}.sgy" for name in ("stack", "gathers", "fold")],
    output:
        json="results/summary.json",
        html=report(
            "results/summary.html", caption="../report/summary.rst", category="Run summary"
        ),
    params:
        **RUN.params("summary"),
        jobs=summary_jobs,
    conda:
        "../../environment.yml"
    log:
        "logs/summary/summary.log",
    script:
        "../scripts/summary.py"
