#!/usr/bin/env bash
# Throughput curve (docs/benchmarks.md): the synthetic survey of docs/bench/e2e_100k.yaml
# with 1e4, 1e5 and 1e6 traces (10, 100 and 1,000 shots over the same 1,000 receivers and
# area: the fold grows), aperture 500 m, a fixed tile size of 40 x 24 bins (6 tile jobs),
# each run through the whole workflow with `snakemake --cores 2` (docs/bench/run_e2e.sh).
# Usage: bash docs/bench/run_curve.sh   (run from the repository root; ~6 min)
set -euo pipefail
dir=$(mktemp -d)
for shots in "2 5" "10 10" "20 50"; do
    set -- $shots
    config="$dir/curve_$(($1 * $2))shots.yaml"
    .venv/bin/python - "$1" "$2" "$config" <<'PY'
import sys, yaml
lines, per_line, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cfg = yaml.safe_load(open("docs/bench/e2e_100k.yaml"))
cfg["synthetic"].update(
    n_shot_lines=lines, n_shots_per_line=per_line,
    shot_line_spacing_m=5000.0 / lines, shot_spacing_m=2000.0 / per_line,
)
cfg["migration"]["aperture_m"] = 500.0
cfg["execution"].update(tile_n_inline=40, tile_n_crossline=24)
yaml.safe_dump(cfg, open(out, "w"), sort_keys=False)
PY
    echo "== $(($1 * $2)) shots"
    bash docs/bench/run_e2e.sh "$config" | sed -n 1,3p
done
