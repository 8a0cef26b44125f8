#!/usr/bin/env bash
# Start a SLURM of separate compute nodes on this machine, for the multi-node tests and bench.
#
#   eval "$(tests/slurm/nodes-up.sh)"     # prints: export SLURM_CONF=...
#   tests/slurm/nodes-down.sh
#
# Each node is a slurmd in a network namespace of its own (its own interface and address on a test
# subnet) and a UTS namespace of its own (its own host name, sknode1, sknode2, ...), with a mount
# namespace only so that /etc/hosts there lists the test hosts (the rest of the file system, the
# venv, /tmp and munge's socket, is the machine's: the nodes share it as cluster nodes share
# NFS). slurmctld runs on the machine and reaches the nodes by NodeAddr over a bridge:
#
#   bridge skbr0  $NET.1/24 (slurmctld, sbatch)
#   sknodeI       $NET.(10+I) in netns sk-nodeI, veth skvethI <-> eth0
#
# The subnet has no route out: traffic goes only between these test hosts. Everything it makes
# lives under $SWEEPKIT_NODES_DIR (default /tmp/sweepkit-slurm-nodes) plus the namespaces, the
# bridge and the veths, which tests/slurm/nodes-down.sh removes.
#
# This cluster has its own munged, state, config and ports (controller 16827, slurmd 16828 inside
# each node's namespace), so it never meets the one-node SLURM of tests/slurm/slurm-up.sh (16817,
# 16818): the two can be up at once, and either may be torn down alone.
#
# Settings: SWEEPKIT_NODES (2), SWEEPKIT_NODES_NET (10.213.37: the first three octets of a /24
# that must be free here), SWEEPKIT_NODES_DIR. Idempotent: when the cluster is up it only starts
# the slurmd of a node that is gone (a test that kills a node brings it back this way) and
# prints the export line. Needs root. Progress goes to stderr; stdout carries only the export line.
set -euo pipefail

STATE=${SWEEPKIT_NODES_DIR:-/tmp/sweepkit-slurm-nodes}
NODES=${SWEEPKIT_NODES:-2}
NET=${SWEEPKIT_NODES_NET:-10.213.37}
CTLD_PORT=16827
SLURMD_PORT=16828
BRIDGE=skbr0
CONF=$STATE/slurm.conf
MUNGE_SOCKET=$STATE/munge/munge.socket.2
export SLURM_CONF=$CONF

log() { printf 'nodes-up: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
node_names() { seq -f 'sknode%g' 1 "$NODES"; }
node_addr() { echo "$NET.$((10 + ${1#sknode}))"; }
node_netns() { echo "sk-${1#sk}"; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, SlurmUser=root); run it with sudo"
if ! [[ $NODES =~ ^[1-9][0-9]?$ ]] || ((NODES > 64)); then
    die "SWEEPKIT_NODES=$NODES: use 1 to 64"
fi
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    die "SWEEPKIT_NODES_NET=$NET: give the first three octets of a free /24, e.g. 10.213.37"

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmd >/dev/null || missing+=(slurm-wlm)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v nsenter >/dev/null || missing+=(util-linux)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

make_network() {
    local node ns addr
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        # a /24 of ours only: refuse one that this machine already routes somewhere
        local taken
        taken=$(ip -4 route show to match "$NET.1" | grep -v '^default' || true)
        [[ -z $taken ]] || die "subnet $NET.0/24 is in use here ($taken); set SWEEPKIT_NODES_NET to a free one"
        ip link add "$BRIDGE" type bridge
        ip addr add "$NET.1/24" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    for node in $(node_names); do
        ns=$(node_netns "$node")
        addr=$(node_addr "$node")
        [[ -e /run/netns/$ns ]] && continue
        ip netns add "$ns"
        ip link add "skveth${node#sknode}" type veth peer name eth0 netns "$ns"
        ip link set "skveth${node#sknode}" master "$BRIDGE" up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    done
    # With br_netfilter loaded, bridged traffic crosses iptables' FORWARD chain, where a DROP
    # policy (Docker sets one) would cut the nodes off from each other: let ours through.
    if [[ $(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0) == 1 ]] &&
        command -v iptables >/dev/null && ! iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
        iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    fi
}

write_hosts() {
    local node
    {
        printf '127.0.0.1\tlocalhost\n%s.1\t%s\n' "$NET" "$(hostname -s)"
        for node in $(node_names); do
            printf '%s\t%s\n' "$(node_addr "$node")" "$node"
        done
    } >"$STATE/hosts.tmp"
    mv "$STATE/hosts.tmp" "$STATE/hosts"
}

write_conf() {
    local node
    mkdir -p "$STATE/ctld" "$STATE/log"
    for node in $(node_names); do
        mkdir -p "$STATE/nodes/$node/spool"
    done
    {
        cat <<EOF
# Written by tests/slurm/nodes-up.sh: $NODES nodes, each in its own network and UTS namespace.
$(common_conf sweepkitnodes "$NET.1")
# %n: each node's own spool, pid file and log (a node's local disk on a real cluster).
SlurmdSpoolDir=$STATE/nodes/%n/spool
SlurmdPidFile=$STATE/nodes/%n/slurmd.pid
SlurmdLogFile=$STATE/nodes/%n/slurmd.log
# A node whose slurmd stops answering is DOWN after 10 s (default 300 s), and its jobs requeued.
SlurmdTimeout=10
# One CPU per node: two single-CPU tasks land on two nodes, and a two-node job fills both.
EOF
        for node in $(node_names); do
            printf 'NodeName=%s NodeAddr=%s NodeHostname=%s CPUs=1 Boards=1 SocketsPerBoard=1 CoresPerSocket=1 ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN\n' \
                "$node" "$(node_addr "$node")" "$node"
        done
        printf 'PartitionName=debug Nodes=sknode[1-%s] Default=YES MaxTime=INFINITE State=UP\n' "$NODES"
    } >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

start_slurmd() {
    local node=$1 ns
    ns=$(node_netns "$node")
    log "starting slurmd on $node ($(node_addr "$node"), netns $ns)"
    # The node's network namespace, then a UTS namespace for its host name and a mount namespace
    # for its /etc/hosts; slurmd daemonizes inside them, and so does every job step it starts.
    # shellcheck disable=SC2016  # expanded by the inner bash
    nsenter --net="/run/netns/$ns" unshare --uts --mount --propagation private \
        bash -c 'hostname "$1" && mount --bind "$2" /etc/hosts && exec slurmd -N "$1"' \
        slurmd-node "$node" "$STATE/hosts"
}

nodes_idle() {
    local states
    states=$(SLURM_CONF=$CONF timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null || true)
    [[ $(grep -cE ' (idle|mix|alloc)$' <<<"$states") == "$NODES" ]]
}

wait_idle() {
    local i node state
    for i in $(seq 1 60); do
        nodes_idle && return 0
        # a node left down by a slurmd that died returns to service once its slurmd answers
        while read -r node state; do
            case $state in
            down* | drain*) SLURM_CONF=$CONF scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
            esac
        done < <(SLURM_CONF=$CONF timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null || true)
        ((i % 10 == 0)) && log "waiting for $NODES idle nodes: $(SLURM_CONF=$CONF sinfo -h -N -o '%N=%t' 2>/dev/null | tr '\n' ' ')"
        sleep 1
    done
    tail -n 20 "$STATE/log/slurmctld.log" >&2 || true
    die "the nodes did not become idle within 60 s"
}

check_links() {
    # Node to node over the bridge (what srun and torchrun's rendezvous need), with bash alone.
    local from=sknode1 node
    for node in $(node_names); do
        [[ $node == "$from" ]] && continue
        ip netns exec "$(node_netns "$from")" timeout 5 bash -c "exec 3<>/dev/tcp/$(node_addr "$node")/$SLURMD_PORT" ||
            die "$from cannot reach $node at $(node_addr "$node"):$SLURMD_PORT over $BRIDGE (a firewall on bridged traffic?)"
    done
}

if [[ -s $CONF && -e /run/netns/sk-node1 ]] && pid_alive "$STATE/slurmctld.pid" &&
    pid_alive "$STATE/munge/munged.pid" && [[ $(grep -c '^NodeName=' "$CONF") == "$NODES" ]]; then
    for node in $(node_names); do
        pid_alive "$STATE/nodes/$node/slurmd.pid" || start_slurmd "$node"
    done
else
    # whatever an earlier, interrupted run left behind goes first
    bash "$(dirname "$0")/nodes-down.sh" >&2
    install_packages
    mkdir -p "$STATE"
    chmod 0755 "$STATE"
    make_network
    write_hosts
    start_munge
    write_conf
    log "starting slurmctld (port $CTLD_PORT on $NET.1)"
    SLURM_CONF=$CONF slurmctld -c -i
    for node in $(node_names); do
        start_slurmd "$node"
    done
fi
wait_idle
check_links
log "up: $NODES nodes ($(SLURM_CONF=$CONF sinfo -h -N -o '%N' | tr '\n' ' '))"
printf 'export SLURM_CONF=%q\n' "$CONF"
