"""The stop request: SIGUSR1 (SLURM's --signal) or SIGTERM (preemption, scancel, a hyperband stop)
is noted here and acted on by the training loop between steps."""

from __future__ import annotations

import signal
from types import FrameType

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
