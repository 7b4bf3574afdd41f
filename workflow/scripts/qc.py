"""Snakemake script: QC figures of the assembled image."""

from pathlib import Path

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.qc(
        stages.params_of(smk),
        smk.input.image,
        str(Path(smk.output[0]).parent),
    ),
)
