#!/usr/bin/env bash
# Start a one-node SLURM (munged, slurmctld, slurmd) for the tests and CI.
#
#   eval "$(tests/slurm/slurm-up.sh)"     # prints: export SLURM_CONF=...
#   tests/slurm/slurm-down.sh
#
# Everything lives under $SWEEPKIT_SLURM_DIR (default /tmp/sweepkit-slurm): the munge key and
# socket, slurm.conf, controller state, slurmd spool and the daemons' logs. Nothing is written to
# /etc; clients and daemons find the config through SLURM_CONF. Idempotent: when our daemons are
# already up and the node is idle, it only prints the export line. Installs the Debian packages
# slurm-wlm and munge with apt-get when they are missing (CI starts from a bare machine); set
# SWEEPKIT_SLURM_NO_INSTALL=1 to fail instead. Needs root (SlurmUser=root, munged as root).
# Progress goes to stderr; stdout carries only the export line.
set -euo pipefail

STATE=${SWEEPKIT_SLURM_DIR:-/tmp/sweepkit-slurm}
# Ports away from the defaults (6817/6818) so a real SLURM on the machine is left alone.
CTLD_PORT=${SWEEPKIT_SLURM_CTLD_PORT:-16817}
SLURMD_PORT=${SWEEPKIT_SLURM_SLURMD_PORT:-16818}
CONF=$STATE/slurm.conf
MUNGE_SOCKET=$STATE/munge/munge.socket.2

log() { printf 'slurm-up: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

node_state() { SLURM_CONF=$CONF timeout 5 sinfo -h -N -o %t 2>/dev/null | head -n1 || true; }

if [[ $(id -u) -ne 0 ]]; then
    die "needs root (SlurmUser=root and munged run as root); run it with sudo"
fi

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    for tool in slurmctld slurmd sbatch; do
        command -v "$tool" >/dev/null || missing+=(slurm-wlm)
    done
    ((${#missing[@]} == 0)) && return 0
    [[ ${SWEEPKIT_SLURM_NO_INSTALL:-0} == 1 ]] && die "missing ${missing[*]} and SWEEPKIT_SLURM_NO_INSTALL=1"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing slurm-wlm munge with apt-get (a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends slurm-wlm munge >&2
}

write_conf() {
    local node cpus_line mem
    node=$(hostname -s)
    # slurmd -C prints this machine's real layout (CPUs, sockets, cores, RealMemory), which is
    # exactly what slurmd will register with; a configured value above it would drain the node.
    cpus_line=$(slurmd -C | head -n1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$cpus_line")
    cpus_line=${cpus_line/RealMemory=$mem/RealMemory=$((mem * 9 / 10))}
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log"
    cat >"$CONF.tmp" <<EOF
# Written by tests/slurm/slurm-up.sh: a one-node SLURM for sweepkit's tests.
$(common_conf sweepkit 127.0.0.1)
SlurmdSpoolDir=$STATE/spool
SlurmdPidFile=$STATE/slurmd.pid
SlurmdLogFile=$STATE/log/slurmd.log
SlurmdTimeout=60
# Two fake GPUs (character devices every Linux has), so that SLURM itself sets
# CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS for --gres=gpu:N jobs (packing tests).
GresTypes=gpu
$cpus_line Gres=gpu:2 NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    printf 'Name=gpu File=/dev/tty0\nName=gpu File=/dev/tty1\n' >"$STATE/gres.conf"
    mv "$CONF.tmp" "$CONF"
}

start_slurm() {
    export SLURM_CONF=$CONF
    if ! pid_alive "$STATE/slurmctld.pid"; then
        log "starting slurmctld (state in $STATE/ctld)"
        # -c: start with an empty job queue; -i: ignore unreadable state from an older run.
        slurmctld -c -i
    fi
    if ! pid_alive "$STATE/slurmd.pid"; then
        log "starting slurmd"
        slurmd
    fi
}

wait_idle() {
    local state i
    for i in $(seq 1 60); do
        state=$(node_state)
        case $state in
        idle | mix | alloc) return 0 ;;
        drain* | down*)
            # A node left down by a previous slurmd is returned to service once slurmd answers.
            SLURM_CONF=$CONF scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
            ;;
        esac
        ((i % 10 == 0)) && log "waiting for the node (state: ${state:-no answer})"
        sleep 1
    done
    log "slurmctld log tail:"
    tail -n 20 "$STATE/log/slurmctld.log" >&2 || true
    log "slurmd log tail:"
    tail -n 20 "$STATE/log/slurmd.log" >&2 || true
    die "node did not become idle within 60 s (state: ${state:-no answer})"
}

state=$(node_state)
if [[ -s $CONF ]] && pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid" &&
    [[ $state == idle || $state == mix || $state == alloc ]]; then
    log "already up (node $state)"
else
    install_packages
    mkdir -p "$STATE" && chmod 0700 "$STATE"
    start_munge
    write_conf
    start_slurm
    wait_idle
    log "up: one node, $(SLURM_CONF=$CONF sinfo -h -o '%c CPUs, partition %P')"
fi
printf 'export SLURM_CONF=%q\n' "$CONF"
