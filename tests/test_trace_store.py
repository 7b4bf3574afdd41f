"""TraceStore.read: the requested traces, in order, whatever the chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm.errors import InputDataError
from pstm.io.traces import DT_ATTR, T0_ATTR, open_traces


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("order", ["sorted", "unsorted", "repeated"])
def test_read_returns_the_requested_traces(tmp_path: Path, chunk: int, order: str) -> None:
    rng = np.random.default_rng(chunk)
    data = rng.standard_normal((300, 11)).astype(np.float64)  # cast to float32 on read
    arr = zarr.create_array(
        store=str(tmp_path / "t.zarr"), shape=data.shape, chunks=(chunk, 11), dtype="float64"
    )
    arr[...] = data
    arr.attrs.update({DT_ATTR: 0.004, T0_ATTR: 0.0})
    store = open_traces(tmp_path / "t.zarr")
    ids = np.sort(rng.choice(300, 120, replace=False))
    if order == "unsorted":
        ids = rng.permutation(ids)
    elif order == "repeated":
        ids = np.sort(np.r_[ids, ids[::3], 0, 299])
    got = store.read(ids)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, data[ids].astype(np.float32))
    assert store.read(np.zeros(0, np.int64)).shape == (0, 11)


@pytest.mark.parametrize("bad", [-1, 300])
def test_read_outside_the_array_is_a_clear_error(tmp_path: Path, bad: int) -> None:
    arr = zarr.create_array(store=str(tmp_path / "t.zarr"), shape=(300, 4), dtype="float32")
    arr.attrs.update({DT_ATTR: 0.004, T0_ATTR: 0.0})
    with pytest.raises(InputDataError, match=r"traces 0\.\.299"):
        open_traces(tmp_path / "t.zarr").read(np.array([0, 5, bad]))
