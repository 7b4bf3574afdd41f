"""MLX backend: the reference operator (:mod:`pstm.kernels._numpy`) as whole-array
operations in ``mlx.core``, on Apple GPUs through Metal and on Linux CPUs (``mlx[cpu]``).

Formulation: traces go in blocks of ``B`` traces; each block's terms are (B, columns, time)
arrays built with the reference's float32 operations in the reference's order (MLX runs
each element-wise operation as its own kernel, so nothing is contracted into fused
multiply-adds on the CPU), then summed over the block's traces of each offset class and
added to the gathers. MLX evaluates lazily: each block is evaluated before the next is
built, so memory stays bounded by about ``MLX_TEMPORARIES`` arrays of ``BLOCK_ELEMENTS``
float32 values. Sums over a block are tree reductions, so the gathers differ from the
reference's sequential sums by float32 rounding (~1e-7 relative); the fold is exact.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from numpy.typing import NDArray

from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, column_views
from pstm.kernels.operator import (
    NUMPY_TRACE_OPS,
    Prepared,
    prepare,
    require_exact_traveltime,
)

#: The trace preparation this backend uses (see :func:`pstm.kernels.get_trace_ops`): the
#: reference's numpy operations.
TRACE_OPS = NUMPY_TRACE_OPS

#: Elements (traces x columns x samples) of one block's arrays: 2**21 float32 = 8 MiB each.
BLOCK_ELEMENTS = 2**21
#: About how many block-sized arrays are alive while a block is evaluated (for the memory
#: note above: 2**21 elements x 4 bytes x 30 = 240 MiB at most).
MLX_TEMPORARIES = 30

F32 = np.float32
_HALF_PI = F32(1.5707963267948966)
_TAPER_COEFFICIENTS = (
    2.7557319223985893e-06, -0.0001984126984126984, 0.008333333333333333,
    -0.16666666666666666, 1.0,
)  # fmt: skip


def _f(value: float | np.floating) -> mx.array:
    """A float32 scalar (so no operation is promoted)."""
    return mx.array(float(F32(value)), dtype=mx.float32)


def _taper01(z: mx.array) -> mx.array:
    """:func:`pstm.kernels.operator.taper01`, operation for operation."""
    x = mx.minimum(mx.maximum(z, _f(0.0)), _f(1.0)) * _f(_HALF_PI)
    x2 = x * x
    p = mx.full(x.shape, _f(-2.505210838544172e-08), dtype=mx.float32)
    for coef in _TAPER_COEFFICIENTS:
        p = _f(coef) + x2 * p
    sine = x * p
    return mx.where(x >= _f(_HALF_PI), _f(1.0), sine * sine)


def _block(
    p: Prepared, t: dict[str, mx.array], k0: int, k1: int
) -> tuple[mx.array, mx.array, mx.array]:
    """Contribution and validity (B, ncol, nt) of traces k0..k1-1, and their classes."""
    sx, sy = t["sx"][k0:k1, None], t["sy"][k0:k1, None]
    rx, ry = t["rx"][k0:k1, None], t["ry"][k0:k1, None]
    sxr, syr = sx - t["x"][None, :], sy - t["y"][None, :]
    rxr, ryr = rx - t["x"][None, :], ry - t["y"][None, :]
    ds2 = (sxr * sxr + syr * syr)[:, :, None]
    dr2 = (rxr * rxr + ryr * ryr)[:, :, None]
    mxr, myr = (sxr + rxr) * _f(0.5), (syr + ryr) * _f(0.5)
    d2 = (mxr * mxr + myr * myr)[:, :, None]
    visit = t["rout2"][None] >= d2
    sl2, th2 = t["sl2"][None], t["th2"][None, None, :]
    qs = th2 + ds2 * sl2  # >= LEG_TIME_MIN_S^2: th2 is floored there (QMIN_TABLE)
    qr = th2 + dr2 * sl2
    ts, tr = mx.sqrt(qs), mx.sqrt(qr)
    tt = ts + tr
    tstr = ts * tr
    inv_p2 = _f(1.0) / (qs * qr)  # 1 / (ts tr)^2
    s = (tt - _f(p.t0_in)) * _f(p.inv_h)
    smax = _f(p.n_valid - 1)
    valid = (s >= _f(0.0)) & (s <= smax) & visit
    if p.stretch.size:
        valid = valid & (t["stretch"][None, None, :] * tt >= tstr)
    sc = mx.minimum(mx.maximum(s, _f(0.0)), smax)
    weight = t["wta"][None] * tt * ((qs + qr) * inv_p2) if p.wta.size else None
    taper_zone = visit & mx.logical_not(t["rin2"][None] >= d2)
    d = mx.sqrt(d2)
    taper = _taper01((t["ap"][None, None, :] - d) * _f(p.inv_ap_taper)) * _taper01(
        (t["ang"][None] - d) * t["inv_ang_taper"][None]
    )
    taper = mx.where(taper_zone, taper, _f(1.0))
    nb = k1 - k0
    shape = (nb, -1)
    if p.aa_data.size:
        # operator.antialias_pair's and antialias_y's float32 operations in their order
        # (AA_RULE)
        kxx, kxy2, kyy = (_f(v) for v in p.aa_form)
        ks = ((kxx * sxr) * sxr + (kyy * syr) * syr + (kxy2 * sxr) * syr)[:, :, None]
        kr = ((kxx * rxr) * rxr + (kyy * ryr) * ryr + (kxy2 * rxr) * ryr)[:, :, None]
        ksr = _f(2.0) * ((kxx * sxr) * rxr + (kyy * syr) * ryr) + kxy2 * (sxr * ryr + syr * rxr)
        y = sl2 * sl2 * (ks * qr + kr * qs + ksr[:, :, None] * tstr) * inv_p2
        octave = mx.right_shift(mx.view(y, mx.int32), 23) - 127
        level = mx.minimum(mx.maximum(octave + 1, 0), p.aa_levels - 1)
        i = (sc + _f(0.5)).astype(mx.int32) + level * (p.n_valid + 1)
        value = mx.take_along_axis(t["aa_data"][k0:k1], i.reshape(shape), axis=1)
    elif p.nearest:
        i = (sc + _f(0.5)).astype(mx.int32)
        value = mx.take_along_axis(t["data"][k0:k1], i.reshape(shape), axis=1)
    else:
        i = sc.astype(mx.int32)
        w = (sc - i.astype(mx.float32)).reshape(shape)
        rows = t["data"][k0:k1]
        lo = mx.take_along_axis(rows, i.reshape(shape), axis=1)
        hi = mx.take_along_axis(rows, (i + 1).reshape(shape), axis=1)
        value = lo + w * (hi - lo)
    value = value.reshape(sc.shape)
    if weight is not None:
        value = value * weight
    value = value * taper * valid.astype(mx.float32)
    return value, valid, t["cls"][k0:k1]


def run_prepared(p: Prepared, gathers: NDArray[np.float32], fold: NDArray[np.int32]) -> int:
    """Add the contributions of a prepared problem to gathers/fold (ncls, ncol, nt)."""
    require_exact_traveltime(p, "mlx")
    ncls, ncol, nt = gathers.shape
    arrays = {
        "data": p.data, "aa_data": p.aa_data, "sx": p.sx, "sy": p.sy, "rx": p.rx,
        "ry": p.ry, "cls": p.cls, "x": p.x, "y": p.y, "th2": p.th2, "sl2": p.sl2,
        "rout2": p.rout2, "rin2": p.rin2, "ap": p.ap, "ang": p.ang,
        "inv_ang_taper": p.inv_ang_taper, "wta": p.wta, "stretch": p.stretch,
    }  # fmt: skip
    t = {name: mx.array(np.ascontiguousarray(a)) for name, a in arrays.items()}
    g_acc = [mx.zeros((ncol, nt), dtype=mx.float32) for _ in range(ncls)]
    f_acc = [mx.zeros((ncol, nt), dtype=mx.int32) for _ in range(ncls)]
    block = max(1, BLOCK_ELEMENTS // max(ncol * nt, 1))
    classes = mx.arange(ncls, dtype=mx.int32)
    for k0 in range(0, p.ntr, block):
        k1 = min(p.ntr, k0 + block)
        value, valid, cls = _block(p, t, k0, k1)
        member = (cls[:, None] == classes[None, :])[:, :, None, None]  # (B, ncls, 1, 1)
        for g in range(ncls):
            g_acc[g] = g_acc[g] + mx.where(member[:, g], value, _f(0.0)).sum(axis=0)
            f_acc[g] = f_acc[g] + (member[:, g] & valid).astype(mx.int32).sum(axis=0)
        mx.eval(*g_acc, *f_acc)
    g_host = np.stack([np.array(a) for a in g_acc])
    f_host = np.stack([np.array(a) for a in f_acc])
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


__all__ = ["TRACE_OPS", "migrate", "run_prepared"]
