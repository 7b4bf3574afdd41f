"""Kill and resume: a run killed at random points of the tile phase (SIGKILL of Snakemake,
of its whole process group, of one tile job; SIGINT; SIGTERM) is finished by running the
same command as ``make run`` again; finished tiles are kept, only unfinished ones are
recomputed, and the image is bit-identical to an uninterrupted run."""

from __future__ import annotations

import base64
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm.assemble import assemble
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output, remove_stale_tmps, tmp_name
from pstm.resume import (
    REMOTE_EXECUTOR_MARKER,
    ProcessKind,
    SlurmCheck,
    classify,
    prepare_resume,
    record_executor,
)
from tests.helpers import make_workdir, parse, snakemake, tiny_config
from tests.snapshot import freeze_pstm

#: 16 tiles of 2 x 2 bins with the reference backend: a tile phase of several seconds.
CONFIG = tiny_config(
    grid={"n_inline": 8, "n_crossline": 8},
    execution={"tile_n_inline": 2, "tile_n_crossline": 2},
    migration={"backend": "numpy"},
)
N_TILES = 16
SEED = 20261125
#: Polling step while waiting for the kill point.
POLL_S = 0.02


def run_command(work: Path) -> list[list[str]]:
    """What ``make run`` runs (Makefile), with 2 cores."""
    return [
        [sys.executable, "-m", "pstm.resume", "--slurm", "off"],  # a local run
        [
            sys.executable,
            "-m",
            "snakemake",
            "--workflow-profile",
            "workflow/profiles/local",
            "--cores",
            "2",
        ],
    ]


def start_run(work: Path) -> subprocess.Popen[str]:
    resume, smk = run_command(work)
    subprocess.run(resume, cwd=work, check=True, capture_output=True, timeout=300)
    return subprocess.Popen(
        smk,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: kill it, its jobs, or one job
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def tile_files(work: Path) -> dict[str, int]:
    """Finished tile files (final names only) -> mtime in ns."""
    tiles = work / "results" / "tiles"
    out = {}
    for p in tiles.glob("*.npz") if tiles.is_dir() else []:
        try:
            out[p.stem] = p.stat().st_mtime_ns
        except FileNotFoundError:
            continue
    return out


def incomplete_outputs(work: Path) -> set[str]:
    """Outputs Snakemake has marked as being written (``.snakemake/incomplete``)."""
    root = work / ".snakemake" / "incomplete"
    names = set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            parts = [*Path(dirpath).relative_to(root).parts, f]
            encoded = "".join(p.lstrip("@") for p in parts)
            try:
                names.add(base64.urlsafe_b64decode(encoded).decode())
            except ValueError:
                continue
    return names


def recorded_done(work: Path) -> dict[str, int]:
    """Tiles that exist and that Snakemake recorded as finished."""
    marked = incomplete_outputs(work)
    return {t: m for t, m in tile_files(work).items() if f"results/tiles/{t}.npz" not in marked}


def tile_jobs(work: Path) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if "migrate_tile.py" in line and str(work) in line
    ]


def jobs_run(stdout: str) -> list[str]:
    """Tile wildcards of the migrate_tile jobs a Snakemake run started."""
    tiles, in_tile_rule = [], False
    for line in stdout.splitlines():
        s = line.strip()
        if s.startswith(("rule ", "localrule ")):
            in_tile_rule = s.rstrip(":").split()[-1] == "migrate_tile"
        elif in_tile_rule and s.startswith("wildcards: tile="):
            tiles.append(s.split("=", 1)[1])
            in_tile_rule = False
    return tiles


def reasons(stdout: str) -> str:
    return "\n".join(line for line in stdout.splitlines() if "reason:" in line)


def image_bytes(work: Path) -> dict[str, bytes]:
    root = zarr.open_group(str(work / "results" / "image.zarr"), mode="r")
    return {name: np.asarray(root[name][...]).tobytes() for name in ("image", "fold", "gathers")}


def kill(proc: subprocess.Popen[str], work: Path, how: str) -> None:
    if how == "sigkill-snakemake":
        os.kill(proc.pid, signal.SIGKILL)  # its jobs run on as orphans
    elif how == "sigkill-group":
        os.killpg(proc.pid, signal.SIGKILL)  # like a node failure: everything dies at once
    elif how == "sigkill-tile-job":
        jobs = tile_jobs(work)
        if jobs:
            os.kill(jobs[0], signal.SIGKILL)
        else:  # between jobs: kill Snakemake instead
            os.kill(proc.pid, signal.SIGKILL)
    elif how == "sigint-group":
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
    elif how == "sigterm-snakemake":
        os.kill(proc.pid, signal.SIGTERM)
    else:
        raise ValueError(how)


@pytest.fixture(scope="module", autouse=True)
def frozen_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every run of this module uses one copy of the pstm source (tests/snapshot.py)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", freeze_pstm(tmp_path_factory.mktemp("src"))["PYTHONPATH"])
        yield


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = make_workdir(tmp_path_factory.mktemp("uninterrupted"), CONFIG)
    snakemake(work)
    assert len(tile_files(work)) == N_TILES
    return work


@pytest.fixture(scope="module")
def reference(reference_run: Path) -> dict[str, bytes]:
    return image_bytes(reference_run)


@pytest.mark.workflow
def test_killed_runs_resume_bit_identical(tmp_path: Path, reference: dict[str, bytes]) -> None:
    rng = random.Random(SEED)
    work = make_workdir(tmp_path, CONFIG)
    kills = [
        "sigkill-snakemake",
        "sigkill-group",
        "sigkill-tile-job",
        "sigint-group",
        "sigterm-snakemake",
    ]
    kept_total = 0
    for how in kills:
        before = recorded_done(work)
        # a random point of the tile phase: after 1-2 more tiles finished, plus jitter
        target = min(len(before) + rng.randint(1, 2), N_TILES - 2)
        proc = start_run(work)
        deadline = time.monotonic() + 120
        while len(recorded_done(work)) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "tile phase did not progress"
            time.sleep(POLL_S)
        time.sleep(rng.uniform(0.0, 0.4))
        kill(proc, work, how)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode != 0 or len(recorded_done(work)) < N_TILES, (
            f"{how}: the run finished before the kill point; make tiles slower\n{out}"
        )
        redone = set(jobs_run(out)) & set(before)
        assert not redone, f"{how}: finished tiles {redone} were redone\n{reasons(out)}"
        kept_total += len(before)

    # the state a resume starts from: what Snakemake recorded as done (orphans may still
    # finish tiles after this, but their jobs are recorded incomplete and are redone)
    done = recorded_done(work)
    proc = start_run(work)  # waits for orphans, removes the stale lock
    assert 0 < len(done) < N_TILES
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    redone = jobs_run(out)
    assert sorted(redone) == sorted(set(redone)), "a tile ran twice"
    assert set(redone) == {f"{a:04d}_{b:04d}" for a in range(4) for b in range(4)} - set(done)
    after = tile_files(work)
    assert all(after[t] == m for t, m in done.items()), "a finished tile was rewritten"
    assert image_bytes(work) == reference
    assert not list((work / "results" / "tiles").glob(".*")), "temporary files left behind"
    assert kept_total > 0


def test_resume_refuses_while_snakemake_runs(tmp_path: Path) -> None:
    work = make_workdir(tmp_path, CONFIG)
    (work / ".snakemake" / "locks").mkdir(parents=True)
    lock = work / ".snakemake" / "locks" / "0.input.lock"
    lock.write_text("x")
    # a process that looks like Snakemake (started as `python -m snakemake`) in this dir
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-m", "snakemake"], cwd=work
    )
    try:
        time.sleep(0.3)
        with pytest.raises(SystemExit, match="already running"):
            prepare_resume(work, wait_s=0, slurm=SlurmCheck.OFF)
        assert lock.exists()
    finally:
        fake.kill()
        fake.wait()
    assert prepare_resume(work, wait_s=0, slurm=SlurmCheck.OFF).startswith("removed 1 stale")
    assert not lock.exists()


def test_resume_waits_for_orphaned_jobs(tmp_path: Path) -> None:
    scripts = tmp_path / ".snakemake" / "scripts"
    scripts.mkdir(parents=True)
    job = scripts / "tmpabc.migrate_tile.py"
    finished = tmp_path / "job_finished"
    # The job's last act is to write a marker: when the resume returns, the job's work must be
    # done. (Checking ``poll()`` instead races with the kernel: an exiting process drops its
    # command line before its parent can reap it.)
    job.write_text(f"import time; time.sleep(1.0); open({str(finished)!r}, 'w').close()\n")
    (tmp_path / ".snakemake" / "locks").mkdir()
    (tmp_path / ".snakemake" / "locks" / "0.output.lock").write_text("x")
    orphan = subprocess.Popen([sys.executable, str(job)], cwd=tmp_path)
    try:
        time.sleep(0.2)
        with pytest.raises(SystemExit, match="still running"):
            prepare_resume(tmp_path, wait_s=0, slurm=SlurmCheck.OFF)
        done = prepare_resume(tmp_path, wait_s=30, poll_s=0.05, slurm=SlurmCheck.OFF)
        assert done.startswith("removed 1")
        assert finished.exists(), "resumed while a job of the killed run was still working"
    finally:
        orphan.kill()
        orphan.wait()


def test_resume_sees_slurm_jobs_in_this_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    squeue = bindir / "squeue"
    squeue.write_text(f"#!/bin/sh\necho '4242|{tmp_path}|migrate_tile'\necho '7|/elsewhere|x'\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    # no lock: nothing to resume, so SLURM is not asked (a failing squeue cannot block a run)
    assert prepare_resume(tmp_path, wait_s=0) == "no lock"
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("")  # left by a killed head
    # no run of this directory went through SLURM: squeue is not asked
    assert "removed" in prepare_resume(tmp_path, wait_s=0)
    (locks / "0.input.lock").write_text("")
    assert not record_executor("local", tmp_path) and not record_executor(None, tmp_path)
    assert record_executor("slurm", tmp_path)  # what the Snakefile's onstart leaves
    with pytest.raises(SystemExit, match="slurm job 4242"):
        prepare_resume(tmp_path, wait_s=0)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the resume runs inside that job: not waited for
    assert "removed" in prepare_resume(tmp_path, wait_s=0)
    (locks / "0.input.lock").write_text("")
    monkeypatch.delenv("SLURM_JOB_ID")
    assert "removed" in prepare_resume(tmp_path, wait_s=0, slurm=SlurmCheck.OFF)
    assert not record_executor("local", tmp_path)  # a local run after it drops the marker
    assert not (tmp_path / REMOTE_EXECUTOR_MARKER).exists()
    assert record_executor("slurm", tmp_path)
    (locks / "0.input.lock").write_text("")
    squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact' >&2\nexit 1\n")
    with pytest.raises(
        SystemExit, match=r"squeue cannot say.*: slurm_load_jobs error: Unable to contact\. Check"
    ):
        prepare_resume(tmp_path, wait_s=0)
    with pytest.raises(SystemExit, match=r"--slurm off"):
        prepare_resume(tmp_path, wait_s=0)


def test_snakefile_records_a_cluster_executor() -> None:
    """The Snakefile's onstart hook passes the executor's name to record_executor."""
    text = (Path(__file__).parents[1] / "Snakefile").read_text()
    hook = text.split("onstart:", 1)[1].split("\n\n", 1)[0]
    assert "record_executor(workflow.executor_plugin.name" in hook


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["/v/bin/python", "/v/bin/snakemake", "--cores", "2"], ProcessKind.SNAKEMAKE),
        (["python3", "-m", "snakemake", "-n"], ProcessKind.SNAKEMAKE),
        (["/usr/bin/time", "-v", "nice", "snakemake"], ProcessKind.SNAKEMAKE),
        (["python", "-c", "from snakemake.cli import main; main()"], ProcessKind.SNAKEMAKE),
        (["python", "/w/.snakemake/scripts/tmpx.migrate_tile.py"], ProcessKind.JOB),
        (
            ["python", "-m", "snakemake", "--target-jobs", "migrate_tile:tile=0000_0000"],
            ProcessKind.JOB,
        ),
        (["less", "/w/.snakemake/log/x.snakemake.log"], None),
        (["vim", "Snakefile"], None),
        (["python", "-m", "pytest", "tests/test_snakemake_things.py"], None),
    ],
)
def test_classify_command_lines(argv: list[str], kind: ProcessKind | None) -> None:
    assert classify(argv) is kind


def test_atomic_output_keeps_nothing_partial(tmp_path: Path) -> None:
    out = tmp_path / "tile.npz"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["tile.npz"]
    # a temporary of a dead process (a killed job on this host) is cleaned up; ours is not
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".tile.npz.tmp-{socket.gethostname()}-{dead.pid}"
    stale.write_bytes(b"half")
    mine = tmp_name(out)
    mine.write_bytes(b"in progress")
    assert remove_stale_tmps(out) == [stale]
    assert mine.exists()
    mine.unlink()
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["tile.npz"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".snakemake")  # Snakemake's own marker
    }


@pytest.mark.workflow
@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
def test_assembly_does_not_depend_on_tile_order(reference_run: Path, tmp_path: Path) -> None:
    cfg = parse(CONFIG)
    tiles = sorted((reference_run / "results" / "tiles").glob("*.npz"))
    grid = OutputGrid.from_config(cfg.grid)
    expect = tree_bytes(reference_run / "results" / "image.zarr")
    rng = random.Random(SEED)
    for k in range(3):
        order = tiles[:]
        rng.shuffle(order)
        assemble(order, (2, 2), grid, cfg.migration, tmp_path / f"image{k}.zarr")
        assert tree_bytes(tmp_path / f"image{k}.zarr") == expect, f"order {k} differs"


@pytest.mark.workflow
def test_tile_jobs_share_no_writable_file(reference_run: Path) -> None:
    out = snakemake(reference_run, "-n", "--forceall").stdout
    written: list[str] = []
    for block in out.split("\nrule ")[1:]:
        if not block.startswith("migrate_tile:"):
            continue
        for line in block.splitlines():
            key, _, value = line.strip().partition(": ")
            if key in ("output", "log"):
                written += [v.strip() for v in value.split(",")]
    assert len(written) == 2 * N_TILES and len(set(written)) == len(written)
    assert all(w.startswith(("results/tiles/", "logs/migrate/")) for w in written)
