"""Training throughput: the usual single-file W&B training script's input pipeline against
sweepkit's, in one process, one run.

    python bench/throughput.py                      # GPU: ResNet-50 at 224 px, batch 128
    python bench/throughput.py --image-size 32 --kit-batch-sizes 128,512,1024 --compile-mode reduce-overhead
    python bench/throughput.py --device cpu --model resnet18 --image-size 32 --batch-size 16 \\
        --kit-batch-sizes 16 --steps 3 --warmup 1 --workers 2 --no-compile   # a CPU check

baseline (the rows named ``baseline bsN``), as the usual single-file W&B training script trains:
fp32, PIL transforms (crop, flip, resize, normalise) in DataLoader worker processes, contiguous
NCHW, Adam (``loader: workers``, ``precision: fp32``). kit: the same model, optimiser and
synthetic CIFAR-shaped uint8 data through ``loader: device`` (GPU-resident data, batched
augmentation), bf16 autocast, channels_last and torch.compile. Both use the trainer's own
components (sweepkit.train.pipeline, sweepkit.train.step, and its set-up: cuDNN autotuning on), so this measures
what a run does. The ratio that counts is at equal batch size (128, that script's); the kit's
best batch size is reported beside it.
Prints a table and, with --out, writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sweepkit.train.config import build_config  # noqa: E402
from sweepkit.train.model import build_model  # noqa: E402
from sweepkit.train.optim import make_optimizer  # noqa: E402
from sweepkit.train.parts import seed_everything  # noqa: E402
from sweepkit.train.pipeline import Loader, make_loader  # noqa: E402
from sweepkit.train.step import TrainStep, pick_device  # noqa: E402


@dataclass(frozen=True)
class Measured:
    images_per_s: float
    ran_as: str  # the compile mode the steps ran in ("eager" without compile or after a fallback)


def measure(
    sets: list[str],
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    steps: int,
    warmup: int,
    profile_steps: int = 0,
    profile_out: Path | None = None,
) -> Measured:
    """Training images/s over ``steps`` steps after ``warmup`` steps, data loading included.
    ``profile_steps``: then profile that many more steps and print where their time went (and
    write it to ``profile_out``)."""
    cfg = build_config(base=None, sets=[*sets, "pretrained=false", "wandb.mode=disabled"])
    # Each measurement compiles afresh: dynamo's cache is keyed by the model's code, so a second
    # batch size in the same process would otherwise recompile with a dynamic batch dimension
    # (slower kernels) rather than for its own static shape. Inductor's on-disk cache still helps.
    torch._dynamo.reset()
    # The trainer's own set-up (random seed, cuDNN autotuning, TF32) for both pipelines: the usual
    # single-file W&B training script leaves cuDNN's autotuner off, but giving the baseline the
    # same one-line setting keeps the ratio about the pipelines, not about a flag.
    seed_everything(cfg, device)
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step = TrainStep(
        model,
        make_optimizer(cfg, model, device),
        device=device,
        precision=cfg.precision,
        compile=cfg.compile,
        compile_mode=cfg.compile_mode,
    )
    loader = make_loader(cfg, images, labels, device, train=True)
    done, counted, started, epoch = 0, 0, 0.0, 0
    while done < warmup + steps:
        for x, y in loader.epoch(epoch):
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            loss = step(x, y)
            done += 1
            if done > warmup:
                counted += len(y)
            if done == warmup + steps:
                break
        epoch += 1
    float(loss)  # waits for the last step
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = counted / (time.perf_counter() - started)
    if profile_steps:
        print_profile(step, loader, device, profile_steps, profile_out)
    ran_as = step.compile_mode or "eager"
    del model, step, loader
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Measured(rate, ran_as)


def print_profile(
    step: TrainStep, loader: Loader, device: torch.device, steps: int, out: Path | None = None
) -> None:
    """The operators that took the time of ``steps`` more steps (loader included), busiest first:
    what a session with a GPU needs to see before it decides what to speed up next. The rows
    ``input pipeline`` and ``train step`` split each step's time between building the batch
    and the step itself; ``cudaDeviceSynchronize``/``cudaStreamSynchronize`` rows are host waits."""
    from torch.profiler import ProfilerActivity, profile, record_function

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    batches = iter(loader.epoch(1))
    steps = min(steps, len(loader))
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("input pipeline"):
                x, y = next(batches)
            with record_function("train step"):
                loss = step(x, y)
        float(loss)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=60)
    print(table)
    if out is not None:
        out.write_text(f"{steps} profiled steps, sorted by {sort}\n{table}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="the baseline's batch size, as the usual single-file W&B training script's "
        "(equal-batch comparison)",
    )
    parser.add_argument(
        "--kit-batch-sizes",
        default="128,256",
        help="comma-separated batch sizes to try for the kit",
    )
    parser.add_argument("--images", type=int, default=10_000, help="synthetic dataset size")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed steps first (compile, cuDNN autotuning)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="the baseline's DataLoader workers (the usual single-file W&B training script uses 4)",
    )
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument(
        "--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"]
    )
    parser.add_argument(
        "--stem",
        default=None,
        choices=["imagenet", "cifar"],
        help="default: cifar at 32 px, else imagenet",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="only measure the kit")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="after the kit's equal-batch row, print a profile of this many more steps",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    return parser.parse_args(argv)


def pipelines(args: argparse.Namespace, stem: str) -> dict[str, list[str]]:
    """Row name -> the config settings it trains with: the baseline (unless --skip-baseline), then
    the kit at the equal batch size and at each of --kit-batch-sizes."""
    common = [
        f"model_name={args.model}",
        f"image_size={args.image_size}",
        f"stem={stem}",
        "optimizer=adam",
    ]
    rows: dict[str, list[str]] = {}
    if not args.skip_baseline:
        rows[f"baseline bs{args.batch_size}"] = [
            *common,
            "loader=workers",
            f"num_workers={args.workers}",
            "precision=fp32",
            "channels_last=false",
            "compile=false",
            f"batch_size={args.batch_size}",
        ]
    kit_batches = [int(b) for b in args.kit_batch_sizes.split(",") if b]
    for batch in dict.fromkeys([args.batch_size, *kit_batches]):
        rows[f"kit bs{batch}"] = [
            *common,
            "loader=device",
            "precision=bf16",
            "channels_last=true",
            f"compile={str(args.compile).lower()}",
            f"compile_mode={args.compile_mode}",
            f"batch_size={batch}",
        ]
    return rows


def summarize(
    args: argparse.Namespace, results: dict[str, float], card: str, argv: list[str] | None
) -> dict[str, object]:
    """Print the table and the ratios; the figures as --out writes them."""
    width = max(map(len, results))
    for name, rate in results.items():
        print(f"{name:<{width}}  {rate:>10,.1f} img/s")
    baseline = results.get(f"baseline bs{args.batch_size}")
    equal = results[f"kit bs{args.batch_size}"]
    best_name = max((n for n in results if n.startswith("kit")), key=results.__getitem__)
    summary: dict[str, object] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": card,
        "torch": torch.__version__,
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "image_size": args.image_size,
        "model": args.model,
        "results_img_per_s": results,
        "best_kit": best_name,
    }
    if baseline:
        summary["ratio_equal_batch"] = equal / baseline
        summary["ratio_best"] = results[best_name] / baseline
        print(
            f"ratio at equal batch ({args.batch_size}): {equal / baseline:.2f}x; best kit ({best_name}): {results[best_name] / baseline:.2f}x"
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    stem = args.stem or ("cifar" if args.image_size <= 64 else "imagenet")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"device: {device.type} ({card}); torch {torch.__version__}; {args.model} at {args.image_size} px, {stem} stem"
    )
    results: dict[str, float] = {}
    ran_as: dict[str, str] = {}
    for name, sets in pipelines(args, stem).items():
        profile = args.profile if name == f"kit bs{args.batch_size}" else 0
        got = measure(sets, images, labels, device, args.steps, args.warmup, profile)
        results[name], ran_as[name] = got.images_per_s, got.ran_as
    summary = summarize(args, results, card, argv)
    summary["ran_as"] = ran_as  # the compile mode each row's steps ran in, after any fallback
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
