"""The preflight report: what will run, expected work and time, and its warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pstm.cli import main
from pstm.index import build_index, write_index
from pstm.io.headers import Geometry
from pstm.pipeline import prepare_run
from pstm.preflight import preflight_report
from pstm.synthetic import make_survey
from tests.helpers import tiny_config


def report(cfg: dict[str, Any], input_dt_s: float = 0.004) -> str:
    run = prepare_run(cfg)
    _, table, _ = make_survey(run.config.synthetic)
    names = ("source_x", "source_y", "receiver_x", "receiver_y")
    geometry = Geometry(*(table.column(c).to_numpy() for c in names))
    return preflight_report(run, build_index(geometry, run.grid), input_dt_s).text


def test_report_estimates_work_and_time_without_warnings() -> None:
    text = report(tiny_config())
    assert "tiles            : 4 of 4 x 3 bins" in text
    contributions = float(text.split("contributions    : about ")[1].split()[0])
    assert 1e5 < contributions <= 8 * 6 * 100 * 288  # bins x samples x traces (upper bound)
    assert "contributions/s per tile job" in text
    assert "WARNING" not in text


def test_grid_outside_the_data_and_low_fold_are_warned() -> None:
    far = tiny_config(grid={"origin_x_m": 175.0 + 1100.0}, migration={"aperture_m": 300.0})
    text = report(far)
    assert "have no trace within aperture: the grid reaches outside the data" in text
    sparse = tiny_config(migration={"aperture_m": 30.0})
    assert "(very low fold)" in report(sparse)


def test_a_grid_beyond_the_midpoints_is_warned_even_within_aperture() -> None:
    """Half the grid moved off the survey's midpoints, the aperture still reaching traces
    from every bin: no "no trace within aperture", but the bins beyond the midpoints are
    named (their image would be migration swings only)."""
    text = report(tiny_config(grid={"origin_x_m": 175.0 + 700.0}, migration={"aperture_m": 2000.0}))
    assert "no trace within aperture" not in text
    assert "have no trace midpoint within 120 m (4 times the larger bin spacing)" in text
    assert "beyond the survey" not in report(tiny_config(migration={"aperture_m": 2000.0}))


@pytest.mark.parametrize(("input_dt", "warned"), [(0.004, False), (0.002, True)])
def test_time_aliasing_is_warned(input_dt: float, warned: bool) -> None:
    text = report(tiny_config(), input_dt_s=input_dt)
    assert ("the image aliases frequencies above 125 Hz" in text) is warned


def test_an_index_of_another_grid_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pstm preflight after a grid edit, before the workflow rebuilt the index: it says so
    and reports no traces per tile, rather than counting them on the old grid."""
    cfg = tiny_config()
    run = prepare_run(cfg)
    _, table, _ = make_survey(run.config.synthetic)
    names = ("source_x", "source_y", "receiver_x", "receiver_y")
    index = build_index(Geometry(*(table.column(c).to_numpy() for c in names)), run.grid)
    assert index.matches(run.grid)
    write_index(tmp_path / "results" / "index", index)
    moved = tiny_config(grid={"origin_x_m": cfg["grid"].get("origin_x_m", 0.0) + 30.0})
    assert not index.matches(prepare_run(moved).grid)
    monkeypatch.chdir(tmp_path)
    for config, stale in ((cfg, False), (moved, True)):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        assert main(["preflight"]) == 0
        out, err = capsys.readouterr()
        assert ("built for another output grid" in err) is stale
        assert ("traces per tile  :" in out) is not stale
        assert ("not counted: no midpoint index of this grid" in out) is stale


def test_report_without_an_index_says_what_it_cannot_show() -> None:
    """Before a first run (or after a grid edit) there is no index of the grid: the report
    says so and how to build it, instead of leaving the traces' lines out silently."""
    text = preflight_report(prepare_run(tiny_config()), None, 0.004).text
    assert "input traces     : not counted: no midpoint index" in text
    assert "snakemake --cores 1 results/index" in text and "traces per tile  :" not in text


def test_a_line_of_bins_over_areal_data_is_caught() -> None:
    """A one-crossline grid over the tiny 3D survey: with rho_filter auto (2d from the grid)
    the check raises (the workflow stops), with 2d set it warns, with 3d it is quiet; the
    preflight report says it. A true 2D line (stations on the line, crooked by up to 10 m)
    is not areal."""
    from pstm.config import RhoFilter
    from pstm.errors import InputDataError
    from pstm.index import check_line_rho, coverage

    cfg = tiny_config(grid={"n_crossline": 1, "origin_y_m": 100.0})
    cfg["execution"] = {"tile_n_inline": "auto", "tile_n_crossline": "auto"}
    run = prepare_run(cfg)
    assert run.rho_from_grid and run.config.migration.rho_filter is RhoFilter.TWO_D
    _, table, _ = make_survey(run.config.synthetic)
    names = ("source_x", "source_y", "receiver_x", "receiver_y")
    index = build_index(Geometry(*(table.column(c).to_numpy() for c in names)), run.grid)
    aperture = run.config.migration.aperture_m
    cov = coverage(index, run.grid, aperture)
    with pytest.raises(InputDataError, match=r"Set migration\.rho_filter: 3d"):
        check_line_rho(cov, RhoFilter.TWO_D, True)
    warned = check_line_rho(cov, RhoFilter.TWO_D, False)
    assert warned is not None and warned.startswith("migration.rho_filter: 2d, but")
    assert check_line_rho(cov, RhoFilter.THREE_D, False) is None
    assert "auto chose 2d from the grid's single crossline" in report(cfg)
    rng = np.random.default_rng(3)
    x = np.repeat(np.arange(0.0, 600.0, 25.0), 4)
    s_x, r_x = x, x + rng.uniform(-300.0, 300.0, x.size)
    crooked = 100.0 + rng.uniform(-10.0, 10.0, (2, x.size))
    line = build_index(Geometry(s_x, crooked[0], r_x, crooked[1]), run.grid)
    line_cov = coverage(line, run.grid, aperture)
    median = line_cov.offline_median_m
    assert median is not None and median < 10.0
    assert check_line_rho(line_cov, RhoFilter.TWO_D, True) is None
