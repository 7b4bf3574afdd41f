"""What operator anti-aliasing can and cannot do on the tests' synthetics (README, "What
does not work yet"; docs/benchmarks.md, "Anti-aliasing: the limits of the criterion").

The synthetics of ``tests/test_imaging_features.py``: zero-offset 2D lines, traces every
40 m (references: every 5 m), v = 2000 m/s, 25 Hz Ricker, 2D rho filter; a flat reflector
and a 30 deg one at 1 s. Four numbers per filter, the tests' own measures:

- M1: above the flat reflector (tau 0.70-0.90 s), the energy above the operator's aliasing
  frequency (28.7 Hz) without anti-aliasing over the energy with it (criterion: >= 10);
- M2: the flat reflector's image within +-60 ms, relative L2 change (criterion: < 1 %);
- M3: the 30 deg reflector's spectrum below half its aliasing frequency (12.5 Hz), relative
  L2 change (criterion: < 1 %);
- M4: the 30 deg line's aliasing noise: image energy more than 0.1 s from the event (where
  the 5 m line's image is 1e-4 of the 40 m one's), with anti-aliasing over without. No
  criterion: a filter that leaves it near 1 does not anti-alias dipping data.

Filters: pstm's own (float32, LCB at 2 levels per octave), and an independent float64
migration of the same lines (traces band-limited upsampled 8x, read by linear
interpolation), in which each contribution reads its trace filtered according to the local
ideal length L = |dt/dx| dx, i.e. the operator's local aliasing frequency f_a = 1 / (2 L):
the continuous LCB triangle (exact L at every contribution), an ideal low-pass (raised
cosine from f_a to 1.15 f_a) and zero-phase Butterworth responses 1 / (1 + (f / fc)^8)
(order 4), chosen from a bank of levels 8 Hz-512 Hz (16 per octave, the level below f_a;
or 2 per octave, blended linearly in log f between the two around f_a).

Usage (from the repository root, about a minute):
``OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python docs/bench/antialias_limits.py``
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

import tests.test_imaging_features as t
from pstm.config import AntiAlias, Reflector, RhoFilter
from pstm.precondition import apply_rho

F64 = NDArray[np.float64]
UPSAMPLE = 8
H = t.DT_S / UPSAMPLE
APERTURE_M, TAPER_M = 1000.0, 300.0
X = np.arange(2700.0, 3301.0, 10.0)[:, None]
TAU = t.AA_T0_S + t.DT_S * np.arange(t.AA_NT)
V = t.REFLECTOR_V_MPS
#: the float64 filter bank: levels from BANK_LOW_HZ over BANK_OCTAVES (above: unfiltered)
BANK_LOW_HZ, BANK_OCTAVES = 8.0, 6
Gain = Callable[[F64, float], F64]  # gain(f, the level's f_a)


def line(refl: Reflector, dx: float) -> F64:
    """The line's traces (float64), band-limited upsampled UPSAMPLE x."""
    xs = np.arange(0.0, 6001.0, dx)
    zero = np.zeros(xs.size)
    times = t.reflector_time(refl, V, xs, zero, xs, zero)
    data = apply_rho(t.traces(times, refl.time_s / times, 450), t.DT_S, RhoFilter.TWO_D)
    n, big = data.shape[1], 2048
    spectrum = np.fft.rfft(data.astype(np.float64), n=big, axis=1)
    wide = np.zeros((data.shape[0], big * UPSAMPLE // 2 + 1), complex)
    wide[:, : spectrum.shape[1]] = spectrum
    result: F64 = np.fft.irfft(wide, n=big * UPSAMPLE, axis=1)[:, : n * UPSAMPLE] * UPSAMPLE
    return result


def geometry(xk: float, dx: float) -> tuple[F64, F64, F64]:
    """Taper weight, upsampled sample position and L (s) of one trace's contributions."""
    d = np.abs(xk - X)
    z = np.clip((APERTURE_M - d) / TAPER_M, 0.0, 1.0)
    weight = np.where(d < APERTURE_M, 0.5 - 0.5 * np.cos(np.pi * z), 0.0) * np.ones_like(TAU)
    time = 2.0 * np.sqrt(TAU**2 / 4.0 + d**2 / V**2)
    return weight, time / H, 4.0 * d / (V**2 * time) * dx


def ideal(f: F64, fa: float) -> F64:
    g = np.clip((1.15 * fa - f) / (0.15 * fa), 0.0, 1.0)
    result: F64 = 0.5 - 0.5 * np.cos(np.pi * g)
    return result


def butterworth(ratio: float) -> Gain:
    return lambda f, fa: 1.0 / (1.0 + (f / (ratio * fa)) ** 8)


def migrate(refl: Reflector, dx: float, mode: tuple = ("none",)) -> F64:
    """Image (bins, tau), scaled to the 40 m line's trace density. ``mode``: ("none",),
    ("lcb",) or ("bank", gain, levels per octave, blend)."""
    u = line(refl, dx)
    xs = np.arange(0.0, 6001.0, dx)
    grid = np.arange(u.shape[1])
    image = np.zeros((X.size, TAU.size))
    geo = [geometry(xk, dx) for xk in xs]
    if mode[0] == "bank":
        gain, per_octave, blend = mode[1:]
        edges = BANK_LOW_HZ * 2.0 ** (np.arange(BANK_OCTAVES * per_octave + 1) / per_octave)
        q = np.stack(
            [per_octave * np.log2(0.5 / np.maximum(g[2], 1e-9) / BANK_LOW_HZ) for g in geo]
        )
        q = np.clip(q, 0.0, len(edges) - 1.0)
        level = np.floor(q).astype(int)
        frac = q - level if blend else np.zeros_like(q)
        n = 1 << int(np.ceil(np.log2(2 * u.shape[1])))
        spectrum, f = np.fft.rfft(u, n=n, axis=1), np.fft.rfftfreq(n, H)
        for i in np.unique(np.concatenate([level.ravel(), level[frac > 0] + 1])):
            top = i >= len(edges) - 1
            filt = u if top else np.fft.irfft(spectrum * gain(f, edges[i]), n=n, axis=1)
            mix = np.where(level == i, 1.0 - frac, 0.0) + np.where(level + 1 == i, frac, 0.0)
            for k in np.flatnonzero((mix > 0).any(axis=(1, 2))):
                w, s, _ = geo[k]
                sel = mix[k] > 0
                image[sel] += mix[k][sel] * w[sel] * np.interp(s[sel], grid, filt[k, : grid.size])
        result: F64 = image * dx / t.AA_DX_M
        return result
    pad = 4000
    i2 = np.zeros((u.shape[0], u.shape[1] + 2 * pad))
    i2[:, pad : pad + u.shape[1]] = u
    i2 = np.cumsum(np.cumsum(i2, axis=1), axis=1)
    lags = np.arange(i2.shape[1]) - pad
    for k, (w, s, half_length) in enumerate(geo):
        if mode[0] == "none":
            value = np.interp(s, grid, u[k])
        else:  # the triangle of half-length L: second difference of the double integral
            j = np.maximum(half_length / H, 1.0)
            ends = [np.interp(p, lags, i2[k]) for p in (s + j - 1, s - 1, s - j - 1)]
            value = (ends[0] - 2.0 * ends[1] + ends[2]) / j**2
        image += w * value
    result = image * dx / t.AA_DX_M
    return result


def pstm_image(refl: Reflector, antialias: AntiAlias) -> F64:
    return t.migrate_zero_offset_line(refl, antialias).astype(np.float64)


def change(a: NDArray, b: NDArray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class Measures:
    """M1-M4 of a filter's flat and steep images against the same migration without."""

    def __init__(self, flat_off: F64, steep_off: F64) -> None:
        self.flat_off, self.steep_off = flat_off, steep_off
        self.noise = np.broadcast_to(
            (t.AA_NOISE_S[0] <= TAU) & (t.AA_NOISE_S[1] >= TAU), flat_off.shape
        )
        dip = 2.0 * math.sqrt(t.FLAT.time_s**2 - t.AA_NOISE_S[1] ** 2) / (V * t.FLAT.time_s)
        self.f_alias = 1.0 / (2.0 * t.AA_DX_M * dip)
        x = X[:, 0]
        away = t.migrated_reflector_time(t.STEEP, V, x, np.zeros_like(x))
        self.away = np.abs(TAU[None, :] - away[:, None]) > 0.1

    def row(self, flat: F64, steep: F64) -> tuple[float, float, float, float]:
        f, off = t.windowed_spectrum(self.flat_off, self.noise)
        _, on = t.windowed_spectrum(flat, self.noise)
        m1 = t.energy(off, f > self.f_alias) / t.energy(on, f > self.f_alias)
        wf, ws = t.event_window(t.FLAT), t.event_window(t.STEEP)
        m2 = change(flat[wf], self.flat_off[wf])
        band = f < t.F_ALIAS_HZ / 2
        m3 = change(t.windowed_spectrum(steep, ws)[1][:, band],
                    t.windowed_spectrum(self.steep_off, ws)[1][:, band])  # fmt: skip
        m4 = float((steep[self.away] ** 2).sum() / (self.steep_off[self.away] ** 2).sum())
        return m1, m2, m3, m4


def main() -> None:
    print(f"{'filter':44} {'M1':>8} {'M2':>7} {'M3':>7} {'M4':>6}")
    pstm = Measures(pstm_image(t.FLAT, AntiAlias.NONE), pstm_image(t.STEEP, AntiAlias.NONE))
    m = pstm.row(pstm_image(t.FLAT, AntiAlias.TRIANGLE), pstm_image(t.STEEP, AntiAlias.TRIANGLE))
    print(f"{'pstm, LCB (2 levels per octave)':44} {m[0]:8.0f} {m[1]:7.2%} {m[2]:7.2%} {m[3]:6.2f}")
    ref = Measures(migrate(t.FLAT, t.AA_DX_M), migrate(t.STEEP, t.AA_DX_M))
    filters: list[tuple[str, tuple]] = [
        ("float64, continuous LCB", ("lcb",)),
        ("float64, ideal low-pass at f_a", ("bank", ideal, 16, False)),
        ("float64, Butterworth fc = f_a", ("bank", butterworth(1.0), 16, False)),
        ("float64, Butterworth fc = 1.6 f_a", ("bank", butterworth(1.6), 16, False)),
        ("float64, Butterworth fc = 1.6 f_a, 2/oct blend", ("bank", butterworth(1.6), 2, True)),
    ]
    for name, mode in filters:
        m = ref.row(migrate(t.FLAT, t.AA_DX_M, mode), migrate(t.STEEP, t.AA_DX_M, mode))
        print(f"{name:44} {m[0]:8.0f} {m[1]:7.2%} {m[2]:7.2%} {m[3]:6.2f}", flush=True)
    dense = migrate(t.FLAT, t.AA_DENSE_DX_M)
    wf = t.event_window(t.FLAT)
    print(
        f"float64 without anti-aliasing vs 5 m traces: flat {change(ref.flat_off[wf], dense[wf]):.2%}"
    )


if __name__ == "__main__":
    main()
