"""What a run did, read back from its files: the tile outputs and the stage logs.

Every stage logs through :func:`pstm.stages.run_logged` to ``logs/<stage>/<job>.log``: a
first timestamped line when the job starts, ``done in <s> s`` when it succeeds, an
``ERROR`` line when it fails; a tile job also logs ``tile <id>: {json}`` with its work
(:meth:`pstm.migrate.TileStats.as_dict`). Reading only these files makes the summary (and
``pstm status``) work the same for a local run and a cluster run on a shared filesystem.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pstm.io.atomic import atomic_output

#: ``logging`` asctime format used by :func:`pstm.stages.run_logged`.
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (.*)$")
_DONE_RE = re.compile(r"^done in ([0-9.]+) s$")
_TILE_RE = re.compile(r"^tile (\S+): (\{.*\})$")
_PROCESS_RE = re.compile(r"^process ([0-9.]+) s since its start$")
#: The stage that writes the summary (still running while it reads the logs).
SUMMARY_STAGE = "summary"
#: Most warnings the summary quotes per stage (each message once; the stage's logs hold
#: them all).
SUMMARY_WARNINGS_PER_STAGE = 20
#: Stages in workflow order (log directories under ``logs/``), for the summary table.
STAGE_ORDER = (
    "synthesize",
    "import_segy",
    "precondition",
    "index",
    "coverage",
    "preflight",
    "velocity",
    "compile_kernels",
    "qc_velocity",
    "migrate",
    "tile_batch",
    "assemble",
    "qc",
    "export",
)


@dataclass
class JobLog:
    """One job's log file, parsed."""

    path: Path
    started: dt.datetime | None = None
    last: dt.datetime | None = None  # time of the last timestamped line
    seconds: float | None = None  # from ``done in``; None = not (yet) finished
    error: str | None = None  # the first ERROR line, or the last line of a traceback
    tile: dict[str, Any] | None = None  # the ``tile <id>: {json}`` record
    process_seconds: float | None = None  # the job's process from its start (Linux)
    warnings: list[str] = field(default_factory=list)  # its WARNING lines' messages

    @property
    def done(self) -> bool:
        return self.seconds is not None and self.error is None


def read_job_log(path: Path) -> JobLog:
    """Parse a stage log; tolerant of a log still being written (a running job)."""
    job = JobLog(path)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return job
    lines = text.splitlines()
    for line in lines:
        m = _TIME_RE.match(line)
        if not m:
            continue
        stamp = dt.datetime.strptime(m.group(1), LOG_TIME_FORMAT)
        if job.started is None:
            job.started = stamp
        job.last = stamp
        level, message = m.group(2), m.group(3)
        if level == "WARNING":
            job.warnings.append(message)
        if level in ("ERROR", "CRITICAL") and job.error is None:
            job.error = message
        elif (done := _DONE_RE.match(message)) is not None:
            job.seconds = float(done.group(1))
        elif (tile := _TILE_RE.match(message)) is not None:
            job.tile = json.loads(tile.group(2))
        elif (process := _PROCESS_RE.match(message)) is not None:
            job.process_seconds = float(process.group(1))
    if job.error is None and any(ln.startswith("Traceback") for ln in lines):
        job.error = next(ln for ln in reversed(lines) if ln.strip())
    # A job logs its lines as it finishes: its start is the end minus its duration, or,
    # before anything is logged, the log file's mtime (the log is opened when it starts).
    if job.seconds is not None and job.last is not None:  # its process's start, where logged
        job.started = job.last - dt.timedelta(seconds=max(job.seconds, job.process_seconds or 0.0))
    elif job.started is None:
        job.started = job.last = dt.datetime.fromtimestamp(path.stat().st_mtime)
    return job


def busy_seconds(spans: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds in which at least one of the (start, end) spans runs: their union, so that
    a pause between an interrupted run and its resume (minutes or days) does not count."""
    total, end = 0.0, None
    for start, last in sorted(spans):
        if end is None or start > end:
            total += (last - start).total_seconds()
            end = last
        elif last > end:
            total += (last - end).total_seconds()
            end = last
    return total


@dataclass
class StageTiming:
    jobs: int = 0
    finished: int = 0
    seconds_total: float = 0.0  # sum over finished jobs
    failed: list[str] = field(default_factory=list)
    #: the jobs' warnings, each message once
    warnings: list[str] = field(default_factory=list)
    #: (start, last activity) of each job with a log
    spans: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Seconds in which at least one job of the stage ran (:func:`busy_seconds`)."""
        return busy_seconds(self.spans)


@dataclass(frozen=True)
class RunJobs:
    """The jobs of the run being summarised, where they are known (the workflow knows them):
    the logs of other jobs (of a stage the workflow no longer runs, e.g. ``synthesize``
    after a switch to SEG-Y input, or of a tile of an earlier tile plan) are an earlier
    run's and are not counted."""

    #: the workflow's stages (rule names; a stage's logs are ``logs/<stage>/``)
    stages: frozenset[str]
    #: per stage whose job ids come from the tile plan (``migrate``, ``tile_batch``): the
    #: current plan's ids (a job's log is ``logs/<stage>/<id>.log``)
    ids: dict[str, frozenset[str]] = field(default_factory=dict)

    def counts(self, stage: str, job_id: str) -> bool:
        return stage in self.stages and (stage not in self.ids or job_id in self.ids[stage])


def job_logs(logs_dir: Path, stage: str, jobs: RunJobs | None) -> list[Path]:
    """A stage's job logs, sorted, of the run's jobs only where ``jobs`` is given."""
    paths = sorted((logs_dir / stage).glob("*.log"))
    return [p for p in paths if jobs is None or jobs.counts(stage, p.stem)]


def stage_timings(
    logs_dir: Path, exclude: tuple[str, ...] = (), jobs: RunJobs | None = None
) -> dict[str, StageTiming]:
    """Per stage (log directory, except ``exclude``; of the run's jobs where ``jobs`` is
    given): jobs, finished jobs, summed job seconds, the jobs' spans (wall seconds: their
    union)."""
    out: dict[str, StageTiming] = {}
    if not logs_dir.is_dir():
        return out
    names = sorted(p.name for p in logs_dir.iterdir() if p.is_dir() and p.name not in exclude)
    ordered = [s for s in STAGE_ORDER if s in names] + [s for s in names if s not in STAGE_ORDER]
    for stage in ordered:
        paths = job_logs(logs_dir, stage, jobs)
        if not paths:
            continue
        timing = StageTiming()
        for path in paths:
            job = read_job_log(path)
            timing.jobs += 1
            if job.error is not None:
                timing.failed.append(str(path))
            for warning in job.warnings:
                if warning not in timing.warnings:
                    timing.warnings.append(warning)
            if job.done:
                assert job.seconds is not None
                timing.finished += 1
                timing.seconds_total += job.seconds
            if job.started is not None and job.last is not None:
                timing.spans.append((job.started, job.last))
        out[stage] = timing
    return out


def run_summary(root: Path, jobs: RunJobs | None = None) -> dict[str, Any]:
    """The summary record of the run in ``root`` (the workflow directory), of its logs, or
    of the logs of ``jobs`` only where given."""
    from pstm.index import read_index

    logs_dir = root / "logs"
    timings = stage_timings(logs_dir, exclude=(SUMMARY_STAGE,), jobs=jobs)
    tile_jobs = [
        job
        for job in map(read_job_log, job_logs(logs_dir, "migrate", jobs))
        if job.tile is not None
    ]
    tiles = [job.tile for job in tile_jobs if job.tile is not None]
    # a tile job's fixed overhead: its whole process (interpreter start, imports, kernel
    # load, index query, reads, write) less its kernel seconds
    overheads = sorted(
        job.process_seconds - float(job.tile["seconds_kernel"])
        for job in tile_jobs
        if job.tile is not None and job.process_seconds is not None
    )
    contributions = sum(int(t["contributions"]) for t in tiles)
    kernel_s = sum(float(t["seconds_kernel"]) for t in tiles)
    # the cores' time held by kernels: a tile job's kernel seconds times the threads the job
    # holds (the cores Snakemake gave it; a GPU backend's kernel holds them waiting)
    kernel_thread_s = sum(float(t["seconds_kernel"]) * int(t.get("threads", 1)) for t in tiles)
    # (tiles migrated by a pstm older than this record lack the load time: counted as 0)
    load_s = sum(float(t.get("seconds_kernel_load", 0.0)) for t in tiles)
    migrate = timings.get("migrate", StageTiming())
    index_dir = root / "results" / "index"
    totals: dict[str, Any] = {
        "input_traces": read_index(index_dir).ntr if (index_dir / "meta.json").exists() else None,
        "tiles": len(tiles),
        "trace_reads": sum(int(t["traces"]) for t in tiles),
        "contributions": contributions,
        "kernel_seconds": round(kernel_s, 3),
        "kernel_thread_seconds": round(kernel_thread_s, 3),
        "contributions_per_kernel_second": round(contributions / kernel_s) if kernel_s else None,
        "kernel_load_seconds": round(load_s, 3),
        "tile_job_overhead_seconds": (
            {
                "min": round(overheads[0], 2),
                "median": round(statistics.median(overheads), 2),
                "max": round(overheads[-1], 2),
            }
            if overheads
            else None
        ),
        "migrate_wall_seconds": round(migrate.wall_s, 3),
        "contributions_per_wall_second": (
            round(contributions / migrate.wall_s) if migrate.wall_s > 0 else None
        ),
        "backends": sorted({str(t["backend"]) for t in tiles}),
    }
    stages = {
        name: {
            "jobs": t.jobs,
            "finished": t.finished,
            "seconds_total": round(t.seconds_total, 3),
            "wall_seconds": round(t.wall_s, 3),
            "failed_logs": t.failed,
        }
        for name, t in timings.items()
    }
    warnings = [
        {"stage": name, "message": w}
        for name, t in timings.items()
        for w in t.warnings[:SUMMARY_WARNINGS_PER_STAGE]
    ]
    return {"totals": totals, "stages": stages, "warnings": warnings}


def summary_html(record: dict[str, Any]) -> str:
    """A small self-contained HTML page of the summary (shown in Snakemake's report)."""

    def row(cells: list[Any], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    totals = "".join(row([k.replace("_", " "), v]) for k, v in record["totals"].items())
    head = row(["stage", "jobs", "finished", "job seconds (sum)", "wall seconds", "failed"], "th")
    stages = "".join(
        row(
            [
                n,
                s["jobs"],
                s["finished"],
                s["seconds_total"],
                s["wall_seconds"],
                len(s["failed_logs"]),
            ]
        )
        for n, s in record["stages"].items()
    )
    warned = record.get("warnings", [])
    warnings = (
        "<h3>Warnings (read them before trusting the image)</h3><table>"
        + row(["stage", "warning"], "th")
        + "".join(row([w["stage"], w["message"]]) for w in warned)
        + "</table>"
        if warned
        else "<p>No warnings.</p>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>pstm run summary</title>"
        "<style>table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;"
        "padding:2px 8px;text-align:left}</style></head><body>"
        f"<h2>pstm run summary</h2><table>{totals}</table>{warnings}"
        f"<h3>Timings per stage</h3><table>{head}{stages}</table></body></html>\n"
    )


def write_summary(
    root: Path, out_json: str | Path, out_html: str | Path, jobs: RunJobs | None = None
) -> dict[str, Any]:
    record = run_summary(root, jobs)
    with atomic_output(out_json) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    with atomic_output(out_html) as tmp:
        tmp.write_text(summary_html(record))
    return record
