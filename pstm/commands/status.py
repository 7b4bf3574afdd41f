"""``pstm status``: progress of a running or finished workflow, from its files alone.

The plan (which tiles exist) comes from :func:`pstm.pipeline.prepare_run` on the config;
progress from the tile outputs (``results/tiles/<id>.npz``) and the tile logs
(``logs/migrate/<id>.log``, see :mod:`pstm.summary`). Nothing is asked of Snakemake or of
a scheduler, so a local run and a cluster run on a shared filesystem read the same. A tile
file migrated with other params than the config's (another aperture, another pstm: the
digest it keeps, :func:`pstm.migrate.params_digest`), or older than a file the tile job
reads (:data:`pstm.pipeline.TILE_INPUTS`, e.g. a velocity redone), is ``outdated``: the
next run redoes it, so it does not count as done. (A config edit upstream of the tiles,
e.g. of the velocity, shows once its stage has run.)

Rates and the ETA: the wall-clock span runs from the first tile start to the latest
activity (now, while Snakemake holds its lock and tiles remain; else the last log line or
tile write). A log that says "done" for a tile whose output is gone is from an earlier
run: that tile waits to be redone and its log is not counted. The
ETA is ``tiles left / (tiles done / span)``, i.e. it assumes the remaining tiles run at the
pace (and parallelism) seen so far.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pstm.config import read_yaml
from pstm.errors import ConfigError
from pstm.migrate import read_tile_params_digest
from pstm.pipeline import TILE_INPUTS
from pstm.summary import JobLog, busy_seconds, read_job_log

#: Directories of the workflow that status reads (relative to the workflow directory).
TILES_DIR = Path("results/tiles")
#: The assembled image (workflow/rules/assemble.smk): status says whether it holds every
#: tile as it is now.
IMAGE = Path("results/image.zarr")
TILE_LOGS_DIR = Path("logs/migrate")
LOCKS_DIR = Path(".snakemake/locks")
#: Snakemake's markers of outputs whose job started and did not finish under its eye (one
#: file per output, named by the output path's urlsafe base64; Snakemake 9's
#: persistence layout): such an output is redone by the next run even when it exists (its
#: job went on after Snakemake was killed). Read only: without the directory, or in
#: another layout, no tile counts as marked.
INCOMPLETE_DIR = Path(".snakemake/incomplete")
#: Where the SLURM executor plugin keeps its per-job logs (searched for a failed tile's id).
SLURM_LOGS_DIR = Path(".snakemake/slurm_logs")


class State(StrEnum):
    """What ``pstm status`` says of a tile."""

    DONE = "done"
    OUTDATED = "outdated"  # finished with other params, or older than an input: to redo
    FAILED = "failed"
    RUNNING = "running"
    STOPPED = "stopped"  # started, not finished, and Snakemake is not running
    WAITING = "waiting"


#: The states a tile's report lists with its message and logs.
PROBLEMS = (State.FAILED, State.STOPPED)
#: Outdated tiles the report names with the reason (the count covers all of them).
OUTDATED_LISTED = 5


@dataclass(frozen=True)
class TileState:
    id: str
    state: State
    log: str | None
    message: str | None = None
    other_logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Status:
    total: int
    done: int
    failed: int
    running: int
    stopped: int
    waiting: int
    outdated: int  # finished with other params than the config's, or before an input: to redo
    snakemake_active: bool
    contributions: int
    kernel_seconds: float
    span_seconds: float  # seconds in which tile jobs of this run ran (their spans' union)
    contributions_per_s: float | None  # wall clock, over the span
    contributions_per_kernel_s: float | None  # per job, kernel time only
    eta_seconds: float | None
    problems: tuple[TileState, ...]  # failed and stopped tiles
    outdated_first: tuple[TileState, ...] = ()  # the first OUTDATED_LISTED outdated tiles
    image: str = ""  # whether results/image.zarr holds every tile as it is now

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mtime(path: Path) -> dt.datetime | None:
    """When ``path`` last changed, by Snakemake's rule (a directory output's
    ``.snakemake_timestamp`` where it has one); None for a path that is gone (Snakemake
    removes a job's old outputs when it starts it)."""
    stamp = path / ".snakemake_timestamp"
    try:
        return dt.datetime.fromtimestamp((stamp if stamp.exists() else path).stat().st_mtime)
    except FileNotFoundError:
        return None


def _other_logs(root: Path, tile_id: str) -> tuple[str, ...]:
    base = root / SLURM_LOGS_DIR
    if not base.is_dir():
        return ()
    return tuple(sorted(str(p.relative_to(root)) for p in base.rglob("*.log") if tile_id in str(p)))


def _outdated(
    out: Path, written: dt.datetime, expected: str | None, newest: tuple[dt.datetime, str] | None
) -> str | None:
    """Why a finished tile's file is outdated (None: it is current): it records other
    params than ``expected``, none (an earlier pstm), or is older than the newest input."""
    if expected is not None:
        recorded = read_tile_params_digest(out)
        if recorded.error is not None:
            return f"unreadable ({recorded.error}); the next run redoes it"
        if recorded.digest is None:
            return "written by an earlier pstm (no params digest); the next run redoes it"
        if recorded.digest != expected:
            return "migrated with other parameters; the next run redoes it"
    if newest is not None and written < newest[0]:
        return f"older than {newest[1]}; the next run redoes it"
    return None


def snakemake_running(root: Path) -> bool:
    """Whether a Snakemake run holds the workflow directory: its locks are there and it is
    alive. A run on a cluster executor (pstm.resume.REMOTE_EXECUTOR_MARKER) counts while
    it holds the locks (its processes may be on other machines), and so does any run where
    processes cannot be listed (no ``/proc``, e.g. macOS); a local run's locks without a
    Snakemake process in ``root`` are a killed run's (the next ``make run`` removes
    them)."""
    from pstm.resume import REMOTE_EXECUTOR_MARKER, ProcessKind, local_processes

    if not ((root / LOCKS_DIR).is_dir() and any((root / LOCKS_DIR).glob("*.lock"))):
        return False
    if (root / REMOTE_EXECUTOR_MARKER).exists() or not Path("/proc/self").is_dir():
        return True
    return any(p.kind is ProcessKind.SNAKEMAKE for p in local_processes(root))


def marked_incomplete(root: Path, output: Path) -> bool:
    """Whether Snakemake marks ``output`` (relative to ``root``) incomplete (INCOMPLETE_DIR)."""
    name = base64.urlsafe_b64encode(str(output).encode()).decode()
    return (root / INCOMPLETE_DIR / name).exists()


def tile_status(
    root: Path,
    tile_ids: list[str],
    now: dt.datetime | None = None,
    digests: dict[str, str] | None = None,
    active: bool | None = None,
) -> Status:
    """Status of the planned tiles ``tile_ids`` of the workflow in ``root``; ``digests``:
    each tile's current params digest (a tile file that records another is outdated);
    ``active``: whether Snakemake runs there (:func:`snakemake_running` when None)."""
    active = snakemake_running(root) if active is None else active
    stamps = [(_mtime(root / p), p) for p in TILE_INPUTS.values()]
    newest = max(((t, p) for t, p in stamps if t is not None), default=None)
    states: list[TileState] = []
    contributions, kernel_s = 0, 0.0
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    written_at: list[dt.datetime] = []  # the done tiles' files
    ended: list[dt.datetime] = []  # ends of this run's finished and failed jobs
    begun: list[dt.datetime] = []  # starts of its running ones
    for tid in tile_ids:
        out, log_path = root / TILES_DIR / f"{tid}.npz", root / TILE_LOGS_DIR / f"{tid}.log"
        job = read_job_log(log_path) if log_path.exists() else JobLog(log_path)
        rel_log = str(log_path.relative_to(root)) if log_path.exists() else None
        written = _mtime(out)
        # a file its job was still writing, or wrote after Snakemake was killed: to redo
        unfinished = written is not None and marked_incomplete(root, TILES_DIR / f"{tid}.npz")
        if unfinished:
            written = None
        expected = digests[tid] if digests is not None else None
        outdated = _outdated(out, written, expected, newest) if written is not None else None
        # a log that says done while the output is gone, or of an outdated tile, is from an
        # earlier run: to redo, and not part of this run's span
        current = (
            job.started is not None and not (job.done and written is None) and outdated is None
        )
        if current and job.started is not None and job.last is not None:
            spans.append((job.started, job.last))
            if job.done or job.error is not None:
                ended.append(job.last)
            else:
                begun.append(job.started)
        if outdated is not None:
            state, message = State.OUTDATED, outdated
        elif written is not None:
            state, message = State.DONE, None
            written_at.append(written)
            if job.tile is not None:
                contributions += int(job.tile["contributions"])
                kernel_s += float(job.tile["seconds_kernel"])
        elif job.error is not None:
            state, message = State.FAILED, job.error
        elif current or unfinished:
            state = State.RUNNING if active else State.STOPPED
            message = (
                None
                if active
                else "started but not finished, and Snakemake is not running"
                + ("; its file is marked incomplete: the next run redoes it" if unfinished else "")
            )
        else:
            state, message = State.WAITING, None
        others = _other_logs(root, tid) if state in PROBLEMS else ()
        states.append(TileState(tid, state, rel_log, message, others))
    counts = collections.Counter(t.state for t in states)
    left = len(tile_ids) - counts[State.DONE]
    assembled = _mtime(root / IMAGE)
    newer = sum(1 for w in written_at if assembled is not None and w > assembled)
    if assembled is None:
        image = "not assembled yet"
    elif left or newer:
        image = (
            f"from an earlier run: {left} tile(s) to redo, {newer} newer than it; the next "
            "run assembles it again"
        )
    else:
        image = f"holds every tile (assembled {assembled:%Y-%m-%d %H:%M:%S})"
    now = now if now is not None else dt.datetime.now()
    # tiles still to come: busy from the last job that ended (or the first running one's
    # start) up to now
    since = max(ended) if ended else min(begun, default=None)
    if active and left > 0 and since is not None and now > since:
        spans.append((since, now))
    span = busy_seconds(spans)
    eta: float | None = None
    if left == 0:
        eta = 0.0
    elif counts[State.DONE] > 0 and span > 0:
        eta = left * span / counts[State.DONE]
    return Status(
        total=len(tile_ids),
        done=counts[State.DONE],
        failed=counts[State.FAILED],
        running=counts[State.RUNNING],
        stopped=counts[State.STOPPED],
        waiting=counts[State.WAITING],
        outdated=counts[State.OUTDATED],
        snakemake_active=active,
        contributions=contributions,
        kernel_seconds=kernel_s,
        span_seconds=span,
        contributions_per_s=contributions / span if span > 0 else None,
        contributions_per_kernel_s=contributions / kernel_s if kernel_s > 0 else None,
        eta_seconds=eta,
        problems=tuple(t for t in states if t.state in PROBLEMS),
        outdated_first=tuple(t for t in states if t.state is State.OUTDATED)[:OUTDATED_LISTED],
        image=image,
    )


def format_status(status: Status) -> str:
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.3g}/s"

    pct = 100.0 * status.done / status.total if status.total else 100.0
    lines = [
        f"tiles        : {status.done} / {status.total} done ({pct:.0f}%), {status.running} "
        f"running, {status.failed} failed, {status.stopped} stopped, {status.waiting} waiting"
        + (f", {status.outdated} outdated (to redo)" if status.outdated else ""),
        f"snakemake    : {'running (lock held)' if status.snakemake_active else 'not running'}",
        f"contributions: {status.contributions:.4g} in finished tiles; "
        f"{rate(status.contributions_per_s)} wall clock over {status.span_seconds:.1f} s, "
        f"{rate(status.contributions_per_kernel_s)} per job (kernel time)",
    ]
    if status.eta_seconds is None:
        eta = "unknown (no tile finished yet)"
    elif status.done == status.total:
        eta = "0 s (all tiles done)"
    else:
        eta = f"{status.eta_seconds:.0f} s at the pace so far"
        if not status.snakemake_active:
            eta += " (once the workflow is running again)"
    lines.append(f"ETA          : {eta}")
    lines.append(f"image        : {status.image}")
    for tile in status.outdated_first:
        lines.append(f"outdated tile {tile.id}: {tile.message}")
    if status.outdated > len(status.outdated_first):
        lines.append(
            f"  ... and {status.outdated - len(status.outdated_first)} more outdated tiles"
        )
    for tile in status.problems:
        where = tile.log or "no log"
        extra = f"; also {', '.join(tile.other_logs)}" if tile.other_logs else ""
        lines.append(f"{tile.state:6} tile {tile.id}: {tile.message} (log: {where}{extra})")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--directory",
        "-d",
        type=Path,
        default=Path("."),
        help="workflow directory (where Snakemake runs; default: current directory)",
    )
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file, in the directory"
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def run(args: argparse.Namespace) -> int:
    from pstm.migrate import params_digest
    from pstm.pipeline import CONFIG_OVERRIDES_FILE, prepare_run, with_config_overrides

    root = args.directory.resolve()
    config = root / args.config
    if not config.is_file():
        raise ConfigError(
            f"config file not found: {config}; run pstm status in the workflow directory "
            "or pass --directory/--config"
        )
    raw, overrides = with_config_overrides(read_yaml(config), root)
    cwd = Path.cwd()
    os.chdir(root)  # the plan resolves input paths relative to the workflow directory
    try:
        prepared = prepare_run(raw, source=str(config))
        digests = {tid: params_digest(p) for tid, p in prepared.tile_params().items()}
    finally:
        os.chdir(cwd)
    status = tile_status(root, [t.id for t in prepared.plan.tiles], digests=digests)
    if args.json:
        print(json.dumps({**status.as_dict(), "config_overrides": overrides}, indent=1))
    else:
        if overrides:
            print(
                f"config       : {args.config} with the last run's --config overrides "
                f"{json.dumps(overrides)} ({CONFIG_OVERRIDES_FILE})"
            )
        print(format_status(status), end="")
    return 0
