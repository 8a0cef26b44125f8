"""The pure parts of the training loop, in process: the loss sums an epoch carries across a
preemption, the steps-per-epoch rule, and where ``run_steps`` checks for a stop (before every step,
building no batch past it). The loader, step and scheduler are small stand-ins that record calls;
the world is the real single-process one."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch

from sweepkit.train.checkpoint import Position
from sweepkit.train.config import build_config
from sweepkit.train.distributed import World
from sweepkit.train.epoch import EpochSums, Steps, run_steps
from sweepkit.train.errors import UserError
from sweepkit.train.parts import Parts, steps_per_epoch
from sweepkit.train.progress import Progress


def test_epoch_sums_add_close_and_survive_a_checkpoint():
    sums = EpochSums().add(6.0, 4).add(2.0, 4)
    assert (sums.loss, sums.samples, sums.mean_loss) == (8.0, 8, 1.0)
    metrics = {"Train Loss": 1.0, "Validation Loss": 2.0, "Validation Accuracy": 50.0}
    after = sums.close(1, {**metrics, "images_per_s": 10.0, "lr": 0.1, "epoch_s": 1.0})
    assert (after.loss, after.samples) == (0.0, 0) and after.history[0]["epoch"] == 1
    later = after.close(2, {**metrics, "Validation Accuracy": 40.0, "images_per_s": 9.0})
    assert later.summary() == {
        "Train Loss": 1.0,
        "Validation Loss": 2.0,
        "Validation Accuracy": 40.0,
        "images_per_s": 9.0,
        "best Validation Accuracy": 50.0,
    }
    assert EpochSums.from_checkpoint(sums.checkpoint_state()) == sums
    assert EpochSums().mean_loss == 0.0  # no images yet: no division by zero


def test_steps_per_epoch_caps_by_limit_and_refuses_a_batch_larger_than_the_split(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    cfg = build_config(base=tmp_path / "empty.yaml", sets=["limit_train_batches=3"])
    assert steps_per_epoch(cfg, 10, 1000) == 3 and steps_per_epoch(cfg, 2, 1000) == 2
    with pytest.raises(UserError, match=r"^batch_size=128 is larger than the 100 training images"):
        steps_per_epoch(cfg, 0, 100)


class Loader:
    """Batches of 2 images; records how many it built."""

    def __init__(self) -> None:
        self.built: list[int] = []

    def epoch(self, epoch: int, first: int):  # type: ignore[no-untyped-def]
        for step in range(first, 100):
            self.built.append(step)
            yield torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)


class Stop:
    """Asked to stop before step ``at`` (counting every check)."""

    def __init__(self, at: int | None) -> None:
        self.at, self.checks = at, 0

    def agreed(self, first: int) -> bool:
        self.checks += 1
        return self.at is not None and first + self.checks - 1 >= self.at


def fake_parts(steps: int, stop: Stop, first: int) -> Parts:
    parts = SimpleNamespace(
        device=torch.device("cpu"),
        steps_per_epoch=steps,
        world=World(),
        train_loader=Loader(),
        step=lambda x, y: torch.tensor(0.5),
        scheduler=SimpleNamespace(step=lambda: None),
        stop_voted=lambda _signal: stop.agreed(first),
        stop_vote=SimpleNamespace(settle=lambda: False),
    )
    return parts  # type: ignore[return-value]


def run(steps: int, first: int, stop_at: int | None) -> tuple[Steps, Parts, Stop]:
    stop = Stop(stop_at)
    parts = fake_parts(steps, stop, first)
    progress = Progress(1, steps, enabled=False, stream=io.StringIO())
    return run_steps(parts, 3, first, progress, None), parts, stop  # type: ignore[arg-type]


def test_an_epoch_without_a_stop_runs_every_step_and_checks_before_each():
    steps, parts, stop = run(5, 0, None)
    assert steps.stopped_at is None and steps.images == 10 and steps.loss == pytest.approx(5.0)
    assert parts.train_loader.built == [0, 1, 2, 3, 4]  # type: ignore[attr-defined]
    assert stop.checks == 5  # before each step, none after the last


def test_a_stop_mid_epoch_ends_before_the_next_step_and_builds_no_batch_for_it():
    steps, parts, stop = run(5, 1, 3)
    assert steps.stopped_at == Position(3, 3) and steps.images == 4
    assert parts.train_loader.built == [1, 2]  # type: ignore[attr-defined]


def test_a_stop_before_the_first_step_trains_nothing():
    steps, parts, stop = run(5, 2, 2)
    assert steps.stopped_at == Position(3, 2) and (steps.loss, steps.images) == (0.0, 0)
    assert parts.train_loader.built == []  # type: ignore[attr-defined]
