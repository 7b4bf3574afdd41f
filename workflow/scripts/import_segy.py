"""Snakemake script: import a pre-stack SEG-Y file to Zarr traces + Parquet headers."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0],
    lambda: stages.import_segy(stages.params_of(smk), smk.output.traces, smk.output.headers),
)
