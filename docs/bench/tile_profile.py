"""Time one tile's kernel outside the workflow, on a finished run's inputs
(docs/benchmarks.md, curve).

Reads the work directory's config, index, preconditioned traces and velocity, takes the
tile's traces within aperture (all of them, or a random subset of N), and times the numba
kernel on them in one call (prepare + run, best of 3 after a warm-up), then the fixed cost
of a call on 1 and 100 traces. Prints the pairs within aperture and the contributions per
pair.

Usage: python docs/bench/tile_profile.py WORKDIR TILE [THREADS] [N]
  e.g. python docs/bench/tile_profile.py /tmp/tmp.XXXX 0001_0000 2
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import yaml


def main(work: str, tile_id: str, threads: int, subset: int | None) -> None:
    os.chdir(work)
    from pstm import migrate as m
    from pstm.index import read_index
    from pstm.io.traces import open_traces
    from pstm.kernels import _numba as nb
    from pstm.kernels.operator import TraceBatch, prepare
    from pstm.pipeline import prepare_run
    from pstm.velocity import read_velocity

    with open("config.yaml") as fh:
        run = prepare_run(yaml.safe_load(fh), source="config.yaml")
    tile, grid, mig = run.plan.by_id()[tile_id], run.grid, run.config.migration
    index, store = read_index("results/index"), open_traces("results/precondition/traces.zarr")
    target = m.tile_target(tile, grid, read_velocity("results/velocity/vrms.npy"))
    x, y = target.x, target.y
    options = m.kernel_options(mig, grid.rotation_deg, threads)
    ids, sx, sy, rx, ry, cls = m.tile_traces(tile, mig, index)  # as the tile job takes them
    if subset is not None:
        pick = np.sort(np.random.default_rng(0).choice(len(ids), subset, replace=False))
        ids, sx, sy, rx, ry, cls = ids[pick], sx[pick], sy[pick], rx[pick], ry[pick], cls[pick]
    data = store.read(ids)
    shape = (m.n_offset_classes(mig), tile.nil, tile.nxl, grid.nt)

    def call(n: int) -> tuple[float, int]:
        batch = TraceBatch(np.ascontiguousarray(data[:n]), store.t0, store.dt, sx[:n], sy[:n],
                           rx[:n], ry[:n], cls[:n])  # fmt: skip
        gathers, fold = np.zeros(shape, np.float32), np.zeros(shape, np.int32)
        g, f = nb.column_views(target, gathers, fold)
        t0 = time.perf_counter()
        count = nb.run_prepared(prepare(batch, target, options, nb.TRACE_OPS), g, f, threads)
        return time.perf_counter() - t0, count

    call(len(ids))  # load the kernels
    seconds, count = min(call(len(ids)) for _ in range(3))
    mx, my = (sx + rx) / 2, (sy + ry) / 2
    d2 = (mx[:, None] - x.ravel()[None, :]) ** 2 + (my[:, None] - y.ravel()[None, :]) ** 2
    pairs = int((d2 <= m.max_aperture_m(mig) ** 2).sum())
    print(f"tile {tile_id}: {len(ids)} traces, {threads} threads: {seconds:.3f} s, "
          f"{count:.3g} contributions, {count / seconds:.3g}/s; {pairs} pairs within "
          f"aperture, {count / max(pairs, 1):.0f} contributions per pair")  # fmt: skip
    for n in (1, 100):
        print(f"  a call on {n} traces: {1e3 * min(call(n)[0] for _ in range(5)):.2f} ms")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]) if len(args) > 2 else 2,
         int(args[3]) if len(args) > 3 else None)  # fmt: skip
