"""``pstm bench``: time the migration kernel on a synthetic problem (see :mod:`pstm.bench`)."""

from __future__ import annotations

import argparse
import json
import textwrap

from pstm.bench import (
    EVERYTHING,
    accuracy_table,
    format_table,
    make_problem,
    options_for,
    ratio,
    run_backends,
    run_pylops,
)
from pstm.commands import int_in
from pstm.config import TRAVELTIME_NODE_SAMPLES, Backend, Interpolation, Traveltime
from pstm.errors import ConfigError

_SWITCHED_ON = ", ".join(f"{k}={getattr(v, 'value', v)}" for k, v in EVERYTHING.items())
EPILOG = f"""\
{textwrap.fill(f"--features everything switches on: {_SWITCHED_ON}.", 90)}
The runs of one command are timed round-robin (one call of each in turn), a peer after them.

Columns: contrib = contributions (trace x output-sample pairs summed; PyLops: every pair);
best s, median s = wall time of the best and the median call; cpu s = process CPU time of
the best call (all its threads: up to threads x best s for numba on a quiet machine; numpy
runs on one thread; a GPU backend's is the host's alone); prep s = the operator's tables
alone (part of the call); contrib/s = contributions per second of the whole call;
kernel/s = the same without prep s."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--backend",
        type=Backend,
        action="append",
        choices=list(Backend),
        help="backend(s) to time (repeatable; default: auto)",
    )
    parser.add_argument(
        "--traces",
        type=int_in(1),
        default=2000,
        help="about this many traces: sources x receivers, the table's contrib column counts "
        "what ran (default: 2000)",
    )
    parser.add_argument(
        "--nx", type=int_in(1), default=200, help="output bins along x (default: 200)"
    )
    parser.add_argument(
        "--ny", type=int_in(1), default=1, help="output bins along y (default: 1, a 2D line)"
    )
    parser.add_argument(
        "--nt", type=int_in(1), default=500, help="output samples per bin (default: 500)"
    )
    parser.add_argument(
        "--features",
        choices=["plain", "everything"],
        action="append",
        help="plain DSR, or every imaging feature on (repeatable; default: plain; see below)",
    )
    parser.add_argument(
        "--interpolation",
        type=Interpolation,
        choices=list(Interpolation),
        action="append",
        help="trace interpolation(s) (repeatable; default: oversampled_nearest)",
    )
    parser.add_argument(
        "--traveltime",
        type=Traveltime,
        choices=list(Traveltime),
        action="append",
        help="traveltime mode(s) of the plain runs (repeatable; default: exact); "
        "'everything' runs are always exact (interpolated is a plain-operator mode)",
    )
    parser.add_argument(
        "--traveltime-node-samples",
        type=int_in(2, 64),
        default=TRAVELTIME_NODE_SAMPLES,
        help="output samples per exact traveltime of traveltime interpolated (default: %(default)s)",
    )
    parser.add_argument(
        "--oversampling",
        type=int_in(2, 64),
        default=8,
        help="oversampling factor, 2..64 (default: 8)",
    )
    parser.add_argument("--threads", type=int_in(1), default=2, help="kernel threads (default: 2)")
    parser.add_argument(
        "--repeat",
        type=int_in(1),
        default=5,
        help="timed rounds after one warm-up call (default: 5)",
    )
    parser.add_argument("--peer", choices=["pylops"], help="also time a peer on the same problem")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="instead of timing: each interpolation's error against exact band-limited "
        "interpolation",
    )


def run(args: argparse.Namespace) -> int:
    if args.accuracy:
        print(accuracy_table(args.oversampling))
        return 0
    interps = args.interpolation or [Interpolation.OVERSAMPLED_NEAREST]
    if Traveltime.INTERPOLATED in (args.traveltime or []) and any(
        i is not Interpolation.OVERSAMPLED_NEAREST for i in interps
    ):
        raise ConfigError(
            "--traveltime interpolated runs with the oversampled_nearest interpolation only "
            "(a plain-operator mode): drop the other --interpolation values"
        )
    problem = make_problem(args.traces, args.nx, args.ny, args.nt)
    runs = []
    for backend in args.backend or [Backend.AUTO]:
        for features in args.features or ["plain"]:
            for interp in interps:
                modes = args.traveltime or [Traveltime.EXACT]
                for traveltime in modes if features == "plain" else [Traveltime.EXACT]:
                    options = options_for(
                        features, interp, args.oversampling, args.threads, traveltime,
                        args.traveltime_node_samples,
                    )  # fmt: skip
                    runs.append((backend, options, features))
    results = run_backends(problem, runs, args.repeat)
    if args.peer == "pylops":
        results.append(run_pylops(problem, args.threads, args.repeat))
    if args.json:
        for r in results:
            print(json.dumps(r.as_dict()))
        return 0
    print(
        f"problem: {problem.batch.ntr} traces x {args.nx} x {args.ny} x {args.nt} outputs, "
        f"{problem.batch.data.shape[1]} samples per trace"
    )
    print(format_table(results))
    if args.peer:
        peer = results[-1]
        for r in results[:-1]:
            print(
                f"{r.backend}/{r.features}/{r.interpolation}/{r.traveltime} vs {peer.backend}: "
                f"{ratio(r, peer):.1f}x"
            )
    return 0
