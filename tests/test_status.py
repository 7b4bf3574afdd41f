"""``pstm status`` and the log reader behind it, on workflow directories made by the test
(tile outputs and logs written as the stages write them)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from pstm.cli import main
from pstm.commands.status import format_status, tile_status
from pstm.migrate import params_digest, write_tile
from pstm.pipeline import CONFIG_OVERRIDES_FILE, Run, prepare_run, record_config_overrides
from pstm.summary import StageTiming, read_job_log, run_summary
from tests.helpers import tiny_config

T0 = dt.datetime(2026, 11, 25, 12, 0, 0)


def stamp(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def write_done_tile(
    root: Path,
    tid: str,
    end_s: float,
    seconds: float,
    contributions: int,
    threads: int = 1,
    process_s: float | None = None,
) -> None:
    record = {
        "tile": tid,
        "backend": "numba",
        "traces": 10,
        "contributions": contributions,
        "seconds_kernel": seconds / 2,
        "seconds_kernel_load": 0.25,
        "threads": threads,
    }
    log = root / "logs" / "migrate" / f"{tid}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = (
        ""
        if process_s is None
        else f"{stamp(end_s)} INFO process {process_s:.2f} s since its start\n"
    )
    log.write_text(
        f"{stamp(end_s)} INFO tile {tid}: {json.dumps(record)}\n"
        f"{process}{stamp(end_s)} INFO done in {seconds:.2f} s\n"
    )
    out = root / "results" / "tiles" / f"{tid}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"tile")
    when = (T0 + dt.timedelta(seconds=end_s)).timestamp()
    os.utime(out, (when, when))  # written when the job ended


def write_failed_tile(root: Path, tid: str, end_s: float) -> None:
    log = root / "logs" / "migrate" / f"{tid}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"{stamp(end_s)} ERROR traces.zarr: trace 17 has NaN samples\n")


def test_read_job_log_start_is_end_minus_duration(tmp_path: Path) -> None:
    write_done_tile(tmp_path, "0000_0000", end_s=10.0, seconds=4.0, contributions=100)
    job = read_job_log(tmp_path / "logs" / "migrate" / "0000_0000.log")
    assert job.done and job.seconds == 4.0 and job.error is None
    assert job.started == T0 + dt.timedelta(seconds=6) and job.last == T0 + dt.timedelta(seconds=10)
    assert job.tile is not None and job.tile["contributions"] == 100


def test_nothing_started(tmp_path: Path) -> None:
    status = tile_status(tmp_path, ["0000_0000", "0000_0001"])
    assert (status.total, status.done, status.waiting) == (2, 0, 2)
    assert status.eta_seconds is None and status.contributions_per_s is None
    assert "0 / 2 done" in format_status(status) and "unknown" in format_status(status)


def test_partial_run_rates_eta_and_problems(tmp_path: Path) -> None:
    ids = [f"0000_000{k}" for k in range(6)]
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=1000)
    write_done_tile(tmp_path, ids[1], end_s=20.0, seconds=10.0, contributions=3000)
    write_failed_tile(tmp_path, ids[2], end_s=21.0)
    started = tmp_path / "logs" / "migrate" / f"{ids[3]}.log"
    started.write_text("")  # a job opens its log when it starts
    slurm = tmp_path / ".snakemake" / "slurm_logs" / "rule_migrate_tile" / ids[2] / "123.log"
    slurm.parent.mkdir(parents=True)
    slurm.write_text("slurmstepd: error: Detected 1 oom_kill event\n")

    status = tile_status(tmp_path, ids)
    assert (status.done, status.failed, status.stopped, status.running, status.waiting) == (
        2,
        1,
        1,
        0,
        2,
    )
    assert not status.snakemake_active
    assert status.contributions == 4000 and status.kernel_seconds == pytest.approx(10.0)
    assert status.contributions_per_kernel_s == pytest.approx(400.0)
    # span: the seconds in which tile jobs ran (0-10 s and 10-20 s; the failed job logged
    # once, at 21 s; the started log was written just now, so drop it for an exact number)
    started.unlink()
    status = tile_status(tmp_path, ids)
    assert status.span_seconds == pytest.approx(20.0, abs=1e-3)
    assert status.eta_seconds == pytest.approx(4 * 20.0 / 2, rel=1e-4)
    text = format_status(status)
    assert "2 / 6 done" in text and "1 failed" in text
    failed = next(t for t in status.problems if t.state == "failed")
    assert failed.id == ids[2] and failed.log == f"logs/migrate/{ids[2]}.log"
    assert "trace 17 has NaN samples" in (failed.message or "")
    assert failed.other_logs == (str(slurm.relative_to(tmp_path)),)
    assert f"failed tile {ids[2]}" in text and "slurm_logs" in text


def test_eta_and_rate_from_the_span(tmp_path: Path) -> None:
    ids = ["0000_0000", "0000_0001", "0000_0002", "0000_0003"]
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=500)
    write_done_tile(tmp_path, ids[1], end_s=20.0, seconds=10.0, contributions=1500)
    status = tile_status(tmp_path, ids)
    assert status.span_seconds == pytest.approx(20.0, abs=1e-3)
    assert status.contributions_per_s == pytest.approx(100.0, rel=1e-4)
    assert status.eta_seconds == pytest.approx(20.0, rel=1e-4)  # 2 left at 10 s per tile


def test_running_while_snakemake_holds_its_lock(tmp_path: Path) -> None:
    """A cluster run holding its locks runs (its processes may be on other machines); a
    local run's locks without a Snakemake process are a killed run's: its tiles stopped."""
    from pstm.resume import REMOTE_EXECUTOR_MARKER

    ids = ["0000_0000", "0000_0001"]
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=500)
    (tmp_path / "logs" / "migrate" / f"{ids[1]}.log").write_text("")
    lock = tmp_path / ".snakemake" / "locks" / "0.input.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    now = T0 + dt.timedelta(seconds=30)
    stale = tile_status(tmp_path, ids, now=now)
    assert not stale.snakemake_active and stale.stopped == 1 and stale.running == 0
    (tmp_path / REMOTE_EXECUTOR_MARKER).write_text("slurm\n")
    status = tile_status(tmp_path, ids, now=now)
    assert status.snakemake_active and status.running == 1 and status.stopped == 0
    assert status.span_seconds == pytest.approx(30.0, abs=1e-3)  # up to now
    assert status.eta_seconds == pytest.approx(30.0, rel=1e-4)


def test_a_tile_marked_incomplete_is_not_done(tmp_path: Path) -> None:
    """A tile job that finished after Snakemake was killed leaves its file, but Snakemake
    marks it incomplete and the next run redoes it: status does not count it as done."""

    ids = ["0000_0000", "0000_0001"]
    for i, tid in enumerate(ids):
        write_done_tile(tmp_path, tid, end_s=10.0 + i, seconds=5.0, contributions=500)
    from types import SimpleNamespace

    from snakemake.persistence.file import FilePersistence

    # the marker where Snakemake 9 puts it (its own path rule, for the output as the rule
    # names it), not where status looks
    incomplete = tmp_path / ".snakemake" / "incomplete"
    incomplete.mkdir(parents=True)
    store = SimpleNamespace(_fetch_max_len=lambda subject: 255)
    marker = Path(
        FilePersistence._record_path(store, str(incomplete), f"results/tiles/{ids[1]}.npz")
    )
    marker.write_text("{}")
    status = tile_status(tmp_path, ids)
    assert (status.done, status.stopped) == (1, 1)
    assert "marked incomplete: the next run redoes it" in (status.problems[0].message or "")


def _workdir(tmp_path: Path) -> tuple[Path, list[str]]:
    cfg = tiny_config()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    ids = [t.id for t in prepare_run(cfg).plan.tiles]
    return tmp_path, ids


def write_tile_file(root: Path, run: Run, tid: str, params_of: Run | None = None) -> None:
    """A real tile file for ``run``'s tile ``tid``, with the params digest of ``params_of``'s
    (default ``run``'s) job."""
    tile = run.plan.by_id()[tid]
    gathers = np.zeros((1, tile.nil, tile.nxl, 2), np.float32)
    digest = params_digest((params_of or run).tile_params()[tid])
    path = root / "results" / "tiles" / f"{tid}.npz"
    write_tile(path, tile, gathers, gathers.astype(np.int32), digest)


def test_cli_reads_the_plan_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ids = _workdir(tmp_path)
    assert len(ids) == 4
    write_done_tile(root, ids[0], end_s=10.0, seconds=10.0, contributions=1234)
    write_tile_file(root, prepare_run(tiny_config()), ids[0])
    assert main(["status", "--directory", str(root)]) == 0
    out = capsys.readouterr().out
    assert "1 / 4 done (25%)" in out and "3 waiting" in out
    assert main(["status", "--directory", str(root), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["done"] == 1 and record["total"] == 4 and record["contributions"] == 1234


def test_a_tile_of_other_parameters_is_outdated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tile file keeps the digest of its job's params; one migrated with another config,
    one without a digest (an earlier pstm) and an unreadable one are outdated (the next run
    redoes them), not done."""
    root, ids = _workdir(tmp_path)
    run = prepare_run(tiny_config())
    other = tiny_config()
    other["migration"] = {**other.get("migration", {}), "aperture_m": 321.0}
    stale = prepare_run(other)
    assert params_digest(run.tile_params()[ids[1]]) != params_digest(stale.tile_params()[ids[1]])
    for tid in ids:
        write_done_tile(root, tid, end_s=10.0, seconds=10.0, contributions=100)  # b"tile"
    write_tile_file(root, run, ids[0])
    write_tile_file(root, run, ids[1], params_of=stale)
    np.savez(root / "results" / "tiles" / f"{ids[2]}.npz", gathers=np.zeros(1))
    assert main(["status", "--directory", str(root), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["done"], record["outdated"], record["waiting"]) == (1, 3, 0)
    assert main(["status", "--directory", str(root)]) == 0
    assert "1 / 4 done (25%)" in capsys.readouterr().out
    digests = {t: params_digest(p) for t, p in run.tile_params().items()}
    why = {t.id: t.message or "" for t in tile_status(root, ids, digests=digests).outdated_first}
    assert "other parameters" in why[ids[1]] and "earlier pstm" in why[ids[2]]
    assert "unreadable" in why[ids[3]] and ids[0] not in why


def test_the_last_runs_config_overrides_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run with --config overrides (e.g. a profile's) records them; status compares the
    tiles against config.yaml with them, as Snakemake ran the jobs."""
    root, ids = _workdir(tmp_path)
    overridden = tiny_config()
    overridden["migration"] = {**overridden.get("migration", {}), "aperture_m": 321.0}
    write_done_tile(root, ids[0], end_s=10.0, seconds=10.0, contributions=100)
    write_tile_file(root, prepare_run(tiny_config()), ids[0], params_of=prepare_run(overridden))
    assert main(["status", "--directory", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outdated"] == 1  # against config.yaml alone
    record_config_overrides({"migration": {"aperture_m": 321.0}}, root)
    assert main(["status", "--directory", str(root), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["done"], record["outdated"]) == (1, 0)
    assert record["config_overrides"] == {"migration": {"aperture_m": 321.0}}
    assert main(["status", "--directory", str(root)]) == 0
    assert "with the last run's --config overrides" in capsys.readouterr().out
    record_config_overrides({}, root)  # a run without overrides removes the record
    assert not (root / CONFIG_OVERRIDES_FILE).exists()


def test_cli_without_config_says_how_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--directory", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "config file not found" in err and "--directory" in err


def test_summary_from_logs(tmp_path: Path) -> None:
    write_done_tile(
        tmp_path, "0000_0000", end_s=10.0, seconds=4.0, contributions=1000, process_s=3.5
    )
    write_done_tile(
        tmp_path,
        "0000_0001",
        end_s=12.0,
        seconds=4.0,
        contributions=3000,
        threads=3,
        process_s=2.75,
    )
    write_failed_tile(tmp_path, "0000_0002", end_s=13.0)
    qc = tmp_path / "logs" / "qc" / "qc.log"
    qc.parent.mkdir(parents=True)
    qc.write_text(f"{stamp(20.0)} INFO qc figures: ...\n{stamp(20.5)} INFO done in 0.70 s\n")
    record = run_summary(tmp_path)
    totals, stages = record["totals"], record["stages"]
    assert totals["tiles"] == 2 and totals["contributions"] == 4000
    assert totals["kernel_seconds"] == pytest.approx(4.0)
    assert totals["kernel_thread_seconds"] == pytest.approx(2.0 + 2.0 * 3)  # kernel x threads
    assert totals["contributions_per_kernel_second"] == 1000
    assert totals["kernel_load_seconds"] == pytest.approx(0.5)  # reported apart from the kernel
    # the union of the jobs' spans, 6-10 s and 8-12 s (the failed job logged once, at 13 s)
    assert totals["migrate_wall_seconds"] == pytest.approx(6.0)
    # process less kernel seconds: 3.5 - 2.0 and 2.75 - 2.0
    assert totals["tile_job_overhead_seconds"] == {"min": 0.75, "median": 1.12, "max": 1.5}
    assert totals["backends"] == ["numba"] and totals["input_traces"] is None
    assert stages["migrate"]["jobs"] == 3 and stages["migrate"]["finished"] == 2
    assert stages["migrate"]["failed_logs"] == [str(tmp_path / "logs/migrate/0000_0002.log")]
    assert stages["qc"]["seconds_total"] == pytest.approx(0.7)
    assert list(stages) == ["migrate", "qc"]  # workflow order


def test_run_summary_quotes_every_stage_warning_once(tmp_path: Path) -> None:
    """Warnings buried in hundreds of lines of a run's output (a velocity table that does
    not reach the output's end, a grid beyond the midpoints) are quoted in the summary,
    each once, with their stage; the page says when there were none."""
    from pstm.summary import summary_html

    velocity = tmp_path / "logs" / "velocity" / "velocity.log"
    velocity.parent.mkdir(parents=True)
    short = "v.csv: its times span 0..0.8 s and the output's 0..1.5 s: 47% of the output"
    velocity.write_text(
        f"{stamp(1.0)} INFO reading v.csv\n{stamp(1.1)} WARNING {short}\n"
        f"{stamp(1.2)} WARNING {short}\n{stamp(1.5)} INFO done in 0.50 s\n"
    )
    preflight = tmp_path / "logs" / "preflight" / "preflight.log"
    preflight.parent.mkdir(parents=True)
    beyond = "3 of 40 sampled bins have no trace midpoint within 100 m (4 bins)"
    preflight.write_text(f"{stamp(2.0)} WARNING {beyond}\n{stamp(2.1)} INFO done in 0.10 s\n")
    record = run_summary(tmp_path)
    assert record["warnings"] == [
        {"stage": "preflight", "message": beyond},
        {"stage": "velocity", "message": short},
    ]
    page = summary_html(record)
    assert "Warnings" in page and "47% of the output" in page
    assert "No warnings." in summary_html({**record, "warnings": []})


def test_run_summary_counts_only_the_runs_jobs(tmp_path: Path) -> None:
    """After a re-plan (other tile ids) and a switch of input kind, the summary of the run
    counts its own jobs' logs, not the earlier run's left in logs/."""
    from pstm.summary import RunJobs

    write_done_tile(tmp_path, "0000_0000", end_s=10.0, seconds=4.0, contributions=1000)
    write_done_tile(tmp_path, "0000_0005", end_s=12.0, seconds=4.0, contributions=3000)
    for stage, message in (("synthesize", "old input"), ("import_segy", "new input")):
        path = tmp_path / "logs" / stage / f"{stage}.log"
        path.parent.mkdir(parents=True)
        path.write_text(f"{stamp(1.0)} WARNING {message}\n{stamp(1.5)} INFO done in 0.50 s\n")
    everything = run_summary(tmp_path)
    assert everything["totals"]["contributions"] == 4000 and len(everything["warnings"]) == 2
    jobs = RunJobs(frozenset({"import_segy", "migrate"}), {"migrate": frozenset({"0000_0000"})})
    record = run_summary(tmp_path, jobs)
    assert record["totals"]["tiles"] == 1 and record["totals"]["contributions"] == 1000
    assert record["stages"]["migrate"]["jobs"] == 1
    assert "synthesize" not in record["stages"]
    assert record["warnings"] == [{"stage": "import_segy", "message": "new input"}]


def test_log_of_an_earlier_run_without_output_waits(tmp_path: Path) -> None:
    ids = ["0000_0000", "0000_0001"]
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=500)
    write_done_tile(tmp_path, ids[1], end_s=500.0, seconds=10.0, contributions=700)
    (tmp_path / "results" / "tiles" / f"{ids[1]}.npz").unlink()  # to be redone
    lock = tmp_path / ".snakemake" / "locks" / "0.input.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    status = tile_status(tmp_path, ids, now=T0 + dt.timedelta(seconds=40), active=True)
    assert (status.done, status.running, status.waiting) == (1, 0, 1)
    assert status.contributions == 500
    assert status.span_seconds == pytest.approx(40.0, abs=1e-3)  # the old log is not counted
    # all done while Snakemake still runs later rules: the span is the tiles' (0-10, 20-30 s)
    write_done_tile(tmp_path, ids[1], end_s=30.0, seconds=10.0, contributions=700)
    status = tile_status(tmp_path, ids, now=T0 + dt.timedelta(seconds=100), active=True)
    assert status.eta_seconds == 0.0 and status.span_seconds == pytest.approx(20.0, abs=1e-3)


def test_wall_seconds_leave_out_a_pause_between_runs() -> None:
    """An interrupted run resumed later: the stage's wall time is the time its jobs ran."""
    at = [T0 + dt.timedelta(seconds=x) for x in (0, 4, 2, 5, 3600, 3610)]
    timing = StageTiming(spans=[(at[0], at[1]), (at[2], at[3]), (at[4], at[5])])
    assert timing.wall_s == pytest.approx(5.0 + 10.0)
    assert StageTiming().wall_s == 0.0


def test_status_span_leaves_out_a_pause_between_runs(tmp_path: Path) -> None:
    """Tiles of a run, and of its resume an hour later: the rate counts the 20 s they ran."""
    ids = [f"0000_000{k}" for k in range(4)]
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=1000)
    write_done_tile(tmp_path, ids[1], end_s=3610.0, seconds=10.0, contributions=1000)
    status = tile_status(tmp_path, ids)
    assert status.span_seconds == pytest.approx(20.0, abs=1e-3)
    assert status.contributions_per_s == pytest.approx(100.0, rel=1e-4)
    assert status.eta_seconds == pytest.approx(20.0, rel=1e-4)


def test_status_says_whether_the_image_holds_every_tile(tmp_path: Path) -> None:
    """After a failed or interrupted run, results/image.zarr is an earlier run's: status
    says so until the image is assembled again after the last tile."""
    ids = ["0000_0000", "0000_0001"]
    assert tile_status(tmp_path, ids).image == "not assembled yet"
    write_done_tile(tmp_path, ids[0], end_s=10.0, seconds=10.0, contributions=1)
    image = tmp_path / "results" / "image.zarr"
    image.mkdir()
    at = (T0 + dt.timedelta(seconds=20)).timestamp()
    os.utime(image, (at, at))
    assert "1 tile(s) to redo, 0 newer than it" in tile_status(tmp_path, ids).image
    write_done_tile(tmp_path, ids[1], end_s=30.0, seconds=10.0, contributions=1)
    assert "0 tile(s) to redo, 1 newer than it" in tile_status(tmp_path, ids).image
    at = (T0 + dt.timedelta(seconds=40)).timestamp()
    os.utime(image, (at, at))
    status = tile_status(tmp_path, ids)
    assert status.image.startswith("holds every tile") and "image        : holds" in format_status(
        status
    )
