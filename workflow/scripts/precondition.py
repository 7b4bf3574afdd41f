"""Snakemake script: NaN/Inf check and rho filter of every trace."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.precondition(stages.params_of(smk), smk.input[0], smk.output[0], smk.threads),
)
