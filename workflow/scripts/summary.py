"""Snakemake script: the run summary (results/summary.json and .html) from the logs."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.summary(".", smk.output.json, smk.output.html, smk.params.jobs),
)
