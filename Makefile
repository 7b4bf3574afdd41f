# Quick start: `make run` (install + run the workflow on the built-in synthetic survey),
# `make test` (install with test extras + lint + type check + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# the workflow profile of `make run` / `make dryrun`: e.g. PROFILE=workflow/profiles/slurm
# CORES=32 to run (or resume) on a SLURM cluster from this directory (docs/scaling.md)
PROFILE ?= workflow/profiles/local
SNAKEMAKE_ARGS ?=
# e.g. RESUME_ARGS='--slurm off': resume without asking SLURM about an earlier SLURM run's jobs
RESUME_ARGS ?=

.PHONY: run test lint typecheck pytest install install-test clean dryrun test-slurm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-slurm: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,slurm]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-test

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Runs (or resumes) the workflow. pstm.resume refuses while a Snakemake run is live in this
# directory, waits for jobs of a killed run, then removes its stale lock (pstm/resume.py).
run: install
	$(BIN)/python -m pstm.resume $(RESUME_ARGS)
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) $(SNAKEMAKE_ARGS)

dryrun: install
	$(BIN)/snakemake --workflow-profile $(PROFILE) -n

lint: install-test
	$(BIN)/ruff check pstm tests workflow/scripts
	$(BIN)/ruff format --check pstm tests workflow/scripts

typecheck: install-test
	$(BIN)/mypy pstm

pytest: install-test
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The workflow on a real single-node SLURM that the test installs (apt-get) and starts
# (tests/slurm/); it skips, saying why, where this machine cannot run SLURM.
test-slurm: $(VENV)/.installed-slurm
	$(BIN)/python -m pytest -q -m slurm -rs tests/test_slurm.py

clean:
	rm -rf results/*.zarr results/*.json results/input results/index results/tiles \
	       results/velocity results/qc results/precondition results/jit results/export \
	       results/*.yaml results/*.txt results/summary.* results/report.html logs .snakemake
