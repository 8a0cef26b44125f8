"""The agent for a function: ``sweepkit.agent(sweep, function=train)``, as ``wandb.agent`` runs one.

``wandb.agent`` (``wandb/agents/pyagent.py``, ``_run_job``) runs the function in a thread of the
caller's process, once per run: it writes the run's values as ``{name: {value: v}}`` YAML, sets
``WANDB_RUN_ID``, ``WANDB_SWEEP_ID`` and ``WANDB_SWEEP_PARAM_PATH`` in ``os.environ``, calls
``wandb.teardown()`` so that the next ``wandb.init()`` reads its settings afresh, runs the function,
then ``wandb.finish()`` (``exit_code=1`` when it raised), and removes the variables. A stop is an
exception raised in the function's thread (``_terminate_thread``). This does the same, with the
variables the CLI agent sets (``sweepkit.jobs.sweeps.agent``: ``WANDB_DIR`` the run folder, offline unless
``WANDB_MODE`` is set, the flush interval), and the CLI agent's claims, leases, hyperband stops,
failure accounting and records (``local.LocalAgent``, the one agent loop): this runner is only the
launch, the wait and the stop.

How a run ends: the function returns (``finished``); raises (``failed``, its traceback in
``RUN_DIR/output.log`` and on stderr, as under ``wandb.agent``); calls ``sys.exit(75)`` (``preempted``,
queued to resume, as the trainer's exit 75); hyperband stops it (``RunStopped`` raised in its
thread, ``stopped``); the process gets SIGTERM, SIGINT or SIGUSR1 (``RunStopped`` too, recorded
``preempted``; the agent takes no more runs). An exception raised into a thread lands at its next
Python instruction, so a function blocked in one long C call stops when that call returns.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.agent.launch import FLUSH_INTERVAL_ENV
from sweepkit.train.errors import EXIT_PREEMPTED

# the variables a run's wandb.init reads, set in os.environ for the function's run only
RUN_ENV = (
    "WANDB_SWEEP_ID",
    "WANDB_RUN_ID",
    "WANDB_SWEEP_PARAM_PATH",
    "WANDB_DIR",
    "WANDB_MODE",
    FLUSH_INTERVAL_ENV,
    "SWEEPKIT_RUN_DIR",
    "SWEEPKIT_SWEEP_DIR",
    "SWEEPKIT_ATTEMPT",
)


class RunStopped(BaseException):
    """Raised in the function's thread to stop its run (a BaseException, so that the function's
    own ``except Exception`` does not swallow it)."""


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exc)
        )


class FunctionRunner:
    """Calls ``function`` in a thread of this process for one claimed run at a time."""

    runs_program = False
    stop_grace_s = float("inf")  # a thread cannot be killed: it stops at its next instruction

    def __init__(self, function: Callable[[], Any]):
        self.function = function
        self._worker: threading.Thread | None = None
        self._outcome: dict[str, Any] = {}
        self._saved: dict[str, str | None] = {}
        self._stopping = self._preempting = False

    def describe(self, argv: list[str]) -> str:
        """The line under the attempt's header in ``output.log``."""
        return f"function {getattr(self.function, '__qualname__', self.function)}"

    def start(self, argv: list[str], env: dict[str, str], log_path: Path) -> int:
        """Set the run's variables and call the function in a new thread; returns this process's
        pid (the one that writes the run)."""
        import wandb

        self._saved = {k: os.environ.get(k) for k in (*RUN_ENV, "WANDB_SERVICE")}
        os.environ.pop("WANDB_SERVICE", None)
        os.environ.update({k: env[k] for k in RUN_ENV})
        wandb.teardown()  # as wandb.agent: the run's wandb.init reads the variables above
        self._outcome, self._stopping, self._preempting = {}, False, False
        self._worker = threading.Thread(target=self._call, args=(log_path,), daemon=True)
        self._worker.start()
        return os.getpid()

    def wait(self, timeout: float) -> int | None:
        """The function's exit code (0, its ``sys.exit`` code, 1 when it raised or was stopped)
        once its thread has ended, else None after ``timeout`` seconds."""
        assert self._worker is not None
        self._worker.join(timeout)
        if self._worker.is_alive():
            return None
        return int(self._outcome.get("rc", 1))

    def signal(self, signum: int) -> None:
        """A signal to the agent stops the run, which is then preempted (resumed later)."""
        if not self._stopping:
            self._preempting = True
        self.stop()

    def stop(self) -> None:
        if self._worker is not None and self._worker.is_alive() and not self._stopping:
            self._stopping = True
            _raise_in(self._worker, RunStopped)

    def kill(self) -> None:
        """Nothing more to do to a thread than ``stop`` did (``stop_grace_s`` is infinite)."""

    def end(self) -> None:
        """After the thread ended (or the agent's watch failed): the caller's variables back."""
        import wandb

        if self._worker is not None:
            self._worker.join()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        wandb.teardown()  # a later wandb.init() of the caller's reads its own settings again

    def exit_code(self, rc: int) -> int:
        """The run's exit code: ``rc``, but 75 for a run that a signal to the agent stopped (as
        the trainer exits on one), so that it is resumed later."""
        return EXIT_PREEMPTED if self._preempting and rc != 0 else rc

    def _call(self, log_path: Path) -> None:
        """The function's thread: run it, then end its W&B run as wandb.agent does."""
        import wandb

        outcome = self._outcome
        try:
            try:
                self.function()
                outcome["rc"] = 0
            except SystemExit as err:  # sys.exit(75) in the function: preempted, as the trainer
                outcome["rc"] = err.code if isinstance(err.code, int) else 1
            except RunStopped:
                outcome["rc"] = 1
            except BaseException:  # the function's error: its traceback, as wandb.agent prints it
                text = traceback.format_exc()
                print(text, file=sys.stderr, flush=True)
                with open(log_path, "a") as log:
                    log.write(text)
                outcome["rc"] = 1
            wandb.finish(exit_code=outcome["rc"])
        except RunStopped:  # a stop that landed after the function returned
            outcome.setdefault("rc", 1)
