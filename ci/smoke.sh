#!/usr/bin/env bash
# Run `sweepkit smoke` (one train and one eval step of ResNet-50 on synthetic data) inside an
# image, on the GPU when this machine has one.
#
#   ci/smoke.sh IMAGE.sif [SMOKE ARGS...]   an Apptainer (or Singularity) image file
#   ci/smoke.sh NAME:TAG [SMOKE ARGS...]    a Docker image (Podman: SWEEPKIT_DOCKER=podman)
#   ci/smoke.sh --host [SMOKE ARGS...]      no container: the sweepkit on PATH
#
# The GPU is passed in (--nv, or --gpus all) only when `nvidia-smi -L` succeeds here. SMOKE ARGS go
# to `sweepkit smoke` (see sweepkit smoke --help). Exit code: the smoke's (0 ok, 1 failed, 2 bad
# arguments), or 2 when the image or the container engine is missing.
set -euo pipefail

die() {
    echo "smoke.sh: error: $*" >&2
    exit 2
}

has_gpu() {
    command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1
}

run() {
    local quoted
    printf -v quoted '%q ' "$@"
    echo "smoke.sh: ${quoted% }" >&2
    exec "$@"
}

[ $# -ge 1 ] || die "usage: ci/smoke.sh IMAGE.sif|NAME:TAG|--host [SMOKE ARGS...]"
case "$1" in -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
esac
image=$1
shift

if [ "$image" = --host ]; then
    command -v sweepkit >/dev/null || die "sweepkit is not on PATH; activate the project's environment (make setup; . .venv/bin/activate)"
    run sweepkit smoke "$@"
fi

if [[ $image == *.sif ]] || [ -f "$image" ]; then
    [ -f "$image" ] || die "image file $image not found; build it with ci/build-image.sh (or pass a Docker image NAME:TAG)"
    engine=""
    for candidate in apptainer singularity; do
        if command -v "$candidate" >/dev/null; then
            engine=$candidate
            break
        fi
    done
    [ -n "$engine" ] || die "neither apptainer nor singularity is on PATH; install Apptainer or load its module (module load apptainer) to run $image"
    flags=(--cleanenv)
    # --cleanenv keeps the host's Python paths out; the GPU assignment of a SLURM job stays.
    if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
        flags+=(--env "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES")
    fi
    if has_gpu; then
        flags+=(--nv)
    else
        echo "smoke.sh: no GPU here (nvidia-smi -L failed or is missing): the smoke runs on the CPU" >&2
    fi
    run "$engine" exec "${flags[@]}" "$image" sweepkit smoke "$@"
fi

engine=${SWEEPKIT_DOCKER:-docker}
command -v "$engine" >/dev/null || die "$engine is not on PATH, and $image is not an image file; pass IMAGE.sif, or install Docker (or set SWEEPKIT_DOCKER=podman)"
if ! "$engine" image inspect "$image" >/dev/null 2>&1; then
    if ! "$engine" info >/dev/null 2>&1; then
        die "cannot reach the $engine daemon to find image $image; start it, or pass an Apptainer IMAGE.sif"
    fi
    die "no $engine image $image here; build it with ci/build-image.sh --engine $engine"
fi
flags=(--rm)
if has_gpu; then
    flags+=(--gpus all)
else
    echo "smoke.sh: no GPU here (nvidia-smi -L failed or is missing): the smoke runs on the CPU" >&2
fi
# The image's entrypoint is sweepkit.
run "$engine" run "${flags[@]}" "$image" smoke "$@"
