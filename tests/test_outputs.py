"""Outputs users can open: image.zarr through xarray, and the SEG-Y export of the stack
and the gathers read back by segyio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segyio
import zarr

from pstm.config import ExportConfig, SegySampleFormat
from pstm.export import export_image
from tests.helpers import make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.workflow

EDGES_M = [0.0, 250.0, 500.0, 1000.0]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tiny_config(migration={"offset_classes_m": EDGES_M}, grid={"first_inline": 101})
    work = make_workdir(tmp_path_factory.mktemp("outputs"), config)
    snakemake(work)
    return work / "results"


def test_image_opens_with_xarray(results: Path) -> None:
    xr = pytest.importorskip("xarray")
    ds = xr.open_zarr(results / "image.zarr")
    root = zarr.open_group(str(results / "image.zarr"), mode="r")
    assert ds["image"].dims == ("inline", "crossline", "time")
    assert ds["fold"].dims == ("inline", "crossline", "time")
    assert ds["gathers"].dims == ("offset_class", "inline", "crossline", "time")
    np.testing.assert_array_equal(ds["inline"], np.arange(101, 109))
    np.testing.assert_array_equal(ds["crossline"], np.arange(1, 7))
    np.testing.assert_allclose(ds["time"], 0.004 * np.arange(100))
    np.testing.assert_array_equal(ds["offset_class"], [125.0, 375.0, 750.0])
    assert {"x", "y"} <= set(ds.coords) and ds["x"].dims == ("inline", "crossline")
    assert ds["time"].attrs["units"] == "s" and ds["x"].attrs["units"] == "m"
    assert ds["offset_class"].attrs["units"] == "m"
    assert ds["image"].dtype == np.float32 and ds["fold"].dtype == np.int32
    np.testing.assert_array_equal(ds["image"].values, root["image"][:])
    np.testing.assert_array_equal(ds["gathers"].values, root["gathers"][:])
    assert float(ds["x"].sel(inline=101, crossline=1)) == 175.0


def _check_geometry(f: segyio.SegyFile, path: Path, root: zarr.Group, repeat: int) -> None:
    inl = np.asarray(f.attributes(segyio.TraceField.INLINE_3D)[:])
    xl = np.asarray(f.attributes(segyio.TraceField.CROSSLINE_3D)[:])
    nil, nxl = root["x"].shape
    np.testing.assert_array_equal(inl, np.repeat(root["inline"][:], nxl * repeat))
    np.testing.assert_array_equal(xl, np.tile(np.repeat(root["crossline"][:], repeat), nil))
    scalar = np.asarray(f.attributes(segyio.TraceField.SourceGroupScalar)[:])
    assert (scalar == -100).all()
    for byte, name in ((segyio.TraceField.CDP_X, "x"), (segyio.TraceField.CDP_Y, "y")):
        stored = np.asarray(f.attributes(byte)[:]) / 100.0
        expected = np.repeat(np.asarray(root[name][:]).ravel(), repeat)
        np.testing.assert_allclose(stored, expected, atol=0.005 + 1e-9, rtol=0)
    np.testing.assert_allclose(f.samples, 4.0 * np.arange(100))
    # the file says what it is: SEG-Y rev 1, metres, fixed-length seismic traces numbered
    # from 1, and a textual header with the byte map and the scalar
    assert (f.bin[segyio.BinField.SEGYRevision], f.bin[segyio.BinField.SEGYRevisionMinor]) == (1, 0)
    assert f.bin[segyio.BinField.MeasurementSystem] == 1 and f.bin[segyio.BinField.TraceFlag] == 1
    ntr = f.tracecount
    for field in (segyio.TraceField.TRACE_SEQUENCE_LINE, segyio.TraceField.TRACE_SEQUENCE_FILE):
        np.testing.assert_array_equal(f.attributes(field)[:], np.arange(1, ntr + 1))
    assert (np.asarray(f.attributes(segyio.TraceField.TraceIdentificationCode)[:]) == 1).all()
    text = segyio.tools.wrap(f.text[0])
    assert "inline: byte 189, crossline: 193" in text and "coordinate scalar -100 at 71" in text
    assert "C39 SEG Y REV1" in text and "C40 END TEXTUAL HEADER" in text
    assert (np.asarray(f.attributes(segyio.TraceField.CoordinateUnits)[:]) == 1).all()
    # an ensemble is a bin: its traces are its offset classes, numbered from 1 at byte 25
    # (read as raw bytes, not by segyio's field names: its TraceNumber is byte 13); no
    # auxiliary traces (binary bytes 3213-3216)
    raw = np.fromfile(path, np.uint8)  # big endian: the export's default
    assert (_word(raw, 3213, 2), _word(raw, 3215, 2)) == (repeat, 0)
    trace_bytes = 240 + 4 * len(f.samples)
    heads = raw[3600:].reshape(ntr, trace_bytes)[:, :240]
    in_bin = heads[:, 24:28].copy().view(">i4").ravel()
    np.testing.assert_array_equal(in_bin, np.tile(np.arange(1, repeat + 1), ntr // repeat))
    assert not heads[:, 12:16].any(), "byte 13 is the field record's trace number: unset"


def _word(raw: np.ndarray, byte: int, size: int) -> int:
    """The big-endian integer at 1-based ``byte`` of ``raw``."""
    return int.from_bytes(raw[byte - 1 : byte - 1 + size].tobytes(), "big", signed=True)


def test_stack_segy_reads_back(results: Path) -> None:
    root = zarr.open_group(str(results / "image.zarr"), mode="r")
    image = root["image"][:]
    with segyio.open(results / "export" / "stack.sgy") as f:  # inline/crossline geometry
        np.testing.assert_array_equal(f.ilines, root["inline"][:])
        np.testing.assert_array_equal(f.xlines, root["crossline"][:])
        np.testing.assert_array_equal(segyio.tools.cube(f), image)
        _check_geometry(f, results / "export" / "stack.sgy", root, 1)


def test_gathers_segy_reads_back(results: Path) -> None:
    root = zarr.open_group(str(results / "image.zarr"), mode="r")
    gathers = root["gathers"][:]  # (class, inline, crossline, time)
    with segyio.open(results / "export" / "gathers.sgy") as f:
        np.testing.assert_array_equal(f.offsets, [125, 375, 750])
        cube = segyio.tools.cube(f)  # (inline, crossline, offset, time)
        np.testing.assert_array_equal(cube, gathers.transpose(1, 2, 0, 3))
        _check_geometry(f, results / "export" / "gathers.sgy", root, 3)


def test_fold_segy_reads_back(results: Path) -> None:
    """The fold (every class's together) in the stack's layout, its counts as samples."""
    root = zarr.open_group(str(results / "image.zarr"), mode="r")
    fold = root["fold"][:]
    assert fold.max() > 0
    with segyio.open(results / "export" / "fold.sgy") as f:
        np.testing.assert_array_equal(segyio.tools.cube(f), fold.astype(np.float32))
        _check_geometry(f, results / "export" / "fold.sgy", root, 1)


def test_ibm_export(results: Path, tmp_path: Path) -> None:
    cfg = ExportConfig(sample_format=SegySampleFormat.IBM, coordinate_scalar=-10)
    n_stack, n_gathers = export_image(
        results / "image.zarr", cfg, tmp_path / "s.sgy", tmp_path / "g.sgy", tmp_path / "f.sgy"
    )
    assert (n_stack, n_gathers) == (48, 144)
    image = zarr.open_group(str(results / "image.zarr"), mode="r")["image"][:]
    with segyio.open(tmp_path / "s.sgy") as f:
        assert int(f.bin[segyio.BinField.Format]) == 1
        np.testing.assert_allclose(segyio.tools.cube(f), image, rtol=2.0**-20, atol=0)
        assert (np.asarray(f.attributes(segyio.TraceField.SourceGroupScalar)[:]) == -10).all()


@pytest.mark.parametrize("block_bytes", [1, 3 * 4 * 1000])
def test_export_in_smaller_blocks_writes_the_same_files(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    """Whatever the reads' block size (one inline; a few; the image's chunk rows), the
    SEG-Y files are the same bytes."""
    monkeypatch.setattr("pstm.export.EXPORT_BLOCK_BYTES", block_bytes)
    outs = [tmp_path / n for n in ("s.sgy", "g.sgy", "f.sgy")]
    export_image(results / "image.zarr", ExportConfig(), *outs)
    for name, out in (("stack.sgy", "s.sgy"), ("gathers.sgy", "g.sgy"), ("fold.sgy", "f.sgy")):
        assert (tmp_path / out).read_bytes() == (results / "export" / name).read_bytes()
