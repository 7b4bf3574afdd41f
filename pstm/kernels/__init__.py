"""Kernel backends behind one registry keyed by :class:`pstm.config.Backend`.

A kernel is a plain function of arrays and scalars wrapped by :data:`KernelFn`: it adds the
contributions of one :class:`TraceBatch` to the gathers and fold of one
:class:`ImageTarget`, in place, and returns the number of contributions. Every backend
computes the same thing as :mod:`pstm.kernels._numpy`, the slow and obviously correct
reference that the tests use as the oracle.

The registry is the only place that maps a backend to its implementation. Asking for a
backend that cannot run is an error naming the reason; ``auto`` is resolved by
:func:`resolve_backend`, in the order of :data:`AUTO_ORDER`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pstm.config import (
    TRAVELTIME_MAX_ERROR_SAMPLES,
    TRAVELTIME_NODE_SAMPLES,
    AntiAlias,
    Backend,
    Interpolation,
    Traveltime,
    Weights,
)
from pstm.errors import BackendUnavailableError


@dataclass(frozen=True)
class TraceBatch:
    """Input traces and their geometry (world coordinates, metres)."""

    data: NDArray[np.float32]  # (ntr, ns)
    t0: float
    dt: float
    sx: NDArray[np.float64]
    sy: NDArray[np.float64]
    rx: NDArray[np.float64]
    ry: NDArray[np.float64]
    offset_class: NDArray[np.int32]  # class index of each trace, 0 .. n_offset_classes-1

    @property
    def ntr(self) -> int:
        return int(self.data.shape[0])


@dataclass(frozen=True)
class ImageTarget:
    """The output points of one tile: bin centres, time axis and v_rms at every sample."""

    x: NDArray[np.float64]  # (nx, ny)
    y: NDArray[np.float64]  # (nx, ny)
    t0: float
    dt: float
    vrms: NDArray[np.float32]  # (nx, ny, nt)
    #: origin of the float32 frame the kernels compute in. Tiles of one grid must share it
    #: (e.g. the grid centre), so that every tiling rounds alike; None = this target's centre.
    origin: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        nx, ny, nt = self.vrms.shape
        return int(nx), int(ny), int(nt)


@dataclass(frozen=True)
class KernelOptions:
    """Operator settings a kernel needs (built from :class:`pstm.config.MigrationConfig` by
    :func:`pstm.migrate.kernel_options`). The operator they define is written out in
    :mod:`pstm.kernels._numpy`; :mod:`pstm.kernels.operator` turns them into arrays."""

    aperture_m: float
    #: time-variant aperture (linear in time, constant outside); empty = ``aperture_m``
    aperture_time_s: tuple[float, ...] = ()
    aperture_table_m: tuple[float, ...] = ()
    aperture_taper_m: float = 0.0
    max_angle_deg: float = 90.0
    angle_taper_deg: float = 0.0
    max_stretch: float | None = None
    interpolation: Interpolation = Interpolation.OVERSAMPLED_NEAREST
    oversampling: int = 8
    weights: Weights = Weights.NONE
    antialias: AntiAlias = AntiAlias.NONE
    #: trace spacing (inline, crossline) of the anti-aliasing rule, m, and the inline
    #: direction's angle from +x (the grid's rotation), deg
    antialias_spacing_m: tuple[float, float] = (25.0, 25.0)
    antialias_rotation_deg: float = 0.0
    antialias_max_samples: int = 8
    traveltime: Traveltime = Traveltime.EXACT
    traveltime_node_samples: int = TRAVELTIME_NODE_SAMPLES
    traveltime_tolerance_samples: float = TRAVELTIME_MAX_ERROR_SAMPLES
    n_offset_classes: int = 1
    threads: int = 1

    @property
    def factor(self) -> int:
        """Samples per input sample of the trace the kernel reads (1 = as recorded)."""
        return 1 if self.interpolation is Interpolation.LINEAR else self.oversampling


def column_views(
    target: ImageTarget, gathers: NDArray[np.float32], fold: NDArray[np.int32]
) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """``gathers`` and ``fold`` (ncls, nx, ny, nt) as (ncls, nx * ny, nt) views, the layout
    every backend writes (one row per output column); refuses copies."""
    nx, ny, nt = target.shape
    g = gathers.reshape(gathers.shape[0], nx * ny, nt)
    f = fold.reshape(fold.shape[0], nx * ny, nt)
    if not (np.shares_memory(g, gathers) and np.shares_memory(f, fold)):
        raise ValueError("gathers and fold must be C-contiguous (ncls, nx, ny, nt) arrays")
    return g, f


class KernelFn(Protocol):
    def __call__(
        self,
        batch: TraceBatch,
        target: ImageTarget,
        options: KernelOptions,
        gathers: NDArray[np.float32],
        fold: NDArray[np.int32],
    ) -> int: ...


def _runs_anywhere() -> str | None:
    return None


def _cuda_simulated() -> bool:
    """numba-cuda's simulator is on (it reads this variable when numba.cuda is imported)."""
    value = os.environ.get(CUDA_SIMULATOR_ENV)  # None: not set
    return value is not None and value.strip() not in ("", "0")


def _cuda_device_reason() -> str | None:
    """Why no NVIDIA GPU can be used here, from files only: cheap, and CUDA is not
    initialised (the kernel checks the driver itself when it runs)."""
    if _cuda_simulated():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return (
            f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU (request a GPU for the job, "
            "e.g. workflow/profiles/slurm-gpu, or choose backend numba)"
        )
    if not any(Path(p).exists() for p in CUDA_DEVICE_FILES) and not any(
        Path("/dev").glob("nvidia[0-9]*")
    ):
        return (
            "no NVIDIA GPU on this machine (no /dev/nvidia* device): run on a GPU node "
            "(workflow/profiles/slurm-gpu) or choose backend numba; tests can set "
            f"{CUDA_SIMULATOR_ENV}=1 to run the kernel in numba-cuda's CPU simulator"
        )
    return None


def _cuda_auto_skip() -> str | None:
    if _cuda_simulated():
        return f"{CUDA_SIMULATOR_ENV} is set: the CUDA simulator is for tests, never for auto"
    return None


def _mlx_auto_skip() -> str | None:
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return None
    return "MLX runs on the CPU here (no Metal GPU): auto prefers the compiled numba backend"


@dataclass(frozen=True)
class _Entry:
    module: str  # module with a ``migrate`` function of type KernelFn
    requires: tuple[str, ...]  # importable packages it needs
    install_hint: str
    #: None if the backend can run here once its packages are installed, else why not
    device_reason: Callable[[], str | None] = _runs_anywhere
    #: None if ``auto`` may pick it, else why ``auto`` passes over it although it can run
    auto_skip: Callable[[], str | None] = _runs_anywhere
    #: the ``migration.traveltime`` modes it implements
    traveltimes: tuple[Traveltime, ...] = (Traveltime.EXACT, Traveltime.INTERPOLATED)


#: Environment variable that switches numba-cuda to its CPU simulator.
CUDA_SIMULATOR_ENV = "NUMBA_ENABLE_CUDASIM"
#: Device files whose presence means an NVIDIA GPU is visible (Linux; WSL2's GPU device).
CUDA_DEVICE_FILES = ("/dev/nvidiactl", "/dev/dxg")

_REGISTRY: dict[Backend, _Entry] = {
    Backend.NUMPY: _Entry("pstm.kernels._numpy", ("numpy",), "pip install numpy"),
    Backend.NUMBA: _Entry("pstm.kernels._numba", ("numba",), "pip install numba"),
    Backend.CUDA: _Entry(
        "pstm.kernels._cuda",
        ("numba_cuda",),
        "pip install -e '.[cuda]' (numba-cuda with the CUDA 12 toolkit wheels)",
        _cuda_device_reason,
        _cuda_auto_skip,
        (Traveltime.EXACT,),  # a GPU thread per sample: no square roots to save
    ),
    Backend.MLX: _Entry(
        "pstm.kernels._mlx",
        ("mlx",),
        "pip install -e '.[mlx]' (mlx; mlx[cpu] on Linux)",
        _runs_anywhere,
        _mlx_auto_skip,
        (Traveltime.EXACT,),
    ),
}

#: Order in which ``auto`` tries backends, fastest first: cuda where an NVIDIA GPU is
#: visible (a GPU runs this one-thread-per-sample kernel many times faster than a CPU;
#: never its simulator), then numba (every CPU core), then mlx only on Apple Silicon
#: (where it runs on the GPU; elsewhere it runs on the CPU, where numba is the compiled
#: backend; its speed against numba on a Mac is not measured yet, so numba comes first and
#: auto picks mlx only where numba cannot run), then the numpy reference.
AUTO_ORDER: tuple[Backend, ...] = (Backend.CUDA, Backend.NUMBA, Backend.MLX, Backend.NUMPY)


def registered_backends() -> list[Backend]:
    return list(_REGISTRY)


def unavailable_reason(
    backend: Backend, check_device: bool = True, traveltime: Traveltime = Traveltime.EXACT
) -> str | None:
    """None if ``backend`` can run here, else why not and how to fix it. With
    ``check_device`` False only the packages are checked (a cluster's head node has none
    of the GPUs its tile jobs get; the kernel checks the device where it runs)."""
    entry = _REGISTRY.get(backend)
    if entry is None:
        valid = ", ".join(b.value for b in _REGISTRY)
        return f"'{backend.value}' is not a kernel backend; registered: {valid}"
    for package in entry.requires:
        if importlib.util.find_spec(package) is None:
            return f"package '{package}' is not installed; install it with {entry.install_hint}"
    reason = entry.device_reason() if check_device else None
    if reason is None and traveltime not in entry.traveltimes:
        reason = (
            f"it does not implement migration.traveltime '{traveltime.value}' "
            f"(it implements: {', '.join(t.value for t in entry.traveltimes)})"
        )
    return reason


def resolve_backend(
    requested: Backend, check_device: bool = True, traveltime: Traveltime = Traveltime.EXACT
) -> tuple[Backend, str]:
    """Turn the configured backend into a concrete one, with the reason. Never falls back:
    an explicit backend that cannot run (here, or the ``traveltime`` mode) raises
    :class:`BackendUnavailableError`. ``check_device`` False
    (``execution.check_backend_device``) checks an explicit backend's packages only;
    ``auto`` always looks at this machine."""
    if requested is Backend.AUTO:
        skipped: list[str] = []
        for candidate in AUTO_ORDER:
            reason = (
                unavailable_reason(candidate, True, traveltime) or _REGISTRY[candidate].auto_skip()
            )
            if reason is None:
                why = f"auto: first available in order {[b.value for b in AUTO_ORDER]}"
                if skipped:
                    why += f"; skipped {'; '.join(skipped)}"
                return candidate, why
            skipped.append(f"{candidate.value}: {reason}")
        raise BackendUnavailableError(
            "migration.backend: auto found no usable backend: " + "; ".join(skipped)
        )
    reason = unavailable_reason(requested, check_device, traveltime)
    if reason is not None:
        available = [b.value for b in _REGISTRY if unavailable_reason(b, True, traveltime) is None]
        raise BackendUnavailableError(
            f"migration.backend: '{requested.value}' cannot run here: {reason}. "
            f"Available on this machine: {', '.join(available)} (or 'auto')."
        )
    if check_device:
        return requested, "requested explicitly"
    return requested, "requested explicitly (device checked by the tile jobs)"


def get_trace_ops(backend: Backend) -> Any:
    """The trace preparation a backend uses (``TRACE_OPS`` of its module: a
    :class:`pstm.kernels.operator.TraceOps`), e.g. to time the preparation alone."""
    get_kernel(backend)  # same checks
    return importlib.import_module(_REGISTRY[backend].module).TRACE_OPS


def get_kernel(backend: Backend) -> KernelFn:
    """The ``migrate`` function of a concrete backend (resolve ``auto`` first)."""
    if backend is Backend.AUTO:
        raise BackendUnavailableError(
            "get_kernel needs a resolved backend; call resolve_backend first"
        )
    reason = unavailable_reason(backend)
    if reason is not None:
        raise BackendUnavailableError(
            f"migration.backend: '{backend.value}' cannot run here: {reason}"
        )
    module = importlib.import_module(_REGISTRY[backend].module)
    fn: Callable[..., int] = module.migrate
    return fn
