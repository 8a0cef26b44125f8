"""Progress within an epoch: a live bar on a terminal, a plain line at most every 30 s in a log.

An epoch on the CPU demo takes tens of seconds and a ResNet-50 epoch on CIFAR-10 minutes, so the
per-epoch line alone leaves a log silent for long stretches. On a terminal (stdout is a TTY) a bar
is redrawn in place at most twice a second; in a file (SLURM's task log, the agent's output.log)
a bar's carriage returns would be noise, so a plain line is logged instead, at most every
``LOG_EVERY_S`` seconds. Only rank 0 of a data-parallel run shows progress. Reading the loss is a
device sync, so it happens only when something is shown.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

import torch

log = logging.getLogger("sweepkit")

BAR_EVERY_S = 0.5
LOG_EVERY_S = 30.0
BAR_WIDTH = 24


class Progress:
    def __init__(
        self,
        total_epochs: int,
        steps: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.total_epochs, self.steps = total_epochs, steps
        self.clock = clock
        self.last = clock()

    def update(
        self, epoch: int, step: int, loss: torch.Tensor, images: int, elapsed: float
    ) -> None:
        """After ``step`` of ``self.steps`` steps of ``epoch`` (0-based), ``images`` seen so far."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last < (BAR_EVERY_S if self.live else LOG_EVERY_S):
            return
        self.last = now
        rate = images / elapsed if elapsed > 0 else 0.0
        where = f"epoch {epoch + 1}/{self.total_epochs}"
        if self.live:
            done = BAR_WIDTH * step // max(1, self.steps)
            bar = "#" * done + "." * (BAR_WIDTH - done)
            self.stream.write(
                f"\r{where} [{bar}] {step}/{self.steps} steps  {rate:,.0f} img/s  "
                f"loss {loss.item():.4f} "
            )
            self.stream.flush()
        else:
            log.info(
                "%s  step %d/%d  %.0f img/s  loss %.4f",
                where,
                step,
                self.steps,
                rate,
                loss.item(),
            )

    def end_epoch(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
