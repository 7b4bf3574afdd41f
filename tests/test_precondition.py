"""The preconditioning stage (NaN/Inf check, rho filter) on a store of several chunks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm.config import NonFinitePolicy, RhoFilter
from pstm.errors import InputDataError
from pstm.io.traces import open_traces, write_traces
from pstm.plan import PRECONDITION_CHUNK_TRACES
from pstm.precondition import RHO_BLOCK_TRACES, apply_rho, precondition, rho_response


def test_precondition_in_threads_writes_every_chunk_in_order(tmp_path: Path) -> None:
    """Chunks filtered side by side land where they belong: the output equals the rho
    filter of the whole array, for one thread and for several."""
    rng = np.random.default_rng(3)
    ntr = 2 * PRECONDITION_CHUNK_TRACES + 123  # three chunks, the last one short
    data = rng.standard_normal((ntr, 40)).astype(np.float32)
    write_traces(tmp_path / "in.zarr", data, 0.0, 0.004)
    store = open_traces(tmp_path / "in.zarr")
    expected = apply_rho(data, 0.004, RhoFilter.THREE_D)
    for threads in (1, 2, 3):
        out = tmp_path / f"out{threads}.zarr"
        n = precondition(store, RhoFilter.THREE_D, NonFinitePolicy.ERROR, str(out), threads)
        assert n == ntr
        np.testing.assert_array_equal(zarr.open_array(str(out))[:], expected)


@pytest.mark.parametrize("rho", [RhoFilter.THREE_D, RhoFilter.TWO_D])
def test_rho_filter_in_blocks_equals_one_transform_per_trace(rho: RhoFilter) -> None:
    """apply_rho's blocks of RHO_BLOCK_TRACES (two whole ones and a short one here) give
    each trace exactly its own transform, computed here one trace at a time."""
    rng = np.random.default_rng(5)
    ns, dt = 37, 0.004
    data = rng.standard_normal((2 * RHO_BLOCK_TRACES + 7, ns)).astype(np.float32)
    response = rho_response(2 * ns, dt, rho).astype(np.complex64)
    expected = np.stack(
        [np.fft.irfft(np.fft.rfft(row, n=2 * ns) * response, n=2 * ns)[:ns] for row in data]
    ).astype(np.float32)
    np.testing.assert_array_equal(apply_rho(data, dt, rho), expected)


def test_precondition_in_threads_leaves_nothing_on_bad_input(tmp_path: Path) -> None:
    data = np.ones((PRECONDITION_CHUNK_TRACES + 10, 20), np.float32)
    data[PRECONDITION_CHUNK_TRACES + 3, 5] = np.nan  # in the second chunk
    write_traces(tmp_path / "in.zarr", data, 0.0, 0.004)
    out = tmp_path / "out.zarr"
    with pytest.raises(InputDataError, match=r"non-finite"):
        precondition(
            open_traces(tmp_path / "in.zarr"), RhoFilter.THREE_D, NonFinitePolicy.ERROR, str(out), 2
        )
    assert not out.exists()


def test_precondition_threads_use_the_cores_within_the_memory_budget() -> None:
    """As many threads as cores, no more chunks in flight than the per-job budget holds,
    at least one; a change in the memory model moves the cap (the test can fail)."""
    from pstm.config import ExecutionConfig
    from pstm.plan import (
        MEMORY_SAFETY_FACTOR,
        PRECONDITION_BYTES_PER_SAMPLE,
        PROCESS_BASELINE_MB,
        precondition_mem_mb,
        precondition_threads,
    )

    default = ExecutionConfig()
    assert precondition_threads(2, 750, default) == 2
    assert precondition_threads(1, 750, default) == 1
    chunk_mb = PRECONDITION_CHUNK_TRACES * 750 * PRECONDITION_BYTES_PER_SAMPLE / 2**20
    fit = int((default.memory_budget_mb / MEMORY_SAFETY_FACTOR - PROCESS_BASELINE_MB) // chunk_mb)
    assert 2 < fit < 64
    assert precondition_threads(64, 750, default) == fit
    assert precondition_threads(64, 750, ExecutionConfig(memory_budget_mb=8192)) > fit
    assert precondition_threads(64, 100_000, default) == 1  # huge traces: still one
    # the job declares the memory of the threads it gets: within the budget when they fit
    assert precondition_mem_mb(fit, 750) <= default.memory_budget_mb
    assert precondition_mem_mb(fit + 1, 750) > default.memory_budget_mb
    assert precondition_mem_mb(1, 750) == math.ceil(
        (PROCESS_BASELINE_MB + chunk_mb) * MEMORY_SAFETY_FACTOR
    )
