"""Freeze the pstm source a workflow test runs: a copy of the package in the work
directory, first on ``PYTHONPATH``. Rules hash their pstm modules into their params
(pstm.pipeline.code_hash), so a test that compares what reruns between several Snakemake
invocations must not see the source change under it (e.g. while it is being edited)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import REPO

SNAPSHOT_DIR = "_pstm_source"


def freeze_pstm(work: Path) -> dict[str, str]:
    """Copy the package into ``work``; returns the environment that makes it the one used."""
    target = work / SNAPSHOT_DIR
    shutil.copytree(
        REPO / "pstm", target / "pstm", ignore=shutil.ignore_patterns("__pycache__", "*.nb?")
    )
    return {"PYTHONPATH": str(target)}
