#!/usr/bin/env bash
# Stop the SLURM of separate nodes that tests/slurm/nodes-up.sh started and remove what it made:
# every process in the nodes' network namespaces (slurmd, job steps, their programs), the
# namespaces, the veths and the bridge, the iptables rule, slurmctld and munged. Idempotent, and
# safe on a half-made set-up (it is also how nodes-up.sh clears one). Keeps
# $SWEEPKIT_NODES_DIR for its logs; --purge removes it too.
set -euo pipefail

STATE=${SWEEPKIT_NODES_DIR:-/tmp/sweepkit-slurm-nodes}
BRIDGE=skbr0

log() { printf 'nodes-down: %s\n' "$*" >&2; }

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Everything that runs on a node runs in its network namespace: TERM, then KILL what is left.
stop_node() {
    local ns=$1 pids i
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    ((${#pids[@]})) || return 0
    log "stopping ${#pids[@]} process(es) on $ns"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for i in $(seq 1 25); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
        sleep 0.2
    done
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    if ((${#pids[@]})); then
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
}

if command -v ip >/dev/null; then
    for path in /run/netns/sk-node*; do
        [[ -e $path ]] || continue
        ns=${path##*/}
        stop_node "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
    # a veth whose namespace went first is already gone with it; one made half-way is not
    while read -r veth; do
        ip link del "$veth" 2>/dev/null || true
    done < <(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(skveth[0-9]*\)@.*/\1/p')
    ip link del "$BRIDGE" 2>/dev/null || true
fi
if command -v iptables >/dev/null; then
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
fi

stop_pidfile slurmctld "$STATE/slurmctld.pid"
stop_pidfile munged "$STATE/munge/munged.pid"

if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
fi
