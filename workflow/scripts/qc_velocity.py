"""Snakemake script: QC figure of the velocity used (before the migration)."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.qc_velocity(
        stages.params_of(smk), smk.input.vrms, smk.input.vrms_info, smk.output[0]
    ),
)
