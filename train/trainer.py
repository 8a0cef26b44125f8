"""The training loop: epochs of steps, validation each epoch, the test split once at the end.

Read ``train`` top to bottom: it builds the run's parts (parts.py), resumes from the newest
readable checkpoint, then runs epochs (epoch.py). A stop signal (SIGUSR1 from SLURM's --signal,
SIGTERM from preemption, scancel or a hyperband stop) is noted by ``StopSignal`` and acted on
between steps or after an epoch: a checkpoint of the exact position is written and the run ends
``preempted`` (``preempt``, the one way out short of the end). ``StopSignal`` is in signals.py.
Under torchrun every rank runs this loop on its share of each batch (see distributed.py); the ranks
vote on a stop before each step (the vote is read a step later: no host sync per step) and
agree on one after each epoch, and rank 0 alone writes checkpoints,
run.json and W&B.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sweepkit.train.checkpoint import (
    Position,
    load_latest_checkpoint,
    save_checkpoint,
    save_final_weights,
)
from sweepkit.train.config import Config
from sweepkit.train.distributed import World, world_size_changed
from sweepkit.train.epoch import EpochSums, epoch_metrics, run_steps
from sweepkit.train.errors import UserError
from sweepkit.train.metric_names import (
    IMAGES_PER_S,
    TEST_ACCURACY,
    TEST_LOSS,
    TRAIN_LOSS,
    VAL_ACCURACY,
    VAL_LOSS,
)
from sweepkit.train.parts import Parts, build_parts
from sweepkit.train.progress import Progress
from sweepkit.train.runrecord import RunRecord, node_name
from sweepkit.train.signals import StopSignal
from sweepkit.train.step import evaluate
from sweepkit.train.tracking import Tracker

log = logging.getLogger("sweepkit")


def train(
    cfg: Config,
    run_dir: Path,
    record: RunRecord,
    tracker: Tracker,
    stop: StopSignal,
    world: World | None = None,
) -> str:
    """Train to completion or to a stop signal; returns the final state (the same on every rank)."""
    parts = build_parts(cfg, world or World())
    at, sums = resume(parts, run_dir, record)
    log.info("%s", parts.describe())
    progress = Progress(cfg.num_epochs, parts.steps_per_epoch, enabled=parts.world.is_main)

    while at.epoch < cfg.num_epochs:
        epoch = at.epoch
        steps = run_steps(parts, epoch, at.step, progress, stop)
        sums = sums.add(steps.loss, steps.images)
        if steps.stopped_at is not None:
            return preempt(parts, run_dir, steps.stopped_at, sums, stop)
        metrics = epoch_metrics(parts, epoch, sums.mean_loss, steps)
        sums = sums.close(epoch + 1, metrics)
        log_epoch(cfg, epoch, metrics)
        record.add_epoch(sums.history, sums.summary(), steps.seconds)
        tracker.log(metrics, epoch=epoch + 1)
        at = Position(epoch + 1, 0)
        if at.epoch < cfg.num_epochs and parts.stop_agreed(stop):
            return preempt(parts, run_dir, at, sums, stop)
        if at.epoch % cfg.checkpoint.every_epochs == 0 or at.epoch == cfg.num_epochs:
            checkpoint(parts, run_dir, at, sums)
    return finish(parts, run_dir, record, tracker)


def resume(parts: Parts, run_dir: Path, record: RunRecord) -> tuple[Position, EpochSums]:
    """Where training starts: the newest readable checkpoint's position and sums, restored into
    ``parts``, or the beginning. A checkpoint of another world size is refused in one line."""
    state = load_latest_checkpoint(run_dir)
    at, sums = Position(0, 0), EpochSums()
    if state is not None:
        saved_world = int(state.get("world_size", 1))
        if saved_world != parts.world.size:
            raise UserError(world_size_changed(run_dir, saved_world, parts.world.size))
        parts.restore(state)
        at, sums = Position(state["epoch"], state["step"]), EpochSums.from_checkpoint(state)
        record.note_resume(at.epoch, at.step)
        log.info("resuming from epoch %d step %d", at.epoch, at.step)
    record.update(epochs=sums.history)
    return at, sums


def checkpoint(parts: Parts, run_dir: Path, at: Position, sums: EpochSums) -> None:
    """Rank 0 saves the exact position ``at``; the other ranks hold the same state."""
    if parts.world.is_main:
        state = {**parts.state(), **sums.checkpoint_state()}
        save_checkpoint(run_dir, at, state, keep=parts.cfg.checkpoint.keep)


def preempt(parts: Parts, run_dir: Path, at: Position, sums: EpochSums, stop: StopSignal) -> str:
    """The ranks agreed to stop at ``at``: checkpoint it and end the run, to be resumed."""
    checkpoint(parts, run_dir, at, sums)
    parts.world.barrier()  # no rank exits before rank 0's checkpoint is on disk
    if not parts.world.is_main:
        # whether the signal itself reached this rank (and on which node), or only the vote did
        log.warning(
            "stopped with the other ranks at epoch %d step %d (%s here, on %s)",
            at.epoch,
            at.step,
            stop.name or "no signal",
            node_name(),
        )
    log.info(
        "%s received: checkpointed at epoch %d step %d; exiting to be resumed (rank 0, on %s)",
        stop.name or "stop agreed by the ranks",
        at.epoch,
        at.step,
        node_name(),
    )
    return "preempted"


def log_epoch(cfg: Config, epoch: int, metrics: dict[str, float]) -> None:
    log.info(
        "epoch %d/%d  Train Loss %.4f  Validation Loss %.4f  Validation Accuracy %.2f%%  %.0f img/s",
        epoch + 1,
        cfg.num_epochs,
        metrics[TRAIN_LOSS],
        metrics[VAL_LOSS],
        metrics[VAL_ACCURACY],
        metrics[IMAGES_PER_S],
    )


def finish(parts: Parts, run_dir: Path, record: RunRecord, tracker: Tracker) -> str:
    """Every epoch is done: evaluate the test split once, keep the final weights, report."""
    cfg = parts.cfg
    test_loss, test_acc = evaluate(
        parts.model, parts.test_loader.epoch(), parts.device, parts.step.precision, parts.world
    )
    if parts.world.is_main and cfg.checkpoint.keep_after_finish == "final":
        save_final_weights(run_dir, parts.model.state_dict(), cfg.num_epochs)
    test = {TEST_LOSS: test_loss, TEST_ACCURACY: test_acc}
    record.add_to_summary(test)
    tracker.log(test, epoch=cfg.num_epochs)
    tracker.summary(record.summary)
    log.info(
        "finished: Validation Accuracy %.2f%%  Test Accuracy %.2f%%",
        record.summary.get(VAL_ACCURACY, float("nan")),
        test_acc,
    )
    return "finished"
