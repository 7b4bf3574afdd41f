"""How much any operator anti-aliasing changes an unaliased event (README, "Imaging options").

The synthetic of ``tests/test_imaging_features.py``: a zero-offset 2D line, traces every
40 m, a flat reflector at 1 s (v = 2000 m/s, 25 Hz Ricker, 2D rho filter); the metric of
``test_antialiasing_leaves_an_unaliased_flat_reflector_unchanged``: the relative L2 change
of the image within +-60 ms of the reflector when anti-aliasing is switched on.

Besides pstm's own LCB filter (half-lengths quantised to 2 levels per octave), an
independent float64 migration of the same line (traces band-limited upsampled 8x, read
by linear interpolation) tries two filters without pstm's approximations:

- ``continuous LCB``: the triangle of the exact half-length L = |dt/dx| dx at every
  contribution (double running sum read at fractional lags), no quantisation;
- ``ideal low-pass``: the trace low-passed at the operator's local aliasing frequency
  1 / (2L), 16 levels per octave, raised-cosine edge over a fifth of an octave: nothing
  below the aliasing frequency is touched.

Usage (from the repository root): ``PYTHONPATH=. .venv/bin/python docs/bench/antialias_limits.py``
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

import tests.test_imaging_features as t
from pstm.config import AntiAlias, RhoFilter
from pstm.precondition import apply_rho

UPSAMPLE = 8
APERTURE_M, TAPER_M = 1000.0, 300.0
F64 = NDArray[np.float64]


def line(dx: float) -> tuple[F64, F64]:
    """Trace positions and their data (float64), the tests' flat-reflector line."""
    xs = np.arange(0.0, 6001.0, dx)
    zero = np.zeros(xs.size)
    times = t.reflector_time(t.FLAT, t.REFLECTOR_V_MPS, xs, zero, xs, zero)
    data = apply_rho(t.traces(times, t.FLAT.time_s / times, 450), t.DT_S, RhoFilter.TWO_D)
    return xs, data.astype(np.float64)


def upsample(data: F64) -> F64:
    n, big = data.shape[1], 2048
    spectrum = np.fft.rfft(data, n=big, axis=1)
    wide = np.zeros((data.shape[0], big * UPSAMPLE // 2 + 1), complex)
    wide[:, : spectrum.shape[1]] = spectrum
    result: F64 = np.fft.irfft(wide, n=big * UPSAMPLE, axis=1)[:, : n * UPSAMPLE] * UPSAMPLE
    return result


def lowpass_levels(u: F64, h: float, per_octave: int = 16) -> tuple[F64, F64]:
    """Pass-band edges (Hz) and the traces low-passed at each (level, trace, sample)."""
    n = 1 << int(np.ceil(np.log2(2 * u.shape[1])))
    spectrum, f = np.fft.rfft(u, n=n, axis=1), np.fft.rfftfreq(n, h)
    edges = 4.0 * 2.0 ** (np.arange(6 * per_octave) / per_octave)
    levels = []
    for fp in edges:
        fs = fp * 2.0**0.2
        gain = np.clip((fs - f) / (fs - fp), 0.0, 1.0)
        gain = 0.5 - 0.5 * np.cos(np.pi * gain)
        levels.append(np.fft.irfft(spectrum * gain, n=n, axis=1)[:, : u.shape[1]])
    return edges, np.stack(levels)


def migrate(dx: float, mode: str) -> F64:
    """Image (bins, tau) of the line, scaled to the 40 m line's trace density."""
    xs, data = line(dx)
    h = t.DT_S / UPSAMPLE
    u = upsample(data)
    grid = np.arange(u.shape[1])
    pad = 4000
    ext = np.zeros((u.shape[0], u.shape[1] + 2 * pad))
    ext[:, pad : pad + u.shape[1]] = u
    i2 = np.cumsum(np.cumsum(ext, axis=1), axis=1)
    if mode == "lowpass":
        edges, levels = lowpass_levels(u, h)
    x = np.arange(2700.0, 3301.0, 10.0)[:, None]
    tau = t.AA_T0_S + t.DT_S * np.arange(t.AA_NT)
    image = np.zeros((x.size, tau.size))
    for k, xk in enumerate(xs):
        d = np.abs(xk - x)
        z = np.clip((APERTURE_M - d) / TAPER_M, 0.0, 1.0)
        weight = np.where(d < APERTURE_M, 0.5 - 0.5 * np.cos(np.pi * z), 0.0)
        time = 2.0 * np.sqrt(tau**2 / 4.0 + d**2 / t.REFLECTOR_V_MPS**2)
        s = time / h
        half_length = 4.0 * d / (t.REFLECTOR_V_MPS**2 * time) * dx  # L = |dt/dx| dx, seconds
        if mode == "none":
            value = np.interp(s, grid, u[k])
        elif mode == "lcb":
            j = np.maximum(half_length / h, 1.0)

            def i2_at(p: F64, row: F64 = i2[k]) -> F64:
                return np.interp(p, np.arange(row.size) - pad, row)

            value = (i2_at(s + j - 1) - 2.0 * i2_at(s - 1) + i2_at(s - j - 1)) / j**2
        else:
            f_alias = 0.5 / np.maximum(half_length, 1e-9)
            level = np.searchsorted(edges, f_alias, side="right") - 1
            nearest = np.clip(np.rint(s).astype(int), 0, u.shape[1] - 1)
            filtered = levels[np.clip(level, 0, len(edges) - 1), k, nearest]
            value = np.where(level >= len(edges) - 1, np.interp(s, grid, u[k]), filtered)
        image += weight * value
    result: F64 = image * dx / t.AA_DX_M
    return result


def change(a: F64, b: F64, window: NDArray[np.bool_]) -> float:
    return float(np.linalg.norm((a - b)[window]) / np.linalg.norm(b[window]))


def main() -> None:
    window = t.event_window(t.FLAT)
    off = t.migrate_zero_offset_line(t.FLAT, AntiAlias.NONE).astype(np.float64)
    on = t.migrate_zero_offset_line(t.FLAT, AntiAlias.TRIANGLE).astype(np.float64)
    dense = t.migrate_zero_offset_line(t.FLAT, AntiAlias.NONE, t.AA_DENSE_DX_M)
    print("flat reflector at 1 s, 40 m traces; change of the image within +-60 ms")
    print(f"{'filter':34} {'vs no anti-aliasing':>20} {'vs 5 m traces':>14}")
    print(f"{'pstm, no anti-aliasing':34} {0.0:>20.2%} {change(off, dense, window):>14.2%}")
    print(f"{'pstm, LCB (quantised levels)':34} {change(on, off, window):>20.2%} "
          f"{change(on, dense, window):>14.2%}")  # fmt: skip
    ref_off = migrate(t.AA_DX_M, "none")
    ref_dense = migrate(t.AA_DENSE_DX_M, "none")
    print(
        f"{'float64, no anti-aliasing':34} {0.0:>20.2%} {change(ref_off, ref_dense, window):>14.2%}"
    )
    for mode, name in (("lcb", "float64, continuous LCB"), ("lowpass", "float64, ideal low-pass")):
        img = migrate(t.AA_DX_M, mode)
        print(
            f"{name:34} {change(img, ref_off, window):>20.2%} {change(img, ref_dense, window):>14.2%}"
        )


if __name__ == "__main__":
    main()
