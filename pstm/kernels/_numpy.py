"""Reference kernel: slow, vectorised over output samples, obviously correct.

For every trace (source S, receiver R) and output point (x, tau) with v = v_rms(x, tau),
the straight-ray double-square-root traveltime is

    t = sqrt((tau/2)^2 + |S - x|^2 / v^2) + sqrt((tau/2)^2 + |R - x|^2 / v^2)

and the trace, linearly interpolated at t, is added to the output sample when the
midpoint lies within ``aperture_m`` of x and t lies inside the recorded trace
(t0 <= t < t0 + (ns - 1) dt). The fold counts those contributions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pstm.kernels import ImageTarget, KernelOptions, TraceBatch


def migrate(
    batch: TraceBatch,
    target: ImageTarget,
    options: KernelOptions,
    gathers: NDArray[np.float32],
    fold: NDArray[np.int32],
) -> int:
    nx, ny, nt = target.shape
    ns = batch.data.shape[1]
    tau_half = (target.t0 + target.dt * np.arange(nt)) / 2.0  # (nt,)
    slowness2 = 1.0 / target.vrms.astype(np.float64) ** 2  # (nx, ny, nt)
    contributions = 0
    for k in range(batch.ntr):
        mx = 0.5 * (batch.sx[k] + batch.rx[k])
        my = 0.5 * (batch.sy[k] + batch.ry[k])
        in_aperture = (target.x - mx) ** 2 + (target.y - my) ** 2 <= options.aperture_m**2
        if not in_aperture.any():
            continue
        ds2 = ((target.x - batch.sx[k]) ** 2 + (target.y - batch.sy[k]) ** 2)[in_aperture]
        dr2 = ((target.x - batch.rx[k]) ** 2 + (target.y - batch.ry[k]) ** 2)[in_aperture]
        s2 = slowness2[in_aperture]  # (n_in, nt)
        t = np.sqrt(tau_half**2 + ds2[:, None] * s2) + np.sqrt(tau_half**2 + dr2[:, None] * s2)
        s = (t - batch.t0) / batch.dt
        valid = (s >= 0.0) & (s < ns - 1)
        i = np.where(valid, np.floor(s), 0).astype(np.int64)
        w = s - i
        trace = batch.data[k].astype(np.float64)
        value = np.where(valid, (1.0 - w) * trace[i] + w * trace[np.minimum(i + 1, ns - 1)], 0.0)
        c = int(batch.offset_class[k])
        gathers[c][in_aperture] += value.astype(np.float32)
        fold[c][in_aperture] += valid.astype(np.int32)
        contributions += int(valid.sum())
    return contributions
