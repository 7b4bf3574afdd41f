# Validate the config once, resolve 'auto' choices and plan the tiles (pstm.pipeline).
import logging
import sys

from pstm.errors import PstmError
from pstm.pipeline import prepare_run
from pstm.qc import QC_FIGURES

_log = logging.getLogger("pstm")
if not _log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("pstm: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False
try:
    RUN = prepare_run(config, source="config (config.yaml and --config overrides)")
except PstmError as _exc:
    sys.stderr.write(f"pstm: {_exc}\n")
    raise SystemExit(1)

TILES = RUN.plan.by_id()


wildcard_constraints:
    tile=r"\d{4}_\d{4}",


def tile_extent(wildcards):
    """The extent of one tile (part of its params: a re-plan reruns the tiles it changes)."""
    return TILES[wildcards.tile].as_params()


def tile_outputs(wildcards=None):
    return [f"results/tiles/{tile_id}.npz" for tile_id in TILES]
