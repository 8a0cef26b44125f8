#!/usr/bin/env bash
# `podman` with the settings this machine needs, added only where it needs them; every argument
# is passed on. ci/build-image.sh and the tests call Podman through it; so can ci/smoke.sh
# (SWEEPKIT_DOCKER=ci/podman.sh) and a job (SWEEPKIT_PODMAN=/path/to/ci/podman.sh).
#
#   ci/podman.sh build|run|create ARGS...   podman, plus the fixes below
#   ci/podman.sh --print-fixes              print the commands with the fixes this machine gets
#
# The fixes, each added only when its check below holds (on a systemd machine with cgroup v2 and
# high limits, none):
#   --runtime runc            cgroup v1 or hybrid (/sys/fs/cgroup is not cgroup2), when runc is
#                             installed: crun fails there to set up the container's cgroups
#   --cgroup-manager cgroupfs no systemd (/run/systemd/system is missing, as in a container or a
#                             minimal VM): Podman's default manager is systemd
#   --ulimit nofile=N:N       the hard open-files limit is below Podman's rootful default
#   --ulimit nproc=N:N        (1048576) / its process default: N is this shell's soft limit,
#                             which Podman can pass on (ulimit -n; ulimit -u, at most 32768)
#   --network host            build only: the build fetches packages (pip, apt) and needs no
#                             network of its own; a rootful bridge needs iptables and netavark
set -euo pipefail

podman=podman

global=()
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] && command -v runc >/dev/null; then
    global+=(--runtime runc)
fi
if [ ! -d /run/systemd/system ]; then
    global+=(--cgroup-manager cgroupfs)
fi

# Podman's rootful defaults: nofile 1048576, nproc 4194304 (32768 for builds).
limits=()
nofile_hard=$(ulimit -Hn)
if [ "$nofile_hard" != unlimited ] && [ "$nofile_hard" -lt 1048576 ]; then
    limits+=(--ulimit "nofile=$(ulimit -n):$(ulimit -n)")
fi
nproc_hard=$(ulimit -Hu)
if [ "$nproc_hard" != unlimited ] && [ "$nproc_hard" -lt 4194304 ]; then
    nproc=$(ulimit -u)
    [ "$nproc" = unlimited ] && nproc=$nproc_hard
    # Podman 4 that cannot raise its own process limit sets it to 32768, and a container cannot
    # get more than Podman has (measured: 96365 refused with "error setting rlimit type 6").
    [ "$nproc" -gt 32768 ] && nproc=32768
    limits+=(--ulimit "nproc=$nproc:$nproc")
fi

if [ "${1:-}" = --print-fixes ]; then
    echo "podman ${global[*]} build ${limits[*]} --network host ..."
    echo "podman ${global[*]} run|create ${limits[*]} ..."
    exit 0
fi

[ $# -ge 1 ] || { echo "podman.sh: usage: ci/podman.sh build|run|create|... ARGS..." >&2; exit 2; }
command -v "$podman" >/dev/null || {
    echo "podman.sh: error: $podman is not on PATH; install Podman (Debian: apt-get install podman runc)" >&2
    exit 2
}
verb=$1
shift
case "$verb" in
    build) exec "$podman" "${global[@]}" build "${limits[@]}" --network host "$@" ;;
    run | create) exec "$podman" "${global[@]}" "$verb" "${limits[@]}" "$@" ;;
    *) exec "$podman" "${global[@]}" "$verb" "$@" ;;
esac
