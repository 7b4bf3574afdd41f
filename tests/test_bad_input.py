"""The bad-input battery: each mistake a user can make gives a non-zero exit and one clear
message (what, where, how to fix) instead of a traceback, and leaves no output that a rerun
would trust. Each case runs the way a user would: the workflow on a tiny config (or
``pstm preflight``). Parse-time cases cost about a second each; the cases that need data
share one small Zarr + Parquet input written by the fixture."""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zarr

from pstm.config import SegyEndian, SegySampleFormat, SyntheticConfig
from pstm.io.headermap import HeaderWord
from pstm.io.segy import write_segy
from pstm.io.traces import write_traces
from pstm.synthetic import make_survey
from tests.helpers import TINY, make_workdir, snakemake, tiny_config
from tests.segy_data import COORDS, survey_to_segy
from tests.segy_data import survey as segy_survey
from tests.snapshot import freeze_pstm

pytestmark = pytest.mark.workflow


def fails_clearly(work: Path, *expect: str, env: dict[str, str] | None = None) -> str:
    """Run the workflow; it must fail with every ``expect`` fragment in its output and
    without a Python traceback. Returns the output."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    for fragment in expect:
        assert fragment in out, f"missing {fragment!r} in:\n{out}"
    assert not list(work.rglob("*.tmp-*")), "a temporary was left behind"
    return out


def fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def nothing_trusted(work: Path, *stage_outputs: str) -> None:
    """No tile, no image, and none of the failed stages' outputs exist."""
    res = work / "results"
    assert not list((res / "tiles").glob("*.npz")) if (res / "tiles").exists() else True
    assert not (res / "image.zarr").exists()
    for name in stage_outputs:
        assert not (res / name).exists(), f"results/{name} was left behind"


# ----------------------------------------------------------------- config, parse time


def test_malformed_yaml(tmp_path: Path) -> None:
    work = make_workdir(tmp_path, tiny_config())
    (work / "config.yaml").write_text("grid: {n_inline: 3\nmigration: [\n")
    fails_clearly(work, "config.yaml is not valid YAML", "line 2, column")
    assert not (work / "results").exists()
    # the pstm CLI names the file and the line
    proc = subprocess.run(
        [sys.executable, "-m", "pstm.cli", "preflight", "--config", "config.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "config.yaml is not valid YAML" in proc.stderr and "line" in proc.stderr


VELOCITY_TABLE = {"kind": "table"}

PARSE_TIME_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown key", {"grid": {"n_inlines": 3}}, ["grid.n_inlines: unknown key", "n_inline"]),
    ("wrong type", {"grid": {"n_inline": "many"}}, ["grid.n_inline", "'many'", "integer"]),
    ("invalid enum", {"migration": {"rho_filter": "4d"}}, ["migration.rho_filter", "'3d'"]),
    (
        "negative velocity",
        {"velocity": {**VELOCITY_TABLE, "table": {"time_s": [0, 1], "vrms_mps": [-1500, 2000]}}},
        ["velocity.table", "vrms_mps", "-1500"],
    ),
    (
        "NaN velocity",
        {"velocity": {**VELOCITY_TABLE, "table": {"time_s": [0, 1], "vrms_mps": [math.nan, 2000]}}},
        ["velocity.table", "vrms_mps", "nan"],
    ),
    (
        "velocity time not increasing",
        {
            "velocity": {
                **VELOCITY_TABLE,
                "table": {"time_s": [0, 1, 0.5], "vrms_mps": [1500, 2000, 2100]},
            }
        },
        ["velocity.table", "time_s", "increasing"],
    ),
    ("zero sample interval (synthetic)", {"synthetic": {"dt_s": 0}}, ["synthetic.dt_s", "0"]),
    (
        "tile larger than the grid",
        {"execution": {"tile_n_inline": 100}},
        ["execution.tile_n_inline=100 is larger than the grid", "'auto'"],
    ),
    ("tile size zero", {"execution": {"tile_n_inline": 0}}, ["execution.tile_n_inline", "0"]),
    (
        "memory budget too small",
        {"execution": {"memory_budget_mb": 50}},
        ["execution.memory_budget_mb=50 is too small", "raise the budget"],
    ),
]


@pytest.mark.parametrize(
    ("override", "expect"),
    [c[1:] for c in PARSE_TIME_CASES],
    ids=[c[0] for c in PARSE_TIME_CASES],
)
def test_parse_time_errors(tmp_path: Path, override: dict[str, Any], expect: list[str]) -> None:
    cfg = tiny_config()
    for section, values in override.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    work = make_workdir(tmp_path, cfg)
    out = fails_clearly(work, *expect)
    assert out.count("pstm: ") >= 1
    assert not (work / "results").exists() and not (work / "logs").exists()


def test_unavailable_backend_requested_explicitly(tmp_path: Path) -> None:
    # hide numba from the workflow's Python: sys.modules[name] = None makes find_spec fail
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['numba'] = None\n")
    work = make_workdir(fresh(tmp_path / "w"), tiny_config(migration={"backend": "numba"}))
    fails_clearly(
        work,
        "migration.backend: 'numba' cannot run here",
        "package 'numba' is not installed; install it with pip install numba",
        "Available on this machine: numpy",
        env={"PYTHONPATH": str(hide)},
    )
    assert not (work / "results").exists()


# ----------------------------------------------------------------- user data (Zarr + Parquet)


@pytest.fixture(scope="module")
def survey() -> tuple[np.ndarray, pa.Table]:
    data, table, _ = make_survey(SyntheticConfig.model_validate(TINY["synthetic"]))
    return data, table


def user_input(
    where: Path,
    survey: tuple[np.ndarray, pa.Table],
    *,
    data: np.ndarray | None = None,
    table: pa.Table | None = None,
    dt: float = 0.004,
    **input_options: Any,
) -> dict[str, Any]:
    """Write traces + headers under ``where``; returns a config that reads them."""
    where.mkdir(parents=True, exist_ok=True)
    write_traces(where / "traces.zarr", survey[0] if data is None else data, t0=0.0, dt=0.004)
    if dt != 0.004:  # a bad sample interval, as a foreign writer could leave it
        zarr.open_array(str(where / "traces.zarr"), mode="r+").attrs["sample_interval_s"] = dt
    pq.write_table(survey[1] if table is None else table, where / "headers.parquet")
    return tiny_config(
        input={
            "kind": "zarr",
            "traces_zarr": str(where / "traces.zarr"),
            "headers_parquet": str(where / "headers.parquet"),
            **input_options,
        }
    )


def test_missing_input_file(tmp_path: Path) -> None:
    cfg = tiny_config(
        input={
            "kind": "zarr",
            "traces_zarr": str(tmp_path / "nope.zarr"),
            "headers_parquet": str(tmp_path / "nope.parquet"),
        }
    )
    work = make_workdir(tmp_path, cfg)
    fails_clearly(work, f"traces not found: {tmp_path / 'nope.zarr'}", "set input.traces_zarr")
    assert not (work / "results").exists()


@pytest.mark.parametrize("missing", ["headers", "velocity"])
def test_missing_files_stop_the_workflow_at_its_start(
    tmp_path: Path, survey: Any, missing: str
) -> None:
    """The user's files that stages read in place (the Parquet headers of Zarr input, a
    velocity file) are checked when the workflow reads its config, before any job, so a
    rerun cannot silently keep outputs made from the old file (Snakemake skips a job whose
    input is missing while its outputs exist; tests/test_rerun.py shows it after a run).
    A velocity cube given as a Zarr directory counts as present."""
    from pstm.errors import InputFileNotFoundError
    from pstm.pipeline import prepare_run

    cfg = user_input(tmp_path / "in", survey)
    cube = tmp_path / "in" / "vrms.zarr"
    cube.mkdir()
    prepare_run({**cfg, "velocity": {"kind": "cube_zarr", "file": str(cube)}})  # present
    if missing == "headers":
        Path(cfg["input"]["headers_parquet"]).unlink()
        expect = r"headers not found: .*headers.parquet \(looked for /.*set input.headers_parquet"
    else:
        cfg["velocity"] = {"kind": "picks", "file": str(tmp_path / "picks.csv")}
        expect = r"velocity file not found: .*picks.csv \(looked for /.*kind picks"
    with pytest.raises(InputFileNotFoundError, match=expect):
        prepare_run(cfg)


@pytest.mark.parametrize("dt", [0.0, -0.004])
def test_bad_sample_interval(tmp_path: Path, survey: Any, dt: float) -> None:
    work = make_workdir(tmp_path, user_input(tmp_path / "in", survey, dt=dt))
    fails_clearly(work, f"attribute sample_interval_s={dt}", "must be a positive number")
    assert not (work / "results").exists()


def test_header_trace_count_mismatch(tmp_path: Path, survey: Any) -> None:
    table = survey[1].slice(0, survey[1].num_rows - 1)
    work = make_workdir(tmp_path, user_input(tmp_path / "in", survey, table=table))
    fails_clearly(
        work, f"has {table.num_rows} rows but", f"has {table.num_rows + 1} traces", "one row per"
    )
    nothing_trusted(work, "index")


def test_parquet_without_required_column(tmp_path: Path, survey: Any) -> None:
    table = survey[1].drop_columns(["receiver_y"])
    work = make_workdir(tmp_path, user_input(tmp_path / "in", survey, table=table))
    fails_clearly(work, "missing required column(s) ['receiver_y']", "in metres")
    nothing_trusted(work, "index")


def test_duplicate_trace_ids(tmp_path: Path, survey: Any) -> None:
    ids = np.arange(survey[1].num_rows)
    ids[5] = 3
    table = survey[1].set_column(0, "trace_id", pa.array(ids))
    work = make_workdir(tmp_path, user_input(tmp_path / "in", survey, table=table))
    fails_clearly(work, "duplicate trace_id values, e.g. [3]", "each row must describe")
    nothing_trusted(work, "index")


def test_non_finite_traces_named_then_zeroed(tmp_path: Path, survey: Any) -> None:
    data = survey[0].copy()
    data[7, 20] = np.nan
    data[30, 5] = np.inf
    work = make_workdir(fresh(tmp_path / "w"), user_input(tmp_path / "in", survey, data=data))
    fails_clearly(
        work, "trace 7 has a non-finite sample (NaN or Inf) at sample 20", "input.non_finite: zero"
    )
    nothing_trusted(work, "precondition/traces.zarr")
    # opting in to zeroing them: the stage that failed now passes, with finite traces
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["input"]["non_finite"] = "zero"
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "results/precondition/traces.zarr")
    assert "zeroed 2 non-finite samples in 2 traces" in proc.stderr
    traces = zarr.open_array(str(work / "results" / "precondition" / "traces.zarr"), mode="r")[:]
    assert np.isfinite(traces).all() and np.abs(traces).max() > 0


def test_grid_with_no_traces_within_aperture(tmp_path: Path, survey: Any) -> None:
    cfg = user_input(tmp_path / "in", survey)
    cfg["grid"] = {**cfg["grid"], "origin_x_m": 50_000.0, "origin_y_m": 80_000.0}
    work = make_workdir(fresh(tmp_path / "w"), cfg)
    out = fails_clearly(
        work,
        "no trace midpoint lies within the migration aperture (400 m) of the output grid",
        "the grid bins span x 50000.0..50175.0 m, y 80000.0..80150.0 m",
        "move the grid over the data",
    )
    assert "midpoints span x " in out
    nothing_trusted(work, "coverage.json")
    assert not (work / "logs" / "migrate").exists(), "a tile job ran"


def test_a_line_of_bins_over_areal_data_stops_the_auto_2d_rho_filter(
    tmp_path: Path, survey: Any
) -> None:
    """One crossline over the tiny 3D survey: rho_filter auto would take the 2D filter from
    the grid alone, but each bin sums over an area (a 45 deg phase error): the coverage
    check stops before any tile job and says what to set."""
    cfg = user_input(tmp_path / "in", survey)
    cfg["grid"] = {**cfg["grid"], "n_crossline": 1, "origin_y_m": 100.0}
    cfg["execution"] = {"tile_n_inline": "auto", "tile_n_crossline": "auto"}
    work = make_workdir(fresh(tmp_path / "w"), cfg)
    fails_clearly(
        work,
        "migration.rho_filter: auto chose 2d from the grid's single crossline",
        "the data are areal",
        "Set migration.rho_filter: 3d",
    )
    nothing_trusted(work, "coverage.json")
    assert not (work / "logs" / "migrate").exists(), "a tile job ran"


# ----------------------------------------------------------------- a disk that fills up


#: Larger than any file the workflow writes before the tiles, smaller than one tile file.
FILE_SIZE_LIMIT_BYTES = 24 * 1024


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


def test_disk_full_while_writing_a_tile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the same pstm source for both runs, whatever happens to the checkout meanwhile
    monkeypatch.setenv("PYTHONPATH", freeze_pstm(fresh(tmp_path / "src"))["PYTHONPATH"])
    # five offset classes make a tile file ~50 kB; the numpy backend writes no JIT cache
    cfg = tiny_config(
        migration={"backend": "numpy", "offset_classes_m": [0, 100, 200, 300, 400, 2000]}
    )
    work = make_workdir(fresh(tmp_path / "w"), cfg)
    snakemake(work)
    image = work / "results" / "image.zarr"
    reference = zarr.open_group(str(image), mode="r")["gathers"][:]
    tiles = sorted((work / "results" / "tiles").glob("*.npz"))
    assert tiles and all(t.stat().st_size > FILE_SIZE_LIMIT_BYTES for t in tiles)
    for t in tiles:
        t.unlink()
    shutil.rmtree(image)

    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    assert "could not write results/tiles/" in out and "File too large" in out, out
    assert "run the same command again" in out
    assert not list((work / "results" / "tiles").glob("*.npz")), "a partial tile was kept"
    assert not list((work / "results" / "tiles").glob(".*")), "a temporary was left behind"
    assert not image.exists()

    snakemake(work)  # space freed: the same command completes
    np.testing.assert_array_equal(zarr.open_group(str(image), mode="r")["gathers"][:], reference)


# ----------------------------------------------------------------- SEG-Y input


def segy_config(path: Path) -> dict[str, Any]:
    return tiny_config(input={"kind": "segy", "segy": {"path": str(path)}})


def test_file_that_is_not_segy(tmp_path: Path) -> None:
    path = tmp_path / "survey.sgy"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    work = make_workdir(fresh(tmp_path / "w"), segy_config(path))
    fails_clearly(work, f"{path} is not a SEG-Y file", "input.segy.path")
    assert not (work / "results").exists()


def test_truncated_segy(tmp_path: Path) -> None:
    path = tmp_path / "survey.sgy"
    survey_to_segy(path, tiny_config())
    path.write_bytes(path.read_bytes()[:-10])
    work = make_workdir(fresh(tmp_path / "w"), segy_config(path))
    fails_clearly(work, f"{path} is truncated", "copy it again")
    assert not (work / "results").exists()


def test_segy_with_all_zero_coordinates(tmp_path: Path) -> None:
    data, table, dt = segy_survey(tiny_config())
    zeros = np.zeros(len(data))
    headers: dict[HeaderWord | int, np.ndarray] = {w: zeros for w in COORDS}
    path = tmp_path / "survey.sgy"
    write_segy(path, data, headers, dt, 0.0, SegySampleFormat.IEEE, SegyEndian.BIG, -100)
    work = make_workdir(fresh(tmp_path / "w"), segy_config(path))
    fails_clearly(
        work, "every source and receiver coordinate is zero", "set input.segy.header_bytes"
    )
    nothing_trusted(work, "input/traces.zarr", "input/headers.parquet", "index")


def _segy_without_its_scalar(path: Path) -> Path:
    """The tiny survey stored in centimetres (coordinate scalar -100), then byte 71 zeroed,
    as a writer that forgot the scalar leaves a file: coordinates 100x too large."""
    import segyio

    survey_to_segy(path, tiny_config())
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        for i in range(f.tracecount):
            f.header[i] = {segyio.TraceField.SourceGroupScalar: 0}
    return path


def test_segy_with_a_missing_coordinate_scalar(tmp_path: Path) -> None:
    """The coordinates give offsets exactly 100x the offset word's (byte 37): the import
    stops and names the scalar, before any tile (the image would be a blur and only the
    export failed, telling to change the export's scalar)."""
    path = _segy_without_its_scalar(tmp_path / "survey.sgy")
    work = make_workdir(fresh(tmp_path / "w"), segy_config(path))
    fails_clearly(
        work,
        "give offsets 100 times the offset word's (byte 37)",
        "one of the two is wrong, most often the coordinate scalar",
        "input.segy.check_coordinate_scale",
    )
    nothing_trusted(work, "input/traces.zarr", "input/headers.parquet", "index")


def test_pstm_init_names_a_missing_coordinate_scalar(tmp_path: Path) -> None:
    """pstm init checks the same, and the check can be switched off where the offset word
    is what is wrong; a file with its scalar passes."""
    from pstm.commands.init import read_segy_survey
    from pstm.config import SegyInputConfig
    from pstm.io.segy import SegyFormatError

    path = _segy_without_its_scalar(tmp_path / "survey.sgy")
    with pytest.raises(SegyFormatError, match=r"byte 71 \(0\), give offsets 100 times"):
        read_segy_survey(SegyInputConfig(path=path))
    unscaled = read_segy_survey(SegyInputConfig(path=path, check_coordinate_scale=False))
    good = tmp_path / "good.sgy"
    survey_to_segy(good, tiny_config())
    scaled = read_segy_survey(SegyInputConfig(path=good))  # no error with its scalar
    np.testing.assert_allclose(unscaled.sx, 100.0 * scaled.sx)  # as the file has them
    # the command: stops with the message, or with the flag writes the switch into the config
    from pstm.cli import main
    from pstm.config import load_config

    out = tmp_path / "config.yaml"
    assert main(["init", str(path), "-o", str(out)]) == 1 and not out.exists()
    assert main(["init", str(path), "-o", str(out), "--no-check-coordinate-scale"]) == 0
    segy = load_config(out).input.segy
    assert segy is not None and segy.check_coordinate_scale is False
