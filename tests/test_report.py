"""QC figures, the run summary and Snakemake's HTML report, end to end on the tiny survey
(with velocity picks from a file and offset classes, so every QC panel has content)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pstm.cli import main
from pstm.qc import QC_FIGURES
from tests.helpers import make_workdir, planned_jobs, snakemake, tiny_config

pytestmark = pytest.mark.workflow

PICKS = """# velocity analyses of the tiny survey (inline/crossline of the output grid)
inline crossline time_s velocity_mps
2 2 0.0 1800
2 2 0.6 2300
7 5 0.0 1850
7 5 0.6 2350
"""


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = tiny_config(
        velocity={
            "kind": "picks",
            "file": "picks.txt",
            "picks_location": "inline_crossline",
            "smoothing": "boxcar",
            "smoothing_length_m": 50.0,
            "smoothing_length_s": 0.02,
        },
        migration={"offset_classes_m": [0.0, 150.0, 300.0, 700.0]},
    )
    work = make_workdir(tmp_path_factory.mktemp("report"), cfg)
    (work / "picks.txt").write_text(PICKS)
    snakemake(work)
    snakemake(work, "--report", "results/report.html")
    return work


def test_qc_figures_and_velocity_info(reported_run: Path) -> None:
    for name in QC_FIGURES:
        png = reported_run / "results" / "qc" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    info = json.loads((reported_run / "results" / "velocity" / "velocity.json").read_text())
    assert info["kind"] == "picks" and info["smoothing"] == "boxcar"
    assert info["locations_il_xl"] == [[2.0, 2.0], [7.0, 5.0]]
    assert 1800.0 <= info["vrms_min_mps"] < info["vrms_max_mps"] <= 2350.0


def test_summary(reported_run: Path) -> None:
    record = json.loads((reported_run / "results" / "summary.json").read_text())
    totals = record["totals"]
    assert totals["tiles"] == 4 and totals["input_traces"] == 288
    assert totals["contributions"] > 0 and totals["contributions_per_kernel_second"] > 0
    assert totals["backends"] == ["numba"]
    for stage in ("synthesize", "index", "velocity", "migrate", "assemble", "qc"):
        assert record["stages"][stage]["finished"] == record["stages"][stage]["jobs"] >= 1
    assert record["stages"]["migrate"]["jobs"] == 4
    page = (reported_run / "results" / "summary.html").read_text()
    assert "Timings per stage" in page and str(totals["contributions"]) in page


def test_report_embeds_figures_and_summary(reported_run: Path) -> None:
    report = (reported_run / "results" / "report.html").read_text()
    assert "<html" in report.lower() and "QC figures" in report and "Run summary" in report
    # self-contained: each figure is embedded (base64 of its exact bytes), nothing fetched
    for name in QC_FIGURES:
        png = (reported_run / "results" / "qc" / f"{name}.png").read_bytes()
        assert base64.b64encode(png).decode() in report, name
    summary = (reported_run / "results" / "summary.html").read_bytes()
    assert base64.b64encode(summary).decode() in report
    assert "offset-class gathers" in (reported_run / "workflow/report/qc.rst").read_text()


def test_status_of_the_finished_run(reported_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--directory", str(reported_run), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["done"] == status["total"] == 4 and status["eta_seconds"] == 0.0
    assert status["failed"] == 0 and not status["snakemake_active"]
    assert status["contributions"] > 0 and status["contributions_per_s"] > 0


def test_editing_the_picks_file_reruns_velocity(reported_run: Path) -> None:
    assert planned_jobs(reported_run) == {}
    picks = reported_run / "picks.txt"
    picks.write_text(PICKS.replace("2350", "2400"))
    jobs = planned_jobs(reported_run)
    assert jobs.get("velocity") == 1 and jobs.get("migrate_tile") == 4
    picks.write_text(PICKS)  # content back: checksummed inputs need no rerun
    assert planned_jobs(reported_run) == {}
