"""One training epoch: its steps (``run_steps``), which stop early when the ranks agree on a stop,
and the loss sums an epoch carries across a preemption (``EpochSums``, kept in checkpoints)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from sweepkit.train.checkpoint import Position
from sweepkit.train.metric_names import (
    BEST_VAL_ACCURACY,
    IMAGES_PER_S,
    METRIC_NAMES,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_LOSS,
)
from sweepkit.train.parts import Parts
from sweepkit.train.progress import Progress
from sweepkit.train.signals import StopSignal
from sweepkit.train.step import evaluate

# the per-epoch metrics that also make the run's summary (with the best validation accuracy)
SUMMARY_KEYS = (*METRIC_NAMES, IMAGES_PER_S)


@dataclass(frozen=True)
class EpochSums:
    """Training-loss sums of the current epoch so far, over every rank and every attempt, and the
    metrics of the epochs before it."""

    loss: float = 0.0
    samples: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def add(self, loss: float, samples: int) -> EpochSums:
        return replace(self, loss=self.loss + loss, samples=self.samples + samples)

    @property
    def mean_loss(self) -> float:
        return self.loss / max(1, self.samples)

    def close(self, epoch: int, metrics: dict[str, float]) -> EpochSums:
        """Epoch ``epoch`` (1-based) ended with ``metrics``: new sums for the next one."""
        return EpochSums(history=[*self.history, {"epoch": epoch, **metrics}])

    def summary(self) -> dict[str, float]:
        """run.json's summary after the last epoch of ``history``."""
        last = self.history[-1]
        return {
            **{key: last[key] for key in SUMMARY_KEYS},
            BEST_VAL_ACCURACY: max(e[VAL_ACCURACY] for e in self.history),
        }

    def checkpoint_state(self) -> dict[str, Any]:
        return {"epoch_loss": self.loss, "epoch_samples": self.samples, "history": self.history}

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> EpochSums:
        return cls(state["epoch_loss"], state["epoch_samples"], list(state["history"]))


@dataclass
class Steps:
    """What one stretch of an epoch's steps did on every rank."""

    loss: float  # summed over the images of every rank
    images: int  # images of every rank
    started: float  # time.perf_counter() at the first step
    seconds: float  # from the first step to the last one's result
    stopped_at: Position | None  # where the ranks agreed to stop, or None: the epoch ended


def run_steps(parts: Parts, epoch: int, first: int, progress: Progress, stop: StopSignal) -> Steps:
    """Steps ``first`` to the end of ``epoch``, until the ranks agree on a stop, checked before
    every step (in a data-parallel run, the vote cast before the previous step: see
    ``StopVote``): no step is left half done, and no batch is built past the last step (with
    ``limit_train_batches``) or the stop."""
    device, steps, world = parts.device, parts.steps_per_epoch, parts.world
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    images, started, stopped_at = 0, time.perf_counter(), None
    batches = parts.train_loader.epoch(epoch, first)
    for i in range(first, steps):
        if parts.stop_voted(stop):
            stopped_at = Position(epoch, i)
            break
        x, y = next(batches)
        loss = parts.step(x, y)
        parts.scheduler.step()
        loss_sum += loss.double() * len(y)
        images += len(y)
        progress.update(epoch, i + 1, loss, images * world.size, time.perf_counter() - started)
    if stopped_at is None:
        parts.stop_vote.settle()  # the vote cast before the last step; the epoch's end checks again
    if stopped_at is None and device.type == "cuda":
        torch.cuda.synchronize()
    total, count = world.sum(loss_sum, torch.tensor(images, device=device))
    seconds = time.perf_counter() - started
    progress.end_epoch()
    return Steps(float(total), int(count), started, seconds, stopped_at)


def epoch_metrics(parts: Parts, epoch: int, train_loss: float, steps: Steps) -> dict[str, float]:
    """Validate, and the epoch's metrics as W&B and run.json get them; a loss that is not finite
    ends the run (after validation, which every rank runs)."""
    val_loss, val_acc = evaluate(
        parts.model, parts.val_loader.epoch(), parts.device, parts.step.precision, parts.world
    )
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"training loss is {train_loss} at epoch {epoch + 1}; lower learning_rate"
        )
    return {
        TRAIN_LOSS: train_loss,
        VAL_LOSS: val_loss,
        VAL_ACCURACY: val_acc,
        IMAGES_PER_S: steps.images / steps.seconds if steps.seconds > 0 else 0.0,
        "lr": float(parts.scheduler.get_last_lr()[0]),
        "epoch_s": time.perf_counter() - steps.started,
    }
