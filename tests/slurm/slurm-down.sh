#!/usr/bin/env bash
# Stop the one-node SLURM that tests/slurm/slurm-up.sh started (slurmd, slurmctld, munged).
# Idempotent: daemons that are not running are skipped. Keeps $SWEEPKIT_SLURM_DIR for its logs;
# pass --purge to remove it too.
set -euo pipefail

STATE=${SWEEPKIT_SLURM_DIR:-/tmp/sweepkit-slurm}

stop_pidfile() {
    local name=$1 pidfile=$2 pid i
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        printf 'slurm-down: stopping %s (pid %s)\n' "$name" "$pid" >&2
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            printf 'slurm-down: %s did not stop after %s tries; sending SIGKILL\n' "$name" "$i" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

stop_pidfile slurmd "$STATE/slurmd.pid"
stop_pidfile slurmctld "$STATE/slurmctld.pid"
stop_pidfile munged "$STATE/munge/munged.pid"

if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
fi
