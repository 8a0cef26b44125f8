"""A few float64 optimiser steps of the trainer's own parts, in one process or under torchrun.

Data-parallel training is meant to be the same computation as one process with the global batch:
each rank takes its share of every batch (the trainer's DeviceLoader), DistributedDataParallel
averages the gradients, and BatchNorm normalises over the global batch (``sync_batchnorm``; on the
CPU the trainer's ``GlobalBatchNorm2d``). In float64 the only difference left is the order of the
sums, ~1e-15 relative, so the two runs can be compared to 1e-9 on any CPU; in fp32 a ResNet
amplifies that rounding until two healthy runs differ by a CPU-dependent fraction of a percent.

Used by ``tests/train/test_distributed.py``: ``steps(world, ...)`` is the single-process reference, and
``torchrun --nproc-per-node=2 tests/support/ddp_float64_steps.py OUT`` writes, per rank and case, the
parameters and buffers after the steps (``OUT/<case>-rank<r>.pt``).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

from sweepkit.train.config import build_config
from sweepkit.train.distributed import (
    GlobalBatchNorm2d,
    World,
    join_world,
    leave_world,
    world_from_env,
    wrap_model,
)
from sweepkit.train.model import build_model
from sweepkit.train.optim import make_optimizer
from sweepkit.train.parts import splits_for
from sweepkit.train.pipeline import make_loader
from sweepkit.train.step import TrainStep

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3
GLOBAL_BATCH = 16
# ResNet-18 with the CIFAR stem at 16 px on a quarter of digits: small enough for seconds on a CPU.
# SGD with momentum carries a difference forward linearly; Adam's first step is lr * sign(grad),
# which would turn a 1e-17 gradient of either sign into a 2 * lr difference.
SETTINGS = [
    "device=cpu",
    "stem=cifar",
    "image_size=16",
    "sample_ratio=0.25",
    f"batch_size={GLOBAL_BATCH}",
    "optimizer=sgd",
    "momentum=0.9",
    "learning_rate=0.05",
    "weight_decay=0.0005",
    "wandb.mode=disabled",
]


def steps(world: World, sync_batchnorm: bool, count: int = STEPS) -> dict[str, torch.Tensor]:
    """Parameters and buffers of the trainer's model after ``count`` float64 steps."""
    cfg = build_config(
        [str(ROOT / "config" / "presets" / "digits.yaml")],
        sets=[*SETTINGS, f"sync_batchnorm={str(sync_batchnorm).lower()}"],
    )
    device = join_world(world, cfg.device)
    torch.manual_seed(cfg.seed)
    splits = splits_for(cfg)
    loader = make_loader(cfg, splits.train_x, splits.train_y, device, train=True, world=world)
    model = build_model(cfg).double()
    step = TrainStep(
        wrap_model(model, world, device, cfg.sync_batchnorm),
        make_optimizer(cfg, model, device),
        device=device,
        precision="fp32",  # no autocast: the model and its inputs are float64
    )
    for x, y in itertools.islice(loader.epoch(0), count):
        step(x.double(), y)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def batchnorm_twin(world: World) -> dict[str, torch.Tensor]:
    """One forward and backward of ``GlobalBatchNorm2d`` on this rank's share of a fixed batch.

    The reference (a world of one) is torch's own BatchNorm2d over the whole batch. Returned: the
    output and input gradient of this rank's rows, the weight and bias gradients summed over the
    ranks, and the running statistics."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 5, 5, generator=gen, dtype=torch.float64) * 3 + 1
    upstream = torch.randn(8, 3, 5, 5, generator=gen, dtype=torch.float64)
    rows = world.local_slice(len(x))
    if world.distributed:
        join_world(world, "cpu")
        norm: torch.nn.BatchNorm2d = GlobalBatchNorm2d(3).double()
    else:
        norm = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        norm.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    share = x[rows].clone().requires_grad_(True)
    out = norm(share)
    (out * upstream[rows]).sum().backward()
    assert norm.weight.grad is not None and norm.bias.grad is not None and share.grad is not None
    grads = world.sum(norm.weight.grad, norm.bias.grad)
    return {
        "out": out.detach(),
        "input_grad": share.grad,
        "weight_grad": grads[0],
        "bias_grad": grads[1],
        "running_mean": norm.running_mean.clone(),  # type: ignore[union-attr]
        "running_var": norm.running_var.clone(),  # type: ignore[union-attr]
    }


CASES = {
    "sync_batchnorm": lambda world: steps(world, sync_batchnorm=True),
    "rank_batchnorm": lambda world: steps(world, sync_batchnorm=False),
    "batchnorm_twin": batchnorm_twin,
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    world = world_from_env()
    for name, case in CASES.items():
        torch.save(case(world), out / f"{name}-rank{world.rank}.pt")
    # as the trainer does: wait for each other and tear the group down before the interpreter
    # exits; left to exit, gloo's threads once aborted rank 1 (SIGABRT) after its work was done
    leave_world(meet=True)
