#!/usr/bin/env bash
# Stop the one-node SLURM that tests/slurm/slurm-up.sh started (slurmd, slurmctld, munged).
# Idempotent: daemons that are not running are skipped. Keeps $SWEEPKIT_SLURM_DIR for its logs;
# pass --purge to remove it too.
set -euo pipefail

STATE=${SWEEPKIT_SLURM_DIR:-/tmp/sweepkit-slurm}

log() { printf 'slurm-down: %s\n' "$*" >&2; }

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_pidfile slurmd "$STATE/slurmd.pid"
stop_pidfile slurmctld "$STATE/slurmctld.pid"
stop_pidfile munged "$STATE/munge/munged.pid"

if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
fi
