#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh started, by the PIDs it recorded (never by
# name; a SLURM that was already running is left alone).
set -euo pipefail
STATE=${PSTM_SLURM_STATE:-/tmp/pstm-slurm}
[ -s "$STATE/pids" ] || exit 0
# slurmd and slurmctld first, munged last (the others authenticate through it)
for daemon in slurmd slurmctld munged; do
    while read -r name pid; do
        [ "$name" = "$daemon" ] || continue
        kill -0 "$pid" 2>/dev/null || continue
        kill "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then echo "stop_slurm: $name ($pid) still running" >&2; fi
    done < "$STATE/pids"
done
rm -f "$STATE/pids" "$STATE/started"
