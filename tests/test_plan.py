"""The one tile-planning function."""

import pytest

from pstm.config import ExecutionConfig, MigrationConfig, parse_config
from pstm.errors import PlanError
from pstm.grid import OutputGrid
from pstm.plan import plan_tiles


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


def test_too_many_jobs() -> None:
    with pytest.raises(PlanError, match=r"exceed execution\.max_tile_jobs=10"):
        plan_tiles(
            grid(),
            ExecutionConfig(tile_n_inline=4, tile_n_crossline=4, max_tile_jobs=10),
            MigrationConfig(),
            376,
        )


def test_budget_shrinks_auto_tiles() -> None:
    g = grid(400, 400, 1000)
    small = plan_tiles(g, ExecutionConfig(memory_budget_mb=1024), MigrationConfig(), 1000)
    large = plan_tiles(g, ExecutionConfig(memory_budget_mb=8192), MigrationConfig(), 1000)
    assert small.tile_nil < large.tile_nil
    assert small.mem_mb_per_job <= 1024 and large.mem_mb_per_job <= 8192
