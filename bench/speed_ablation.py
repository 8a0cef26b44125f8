"""Each speed change's effect on the training step, one timed row per change, in one process.

    python bench/speed_ablation.py --out-dir bench/out            # GPU: ResNet-50, 224 px, bs 128
    python bench/speed_ablation.py --device cpu --model resnet18 --image-size 32 --batch-size 8 \\
        --batch-sizes 16 --images 64 --steps 2 --warmup 1 --workers 1 --no-compile   # a CPU check

The rows, at the usual script's batch size unless named otherwise, each adding one change to the
row above: the usual single-file W&B training script (PIL in DataLoader workers, fp32, NCHW,
eager); the kit's data kept and augmented on the device as uint8 (``loader: device``);
channels_last; bf16 autocast; torch.compile default; torch.compile reduce-overhead (CUDA graphs);
with --max-autotune, max-autotune; then the full kit at each of --batch-sizes
(--batch-compile-mode). Each row: images/s, ms per step, the ratio to the usual script and to the
row above, the mode the steps really ran in (a failed compile mode falls back: see
sweepkit.train.step), and the row's wall seconds (compile included). A row that fails (out of
memory, say) records its error and the rest go on. ``--profile STEPS`` profiles the compile-default
row (the trainer's default) with torch.profiler. Written to --out-dir as they complete, so a
check stopped by its time limit keeps the rows it finished: ablation-<px>.json,
ablation-<px>.md and profile-<px>.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Beside this file (the script's folder is on sys.path when it runs): the throughput bench's step.
from throughput import measure  # noqa: E402

from sweepkit.train.step import pick_device  # noqa: E402

PROFILED = "+ compile default"


def rows(args: argparse.Namespace) -> dict[str, list[str]]:
    """Row name -> the config settings it trains with (each row adds one change)."""
    common = [
        f"model_name={args.model}",
        f"image_size={args.image_size}",
        f"stem={args.stem}",
        "optimizer=adam",
    ]
    equal = f"batch_size={args.batch_size}"
    usual = ["loader=workers", f"num_workers={args.workers}"]
    eager = ["precision=fp32", "channels_last=false", "compile=false"]
    kit = [*common, "loader=device"]
    table = {
        f"usual script bs{args.batch_size}": [*common, *usual, *eager, equal],
        "device data (uint8, augmented on the device)": [*kit, *eager, equal],
        "+ channels_last": [*kit, "precision=fp32", "channels_last=true", "compile=false", equal],
        "+ bf16": [*kit, "precision=bf16", "channels_last=true", "compile=false", equal],
    }
    modes = ["default", "reduce-overhead"] + (["max-autotune"] if args.max_autotune else [])
    if args.compile:
        for mode in modes:
            name = f"+ compile {mode}" + (" (CUDA graphs)" if mode == "reduce-overhead" else "")
            table[name] = [*kit, "precision=bf16", "channels_last=true", "compile=true"]
            table[name] += [f"compile_mode={mode}", equal]
    compiled = [f"compile={str(args.compile).lower()}", f"compile_mode={args.batch_compile_mode}"]
    for batch in args.batch_sizes:
        name = f"full kit bs{batch}" + (f", {args.batch_compile_mode}" if args.compile else "")
        table[name] = [*kit, "precision=bf16", "channels_last=true", *compiled]
        table[name] += [f"batch_size={batch}"]
    return table


def batch_of(sets: list[str]) -> int:
    return int(next(s for s in sets if s.startswith("batch_size=")).split("=", 1)[1])


def measure_row(
    args: argparse.Namespace,
    name: str,
    sets: list[str],
    data: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
) -> dict[str, Any]:
    """One row's figures, or its error (the rest of the check goes on)."""
    profile = args.profile if name == PROFILED else 0
    profile_out = args.out_dir / f"profile-{args.image_size}.txt" if profile else None
    started = time.perf_counter()
    row: dict[str, Any] = {"row": name, "batch": batch_of(sets)}
    try:
        got = measure(sets, data[0], data[1], device, args.steps, args.warmup, profile, profile_out)
        row.update(images_per_s=got.images_per_s, ran_as=got.ran_as)
        row["ms_per_step"] = 1000 * row["batch"] / got.images_per_s
    except Exception as err:  # out of memory, a compiler failure past the fallback: recorded
        first = (str(err).strip().splitlines() or [""])[0]
        row["error"] = f"{err.__class__.__name__}: {first}".replace("|", "/")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    row["seconds"] = time.perf_counter() - started
    return row


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Speed ablation, {summary['model']} at {summary['image_size']} px",
        "",
        f"{summary['device']}; torch {summary['torch']}; {summary['date']}; "
        f"{summary['steps']} timed steps after {summary['warmup']}.",
        "",
        "| row | batch | img/s | ms/step | x usual | x row above | ran as | row s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary["rows"]:
        if "error" in r:
            lines.append(f"| {r['row']} | {r['batch']} | failed: {r['error']} | | | | | "
                         f"{r['seconds']:.0f} |")  # fmt: skip
            continue
        cells = [f"{r['images_per_s']:,.0f}", f"{r['ms_per_step']:.1f}"]
        cells += [f"{r[k]:.2f}x" if k in r else "-" for k in ("vs_usual", "vs_above")]
        lines.append(f"| {r['row']} | {r['batch']} | {' | '.join(cells)} | {r['ran_as']} | "
                     f"{r['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def add_ratios(table: list[dict[str, Any]]) -> None:
    """Each row against the usual script's (the first) and against the row above it."""
    usual = table[0].get("images_per_s")
    for above, row in zip([None, *table], table, strict=False):
        if "images_per_s" not in row:
            continue
        if usual:
            row["vs_usual"] = row["images_per_s"] / usual
        if above is not None and above.get("images_per_s"):
            row["vs_above"] = row["images_per_s"] / above["images_per_s"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    parser.add_argument("--batch-size", type=int, default=128, help="the usual script's batch")
    parser.add_argument(
        "--batch-sizes", default="256", help="comma-separated larger batches for the full kit"
    )
    parser.add_argument("--batch-compile-mode", default="default",
                        choices=["default", "reduce-overhead", "max-autotune"])  # fmt: skip
    parser.add_argument("--images", type=int, default=10_000, help="synthetic dataset size")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="the usual script's workers")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--max-autotune", action="store_true", help="add a max-autotune row")
    parser.add_argument("--profile", type=int, default=5, metavar="STEPS")
    parser.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        parser.error(f"--batch-sizes {args.batch_sizes!r}: comma-separated integers, e.g. 256,512")
    if min([args.batch_size, *args.batch_sizes]) < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("batch sizes and --steps must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    summary: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": card,
        "torch": torch.__version__,
        "model": args.model,
        "image_size": args.image_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": [],
    }
    stem = args.out_dir / f"ablation-{args.image_size}"
    for name, sets in rows(args).items():
        row = measure_row(args, name, sets, (images, labels), device)
        summary["rows"].append(row)
        add_ratios(summary["rows"])
        print(json.dumps(row), flush=True)
        stem.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(summary))
    print(markdown(summary))
    return 1 if any("error" in r for r in summary["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
