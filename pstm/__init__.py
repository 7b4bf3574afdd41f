"""pstm: reproducible Kirchhoff pre-stack time migration.

Data flows one way: ``config.yaml`` -> :mod:`pstm.config` (validated model) ->
:mod:`pstm.plan` (tile plan) -> :mod:`pstm.migrate` (one job per tile, calling a kernel
from :mod:`pstm.kernels`) -> :mod:`pstm.assemble` (image, fold, gathers) -> :mod:`pstm.qc`.
"""

__version__ = "0.1.0"
