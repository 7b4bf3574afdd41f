"""``pstm status``: progress of a running or finished workflow, from its files alone.

The plan (which tiles exist) comes from :func:`pstm.pipeline.prepare_run` on the config;
progress from the tile outputs (``results/tiles/<id>.npz``) and the tile logs
(``logs/migrate/<id>.log``, see :mod:`pstm.summary`). Nothing is asked of Snakemake or of
a scheduler, so a local run and a cluster run on a shared filesystem read the same. A tile
file migrated with other params than the config's (another aperture, another pstm: the
digest it keeps, :func:`pstm.pipeline.params_digest`), or older than a file the tile job
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
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pstm.config import read_yaml
from pstm.errors import ConfigError
from pstm.migrate import read_tile_params_digest
from pstm.pipeline import TILE_INPUTS
from pstm.summary import JobLog, read_job_log

#: Directories of the workflow that status reads (relative to the workflow directory).
TILES_DIR = Path("results/tiles")
TILE_LOGS_DIR = Path("logs/migrate")
LOCKS_DIR = Path(".snakemake/locks")
#: Where the SLURM executor plugin keeps its per-job logs (searched for a failed tile's id).
SLURM_LOGS_DIR = Path(".snakemake/slurm_logs")


@dataclass(frozen=True)
class TileState:
    id: str
    state: str  # done | outdated | failed | running | stopped | waiting
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
    outdated: int  # finished with other params than the config's: to redo
    snakemake_active: bool
    contributions: int
    kernel_seconds: float
    span_seconds: float
    contributions_per_s: float | None  # wall clock, over the span
    contributions_per_kernel_s: float | None  # per job, kernel time only
    eta_seconds: float | None
    problems: tuple[TileState, ...]  # failed and stopped tiles

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime)


def _other_logs(root: Path, tile_id: str) -> tuple[str, ...]:
    base = root / SLURM_LOGS_DIR
    if not base.is_dir():
        return ()
    return tuple(sorted(str(p.relative_to(root)) for p in base.rglob("*.log") if tile_id in str(p)))


def tile_status(
    root: Path,
    tile_ids: list[str],
    now: dt.datetime | None = None,
    digests: dict[str, str] | None = None,
) -> Status:
    """Status of the planned tiles ``tile_ids`` of the workflow in ``root``; ``digests``:
    each tile's current params digest (a tile file that records another is outdated)."""
    active = (root / LOCKS_DIR).is_dir() and any((root / LOCKS_DIR).glob("*.lock"))
    inputs = [root / p for p in TILE_INPUTS.values() if (root / p).exists()]
    newest = max(inputs, key=lambda p: p.stat().st_mtime, default=None)
    states: list[TileState] = []
    contributions, kernel_s = 0, 0.0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for tid in tile_ids:
        out, log_path = root / TILES_DIR / f"{tid}.npz", root / TILE_LOGS_DIR / f"{tid}.log"
        job = read_job_log(log_path) if log_path.exists() else JobLog(log_path)
        rel_log = str(log_path.relative_to(root)) if log_path.exists() else None
        recorded = read_tile_params_digest(out) if digests and out.exists() else None
        if recorded is not None and digests is not None and recorded != digests[tid]:
            outdated: str | None = "migrated with other parameters; the next run redoes it"
        elif newest is not None and out.exists() and _mtime(out) < _mtime(newest):
            outdated = f"older than {newest.relative_to(root)}; the next run redoes it"
        else:
            outdated = None
        # a log that says done while the output is gone, or of an outdated tile, is from an
        # earlier run: to redo, and not part of this run's span
        current = (
            job.started is not None and not (job.done and not out.exists()) and outdated is None
        )
        if current:
            first = min(filter(None, (first, job.started)))
            last = max(filter(None, (last, job.last)))
        if outdated is not None:
            state, message = "outdated", outdated
        elif out.exists():
            state, message = "done", None
            last = max(filter(None, (last, _mtime(out))))
            if job.tile is not None:
                contributions += int(job.tile["contributions"])
                kernel_s += float(job.tile["seconds_kernel"])
        elif job.error is not None:
            state, message = "failed", job.error
        elif current:
            state = "running" if active else "stopped"
            message = None if active else "started but not finished, and Snakemake is not running"
        else:
            state, message = "waiting", None
        others = _other_logs(root, tid) if state in ("failed", "stopped") else ()
        states.append(TileState(tid, state, rel_log, message, others))
    counts = {s: sum(1 for t in states if t.state == s) for s in ("done", "failed", "running")}
    counts["stopped"] = sum(1 for t in states if t.state == "stopped")
    counts["waiting"] = sum(1 for t in states if t.state == "waiting")
    counts["outdated"] = sum(1 for t in states if t.state == "outdated")
    left = len(tile_ids) - counts["done"]
    if active and left > 0:  # tiles still to come: the span runs up to now
        end: dt.datetime | None = now if now is not None else dt.datetime.now()
    else:
        end = last
    span = (end - first).total_seconds() if first is not None and end is not None else 0.0
    eta: float | None = None
    if left == 0:
        eta = 0.0
    elif counts["done"] > 0 and span > 0:
        eta = left * span / counts["done"]
    return Status(
        total=len(tile_ids),
        done=counts["done"],
        failed=counts["failed"],
        running=counts["running"],
        stopped=counts["stopped"],
        waiting=counts["waiting"],
        outdated=counts["outdated"],
        snakemake_active=active,
        contributions=contributions,
        kernel_seconds=kernel_s,
        span_seconds=span,
        contributions_per_s=contributions / span if span > 0 else None,
        contributions_per_kernel_s=contributions / kernel_s if kernel_s > 0 else None,
        eta_seconds=eta,
        problems=tuple(t for t in states if t.state in ("failed", "stopped")),
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
    from pstm.pipeline import params_digest, prepare_run

    root = args.directory.resolve()
    config = root / args.config
    if not config.is_file():
        raise ConfigError(
            f"config file not found: {config}; run pstm status in the workflow directory "
            "or pass --directory/--config"
        )
    raw = read_yaml(config)
    cwd = Path.cwd()
    os.chdir(root)  # the plan resolves input paths relative to the workflow directory
    try:
        prepared = prepare_run(raw, source=str(config))
        digests = {t.id: params_digest(prepared.tile_params(t.id)) for t in prepared.plan.tiles}
    finally:
        os.chdir(cwd)
    status = tile_status(root, [t.id for t in prepared.plan.tiles], digests=digests)
    if args.json:
        print(json.dumps(status.as_dict(), indent=1))
    else:
        print(format_status(status), end="")
    return 0
