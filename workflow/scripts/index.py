"""Snakemake script: build the midpoint index (validates traces and headers)."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.index(stages.params_of(smk), smk.input.traces, smk.input.headers, smk.output[0]),
)
