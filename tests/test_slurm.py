"""The workflow through the SLURM profile, on a real single-node SLURM started for the test.

``tests/slurm/start_slurm.sh`` installs (apt-get) and starts munged, slurmctld and slurmd
on this machine; the test skips, saying why, only where that cannot work (not root, no
apt-get, no executor plugin, a foreign slurm.conf). Run with ``make test-slurm``; the
default ``make test`` deselects the ``slurm`` marker.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm.resume import REMOTE_EXECUTOR_MARKER
from tests.helpers import REPO, make_workdir, planned_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slurm

START = REPO / "tests" / "slurm" / "start_slurm.sh"
STOP = REPO / "tests" / "slurm" / "stop_slurm.sh"
#: start_slurm.sh exits with this status when the machine cannot run SLURM.
CANNOT_RUN_SLURM = 3
#: Cap on tile jobs for the SLURM run: the tiny survey's 4 tiles become 2 batches.
MAX_TILE_JOBS = 2
SLURMCTLD_LOG = Path("/var/log/slurm/slurmctld.log")
#: Faster status polling for the tests (the plugin needs MinJobAge >= 3 x this; it is 300).
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "5")
#: Seconds the cancel test waits for the first finished tile of the batch.
FIRST_TILE_WAIT_S = 300
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: .*/slurm_logs/([^/]+)/")


def _skip(reason: str) -> None:
    print(f"\nSKIP slurm tests: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    """A running single-node SLURM (started here, stopped afterwards by PID)."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _skip("snakemake-executor-plugin-slurm is not installed (pip install -e .[slurm])")
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    if proc.returncode == CANNOT_RUN_SLURM:
        _skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, f"start_slurm.sh failed:\n{proc.stdout}\n{proc.stderr}"
    try:
        yield
    finally:
        subprocess.run(["bash", str(STOP)], check=False, timeout=120)


@pytest.fixture(scope="module")
def frozen_pstm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the workflows on a snapshot of the pstm package (PYTHONPATH, inherited by the
    SLURM jobs): the code hash in the tile jobs' params then cannot change between two
    runs of a test while someone edits the checkout."""
    snapshot = tmp_path_factory.mktemp("pstm-snapshot")
    shutil.copytree(REPO / "pstm", snapshot / "pstm", ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(snapshot))
        mp.setenv("NUMBA_CACHE_DIR", str(snapshot / ".numba_cache"))
        where = subprocess.run(
            [sys.executable, "-c", "import pstm; print(pstm.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",  # as in a job: not the checkout (python puts the cwd first on sys.path)
        ).stdout
        assert where.startswith(str(snapshot)), where
        yield snapshot


def _submissions_in_controller_log() -> int:
    if not SLURMCTLD_LOG.exists():
        return 0
    return SLURMCTLD_LOG.read_text(errors="replace").count("_slurm_rpc_submit_batch_job: JobId=")


def _image(work: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(work / "results" / "image.zarr"), mode="r")
    return {name: root[name][:] for name in ("image", "fold", "gathers")}


def test_slurm_run_equals_local_run_and_caps_jobs(
    slurm: None, frozen_pstm: Path, tmp_path: Path
) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    work = make_workdir(tmp_path / "slurm", tiny_config(execution={"max_tile_jobs": MAX_TILE_JOBS}))
    before = _submissions_in_controller_log()
    t0 = time.perf_counter()
    proc = snakemake(work, "--workflow-profile", "workflow/profiles/slurm", *FAST_POLL)
    seconds = time.perf_counter() - t0
    submitted_ctl = _submissions_in_controller_log() - before
    print(f"\nSLURM workflow run: {seconds:.0f} s, {submitted_ctl} SLURM jobs", file=sys.stderr)
    # the jobs wrote the shared numba cache (NUMBA_CACHE_DIR, inherited from the head)
    assert any((frozen_pstm / ".numba_cache").rglob("*.nbi"))
    # the head recorded its executor: resuming this directory asks SLURM (pstm.resume)
    assert (work / REMOTE_EXECUTOR_MARKER).read_text().strip() == "slurm"

    # bit for bit the local image (one job per tile: no batches)
    local = make_workdir(tmp_path / "local", tiny_config())
    snakemake(local)
    slurm_image, local_image = _image(work), _image(local)
    for name, expected in local_image.items():
        np.testing.assert_array_equal(slurm_image[name], expected, err_msg=name)

    # what was submitted: the plugin's log, cross-checked with the controller's log
    log = proc.stdout + proc.stderr
    by_kind: dict[str, int] = {}
    for _jobid, where in SUBMITTED.findall(log):
        by_kind[where] = by_kind.get(where, 0) + 1
    tile_jobs = {k: n for k, n in by_kind.items() if k.startswith("group_tiles")}
    assert sum(by_kind.values()) == submitted_ctl, (by_kind, submitted_ctl)
    assert not any("migrate_tile" in k and k.startswith("rule_") for k in by_kind), by_kind
    assert len(tile_jobs) == MAX_TILE_JOBS and all(n == 1 for n in tile_jobs.values()), by_kind
    assert len(list((work / "results" / "tiles").glob("*.npz"))) == 4


def _tile_files(work: Path) -> dict[str, tuple[int, int]]:
    """Finished tiles: name -> (inode, mtime in ns); a recomputed tile gets new ones."""
    out = {}
    for f in (work / "results" / "tiles").glob("*.npz"):
        st = f.stat()
        out[f.name] = (st.st_ino, st.st_mtime_ns)
    return out


def _running_slurm_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_cancelled_batch_redoes_only_its_unfinished_tiles(
    slurm: None, frozen_pstm: Path, tmp_path: Path
) -> None:
    """One batch of 4 tiles, run one tile at a time (--cores 1 = the per-group limit):
    cancel its SLURM job once a tile is done; the rerun keeps the finished tiles."""
    work = make_workdir(tmp_path, tiny_config(execution={"max_tile_jobs": 1}))
    batch = "results/tiles/batches/tiles00000.json"
    args = ["--workflow-profile", "workflow/profiles/slurm", *FAST_POLL, "--cores", "1", batch]
    head = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + FIRST_TILE_WAIT_S
    while not _tile_files(work) and head.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    jobs = _running_slurm_jobs()
    if not jobs:
        head.kill()
        raise AssertionError(f"no SLURM job to cancel; the head said:\n{head.communicate()[0]}")
    subprocess.run(["scancel", *jobs], check=True)
    out, _ = head.communicate(timeout=300)
    assert head.returncode != 0, f"the head should fail after the cancel:\n{out}"
    done = _tile_files(work)
    assert 0 < len(done) < 4, f"cancel came too late or too early: {sorted(done)}\n{out}"
    assert not (work / batch).exists()
    todo = planned_jobs(work)
    assert todo.get("migrate_tile") == 4 - len(done) and todo.get("tile_batch") == 1, todo

    proc = snakemake(work, *args)
    after = _tile_files(work)
    assert len(after) == 4 and (work / batch).exists(), proc.stdout
    kept = {name: after[name] for name in done}
    assert kept == done, "finished tiles of the cancelled batch were recomputed"
    assert proc.stdout.count("rule migrate_tile:") + proc.stderr.count(
        "rule migrate_tile:"
    ) == 4 - len(done)
