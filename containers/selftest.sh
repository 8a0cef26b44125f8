#!/bin/sh
# The image's self-test, shared by both definitions: Apptainer's %test (`apptainer test IMAGE`)
# and the last step of the Docker build. Checks that torch and torchvision are the versions the kit
# was tested with (SWEEPKIT_TESTED_TORCH / SWEEPKIT_TESTED_TORCHVISION, stamped at build time from
# constraints.txt), then runs `sweepkit smoke`: one train and one eval step of ResNet-50 on
# synthetic data, on CUDA when the container sees a GPU, else on the CPU.
#
#   selftest.sh            versions, then the smoke (extra arguments go to `sweepkit smoke`)
#   selftest.sh versions   versions only (the end of %post, before any smoke)
set -eu

# What the image is made of, first: the kit, its revision, torch, CUDA, wandb, the image.
sweepkit --version

python3 - <<'PY'
import os
import sys

import torch
import torchvision

want = {
    "torch": os.environ.get("SWEEPKIT_TESTED_TORCH", ""),
    "torchvision": os.environ.get("SWEEPKIT_TESTED_TORCHVISION", ""),
}
got = {"torch": torch.__version__, "torchvision": torchvision.__version__}
print(
    f"selftest: torch {got['torch']} (CUDA {torch.version.cuda}), "
    f"torchvision {got['torchvision']}; tested with torch {want['torch'] or '?'}, "
    f"torchvision {want['torchvision'] or '?'}"
)
if not all(want.values()):
    sys.exit(
        "selftest: SWEEPKIT_TESTED_TORCH/SWEEPKIT_TESTED_TORCHVISION are not set in the image; "
        "build it with ci/build-image.sh"
    )
wrong = [f"{name} {got[name]}" for name in want if got[name].split("+")[0] != want[name]]
if wrong:
    sys.exit(
        f"selftest: the base image has {', '.join(wrong)}, but sweepkit was tested with torch "
        f"{want['torch']} and torchvision {want['torchvision']} (constraints.txt): choose the base "
        "image for those versions in containers/base.lock and run ci/build-image.sh --lock"
    )
PY

if [ "${1:-}" = versions ]; then
    exit 0
fi
exec sweepkit smoke "$@"
