"""The built-in synthetic survey written block by block equals the survey made at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from pstm import synthetic
from pstm.config import SyntheticConfig
from tests.helpers import TINY


@pytest.mark.parametrize("block", [7, 64])
def test_written_survey_equals_the_survey_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Blocks of 7 or 64 traces (the last one shorter), each made while the one before is
    written, noise drawn block after block: the same traces as one block, bit for bit."""
    cfg = SyntheticConfig.model_validate({**TINY["synthetic"], "noise_rms": 0.05})
    data, _, truth = synthetic.make_survey(cfg)  # one block (fewer traces than the default)
    assert data.shape[0] % block != 0 and data.shape[0] > 2 * block
    monkeypatch.setattr(synthetic, "SYNTHETIC_BLOCK_TRACES", block)
    paths = (tmp_path / "t.zarr", tmp_path / "h.parquet", tmp_path / "truth.json")
    assert synthetic.write_survey(cfg, *paths) == data.shape[0]
    np.testing.assert_array_equal(zarr.open_array(str(paths[0]), mode="r")[:], data)
    assert json.loads(paths[2].read_text()) == json.loads(json.dumps(truth))
    assert np.abs(data).max() > 0.5  # events, not only noise
