"""Snakemake script: v_rms on the output grid."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.velocity(stages.params_of(smk), smk.output.vrms, smk.output.info),
)
