"""Snakemake script: check that traces lie within aperture of the output grid."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0], lambda: stages.coverage(stages.params_of(smk), smk.input.index, smk.output[0])
)
