"""``pstm init``: the proposed grid covers the survey, and the written config runs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm.cli import main
from pstm.commands.init import Survey, coverage, propose_grid
from pstm.config import load_config
from pstm.grid import OutputGrid
from pstm.io.headermap import HeaderWord
from pstm.io.segy import write_segy
from tests.helpers import make_workdir, snakemake, tiny_config
from tests.segy_data import survey_to_segy, survey_to_zarr


def _covers(cfg_path: Path, mx: np.ndarray, my: np.ndarray) -> OutputGrid:
    grid = OutputGrid.from_config(load_config(cfg_path).grid)
    fil, fxl = grid.to_grid(mx, my)
    assert fil.min() >= -0.5 and fil.max() <= grid.nil - 0.5
    assert fxl.min() >= -0.5 and fxl.max() <= grid.nxl - 0.5
    return grid


def _midpoints(coords: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return (
        0.5 * (coords["source_x"] + coords["receiver_x"]),
        0.5 * (coords["source_y"] + coords["receiver_y"]),
    )


@pytest.mark.workflow
def test_init_on_synthetic_segy_then_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segy = tmp_path / "survey.sgy"
    _, coords = survey_to_segy(segy, tiny_config())
    cfg_path = tmp_path / "config.yaml"
    assert main(["init", str(segy), "-o", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "288 x 150 samples" in out and "not in the headers" in out
    grid = _covers(cfg_path, *_midpoints(coords))
    assert grid.rotation_deg == 0.0 and grid.nt == 150 and grid.dt == 0.004
    assert "# Output grid covering every midpoint" in cfg_path.read_text()
    # the workflow runs on the config exactly as written
    (tmp_path / "run").mkdir()
    work = make_workdir(tmp_path / "run", {})
    shutil.copy(cfg_path, work / "config.yaml")
    snakemake(work)
    image = zarr.open_group(str(work / "results" / "image.zarr"), mode="r")["image"][:]
    assert image.shape == (grid.nil, grid.nxl, grid.nt) and np.abs(image).max() > 0
    assert (work / "results" / "export" / "stack.sgy").stat().st_size > 0


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segy = tmp_path / "survey.sgy"
    survey_to_segy(segy, tiny_config())
    (tmp_path / "config.yaml").write_text("keep me")
    assert main(["init", str(segy), "-o", str(tmp_path / "config.yaml")]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").read_text() == "keep me"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--bin-m", "0", "must be greater than 0, got 0"),
        ("--aperture-m", "-5", "must be greater than 0, got -5"),
        ("--rotation-deg", "nan", "must be a finite number, got nan"),
        ("--bin-m", "12,5", "not a number: '12,5'"),
    ],
)
def test_init_rejects_bad_flag_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, says: str
) -> None:
    """A flag's bad value is a usage error (exit 2) naming the flag, before any file is
    read; it used to reach the grid proposal and end in a traceback."""
    out = tmp_path / "c.yaml"
    with pytest.raises(SystemExit) as stop:
        main(["init", str(tmp_path / "survey.sgy"), flag, value, "-o", str(out)])
    assert stop.value.code == 2
    assert f"argument {flag}: {says}" in capsys.readouterr().err
    assert not out.exists()


def test_init_names_its_argument_for_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "nothere.sgy"), "-o", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert "SEG-Y file not found" in err and "pstm init: its SOURCE argument" in err


def test_init_from_zarr_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces, headers = survey_to_zarr(tmp_path, tiny_config())
    cfg_path = tmp_path / "config.yaml"
    assert main(["init", str(traces), "--headers", str(headers), "-o", str(cfg_path)]) == 0
    cfg = load_config(cfg_path)
    assert cfg.input.kind.value == "zarr" and cfg.input.traces_zarr == traces.resolve()
    _, coords = survey_to_segy(tmp_path / "same.sgy", tiny_config())
    _covers(cfg_path, *_midpoints(coords))


def _rotated_survey(rotation_deg: float, dil: float, dxl: float) -> Survey:
    """Pre-stack traces binned on a rotated grid with inline 1001.., crossline 2001.."""
    r = np.radians(rotation_deg)
    u, v = np.array([np.cos(r), np.sin(r)]), np.array([-np.sin(r), np.cos(r)])
    il, xl = np.meshgrid(np.arange(1001, 1031), np.arange(2001, 2021), indexing="ij")
    il, xl = np.repeat(il.ravel(), 3), np.repeat(xl.ravel(), 3)
    origin = np.array([600_000.0, 6_700_000.0])
    m = origin + np.outer(il - 1001, u * dil) + np.outer(xl - 2001, v * dxl)
    half = np.tile([[100.0, 0.0], [0.0, 300.0], [-200.0, 50.0]], (len(il) // 3, 1))
    s, rcv = m - half, m + half
    return Survey(
        sx=s[:, 0],
        sy=s[:, 1],
        rx=rcv[:, 0],
        ry=rcv[:, 1],
        source="rotated",
        ns=100,
        dt_s=0.002,
        t0_s=0.0,
        inline=il,
        crossline=xl,
    )


def test_grid_from_inline_crossline_fit() -> None:
    survey = _rotated_survey(32.0, 12.5, 25.0)
    proposal = propose_grid(survey, None, None)
    g = proposal.grid
    assert "least-squares" in proposal.how
    assert g.rotation_deg == pytest.approx(32.0, abs=1e-6)
    assert (g.dil, g.dxl) == (12.5, 25.0)
    assert (g.first_inline, g.first_crossline, g.nil, g.nxl) == (1001, 2001, 30, 20)
    assert (g.ox, g.oy) == (600_000.0, 6_700_000.0)
    frac, fold = coverage(g, survey)
    assert frac == 1.0 and (fold == 3).all()


def test_bin_centres_from_the_headers_fit_exactly() -> None:
    """Field midpoints scatter within their bins: fitted to the numbers they give a spacing
    and rotation a little off; the headers' CDP X/Y (the processor's bin centres) give
    them exactly, and the summary says which were used."""
    exact = _rotated_survey(32.0, 12.5, 25.0)
    jitter = np.random.default_rng(5).uniform(-0.15, 0.15, (exact.ntr, 2)) * [12.5, 25.0]
    scattered = dataclasses.replace(
        exact, sx=exact.sx + jitter[:, 0], sy=exact.sy + jitter[:, 1],
        rx=exact.rx + jitter[:, 0], ry=exact.ry + jitter[:, 1],
    )  # fmt: skip
    off = propose_grid(scattered, None, None).grid
    assert (off.dil, off.dxl, off.rotation_deg) != (12.5, 25.0, 32.0)  # the scatter shows
    with_cdp = dataclasses.replace(scattered, cdp_x=exact.mx, cdp_y=exact.my)
    proposal = propose_grid(with_cdp, None, None)
    g = proposal.grid
    assert "CDP X/Y" in proposal.how
    assert (g.dil, g.dxl) == (12.5, 25.0) and g.rotation_deg == pytest.approx(32.0, abs=1e-6)
    assert (g.first_inline, g.first_crossline, g.nil, g.nxl) == (1001, 2001, 30, 20)


@pytest.mark.parametrize("cdp", ["shifted 1 km", "100x", "constant", "swapped"])
def test_bin_centres_of_another_frame_are_not_used(cdp: str) -> None:
    """CDP X/Y that fit the numbers exactly but are not the midpoints' bin centres (another
    datum, scalar, a constant, x and y swapped) are left out: the grid is the midpoints'."""
    exact = _rotated_survey(32.0, 12.5, 25.0)
    x, y = exact.mx, exact.my
    other = {
        "shifted 1 km": (x + 1000.0, y),
        "100x": (100.0 * x, 100.0 * y),
        "constant": (np.full_like(x, 5.0), np.full_like(y, 7.0)),
        "swapped": (y, x),
    }[cdp]
    alone = propose_grid(exact, None, None).grid
    proposal = propose_grid(dataclasses.replace(exact, cdp_x=other[0], cdp_y=other[1]), None, None)
    assert proposal.grid == alone
    assert "CDP X/Y (bin centres" not in proposal.how


def test_left_handed_numbering_falls_back_and_says_so() -> None:
    survey = _rotated_survey(0.0, 25.0, 25.0)
    flipped = Survey(**{**survey.__dict__, "crossline": 5000 - survey.crossline})  # type: ignore[operator]
    proposal = propose_grid(flipped, None, None)
    g = proposal.grid
    assert "clockwise" in proposal.how and (g.first_inline, g.first_crossline) == (1, 1)
    assert (g.dil, g.dxl, g.nil, g.nxl) == (25.0, 25.0, 30, 20)
    assert coverage(proposal.grid, flipped)[0] == 1.0


def test_no_bin_size_without_shots_or_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 5
    path = tmp_path / "f.sgy"
    write_segy(
        path,
        np.zeros((n, 4), np.float32),
        {HeaderWord.SOURCE_X: np.arange(n) * 10.0, HeaderWord.RECEIVER_X: np.arange(n) * 10.0 + 5},
        0.004,
    )
    assert main(["init", str(path), "-o", str(tmp_path / "c.yaml")]) == 1
    assert "give --bin-m" in capsys.readouterr().err
    assert main(["init", str(path), "-o", str(tmp_path / "c.yaml"), "--bin-m", "5"]) == 0
    assert load_config(tmp_path / "c.yaml").grid.inline_spacing_m == 5.0


def test_pstm_synthetic_writes_the_survey_as_a_users_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pstm synthetic writes the config's synthetic survey as SEG-Y and as Zarr + Parquet,
    which pstm init reads like a user's survey; it overwrites nothing without --force."""
    import yaml

    from pstm.io.headers import read_geometry
    from pstm.io.traces import open_traces
    from pstm.synthetic import make_survey

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    segy, out = tmp_path / "survey.sgy", tmp_path / "zarr"
    args = ["synthetic", "--config", str(config), "--segy", str(segy), "--zarr", str(out)]
    assert main(args) == 0
    data, table, _ = make_survey(load_config(config).synthetic)
    store = open_traces(out / "traces.zarr")
    assert store.ntr == data.shape[0] and np.array_equal(store.read(np.arange(3)), data[:3])
    geometry = read_geometry(out / "headers.parquet")
    assert np.array_equal(geometry.sx, table.column("source_x").to_numpy())
    capsys.readouterr()
    assert main(["init", str(segy), "-o", str(tmp_path / "proposed.yaml")]) == 0
    assert f"{data.shape[0]} x {data.shape[1]} samples" in capsys.readouterr().out
    before = segy.stat().st_mtime_ns
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--force overwrites" in err and err.count("pstm synthetic:") == 1
    assert segy.stat().st_mtime_ns == before
    assert main(["synthetic", "--config", str(config)]) == 1
    assert "--segy FILE and/or --zarr DIR" in capsys.readouterr().err


def test_pstm_synthetic_without_a_config_writes_the_demo_survey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In an empty directory (no config.yaml) it writes the built-in demo survey."""
    from pstm.config import PstmConfig
    from pstm.io.traces import open_traces
    from pstm.synthetic import make_survey

    monkeypatch.chdir(tmp_path)
    assert main(["synthetic", "--zarr", "demo"]) == 0
    assert "the built-in defaults" in capsys.readouterr().out
    data, _, _ = make_survey(PstmConfig().synthetic)
    assert open_traces(tmp_path / "demo" / "traces.zarr").ntr == data.shape[0]
