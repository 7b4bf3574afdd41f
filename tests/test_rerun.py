"""Rerun only what changed: on a finished tiny run, each config edit makes ``snakemake -n``
plan exactly the jobs that depend on the edited setting, by rule.

Bookkeeping rules run after every edit, by design: ``preflight`` writes the resolved
config (its params are the whole config) and ``summary`` quotes the preflight report;
both take well under a second. ``all`` is Snakemake's target job."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pstm.cli import main
from pstm.pipeline import CONFIG_OVERRIDES_FILE
from pstm.resume import REMOTE_EXECUTOR_MARKER
from tests.helpers import make_workdir, planned_jobs, snakemake, tiny_config
from tests.snapshot import freeze_pstm

pytestmark = pytest.mark.workflow

N_TILES = 4  # tiny_config: 8 x 6 bins in tiles of 4 x 3
BOOKKEEPING = {"preflight": 1, "summary": 1, "all": 1}
#: Everything downstream of the assembled image.
IMAGE = {"assemble": 1, "qc": 1, "export_segy": 1}
TILES = {"migrate_tile": N_TILES, **IMAGE}

CASES: list[tuple[str, dict[str, Any], dict[str, int]]] = [
    ("migration aperture", {"migration": {"aperture_m": 350.0}}, {"coverage": 1, **TILES}),
    (
        "migration weights (another kernel variant)",
        {"migration": {"weights": "true_amplitude"}},
        {"compile_kernels": 1, **TILES},
    ),
    (
        "migration offset classes",
        {"migration": {"offset_classes_m": [0.0, 300.0, 2000.0]}},
        TILES,
    ),
    (
        "velocity",
        {"velocity": {"kind": "table", "table": {"time_s": [0.0, 1.0], "vrms_mps": [1900, 2300]}}},
        {"velocity": 1, "qc_velocity": 1, **TILES},
    ),
    (
        "QC figure settings",
        {"qc": {"dpi": 72, "clip_percentile": 98.0}},
        {"qc": 1, "qc_velocity": 1},
    ),
    ("SEG-Y export settings", {"export": {"endian": "little"}}, {"export_segy": 1}),
    ("memory budget (same tiles)", {"execution": {"memory_budget_mb": 3000}}, {}),
    (
        "output grid origin",
        {"grid": {"origin_x_m": 200.0}},
        {"index": 1, "coverage": 1, "velocity": 1, "qc_velocity": 1, **TILES},
    ),
    (
        "output grid size",
        {"grid": {"n_inline": 12}},  # 3 x 2 tiles of 4 x 3
        {"index": 1, "coverage": 1, "velocity": 1, "qc_velocity": 1, **TILES, "migrate_tile": 6},
    ),
    (
        "output time axis",
        {"grid": {"nt": 80}},
        {"index": 1, "coverage": 1, "velocity": 1, "qc_velocity": 1, **TILES},
    ),
    (
        "tile size",
        {"execution": {"tile_n_inline": 8, "tile_n_crossline": 6}},
        {"migrate_tile": 1, **IMAGE},
    ),
    ("NaN/Inf policy", {"input": {"non_finite": "zero"}}, {"precondition": 1, **TILES}),
    (
        "synthetic survey",
        {"synthetic": {"noise_rms": 0.01}},
        {"synthesize": 1, "precondition": 1, "index": 1, "coverage": 1, **TILES},
    ),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished tiny run, on a frozen copy of the pstm source (tests/snapshot.py)."""
    work = make_workdir(tmp_path_factory.mktemp("rerun"), tiny_config())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", freeze_pstm(tmp_path_factory.mktemp("src"))["PYTHONPATH"])
        snakemake(work)
        assert planned_jobs(work) == {}
        yield work


@pytest.mark.parametrize(("edit", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_edit_reruns_exactly(finished: Path, edit: dict[str, Any], expect: dict[str, int]) -> None:
    config = finished / "config.yaml"
    original = config.read_text()
    cfg = yaml.safe_load(original)
    for section, values in edit.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    try:
        config.write_text(yaml.safe_dump(cfg))
        assert planned_jobs(finished) == {**BOOKKEEPING, **expect}
    finally:
        config.write_text(original)


def test_a_missing_velocity_file_stops_a_rerun(finished: Path) -> None:
    """After a finished run, a velocity file that does not exist stops the workflow before
    any job, with one message, instead of leaving the old velocity and image in place:
    Snakemake skips a job whose input is missing while its outputs exist (it reran only
    the bookkeeping rules and exited 0 before pstm checked the file itself)."""
    config = finished / "config.yaml"
    original = config.read_text()
    cfg = yaml.safe_load(original)
    cfg["velocity"] = {"kind": "table_csv", "file": "vel/nope.csv"}
    try:
        config.write_text(yaml.safe_dump(cfg))
        proc = snakemake(finished, "-n", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert "velocity file not found: vel/nope.csv (looked for " in out, out
        assert "velocity.file, kind table_csv" in out, out
        assert "Traceback" not in out, out
    finally:
        config.write_text(original)


def test_undoing_the_edits_leaves_nothing_to_do(finished: Path) -> None:
    assert planned_jobs(finished) == {}


def test_status_counts_the_tiles_an_edit_or_a_newer_input_redoes(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tile files keep the digest of their jobs' params (as Snakemake ran them): pstm
    status counts them done, outdated after an aperture edit, and outdated when an input
    of theirs is newer (a velocity redone), as Snakemake would redo them."""

    def status() -> dict[str, Any]:
        assert main(["status", "--directory", str(finished), "--json"]) == 0
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        return result

    assert (status()["done"], status()["outdated"]) == (N_TILES, 0)
    assert status()["image"].startswith("holds every tile")
    # a local run without overrides leaves neither record (pstm.resume, pstm.pipeline)
    assert not (finished / REMOTE_EXECUTOR_MARKER).exists()
    assert not (finished / CONFIG_OVERRIDES_FILE).exists()
    config = finished / "config.yaml"
    original = config.read_text()
    cfg = yaml.safe_load(original)
    cfg["migration"] = {**cfg.get("migration", {}), "aperture_m": 350.0}
    try:
        config.write_text(yaml.safe_dump(cfg))
        assert (status()["done"], status()["outdated"]) == (0, N_TILES)
        assert status()["image"].startswith(f"from an earlier run: {N_TILES} tile(s) to redo")
        # the preflight's params are the config's sections: its reason names the migration
        # section, not the whole config twice
        dry = snakemake(finished, "-n")
        lines = (dry.stdout + dry.stderr).splitlines()
        at = next(i for i, ln in enumerate(lines) if ln.strip().endswith("rule preflight:"))
        reason = next(ln for ln in lines[at:] if ln.strip().startswith("reason:"))
        assert "350.0" in reason and "clip_percentile" not in reason, reason
    finally:
        config.write_text(original)
    vrms = finished / "results" / "velocity" / "vrms.npy"
    before = vrms.stat()
    try:
        os.utime(vrms, (time.time() + 5, time.time() + 5))
        assert (status()["done"], status()["outdated"]) == (0, N_TILES)
    finally:
        os.utime(vrms, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert status()["done"] == N_TILES


def test_a_run_records_its_config_overrides(finished: Path) -> None:
    """The Snakefile's onstart keeps a run's --config overrides for pstm status, and a run
    without any removes them (here a QC-only rerun and back)."""
    target = "results/qc/velocity.png"
    try:
        snakemake(finished, target, "--config", "qc={dpi: 70}")  # (--config takes the rest)
        assert yaml.safe_load((finished / CONFIG_OVERRIDES_FILE).read_text()) == {
            "qc": {"dpi": "70"}
        }
    finally:
        snakemake(finished, target)
    assert not (finished / CONFIG_OVERRIDES_FILE).exists()
    assert planned_jobs(finished) == {}


def test_an_edit_inside_a_zarr_store_reruns_what_reads_it(tmp_path: Path) -> None:
    """Rewriting a chunk of a Zarr velocity cube changes no mtime Snakemake looks at (the
    store's directory keeps its own): the velocity rule's store stamp
    (pstm.pipeline.store_stamp) makes the edit rerun it; an untouched store does not."""
    import numpy as np
    import zarr

    cfg = tiny_config(velocity={"kind": "cube_zarr", "file": "v.zarr"})
    work = make_workdir(tmp_path, cfg)
    cube = zarr.create_array(str(work / "v.zarr"), shape=(6, 4, 6), dtype="float32")
    cube[...] = np.float32(2000.0)
    cube.attrs.update(
        {"origin_x_m": 0.0, "origin_y_m": 0.0, "rotation_deg": 0.0, "inline_spacing_m": 100.0}
        | {"crossline_spacing_m": 100.0, "t0_s": 0.0, "dt_s": 0.1}
    )
    target = "results/velocity/vrms.npy"
    snakemake(work, target)
    assert planned_jobs(work, target) == {}
    stamp = (work / "v.zarr").stat().st_mtime_ns
    time.sleep(0.05)  # a later mtime for the rewritten chunk
    zarr.open_array(str(work / "v.zarr"), mode="r+")[0, 0, :] = np.float32(2100.0)
    assert (work / "v.zarr").stat().st_mtime_ns == stamp, "the store's directory is unchanged"
    assert planned_jobs(work, target) == {"velocity": 1}
