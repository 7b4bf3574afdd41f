"""The Snakemake workflow end to end on a tiny survey."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.helpers import make_workdir, planned_jobs, snakemake, tiny_config

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = make_workdir(tmp_path_factory.mktemp("wf"), tiny_config())
    snakemake(work)
    return work


def test_outputs_exist(finished_run: Path) -> None:
    res = finished_run / "results"
    for name in ("inline", "crossline", "timeslice", "fold"):
        assert (res / "qc" / f"{name}.png").stat().st_size > 1000
    root = zarr.open_group(str(res / "image.zarr"), mode="r")
    image, fold = root["image"][:], root["fold"][:]
    assert image.shape == (8, 6, 100) and fold.shape == image.shape
    assert np.abs(image).max() > 0 and fold.max() > 0
    resolved = (res / "resolved_config.yaml").read_text()
    assert "backend: numba" in resolved and "migration.backend: auto" in resolved
    assert "tile_n_inline: 4" in resolved
    report = (res / "preflight.txt").read_text()
    assert "tiles            : 4 of 4 x 3 bins" in report


def test_tile_logs_record_work(finished_run: Path) -> None:
    logs = sorted((finished_run / "logs" / "migrate").glob("*.log"))
    assert len(logs) == 4
    line = next(ln for ln in logs[0].read_text().splitlines() if "INFO tile " in ln)
    record = json.loads(line.split(": ", 1)[1])
    assert record["backend"] == "numba"
    assert record["traces"] > 0 and record["contributions"] > 0 and record["seconds_kernel"] > 0


def test_nothing_to_do_then_one_tile_reruns(finished_run: Path) -> None:
    assert planned_jobs(finished_run) == {}
    (finished_run / "results" / "tiles" / "0001_0000.npz").unlink()
    jobs = planned_jobs(finished_run)
    assert jobs.get("migrate_tile") == 1 and jobs.get("assemble") == 1
    assert not {"synthesize", "index", "velocity"} & set(jobs)
    before = zarr.open_group(str(finished_run / "results" / "image.zarr"), mode="r")["image"][:]
    snakemake(finished_run)
    after = zarr.open_group(str(finished_run / "results" / "image.zarr"), mode="r")["image"][:]
    np.testing.assert_array_equal(after, before)
    assert planned_jobs(finished_run) == {}


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ({"migration": {"apperture_m": 300}}, ["migration.apperture_m: unknown key", "aperture_m"]),
        (
            {"migration": {"backend": "gpu"}},
            ["migration.backend", "'gpu'", "'numba'", "'numpy'", "'auto'"],
        ),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path: Path, override: dict, expect: list[str]) -> None:
    work = make_workdir(tmp_path, tiny_config(**override))
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    for fragment in expect:
        assert fragment in proc.stderr
    assert not (work / "results").exists() and not (work / "logs").exists()


def test_lint_is_clean(tmp_path: Path) -> None:
    work = make_workdir(tmp_path, tiny_config())
    proc = snakemake(work, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "Congratulations" in proc.stdout + proc.stderr
        or "no lints" in (proc.stdout + proc.stderr).lower()
    )
