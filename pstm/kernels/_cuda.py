"""CUDA backend (numba-cuda): the reference operator (:mod:`pstm.kernels._numpy`) with one
GPU thread per output sample.

Parallel contract: thread ``i`` owns output sample (column ``c``, time ``it``) with
``i = c * nt + it`` and loops over the traces inside the thread, accumulating each offset
class in a register, then adds it to its own element of the device accumulators
``gathers[g, c, it]`` and ``fold[g, c, it]``: no two threads write the same memory, no
atomics. Consecutive threads of a block share a column, so their trace and geometry reads
are broadcasts and their table reads (``sl2[c, it]`` ...) are coalesced.

Traces are sorted by offset class on the host (stably, so each class keeps the reference's
summation order) and the kernel loops class by class over ``cstart[g] .. cstart[g + 1]``.
With one batch and zeroed outputs the sums are the reference's, bit for bit.

Device memory: the per-sample tables and the accumulators are staged once per call; the
traces go in batches of as many traces as fit in ``DEVICE_MEMORY_FRACTION`` of the free
device memory left after those (:func:`traces_per_batch`), so a tile whose traces do not fit
still runs, with one host-to-device copy per batch and one copy back at the end.

Floating point: NVVM contracts ``a * b + c`` into fused multiply-adds by default, even
without ``fastmath`` (numba-cuda 0.30 has no switch for it), which would round differently
from the reference and move sample positions. Every product therefore goes through
:func:`_mul`, libdevice's ``__fmul_rn``, which is never fused. Division and square root are
IEEE-rounded (numba-cuda's defaults without ``fastmath``: prec_div, prec_sqrt, no ftz).

The simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the same kernel as Python on the CPU; there
libdevice is not available and numpy float32 scalars round each product already, so
:func:`_mul` is a plain product.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda
from numba.cuda import libdevice
from numba.cuda.core import config as cuda_config
from numpy.typing import NDArray

from pstm.errors import BackendUnavailableError, PlanError
from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, column_views
from pstm.kernels._numba_traces import NUMBA_TRACE_OPS
from pstm.kernels.operator import (
    Prepared,
    prepare,
    require_exact_traveltime,
)

#: The trace preparation this backend uses (see :func:`pstm.kernels.get_trace_ops`): on the
#: host, compiled and parallel over traces (numba is installed with every backend).
TRACE_OPS = NUMBA_TRACE_OPS

#: True when numba-cuda runs kernels in its CPU simulator (tests; never chosen by auto).
SIMULATOR = bool(cuda_config.ENABLE_CUDASIM)
#: Threads per block: a multiple of the warp size; 128 keeps enough blocks per SM for
#: latency hiding while the kernel's ~60 registers per thread still allow full occupancy.
THREADS_PER_BLOCK = 128
#: Share of the free device memory (after the tables and accumulators) that one batch of
#: traces may use; the rest is headroom for the driver and other processes on the GPU.
DEVICE_MEMORY_FRACTION = 0.5
#: Bytes of geometry per trace on the device (sx, sy, rx, ry as float32).
GEOMETRY_BYTES_PER_TRACE = 4 * 4

F32 = np.float32
_HALF_PI = F32(1.5707963267948966)

if SIMULATOR:

    @cuda.jit(device=True)
    def _mul(a: np.float32, b: np.float32) -> np.float32:
        """Product of two float32 (numpy float32 scalars: rounded like the reference)."""
        return a * b

    @cuda.jit(device=True)
    def _octave(y: np.float32) -> int:
        """floor(log2 y) of a float32 y >= 0: its binary exponent (0 or denormal: -127; a
        negative y, from rounding, gives less)."""
        return int(np.float32(y).view(np.int32) >> 23) - 127

else:

    @cuda.jit(device=True)
    def _mul(a: np.float32, b: np.float32) -> np.float32:
        """Product of two float32, never contracted into a fused multiply-add."""
        return libdevice.fmul_rn(a, b)

    @cuda.jit(device=True)
    def _octave(y: np.float32) -> int:
        """floor(log2 y) of a float32 y >= 0: its binary exponent (0 or denormal: -127; a
        negative y, from rounding, gives less)."""
        return (libdevice.float_as_int(y) >> 23) - 127


@cuda.jit(device=True)
def _sqrt(x: np.float32) -> np.float32:
    """IEEE float32 square root (on the simulator, math.sqrt's double rounded to float32,
    which is the same number)."""
    return F32(math.sqrt(x))


@cuda.jit(device=True)
def _taper01(z: np.float32) -> np.float32:
    """:func:`pstm.kernels.operator.taper01`, operation for operation."""
    x = _mul(min(max(z, F32(0.0)), F32(1.0)), _HALF_PI)
    x2 = _mul(x, x)
    p = F32(-2.505210838544172e-08)
    p = F32(2.7557319223985893e-06) + _mul(x2, p)
    p = F32(-0.0001984126984126984) + _mul(x2, p)
    p = F32(0.008333333333333333) + _mul(x2, p)
    p = F32(-0.16666666666666666) + _mul(x2, p)
    p = F32(1.0) + _mul(x2, p)
    sine = _mul(x, p)
    return F32(1.0) if x >= _HALF_PI else _mul(sine, sine)


@cuda.jit(cache=True)  # compiled once per machine, not once per tile job
def _migrate_kernel(
    data: NDArray[np.float32],
    aa_data: NDArray[np.float32],
    sx: NDArray[np.float32],
    sy: NDArray[np.float32],
    rx: NDArray[np.float32],
    ry: NDArray[np.float32],
    cstart: NDArray[np.int32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    th2: NDArray[np.float32],
    sl2: NDArray[np.float32],
    rout2: NDArray[np.float32],
    rin2: NDArray[np.float32],
    ap: NDArray[np.float32],
    ang: NDArray[np.float32],
    inv_ang_taper: NDArray[np.float32],
    wta: NDArray[np.float32],
    stretch: NDArray[np.float32],
    fp: NDArray[np.float32],
    flags: NDArray[np.int32],
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> None:
    """One thread per output sample; see the module notes. ``fp`` = (t0_in, inv_h, smax,
    inv_ap_taper, the anti-aliasing constant k of :func:`pstm.kernels.operator.antialias_y`);
    ``flags`` = (anti-aliasing, true amplitude, stretch
    mute, nearest sample, highest anti-aliasing level). Tables of unused features may be
    placeholders: they are not read."""
    i = cuda.grid(1)
    ncol, nt = sl2.shape
    if i >= ncol * nt:
        return
    c = i // nt
    it = i - c * nt
    t0_in, inv_h, smax, inv_ap_taper = fp[0], fp[1], fp[2], fp[3]
    kxx, kxy2, kyy = fp[4], fp[5], fp[6]  # the anti-aliasing form (operator.antialias_form)
    use_aa, use_ta, use_st, nearest = flags[0] != 0, flags[1] != 0, flags[2] != 0, flags[3] != 0
    top = flags[4]
    stride = data.shape[1]  # M + 1 samples per anti-aliasing level
    zero, half, one = F32(0.0), F32(0.5), F32(1.0)
    xc, yc = x[c], y[c]
    q = th2[it]
    s2 = sl2[c, it]
    r_out2, r_in2 = rout2[c, it], rin2[c, it]
    ap_t, ang_t, iat = ap[it], ang[c, it], inv_ang_taper[c, it]
    wta_t = wta[c, it] if use_ta else zero
    stretch_t = stretch[it] if use_st else zero
    s2sq = _mul(s2, s2)  # (AA_RULE: operator.antialias_y)
    for g in range(cstart.shape[0] - 1):
        acc = zero
        n = 0
        for k in range(cstart[g], cstart[g + 1]):
            sxr, syr = sx[k] - xc, sy[k] - yc
            rxr, ryr = rx[k] - xc, ry[k] - yc
            mxr, myr = _mul(sxr + rxr, half), _mul(syr + ryr, half)
            d2 = _mul(mxr, mxr) + _mul(myr, myr)
            if not r_out2 >= d2:  # outside the aperture
                continue
            ds2 = _mul(sxr, sxr) + _mul(syr, syr)
            dr2 = _mul(rxr, rxr) + _mul(ryr, ryr)
            qs = q + _mul(ds2, s2)  # >= LEG_TIME_MIN_S^2: th2 is floored (QMIN_TABLE)
            qr = q + _mul(dr2, s2)
            ts, tr = _sqrt(qs), _sqrt(qr)
            t = ts + tr
            s = _mul(t - t0_in, inv_h)
            if not (s >= zero and s <= smax):
                continue
            tstr = _mul(ts, tr)
            if use_st and not _mul(stretch_t, t) >= tstr:
                continue
            sc = min(max(s, zero), smax)
            inv_p2 = one / _mul(qs, qr)  # 1 / (ts tr)^2
            if use_aa:
                # operator.antialias_pair, then antialias_y (AA_RULE)
                ks = (
                    _mul(_mul(kxx, sxr), sxr)
                    + _mul(_mul(kyy, syr), syr)
                    + _mul(_mul(kxy2, sxr), syr)
                )
                kr = (
                    _mul(_mul(kxx, rxr), rxr)
                    + _mul(_mul(kyy, ryr), ryr)
                    + _mul(_mul(kxy2, rxr), ryr)
                )
                ksr = _mul(F32(2.0), _mul(_mul(kxx, sxr), rxr) + _mul(_mul(kyy, syr), ryr)) + _mul(
                    kxy2, _mul(sxr, ryr) + _mul(syr, rxr)
                )
                norm2 = _mul(ks, qr) + _mul(kr, qs) + _mul(ksr, tstr)
                y_aa = _mul(_mul(s2sq, norm2), inv_p2)  # see operator.antialias_y
                level = min(max(_octave(y_aa) + 1, 0), top)  # see operator.antialias_level
                value = aa_data[k, level * stride + np.int32(sc + half)]
            elif nearest:
                value = data[k, np.int32(sc + half)]
            else:
                i0 = np.int32(sc)
                w = sc - F32(i0)
                a0 = data[k, i0]
                value = a0 + _mul(w, data[k, i0 + 1] - a0)
            if use_ta:
                weight = _mul(_mul(wta_t, t), _mul(qs + qr, inv_p2))
                value = _mul(value, weight)
            if not r_in2 >= d2:  # taper zone
                d = _sqrt(d2)
                taper = _mul(_taper01(_mul(ap_t - d, inv_ap_taper)), _taper01(_mul(ang_t - d, iat)))
                value = _mul(value, taper)
            acc += value
            n += 1
        gathers[g, c, it] += acc
        fold[g, c, it] += np.int32(n)


def traces_per_batch(free_bytes: float, fixed_bytes: int, bytes_per_trace: int, ntr: int) -> int:
    """Traces per host-to-device batch: as many as fit in ``DEVICE_MEMORY_FRACTION`` of the
    device memory left free after the tables and accumulators (``fixed_bytes``), at most all.
    Raises :class:`PlanError` when not even one trace fits."""
    budget = (free_bytes - fixed_bytes) * DEVICE_MEMORY_FRACTION
    if budget < bytes_per_trace:
        raise PlanError(
            f"cuda backend: a tile needs {fixed_bytes / 2**20:.0f} MiB of GPU memory for its "
            f"tables and outputs plus {bytes_per_trace / 2**20:.2f} MiB per trace batch, but "
            f"only {free_bytes / 2**20:.0f} MiB are free: make tiles smaller "
            "(execution.tile_n_inline / tile_n_crossline) or free the GPU"
        )
    if math.isinf(budget):  # the simulator reports infinite memory
        return max(ntr, 1)
    return max(1, min(ntr, int(budget // bytes_per_trace)))


def _check_device() -> None:
    if not SIMULATOR and not cuda.is_available():
        raise BackendUnavailableError(
            "migration.backend: 'cuda' cannot run here: the CUDA driver found no usable GPU "
            "(driver missing or too old, or the GPU is hidden by CUDA_VISIBLE_DEVICES); "
            "check nvidia-smi, or choose backend numba"
        )


def run_prepared(
    p: Prepared,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
    batch_traces: int | None = None,
) -> int:
    """Run the kernel on a prepared problem; gathers/fold are (ncls, ncol, nt) and are added
    to. ``batch_traces`` overrides the batch size (None: from free device memory)."""
    require_exact_traveltime(p, "cuda")
    _check_device()
    ncls, ncol, nt = gathers.shape
    use_aa, use_ta, use_st = p.aa_data.size > 0, p.wta.size > 0, p.stretch.size > 0
    placeholder = np.zeros((1, 1), dtype=np.float32)  # for a table of an unused feature
    tables = {
        "x": p.x, "y": p.y, "th2": p.th2, "sl2": p.sl2, "rout2": p.rout2, "rin2": p.rin2,
        "ap": p.ap, "ang": p.ang, "inv_ang_taper": p.inv_ang_taper,
        "wta": p.wta if use_ta else placeholder,
        "stretch": p.stretch if use_st else placeholder[0],
        "fp": np.array(
            [
                p.t0_in, p.inv_h, p.n_valid - 1, p.inv_ap_taper, *p.aa_form,
            ],
            dtype=np.float32,
        ),
        "flags": np.array(
            [use_aa, use_ta, use_st, p.nearest, max(p.aa_levels - 1, 0)], dtype=np.int32
        ),
    }  # fmt: skip
    fixed_bytes = sum(a.nbytes for a in tables.values()) + gathers.nbytes + fold.nbytes
    bytes_per_trace = (p.data.shape[1] + p.aa_data.shape[1]) * 4 + GEOMETRY_BYTES_PER_TRACE
    if batch_traces is None:
        free_bytes, _ = cuda.current_context().get_memory_info()
        batch_traces = traces_per_batch(free_bytes, fixed_bytes, bytes_per_trace, p.ntr)
    dev = {name: cuda.to_device(np.ascontiguousarray(a)) for name, a in tables.items()}
    g_dev = cuda.to_device(np.zeros(gathers.shape, dtype=np.float32))
    f_dev = cuda.to_device(np.zeros(fold.shape, dtype=np.int32))
    order = np.argsort(p.cls, kind="stable")  # by class, the reference's order within one
    blocks = (ncol * nt + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    aa_placeholder = cuda.to_device(placeholder)
    for k0 in range(0, p.ntr, batch_traces):
        idx = order[k0 : k0 + batch_traces]
        cstart = np.searchsorted(p.cls[idx], np.arange(ncls + 1), side="left").astype(np.int32)
        _migrate_kernel[blocks, THREADS_PER_BLOCK](
            cuda.to_device(p.data[idx]),
            cuda.to_device(p.aa_data[idx]) if use_aa else aa_placeholder,
            cuda.to_device(p.sx[idx]), cuda.to_device(p.sy[idx]),
            cuda.to_device(p.rx[idx]), cuda.to_device(p.ry[idx]),
            cuda.to_device(cstart),
            dev["x"], dev["y"], dev["th2"], dev["sl2"], dev["rout2"], dev["rin2"], dev["ap"],
            dev["ang"], dev["inv_ang_taper"], dev["wta"], dev["stretch"], dev["fp"],
            dev["flags"], g_dev, f_dev,
        )  # fmt: skip
    g_host = g_dev.copy_to_host()
    f_host = f_dev.copy_to_host()
    gathers += g_host
    fold += f_host
    return int(f_host.sum(dtype=np.int64))


def migrate(
    batch: TraceBatch,
    target: ImageTarget,
    options: KernelOptions,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> int:
    g, f = column_views(target, gathers, fold)
    return run_prepared(prepare(batch, target, options, TRACE_OPS), g, f)


__all__ = ["TRACE_OPS", "migrate", "run_prepared", "traces_per_batch"]
