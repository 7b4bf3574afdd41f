#!/usr/bin/env bash
# End-to-end benchmark (docs/benchmarks.md): the 100,000-trace synthetic survey of
# docs/bench/e2e_100k.yaml through the whole workflow with `snakemake --cores 2`, in a
# scratch copy of the workflow; prints the wall time and the per-stage breakdown.
# Usage: bash docs/bench/run_e2e.sh [config.yaml]   (run from the repository root)
set -euo pipefail
repo=$(pwd)
config=${1:-docs/bench/e2e_100k.yaml}
work=$(mktemp -d)
cp -r Snakefile workflow environment.yml "$work"/
cp "$config" "$work/config.yaml"
cd "$work"
start=$(date +%s.%N)
"$repo/.venv/bin/snakemake" --cores 2 --workflow-profile workflow/profiles/local --quiet all \
    > snakemake.log 2>&1
end=$(date +%s.%N)
"$repo/.venv/bin/python" - "$start" "$end" <<'PY'
import json, sys
start, end = map(float, sys.argv[1:3])
s = json.load(open("results/summary.json"))
wall = end - start
t = s["totals"]
print(f"wall {wall:.1f} s; traces {t['input_traces']}; contributions {t['contributions']:.3g}")
print(f"kernel seconds (sum over tile jobs) {t['kernel_seconds']:.1f} "
      f"({100 * t['kernel_seconds'] / wall:.1f}% of the wall time); "
      f"{t['contributions_per_kernel_second']:.3g} contributions per kernel second; "
      f"kernel load from cache {t['kernel_load_seconds']:.2f} s in all")
for name, st in s["stages"].items():
    print(f"  {name:16} jobs {st['jobs']:4}  wall {st['wall_seconds']:8.2f} s  "
          f"sum {st['seconds_total']:8.2f} s")
PY
echo "work directory: $work"
