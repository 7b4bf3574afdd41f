"""``pstm preflight``: validate the config, resolve ``auto``, plan tiles and report."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pstm.config import read_yaml
from pstm.index import read_index
from pstm.io.traces import open_traces
from pstm.pipeline import prepare_run
from pstm.preflight import preflight_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="config file")
    parser.add_argument(
        "--index",
        type=Path,
        default=Path("results/index"),
        help="midpoint index (traces per tile are reported when it exists)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="pstm: %(message)s")
    raw = read_yaml(args.config)
    run_ = prepare_run(raw, source=str(args.config))
    index = read_index(args.index) if (args.index / "meta.json").exists() else None
    if index is not None and not index.matches(run_.grid):
        print(
            f"pstm preflight: {args.index} was built for another output grid (the config's "
            "grid changed since the last run): traces per tile not shown; the workflow "
            "rebuilds the index",
            file=sys.stderr,
        )
        index = None
    dt = open_traces(run_.traces).dt if run_.traces.exists() else None
    print(preflight_report(run_, index, dt).text, end="")
    return 0
