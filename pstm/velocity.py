"""RMS velocity on the output grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pstm.config import VelocityConfig, VelocityKind
from pstm.errors import InputDataError
from pstm.grid import OutputGrid
from pstm.io.atomic import atomic_output


def vrms_of_time(velocity: VelocityConfig, times_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """v_rms at the given times for a laterally constant model."""
    times_s = np.asarray(times_s, dtype=np.float64)
    if velocity.kind is VelocityKind.CONSTANT:
        assert velocity.constant_mps is not None  # guaranteed by the model validator
        return np.full(times_s.shape, velocity.constant_mps)
    assert velocity.table is not None
    return np.interp(times_s, velocity.table.time_s, velocity.table.vrms_mps)


def build_velocity(velocity: VelocityConfig, grid: OutputGrid) -> NDArray[np.float32]:
    """v_rms at every output sample, shaped (n_inline, n_crossline, nt), float32."""
    v_t = vrms_of_time(velocity, grid.times).astype(np.float32)
    cube = np.broadcast_to(v_t, (grid.nil, grid.nxl, grid.nt)).copy()
    check_velocity(cube, "velocity")
    return cube


def check_velocity(cube: NDArray[np.float32], source: str) -> None:
    bad = ~np.isfinite(cube) | (cube <= 0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputDataError(
            f"{source}: v_rms must be finite and positive; first bad value {cube[idx]} at "
            f"(inline index, crossline index, time index) {idx}"
        )


def write_velocity(path: str | Path, cube: NDArray[np.float32]) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, cube)


def read_velocity(path: str | Path) -> NDArray[np.float32]:
    """Memory-mapped velocity cube (a tile reads only its part)."""
    cube: NDArray[np.float32] = np.load(path, mmap_mode="r")
    return cube
