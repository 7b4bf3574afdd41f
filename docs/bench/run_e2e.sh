#!/usr/bin/env bash
# End-to-end benchmark (docs/benchmarks.md): the 100,000-trace synthetic survey of
# docs/bench/e2e_100k.yaml through the whole workflow with `snakemake --cores 2`, in a
# scratch copy of the workflow; prints the wall time, the share of the cores' time spent
# in kernels, and the per-stage breakdown.
# Usage: [CORES=2] [VENV=.venv] bash docs/bench/run_e2e.sh [config.yaml]   (from the
# repository root; CORES a number: it is passed to --cores and divides the kernel share;
# VENV the environment to run: `make run`'s is .venv without the test extras)
set -euo pipefail
repo=$(pwd)
config=${1:-docs/bench/e2e_100k.yaml}
cores=${CORES:-2}
venv=$(cd "${VENV:-.venv}" && pwd)
work=$(mktemp -d)
cp -r Snakefile workflow environment.yml "$work"/
cp "$config" "$work/config.yaml"
cd "$work"
start=$(date +%s.%N)
"$venv/bin/snakemake" --cores "$cores" --workflow-profile workflow/profiles/local --quiet all \
    > snakemake.log 2>&1
end=$(date +%s.%N)
"$venv/bin/python" - "$start" "$end" "$cores" <<'PY'
import json, sys
start, end, cores = map(float, sys.argv[1:4])
s = json.load(open("results/summary.json"))
wall = end - start
t = s["totals"]
print(f"wall {wall:.1f} s; traces {t['input_traces']}; contributions {t['contributions']:.3g}")
# the cores' time in kernels over the cores' time (wall x cores): with one tile job at a
# time on every core (threads_per_job = cores) this is the kernel seconds over the wall
print(f"kernels on the cores {t['kernel_thread_seconds']:.1f} core-s of {wall * cores:.1f} "
      f"(wall x {cores:g} cores): {100 * t['kernel_thread_seconds'] / (wall * cores):.1f}% "
      "of the cores' time in kernels")
print(f"kernel seconds (sum over tile jobs) {t['kernel_seconds']:.1f}; "
      f"{t['contributions_per_kernel_second']:.3g} contributions per kernel second; "
      f"kernel load from cache {t['kernel_load_seconds']:.2f} s in all")
print(f"a tile job's fixed overhead (its process less its kernel), s: {t['tile_job_overhead_seconds']}")
for name, st in s["stages"].items():
    print(f"  {name:16} jobs {st['jobs']:4}  wall {st['wall_seconds']:8.2f} s  "
          f"sum {st['seconds_total']:8.2f} s")
PY
echo "work directory: $work"
