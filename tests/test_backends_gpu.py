"""Conformance of the accelerator backends with the numpy reference, without the hardware:
the cuda kernel in numba-cuda's CPU simulator, the mlx kernel on MLX's CPU device.

numba-cuda reads NUMBA_ENABLE_CUDASIM once, when numba.cuda is first imported, so the
simulated runs happen in one child process (this file run as a script with the variable
set), which prints its measurements as JSON; the tests here check them. The rest of the
test session never imports numba.cuda in simulator mode.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pstm.config import Backend
from pstm.errors import BackendUnavailableError, PlanError
from pstm.kernels import AUTO_ORDER, resolve_backend, unavailable_reason
from tests.test_kernels import FEATURES, random_problem, rel_l2, run, with_features

#: The conformance feature sets the GPU backends implement (traveltime: interpolated is a
#: CPU mode: tests/test_traveltime.py checks that they refuse it).
GPU_FEATURES = [name for name, settings in FEATURES.items() if "traveltime" not in settings]

REPO = Path(__file__).resolve().parents[1]
#: Problems for the simulator (one Python thread per output sample: keep them small):
#: (seed, nx, ny, nt, ntr, ncls).
SIM_CASES = [(1, 3, 2, 50, 40, 1), (3, 1, 1, 60, 40, 1), (4, 3, 2, 50, 40, 3)]
#: Problems for mlx (fast on the CPU): the same as tests/test_kernels.py.
MLX_CASES = [(1, 6, 5, 120, 150, 1), (2, 9, 1, 150, 200, 1), (3, 1, 1, 90, 80, 1), (4, 7, 4, 100, 150, 3)]  # fmt: skip
#: Traces per batch in the batched simulator run (forces several host-to-device batches).
SIM_SMALL_BATCH = 7
#: Compute capability the PTX test compiles for (H100).
PTX_COMPUTE_CAPABILITY = (9, 0)
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
HAS_MLX = importlib.util.find_spec("mlx") is not None


def _compare(g: np.ndarray, f: np.ndarray, n: int, ref: tuple[Any, Any, int]) -> dict[str, Any]:
    g_ref, f_ref, n_ref = ref
    return {
        "rel_l2": rel_l2(g.reshape(g_ref.shape), g_ref),
        "fold_diff": int(np.abs(f.reshape(f_ref.shape).astype(np.int64) - f_ref).sum()),
        "fold_ref": int(f_ref.sum()),
        "n": int(n),
        "n_ref": int(n_ref),
        "ref_abs": float(np.abs(g_ref).sum()),
    }


def _simulate() -> dict[str, Any]:
    """Child process body (NUMBA_ENABLE_CUDASIM=1): every case x feature through the cuda
    backend, a batched run, and what the registry says under the simulator."""
    from pstm.kernels import _cuda
    from pstm.kernels.operator import prepare

    out: dict[str, Any] = {"simulator": _cuda.SIMULATOR, "cases": {}}
    for case in SIM_CASES:
        for feature in GPU_FEATURES:
            batch, target, options = with_problem(case, feature)
            ref = run(Backend.NUMPY, batch, target, options)
            g, f, n = run(Backend.CUDA, batch, target, options)
            out["cases"][f"{case}-{feature}"] = _compare(g, f, n, ref)
    batch, target, options = with_problem(SIM_CASES[-1], "everything")
    ref = run(Backend.NUMPY, batch, target, options)
    g, f = np.zeros_like(ref[0]), np.zeros_like(ref[1])
    ncls, nx, ny, nt = g.shape
    n = _cuda.run_prepared(
        prepare(batch, target, options),
        g.reshape(ncls, nx * ny, nt),
        f.reshape(ncls, nx * ny, nt),
        batch_traces=SIM_SMALL_BATCH,
    )
    out["batched"] = _compare(g, f, n, ref)
    out["explicit"] = resolve_backend(Backend.CUDA)[0].value
    out["auto"] = resolve_backend(Backend.AUTO)
    return out


def _ptx_counts() -> dict[str, Any]:
    """Child process body (no simulator): compile the cuda kernel to PTX for an H100
    (sm_90) with the real NVVM, without a GPU, and count its float32 instructions."""
    import re
    import types as pytypes

    from numba import types
    from numba.cuda import dispatcher

    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        load_nvidia_dynamic_lib("nvvm")
    except Exception as exc:  # any failure to find NVVM: the test skips, saying why
        return {"skip": f"NVVM (CUDA compiler library) not found: {exc}"}
    # device functions ask the current device for its compute capability: stand in for one
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(
        compute_capability=PTX_COMPUTE_CAPABILITY
    )
    from numba import cuda

    from pstm.kernels import _cuda

    f1, f2, f3 = (types.Array(types.float32, n, "C") for n in (1, 2, 3))
    i1, i3 = types.Array(types.int32, 1, "C"), types.Array(types.int32, 3, "C")
    sig = (f2, f2, f1, f1, f1, f1, i1, f1, f1, f1, f2, f2, f2, f1, f2, f2, f2, f1, f1, i1, f3, i3)  # fmt: skip
    ptx, _ = cuda.compile_ptx(_cuda._migrate_kernel.py_func, sig, cc=PTX_COMPUTE_CAPABILITY)
    return {
        name: len(re.findall(pattern, ptx))
        for name, pattern in {
            "fma": r"\bfma\.[a-z.]*f32",
            "mul_rn": r"\bmul\.rn\.f32",
            "mul_plain": r"\bmul\.f32",
            "sqrt_rn": r"\bsqrt\.rn\.f32",
            "sqrt_approx": r"\bsqrt\.approx",
            "rcp_approx": r"\brcp\.approx",
            "div_approx": r"\bdiv\.(approx|full)",
        }.items()
    }


def with_problem(case: tuple[int, ...], feature: str) -> tuple[Any, Any, Any]:
    batch, target, options = random_problem(*case)
    return batch, target, with_features(options, feature)


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed (pip install -e '.[test]')")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_backends_gpu"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def _check(m: dict[str, Any]) -> None:
    assert m["n_ref"] > 0 and m["ref_abs"] > 0, "the problem must exercise the kernel"
    assert m["rel_l2"] < 1e-5
    # the same fold tolerance as tests/test_kernels.py
    assert m["fold_diff"] <= 1e-4 * m["fold_ref"]
    assert abs(m["n"] - m["n_ref"]) <= 1e-4 * m["n_ref"]


@pytest.mark.parametrize("feature", GPU_FEATURES)
@pytest.mark.parametrize("case", SIM_CASES)
def test_cuda_simulator_matches_reference(
    simulated: dict[str, Any], case: tuple[int, ...], feature: str
) -> None:
    assert simulated["simulator"], "the child process must run numba-cuda's simulator"
    _check(simulated["cases"][f"{tuple(case)}-{feature}"])


def test_cuda_batches_match_one_call(simulated: dict[str, Any]) -> None:
    _check(simulated["batched"])


def test_auto_never_picks_the_simulator(simulated: dict[str, Any]) -> None:
    assert simulated["explicit"] == "cuda"  # an explicit request runs on the simulator
    backend, why = simulated["auto"]
    assert backend != "cuda" and "simulator is for tests" in why


@pytest.mark.skipif(not HAS_MLX, reason="mlx is not installed (pip install -e '.[mlx]')")
@pytest.mark.parametrize("feature", GPU_FEATURES)
@pytest.mark.parametrize("case", MLX_CASES)
def test_mlx_matches_reference(case: tuple[int, ...], feature: str) -> None:
    batch, target, options = with_problem(case, feature)
    ref = run(Backend.NUMPY, batch, target, options)
    _check(_compare(*run(Backend.MLX, batch, target, options), ref))


def test_cuda_batch_size_from_free_memory() -> None:
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed")
    from pstm.kernels._cuda import DEVICE_MEMORY_FRACTION, traces_per_batch

    mib = 2**20
    assert traces_per_batch(1000 * mib, 200 * mib, mib, 10_000) == int(800 * DEVICE_MEMORY_FRACTION)
    assert traces_per_batch(1000 * mib, 200 * mib, mib, 10) == 10
    assert traces_per_batch(float("inf"), 200 * mib, mib, 10_000) == 10_000
    with pytest.raises(PlanError, match="make tiles smaller"):
        traces_per_batch(100 * mib, 200 * mib, mib, 10)


def test_cuda_without_gpu_is_an_error_naming_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    if HAS_NUMBA_CUDA:
        with pytest.raises(BackendUnavailableError, match="'cuda' cannot run here: CUDA_VISIB"):
            resolve_backend(Backend.CUDA)
    assert resolve_backend(Backend.AUTO)[0] is not Backend.CUDA


def test_missing_packages_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    missing = ("numba_cuda", "mlx")
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )
    assert "pip install -e '.[cuda]'" in str(unavailable_reason(Backend.CUDA))
    with pytest.raises(BackendUnavailableError, match=r"'mlx' cannot run here.*\.\[mlx\]"):
        resolve_backend(Backend.MLX)


def test_auto_order_is_documented_and_mlx_is_gpu_only() -> None:
    assert AUTO_ORDER == (Backend.CUDA, Backend.NUMBA, Backend.MLX, Backend.NUMPY)
    backend, why = resolve_backend(Backend.AUTO)
    if sys.platform != "darwin":
        assert backend is not Backend.MLX


def test_cuda_kernel_compiles_for_h100_without_fused_multiply_adds() -> None:
    """The simulator runs the kernel as Python: this compiles it for real (types, libdevice)
    and checks that no product is fused into an FMA and no approximate sqrt or division is
    used, so the GPU computes the reference's float32 operations."""
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed (pip install -e '.[test]')")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_backends_gpu", "ptx"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.splitlines()[-1])
    if "skip" in counts:
        pytest.skip(counts["skip"])
    assert counts["fma"] == 0, counts
    assert counts["mul_rn"] > 40 and counts["mul_plain"] == 0, counts
    assert counts["sqrt_rn"] > 0, counts
    assert counts["sqrt_approx"] == counts["rcp_approx"] == counts["div_approx"] == 0, counts


if __name__ == "__main__":
    print(json.dumps(_ptx_counts() if sys.argv[1:] == ["ptx"] else _simulate()))
