"""The compile step covers every kernel a tile job runs: after ``warm_up`` of a run's
KernelVariant, migrating with that run's settings compiles (or loads) nothing more."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

#: Runs in a fresh interpreter (a dispatcher's signatures are per process): warm up, note
#: every numba dispatcher's signatures, migrate a small problem, print the ones that grew.
SCRIPT = """
import json, sys
import numba
import numpy as np
from pstm.bench import make_problem
from pstm.config import Backend, MigrationConfig
from pstm.kernels import _numba, _numba_traces, get_kernel
from pstm.migrate import KernelVariant, kernel_options, warm_up

cfg = MigrationConfig.model_validate(json.loads(sys.argv[1]))

def signatures():
    return {
        f"{m.__name__}.{name}": len(d.signatures)
        for m in (_numba, _numba_traces)
        for name, d in vars(m).items()
        if isinstance(d, numba.core.registry.CPUDispatcher)
    }

warm_up(KernelVariant.of(cfg), threads=1)
before = signatures()
p = make_problem(60, 6, 4, 40)
g = np.zeros((1, 6, 4, 40), np.float32)
get_kernel(Backend.NUMBA)(p.batch, p.target, kernel_options(cfg, 0.0, 1), g, np.zeros(g.shape, np.int32))
print(json.dumps(sorted(k for k, n in signatures().items() if n != before[k])))
"""

#: Migration settings that take different kernels (the default: the plain kernel with a
#: constant aperture's taper; an angle taper: the general kernel for the taper zones too;
#: weights and stretch mute: the general kernel alone; interpolated traveltimes: their own
#: plain kernel).
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "angle_taper": {"max_angle_deg": 60.0, "angle_taper_deg": 10.0},
    "weights_stretch": {"weights": "true_amplitude", "max_stretch": 1.0},
    "interpolated_traveltime": {"traveltime": "interpolated"},
    # anti-aliasing with a short cap (fewer levels) and without oversampling (factor 1):
    # neither may change the compiled kernel's type (a tuple of thresholds once did)
    "antialias_short_cap": {"antialias": "triangle", "antialias_max_samples": 4},
    "antialias_linear": {"antialias": "triangle", "interpolation": "linear"},
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_tile_job_compiles_nothing_after_warm_up(name: str) -> None:
    cfg = {"backend": "numba", "antialias_spacing_m": [25.0, 25.0], **SETTINGS[name]}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_numba_cache_dir_follows_the_kernel_sources() -> None:
    """The workflow's numba cache is one directory per version of pstm.kernels' sources:
    numba would not notice a change of _numba_traces alone in the kernels that inline it."""
    from pathlib import Path

    import pstm
    from pstm.pipeline import code_hash, numba_cache_dir

    d = numba_cache_dir()
    assert d.parent == Path(pstm.__file__).resolve().parent.parent / ".numba_cache"
    assert d.name == code_hash(("pstm.kernels",)) != code_hash(("pstm.kernels._numba",))
