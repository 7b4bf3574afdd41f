"""SEG-Y import: round trips through segyio, errors on bad files, bounded memory, and the
workflow on a SEG-Y file giving the same image as on Zarr + Parquet."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import segyio
import zarr

from pstm.config import SegyEndian, SegyInputConfig, SegySampleFormat, parse_config
from pstm.errors import ConfigError, InputDataError, InputFileNotFoundError
from pstm.io.headermap import ALL_WORDS, RAW_PREFIX, HeaderWord
from pstm.io.segy import import_segy, inspect_layout, write_segy
from tests.helpers import make_workdir, snakemake, tiny_config
from tests.segy_data import import_peak_rss_mb, raw_ieee_segy, survey_to_segy, survey_to_zarr

#: IBM floats keep 24 mantissa bits with a hexadecimal exponent: relative error < 16 * 2^-24.
IBM_RELATIVE = 2.0**-20


def _import(tmp: Path, segy: Path, **kw: object) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    cfg = SegyInputConfig.model_validate({"path": segy, **kw})
    import_segy(cfg, tmp / "traces.zarr", tmp / "headers.parquet")
    table = pq.read_table(tmp / "headers.parquet")
    cols = {c: table.column(c).to_numpy() for c in table.column_names}
    return zarr.open_array(str(tmp / "traces.zarr"), mode="r")[:], cols


@pytest.mark.parametrize(
    ("sample_format", "endian", "scalar"),
    [
        (SegySampleFormat.IBM, SegyEndian.BIG, -100),
        (SegySampleFormat.IEEE, SegyEndian.LITTLE, -100),
        (SegySampleFormat.IEEE, SegyEndian.BIG, 10),
    ],
)
def test_round_trip(
    tmp_path: Path, sample_format: SegySampleFormat, endian: SegyEndian, scalar: int
) -> None:
    segy = tmp_path / "survey.sgy"
    data, coords = survey_to_segy(segy, tiny_config(), sample_format, endian, scalar)
    traces, cols = _import(tmp_path, segy, endian=endian.value)
    for name, expected in coords.items():
        np.testing.assert_array_equal(cols[name], expected, err_msg=name)
    if sample_format is SegySampleFormat.IEEE:
        np.testing.assert_array_equal(traces, data)
    else:
        assert not np.array_equal(traces, data)  # IBM really was written
        np.testing.assert_allclose(traces, data, rtol=IBM_RELATIVE, atol=0)
    attrs = zarr.open_array(str(tmp_path / "traces.zarr"), mode="r").attrs
    assert attrs["sample_interval_s"] == 0.004 and attrs["start_time_s"] == 0.0
    # every header word is kept, plus the canonical and derived columns
    assert {RAW_PREFIX + name for name in ALL_WORDS} <= set(cols)
    assert {w.key for w in HeaderWord} <= set(cols)
    np.testing.assert_array_equal(cols["trace_id"], np.arange(len(data)))
    np.testing.assert_array_equal(cols[RAW_PREFIX + "SourceGroupScalar"], scalar)
    mx = 0.5 * (coords["source_x"] + coords["receiver_x"])
    np.testing.assert_allclose(cols["midpoint_x"], mx)


def test_chunks_geometry_and_header_overrides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2500 traces in 3 chunks, with inline/crossline numbers, coordinates at non-standard
    bytes (moved by config) and a start time."""
    ntr, ns = 2500, 16
    rng = np.random.default_rng(3)
    data = rng.standard_normal((ntr, ns)).astype(np.float32)
    sx = rng.uniform(0, 5000, ntr)
    headers: dict[HeaderWord | int, np.ndarray] = {
        HeaderWord.CDP_X: sx,  # sources stored in CDP X/Y ...
        HeaderWord.CDP_Y: sx + 1,
        HeaderWord.RECEIVER_X: sx + 250,
        HeaderWord.RECEIVER_Y: sx + 1,
        HeaderWord.INLINE: 100 + np.arange(ntr) // 50,
        HeaderWord.CROSSLINE: 7 + np.arange(ntr) % 50,
        ALL_WORDS["FieldRecord"]: np.arange(ntr) // 10,
    }
    write_segy(tmp_path / "f.sgy", data, headers, dt_s=0.002, t0_s=0.1)
    caplog.set_level(logging.INFO, logger="pstm")
    traces, cols = _import(
        tmp_path,
        tmp_path / "f.sgy",
        chunk_traces=1024,
        header_bytes={"source_x": 181, "source_y": 185},  # ... and read from there
    )
    np.testing.assert_array_equal(traces, data)
    np.testing.assert_array_equal(cols["source_x"], np.rint(sx * 100) / 100)
    np.testing.assert_array_equal(cols["inline"], 100 + np.arange(ntr) // 50)
    np.testing.assert_array_equal(cols["crossline"], 7 + np.arange(ntr) % 50)
    np.testing.assert_array_equal(cols[RAW_PREFIX + "FieldRecord"], np.arange(ntr) // 10)
    assert pq.ParquetFile(tmp_path / "headers.parquet").num_row_groups == 3
    progress = [r.message for r in caplog.records if "/2500 traces" in r.message]
    assert len(progress) == 3, progress
    attrs = zarr.open_array(str(tmp_path / "traces.zarr"), mode="r").attrs
    assert attrs["sample_interval_s"] == 0.002 and attrs["start_time_s"] == 0.1


def _small(tmp_path: Path, **headers: np.ndarray) -> Path:
    path = tmp_path / "small.sgy"
    n = 4
    words: dict[HeaderWord | int, np.ndarray] = {
        HeaderWord.SOURCE_X: np.arange(n) * 10.0,
        HeaderWord.RECEIVER_X: np.arange(n) * 10.0 + 100,
    }
    words.update({HeaderWord[k.upper()]: v for k, v in headers.items()})
    write_segy(path, np.ones((n, 8), np.float32), words, 0.004)
    return path


def _expect(path: Path, *fragments: str, **cfg: object) -> None:
    with pytest.raises(InputDataError) as info:
        import_segy(
            SegyInputConfig.model_validate({"path": path, **cfg}),
            path.parent / "t.zarr",
            path.parent / "h.parquet",
        )
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not (path.parent / "t.zarr").exists() and not (path.parent / "h.parquet").exists()


def test_not_segy(tmp_path: Path) -> None:
    short = tmp_path / "short.sgy"
    short.write_bytes(b"hello")
    _expect(short, "is not a SEG-Y file", "5 bytes", "input.segy.path")
    junk = tmp_path / "junk.sgy"
    junk.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    _expect(junk, "sample format code", "is not a SEG-Y file")


def test_truncated(tmp_path: Path) -> None:
    path = _small(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    _expect(path, "truncated", "3 whole traces", "copy it again")


def test_wrong_endian_says_which(tmp_path: Path) -> None:
    _expect(_small(tmp_path), "set input.segy.endian: big", endian="little")


def test_all_zero_coordinates(tmp_path: Path) -> None:
    zeros = np.zeros(4)
    path = _small(tmp_path, source_x=zeros, receiver_x=zeros)
    _expect(path, "every source and receiver coordinate is zero", "header_bytes", "byte 73")


def test_one_side_without_positions(tmp_path: Path) -> None:
    """Receiver positions at other bytes than the ones read: every receiver coordinate read
    is zero while the sources have positions. The midpoints would be wrong, silently."""
    path = _small(tmp_path, receiver_x=np.zeros(4))
    _expect(
        path,
        "every receiver coordinate is zero while the sources have positions",
        "receiver_x at byte 81, receiver_y at byte 85",
        "--header-byte",
    )
    from pstm.commands.init import read_segy_survey  # pstm init says the same

    with pytest.raises(InputDataError, match="every receiver coordinate is zero"):
        read_segy_survey(SegyInputConfig(path=path))


def test_interval_from_the_trace_header_when_the_binary_header_has_none(tmp_path: Path) -> None:
    """A binary header with a sample interval of 0: the first trace header's is used, as
    other readers do; with none there either, the error names both places."""
    path = _small(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[3216:3218] = b"\0\0"  # binary header bytes 3217-3218
    path.write_bytes(bytes(raw))
    assert inspect_layout(path, SegyEndian.BIG).dt_s == pytest.approx(0.004)
    raw[3600 + 116 : 3600 + 118] = b"\0\0"  # the first trace header's bytes 117-118
    path.write_bytes(bytes(raw))
    _expect(path, "bytes 3217-3218", "bytes 117-118", "Fix the file's binary header")


def test_parquet_headers_without_one_sides_positions(tmp_path: Path) -> None:
    """The same check for Zarr + Parquet input (pstm.io.headers.read_geometry)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pstm.io.headers import read_geometry

    xs = np.arange(4) * 10.0
    columns = {"source_x": xs, "source_y": xs, "receiver_x": np.zeros(4), "receiver_y": np.zeros(4)}
    pq.write_table(pa.table(columns), tmp_path / "h.parquet")
    with pytest.raises(InputDataError, match=r"every receiver coordinate is zero.*receiver_x"):
        read_geometry(tmp_path / "h.parquet")
    columns["receiver_x"] = xs + 100.0
    pq.write_table(pa.table(columns), tmp_path / "h.parquet")
    assert read_geometry(tmp_path / "h.parquet").ntr == 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match=r"input\.segy\.path"):
        import_segy(SegyInputConfig(path=tmp_path / "nope.sgy"), tmp_path / "t", tmp_path / "h")


def test_config_rejects_bad_header_byte() -> None:
    with pytest.raises(ConfigError, match=r"header_bytes\.source_x: .*182 is not the first byte"):
        parse_config(
            {
                "input": {
                    "kind": "segy",
                    "segy": {"path": "a.sgy", "header_bytes": {"source_x": 182}},
                }
            }
        )


def test_config_fields_are_the_header_table() -> None:
    from pstm.config import SegyHeaderBytes

    assert set(SegyHeaderBytes.model_fields) == {w.key for w in HeaderWord}
    assert all(SegyHeaderBytes().byte_of(w) == int(w) for w in HeaderWord)
    assert int(HeaderWord.SOURCE_X) == segyio.TraceField.SourceX


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Peak RSS of an import of a 4x larger file stays within a few chunks of the smaller."""
    ns, chunk = 250, 1024
    peaks = []
    for ntr in (20_000, 80_000):  # 21 and 83 MB
        segy = tmp_path / f"{ntr}.sgy"
        raw_ieee_segy(segy, ntr, ns)
        out = tmp_path / f"out{ntr}"
        peaks.append(import_peak_rss_mb(segy, out, chunk))
        assert zarr.open_array(str(out / "traces.zarr"), mode="r").shape == (ntr, ns)
        segy.unlink()
    growth = peaks[1] - peaks[0]
    assert growth < 25.0, f"peak RSS {peaks[0]:.0f} -> {peaks[1]:.0f} MiB"


@pytest.mark.slow
@pytest.mark.skipif(
    "PSTM_SEGY_MEMORY_MB" not in os.environ,
    reason="set PSTM_SEGY_MEMORY_MB (e.g. 5000) to import a file of that size",
)
def test_large_import_under_1_gb(tmp_path: Path) -> None:
    size_mb = float(os.environ["PSTM_SEGY_MEMORY_MB"])
    ns = 1000
    ntr = int(size_mb * 1e6 / (240 + 4 * ns))
    segy = tmp_path / "large.sgy"
    size = raw_ieee_segy(segy, ntr, ns)
    peak = import_peak_rss_mb(segy, tmp_path, chunk_traces=8192)
    print(f"\nimported {size / 1e6:.0f} MB ({ntr} traces): peak RSS {peak:.0f} MiB")
    assert peak < 1024


# --------------------------------------------------------------------------- workflow


@pytest.mark.workflow
def test_workflow_segy_equals_zarr(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    segy = data_dir / "survey.sgy"
    survey_to_segy(segy, tiny_config(), SegySampleFormat.IEEE, SegyEndian.LITTLE)
    traces, headers = survey_to_zarr(data_dir, tiny_config())
    images = {}
    for name, inp in {
        "segy": {"kind": "segy", "segy": {"path": str(segy), "endian": "little"}},
        "zarr": {"kind": "zarr", "traces_zarr": str(traces), "headers_parquet": str(headers)},
    }.items():
        work = tmp_path / name
        work.mkdir()
        make_workdir(work, {**tiny_config(), "input": inp})
        snakemake(work)
        images[name] = zarr.open_group(str(work / "results" / "image.zarr"), mode="r")
    assert (tmp_path / "segy" / "logs" / "import_segy" / "import_segy.log").exists()
    assert not (tmp_path / "zarr" / "results" / "input").exists()
    for array in ("image", "fold", "gathers"):
        np.testing.assert_array_equal(images["segy"][array][:], images["zarr"][array][:])
    assert np.abs(images["segy"]["image"][:]).max() > 0
