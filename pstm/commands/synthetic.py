"""``pstm synthetic``: write the built-in synthetic survey as files a user's data would be.

The survey is the config's ``synthetic`` section (the one ``make run`` migrates), so the
real-data paths can be tried without data: ``--segy`` writes one pre-stack SEG-Y file
(then ``pstm init`` on it, or ``input.kind: segy``), ``--zarr`` a Zarr v3 trace array and
Parquet headers (``input.kind: zarr``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pstm.config import PstmConfig, parse_config, read_yaml
from pstm.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="config whose synthetic section describes the survey (default: config.yaml "
        "where there is one, else the built-in demo survey)",
    )
    parser.add_argument("--segy", type=Path, help="write a pre-stack SEG-Y file here")
    parser.add_argument(
        "--zarr",
        type=Path,
        help="write DIR/traces.zarr and DIR/headers.parquet (input.kind: zarr)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def run(args: argparse.Namespace) -> int:
    from pstm.synthetic import write_survey, write_survey_segy

    if args.segy is None and args.zarr is None:
        raise ConfigError("pstm synthetic: say where to write: --segy FILE and/or --zarr DIR")
    zarr_outputs = (
        [args.zarr / n for n in ("traces.zarr", "headers.parquet", "truth.json")]
        if args.zarr is not None
        else []
    )
    outputs = ([args.segy] if args.segy is not None else []) + zarr_outputs
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not args.force:
        raise ConfigError(f"{', '.join(existing)} exist(s); --force overwrites")
    config = args.config or (Path("config.yaml") if Path("config.yaml").is_file() else None)
    cfg = (
        parse_config(read_yaml(config), source=str(config)) if config is not None else PstmConfig()
    ).synthetic
    print(f"survey: the synthetic section of {config or 'the built-in defaults'}")
    if args.segy is not None:
        data, _ = write_survey_segy(cfg, args.segy)
        print(f"{args.segy}: {data.shape[0]} traces x {data.shape[1]} samples, dt {cfg.dt_s:g} s")
    if zarr_outputs:
        args.zarr.mkdir(parents=True, exist_ok=True)
        traces, headers, truth = zarr_outputs
        ntr = write_survey(cfg, traces, headers, truth)
        print(f"{traces}, {headers}: {ntr} traces (and {truth}: the survey's truth)")
    return 0
