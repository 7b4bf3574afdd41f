"""Snakemake script: write the manifest of a batch of tiles (its group's last job)."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0], lambda: stages.batch_manifest(smk.wildcards.batch, list(smk.input), smk.output[0])
)
