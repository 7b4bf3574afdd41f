"""Trace preconditioning, done once per trace before migration (its own workflow stage).

The rho filter compensates the spectral shaping of the Kirchhoff summation: a 3D
(surface) summation integrates once, (i omega)^-1, so the traces are differentiated; a 2D
(line) summation contributes (i omega)^-1/2, so they are half-differentiated (Yilmaz,
Seismic Data Analysis, 2001, sec. 4.1; Bleistein, Cohen & Stockwell 2001, ch. 5).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from pstm.config import NonFinitePolicy, RhoFilter
from pstm.io.atomic import atomic_output
from pstm.io.traces import DT_ATTR, T0_ATTR, TraceStore, create_trace_array
from pstm.migrate import clean_traces
from pstm.plan import PRECONDITION_CHUNK_TRACES


def rho_response(n_fft: int, dt: float, kind: RhoFilter) -> NDArray[np.complex128]:
    """Frequency response on ``np.fft.rfftfreq(n_fft, dt)``, numpy's e^{-i omega t} forward
    transform (so d/dt multiplies by +i omega).

    The Kirchhoff sum along a diffraction surface that is tangent to an event from below
    integrates the event anti-causally: int_tau^inf w(s) ds in 3D, the half-integral in 2D
    (stationary phase; Bleistein, Cohen & Stockwell 2001, ch. 5). Their inverses are -d/dt,
    i.e. -i omega, and (-i omega)^(1/2) = sqrt(omega) e^{-i pi/4}: with them a zero-phase
    reflection migrates to the same zero-phase wavelet with its sign kept."""
    omega = 2.0 * np.pi * np.fft.rfftfreq(n_fft, dt)
    response = np.ones(omega.shape, dtype=np.complex128)
    if kind is RhoFilter.THREE_D:
        response *= -1j * omega
    elif kind is RhoFilter.TWO_D:
        response *= np.sqrt(omega) * np.exp(-1j * np.pi / 4)
    if kind in (RhoFilter.THREE_D, RhoFilter.TWO_D, RhoFilter.NONE):
        return response
    raise ValueError(f"rho filter {kind!r} must be resolved before use")


#: Traces transformed at once inside :func:`apply_rho`: the spectra of 512 traces of 750
#: samples (2.4 MB) stay in cache and in memory that the allocator reuses; whole chunks of
#: 8,192 traces at once (49 MB spectra allocated afresh on every call) took 0.076-0.39 s
#: per chunk instead of 0.045-0.05 s (docs/benchmarks.md, end to end).
RHO_BLOCK_TRACES = 512


def apply_rho(data: NDArray[np.float32], dt: float, kind: RhoFilter) -> NDArray[np.float32]:
    """Filter traces (ntr, ns); zero-padded to twice the length to avoid wrap-around. In
    single precision, like the traces (numpy >= 2 transforms float32 as float32): results
    within 2e-7 of the double precision ones (relative to the largest sample). Transformed
    :data:`RHO_BLOCK_TRACES` traces at a time."""
    if kind is RhoFilter.NONE:
        return data
    ntr, ns = data.shape
    n_fft = 2 * ns
    response = rho_response(n_fft, dt, kind).astype(np.complex64)
    out = np.empty((ntr, ns), np.float32)
    for start in range(0, ntr, RHO_BLOCK_TRACES):
        block = np.asarray(data[start : start + RHO_BLOCK_TRACES], dtype=np.float32)
        spec = np.fft.rfft(block, n=n_fft, axis=1)
        spec *= response
        out[start : start + RHO_BLOCK_TRACES] = np.fft.irfft(spec, n=n_fft, axis=1)[:, :ns]
    return out


def precondition(
    store: TraceStore, kind: RhoFilter, non_finite: NonFinitePolicy, out: str, threads: int = 1
) -> int:
    """Check traces for NaN/Inf (``non_finite`` policy) and write them filtered to ``out``
    (same layout and attributes), chunk by chunk; ``threads`` chunks are read and filtered
    at once (numpy's FFT releases the GIL), written in order."""
    ranges = [
        np.arange(start, min(start + PRECONDITION_CHUNK_TRACES, store.ntr))
        for start in range(0, store.ntr, PRECONDITION_CHUNK_TRACES)
    ]

    def filtered(ids: NDArray[np.int64]) -> NDArray[np.float32]:
        return apply_rho(clean_traces(store.read(ids), ids, non_finite, store.path), store.dt, kind)

    with atomic_output(out) as tmp, ThreadPoolExecutor(max(1, threads)) as pool:
        # uncompressed: every tile job within aperture reads a trace again (about five
        # reads per trace on the benchmark survey); zstd saved only ~9 % on filtered
        # float32 samples, and without it a tile job's reads take 0.26-0.37 s instead
        # of 0.38-0.47 s (docs/benchmarks.md, end to end)
        arr = create_trace_array(tmp, store.ntr, store.ns, compressed=False)
        # a window of ``threads`` chunks in flight, written in order as each completes
        pending: deque[tuple[NDArray[np.int64], Future[NDArray[np.float32]]]] = deque()
        for i, ids in enumerate(ranges):
            pending.append((ids, pool.submit(filtered, ids)))
            while pending and (len(pending) >= max(1, threads) or i == len(ranges) - 1):
                done, future = pending.popleft()
                arr[int(done[0]) : int(done[-1]) + 1] = future.result()
        arr.attrs.update({DT_ATTR: store.dt, T0_ATTR: store.t0, "rho_filter": kind.value})
    return store.ntr
