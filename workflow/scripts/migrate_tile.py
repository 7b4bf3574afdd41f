"""Snakemake script: migrate one tile."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.migrate(
        stages.params_of(smk),
        smk.input.index,
        smk.input.traces,
        smk.input.vrms,
        smk.output[0],
        smk.threads,
    ),
)
