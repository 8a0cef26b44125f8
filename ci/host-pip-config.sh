#!/usr/bin/env bash
# Carry this machine's pip configuration into a container build, so that pip inside the build
# goes where pip here goes (a local mirror or wheel folder, a proxy's CA bundle, a constraint file).
#
#   ci/host-pip-config.sh DIR     writes DIR/pip.conf and prints podman/docker build arguments,
#                                 one per line: --volume SRC:DST:ro for that pip.conf (at
#                                 /etc/pip.conf), the CA bundle and every local path it names
#
# It reads `python3 -m pip config list` here (PYTHON overrides python3): the config files and
# the PIP_* environment, environment first as pip itself ranks them. The CA bundle (cert) is
# mounted at a path of its own, /run/host-pip/ca.crt, never over the image's CA path: a read-only
# file there breaks any apt step that upgrades ca-certificates. Local paths (find-links, a
# constraint file, file:// indexes; for an index .../simple, the folder above it, where its
# files lie) are mounted read-only at the same path. Prints nothing when pip has no configuration.
set -euo pipefail

[ $# -eq 1 ] || { echo "host-pip-config.sh: usage: ci/host-pip-config.sh DIR" >&2; exit 2; }
out=$1
python=${PYTHON:-python3}
listing=$("$python" -m pip config list 2>/dev/null || true)
[ -n "$listing" ] || exit 0

mkdir -p "$out"
conf="$out/pip.conf"
declare -A value=()
# Lines look like  global.cert='/etc/ssl/certs/ca-certificates.crt'  or  :env:.cert='...'; the
# environment wins over files, as in pip.
while IFS= read -r line; do
    key=${line%%=*} val=${line#*=}
    val=${val#\'} val=${val%\'}
    scope=${key%%.*} name=${key#*.}
    case "$scope" in
        :env: | global | install) ;;
        *) continue ;;
    esac
    if [ "$scope" = :env: ] || [ -z "${value[$name]:-}" ]; then
        value[$name]=$val
    fi
done <<<"$listing"

declare -A mounts=()
mount_path() {
    local path=$1
    [[ $path == file://* ]] && path=${path#file://}
    [[ $path == /* ]] || return 0
    path=${path%/}
    [[ $path == */simple ]] && path=${path%/simple}
    [ -e "$path" ] && mounts[$path]=1
    return 0
}

{
    echo "# Written by ci/host-pip-config.sh from this machine's pip configuration."
    echo "[global]"
    for name in "${!value[@]}"; do
        val=${value[$name]}
        if [ "$name" = cert ]; then
            [ -f "$val" ] || continue
            mounts[cert]=$val
            val=/run/host-pip/ca.crt
        else
            for word in $val; do
                mount_path "$word"
            done
        fi
        echo "$name = $val"
    done
} >"$conf"

echo --volume
echo "$(cd "$out" && pwd)/pip.conf:/etc/pip.conf:ro"
for path in "${!mounts[@]}"; do
    echo --volume
    if [ "$path" = cert ]; then
        echo "${mounts[cert]}:/run/host-pip/ca.crt:ro"
    else
        echo "$path:$path:ro"
    fi
done
