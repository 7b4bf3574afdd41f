"""The operator's tables, computed once per kernel call and shared by every backend.

A backend receives a :class:`Prepared` problem: traces resampled for the chosen
interpolation (and double-integrated for anti-aliasing), geometry relative to the tile
centre in float32, and per-output-sample tables (squared slowness, aperture radii, weight
factors). Everything here is numpy and cheap next to the kernel (O(traces x samples) and
O(columns x samples), not their product). The operator itself is written out in
:mod:`pstm.kernels._numpy`.

Trace oversampling (``oversampled_*`` interpolations) uses a Kaiser-windowed sinc of
``2 * SINC_HALF_TAPS`` taps per output phase (Oppenheim & Schafer, Discrete-Time Signal
Processing, 3rd ed., sec. 7.5): band-limited up to about ``SINC_PASSBAND`` of Nyquist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pstm.config import (
    TRAVELTIME_MAX_ERROR_SAMPLES,
    AntiAlias,
    Interpolation,
    Traveltime,
    Weights,
    interpolated_traveltime_conflicts,
)
from pstm.errors import BackendUnavailableError
from pstm.kernels import ImageTarget, KernelOptions, TraceBatch

#: Half length of the oversampling filter in input samples (8 taps per phase).
SINC_HALF_TAPS = 4
#: Kaiser window shape of the oversampling filter (trade-off ripple vs transition width).
SINC_KAISER_BETA = 5.0
#: Documented pass band of the oversampling filter, as a fraction of Nyquist.
SINC_PASSBAND = 0.8
# Anti-aliasing: triangle half-lengths are quantised to 2 levels per octave, each trace
# filtered once per level (Gray 1992's precomputed low-passed traces). The 2 is not a
# tuning constant: the kernels find a level from the binary exponent of the squared ideal
# length (:func:`antialias_level`), one level per doubling of it, i.e. per half octave.
#: Relative margin on the steepest operator dip an anti-aliasing level must reach to be
#: built (:func:`reachable_antialias_lengths`): covers float32 rounding of the kernels' dip.
AA_REACH_MARGIN = 1.01
#: Shortest one-way leg time: only at tau = 0 right below a station would a leg be 0 (and
#: the weights and anti-aliasing length divide by it). The table of (tau / 2)^2 is floored
#: at its square (``Prepared.th2``: only tau = 0 changes), so every leg's squared time
#: q + d^2 / v^2 is at least that without a test per sample (QMIN_TABLE).
LEG_TIME_MIN_S = 1e-6
#: ``traveltime: interpolated``: a leg's q = (tau/2)^2 + d / v^2 (s^2) at most this counts
#: as 0 (no interpolation bound: the block stays exact), see :func:`interpolation_allowed`.
TINY_Q = 1e-20
#: Stand-in for "no limit" in float32 tables: finite, and a product of two stays finite.
NO_LIMIT = np.float32(1e18)  # squared or times an inverse width, still finite


@dataclass(frozen=True)
class Prepared:
    """One kernel call's inputs, ready for any backend (see the module notes)."""

    # traces
    #: (ntr, M + 1): resampled traces, one zero sample appended; or, where ``resampled`` is
    #: False, the recorded traces (ntr, ns), which the backend resamples itself
    data: NDArray[np.float32]
    #: anti-aliasing: (ntr, L * (M + 1)) the traces filtered with each triangle length
    #: (level l at columns l (M + 1) ...; level 0 is the trace itself), or (0, 0) (also
    #: where the backend builds the levels itself, see ``resampled``)
    aa_data: NDArray[np.float32]
    #: the anti-aliasing rule's quadratic form (:func:`antialias_form`; zeros without)
    aa_form: AntiAliasForm
    #: triangle half-lengths of the anti-aliasing levels (resampled samples; () without)
    aa_lengths: tuple[int, ...]
    resampled: bool  # data holds the resampled traces (and aa_data the levels)
    n_valid: int  # M: real samples per resampled trace
    inv_h: float  # 1 / (resampled sample interval)
    t0_in: float
    # geometry, metres, relative to the tile centre
    sx: NDArray[np.float32]
    sy: NDArray[np.float32]
    rx: NDArray[np.float32]
    ry: NDArray[np.float32]
    cls: NDArray[np.int32]
    x: NDArray[np.float32]  # (ncol,) output columns
    y: NDArray[np.float32]
    # per output sample
    th2: NDArray[np.float32]  # (nt,) (tau / 2)^2, at least LEG_TIME_MIN_S^2 (QMIN_TABLE)
    sl2: NDArray[np.float32]  # (ncol, nt) 1 / v_rms^2
    rout2: NDArray[np.float32]  # (ncol, nt) squared aperture radius (nondecreasing in t)
    rin2: NDArray[np.float32]  # (ncol, nt) squared radius inside which no taper applies
    ap: NDArray[np.float32]  # (nt,) distance aperture A(tau)
    inv_ap_taper: float  # 1 / aperture taper width (NO_LIMIT when none)
    ang: NDArray[np.float32]  # (ncol, nt) angle-limit radius tan(max_angle) v tau / 2
    inv_ang_taper: NDArray[np.float32]  # (ncol, nt) 1 / width of the angle taper
    wta: NDArray[np.float32]  # (ncol, nt) true-amplitude factor R^2 tau / (4 v) (or empty)
    stretch: NDArray[np.float32]  # (nt,) (1 + max_stretch) tau / 4 (or empty: no mute)
    nearest: bool  # read the nearest resampled sample (else interpolate linearly)
    #: traveltime: interpolated (:func:`interpolation_allowed`): output samples per node (0:
    #: exact everywhere), the position tolerance (resampled samples), the output sample
    #: interval and the tables of :func:`traveltime_block_tables`
    tt_node: int = 0
    tt_tolerance: float = 0.0
    tt_dt: float = 0.0
    tt_blocks: NDArray[np.float32] = field(default_factory=lambda: np.zeros((5, 0, 0), np.float32))
    tt_times: NDArray[np.float32] = field(default_factory=lambda: np.zeros((2, 0), np.float32))

    @property
    def ntr(self) -> int:
        return int(self.data.shape[0])

    @property
    def aa_levels(self) -> int:
        """Number of anti-aliasing levels (0 without anti-aliasing)."""
        return len(self.aa_lengths)


def taper01(z: NDArray[np.float32]) -> NDArray[np.float32]:
    """The cosine taper 0.5 - 0.5 cos(pi z) = sin^2(pi z / 2) on z clamped to [0, 1], by a
    degree-11 Taylor polynomial in float32 (error < 5e-7), the same operations as the
    compiled kernels' (which cannot vectorise a libm call)."""
    f = np.float32
    x = np.minimum(np.maximum(z, f(0.0)), f(1.0)) * f(1.5707963267948966)
    x2 = x * x
    p = np.full(x.shape, f(-2.505210838544172e-08), dtype=np.float32)
    for coef in (2.7557319223985893e-06, -0.0001984126984126984, 0.008333333333333333,
                 -0.16666666666666666, 1.0):  # fmt: skip
        p = f(coef) + x2 * p
    sine = x * p
    result: NDArray[np.float32] = np.where(x >= f(1.5707963267948966), f(1.0), sine * sine)
    return result


def sinc_phases(factor: int) -> NDArray[np.float64]:
    """Filter taps (factor, 2 * SINC_HALF_TAPS): phase p interpolates at fraction p / factor
    from the input samples at offsets -SINC_HALF_TAPS + 1 .. SINC_HALF_TAPS; each phase is
    normalised to unit DC gain, and phase 0 is the recorded sample itself."""
    half = SINC_HALF_TAPS
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)
    u = offsets[None, :] - np.arange(factor, dtype=np.float64)[:, None] / factor
    window = np.i0(SINC_KAISER_BETA * np.sqrt(np.clip(1.0 - (u / half) ** 2, 0.0, 1.0)))
    taps = np.sinc(u) * window / np.i0(SINC_KAISER_BETA)
    # at whole-sample offsets the sinc is exactly 1 (offset 0) or 0 (np.sinc leaves ~1e-17)
    taps = np.where(u == np.round(u), (u == 0).astype(np.float64), taps)
    result: NDArray[np.float64] = taps / taps.sum(axis=1, keepdims=True)
    return result


def oversample(
    data: NDArray[np.float32], factor: int, out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Windowed-sinc oversampling along the last axis: (ntr, ns) -> (ntr, ns * factor);
    sample m * factor + p lies at input time (m + p / factor) * dt. Zero outside the trace.
    float32 taps and sums, in tap order (8 taps: rounding ~1e-7 of the trace's scale, far
    below any interpolation error; the compiled version rounds alike). Written into ``out``
    (e.g. a view of a larger buffer) when given, and returned."""
    ntr, ns = data.shape
    taps = sinc_phases(factor).astype(np.float32)
    padded = np.zeros((ntr, ns + 2 * SINC_HALF_TAPS), dtype=np.float32)
    padded[:, SINC_HALF_TAPS : SINC_HALF_TAPS + ns] = data
    phased = np.empty((ntr, ns, factor), dtype=np.float32)
    for p in range(factor):
        acc = np.zeros((ntr, ns), dtype=np.float32)
        for j in range(2 * SINC_HALF_TAPS):
            # tap j multiplies input sample m + (j - SINC_HALF_TAPS + 1)
            start = j + 1
            acc += taps[p, j] * padded[:, start : start + ns]
        phased[:, :, p] = acc
    result = phased.reshape(ntr, ns * factor)
    if out is None:
        return result
    out[...] = result
    return out


def oversample_adjoint(data_os: NDArray[np.float64], factor: int, ns: int) -> NDArray[np.float64]:
    """The adjoint of :func:`oversample`, in float64 (with the taps of the forward's float32
    computation in float64: adjoint up to the forward's float32 rounding)."""
    ntr = data_os.shape[0]
    taps = sinc_phases(factor)
    phased = data_os[:, : ns * factor].reshape(ntr, ns, factor)
    padded = np.zeros((ntr, ns + 2 * SINC_HALF_TAPS), dtype=np.float64)
    for p in range(factor):
        for j in range(2 * SINC_HALF_TAPS):
            start = j + 1
            padded[:, start : start + ns] += taps[p, j] * phased[:, :, p]
    return padded[:, SINC_HALF_TAPS : SINC_HALF_TAPS + ns]


def antialias_lengths(factor: int, max_samples: int) -> tuple[int, ...]:
    """Triangle half-lengths of the anti-aliasing levels, in resampled samples (``factor``
    per input sample): level 0 is the trace itself (1: the operator does not alias below
    one input sample), level l >= 1 the nearest integer to factor 2^((l - 1) / 2), up to
    ``max_samples`` input samples. (Without oversampling the shortest ones round to 1, the
    trace itself: a triangle needs a whole number of samples.)"""
    lengths = [1]
    while True:
        j = int(round(factor * 2.0 ** ((len(lengths) - 1) / 2.0)))  # 2 levels per octave
        if j > max_samples * factor:
            return tuple(lengths)
        lengths.append(j)


def antialias_level(y: NDArray[np.float32], top: int) -> NDArray[np.int64]:
    """The anti-aliasing level of y = (L/h)^2 / factor^2 = (L / input interval)^2 (float32;
    L the ideal half-length, h the resampled interval): min(max(floor(log2 y) + 1, 0), top),
    i.e. the longest level whose nominal half-length factor 2^((l - 1) / 2) is not longer
    than L (level 1 from one input sample, L/h = factor, y = 1; level l from y = 2^(l - 1);
    level 0, the trace itself, below one input sample, where the operator does not alias).
    floor(log2 y) is the binary exponent of the float32 y (0, denormal or negative, a
    rounding of a zero dip: level 0); the compiled kernels compute the same from the same
    float32 operations (:func:`antialias_y`): a shift and a clamp (AA_RULE)."""
    y = np.asarray(y, dtype=np.float32)
    octave = (y.view(np.int32) >> 23).astype(np.int64) - 127
    return np.minimum(np.maximum(octave + 1, 0), top)


#: The quadratic form (kxx, 2 kxy, kyy) of :func:`antialias_form`, float32 values.
AntiAliasForm = tuple[float, float, float]


def antialias_form(
    spacing_m: tuple[float, float], rotation_deg: float, dt_in: float
) -> AntiAliasForm:
    """The anti-aliasing rule's quadratic form K = (R diag(dil^2, dxl^2) R^T) / dt_in^2
    (R: the rotation to the grid's inline and crossline directions; dil, dxl: the trace
    spacings there, ``spacing_m``) as float32 (kxx, 2 kxy, kyy), so that for an operator
    dip vector p (s/m, world axes) L^2 / dt_in^2 = p^T K p = ((p.u_il) dil)^2 +
    ((p.u_xl) dxl)^2: each direction's dip times its own spacing. Equal spacings give
    exactly k I (k = (d / dt_in)^2; no rounding of cos^2 + sin^2)."""
    kil, kxl = ((d / dt_in) ** 2 for d in spacing_m)
    if kil == kxl:
        return float(np.float32(kil)), 0.0, float(np.float32(kil))
    r = math.radians(rotation_deg)
    c, s = math.cos(r), math.sin(r)
    form = (kil * c * c + kxl * s * s, 2.0 * (kil - kxl) * c * s, kil * s * s + kxl * c * c)
    return (float(np.float32(form[0])), float(np.float32(form[1])), float(np.float32(form[2])))


def antialias_pair(
    form: AntiAliasForm,
    sxr: NDArray[np.float32],
    syr: NDArray[np.float32],
    rxr: NDArray[np.float32],
    ryr: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Per (trace, column) pair, the three coefficients of :func:`antialias_y`: with
    a = S - x and b = R - x (``sxr``, ``syr``; ``rxr``, ``ryr``), a^T K a, b^T K b and
    2 a^T K b (K = ``form``, :func:`antialias_form`), in the float32 operations every
    backend uses (AA_RULE)."""
    kxx, kxy2, kyy = (np.float32(v) for v in form)
    two = np.float32(2.0)
    ks = (kxx * sxr) * sxr + (kyy * syr) * syr + (kxy2 * sxr) * syr
    kr = (kxx * rxr) * rxr + (kyy * ryr) * ryr + (kxy2 * rxr) * ryr
    cross: NDArray[np.float32] = sxr * ryr + syr * rxr
    ksr = two * ((kxx * sxr) * rxr + (kyy * syr) * ryr) + kxy2 * cross
    return ks, kr, ksr


def antialias_y(
    s2: NDArray[np.float32],
    ks: NDArray[np.float32],
    kr: NDArray[np.float32],
    ksr: NDArray[np.float32],
    qs: NDArray[np.float32],
    qr: NDArray[np.float32],
    p: NDArray[np.float32],
    inv_p2: NDArray[np.float32],
) -> NDArray[np.float32]:
    """:func:`antialias_level`'s y = (L / input interval)^2, in the float32 operations every
    backend uses (AA_RULE). L^2 = p^T D p with p = grad_M t the operator's dip (s/m) and
    D = R diag(dil^2, dxl^2) R^T the trace spacings in the grid's directions
    (:func:`antialias_form`: K = D / dt_in^2). grad_M t = -((S - x) t_r + (R - x) t_s)
    s2 / (t_s t_r) (s2 = 1/v^2), so with the legs' squared times qs = t_s^2, qr = t_r^2:
    y = s2^2 (ks qr + kr qs + ksr t_s t_r) / (qs qr), where ks = a^T K a, kr = b^T K b,
    ksr = 2 a^T K b (a = S - x, b = R - x) are per pair (:func:`antialias_pair`): no leg
    vector, no square root, and beyond the traveltime's only s2 * s2 and the products per
    sample. ``p`` = t_s t_r, ``inv_p2`` = 1 / (qs qr) (shared with the true-amplitude
    weight)."""
    norm2 = ks * qr + kr * qs + ksr * p
    result: NDArray[np.float32] = s2 * s2 * norm2 * inv_p2
    return result


def reachable_antialias_lengths(
    lengths: tuple[int, ...], form: AntiAliasForm, max_slowness2: float
) -> tuple[int, ...]:
    """The levels of ``lengths`` that an operator can reach on this call: each leg's time
    changes with the image point by at most the slowness (|d t_s / d x| = u |S - x| / t_s
    <= sqrt(u), u = 1/v^2: a horizontal ray), so |grad_M t| <= 2 sqrt(max u), and
    :func:`antialias_level`'s y = p^T K p at most 4 k max u, k the larger eigenvalue of K
    (``form``, :func:`antialias_form`: (larger spacing / input interval)^2). Levels above it
    are never used: they are not built (AA_REACH_MARGIN covers rounding)."""
    kxx, kxy2, kyy = form
    k = 0.5 * (kxx + kyy) + math.hypot(0.5 * (kxx - kyy), 0.5 * kxy2)
    bound = 4.0 * k * max_slowness2 * AA_REACH_MARGIN**2
    y = np.float32(min(bound, float(NO_LIMIT)))
    top = antialias_level(np.asarray(y), len(lengths) - 1)
    return lengths[: 1 + int(top)]


def triangle_filtered(data: NDArray[np.float32], lengths: tuple[int, ...]) -> NDArray[np.float32]:
    """(ntr, L, M + 1): each trace smoothed by a triangle of each half-length J (J = 1: the
    trace itself), one zero sample appended. Computed as the second difference of the
    double running sum, (I2[n-1+J] - 2 I2[n-1] + I2[n-1-J]) / J^2 (Lumley et al. 1994), in
    float64."""
    ntr, m = data.shape
    pad = max(lengths) + 1
    i2 = _double_integral(data, pad)
    out = np.zeros((ntr, len(lengths), m + 1), dtype=np.float32)
    n = np.arange(m) + pad - 1
    for level, j in enumerate(lengths):
        if j == 1:
            out[:, level, :m] = data
        else:
            out[:, level, :m] = (i2[:, n + j] - 2.0 * i2[:, n] + i2[:, n - j]) / (j * j)
    return out


def triangle_filtered_adjoint(adj: NDArray[np.float64], lengths: tuple[int, ...]) -> NDArray:
    """The exact adjoint of :func:`triangle_filtered`: (ntr, L, M + 1) -> (ntr, M)."""
    ntr, _, m1 = adj.shape
    m = m1 - 1
    pad = max(lengths) + 1
    i2_adj = np.zeros((ntr, m + 2 * pad), dtype=np.float64)
    out = np.zeros((ntr, m), dtype=np.float64)
    n = np.arange(m) + pad - 1
    for level, j in enumerate(lengths):
        a = adj[:, level, :m]
        if j == 1:
            out += a
        else:
            i2_adj[:, n + j] += a / (j * j)
            i2_adj[:, n] -= 2.0 * a / (j * j)
            i2_adj[:, n - j] += a / (j * j)
    return out + _double_integral_adjoint(i2_adj, pad, m)


def _double_integral(data: NDArray[np.floating], pad: int) -> NDArray[np.float64]:
    """Double running sum (float64) of each zero-extended trace, ``pad`` samples before and
    after; the mean of the first sum and the straight-line trend of the second are removed
    (the second difference ignores both; it keeps the numbers small)."""
    ntr, m = data.shape
    ext = np.zeros((ntr, m + 2 * pad), dtype=np.float64)
    ext[:, pad : pad + m] = data
    i1 = np.cumsum(ext, axis=1)
    i1 -= i1.mean(axis=1, keepdims=True)
    return _detrend(np.cumsum(i1, axis=1))


def _detrend(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Remove the least-squares straight line of each row (an orthogonal projection, so it
    is its own adjoint)."""
    n = values.shape[1]
    u = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    slope = (values @ u) / (u @ u)
    result: NDArray[np.float64] = values - values.mean(axis=1, keepdims=True) - slope[:, None] * u
    return result


def _double_integral_adjoint(adj: NDArray[np.float64], pad: int, m: int) -> NDArray[np.float64]:
    back = _detrend(adj)
    back = np.cumsum(back[:, ::-1], axis=1)[:, ::-1]
    back -= back.mean(axis=1, keepdims=True)
    back = np.cumsum(back[:, ::-1], axis=1)[:, ::-1]
    result: NDArray[np.float64] = back[:, pad : pad + m]
    return result


def prepared_trace_bytes(ns: int, factor: int, antialias: bool, max_samples: int) -> int:
    """Bytes :func:`prepare` holds per trace (resampled trace, anti-aliasing levels and
    their float64 work row): the tile planner's memory model."""
    m = ns * factor
    levels = len(antialias_lengths(factor, max_samples)) if antialias else 0
    work = (m + 2 * (max_samples * factor + 1)) * 8 if antialias else 0
    return (m + 1) * 4 * (1 + levels) + work


def interpolated_positions(
    s: NDArray[np.float32], node: int, use: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """The sample positions ``traveltime: interpolated`` uses, from the exact ones ``s``
    (ncol, nt), float32: block b (output samples b N .. b N + N - 1, N = ``node``) takes
    s_b + j ((s_{b+1} - s_b) / N) at its sample b N + j where ``use[:, b]`` (see
    :func:`interpolation_allowed`; s_b is the exact position at sample b N), other blocks
    keep the exact positions."""
    ncol, nt = s.shape
    out = s.copy()
    n_blocks = use.shape[1]
    if n_blocks == 0:
        return out
    nodes = s[:, ::node]
    s0, s1 = nodes[:, :n_blocks], nodes[:, 1 : n_blocks + 1]
    step = (s1 - s0) * np.float32(1.0 / node)
    j = np.arange(node, dtype=np.float32)
    interp = s0[:, :, None] + j[None, None, :] * step[:, :, None]  # (ncol, n_blocks, node)
    span = slice(0, node * n_blocks)
    exact = s[:, span].reshape(ncol, n_blocks, node)
    out[:, span] = np.where(use[:, :, None], interp, exact).reshape(ncol, -1)
    return out


def interpolation_allowed(
    p: Prepared, ds2: NDArray[np.float32], dr2: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """(ncol, blocks): whether ``traveltime: interpolated`` may interpolate block b of a
    trace with squared leg distances ``ds2``, ``dr2`` (ncol,) from each column: a bound of
    the position error is at most the tolerance (float32, from the tables of
    :func:`traveltime_block_tables`; the compiled kernel evaluates the same expressions in
    the same order).

    The bound, in two parts (h: resampled interval, N = node, u = 1/v^2 per output sample):
    (1) u minus its chord over the block, delta, moves a position by at most
    (|S - x| + |R - x|) v_max |delta|_max / (2 h), since dt/du = D / (2 t_leg) <= sqrt(D) v / 2
    per leg; at the nodes delta = 0, so the interpolation of the exact positions equals
    that of the chord's. (2) With u on its chord, a leg's q = (tau/2)^2 + D u is a quadratic
    A x^2 + B x + C in the sample x within the block (A = dt^2 / 4), whose square root has
    the constant numerator f'' = (4 A C - B^2) / (4 q^(3/2)), 4 A C - B^2 =
    D (dt^2 u_a - tau dt du - D du^2); linear interpolation errs by at most N^2 max|f''| / 8,
    taken at the smallest q on the block. Each part may use half the tolerance (the bound
    holds up to the float32 rounding of the positions, ~1e-4 input sample). Where a leg's
    smallest q is 0 (tau = 0 right below a station) the block stays exact."""
    ua, du, pp, qq, dev = p.tt_blocks
    c0, b0 = p.tt_times
    f32 = np.float32
    a, inv2a, n, k, half = interpolation_bound_constants(p)
    err = np.zeros(ua.shape, np.float32)
    positive = np.ones(ua.shape, dtype=bool)
    for d in (ds2[:, None], dr2[:, None]):
        b = b0 + d * du
        c = c0 + d * ua
        disc = d * (pp - d * qq)
        x = np.minimum(np.maximum(-b * inv2a, f32(0.0)), n)
        q = (a * x + b) * x + c
        positive &= q > f32(TINY_Q)
        qs = np.maximum(q, f32(TINY_Q))
        err = err + k * np.abs(disc) / (qs * np.sqrt(qs))
    legs = np.sqrt(ds2) + np.sqrt(dr2)
    result: NDArray[np.bool_] = (err <= half) & (legs[:, None] * dev <= half) & positive
    return result


def interpolation_bound_constants(p: Prepared) -> NDArray[np.float32]:
    """The float32 constants of :func:`interpolation_allowed`'s bound, shared with the
    compiled kernel: A = dt^2 / 4, 1 / (2 A), N, K = N^2 / (32 h) and half the tolerance."""
    dt, node = p.tt_dt, p.tt_node
    return np.array(
        [dt * dt / 4.0, 2.0 / (dt * dt), node, node * node * p.inv_h / 32.0, p.tt_tolerance / 2],
        dtype=np.float32,
    )


def traveltime_block_tables(
    sl2: NDArray[np.float32], tau: NDArray[np.float64], dt: float, node: int, inv_h: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The per-block tables of :func:`interpolation_allowed` for the blocks whose end node
    exists (block b = samples b N .. b N + N, N = ``node``): (5, ncol, blocks) u at the
    block's start, its chord's slope du per sample, dt^2 u - tau dt du, du^2, and the
    largest deviation of u from the chord times v_max / (2 h); (2, blocks) (tau/2)^2 and
    tau dt / 2 at the block's start. Computed in float64, stored in float32."""
    ncol, nt = sl2.shape
    n_blocks = (nt - 1) // node
    if n_blocks == 0:
        return np.zeros((5, ncol, 0), np.float32), np.zeros((2, 0), np.float32)
    u = sl2[:, : n_blocks * node + 1].astype(np.float64)
    blocks = np.lib.stride_tricks.sliding_window_view(u, node + 1, axis=1)[:, ::node]
    ua, ub = blocks[:, :, 0], blocks[:, :, -1]
    du = (ub - ua) / node
    chord = ua[:, :, None] + du[:, :, None] * np.arange(node + 1)
    deviation = np.abs(blocks - chord).max(axis=2) * inv_h / (2.0 * np.sqrt(blocks.min(axis=2)))
    ta = tau[: n_blocks * node : node][None, :]
    tables = np.stack([ua, du, dt * dt * ua - ta * dt * du, du * du, deviation])
    times = np.stack([ta[0] ** 2 / 4.0, ta[0] * dt / 2.0])
    return tables.astype(np.float32), times.astype(np.float32)


def require_exact_traveltime(p: Prepared, backend: str) -> None:
    """Raise for a problem prepared with ``traveltime: interpolated``: for a backend that
    implements exact traveltimes only (the registry keeps a config from reaching it; this
    keeps a direct call from silently computing exact ones)."""
    if p.tt_node:
        raise BackendUnavailableError(
            f"the {backend} backend does not implement migration.traveltime 'interpolated' "
            "(numpy and numba do); use traveltime: exact"
        )


def _aperture_of_time(options: KernelOptions, tau: NDArray[np.float64]) -> NDArray[np.float64]:
    if options.aperture_time_s:
        return np.interp(tau, options.aperture_time_s, options.aperture_table_m)
    return np.full(tau.shape, options.aperture_m)


@dataclass(frozen=True)
class TraceOps:
    """The per-trace preparation steps (numpy here; a backend may pass compiled ones that
    compute the same, e.g. :data:`pstm.kernels._numba_traces.NUMBA_TRACE_OPS`)."""

    #: (data, factor, out) -> out: see :func:`oversample`
    oversample: Callable[[NDArray[np.float32], int, NDArray[np.float32]], NDArray[np.float32]]
    triangle_filtered: Callable[[NDArray[np.float32], tuple[int, ...]], NDArray[np.float32]]
    #: the backend resamples the traces and builds the anti-aliasing levels itself, per
    #: block of traces (:func:`prepare` passes the recorded traces; see ``Prepared.resampled``)
    in_kernel: bool = False


NUMPY_TRACE_OPS = TraceOps(oversample=oversample, triangle_filtered=triangle_filtered)


def prepare(
    batch: TraceBatch, target: ImageTarget, options: KernelOptions, ops: TraceOps | None = None
) -> Prepared:
    """Everything a backend needs for one call (see :class:`Prepared`); ``ops`` = None uses
    the numpy trace operations of this module."""
    ops = NUMPY_TRACE_OPS if ops is None else ops
    nx, ny, nt = target.shape
    factor = options.factor
    data = np.ascontiguousarray(batch.data, dtype=np.float32)
    ntr, ns = data.shape
    m = ns * factor
    if ops.in_kernel:  # the backend resamples per block of traces itself
        traces = resampled = data
    else:
        traces = np.empty((ntr, m + 1), dtype=np.float32)  # one zero sample past the end
        traces[:, m] = 0.0
        resampled = traces[:, :m]
        if factor == 1:
            resampled[...] = data
        else:
            ops.oversample(data, factor, resampled)
    h = batch.dt / factor
    interpolated = options.traveltime is Traveltime.INTERPOLATED
    if interpolated:
        conflicts = interpolated_traveltime_conflicts(
            options.weights,
            options.antialias,
            options.max_stretch is not None,
            options.interpolation,
            bool(options.aperture_time_s),
            options.max_angle_deg,
        )
        if conflicts:
            raise ValueError(
                "traveltime interpolated cannot be combined with " + "; ".join(conflicts)
            )
    node = options.traveltime_node_samples
    if interpolated and not (
        node >= 2 and 0.0 < options.traveltime_tolerance_samples <= TRAVELTIME_MAX_ERROR_SAMPLES
    ):
        raise ValueError(
            f"traveltime interpolated needs traveltime_node_samples >= 2 (got {node}) and 0 < "
            f"traveltime_tolerance_samples <= {TRAVELTIME_MAX_ERROR_SAMPLES} "
            f"(got {options.traveltime_tolerance_samples})"
        )
    if target.origin is None:
        ox, oy = float(np.mean(target.x)), float(np.mean(target.y))
    else:
        ox, oy = target.origin  # float32 relative to it: mm precision over 50 km
    x = (target.x - ox).ravel().astype(np.float32)
    y = (target.y - oy).ravel().astype(np.float32)
    tau = target.t0 + target.dt * np.arange(nt, dtype=np.float64)
    v = target.vrms.reshape(nx * ny, nt).astype(np.float64)

    ap = _aperture_of_time(options, tau)
    vtau = np.maximum.accumulate(v * tau[None, :], axis=1)  # = v tau for any physical v_rms
    if options.max_angle_deg < 90.0:
        tmax = math.tan(math.radians(options.max_angle_deg))
        ang = tmax * vtau / 2.0
        if options.angle_taper_deg > 0.0:
            tin = math.tan(math.radians(options.max_angle_deg - options.angle_taper_deg))
            ang_in = tin * vtau / 2.0
            with np.errstate(divide="ignore"):
                inv_ang_taper = np.where(ang > ang_in, 1.0 / (ang - ang_in), float(NO_LIMIT))
        else:
            ang_in = ang
            inv_ang_taper = np.full(ang.shape, float(NO_LIMIT))
    else:
        ang = np.full(v.shape, float(NO_LIMIT))
        ang_in = ang
        inv_ang_taper = np.full(v.shape, float(NO_LIMIT))
    taper = options.aperture_taper_m
    rout = np.minimum(ap[None, :], ang)
    rin = np.minimum(np.maximum(ap - taper, 0.0)[None, :], ang_in)
    wta = (
        (rout**2 * tau[None, :] / (4.0 * v)).astype(np.float32)
        if options.weights is Weights.TRUE_AMPLITUDE
        else np.zeros((0, 0), dtype=np.float32)
    )
    stretch = (
        ((1.0 + options.max_stretch) * tau / 4.0).astype(np.float32)
        if options.max_stretch is not None
        else np.zeros(0, dtype=np.float32)
    )
    sl2 = (1.0 / v**2).astype(np.float32)
    aa = options.antialias is AntiAlias.TRIANGLE
    aa_form = (
        antialias_form(options.antialias_spacing_m, options.antialias_rotation_deg, batch.dt)
        if aa
        else (0.0, 0.0, 0.0)
    )
    if aa:
        lengths = reachable_antialias_lengths(
            antialias_lengths(factor, options.antialias_max_samples),
            aa_form,
            float(sl2.max()) if sl2.size else 0.0,
        )
        aa_data = (
            np.zeros((0, 0), dtype=np.float32)
            if ops.in_kernel
            # (ntr, L, M + 1) -> (ntr, L (M + 1)); a size, not -1: ntr may be 0
            else ops.triangle_filtered(resampled, lengths).reshape(ntr, len(lengths) * (m + 1))
        )
    else:
        aa_data, lengths = np.zeros((0, 0), dtype=np.float32), (1,)
    tt_blocks, tt_times = (
        traveltime_block_tables(sl2, tau, target.dt, node, 1.0 / h)
        if interpolated
        else (np.zeros((5, 0, 0), np.float32), np.zeros((2, 0), np.float32))
    )
    return Prepared(
        data=traces,
        aa_data=aa_data,
        aa_form=aa_form,
        aa_lengths=lengths if aa else (),
        resampled=not ops.in_kernel,
        n_valid=m,
        inv_h=1.0 / h,
        t0_in=float(batch.t0),
        sx=(batch.sx - ox).astype(np.float32),
        sy=(batch.sy - oy).astype(np.float32),
        rx=(batch.rx - ox).astype(np.float32),
        ry=(batch.ry - oy).astype(np.float32),
        cls=np.ascontiguousarray(batch.offset_class, dtype=np.int32),
        x=x,
        y=y,
        th2=np.maximum(((tau / 2.0) ** 2).astype(np.float32), np.float32(LEG_TIME_MIN_S**2)),
        sl2=sl2,
        rout2=(rout**2).astype(np.float32),
        rin2=(rin**2).astype(np.float32),
        ap=ap.astype(np.float32),
        inv_ap_taper=1.0 / taper if taper > 0 else float(NO_LIMIT),
        ang=np.minimum(ang, float(NO_LIMIT)).astype(np.float32),
        inv_ang_taper=inv_ang_taper.astype(np.float32),
        wta=wta,
        stretch=stretch,
        nearest=options.interpolation is Interpolation.OVERSAMPLED_NEAREST,
        tt_node=node if interpolated else 0,
        tt_tolerance=options.traveltime_tolerance_samples * factor if interpolated else 0.0,
        tt_dt=float(target.dt),
        tt_blocks=tt_blocks,
        tt_times=tt_times,
    )
