"""What a run trains with: data loaders, model, optimiser, scheduler and the step, built from the
config for this rank (``build_parts``), and saved into or restored from a checkpoint."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sweepkit.train.config import Config
from sweepkit.train.data import ImageSplits, load_splits
from sweepkit.train.distributed import (
    StopVote,
    World,
    check_batch_split,
    join_world,
    wrap_model,
)
from sweepkit.train.errors import UserError
from sweepkit.train.model import build_model
from sweepkit.train.optim import make_optimizer, make_scheduler
from sweepkit.train.pipeline import Loader, make_loader
from sweepkit.train.signals import StopSignal
from sweepkit.train.step import TrainStep

log = logging.getLogger("sweepkit")


def use_allotted_cpus() -> None:
    """Match torch's CPU threads to the CPUs SLURM gave this task (it defaults to every core)."""
    if (
        not os.environ.get("OMP_NUM_THREADS")
        and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit()
    ):
        torch.set_num_threads(max(1, int(os.environ["SLURM_CPUS_PER_TASK"])))


def seed_everything(cfg: Config, device: torch.device) -> None:
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
        # TF32 tensor cores for any fp32 matmul/conv left outside autocast.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def splits_for(cfg: Config) -> ImageSplits:
    """The run's train, validation and test splits, as its config names them."""
    return load_splits(
        cfg.dataset,
        cfg.data_path,
        split_seed=cfg.split_seed,
        val_fraction=cfg.val_fraction,
        sample_ratio=cfg.sample_ratio,
        synthetic_size=cfg.synthetic_size,
        num_classes=cfg.num_classes,
    )


def steps_per_epoch(cfg: Config, loader_steps: int, train_images: int) -> int:
    """Training steps in one epoch: the loader's, capped by ``limit_train_batches``; a batch
    larger than the training split is refused in one line."""
    steps = min(loader_steps, cfg.limit_train_batches) if cfg.limit_train_batches else loader_steps
    if steps == 0:
        raise UserError(
            f"batch_size={cfg.batch_size} is larger than the {train_images} training images; "
            "lower batch_size or raise sample_ratio"
        )
    return steps


@dataclass
class Parts:
    """Everything one rank trains with."""

    cfg: Config
    world: World
    device: torch.device
    rank_batch: int  # this rank's share of the global batch
    splits: ImageSplits
    train_loader: Loader
    val_loader: Loader
    test_loader: Loader
    steps_per_epoch: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: TrainStep
    stop_vote: StopVote

    def state(self) -> dict[str, Any]:
        """The training state a checkpoint holds (the epoch's loss sums are the caller's)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.step.scaler.state_dict(),
            "world_size": self.world.size,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step.scaler.load_state_dict(state["scaler"])

    def stop_agreed(self, stop: StopSignal) -> bool:
        """Whether any rank was asked to stop, now (a blocking collective: every rank calls it
        at the same point); between epochs."""
        self.stop_vote.settle()
        return self.world.agree_stop(stop.requested, self.device)

    def stop_voted(self, stop: StopSignal) -> bool:
        """Before each step: whether the ranks voted to stop before the previous one (a world of
        one: whether a stop was requested). No host sync; see ``StopVote``."""
        return self.stop_vote.vote(stop.requested)

    def describe(self) -> str:
        """The run's one-line introduction in the log."""
        cfg, splits, world = self.cfg, self.splits, self.world
        ranks = (
            f", {world.size} data-parallel processes of batch {self.rank_batch}"
            if world.distributed
            else ""
        )
        return (
            f"training {cfg.model_name} on {cfg.dataset} ({len(splits.train_y)} train / "
            f"{len(splits.val_y)} val / {len(splits.test_y)} test images) on {self.device}, "
            f"{self.step.precision}, {self.steps_per_epoch} steps/epoch{ranks}"
        )


def build_parts(cfg: Config, world: World) -> Parts:
    """Join the world, seed, load the splits and build the loaders, model, optimiser and step."""
    device = join_world(world, cfg.device)
    rank_batch = check_batch_split(cfg.batch_size, world)
    use_allotted_cpus()
    seed_everything(cfg, device)
    splits = splits_for(cfg)
    train_loader = make_loader(cfg, splits.train_x, splits.train_y, device, train=True, world=world)
    val_loader = make_loader(cfg, splits.val_x, splits.val_y, device, train=False, world=world)
    test_loader = make_loader(cfg, splits.test_x, splits.test_y, device, train=False, world=world)
    steps = steps_per_epoch(cfg, len(train_loader), len(splits.train_y))
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model, device)
    scheduler = make_scheduler(cfg, optimizer, steps)
    step = TrainStep(
        wrap_model(model, world, device, cfg.sync_batchnorm),
        optimizer,
        device=device,
        precision=cfg.precision,
        label_smoothing=cfg.label_smoothing,
        grad_clip=cfg.grad_clip,
        compile=cfg.compile,
        compile_mode=cfg.compile_mode,
    )
    return Parts(
        cfg, world, device, rank_batch, splits, train_loader, val_loader, test_loader, steps,
        model, optimizer, scheduler, step, StopVote(world),
    )  # fmt: skip
