"""Pre-stack traces in Zarr v3: a 2D float32 array (n_traces x n_samples), chunked along
traces, with attributes ``sample_interval_s`` and ``start_time_s``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pstm.errors import InputDataError, InputFileNotFoundError
from pstm.io.atomic import atomic_output

if TYPE_CHECKING:
    import zarr

# zarr (about 0.1 s to import) is imported where traces are opened or written, not with
# this module: the Snakefile's parse and the jobs that read no traces (coverage, velocity,
# summary, ...) import pstm.stages, and through it this module, without needing it

#: Traces per Zarr chunk when pstm writes traces (about 1-4 MB per chunk for typical ns).
TRACE_CHUNK = 1024
DT_ATTR = "sample_interval_s"
T0_ATTR = "start_time_s"


def create_trace_array(path: str | Path, ntr: int, ns: int, compressed: bool = True) -> Any:
    """A new, empty trace array (ntr x ns float32, chunks of TRACE_CHUNK traces) at
    ``path``, the layout every writer of traces uses; ``compressed``: zarr's default codec
    (else raw samples). The caller writes it under a temporary name
    (:func:`pstm.io.atomic.atomic_output`) and sets the sampling attributes."""
    import zarr

    return zarr.create_array(
        store=str(path),
        shape=(ntr, ns),
        chunks=(min(TRACE_CHUNK, max(1, ntr)), ns),
        dtype="float32",
        zarr_format=3,
        compressors="auto" if compressed else None,
    )


@contextmanager
def trace_writer(path: str | Path, ntr: int, ns: int, t0: float, dt: float) -> Iterator[Any]:
    """A new trace array (:func:`create_trace_array`) to fill by slices of traces, e.g.
    ``arr[lo:hi] = block``: written under a temporary name and renamed into place, with
    its sampling attributes, when the block exits without an error."""
    with atomic_output(path) as tmp:
        arr = create_trace_array(tmp, ntr, ns)
        yield arr
        arr.attrs.update({DT_ATTR: float(dt), T0_ATTR: float(t0)})


def write_traces(path: str | Path, data: NDArray[np.float32], t0: float, dt: float) -> None:
    """Write a trace array atomically."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    with trace_writer(path, data.shape[0], data.shape[1], t0, dt) as arr:
        arr[...] = data


@dataclass(frozen=True)
class TraceStore:
    """Read access to a trace array: only the requested traces are read."""

    path: Path
    array: zarr.Array
    t0: float
    dt: float

    @property
    def ntr(self) -> int:
        return int(self.array.shape[0])

    @property
    def ns(self) -> int:
        return int(self.array.shape[1])

    def read(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """Traces ``ids`` as float32 (sorted ascending, each chunk is read once). One slab
        read per run of ids within a chunk (the rows from the first to the last id of the
        run), then the rows picked: about half the time of zarr's orthogonal selection of
        the same ids (a tile's 57,000 of 100,000 traces: 0.11-0.13 s against 0.17-0.21 s),
        and no more memory than one chunk (which zarr decodes whole either way)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.ns), dtype=np.float32)
        if len(ids) == 0:
            return out
        if ids.min() < 0 or ids.max() >= self.ntr:
            raise InputDataError(
                f"{self.path}: trace ids {int(ids.min())}..{int(ids.max())} requested, the "
                f"array has traces 0..{self.ntr - 1}; rebuild the index from these traces"
            )
        chunk = ids // self.array.chunks[0]
        starts = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1]
        ends = np.r_[starts[1:], len(ids)]
        lows = np.minimum.reduceat(ids, starts)
        highs = np.maximum.reduceat(ids, starts) + 1
        for a, b, lo, hi in zip(starts, ends, lows, highs, strict=True):
            slab = np.asarray(self.array[int(lo) : int(hi)])
            out[a:b] = slab[ids[a:b] - lo]
        return out


def open_traces(path: str | Path) -> TraceStore:
    """Open and validate a trace array (shape, dtype, sampling attributes)."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(
            f"traces not found: {path} (looked for {path.resolve()}; set input.traces_zarr "
            "to a Zarr v3 array, a relative path is taken from the workflow directory)"
        )
    try:
        arr = zarr.open_array(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for "not an array"
        raise InputDataError(f"{path} is not a readable Zarr array: {exc}") from None
    if arr.ndim != 2:
        raise InputDataError(
            f"{path}: traces must be 2D (n_traces x n_samples), got shape {arr.shape}"
        )
    if arr.shape[1] < 2:
        raise InputDataError(f"{path}: traces need at least 2 samples, got {arr.shape[1]}")
    attrs = dict(arr.attrs)
    for key in (DT_ATTR, T0_ATTR):
        if key not in attrs:
            raise InputDataError(
                f"{path}: missing attribute '{key}' (seconds); add it to the array's attributes"
            )
    try:
        dt, t0 = float(attrs[DT_ATTR]), float(attrs[T0_ATTR])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputDataError(
            f"{path}: attributes {DT_ATTR}/{T0_ATTR} must be numbers (seconds)"
        ) from None
    if not np.isfinite(dt) or dt <= 0:
        raise InputDataError(
            f"{path}: attribute {DT_ATTR}={dt} must be a positive number of seconds"
        )
    if not np.isfinite(t0):
        raise InputDataError(f"{path}: attribute {T0_ATTR}={t0} must be finite")
    return TraceStore(path=path, array=arr, t0=t0, dt=dt)
