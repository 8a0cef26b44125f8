# shellcheck shell=bash
# What the test SLURMs share (sourced by tests/slurm/slurm-up.sh and nodes-up.sh): the liveness
# check, munged's start, and the slurm.conf settings both clusters use. The caller sets STATE
# (its state folder), MUNGE_SOCKET, CTLD_PORT, SLURMD_PORT and defines log(); the down scripts
# use stop_pidfile alone.

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile NAME PIDFILE: TERM the daemon, KILL it after 10 s, remove its pid file.
stop_pidfile() {
    local name=$1 pidfile=$2 pid i
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop after $i tries; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

start_munge() {
    mkdir -p "$STATE/munge"
    chmod 0700 "$STATE/munge"
    pid_alive "$STATE/munge/munged.pid" && [[ -S $MUNGE_SOCKET ]] && return 0
    if [[ ! -s $STATE/munge/munge.key ]]; then
        # 1024 random bytes, as mungekey --create makes; root-owned 0600 as munged demands.
        (umask 077 && head -c 1024 /dev/urandom >"$STATE/munge/munge.key")
    fi
    log "starting munged"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
}

# common_conf CLUSTER ADDRESS: the slurm.conf lines both clusters share, for a controller on this
# machine reached at ADDRESS. Each script adds its nodes, spool and timeouts.
common_conf() {
    cat <<CONF
ClusterName=$1
SlurmctldHost=$(hostname -s)($2)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# Look at pending jobs every 2 s (default 60 s) so requeued tasks restart promptly in tests.
SchedulerParameters=sched_interval=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A node that died and whose slurmd registers again is back in service at once.
ReturnToService=2
JobRequeue=1
# scancel sends SIGTERM, then SIGKILL after KillWait: time for the trainer to checkpoint.
KillWait=20
MinJobAge=600
InactiveLimit=0
CONF
}
