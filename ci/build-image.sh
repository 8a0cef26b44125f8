#!/usr/bin/env bash
# Build sweepkit's image, stamped with its provenance, and print its path and sha256 for the job
# profile (config/cluster.yaml: image).
#
#   ci/build-image.sh [--engine apptainer|docker|podman] [--output FILE.sif] [--tag NAME:TAG]
#                     [--notest] [--sif-from-docker] [--dry-run]
#       Apptainer (the default when apptainer or singularity is on PATH): containers/sweepkit.def
#       -> build/sweepkit-<revision>.sif, with --fakeroot when not root.
#       Docker or Podman: containers/Dockerfile -> sweepkit:<revision>; with --sif-from-docker,
#       then converted to a SIF (Docker: apptainer build FILE.sif docker-daemon://TAG; Podman,
#       which has no daemon: podman save --format docker-archive to build/, then apptainer build
#       FILE.sif docker-archive://ARCHIVE).
#       --dry-run prints the build command and changes nothing.
#   ci/build-image.sh --lock [--base NAME:TAG] [--dry-run]
#       Resolve the base image tag to the digest it points at today (skopeo, crane, or curl
#       against the registry) and write NAME:TAG@sha256:DIGEST to containers/base.lock.
#   ci/build-image.sh --requirements [--dry-run]
#       Regenerate containers/requirements.lock with hashes (pip-compile from pip-tools, against
#       PyPI) from pyproject.toml's runtime dependencies minus torch and torchvision, which the
#       base image provides, at the versions pinned in constraints.txt.
#
# Every build passes the same build arguments to either engine: BASE_REPOSITORY, BASE_TAG and
# BASE_DIGEST (from containers/base.lock; an unpinned base is refused; the image is pulled by
# digest alone, since Apptainer refuses name:tag@digest), LOCK_SHA256, GIT_REVISION (with -dirty when
# the files the image copies differ from it), BUILD_DATE, TORCH_VERSION and TORCHVISION_VERSION
# (from constraints.txt, checked by the image's self-test).
#
# Environment: APPTAINER_TMPDIR and APPTAINER_CACHEDIR (default build/apptainer-tmp and
# build/apptainer-cache; a CUDA base image needs 20+ GB free there), SWEEPKIT_BASE_LOCK (another
# base.lock file), PYTHON (interpreter with pip-tools for --requirements; default .venv/bin/python),
# LOCK_INDEX_URL (the index that --requirements resolves against; default https://pypi.org/simple).
set -euo pipefail

CALLER_DIR=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BASE_LOCK=${SWEEPKIT_BASE_LOCK:-containers/base.lock}
[[ $BASE_LOCK == /* ]] || [ -z "${SWEEPKIT_BASE_LOCK:-}" ] || BASE_LOCK="$CALLER_DIR/$BASE_LOCK"
REQUIREMENTS_LOCK=containers/requirements.lock
DEFINITION=containers/sweepkit.def
DOCKERFILE=containers/Dockerfile
NEEDED_GB=25
# What both definitions copy into the image (containers/sweepkit.def %files, Dockerfile COPY).
COPIED=(pyproject.toml README.md train jobs config containers/requirements.lock containers/selftest.sh)

die() {
    echo "build-image: error: $*" >&2
    exit 2
}

say() {
    echo "build-image: $*" >&2
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# Print a command, shell-quoted, on one line.
show() {
    local quoted
    printf -v quoted '%q ' "$@"
    echo "${quoted% }"
}

# The image reference in the base lock: its first line that is neither blank nor a comment.
read_base() {
    [ -f "$BASE_LOCK" ] || die "$BASE_LOCK is missing; restore it from git or write the base image name:tag there and run ci/build-image.sh --lock"
    local ref
    ref=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$BASE_LOCK" | head -n 1 | tr -d '[:space:]')
    [ -n "$ref" ] || die "$BASE_LOCK names no image; write the base image name:tag there and run ci/build-image.sh --lock"
    echo "$ref"
}

is_pinned() {
    [[ $1 =~ ^[^@[:space:]]+:[^@/:[:space:]]+@sha256:[0-9a-f]{64}$ ]]
}

# The exact version constraints.txt pins for a package, e.g. tested_version torch -> 2.14.1.
tested_version() {
    local version
    version=$(sed -n "s/^$1==\([^[:space:];]*\).*/\1/p" constraints.txt | head -n 1)
    [ -n "$version" ] || die "constraints.txt pins no $1==VERSION; the image's self-test compares the base image's $1 with it"
    echo "$version"
}

git_revision() {
    local rev
    if ! rev=$(git rev-parse HEAD 2>/dev/null); then
        echo unknown
        return
    fi
    # Dirty: what the image copies (tracked or not) differs from that revision.
    if [ -n "$(git status --porcelain -- "${COPIED[@]}" 2>/dev/null)" ]; then
        rev="$rev-dirty"
    fi
    echo "$rev"
}

# --- --lock: base image tag -> digest -------------------------------------------------------

# Registry host and repository path of NAME[:TAG], as the registry API names them.
registry_of() {
    local name=${1%:*} first=${1%%/*}
    if [[ $name != */* ]] || [[ $first != *.* && $first != *:* && $first != localhost ]]; then
        name="docker.io/$name"
    fi
    local host=${name%%/*} repo=${name#*/}
    if [ "$host" = docker.io ]; then
        host=registry-1.docker.io
        [[ $repo == */* ]] || repo="library/$repo"
    fi
    echo "$host $repo"
}

# The Docker-Content-Digest of the manifest (an index for multi-arch images) that TAG names,
# through the registry's HTTP API with an anonymous bearer token.
digest_with_curl() {
    local ref=$1 host repo tag=${1##*:}
    read -r host repo < <(registry_of "$ref")
    local url="https://$host/v2/$repo/manifests/$tag"
    local accept="application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
    local headers
    headers=$(curl -fsSI --max-time 60 -H "Accept: $accept" "$url" 2>/dev/null || true)
    if ! grep -qi '^docker-content-digest:' <<<"$headers"; then
        local challenge realm service scope token
        challenge=$(curl -sSI --max-time 60 -H "Accept: $accept" "$url" | grep -i '^www-authenticate:' || true)
        [ -n "$challenge" ] || return 1
        realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
        service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
        scope=$(sed -n 's/.*scope="\([^"]*\)".*/\1/p' <<<"$challenge")
        [ -n "$scope" ] || scope="repository:$repo:pull"
        token=$(curl -fsS --max-time 60 -G "$realm" --data-urlencode "service=$service" \
            --data-urlencode "scope=$scope" | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
        [ -n "$token" ] || return 1
        headers=$(curl -fsSI --max-time 60 -H "Accept: $accept" -H "Authorization: Bearer $token" "$url") || return 1
    fi
    sed -n 's/^[Dd][Oo][Cc][Kk][Ee][Rr]-[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Dd][Ii][Gg][Ee][Ss][Tt]:[[:space:]]*\(sha256:[0-9a-f]*\).*/\1/p' <<<"$headers" | head -n 1
}

resolve_digest() {
    local ref=$1
    if command -v skopeo >/dev/null; then
        skopeo inspect --format '{{.Digest}}' "docker://$ref"
    elif command -v crane >/dev/null; then
        crane digest "$ref"
    elif command -v curl >/dev/null; then
        digest_with_curl "$ref"
    else
        die "--lock needs skopeo, crane or curl on PATH to ask the registry for the digest of $ref"
    fi
}

lock_base() {
    local ref=${1:-$(read_base)}
    ref=${ref%@*}
    [[ $ref =~ ^[^@[:space:]]+:[^@/:[:space:]]+$ ]] || die "base image '$ref' is not NAME:TAG (for example docker.io/pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime)"
    if [ "$DRY_RUN" = 1 ]; then
        local host repo
        read -r host repo < <(registry_of "$ref")
        say "would resolve the digest of $ref (registry API: https://$host/v2/$repo/manifests/${ref##*:}) and write $ref@sha256:<digest> to $BASE_LOCK"
        return
    fi
    say "asking the registry for the digest of $ref"
    local digest
    digest=$(resolve_digest "$ref" | tr -d '[:space:]') || true
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not read the digest of $ref from its registry (got '${digest}'); check the name and tag, your network or proxy, or install skopeo"
    local tmp="$BASE_LOCK.tmp.$$"
    {
        echo "# The base image of containers/sweepkit.def and containers/Dockerfile, pinned by digest:"
        echo "# the multi-arch index that $ref pointed at on $(date -u +%Y-%m-%d)."
        echo "# Written by ci/build-image.sh --lock; to change the base, put another name:tag here (or"
        echo "# pass --base) and run the lock step again. constraints.txt must name the torch and"
        echo "# torchvision it ships: the image's self-test compares them."
        echo "$ref@$digest"
    } >"$tmp"
    mv "$tmp" "$BASE_LOCK"
    say "wrote $BASE_LOCK: $ref@$digest (commit it)"
}

# --- --requirements: pyproject.toml -> hash-locked requirements ---------------------------------

write_requirements_in() {
    "$PYTHON" - <<'PY'
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
print("# Generated by ci/build-image.sh --requirements from pyproject.toml: the runtime dependencies")
print("# minus torch and torchvision (the base image has them), plus the build backend, which")
print("# installs the project inside the image without build isolation.")
for requirement in project["project"]["dependencies"] + project["build-system"]["requires"]:
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
    if name not in ("torch", "torchvision"):
        print(requirement)
sys.stdout.flush()
PY
}

lock_requirements() {
    if [ -z "${PYTHON:-}" ]; then
        PYTHON=python3
        [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
    fi
    mkdir -p build
    local input=build/requirements.in output="build/requirements.lock.new"
    write_requirements_in >"$input"
    local index=${LOCK_INDEX_URL:-https://pypi.org/simple}
    # The lock must not depend on this machine's pip configuration (local mirrors, find-links,
    # global constraints): only PyPI's files, whose hashes the image will check.
    local cmd=(env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT
        PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="ci/build-image.sh --requirements"
        "$PYTHON" -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras
        --no-emit-index-url --no-emit-find-links --index-url "$index"
        --constraint constraints.txt --output-file "$output" "$input")
    if [ "$DRY_RUN" = 1 ]; then
        cat "$input"
        show "${cmd[@]}"
        return
    fi
    "$PYTHON" -m piptools compile --version >/dev/null 2>&1 || die "$PYTHON has no pip-tools; install the dev extras (make setup) or set PYTHON"
    # Start from the current lock, so that pins stay where they are unless constraints move them.
    if [ -f "$REQUIREMENTS_LOCK" ]; then
        cp "$REQUIREMENTS_LOCK" "$output"
    else
        rm -f "$output"
    fi
    say "resolving $input against $index (pip-compile, needs network)"
    "${cmd[@]}" || die "pip-compile failed; $REQUIREMENTS_LOCK is unchanged"
    mv "$output" "$REQUIREMENTS_LOCK"
    say "wrote $REQUIREMENTS_LOCK ($(grep -c '^[A-Za-z0-9]' "$REQUIREMENTS_LOCK") packages, sha256 $(sha256sum "$REQUIREMENTS_LOCK" | cut -d' ' -f1))"
}

# --- build ---------------------------------------------------------------------------------------

# %arguments and --build-arg came with Apptainer 1.2 and SingularityCE 4.0; older versions would
# try to pull an image literally named "{{ BASE_REPOSITORY }}@{{ BASE_DIGEST }}".
check_template_support() {
    local version major minor
    version=$("$1" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+' | head -n 1)
    major=${version%%.*} minor=${version#*.}
    [ -n "$version" ] || die "could not read the version of $1 ($1 --version)"
    if [ "$1" = apptainer ] && { [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 2 ]; }; }; then
        die "apptainer $version is too old for containers/sweepkit.def (%arguments needs 1.2 or newer); load a newer module"
    fi
    if [ "$1" = singularity ] && [ "$major" -lt 4 ]; then
        die "singularity $version is too old for containers/sweepkit.def (needs Apptainer 1.2+ or SingularityCE 4+)"
    fi
}

free_gb() {
    df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }'
}

build_image() {
    local base digest lock_sha revision date torch torchvision
    base=$(read_base)
    is_pinned "$base" || die "$BASE_LOCK names $base, which is not pinned by digest (name:tag@sha256:...); run ci/build-image.sh --lock where the registry is reachable and commit $BASE_LOCK"
    digest=${base##*@}
    local name_tag=${base%@*}
    local repository=${name_tag%:*} base_tag=${name_tag##*:}
    [ -f "$REQUIREMENTS_LOCK" ] || die "$REQUIREMENTS_LOCK is missing; run ci/build-image.sh --requirements"
    lock_sha=$(sha256sum "$REQUIREMENTS_LOCK" | cut -d' ' -f1)
    revision=$(git_revision)
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    torch=$(tested_version torch)
    torchvision=$(tested_version torchvision)
    local build_args=(
        --build-arg "BASE_REPOSITORY=$repository"
        --build-arg "BASE_TAG=$base_tag"
        --build-arg "BASE_DIGEST=$digest"
        --build-arg "LOCK_SHA256=$lock_sha"
        --build-arg "GIT_REVISION=$revision"
        --build-arg "BUILD_DATE=$date"
        --build-arg "TORCH_VERSION=$torch"
        --build-arg "TORCHVISION_VERSION=$torchvision"
    )
    local short=${revision:0:12}
    [[ $revision == *-dirty ]] && short="$short-dirty"

    if [ -z "$ENGINE" ]; then
        if command -v apptainer >/dev/null || command -v singularity >/dev/null; then
            ENGINE=apptainer
        elif command -v docker >/dev/null; then
            ENGINE=docker
        elif command -v podman >/dev/null; then
            ENGINE=podman
        elif [ "$DRY_RUN" = 1 ]; then
            ENGINE=apptainer
        else
            die "no container engine on PATH: install Apptainer (or load its module), Docker or Podman"
        fi
    fi

    case "$ENGINE" in
        apptainer)
            local apptainer=apptainer
            if ! command -v apptainer >/dev/null && command -v singularity >/dev/null; then
                apptainer=singularity
            fi
            [ -n "$SIF_FROM_DOCKER" ] && die "--sif-from-docker goes with --engine docker or podman"
            [ -n "$TAG" ] && die "--tag names a Docker image; an Apptainer build takes --output FILE.sif"
            local output=${OUTPUT:-build/sweepkit-$short.sif}
            local flags=()
            [ "$(id -u)" -eq 0 ] || flags+=(--fakeroot)
            [ "$NOTEST" = 1 ] && flags+=(--notest)
            local partial="${output%.sif}.partial.sif"
            local cmd=("$apptainer" build --force "${flags[@]}" "${build_args[@]}" "$partial" "$DEFINITION")
            if [ "$DRY_RUN" = 1 ]; then
                show "${cmd[@]}"
                return
            fi
            command -v "$apptainer" >/dev/null || die "apptainer is not on PATH; install it or load its module (module load apptainer)"
            check_template_support "$apptainer"
            export APPTAINER_TMPDIR=${APPTAINER_TMPDIR:-$ROOT/build/apptainer-tmp}
            export APPTAINER_CACHEDIR=${APPTAINER_CACHEDIR:-$ROOT/build/apptainer-cache}
            mkdir -p "$APPTAINER_TMPDIR" "$APPTAINER_CACHEDIR" "$(dirname "$output")"
            local gb
            gb=$(free_gb "$APPTAINER_TMPDIR")
            say "APPTAINER_TMPDIR=$APPTAINER_TMPDIR (${gb:-?} GB free), APPTAINER_CACHEDIR=$APPTAINER_CACHEDIR"
            if [ -n "$gb" ] && [ "$gb" -lt "$NEEDED_GB" ]; then
                say "warning: the CUDA base image unpacks to 20+ GB; point APPTAINER_TMPDIR at a larger disk if the build runs out of space"
            fi
            say "$(show "${cmd[@]}")"
            "${cmd[@]}" || { rm -f "$partial"; die "apptainer build failed; nothing was written to $output"; }
            mv -f "$partial" "$output"
            local path sha
            path=$(cd "$(dirname "$output")" && pwd)/$(basename "$output")
            sha=$(sha256sum "$output" | cut -d' ' -f1)
            echo "image: $path"
            echo "sha256: $sha"
            echo "In config/cluster.yaml, under your profile:  image: $path"
            ;;
        docker | podman)
            local tag=${TAG:-sweepkit:$short}
            local engine=("$ENGINE") mounts=()
            if [ "$ENGINE" = podman ]; then
                # ci/podman.sh adds what this machine needs (runtime, cgroups, limits, host
                # network); this machine's pip configuration comes in read-only, so that pip in
                # the build goes where pip here goes (Docker builds take no mounts).
                engine=(ci/podman.sh)
                [ "$DRY_RUN" = 1 ] || mapfile -t mounts < <(PYTHON=${PYTHON:-python3} "$ROOT/ci/host-pip-config.sh" build/host-pip)
            fi
            local cmd=("${engine[@]}" build --file "$DOCKERFILE" "${build_args[@]}" "${mounts[@]}" --tag "$tag" .)
            local convert=() save=() sif="" archive=""
            if [ -n "$SIF_FROM_DOCKER" ]; then
                sif=${OUTPUT:-build/sweepkit-$short.sif}
                convert=(apptainer build --force "$sif" "docker-daemon://$tag")
                if [ "$ENGINE" = podman ]; then
                    archive="build/sweepkit-$short.docker.tar"
                    save=(podman save --format docker-archive --output "$archive" "$tag")
                    convert=(apptainer build --force "$sif" "docker-archive://$archive")
                fi
            elif [ -n "$OUTPUT" ]; then
                die "--output names a SIF file; a Docker build takes --tag NAME:TAG (add --sif-from-docker for a SIF)"
            fi
            if [ "$DRY_RUN" = 1 ]; then
                show "${cmd[@]}"
                [ "${#save[@]}" -eq 0 ] || show "${save[@]}"
                [ "${#convert[@]}" -eq 0 ] || show "${convert[@]}"
                return
            fi
            command -v "$ENGINE" >/dev/null || die "$ENGINE is not on PATH; install it (Debian: apt-get install $ENGINE) or pick another --engine"
            local problem
            if ! problem=$("${engine[@]}" info 2>&1 >/dev/null); then
                die "$ENGINE cannot run here ($ENGINE info: $(grep -m 1 -i 'error' <<<"$problem" || echo "${problem%%$'\n'*}")); start its daemon or fix its setup"
            fi
            [ "$NOTEST" = 1 ] && say "warning: --notest applies to Apptainer; the Docker build always runs the self-test"
            say "$(show "${cmd[@]}")"
            mkdir -p build
            local log=build/image-build.log
            local status=0
            # pipefail: the status is the build's (tee does not fail).
            DOCKER_BUILDKIT=1 "${cmd[@]}" 2>&1 | tee "$log" >&2 || status=$?
            if [ "$status" -ne 0 ]; then
                # pip's line for a hash that PyPI's file does not match names the package.
                local mismatch
                mismatch=$(grep -m 1 -E 'Expected sha256|THESE PACKAGES DO NOT MATCH THE HASHES' -A 3 "$log" | grep -m 1 -E '^ *[A-Za-z0-9_.-]+==' | sed 's/^ *//' || true)
                [ -z "$mismatch" ] || die "a hash in $REQUIREMENTS_LOCK does not match the file pip got: $mismatch; regenerate the lock (ci/build-image.sh --requirements) or fix that entry (log: $log)"
                die "$ENGINE build failed (log: $log)"
            fi
            echo "image: $tag"
            echo "id: $("${engine[@]}" image inspect --format '{{.Id}}' "$tag")"
            if [ "${#convert[@]}" -gt 0 ]; then
                command -v apptainer >/dev/null || die "--sif-from-docker needs apptainer on PATH"
                mkdir -p "$(dirname "$sif")"
                if [ "${#save[@]}" -gt 0 ]; then
                    rm -f "$archive"
                    say "$(show "${save[@]}")"
                    "${save[@]}" || die "podman could not save $tag to $archive"
                fi
                say "$(show "${convert[@]}")"
                "${convert[@]}" || die "apptainer could not convert $tag"
                [ -z "$archive" ] || rm -f "$archive"
                local path
                path=$(cd "$(dirname "$sif")" && pwd)/$(basename "$sif")
                echo "image: $path"
                echo "sha256: $(sha256sum "$path" | cut -d' ' -f1)"
                echo "In config/cluster.yaml, under your profile:  image: $path"
                echo "(a SIF converted from Docker has no %test or %help: ci/smoke.sh runs its smoke)"
            fi
            ;;
        *)
            die "--engine must be apptainer, docker or podman, not '$ENGINE'"
            ;;
    esac
}

# --- arguments -----------------------------------------------------------------------------------

MODE=build ENGINE="" OUTPUT="" TAG="" BASE_OVERRIDE="" NOTEST=0 DRY_RUN=0 SIF_FROM_DOCKER=""
while [ $# -gt 0 ]; do
    case "$1" in
        --lock) MODE=lock ;;
        --requirements) MODE=requirements ;;
        --base) [ $# -ge 2 ] || die "--base needs NAME:TAG"; BASE_OVERRIDE=$2; shift ;;
        --base=*) BASE_OVERRIDE=${1#*=} ;;
        --engine) [ $# -ge 2 ] || die "--engine needs apptainer, docker or podman"; ENGINE=$2; shift ;;
        --engine=*) ENGINE=${1#*=} ;;
        --output) [ $# -ge 2 ] || die "--output needs FILE.sif"; OUTPUT=$2; shift ;;
        --output=*) OUTPUT=${1#*=} ;;
        --tag) [ $# -ge 2 ] || die "--tag needs NAME:TAG"; TAG=$2; shift ;;
        --tag=*) TAG=${1#*=} ;;
        --notest) NOTEST=1 ;;
        --sif-from-docker) SIF_FROM_DOCKER=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (ci/build-image.sh --help lists them)" ;;
    esac
    shift
done

# Paths given on the command line are relative to where the script was called from.
[ -z "$OUTPUT" ] || [[ $OUTPUT == /* ]] || OUTPUT="$CALLER_DIR/$OUTPUT"
[ -z "$BASE_OVERRIDE" ] || [ "$MODE" = lock ] || die "--base goes with --lock (the build reads $BASE_LOCK)"
case "$MODE" in
    lock) lock_base "$BASE_OVERRIDE" ;;
    requirements) lock_requirements ;;
    build) build_image ;;
esac
