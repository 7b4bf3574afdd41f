#!/usr/bin/env bash
# Start a throw-away single-node SLURM (munged, slurmctld, slurmd) on this machine, for
# tests/test_slurm.py. Debian/Ubuntu, as root, no systemd needed; no accounting database,
# no cgroups (limits are not enforced). Stop it with tests/slurm/stop_slurm.sh.
#
# Exit status: 0 = SLURM is up and the node is idle; 3 = this machine cannot run SLURM
# (the reason is the last line on stderr; the test then skips); anything else = a failure.
# Only daemons this script started are recorded (PIDs in $PSTM_SLURM_STATE/started) and
# later stopped; an already running SLURM is used as is and never stopped.
set -euo pipefail

STATE=${PSTM_SLURM_STATE:-/tmp/pstm-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by pstm tests/slurm/start_slurm.sh"
#: Seconds to wait for the controller to answer and for the node to become idle.
WAIT_S=${PSTM_SLURM_WAIT_S:-60}
#: Share of the memory `slurmd -C` reports that the node declares (more than real drains it).
MEM_PERCENT=90

cannot() { echo "cannot run SLURM here: $*" >&2; exit 3; }
log() { echo "start_slurm: $*" >&2; }

[ "$(id -u)" = 0 ] || cannot "not root (needs to install packages and start daemons)"
command -v apt-get >/dev/null || cannot "no apt-get (the helper supports Debian/Ubuntu only)"
mkdir -p "$STATE"
# Daemons started by this helper and not yet stopped by stop_slurm.sh (kept across calls,
# so a second start while they run does not forget them).
touch "$STATE/started"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge with apt-get"
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # keep the packages' postinst scripts from starting services
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y -q --no-install-recommends slurm-wlm munge >"$STATE/apt.log" 2>&1; }
    if ! apt_install; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || true
        apt_install || { [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d;
                     tail -5 "$STATE/apt.log" >&2; cannot "apt-get install slurm-wlm munge failed (see $STATE/apt.log)"; }
    fi
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    cannot "$CONF exists and was not written by this helper; refusing to touch a real cluster's configuration"
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    echo "munged /run/munge/munged.pid" >> "$STATE/started"
fi
munge -n | unmunge >/dev/null || cannot "munge does not work (munge -n | unmunge failed)"

# --- slurm.conf from this machine's hardware
for d in /run/slurm /var/lib/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm; do
    install -d -o slurm -g slurm -m 0755 "$d"
done
hw=$(slurmd -C | head -1)
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); boards=$(field Boards); sockets=$(field SocketsPerBoard)
cores=$(field CoresPerSocket); threads=$(field ThreadsPerCore); mem=$(field RealMemory)
[ -n "$cpus" ] && [ -n "$mem" ] || cannot "could not read the hardware from 'slurmd -C': $hw"
mem=$((mem * MEM_PERCENT / 100))
mkdir -p /etc/slurm
cat > "$CONF" <<CONF
$MARK
ClusterName=pstmtest
SlurmctldHost=localhost
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
SlurmUser=slurm
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores:-1} ThreadsPerCore=${threads:-1} RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# --- daemons
if ! alive /run/slurm/slurmctld.pid; then
    slurmctld
    echo "slurmctld /run/slurm/slurmctld.pid" >> "$STATE/started"
fi
for _ in $(seq "$WAIT_S"); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 1; done
scontrol ping | grep -q UP || { tail -5 /var/log/slurm/slurmctld.log >&2; exit 1; }
if ! alive /run/slurm/slurmd.pid; then
    slurmd -N localhost
    echo "slurmd /run/slurm/slurmd.pid" >> "$STATE/started"
fi
for _ in $(seq "$WAIT_S"); do
    st=$(sinfo -h -N -o %t 2>/dev/null | head -1)
    case "$st" in
        idle) break ;;
        down*|drain*|drng*|fail*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
done
st=$(sinfo -h -N -o %t | head -1)
[ "$st" = idle ] || { echo "node state '$st' after ${WAIT_S}s" >&2; tail -5 /var/log/slurm/slurmd.log >&2; exit 1; }
# record the PIDs now (the daemons fork; the PID files hold the daemon's PID)
sort -u "$STATE/started" | while read -r name pidfile; do
    echo "$name $(cat "$pidfile")"
done > "$STATE/pids"
log "SLURM up: node localhost idle ($cpus CPUs, ${mem} MB); PIDs in $STATE/pids"
