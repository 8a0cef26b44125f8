#!/usr/bin/env bash
# The GPU checks in one call, for a session lent a device (about 15 minutes, start-up included):
# smoke on CUDA, then throughput against the seed-style baseline at 224 px and at 32 px.
# Results go to $OUT (the device tool's folder; default bench/out), one .txt and .json per step;
# record them in bench/RESULTS.md with card and date. W&B is not needed (and not installed there).
#
#   bash bench/gpu_check.sh            # from the repository root
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-bench/out}
mkdir -p "$out"
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
py=${PYTHON:-python3}
status=0

step() {  # step NAME COMMAND...: run, keep its output, remember a failure, go on
    local name=$1
    shift
    echo "== $name: $*" | tee "$out/$name.txt"
    "$@" 2>&1 | tee -a "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name exit $rc" | tee -a "$out/$name.txt"
    [[ $rc -eq 0 ]] || status=1
}

step gpu nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
step versions "$py" -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"
step smoke "$py" -m jobs.cli smoke
step throughput-224 "$py" bench/throughput.py --steps 30 --warmup 10 --out "$out/throughput-224.json"
step throughput-32 "$py" bench/throughput.py --image-size 32 --kit-batch-sizes 128,512,1024 \
    --compile-mode reduce-overhead --steps 30 --warmup 10 --out "$out/throughput-32.json"
exit "$status"
