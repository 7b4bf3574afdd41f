#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh started, by the PIDs it recorded (never by
# name; a SLURM that was already running is left alone).
set -euo pipefail
STATE=${PSTM_SLURM_STATE:-/tmp/pstm-slurm}
[ -s "$STATE/pids" ] || exit 0
# slurmd and slurmctld first, munged last (the others authenticate through it)
tac "$STATE/pids" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && echo "stop_slurm: $name ($pid) still running" >&2
    fi
done
rm -f "$STATE/pids" "$STATE/started"
