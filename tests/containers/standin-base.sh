#!/usr/bin/env bash
# Make (or find) the stand-in base image the container tests build containers/Dockerfile on, and
# write its lock, a base.lock for SWEEPKIT_BASE_LOCK. A stand-in, not PyTorch's image: see
# tests/containers/README.md for how it differs.
#
#   tests/containers/standin-base.sh [LOCK]   LOCK defaults to build/standin/base.lock
#
# The image is localhost/sweepkit-standin-base:<recipe>, where <recipe> is the start of the
# sha256 of its recipe: the debootstrap suite, variant and packages below, standin-base.Containerfile
# and the torch and torchvision pins in constraints.txt. It is built only when no image has that tag, i.e. when the recipe changes:
#   1. debootstrap: a minimal Debian 12 root filesystem with python3 and python3-venv, from the
#      mirror in SWEEPKIT_DEBIAN_MIRROR (default http://deb.debian.org/debian); needs root
#   2. podman import: that filesystem becomes an image
#   3. podman build of standin-base.Containerfile on it: torch and torchvision into /opt/venv,
#      with this machine's pip configuration mounted read-only (ci/host-pip-config.sh)
# Older stand-ins (other recipes) are removed once the new one is built. Prints the lock's line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/containers"
cd "$ROOT"
LOCK=${1:-build/standin/base.lock}
REPOSITORY=localhost/sweepkit-standin-base
MIRROR=${SWEEPKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PODMAN=("$ROOT/ci/podman.sh")
SUITE=bookworm
VARIANT=minbase
PACKAGES=python3,python3-venv,ca-certificates

die() {
    echo "standin-base: error: $*" >&2
    exit 2
}

say() {
    echo "standin-base: $*" >&2
}

pin() {
    local version
    version=$(sed -n "s/^$1==\([^[:space:];]*\).*/\1/p" constraints.txt | head -n 1)
    [ -n "$version" ] || die "constraints.txt pins no $1==VERSION"
    echo "$version"
}

# debootstrap mounts /proc and /sys in the new root; a failed run can leave them there, and
# neither may be archived or removed with the files.
unmount_below() {
    local target
    [ -d "$1" ] || return 0
    { findmnt -rn -o TARGET | grep -F "$(cd "$1" && pwd)/" || true; } | sort -r | while read -r target; do
        umount -l "$target" || true
    done
}

cleanup() {
    unmount_below "$1"
    rm -rf --one-file-system "$1"
}

torch=$(pin torch)
torchvision=$(pin torchvision)
recipe=$(cat "$HERE/standin-base.Containerfile" <(echo "debootstrap --variant=$VARIANT --include=$PACKAGES $SUITE" "torch==$torch torchvision==$torchvision") | sha256sum | cut -d' ' -f1)
tag="$REPOSITORY:${recipe:0:16}"

command -v podman >/dev/null || die "podman is not on PATH (tests/install-system-deps.sh installs it)"

if ! podman image exists "$tag"; then
    command -v debootstrap >/dev/null || die "debootstrap is not on PATH (tests/install-system-deps.sh installs it)"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root to make the stand-in's root filesystem; run the container tests as root"
    work="$ROOT/build/standin/work"
    rm -rf "$work"
    mkdir -p "$work"
    trap 'cleanup "$work"' EXIT
    # The root filesystem of this recipe, kept from an attempt whose install step failed.
    rootfs_tag="localhost/sweepkit-standin-rootfs:${recipe:0:16}"
    if ! podman image exists "$rootfs_tag"; then
        say "building $tag: debootstrap $SUITE from $MIRROR"
        debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
            >"$work/debootstrap.log" 2>&1 ||
            die "debootstrap failed; see the end of its log: $(tail -n 3 "$work/debootstrap.log" | tr '\n' ' ')"
        unmount_below "$work/rootfs"
        rm -rf "$work/rootfs/var/cache/apt/archives"/*.deb "$work/rootfs/var/lib/apt/lists"/*
        tar -C "$work/rootfs" --numeric-owner --one-file-system -cf - . | podman import --quiet - "$rootfs_tag" >/dev/null
        cleanup "$work/rootfs"
    fi
    mapfile -t pip_mounts < <("$ROOT/ci/host-pip-config.sh" "$work/pip")
    say "installing torch $torch and torchvision $torchvision into the stand-in"
    "${PODMAN[@]}" build --quiet --layers=false --file "$HERE/standin-base.Containerfile" \
        --build-arg "ROOTFS=$rootfs_tag" --build-arg "TORCH_VERSION=$torch" \
        --build-arg "TORCHVISION_VERSION=$torchvision" --build-arg "RECIPE_SHA256=$recipe" \
        "${pip_mounts[@]}" --tag "$tag" "$work" >build/standin/build.log 2>&1 ||
        die "the install step failed; the end of build/standin/build.log: $(tail -n 5 build/standin/build.log | tr '\n' ' ')"
    podman untag "$rootfs_tag" 2>/dev/null || true
    # Stand-ins of earlier recipes: several GB each.
    podman images --format '{{.Repository}}:{{.Tag}}' | while read -r old; do
        if [[ $old == "$REPOSITORY":* || $old == localhost/sweepkit-standin-rootfs:* ]] && [ "$old" != "$tag" ]; then
            podman rmi "$old" >/dev/null 2>&1 || true
        fi
    done
fi

digest=$(podman image inspect --format '{{.Digest}}' "$tag")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "podman gave no digest for $tag (got '$digest')"
mkdir -p "$(dirname "$LOCK")"
{
    echo "# The stand-in base of the container tests (tests/containers/standin-base.sh), not"
    echo "# PyTorch's image; for SWEEPKIT_BASE_LOCK."
    echo "$tag@$digest"
} >"$LOCK"
echo "$tag@$digest"
