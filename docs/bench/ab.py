"""Interleaved A/B timing of two builds of pstm (docs/benchmarks.md: how each kernel change
was measured). Each round runs every build once, each in a process of its own (its own
numba cache: a build's ``pstm/kernels/__pycache__``), so a slow phase of the machine hits
the builds alike; each run prints the best of ``--repeat`` calls of the numba kernel
after a warm-up call, timed as ``pstm bench`` times it, on its problem (the 2D line, or
the 3D problem with ``--3d``: 6,000 traces, 32 x 32 x 300).

Usage (two checkouts, e.g. ``git worktree add /tmp/ab/A <commit>``; clear a checkout's
``pstm/kernels/__pycache__/*.nb*`` after editing its numba code):

    NUMBA_NUM_THREADS=2 python docs/bench/ab.py /tmp/ab/A /tmp/ab/B --rounds 4 \\
        --features everything --features plain
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

#: The problems: (traces, nx, ny, nt) of ``pstm.bench.make_problem``.
PROBLEMS = {"2d": (2000, 200, 1, 500), "3d": (6000, 32, 32, 300)}


def time_here(features: list[str], problem: str, repeat: int) -> str:
    """Best of ``repeat`` calls per feature set, in this process (the build on sys.path),
    timed by the build's own ``pstm bench`` (:func:`pstm.bench.run_backends`: the bench's
    offset classes, a warm-up call, the output arrays allocated in each call, the feature
    sets round-robin; a build from before ROUND_ROBIN times them one after the other with
    its ``run_backend``, so an A/B of such a build against a newer one compares two timing
    schemes: give it one ``--features`` at a time)."""
    import pstm
    import pstm.bench as bench_module
    from pstm.config import Backend, Interpolation

    # the build timed is the one on PYTHONPATH, not an installed pstm (checked by main)
    print(os.path.realpath(pstm.__file__), flush=True)
    bench = bench_module.make_problem(*PROBLEMS[problem])
    runs = [
        (Backend.NUMBA, bench_module.options_for(n, Interpolation.OVERSAMPLED_NEAREST, 8, 2), n)
        for n in features
    ]
    if hasattr(bench_module, "run_backends"):
        results = bench_module.run_backends(bench, runs, repeat)
    else:
        results = [bench_module.run_backend(bench, *run, repeat) for run in runs]
    return "  ".join(f"{r.features} {r.seconds:.4f}" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="*", help="checkouts of pstm to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--features", action="append", default=None)
    parser.add_argument("--3d", dest="three_d", action="store_true")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    features = args.features or ["everything"]
    problem = "3d" if args.three_d else "2d"
    if args.here:
        print(time_here(features, problem, args.repeat), flush=True)
        return
    if not args.builds:
        parser.error("name at least one build (a checkout of pstm)")
    flags = [f"--features={f}" for f in features] + ["--repeat", str(args.repeat)]
    flags += ["--3d"] if args.three_d else []
    for _ in range(args.rounds):
        for build in args.builds:
            root = os.path.realpath(build)
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            result = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--here", *flags],
                env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                sys.exit(f"{build}: the run failed:\n{result.stderr}")
            where, _, timing = result.stdout.strip().partition("\n")
            if not where.startswith(root + os.sep):
                # e.g. a mistyped path: an editable install's pstm would be timed instead
                sys.exit(f"{build}: the run imported {where}, not this checkout's pstm")
            print(f"{build}  {timing}", flush=True)


if __name__ == "__main__":
    main()
