"""Snakemake script: compile (or load from cache) the kernels once, before the tile jobs."""

from pstm import stages

smk = snakemake  # type: ignore[name-defined]  # noqa: F821
stages.run_logged(smk.log[0], lambda: stages.compile_kernels(stages.params_of(smk), smk.output[0]))
