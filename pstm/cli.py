"""The ``pstm`` command line: ``pstm <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; :data:`COMMANDS` lists them. A :class:`PstmError` is printed as one
message and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pstm import __version__
from pstm.errors import PstmError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "preflight": ("pstm.commands.preflight", "show what a run of the workflow will really do"),
    "bench": ("pstm.commands.bench", "time the migration kernel(s) on a synthetic problem"),
    "init": ("pstm.commands.init", "inspect a SEG-Y (or Zarr) survey and write a config.yaml"),
    "status": ("pstm.commands.status", "tiles done, throughput, ETA and failed tiles of a run"),
    "synthetic": (
        "pstm.commands.synthetic",
        "write the built-in synthetic survey as SEG-Y or Zarr + Parquet, to try those inputs",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pstm", description="Kirchhoff pre-stack time migration")
    parser.add_argument("--version", action="version", version=f"pstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the workflow's numba cache (workflow/rules/common.smk): a command that compiles the
    # kernels (preflight's timing, bench) reuses and fills the same one. numba reads the
    # variable when it is imported: where it already is (main() called in a process that
    # uses numba), the process keeps its cache and its environment is left alone
    if "numba" not in sys.modules:
        from pstm.pipeline import numba_cache_dir

        os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    try:
        code: int = importlib.import_module(args._module).run(args)
    except PstmError as exc:
        print(f"pstm {args.command}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
