"""Progress within an epoch: a bar on a terminal, a plain line at most every 30 s in a log."""

from __future__ import annotations

import io
import logging

import torch

from sweepkit.train.progress import LOG_EVERY_S, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def steps(progress: Progress, clock: Clock, seconds_per_step: float, count: int) -> None:
    for step in range(1, count + 1):
        clock.now += seconds_per_step
        progress.update(0, step, torch.tensor(0.5), images=32 * step, elapsed=clock.now)


def test_a_log_gets_a_plain_line_at_most_every_30_seconds(caplog):
    clock, stream = Clock(), io.StringIO()
    with caplog.at_level(logging.INFO, logger="sweepkit"):
        steps(Progress(3, 100, stream=stream, clock=clock), clock, 1.0, 100)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 100 // int(LOG_EVERY_S)  # at 30, 60 and 90 s
    assert lines[0] == "epoch 1/3  step 30/100  32 img/s  loss 0.5000"
    assert stream.getvalue() == ""  # no bar, no carriage returns in a file


def test_a_terminal_gets_a_bar_with_steps_rate_and_loss(caplog):
    clock, stream = Clock(), Terminal()
    with caplog.at_level(logging.INFO, logger="sweepkit"):
        progress = Progress(3, 10, stream=stream, clock=clock)
        steps(progress, clock, 1.0, 5)
        progress.end_epoch()
    assert not caplog.records
    assert "\repoch 1/3 [############............] 5/10 steps  32 img/s  loss 0.5000" in (
        stream.getvalue()
    )
    assert stream.getvalue().endswith("\r\033[K")


def test_ranks_other_than_0_show_nothing(caplog):
    clock, stream = Clock(), Terminal()
    with caplog.at_level(logging.INFO, logger="sweepkit"):
        steps(Progress(1, 100, enabled=False, stream=stream, clock=clock), clock, 40.0, 10)
    assert not caplog.records and stream.getvalue() == ""
