"""Stitch tile files into ``image.zarr``: a Zarr v3 group that ``xarray.open_zarr`` reads
as a Dataset with named dimensions (inline, crossline, time, offset_class)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from pstm.config import MigrationConfig, Normalization
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output
from pstm.migrate import read_tile
from pstm.plan import n_offset_classes


def _offset_class_centres(migration: MigrationConfig) -> np.ndarray:
    edges = np.asarray(migration.offset_classes_m, dtype=np.float64)
    if len(edges) < 2:
        return np.array([np.nan])
    return 0.5 * (edges[:-1] + edges[1:])


def normalized(values: NDArray[np.float32], fold: NDArray[np.int32]) -> NDArray[np.float32]:
    """``values / fold`` where the fold is positive, else 0 (``normalization: fold``)."""
    out = np.zeros(values.shape, dtype=np.float32)
    np.divide(values, fold, out=out, where=fold > 0)
    return out


def assemble(
    tile_paths: Sequence[str | Path],
    tile_shape: tuple[int, int],
    grid: OutputGrid,
    migration: MigrationConfig,
    out: str | Path,
) -> None:
    """Write image (stack), fold, gathers and coordinates. Tiles are disjoint regions, so
    the result does not depend on the order in which tiles finished."""
    ncls = n_offset_classes(migration)
    shape3 = (grid.nil, grid.nxl, grid.nt)
    chunks3 = (tile_shape[0], tile_shape[1], grid.nt)
    with atomic_output(out) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)

        def array(
            name: str,
            data_shape: tuple[int, ...],
            chunks: tuple[int, ...],
            dtype: str,
            dims: tuple[str, ...],
            **attrs: Any,
        ) -> zarr.Array:
            a = root.create_array(
                name,
                shape=data_shape,
                chunks=chunks,
                dtype=dtype,
                dimension_names=dims,
                fill_value=0,
            )
            a.attrs.update(attrs)
            return a

        image = array(
            "image",
            shape3,
            chunks3,
            "float32",
            ("inline", "crossline", "time"),
            long_name="migrated stack",
            units="1",
        )
        fold = array(
            "fold",
            shape3,
            chunks3,
            "int32",
            ("inline", "crossline", "time"),
            long_name="contributions per sample",
            units="1",
        )
        gathers = array(
            "gathers",
            (ncls, *shape3),
            (1, *chunks3),
            "float32",
            ("offset_class", "inline", "crossline", "time"),
            long_name="offset-class common-image gathers",
            units="1",
        )
        for path in tile_paths:
            extent, g, f = read_tile(path)
            il0, nil, xl0, nxl = (int(v) for v in extent)
            region = (slice(il0, il0 + nil), slice(xl0, xl0 + nxl), slice(None))
            stack = g.sum(axis=0, dtype=np.float32) if ncls > 1 else g[0]
            total = f.sum(axis=0, dtype=np.int32)
            if migration.normalization is Normalization.FOLD:
                g, stack = normalized(g, f), normalized(stack, total)
            gathers[(slice(None), *region)] = g
            image[region] = stack
            fold[region] = total
        x, y = grid.bin_xy()
        array("inline", (grid.nil,), (grid.nil,), "int64", ("inline",), long_name="inline number")[
            ...
        ] = grid.inlines
        array(
            "crossline",
            (grid.nxl,),
            (grid.nxl,),
            "int64",
            ("crossline",),
            long_name="crossline number",
        )[...] = grid.crosslines
        array(
            "time",
            (grid.nt,),
            (grid.nt,),
            "float64",
            ("time",),
            long_name="two-way time",
            units="s",
        )[...] = grid.times
        centres = _offset_class_centres(migration)
        array(
            "offset_class",
            (ncls,),
            (ncls,),
            "float64",
            ("offset_class",),
            long_name="offset class centre",
            units="m",
            edges_m=list(migration.offset_classes_m),
        )[...] = centres
        array(
            "x",
            x.shape,
            x.shape,
            "float64",
            ("inline", "crossline"),
            long_name="bin centre x",
            units="m",
        )[...] = x
        array(
            "y",
            y.shape,
            y.shape,
            "float64",
            ("inline", "crossline"),
            long_name="bin centre y",
            units="m",
        )[...] = y
        root.attrs.update(
            {
                "grid": {
                    "origin_x_m": grid.ox,
                    "origin_y_m": grid.oy,
                    "rotation_deg": grid.rotation_deg,
                    "inline_spacing_m": grid.dil,
                    "crossline_spacing_m": grid.dxl,
                },
                "coordinates": "x y",
            }
        )
        # consolidated metadata: xarray.open_zarr reads it without a warning. Zarr 3 warns
        # that format 3 does not specify it yet; that is known here, not news to a user.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="Consolidated metadata is currently not part",
                category=UserWarning,
            )
            zarr.consolidate_metadata(str(tmp))
