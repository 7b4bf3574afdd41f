"""The synthetic survey migrates to its truth; tiling does not change the image."""

from __future__ import annotations

import numpy as np
import pytest

from pstm.config import Backend
from pstm.grid import OutputGrid
from tests.helpers import migrate_in_process, parse


@pytest.fixture(scope="module")
def default_image():
    cfg = parse({})
    gathers, fold, truth = migrate_in_process(cfg, Backend.NUMBA)
    return cfg, gathers.sum(axis=0), fold.sum(axis=0), truth


def test_diffractors_focus_at_truth(default_image) -> None:
    cfg, image, _, truth = default_image
    grid = OutputGrid.from_config(cfg.grid)
    for d in truth["diffractors"]:
        fil, fxl = grid.to_grid(np.array(d["x_m"]), np.array(d["y_m"]))
        k_true = (d["time_s"] - grid.t0) / grid.dt
        i0, j0, k0 = int(round(float(fil))), int(round(float(fxl))), int(round(k_true))
        w, wt = 4, 8
        sub = np.abs(image[i0 - w : i0 + w + 1, j0 - w : j0 + w + 1, k0 - wt : k0 + wt + 1])
        a, b, c = np.unravel_index(sub.argmax(), sub.shape)
        assert abs(i0 - w + a - float(fil)) <= 1.0, d
        assert abs(j0 - w + b - float(fxl)) <= 1.0, d
        assert abs(k0 - wt + c - k_true) <= 1.0, d


def test_flat_reflector_at_true_time(default_image) -> None:
    cfg, image, _, truth = default_image
    grid = OutputGrid.from_config(cfg.grid)
    flat = next(r for r in truth["reflectors"] if r["dip_deg"] == 0)
    k_true = (flat["time_s"] - grid.t0) / grid.dt
    # away from the grid edges, the trace-averaged peak is at the reflector time
    centre = image[10:-10, 6:-6].reshape(-1, grid.nt)
    k0 = int(round(k_true))
    window = np.abs(centre[:, k0 - 6 : k0 + 7]).mean(axis=0)
    assert abs(k0 - 6 + int(window.argmax()) - k_true) <= 1.0


@pytest.mark.parametrize("backend", [Backend.NUMPY, Backend.NUMBA])
def test_tiled_equals_single_tile(backend: Backend) -> None:
    from tests.helpers import tiny_config

    cfg = parse(tiny_config())
    g = OutputGrid.from_config(cfg.grid)
    whole, fold_whole, _ = migrate_in_process(cfg, backend)
    tiles = [
        (i, min(3, g.nil - i), j, min(4, g.nxl - j))
        for i in range(0, g.nil, 3)
        for j in range(0, g.nxl, 4)
    ]
    tiled, fold_tiled, _ = migrate_in_process(cfg, backend, tiles)
    assert np.abs(whole).max() > 0
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-6 * np.abs(whole).max())
    np.testing.assert_array_equal(fold_tiled, fold_whole)
