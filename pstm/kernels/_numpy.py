"""Reference kernel: the operator written out, vectorised over output samples, one trace at a
time. Slow and obviously correct: the tests use it as the oracle for every backend.

For trace k (source S, receiver R, midpoint M, offset class g) and output sample (x, tau),
v = v_rms(x, tau), all in float32 relative to the tile centre (see
:func:`pstm.kernels.operator.prepare` for the tables):

* aperture: the sample is visited only if d = |M - x| <= R_out(x, tau) = min(A(tau),
  tan(max_angle) v tau / 2), which is nondecreasing in tau; a cosine taper
  0.5 - 0.5 cos(pi min(z, 1)) (:func:`pstm.kernels.operator.taper01`) is applied where
  d > R_in (the radius inside both tapers), with
  z = (A - d) / aperture_taper and z = (R_angle - d) / angle_taper_width (product of both);
* traveltime (straight-ray double square root):
  t = sqrt(tau^2/4 + |S - x|^2 / v^2) + sqrt(tau^2/4 + |R - x|^2 / v^2) = t_s + t_r
  (each leg at least LEG_TIME_MIN_S, which only matters at tau = 0 below a station); with
  ``traveltime: interpolated`` the sample positions below are exact every N output
  samples and linear in between where
  :func:`pstm.kernels.operator.interpolation_allowed` proves the error small enough;
* the contribution is valid if the resampled sample position s = (t - t0) / h lies in the
  trace (0 <= s <= M - 1) and, with a stretch mute, if (1 + max_stretch) (tau / 4)
  (1/t_s + 1/t_r) >= 1 (operator stretch 1/(dt/dtau) - 1 at most max_stretch);
* the trace value at s: nearest resampled sample, or linear between resampled samples; with
  anti-aliasing, the nearest sample of the trace smoothed by a triangle whose half-length
  follows the ideal L / h = |grad_M t| dx / h (Lumley, Claerbout & Bevc 1994), quantised to
  the longest of the levels of :func:`pstm.kernels.operator.antialias_lengths` whose
  nominal length is not longer than L (:func:`pstm.kernels.operator.antialias_level`;
  none below one input
  sample, where the operator does not alias; only those the steepest possible dip reaches
  are built, see :func:`pstm.kernels.operator.reachable_antialias_lengths`), with
  |grad_M t| = |(S - x) t_r + (R - x) t_s| / (v^2 t_s t_r);
* weight: 1, or true amplitude W = R_out^2 tau t (1/t_s^2 + 1/t_r^2) / (4 v) (README,
  "Imaging options");
* gathers[g, x, tau] += weight * taper * value; fold[g, x, tau] += 1 for every valid sample.

The float32 operations are written in the same order as in the compiled backends, so the
same nearest sample is chosen; the compiled kernels do not contract multiply-adds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pstm.kernels import ImageTarget, KernelOptions, TraceBatch, column_views
from pstm.kernels.operator import (
    NUMPY_TRACE_OPS,
    Prepared,
    antialias_level,
    antialias_pair,
    antialias_y,
    interpolated_positions,
    interpolation_allowed,
    oversample_adjoint,
    prepare,
    taper01,
    triangle_filtered_adjoint,
)

F32 = np.float32


def _trace_terms(p: Prepared, k: int) -> dict[str, NDArray]:
    """Everything of trace k at every output sample of the tile (ncol, nt)."""
    sxr, syr = p.sx[k] - p.x, p.sy[k] - p.y
    rxr, ryr = p.rx[k] - p.x, p.ry[k] - p.y
    ds2 = sxr * sxr + syr * syr
    dr2 = rxr * rxr + ryr * ryr
    mxr, myr = (sxr + rxr) * F32(0.5), (syr + ryr) * F32(0.5)
    d2 = mxr * mxr + myr * myr
    visit = p.rout2 >= d2[:, None]
    qs = p.th2[None, :] + ds2[:, None] * p.sl2  # >= LEG_TIME_MIN_S^2 (QMIN_TABLE)
    qr = p.th2[None, :] + dr2[:, None] * p.sl2
    ts, tr = np.sqrt(qs), np.sqrt(qr)
    t = ts + tr
    tstr = ts * tr
    inv_p2 = F32(1.0) / (qs * qr)  # 1 / (t_s t_r)^2
    s = (t - F32(p.t0_in)) * F32(p.inv_h)
    if p.tt_node:  # traveltime: interpolated (the plain operator only: see pstm.config)
        s = interpolated_positions(s, p.tt_node, interpolation_allowed(p, ds2, dr2))
    smax = F32(p.n_valid - 1)
    valid = (s >= F32(0.0)) & (s <= smax) & visit
    if p.stretch.size:
        valid &= p.stretch[None, :] * t >= tstr
    sc = np.minimum(np.maximum(s, F32(0.0)), smax)
    weight = np.ones(t.shape, dtype=np.float32)
    if p.wta.size:
        weight = p.wta * t * ((qs + qr) * inv_p2)
    taper_zone = visit & ~(p.rin2 >= d2[:, None])
    d = np.sqrt(d2)[:, None]
    taper = taper01((p.ap[None, :] - d) * F32(p.inv_ap_taper)) * taper01(
        (p.ang - d) * p.inv_ang_taper
    )
    taper = np.where(taper_zone, taper, F32(1.0))
    aa_level = np.zeros(t.shape, dtype=np.int64)
    if p.aa_data.size:
        ks, kr, ksr = antialias_pair(p.aa_form, sxr, syr, rxr, ryr)
        y = antialias_y(p.sl2, ks[:, None], kr[:, None], ksr[:, None], qs, qr, tstr, inv_p2)
        aa_level = antialias_level(y, p.aa_levels - 1)
    return {
        "visit": visit,
        "valid": valid,
        "sc": sc,
        "weight": weight,
        "taper": taper,
        "aa_level": aa_level,
    }


def _positions(p: Prepared, sc: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray]:
    """Index and linear weight of each sample position (weight unused in nearest modes)."""
    if p.nearest or p.aa_data.size:
        return (sc + F32(0.5)).astype(np.int64), np.zeros(sc.shape, np.float32)
    i = sc.astype(np.int64)
    return i, sc - i.astype(np.float32)


def migrate(
    batch: TraceBatch,
    target: ImageTarget,
    options: KernelOptions,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> int:
    p = prepare(batch, target, options)
    g, f = column_views(target, gathers, fold)
    contributions = 0
    for k in range(p.ntr):
        terms = _trace_terms(p, k)
        visit, valid = terms["visit"], terms["valid"]
        if not visit.any():
            continue
        i, w = _positions(p, terms["sc"])
        if p.aa_data.size:
            value = p.aa_data[k][terms["aa_level"] * (p.n_valid + 1) + i]
        elif p.nearest:
            value = p.data[k][i]
        else:
            a = p.data[k][i]
            value = a + w * (p.data[k][i + 1] - a)
        value = value * terms["weight"] * terms["taper"] * valid.astype(np.float32)
        c = int(p.cls[k])
        g[c][visit] += value[visit]
        f[c] += valid.astype(np.int32)
        contributions += int(valid.sum())
    return contributions


def demigrate(
    batch: TraceBatch, target: ImageTarget, options: KernelOptions, gathers: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Forward Kirchhoff modelling, the exact adjoint of :func:`migrate` with the same
    weights, tapers, masks and interpolation: returns traces (ntr, ns) in float64 (the
    values of ``batch.data`` are ignored; its geometry and sampling are used)."""
    nx, ny, nt = target.shape
    p = prepare(batch, target, options)
    g = gathers.reshape(gathers.shape[0], nx * ny, nt).astype(np.float64)
    ns = batch.data.shape[1]
    factor = options.factor
    resampled = np.zeros((p.ntr, p.n_valid + 1), dtype=np.float64)
    aa_adj = np.zeros(p.aa_data.shape, dtype=np.float64)
    for k in range(p.ntr):
        terms = _trace_terms(p, k)
        valid = terms["valid"]
        if not valid.any():
            continue
        i, w = _positions(p, terms["sc"])
        amp = g[int(p.cls[k])] * terms["weight"] * terms["taper"] * valid
        if p.aa_data.size:
            np.add.at(aa_adj[k], terms["aa_level"][valid] * (p.n_valid + 1) + i[valid], amp[valid])
        elif p.nearest:
            np.add.at(resampled[k], i[valid], amp[valid])
        else:
            np.add.at(resampled[k], i[valid], (1.0 - w[valid]) * amp[valid])
            np.add.at(resampled[k], i[valid] + 1, w[valid] * amp[valid])
    if p.aa_data.size:
        lengths = p.aa_lengths
        per_level = aa_adj.reshape(p.ntr, len(lengths), p.n_valid + 1)
        resampled[:, : p.n_valid] += triangle_filtered_adjoint(per_level, lengths)
    if factor == 1:
        return resampled[:, :ns]
    return oversample_adjoint(resampled[:, : p.n_valid], factor, ns)


#: The trace preparation this backend uses (see :func:`pstm.kernels.get_trace_ops`).
TRACE_OPS = NUMPY_TRACE_OPS

__all__ = ["TRACE_OPS", "demigrate", "migrate"]
