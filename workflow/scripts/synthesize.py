"""Snakemake script: generate the built-in synthetic survey."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.synthesize(
        stages.params_of(smk), smk.output.traces, smk.output.headers, smk.output.truth
    ),
)
