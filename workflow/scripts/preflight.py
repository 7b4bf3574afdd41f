"""Snakemake script: write the resolved config and the preflight report."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.preflight(
        stages.params_of(smk),
        smk.input.index,
        smk.input.traces,
        smk.output.resolved,
        smk.output.report,
    ),
)
