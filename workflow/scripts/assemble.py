"""Snakemake script: stitch the tiles into results/image.zarr."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(
    smk.log[0], lambda: stages.assemble(stages.params_of(smk), list(smk.input), smk.output[0])
)
