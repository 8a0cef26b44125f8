"""The per-step stop check under data parallelism: step time with each way of checking, on the CPU
with two gloo ranks (torch.multiprocessing), each measurement in fresh processes.

    python bench/stop_check.py                       # both sizes, 3 repeats, medians
    python bench/stop_check.py --sizes tiny --steps 5 --warmup 1 --repeats 1   # a quick check

Modes, per step, before the trainer's step (DDP, the trainer's TrainStep and stop check):
- ``none``: no check (the floor);
- ``blocking``: ``World.agree_stop`` each step, as the trainer did before issue 31: an all-reduce
  of the flag and ``.item()``, so the host waits for the all-reduce (on a GPU, for the device);
- ``vote``: ``StopVote.vote`` (what the trainer does now): a non-blocking all-reduce of a CPU
  flag on its own gloo group, read before the next step.
Sizes: ``tiny`` (a small conv net, batch 16 per rank: the check's cost shows most) and
``resnet18`` (the trainer's ResNet-18 with the CIFAR stem at 16 px, batch 16 per rank).
Each rank runs one thread. The figure is the median over repeats of the mean step time (ms) of
rank 0 over ``--steps`` steps after ``--warmup``. Prints a table; --out writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sweepkit.train.distributed import StopVote, World, wrap_model  # noqa: E402
from sweepkit.train.step import TrainStep  # noqa: E402

MODES = ("none", "blocking", "vote")
SIZES = ("tiny", "resnet18")
PER_RANK_BATCH = 16


def build(size: str) -> tuple[nn.Module, int]:
    """(model, image size) for ``size``."""
    torch.manual_seed(0)
    if size == "tiny":
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 10),
        )
        return model, 8
    from sweepkit.train.config import build_config
    from sweepkit.train.model import build_model

    cfg = build_config(base=None, sets=["model_name=resnet18", "stem=cifar", "pretrained=false"])
    return build_model(cfg), 16


def rank_main(
    rank: int, size: str, mode: str, steps: int, warmup: int, port: int, out: str
) -> None:
    """One rank: ``warmup`` + ``steps`` steps, each after the stop check of ``mode``."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    world, device = World(rank=rank, size=2), torch.device("cpu")
    model, pixels = build(size)
    step = TrainStep(
        wrap_model(model, world, device, sync_batchnorm=True),
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        device=device,
        precision="fp32",
    )
    vote = StopVote(world)
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(PER_RANK_BATCH, 3, pixels, pixels, generator=gen)
    y = torch.randint(0, 10, (PER_RANK_BATCH,), generator=gen)
    started = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            dist.barrier()
            started = time.perf_counter()
        if mode == "blocking" and world.agree_stop(False, device):
            break
        if mode == "vote" and vote.vote(False):
            break
        step(x, y)
    vote.settle()
    seconds = time.perf_counter() - started
    if rank == 0:
        Path(out).write_text(json.dumps({"step_ms": 1000 * seconds / steps}))
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure_once(size: str, mode: str, steps: int, warmup: int) -> float:
    """Mean step time (ms) of rank 0, in two fresh processes."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "result.json")
        mp.start_processes(
            rank_main,
            args=(size, mode, steps, warmup, free_port(), out),
            nprocs=2,
            start_method="spawn",
        )
        return float(json.loads(Path(out).read_text())["step_ms"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: tiny,resnet18")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: " + ",".join(MODES)
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    for name, allowed in (("sizes", SIZES), ("modes", MODES)):
        chosen = [v for v in getattr(args, name).split(",") if v]
        unknown = [v for v in chosen if v not in allowed]
        if unknown or not chosen:
            parser.error(f"--{name} {getattr(args, name)!r}: choose from {', '.join(allowed)}")
        setattr(args, name, chosen)
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--steps and --repeats must be at least 1, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: dict[str, dict[str, float]] = {}
    raw: dict[str, dict[str, list[float]]] = {}
    summary = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": os.getloadavg()[0],
        "torch": torch.__version__,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "median_step_ms": rows,
        "runs_step_ms": raw,
    }
    for size in args.sizes:
        # repeats interleave the modes, so a slow stretch of a shared machine hits all of them
        runs: dict[str, list[float]] = {mode: [] for mode in args.modes}
        for _ in range(args.repeats):
            for mode in args.modes:
                runs[mode].append(measure_once(size, mode, args.steps, args.warmup))
        rows[size] = {mode: statistics.median(times) for mode, times in runs.items()}
        raw[size] = runs
        print(f"{size}: " + ", ".join(f"{m} {t:.3f} ms/step" for m, t in rows[size].items()))
        if args.out:  # after each size, so a run stopped by a time limit keeps what it measured
            summary["load_average_at_end"] = os.getloadavg()[0]
            args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
