# Velocity stage: v_rms on the output grid.


rule velocity:
    output:
        "results/velocity/vrms.npy",
    params:
        **RUN.params("velocity", "velocity", "grid"),
    conda:
        "../../environment.yml"
    log:
        "logs/velocity/velocity.log",
    script:
        "../scripts/velocity.py"
