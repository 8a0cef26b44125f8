"""The training loop: epochs of steps, validation each epoch, the test split once at the end.

Read top to bottom: ``train`` sets up data, model and optimiser, resumes from the newest readable
checkpoint, then loops. A stop signal (SIGUSR1 from SLURM's --signal, SIGTERM from preemption,
scancel or a hyperband stop) is noted by ``StopSignal`` and acted on between steps: the step
finishes, a checkpoint of the exact position is written and the run ends ``preempted``.
Under torchrun every rank runs this loop on its share of each batch (see distributed.py); the ranks
agree on a stop after each step, and rank 0 alone writes checkpoints, run.json and W&B.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from train.checkpoint import (
    Position,
    load_latest_checkpoint,
    save_checkpoint,
    save_final_weights,
)
from train.config import Config
from train.data import ImageSplits, load_splits
from train.distributed import (
    World,
    check_batch_split,
    join_world,
    world_size_changed,
    wrap_model,
)
from train.errors import UserError
from train.model import build_model
from train.optim import make_optimizer, make_scheduler
from train.pipeline import make_loader
from train.progress import Progress
from train.runrecord import RunRecord
from train.step import TrainStep, evaluate
from train.tracking import Tracker

log = logging.getLogger("sweepkit")

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StopSignal:
    """Records a stop request; the loop checks it between steps."""

    def __init__(self) -> None:
        self.name: str | None = None

    def install(self) -> StopSignal:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.name = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.name is not None


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


@dataclass
class EpochSums:
    """Training-loss sums of the current epoch (kept in checkpoints for mid-epoch resume)."""

    loss: float = 0.0
    samples: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def train(
    cfg: Config,
    run_dir: Path,
    record: RunRecord,
    tracker: Tracker,
    stop: StopSignal,
    world: World | None = None,
) -> str:
    """Train to completion or to a stop signal; returns the final state (the same on every rank)."""
    world = world or World()
    device = join_world(world, cfg.device)
    rank_batch = check_batch_split(cfg.batch_size, world)
    use_allotted_cpus()
    seed_everything(cfg, device)
    splits = splits_for(cfg)
    train_loader = make_loader(cfg, splits.train_x, splits.train_y, device, train=True, world=world)
    val_loader = make_loader(cfg, splits.val_x, splits.val_y, device, train=False, world=world)
    test_loader = make_loader(cfg, splits.test_x, splits.test_y, device, train=False, world=world)
    steps_per_epoch = len(train_loader)
    if cfg.limit_train_batches:
        steps_per_epoch = min(steps_per_epoch, cfg.limit_train_batches)
    if steps_per_epoch == 0:
        raise UserError(
            f"batch_size={cfg.batch_size} is larger than the {len(splits.train_y)} training images; "
            "lower batch_size or raise sample_ratio"
        )

    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model, device)
    scheduler = make_scheduler(cfg, optimizer, steps_per_epoch)
    step_fn = TrainStep(
        wrap_model(model, world, device, cfg.sync_batchnorm),
        optimizer,
        device=device,
        precision=cfg.precision,
        label_smoothing=cfg.label_smoothing,
        grad_clip=cfg.grad_clip,
        compile=cfg.compile,
        compile_mode=cfg.compile_mode,
    )

    position, sums = Position(0, 0), EpochSums()
    state = load_latest_checkpoint(run_dir)
    if state is not None:
        saved_world = int(state.get("world_size", 1))
        if saved_world != world.size:
            raise UserError(world_size_changed(run_dir, saved_world, world.size))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step_fn.scaler.load_state_dict(state["scaler"])
        position = Position(state["epoch"], state["step"])
        sums = EpochSums(state["epoch_loss"], state["epoch_samples"], list(state["history"]))
        record.data["resumed_from"] = {"epoch": position.epoch, "step": position.step}
        log.info("resuming from epoch %d step %d", position.epoch, position.step)
    record.update(epochs=sums.history)
    log.info(
        "training %s on %s (%d train / %d val / %d test images) on %s, %s, %d steps/epoch%s",
        cfg.model_name,
        cfg.dataset,
        len(splits.train_y),
        len(splits.val_y),
        len(splits.test_y),
        device,
        step_fn.precision,
        steps_per_epoch,
        f", {world.size} data-parallel processes of batch {rank_batch}"
        if world.distributed
        else "",
    )

    def checkpoint(at: Position) -> None:
        if not world.is_main:
            return
        save_checkpoint(
            run_dir,
            at,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": step_fn.scaler.state_dict(),
                "epoch_loss": sums.loss,
                "epoch_samples": sums.samples,
                "history": sums.history,
                "world_size": world.size,
            },
            keep=cfg.checkpoint.keep,
        )

    def preempt(at: Position) -> str:
        checkpoint(at)
        world.barrier()  # no rank exits before rank 0's checkpoint is on disk
        if not world.is_main:
            log.warning("stopped with the other ranks at epoch %d step %d", at.epoch, at.step)
        log.info(
            "%s received: checkpointed at epoch %d step %d; exiting to be resumed",
            stop.name or "stop agreed by the ranks",
            at.epoch,
            at.step,
        )
        return "preempted"

    def stop_agreed() -> bool:
        return world.agree_stop(stop.requested, device)

    def epoch_loss(loss_sum: torch.Tensor, images: int) -> tuple[float, int]:
        """This epoch's (loss sum, images) so far, over every rank."""
        total, count = world.sum(loss_sum, torch.tensor(images, device=device))
        return float(total), int(count)

    progress = Progress(cfg.num_epochs, steps_per_epoch, enabled=world.is_main)
    for epoch in range(position.epoch, cfg.num_epochs):
        start_step = position.step if epoch == position.epoch else 0
        if stop_agreed():
            return preempt(Position(epoch, start_step))
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        images, started = 0, time.perf_counter()
        # islice: with limit_train_batches, the loader never builds the batch after the last step
        batches = itertools.islice(
            train_loader.epoch(epoch, start_step), steps_per_epoch - start_step
        )
        for i, (x, y) in enumerate(batches, start=start_step):
            loss = step_fn(x, y)
            scheduler.step()
            loss_sum += loss.double() * len(y)
            images += len(y)
            progress.update(epoch, i + 1, loss, images * world.size, time.perf_counter() - started)
            if i + 1 < steps_per_epoch and stop_agreed():
                loss_total, images_total = epoch_loss(loss_sum, images)
                sums.loss, sums.samples = sums.loss + loss_total, sums.samples + images_total
                progress.end_epoch()
                return preempt(Position(epoch, i + 1))
        if device.type == "cuda":
            torch.cuda.synchronize()
        loss_total, images = epoch_loss(loss_sum, images)
        train_s = time.perf_counter() - started
        progress.end_epoch()
        train_loss = (sums.loss + loss_total) / max(1, sums.samples + images)
        val_loss, val_acc = evaluate(model, val_loader.epoch(), device, step_fn.precision, world)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss is {train_loss} at epoch {epoch + 1}; lower learning_rate"
            )
        metrics: dict[str, float] = {
            "Train Loss": train_loss,
            "Validation Loss": val_loss,
            "Validation Accuracy": val_acc,
            "images_per_s": images / train_s if train_s > 0 else 0.0,
            "lr": float(scheduler.get_last_lr()[0]),
            "epoch_s": time.perf_counter() - started,
        }
        sums = EpochSums(history=[*sums.history, {"epoch": epoch + 1, **metrics}])
        log.info(
            "epoch %d/%d  Train Loss %.4f  Validation Loss %.4f  Validation Accuracy %.2f%%  %.0f img/s",
            epoch + 1,
            cfg.num_epochs,
            train_loss,
            val_loss,
            val_acc,
            metrics["images_per_s"],
        )
        record.data["timings"]["train_s"] += train_s
        record.update(
            epochs=sums.history,
            summary={
                **{
                    k: metrics[k]
                    for k in (
                        "Train Loss",
                        "Validation Loss",
                        "Validation Accuracy",
                        "images_per_s",
                    )
                },
                "best Validation Accuracy": max(e["Validation Accuracy"] for e in sums.history),
            },
        )
        tracker.log(metrics, epoch=epoch + 1)
        done = Position(epoch + 1, 0)
        stopping = stop_agreed()
        if (
            (epoch + 1) % cfg.checkpoint.every_epochs == 0
            or epoch + 1 == cfg.num_epochs
            or stopping
        ):
            checkpoint(done)
        if stopping and epoch + 1 < cfg.num_epochs:
            world.barrier()
            log.info(
                "%s received: checkpointed at epoch %d; exiting to be resumed",
                stop.name or "stop agreed by the ranks",
                epoch + 1,
            )
            return "preempted"

    test_loss, test_acc = evaluate(model, test_loader.epoch(), device, step_fn.precision, world)
    if world.is_main and cfg.checkpoint.keep_after_finish == "final":
        save_final_weights(run_dir, model.state_dict(), cfg.num_epochs)
    record.data["summary"].update({"Test Loss": test_loss, "Test Accuracy": test_acc})
    tracker.log({"Test Loss": test_loss, "Test Accuracy": test_acc}, epoch=cfg.num_epochs)
    tracker.summary(record.data["summary"])
    log.info(
        "finished: Validation Accuracy %.2f%%  Test Accuracy %.2f%%",
        record.data["summary"].get("Validation Accuracy", float("nan")),
        test_acc,
    )
    return "finished"
