# Velocity stage: v_rms on the output grid (pstm.velocity), and what was used (for QC).
from pstm.velocity import input_files as velocity_input_files


rule velocity:
    input:
        # the velocity file of the kinds that read one: editing it reruns the velocity
        velocity_input_files(RUN.config.velocity),
    output:
        vrms="results/velocity/vrms.npy",
        info="results/velocity/velocity.json",
    params:
        **RUN.params("velocity", "velocity", "grid"),
        # a Zarr cube: an edit inside the store reruns (pstm.pipeline.store_stamp)
        # (a function: evaluated only where the job is in the DAG, not on every parse)
        velocity_store=lambda wildcards: [
            store_stamp(f) for f in velocity_input_files(RUN.config.velocity)
        ],
    conda:
        "../../environment.yml"
    log:
        "logs/velocity/velocity.log",
    script:
        "../scripts/velocity.py"
