"""Kernel benchmark: one synthetic problem, every backend (and PyLops) on it, same run.

The problem: sources and receivers on a line (ny = 1, a 2D line, PyLops can run it too) or
scattered over the area (ny > 1); every trace is a pair of them, the velocity is constant,
the traces are band-limited noise long enough that every traveltime lies inside them, and
the aperture covers the whole grid: every (trace, output sample) pair is one contribution,
the same work PyLops' ``Kirchhoff`` adjoint does (its depth axis is z = v tau / 2).

Timing: each run calls the kernel ``repeat`` times after one warm-up call (which also
compiles); it reports the minimum and median wall time and the process CPU time of the best
run, so a loaded machine shows up as CPU time < wall time x threads. The runs of one
``pstm bench`` command are timed round-robin (ROUND_ROBIN: one call of each in turn, so
that a slow phase of a shared machine slows them alike); a peer is timed after them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pstm.config import (
    TRAVELTIME_NODE_SAMPLES,
    AntiAlias,
    Backend,
    Interpolation,
    Traveltime,
    Weights,
)
from pstm.kernels import (
    ImageTarget,
    KernelOptions,
    TraceBatch,
    get_kernel,
    get_trace_ops,
    resolve_backend,
)
from pstm.kernels.operator import prepare

#: Output bin spacing of the benchmark grid, metres.
BENCH_BIN_M = 10.0
#: Constant velocity of the benchmark, m/s.
BENCH_VELOCITY_MPS = 2000.0
#: Sample interval of traces and output, seconds.
BENCH_DT_S = 0.004

#: Offset classes of ``--features everything`` (common-image gathers: each trace goes to
#: the class of its offset rank, equal counts).
BENCH_OFFSET_CLASSES = 4

#: Every imaging feature at once (what ``--features everything`` switches on).
EVERYTHING: dict[str, Any] = {
    "n_offset_classes": BENCH_OFFSET_CLASSES,
    "aperture_taper_m": 200.0,
    "max_angle_deg": 80.0,
    "angle_taper_deg": 10.0,
    "max_stretch": 2.0,
    "weights": Weights.TRUE_AMPLITUDE,
    "antialias": AntiAlias.TRIANGLE,
    "antialias_spacing_m": (BENCH_BIN_M, BENCH_BIN_M),
}


@dataclass(frozen=True)
class Problem:
    batch: TraceBatch
    target: ImageTarget
    nsrc: int
    nrec: int

    @property
    def nominal(self) -> int:
        """Trace x output-sample pairs (PyLops evaluates every one)."""
        nx, ny, nt = self.target.shape
        return self.batch.ntr * nx * ny * nt


def make_problem(traces: int, nx: int, ny: int, nt: int, seed: int = 0) -> Problem:
    """A deterministic problem with about ``traces`` traces (nsrc x nrec of them)."""
    rng = np.random.default_rng(seed)
    nsrc = max(1, int(round(math.sqrt(traces * 0.8))))
    nrec = max(1, int(round(traces / nsrc)))
    width, depth = (nx - 1) * BENCH_BIN_M, (ny - 1) * BENCH_BIN_M
    if ny == 1:
        src = np.stack([np.linspace(0, width, nsrc), np.zeros(nsrc)])
        rec = np.stack([np.linspace(0, width, nrec), np.zeros(nrec)])
    else:
        src = rng.uniform([[0.0], [0.0]], [[width], [depth]], (2, nsrc))
        rec = rng.uniform([[0.0], [0.0]], [[width], [depth]], (2, nrec))
    isrc, irec = np.repeat(np.arange(nsrc), nrec), np.tile(np.arange(nrec), nsrc)
    sx, sy, rx, ry = src[0, isrc], src[1, isrc], rec[0, irec], rec[1, irec]
    tau_max = (nt - 1) * BENCH_DT_S
    span = math.hypot(width, depth)
    t_max = 2.0 * math.sqrt((tau_max / 2) ** 2 + (span / BENCH_VELOCITY_MPS) ** 2)
    ns = int(math.ceil(t_max / BENCH_DT_S)) + 4
    white = rng.standard_normal((len(sx), ns + 4)).astype(np.float32)
    data = (0.25 * white[:, :-4] + 0.5 * white[:, 2:-2] + 0.25 * white[:, 4:]).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(nx) * BENCH_BIN_M, np.arange(ny) * BENCH_BIN_M, indexing="ij")
    batch = TraceBatch(data, 0.0, BENCH_DT_S, sx, sy, rx, ry, np.zeros(len(sx), np.int32))
    vrms = np.full((nx, ny, nt), BENCH_VELOCITY_MPS, np.float32)
    return Problem(batch, ImageTarget(gx, gy, 0.0, BENCH_DT_S, vrms), nsrc, nrec)


@dataclass(frozen=True)
class Result:
    backend: str
    features: str
    interpolation: str
    traveltime: str
    threads: int
    traces: int
    outputs: int
    contributions: int
    seconds: float  # best wall time
    seconds_median: float
    cpu_seconds: float  # process CPU time of the best run (all threads)
    repeat: int
    #: best time of :func:`pstm.kernels.operator.prepare` alone (tables; the oversampling
    #: and anti-aliasing levels too, except for numba, whose kernels build them per block
    #: of traces), which is part of ``seconds``; 0 where not separable (peers)
    prep_seconds: float = 0.0

    @property
    def contributions_per_s(self) -> float:
        """Throughput of the whole call, preparation included (what a tile job gets)."""
        return self.contributions / self.seconds

    @property
    def kernel_contributions_per_s(self) -> float:
        """Throughput of the summation alone (the call minus its preparation)."""
        return self.contributions / max(self.seconds - self.prep_seconds, 1e-12)

    def as_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "contributions_per_s": self.contributions_per_s,
            "kernel_contributions_per_s": self.kernel_contributions_per_s,
        }


def _time(fn: Callable[[], int], repeat: int) -> tuple[int, float, float, float]:
    (timed,) = _time_round_robin([fn], repeat)
    return timed


def _time_round_robin(
    fns: list[Callable[[], int]], repeat: int
) -> list[tuple[int, float, float, float]]:
    """Each function's result, best and median wall time and the CPU time of its best call:
    one warm-up call each (JIT compile or cache load), then ``repeat`` rounds that call each
    function once in turn (ROUND_ROBIN: a slow phase of a shared machine, which lasts
    seconds, then slows every variant's calls alike instead of the one that ran in it)."""
    results = [fn() for fn in fns]
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            c0, w0 = time.process_time(), time.perf_counter()
            results[i] = fn()
            walls[i].append(time.perf_counter() - w0)
            cpus[i].append(time.process_time() - c0)
    timed = []
    for n, wall, cpu in zip(results, walls, cpus, strict=True):
        best = int(np.argmin(wall))
        timed.append((n, wall[best], statistics.median(wall), cpu[best]))
    return timed


def with_offset_classes(batch: TraceBatch, n: int) -> TraceBatch:
    """The batch with its traces in ``n`` offset classes of equal counts (by offset rank)."""
    offset = np.hypot(batch.rx - batch.sx, batch.ry - batch.sy)
    rank = np.argsort(np.argsort(offset, kind="stable"), kind="stable")
    return dataclasses.replace(batch, offset_class=(rank * n // batch.ntr).astype(np.int32))


#: One timed variant of :func:`run_backends`: backend, kernel options, feature-set name.
Run = tuple[Backend, KernelOptions, str]


def _calls(
    problem: Problem, options: KernelOptions, backend: Backend
) -> tuple[Callable[[], int], Callable[[], int]]:
    """One kernel call of ``backend`` on ``problem`` (allocating its output arrays, as a
    tile's first batch does) and one :func:`pstm.kernels.operator.prepare` alone."""
    kernel, ops = get_kernel(backend), get_trace_ops(backend)
    batch = with_offset_classes(problem.batch, options.n_offset_classes)
    nx, ny, nt = problem.target.shape

    def once() -> int:
        gathers = np.zeros((options.n_offset_classes, nx, ny, nt), np.float32)
        fold = np.zeros(gathers.shape, np.int32)
        return int(kernel(batch, problem.target, options, gathers, fold))

    def prep_only() -> int:
        prepare(batch, problem.target, options, ops)
        return 0

    return once, prep_only


def run_backends(problem: Problem, runs: list[Run], repeat: int) -> list[Result]:
    """Time each run's kernel call on ``problem``, the runs round-robin (ROUND_ROBIN in
    :func:`_time_round_robin`), then their :func:`pstm.kernels.operator.prepare` alone, the
    same way."""
    nx, ny, nt = problem.target.shape
    resolved = [resolve_backend(backend, traveltime=o.traveltime)[0] for backend, o, _ in runs]
    calls = [_calls(problem, o, b) for b, (_, o, _) in zip(resolved, runs, strict=True)]
    timed = _time_round_robin([once for once, _ in calls], repeat)
    prep_timed = _time_round_robin([prep for _, prep in calls], repeat)
    results = []
    for backend, (_, o, features), (n, best, median, cpu), prep in zip(
        resolved, runs, timed, prep_timed, strict=True
    ):
        threads = 1 if backend is Backend.NUMPY else o.threads  # numpy runs on one thread
        result = Result(
            backend.value, features, o.interpolation.value, o.traveltime.value, threads,
            problem.batch.ntr, nx * ny * nt, n, best, median, cpu, repeat, prep[1],
        )  # fmt: skip
        results.append(result)
    return results


def run_backend(
    problem: Problem,
    backend: Backend,
    options: KernelOptions,
    features: str,
    repeat: int,
) -> Result:
    """:func:`run_backends` of one run."""
    (result,) = run_backends(problem, [(backend, options, features)], repeat)
    return result


def run_pylops(problem: Problem, threads: int, repeat: int) -> Result:
    """PyLops' Kirchhoff adjoint (numba engine, analytic traveltimes) on the same problem."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))
    try:
        from pylops.waveeqprocessing import Kirchhoff
    except ImportError as exc:
        from pstm.errors import BackendUnavailableError

        raise BackendUnavailableError(
            f"--peer pylops needs PyLops: pip install -e '.[bench]' ({exc})"
        ) from None
    import numba

    nx, ny, nt = problem.target.shape
    if ny != 1:
        from pstm.errors import ConfigError

        raise ConfigError("--peer pylops runs 2D problems only: use --ny 1")
    x = problem.target.x[:, 0].astype(np.float32)
    z = (BENCH_VELOCITY_MPS * (problem.target.t0 + BENCH_DT_S * np.arange(nt)) / 2.0).astype(
        np.float32
    )
    b = problem.batch
    ns = b.data.shape[1]
    t = (b.t0 + b.dt * np.arange(ns)).astype(np.float32)
    srcs = np.stack([b.sx[:: problem.nrec], np.zeros(problem.nsrc)]).astype(np.float32)
    recs = np.stack([b.rx[: problem.nrec], np.zeros(problem.nrec)]).astype(np.float32)
    wav = np.zeros(3, np.float32)
    wav[1] = 1.0
    numba.set_num_threads(threads)
    op = Kirchhoff(
        z, x, t, srcs, recs, BENCH_VELOCITY_MPS, wav, 1,
        mode="analytic", engine="numba", dtype="float32",
    )  # fmt: skip
    data = b.data.reshape(problem.nsrc * problem.nrec * ns)

    def once() -> int:
        op.rmatvec(data)
        return problem.nominal

    n, best, median, cpu = _time(once, repeat)
    return Result(
        "pylops", "plain", "linear", "exact", threads, b.ntr, nx * nt, n, best, median, cpu,
        repeat,
    )  # fmt: skip


def options_for(
    features: str,
    interpolation: Interpolation,
    oversampling: int,
    threads: int,
    traveltime: Traveltime = Traveltime.EXACT,
    node_samples: int = TRAVELTIME_NODE_SAMPLES,
) -> KernelOptions:
    base = KernelOptions(
        aperture_m=1e9,
        interpolation=interpolation,
        oversampling=oversampling,
        traveltime=traveltime,
        traveltime_node_samples=node_samples,
        threads=threads,
    )
    return dataclasses.replace(base, **EVERYTHING) if features == "everything" else base


def format_table(results: list[Result]) -> str:
    head = f"{'backend':8} {'features':10} {'interp':20} {'traveltime':12} {'thr':>3} "
    head += f"{'contrib':>10} "
    head += f"{'best s':>9} {'median s':>9} {'cpu s':>9} {'prep s':>9} {'contrib/s':>10} "
    head += f"{'kernel/s':>10}"
    lines = [head]
    for r in results:
        lines.append(
            f"{r.backend:8} {r.features:10} {r.interpolation:20} {r.traveltime:12} "
            f"{r.threads:>3} {r.contributions:>10.4g} {r.seconds:>9.4f} {r.seconds_median:>9.4f} "
            f"{r.cpu_seconds:>9.4f} {r.prep_seconds:>9.4f} {r.contributions_per_s:>10.3g} "
            f"{r.kernel_contributions_per_s:>10.3g}"
        )
    return "\n".join(lines)


def ratio(a: Result, b: Result) -> float:
    return a.contributions_per_s / b.contributions_per_s


__all__ = ["Problem", "Result", "make_problem", "run_backend", "run_backends", "run_pylops"]


def interpolation_error(
    interpolation: Interpolation, oversampling: int, band: float, seed: int = 0
) -> float:
    """Relative RMS error of a trace interpolation against exact band-limited (Fourier)
    interpolation, on random traces with energy up to ``band`` x Nyquist, read at random
    positions away from the trace ends."""
    from pstm.kernels.operator import SINC_HALF_TAPS, oversample

    rng = np.random.default_rng(seed)
    ns, ntr, npos = 512, 16, 4096
    nf = ns // 2 + 1
    spectrum = rng.standard_normal((ntr, nf)) + 1j * rng.standard_normal((ntr, nf))
    spectrum[:, np.fft.rfftfreq(ns) > 0.5 * band] = 0.0
    traces = np.fft.irfft(spectrum, n=ns, axis=1)
    margin = 4 * SINC_HALF_TAPS
    pos = rng.uniform(margin, ns - margin, npos)
    freqs = np.fft.rfftfreq(ns) * ns  # cycles per trace length
    phase = np.exp(2j * np.pi * freqs[None, :] * pos[:, None] / ns)  # (npos, nf)
    weights = np.where((freqs == 0) | (freqs == ns / 2), 1.0, 2.0) / ns
    exact = np.real((spectrum * weights) @ phase.T)  # (ntr, npos)
    factor = 1 if interpolation is Interpolation.LINEAR else oversampling
    resampled = traces if factor == 1 else oversample(traces.astype(np.float32), factor)
    u = pos * factor
    if interpolation is Interpolation.OVERSAMPLED_NEAREST:
        approx = resampled[:, np.rint(u).astype(int)]
    else:
        i = np.floor(u).astype(int)
        w = u - i
        approx = (1 - w) * resampled[:, i] + w * resampled[:, i + 1]
    return float(np.sqrt(np.mean((approx - exact) ** 2) / np.mean(exact**2)))


def accuracy_table(oversampling: int) -> str:
    lines = [f"{'interpolation':22} {'50% Nyquist':>12} {'80% Nyquist':>12}  (relative RMS error)"]
    for interp in Interpolation:
        errs = [interpolation_error(interp, oversampling, band) for band in (0.5, 0.8)]
        lines.append(f"{interp.value:22} {errs[0]:>12.2e} {errs[1]:>12.2e}")
    return "\n".join(lines)
