"""The built-in synthetic survey: a small, seeded, land-style orthogonal 3D survey.

Events: point diffractors (exact double-square-root traveltimes with the true v_rms at the
point's time) and plane reflectors (exact constant-velocity image-source traveltimes with
the true v_rms at the reflector's reference time). A flat reflector therefore follows the
NMO hyperbola exactly, and a migration with the true velocity images every event at the
position written to the truth file.

Wavelets: reflections carry a zero-phase Ricker wavelet w. A plane reflector is the sum of
the point scatterers on it; at a receiver their arrivals start at the specular time, so
that 2D surface integral is a causal integration in time (stationary phase), and a point
diffractor consistent with it carries the time derivative of w (scaled by 1/(2 pi f_peak)
to keep its size). With the 3D rho filter (-d/dt, :mod:`pstm.precondition`) migration then
images both as zero-phase events with positive peaks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from pstm.config import Reflector, SegyEndian, SegySampleFormat, SyntheticConfig
from pstm.io.atomic import atomic_output
from pstm.io.headermap import HeaderWord
from pstm.io.headers import write_headers
from pstm.io.traces import trace_writer
from pstm.velocity import vrms_of_time

#: Half length of the Ricker wavelet support, in peak periods (exp(-pi^2 1.2^2) ~ 6e-7).
RICKER_HALF_PERIODS = 1.2


def ricker(t: NDArray[np.float64], peak_hz: float) -> NDArray[np.float64]:
    a = (math.pi * peak_hz * t) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def ricker_derivative_scaled(t: NDArray[np.float64], peak_hz: float) -> NDArray[np.float64]:
    """(d/dt ricker) / (2 pi f): the 3D point-scatterer wavelet (see the module notes)."""
    a = (math.pi * peak_hz * t) ** 2
    return -math.pi * peak_hz * t * np.exp(-a) * (3.0 - 2.0 * a)


def stations(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[NDArray[np.float64], ...]:
    """Shot and receiver positions (x, y), jittered."""
    rl, rk = np.meshgrid(
        np.arange(cfg.n_receiver_lines), np.arange(cfg.n_receivers_per_line), indexing="ij"
    )
    rx = cfg.origin_x_m + rk.ravel() * cfg.receiver_spacing_m
    ry = cfg.origin_y_m + rl.ravel() * cfg.receiver_line_spacing_m
    sl, sk = np.meshgrid(
        np.arange(cfg.n_shot_lines), np.arange(cfg.n_shots_per_line), indexing="ij"
    )
    sx = cfg.origin_x_m + (sl.ravel() + 0.5) * cfg.shot_line_spacing_m
    sy = cfg.origin_y_m + sk.ravel() * cfg.shot_spacing_m
    j = cfg.position_jitter_m
    rx = rx + rng.uniform(-j, j, rx.shape)
    ry = ry + rng.uniform(-j, j, ry.shape)
    sx = sx + rng.uniform(-j, j, sx.shape)
    sy = sy + rng.uniform(-j, j, sy.shape)
    return sx, sy, rx, ry


def _plane(refl: Reflector, v: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit normal (pointing down) and a point of the reflector plane, in metres."""
    tan_dip = math.tan(math.radians(refl.dip_deg))
    az = math.radians(refl.dip_azimuth_deg)
    normal = np.array([-tan_dip * math.cos(az), -tan_dip * math.sin(az), 1.0])
    normal /= np.linalg.norm(normal)
    return normal, np.array([refl.x_m, refl.y_m, v * refl.time_s / 2.0])


def reflector_time(
    refl: Reflector,
    v: float,
    sx: NDArray[np.float64],
    sy: NDArray[np.float64],
    rx: NDArray[np.float64],
    ry: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Exact constant-velocity reflection time (mirror the source in the plane)."""
    n, p0 = _plane(refl, v)
    src = np.stack([sx, sy, np.zeros_like(sx)], axis=-1)
    d = (src - p0) @ n
    mirror = src - 2.0 * d[:, None] * n
    rec = np.stack([rx, ry, np.zeros_like(rx)], axis=-1)
    result: NDArray[np.float64] = np.linalg.norm(mirror - rec, axis=-1) / v
    return result


def migrated_reflector_time(
    refl: Reflector, v: float, x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Vertical two-way time of the reflector below (x, y): where time migration puts it."""
    tan_dip = math.tan(math.radians(refl.dip_deg))
    az = math.radians(refl.dip_azimuth_deg)
    along = (np.asarray(x) - refl.x_m) * math.cos(az) + (np.asarray(y) - refl.y_m) * math.sin(az)
    result: NDArray[np.float64] = refl.time_s + 2.0 * tan_dip * along / v
    return result


def _add_wavelets(
    data: NDArray[np.float32],
    times: NDArray[np.float64],
    amps: NDArray[np.float64],
    dt: float,
    peak_hz: float,
    wavelet: Callable[[NDArray[np.float64], float], NDArray[np.float64]] = ricker,
) -> None:
    half = int(math.ceil(RICKER_HALF_PERIODS / peak_hz / dt))
    ns = data.shape[1]
    lags = np.arange(-half, half + 1)
    idx = np.rint(times / dt).astype(np.int64)[:, None] + lags[None, :]
    w = wavelet(idx * dt - times[:, None], peak_hz) * amps[:, None]
    ok = (idx >= 0) & (idx < ns)
    # flat indices (a trace's lags are distinct, so ``+=`` adds each one): 1D fancy
    # indexing is about 2x faster than the (row, sample) pair
    flat = (np.arange(data.shape[0]) * ns)[:, None] + idx
    data.reshape(-1)[flat[ok]] += w[ok].astype(np.float32)


#: Traces generated at once (:func:`write_survey`): the survey is made and written a block
#: at a time, so its memory does not grow with the survey (a whole 100,000 x 750 survey
#: at once: 536 MB peak) and the block stays in cache while its wavelets are added.
SYNTHETIC_BLOCK_TRACES = 8192

#: One event of the survey: arrival time and amplitude at every trace, and its wavelet.
_Event = tuple[NDArray[np.float64], NDArray[np.float64], Callable[..., NDArray[np.float64]]]


@dataclass(frozen=True)
class _Survey:
    table: pa.Table
    events: list[_Event]
    truth: dict[str, Any]
    rng: np.random.Generator  # the noise's generator, drawn block after block

    @property
    def ntr(self) -> int:
        return int(self.table.num_rows)


def _plan_survey(cfg: SyntheticConfig) -> _Survey:
    """Geometry, header table, every event's times and amplitudes, and the truth."""
    rng = np.random.default_rng(cfg.seed)
    ssx, ssy, rrx, rry = stations(cfg, rng)
    nshot, nrec = len(ssx), len(rrx)
    shot_id = np.repeat(np.arange(nshot), nrec)
    rec_id = np.tile(np.arange(nrec), nshot)
    sx, sy, rx, ry = ssx[shot_id], ssy[shot_id], rrx[rec_id], rry[rec_id]
    events: list[_Event] = []
    truth: dict[str, Any] = {"diffractors": [], "reflectors": []}
    for d in cfg.diffractors:
        v = float(vrms_of_time(cfg.velocity, np.array([d.time_s]))[0])
        h2 = (d.time_s / 2.0) ** 2
        t = np.sqrt(h2 + ((sx - d.x_m) ** 2 + (sy - d.y_m) ** 2) / v**2) + np.sqrt(
            h2 + ((rx - d.x_m) ** 2 + (ry - d.y_m) ** 2) / v**2
        )
        events.append((t, d.amplitude * d.time_s / t, ricker_derivative_scaled))
        truth["diffractors"].append({**d.model_dump(), "vrms_mps": v})
    for r in cfg.reflectors:
        v = float(vrms_of_time(cfg.velocity, np.array([r.time_s]))[0])
        t = reflector_time(r, v, sx, sy, rx, ry)
        events.append((t, r.amplitude * r.time_s / t, ricker))
        truth["reflectors"].append({**r.model_dump(), "vrms_mps": v})
    table = pa.table(
        {
            "trace_id": np.arange(len(sx), dtype=np.int64),
            "shot_id": shot_id.astype(np.int64),
            "receiver_id": rec_id.astype(np.int64),
            "source_x": sx,
            "source_y": sy,
            "receiver_x": rx,
            "receiver_y": ry,
        }
    )
    truth.update(dt_s=cfg.dt_s, n_samples=cfg.n_samples, ricker_peak_hz=cfg.ricker_peak_hz)
    return _Survey(table, events, truth, rng)


def _fill_block(block: NDArray[np.float32], survey: _Survey, lo: int, cfg: SyntheticConfig) -> None:
    """Traces lo .. lo + len(block) - 1 into ``block`` (zeroed here); call for consecutive
    blocks in order (the noise is drawn from one generator, block after block)."""
    hi = lo + block.shape[0]
    block[:] = 0.0
    for t, amps, wavelet in survey.events:
        _add_wavelets(block, t[lo:hi], amps[lo:hi], cfg.dt_s, cfg.ricker_peak_hz, wavelet)
    if cfg.noise_rms > 0:
        block += survey.rng.normal(0.0, cfg.noise_rms, block.shape).astype(np.float32)


def make_survey(cfg: SyntheticConfig) -> tuple[NDArray[np.float32], pa.Table, dict[str, Any]]:
    """Traces (ntr x ns, float32, t0 = 0), header table and truth dictionary, in memory
    (:func:`write_survey` writes the same traces a block at a time)."""
    survey = _plan_survey(cfg)
    data = np.empty((survey.ntr, cfg.n_samples), dtype=np.float32)
    for lo in range(0, survey.ntr, SYNTHETIC_BLOCK_TRACES):
        _fill_block(data[lo : lo + SYNTHETIC_BLOCK_TRACES], survey, lo, cfg)
    return data, survey.table, survey.truth


def write_survey(
    cfg: SyntheticConfig, traces_path: str | Path, headers_path: str | Path, truth_path: str | Path
) -> int:
    """Generate the survey and write traces, headers and truth atomically, the traces a
    block of SYNTHETIC_BLOCK_TRACES at a time (the same traces as :func:`make_survey`).
    Returns ntr."""
    survey = _plan_survey(cfg)
    size = min(SYNTHETIC_BLOCK_TRACES, survey.ntr)
    blocks = [np.empty((size, cfg.n_samples), np.float32) for _ in range(2)]
    with (
        trace_writer(traces_path, survey.ntr, cfg.n_samples, t0=0.0, dt=cfg.dt_s) as arr,
        ThreadPoolExecutor(1) as writer,
    ):
        # each block is made while the one before it is written (zarr's writes release
        # the GIL): two buffers, a block reused only once its write has finished
        pending: Future[None] | None = None
        for n, lo in enumerate(range(0, survey.ntr, SYNTHETIC_BLOCK_TRACES)):
            part = blocks[n % 2][: min(SYNTHETIC_BLOCK_TRACES, survey.ntr - lo)]
            _fill_block(part, survey, lo, cfg)
            if pending is not None:
                pending.result()
            pending = writer.submit(arr.__setitem__, slice(lo, lo + part.shape[0]), part)
        if pending is not None:
            pending.result()
    write_headers(headers_path, survey.table)
    with atomic_output(truth_path) as tmp:
        tmp.write_text(json.dumps(survey.truth, indent=2))
    return survey.ntr


#: The survey's header words in a SEG-Y file of :func:`write_survey_segy` (SEG-Y rev 1
#: positions), by header table column.
SEGY_COORDINATES: dict[str, HeaderWord] = {
    "source_x": HeaderWord.SOURCE_X,
    "source_y": HeaderWord.SOURCE_Y,
    "receiver_x": HeaderWord.RECEIVER_X,
    "receiver_y": HeaderWord.RECEIVER_Y,
}


def write_survey_segy(
    cfg: SyntheticConfig,
    path: str | Path,
    sample_format: SegySampleFormat = SegySampleFormat.IEEE,
    endian: SegyEndian = SegyEndian.BIG,
    coordinate_scalar: int = -100,
) -> tuple[NDArray[np.float32], pa.Table]:
    """The survey as one pre-stack SEG-Y file (atomically): source and receiver X/Y, the
    offset and the midpoint as CDP X/Y at their rev 1 bytes, coordinates stored with
    ``coordinate_scalar``: a file to try the SEG-Y import and ``pstm init`` on. Returns the
    traces and the header table (coordinates unrounded). In memory: the survey's traces
    once (the default config's survey: 13,200 traces x 376 samples, 20 MB)."""
    from pstm.io.segy import write_segy  # segyio: only for this file

    data, table, _ = make_survey(cfg)
    c = {name: table.column(name).to_numpy() for name in SEGY_COORDINATES}
    headers: dict[HeaderWord | int, NDArray[np.generic]] = {
        word: c[name] for name, word in SEGY_COORDINATES.items()
    }
    headers[HeaderWord.SIGNED_OFFSET] = np.hypot(
        c["receiver_x"] - c["source_x"], c["receiver_y"] - c["source_y"]
    )
    headers[HeaderWord.CDP_X] = 0.5 * (c["source_x"] + c["receiver_x"])
    headers[HeaderWord.CDP_Y] = 0.5 * (c["source_y"] + c["receiver_y"])
    write_segy(path, data, headers, cfg.dt_s, 0.0, sample_format, endian, coordinate_scalar)
    return data, table
