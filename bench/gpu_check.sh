#!/usr/bin/env bash
# The GPU checks in one call, for a session lent a device (about 15 minutes, start-up included):
# smoke on CUDA; throughput against the baseline of the usual single-file W&B training script
# (its PIL pipeline) at 224 px and at 32 px with that script's own model (imagenet stem): the
# issue's targets, each with a profile of the kit's equal-batch steps; at 32 px with the CIFAR
# stem (the cifar32 preset users train); then the real trainer on CUDA (bf16, compile), stopped
# by SIGTERM after its first epoch and rerun on the same run folder, which must resume and finish.
# About 9 minutes on an H100 (compiles dominate); the 32 px CIFAR-stem step at bs 512 and the
# trainer share compiled graphs through Inductor's cache.
# Results go to $OUT (the device tool's folder; default bench/out): gpu_check.log, the three
# throughput JSONs and the trainer's run.json (the device tool brings back at most 8 files).
# Record them in bench/RESULTS.md with card and date. W&B is not needed (and not installed there).
#
#   bash bench/gpu_check.sh            # from the repository root
#   bash bench/gpu_check.sh --quick    # the same steps, tiny, on whatever device (tests run this)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-bench/out}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
tee_pid=$!
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
py=${PYTHON:-python3}
status=0

# What each step runs; --quick shrinks every workload so that a CPU runs the whole script in
# about a minute, which keeps this script from rotting between sessions that have a GPU.
smoke=(smoke)
tp224=(--steps 30 --warmup 10 --profile 5)
tp32=(--image-size 32 --stem imagenet --kit-batch-sizes '128,1024' --compile-mode reduce-overhead --steps 30 --warmup 10 --profile 5)
tp32cifar=(--image-size 32 --stem cifar --kit-batch-sizes '128,512' --steps 30 --warmup 10)
trainer=(--config config/presets/cifar32.yaml --set dataset=synthetic --set num_epochs=4)
if [[ ${1:-} == --quick ]]; then
    small=(--model resnet18 --batch-size 8 --images 64 --steps 2 --warmup 1 --workers 1 --no-compile)
    smoke=(smoke --model resnet18 --image-size 32)
    tp224=("${small[@]}" --image-size 64 --kit-batch-sizes 8 --profile 1)
    tp32=("${small[@]}" --image-size 32 --stem imagenet --kit-batch-sizes '8,16')
    tp32cifar=("${small[@]}" --image-size 32 --stem cifar --kit-batch-sizes 8)
    trainer=(--set dataset=synthetic --set synthetic_size=256 --set model_name=resnet18
        --set image_size=32 --set stem=cifar --set pretrained=false --set batch_size=16
        --set compile=false --set num_epochs=6 --set limit_train_batches=8)
fi

step() {  # step NAME COMMAND...: run, log, remember a failure, go on
    local name=$1
    shift
    echo "== $name: $*"
    "$@"
    local rc=$?
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
    step gpu nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
fi
step versions "$py" -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
step smoke "$py" -m sweepkit.jobs.cli "${smoke[@]}"
step throughput-224 "$py" bench/throughput.py "${tp224[@]}" --out "$out/throughput-224.json"
step throughput-32 "$py" bench/throughput.py "${tp32[@]}" --out "$out/throughput-32.json"
step throughput-32-cifar "$py" bench/throughput.py "${tp32cifar[@]}" --out "$out/throughput-32-cifar.json"
step trainer preempt_and_resume
echo "== gpu_check exit $status"
exec >&- 2>&-
wait "$tee_pid"  # the log's last lines are written before the script ends
exit "$status"
