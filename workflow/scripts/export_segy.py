"""Snakemake script: write the stack, the gathers and the fold as SEG-Y."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.export_segy(
        stages.params_of(smk),
        smk.input[0],
        smk.output.stack,
        smk.output.gathers,
        smk.output.fold,
    ),
)
