"""``sweepkit smoke``: one training and one evaluation step of ResNet-50 on synthetic data.

Needs no network, dataset or W&B; uses CUDA when present, else the CPU. The container's %test and
CI call it. Exit 0 when both steps ran and gave a finite loss.
"""

from __future__ import annotations

import argparse
import math
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, help="default: 64 on CUDA, 8 on CPU")
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="default: 224 (ResNet-50 at 224 px, as the usual single-file W&B training script)",
    )
    parser.add_argument(
        "--model", default="resnet50", choices=["resnet18", "resnet34", "resnet50", "resnet101"]
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])


def run(args: argparse.Namespace) -> int:
    import torch

    from sweepkit.train.config import build_config
    from sweepkit.train.model import build_model
    from sweepkit.train.optim import make_optimizer
    from sweepkit.train.pipeline import Normalizer
    from sweepkit.train.step import TrainStep, evaluate, pick_device

    device = pick_device(args.device)
    batch = args.batch_size or (64 if device.type == "cuda" else 8)
    if batch < 1 or args.image_size < 16:
        from sweepkit.train.errors import UserError

        raise UserError("--batch-size must be >= 1 and --image-size >= 16")
    cfg = build_config(
        base=None,
        sets=[
            f"model_name={args.model}",
            "pretrained=false",
            "compile=false",
            "wandb.mode=disabled",
            f"image_size={args.image_size}",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    step = TrainStep(model, make_optimizer(cfg, model, device), device=device, precision="bf16")
    normalize = Normalizer(device, args.image_size, channels_last=True)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    x = normalize(images)
    step(x, labels)  # warm-up: allocator, cuDNN autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    loss = float(step(x, labels))
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    eval_loss, _ = evaluate(model, [(x, labels)], device, step.precision)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(
        f"smoke: device={device.type} ({name}) model={args.model} batch={batch} image={args.image_size}px "
        f"precision={step.precision} train_loss={loss:.4f} eval_loss={eval_loss:.4f} "
        f"images_per_s={batch / elapsed:.1f}"
    )
    ok = math.isfinite(loss) and math.isfinite(eval_loss)
    print("smoke: ok" if ok else "smoke: FAILED (non-finite loss)")
    return 0 if ok else 1
