#!/usr/bin/env bash
# The GPU checks in one device call of under 8 minutes (issue 31, part 1), for a session lent a
# device (15 minutes of device time, start-up included):
#   smoke       sweepkit smoke on CUDA
#   ablation    bench/speed_ablation.py at 224 px, ResNet-50: the usual single-file W&B training
#               script at batch 128, then one timed row per change (data on the device, channels_last,
#               bf16, compile default, compile reduce-overhead = CUDA graphs, the full kit at
#               batch 256), and a torch.profiler summary of the compile-default row
#   fallback    the 32 px imagenet-stem step with compile_mode reduce-overhead, which failed inside
#               Inductor at run time on the H200 (2026-12-04): the step must fall back and go on
# --all adds the 32 px CIFAR-stem throughput and the real trainer on CUDA stopped by SIGTERM after
# its first epoch and resumed (about 3 minutes more: over the 8 minutes with the rest).
# Each step has a time limit (seconds, overridable: SMOKE_S 60, ABLATION_S 280, FALLBACK_S 85; with
# nvidia-smi and versions, 480 s at most), so a hang cannot spend the session's device time; the
# ablation writes its rows as they finish. Expected: about 6 minutes on an H100 (compiles dominate).
# Results go to $OUT (the device tool's folder; default bench/out), at most 8 files: gpu_check.log,
# ablation-224.json, ablation-224.md, profile-224.txt, fallback-32.json (and with --all
# throughput-32-cifar.json, train-run.json). Record them in bench/RESULTS.md with card, torch
# version and date. W&B is not needed (and not installed there); python3 there has torch and
# torchvision, and this script puts the working tree on PYTHONPATH (nothing to install).
#
#   bash bench/gpu_check.sh            # from the repository root (the device tool's command)
#   bash bench/gpu_check.sh --all      # and the 32 px CIFAR-stem step and the trainer's resume
#   bash bench/gpu_check.sh --quick    # every step, tiny, on whatever device (tests run this)
#   bash bench/gpu_check.sh --dry-run  # print the commands only
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

quick=false all=false dry=false
for arg in "$@"; do
    case $arg in
        --quick) quick=true ;;
        --all) all=true ;;
        --dry-run) dry=true ;;
        -h | --help)
            sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "gpu_check.sh: unknown argument '$arg'; use --quick, --all, --dry-run or --help" >&2
            exit 2
            ;;
    esac
done

out=${OUT:-bench/out}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
tee_pid=$!
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
py=${PYTHON:-python3}
status=0
smoke_s=${SMOKE_S:-60} ablation_s=${ABLATION_S:-280} fallback_s=${FALLBACK_S:-85}

# What each step runs; --quick shrinks every workload so that a CPU runs the whole script in
# a few minutes, which keeps this script from rotting between sessions that have a GPU.
smoke=(smoke)
ablation=(--out-dir "$out" --profile 5)
fallback=(--image-size 32 --stem imagenet --kit-batch-sizes 128 --compile-mode reduce-overhead
    --skip-baseline --steps 30 --warmup 10)
tp32cifar=(--image-size 32 --stem cifar --kit-batch-sizes '128,512' --steps 30 --warmup 10)
trainer=(--config config/presets/cifar32.yaml --set dataset=synthetic --set num_epochs=4)
if $quick; then
    small=(--model resnet18 --images 64 --steps 2 --warmup 1 --workers 1)
    smoke=(smoke --model resnet18 --image-size 32)
    # the ablation keeps its compile rows and the profile of the compile-default row (Inductor
    # on the CPU, the longest step): the real check's path, at 32 px and batch 4
    ablation=(--model resnet18 --images 16 --steps 1 --warmup 1 --workers 1 --out-dir "$out"
        --profile 1 --image-size 32 --stem cifar --batch-size 4 --batch-sizes 4)
    fallback=("${small[@]}" --image-size 32 --stem imagenet --batch-size 8 --kit-batch-sizes 8
        --skip-baseline --no-compile)
    tp32cifar=("${small[@]}" --batch-size 8 --image-size 32 --stem cifar --kit-batch-sizes 8
        --no-compile)
    trainer=(--set dataset=synthetic --set synthetic_size=256 --set model_name=resnet18
        --set image_size=32 --set stem=cifar --set pretrained=false --set batch_size=16
        --set compile=false --set num_epochs=6 --set limit_train_batches=8)
    all=true
fi

step() {  # step NAME SECONDS COMMAND...: run under a time limit, log, remember a failure, go on
    local name=$1 limit=$2
    shift 2
    $quick && limit=900  # the limits guard a device's time; a loaded CPU may take longer
    echo "== $name (limit ${limit}s): $*"
    if $dry; then
        return 0
    fi
    if declare -F "$1" >/dev/null; then
        "$@"  # a function of this script: timeout runs programs only; it limits its own steps
    else
        timeout --signal=TERM --kill-after=10 "$limit" "$@"
    fi
    local rc=$?
    [[ $rc -eq 124 ]] && echo "== $name ran past its ${limit}s limit"
    echo "== $name exit $rc (${SECONDS}s since the start)"
    [[ $rc -eq 0 ]] || status=1
}

# shellcheck disable=SC2317  # run through step(), which shellcheck cannot follow
epochs_recorded() {  # epochs_recorded RUN_JSON: how many epochs run.json holds (0 if unreadable)
    "$py" -c 'import json, sys
try:
    print(len(json.load(open(sys.argv[1])).get("epochs", [])))
except (OSError, ValueError):
    print(0)' "$1"
}

# shellcheck disable=SC2317
preempt_and_resume() {  # the trainer's SIGTERM contract on this device: exit 75, then resume
    local run=${TMPDIR:-/tmp}/sweepkit-gpu-check-run pid rc
    rm -rf "$run"
    "$py" -m sweepkit.train "${trainer[@]}" --run-dir "$run" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [[ $(epochs_recorded "$run/run.json") -lt 1 ]]; do
        sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    echo "first attempt, SIGTERM after epoch 1: exit $rc (75 = preempted, to be resumed)"
    [[ $rc -eq 75 ]] || return 1
    "$py" -m sweepkit.train "${trainer[@]}" --run-dir "$run"
    rc=$?
    cp "$run/run.json" "$out/train-run.json"
    "$py" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("state", r["state"], "resumed_from", r.get("resumed_from"), "attempt", r.get("attempt"))
for e in r["epochs"]:
    print("epoch {epoch}: {images_per_s:,.0f} img/s, {epoch_s:.1f} s, val acc {Validation Accuracy:.1f}%".format(**e))
sys.exit(0 if r["state"] == "finished" and r.get("resumed_from") else 1)' "$run/run.json" || return 1
    return "$rc"
}

if command -v nvidia-smi >/dev/null; then
    step gpu 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
fi
step versions 45 "$py" -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
step smoke "$smoke_s" "$py" -m sweepkit.jobs.cli "${smoke[@]}"
step ablation "$ablation_s" "$py" bench/speed_ablation.py "${ablation[@]}"
step fallback-32 "$fallback_s" "$py" bench/throughput.py "${fallback[@]}" --out "$out/fallback-32.json"
if $all; then
    step throughput-32-cifar 150 "$py" bench/throughput.py "${tp32cifar[@]}" --out "$out/throughput-32-cifar.json"
    step trainer 240 preempt_and_resume
fi
echo "== gpu_check exit $status"
exec >&- 2>&-
wait "$tee_pid"  # the log's last lines are written before the script ends
exit "$status"
