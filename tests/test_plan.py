"""The one tile-planning function: tiles and their batches."""

import json
import re
from pathlib import Path

import pytest

from pstm.config import ExecutionConfig, MigrationConfig, parse_config
from pstm.errors import PlanError
from pstm.grid import OutputGrid
from pstm.plan import BATCH_ID_PATTERN, batch_tiles, plan_tiles
from tests.helpers import make_workdir, planned_jobs, snakemake, tiny_config


def grid(nil: int = 40, nxl: int = 24, nt: int = 251) -> OutputGrid:
    return OutputGrid.from_config(
        parse_config({"grid": {"n_inline": nil, "n_crossline": nxl, "nt": nt}}).grid
    )


def cover(plan, g: OutputGrid) -> None:
    hits = [[0] * g.nxl for _ in range(g.nil)]
    for t in plan.tiles:
        for i in range(t.il0, t.il0 + t.nil):
            for j in range(t.xl0, t.xl0 + t.nxl):
                hits[i][j] += 1
    assert all(h == 1 for row in hits for h in row), "tiles must cover the grid exactly once"


@pytest.mark.parametrize(("nil", "nxl"), [(40, 24), (37, 1), (1, 1), (200, 150)])
def test_auto_tiles_cover_grid_once_and_fit_budget(nil: int, nxl: int) -> None:
    g = grid(nil, nxl)
    ex = ExecutionConfig()
    plan = plan_tiles(g, ex, MigrationConfig(), ns_in=376)
    cover(plan, g)
    assert plan.mem_mb_per_job <= ex.memory_budget_mb
    assert len(plan.tiles) >= min(ex.min_tile_jobs, 1 if nil * nxl == 1 else 2)


@pytest.mark.parametrize(("nil", "nxl"), [(120, 48), (40, 24), (37, 1), (200, 150), (101, 13)])
def test_auto_tiles_are_balanced(nil: int, nxl: int) -> None:
    """Auto tiles are as equal as a regular lattice allows: the last tile along an axis is
    short by less than one bin per tile (120 x 48 was 39, 39, 39, 3 x 39, 9)."""
    g = grid(nil, nxl)
    plan = plan_tiles(g, ExecutionConfig(), MigrationConfig(), ns_in=376)
    for n, size, starts in (
        (nil, plan.tile_nil, {t.il0 for t in plan.tiles}),
        (nxl, plan.tile_nxl, {t.xl0 for t in plan.tiles}),
    ):
        count = len(starts)
        assert count == -(-n // size)
        assert n - (count - 1) * size > size - count, (n, size, count)
    if (nil, nxl) == (120, 48):
        assert (plan.tile_nil, plan.tile_nxl, len(plan.tiles)) == (30, 24, 8)


def test_centre_tiles_start_first() -> None:
    """Tile job priorities: distinct, highest at the grid's centre, lowest at a corner, and
    falling with the distance from the centre."""
    g = grid(50, 50)
    ex = ExecutionConfig(tile_n_inline=10, tile_n_crossline=10)
    plan = plan_tiles(g, ex, MigrationConfig(), ns_in=376)
    priority = plan.start_priority()
    assert sorted(priority.values()) == list(range(25))
    centre = {t.id for t in plan.tiles if (t.il0, t.xl0) == (20, 20)}
    assert max(priority, key=priority.__getitem__) in centre
    assert priority["0000_0000"] < 4 and priority["0004_0004"] < 4  # corners last
    assert priority["0001_0002"] > priority["0000_0002"] > priority["0000_0000"]


def test_explicit_tiles() -> None:
    g = grid()
    plan = plan_tiles(
        g, ExecutionConfig(tile_n_inline=16, tile_n_crossline=10), MigrationConfig(), 376
    )
    cover(plan, g)
    assert {(t.nil, t.nxl) for t in plan.tiles} == {(16, 10), (16, 4), (8, 10), (8, 4)}


def test_tile_larger_than_grid_is_an_error() -> None:
    with pytest.raises(PlanError, match=r"tile_n_crossline=30 is larger than the grid \(24"):
        plan_tiles(
            grid(), ExecutionConfig(tile_n_inline=8, tile_n_crossline=30), MigrationConfig(), 376
        )


def test_memory_budget_too_small() -> None:
    with pytest.raises(PlanError, match="memory_budget_mb=100 is too small"):
        plan_tiles(grid(), ExecutionConfig(memory_budget_mb=100), MigrationConfig(), 376)


def test_more_tiles_than_max_jobs_are_batched() -> None:
    g = grid()  # 40 x 24 bins in 4 x 4 tiles: 10 x 6 = 60 tiles
    ex = ExecutionConfig(tile_n_inline=4, tile_n_crossline=4, max_tile_jobs=7)
    plan = plan_tiles(g, ex, MigrationConfig(), 376)
    cover(plan, g)
    assert len(plan.tiles) == 60 and len(plan.batches) == 7 and plan.batched
    # every tile in exactly one batch, batches consecutive in tile order, sizes 9 or 8
    assert [t for b in plan.batches for t in b.tile_ids] == [t.id for t in plan.tiles]
    assert sorted(len(b.tile_ids) for b in plan.batches) == [8, 8, 8, 9, 9, 9, 9]
    assert plan.max_tiles_per_batch == 9
    assert len({b.id for b in plan.batches}) == 7
    assert all(re.fullmatch(BATCH_ID_PATTERN, b.id) for b in plan.batches)
    assert plan.batch_of()[plan.tiles[-1].id] == plan.batches[-1].id
    # memory and threads stay per tile: a batch runs its tiles as separate jobs
    assert (
        plan.mem_mb_per_job
        == plan_tiles(
            g, ex.model_copy(update={"max_tile_jobs": 60}), MigrationConfig(), 376
        ).mem_mb_per_job
    )


def test_not_batched_when_tiles_fit_the_cap() -> None:
    ex = ExecutionConfig(tile_n_inline=4, tile_n_crossline=4, max_tile_jobs=60)
    plan = plan_tiles(grid(), ex, MigrationConfig(), 376)
    assert len(plan.batches) == 60 and not plan.batched
    assert all(b.tile_ids == (t.id,) for b, t in zip(plan.batches, plan.tiles, strict=True))


@pytest.mark.parametrize(
    ("n", "max_jobs"), [(1, 1), (5, 1), (5, 5), (5, 9), (2000, 500), (10**5, 2000), (2001, 2000)]
)
def test_batch_tiles_balanced(n: int, max_jobs: int) -> None:
    ids = tuple(f"{i:04d}_0000" for i in range(n))
    batches = batch_tiles(ids, max_jobs)
    assert len(batches) == min(n, max_jobs)
    assert tuple(t for b in batches for t in b.tile_ids) == ids
    sizes = [len(b.tile_ids) for b in batches]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_2000_tiles_in_the_default_cap_are_not_batched() -> None:
    g = grid(100, 80, 51)  # 2 x 2 tiles: 50 x 40 = 2000 tiles
    ex = ExecutionConfig(tile_n_inline=2, tile_n_crossline=2)
    plan = plan_tiles(g, ex, MigrationConfig(), 376)
    assert len(plan.tiles) == ex.max_tile_jobs == 2000 and not plan.batched
    plan = plan_tiles(g, ex.model_copy(update={"max_tile_jobs": 1999}), MigrationConfig(), 376)
    assert len(plan.batches) == 1999 and plan.max_tiles_per_batch == 2


def test_budget_shrinks_auto_tiles() -> None:
    g = grid(400, 400, 1000)
    small = plan_tiles(g, ExecutionConfig(memory_budget_mb=1024), MigrationConfig(), 1000)
    large = plan_tiles(g, ExecutionConfig(memory_budget_mb=8192), MigrationConfig(), 1000)
    assert small.tile_nil < large.tile_nil
    assert small.mem_mb_per_job <= 1024 and large.mem_mb_per_job <= 8192


@pytest.mark.workflow
def test_2000_tiles_dry_run_builds_batches(tmp_path: Path) -> None:
    """The workflow's DAG for 2,000 tiles capped at 500 jobs: every tile is still its own
    job (own file), and each of the 500 batches has its manifest job (its group's anchor)."""
    config = tiny_config(
        grid={"n_inline": 100, "n_crossline": 80},
        execution={"tile_n_inline": 2, "tile_n_crossline": 2, "max_tile_jobs": 500},
    )
    jobs = planned_jobs(make_workdir(tmp_path, config))
    assert jobs["migrate_tile"] == 2000 and jobs["tile_batch"] == 500


@pytest.mark.workflow
def test_unbatched_plan_has_no_batch_jobs(tmp_path: Path) -> None:
    jobs = planned_jobs(make_workdir(tmp_path, tiny_config()))
    assert jobs["migrate_tile"] == 4 and "tile_batch" not in jobs


@pytest.mark.workflow
def test_batch_manifest_lists_its_tiles(tmp_path: Path) -> None:
    """Locally groups are ignored, but a batch's manifest job still runs after its tiles."""
    work = make_workdir(tmp_path, tiny_config(execution={"max_tile_jobs": 2}))
    snakemake(work, "results/tiles/batches/tiles00001.json")
    record = json.loads((work / "results/tiles/batches/tiles00001.json").read_text())
    assert record["batch"] == "tiles00001"
    assert [t["path"] for t in record["tiles"]] == [
        "results/tiles/0001_0000.npz",
        "results/tiles/0001_0001.npz",
    ]
    assert all(t["bytes"] == (work / t["path"]).stat().st_size for t in record["tiles"])
    assert sorted(p.name for p in (work / "results/tiles").glob("*.npz")) == [
        "0001_0000.npz",
        "0001_0001.npz",
    ]
