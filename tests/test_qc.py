"""QC figures of a 2D line (one crossline): every panel has a width (a field trial found
the inline section, time slice and fold drawn as empty axes)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import zarr

from pstm.config import QcConfig
from pstm.qc import IMAGE_FIGURES, write_qc


def one_crossline_image(path: Path, nil: int = 12, nt: int = 40) -> Path:
    """An image.zarr as pstm.assemble writes it, of a 2D line: (nil, 1, nt)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.standard_normal((nil, 1, nt)).astype(np.float32),
        "fold": np.full((nil, 1, nt), 7, np.int32),
        "gathers": rng.standard_normal((2, nil, 1, nt)).astype(np.float32),
        "inline": np.arange(100, 100 + nil, dtype=np.int32),
        "crossline": np.array([5], np.int32),
        "time": 0.004 * np.arange(nt),
        "offset_class": np.array([250.0, 750.0]),
    }
    for name, values in arrays.items():
        root.create_array(name, data=values)
    return path


def test_a_2d_lines_figures_have_width(tmp_path: Path) -> None:
    image = one_crossline_image(tmp_path / "image.zarr")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*identical low and high.*")
        written = write_qc(image, QcConfig(), tmp_path / "qc")
    assert sorted(p.stem for p in written) == sorted(IMAGE_FIGURES)
    assert all(p.stat().st_size > 0 for p in written)
