"""The agent for a function: ``sweepkit.agent(sweep, function=train)``, as ``wandb.agent`` runs one.

``wandb.agent`` (``wandb/agents/pyagent.py``, ``_run_job``) runs the function in a thread of the
caller's process, once per run: it writes the run's values as ``{name: {value: v}}`` YAML, sets
``WANDB_RUN_ID``, ``WANDB_SWEEP_ID`` and ``WANDB_SWEEP_PARAM_PATH`` in ``os.environ``, calls
``wandb.teardown()`` so that the next ``wandb.init()`` reads its settings afresh, runs the function,
then ``wandb.finish()`` (``exit_code=1`` when it raised), and removes the variables. A stop is an
exception raised in the function's thread (``_terminate_thread``). This does the same, with the
variables the CLI agent sets (``sweepkit.jobs.sweeps.agent``: ``WANDB_DIR`` the run folder, offline unless
``WANDB_MODE`` is set, the flush interval), and the CLI agent's claims, leases, hyperband stops,
failure accounting and records: only the launch and the watch differ.

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
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import store as store_mod
from sweepkit.jobs.sweeps.agent.local import FLUSH_INTERVAL_ENV, POLL_S, LocalAgent, say
from sweepkit.jobs.sweeps.definition.parameters import flat_params
from sweepkit.jobs.sweeps.wandb_run.location import RunLocator
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


class FunctionAgent(LocalAgent):
    """Claims runs from a local sweep and calls ``function`` in this process for each one."""

    runs_program = False

    def __init__(self, sweep: store_mod.LocalSweep, function: Callable[[], Any]):
        super().__init__(sweep)
        self.function = function

    def _check_program(self, source: str) -> None:
        """The function is the program: the definition's ``program`` (if any) is not run."""

    def run_one(self, claim: store_mod.Claim) -> tuple[str, int]:
        import wandb

        claim.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        _, env = self._launch(claim)
        run_dir = Path(env["SWEEPKIT_RUN_DIR"])
        self.sweep.heartbeat(claim, self.me)
        values = " ".join(f"{k}={v}" for k, v in flat_params(claim.params).items())
        say(f"starting run {claim.run_id} (attempt {claim.k + 1}) in {run_dir}: {values}")
        log_path = run_dir / "output.log"
        with open(log_path, "ab") as log:
            log.write(
                f"=== sweepkit agent {self.me.agent} on {self.me.host}: attempt {claim.k + 1}, "
                f"{time.ctime()}: function {getattr(self.function, '__qualname__', self.function)}\n".encode()
            )
            log_start = log.tell()
        saved = {k: os.environ.get(k) for k in (*RUN_ENV, "WANDB_SERVICE")}
        os.environ.pop("WANDB_SERVICE", None)
        os.environ.update({k: env[k] for k in RUN_ENV})
        wandb.teardown()  # as wandb.agent: the run's wandb.init reads the variables above
        outcome: dict[str, Any] = {}
        worker = threading.Thread(target=self._call, args=(outcome, log_path), daemon=True)
        lost, stop_beating = threading.Event(), threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(claim, os.getpid(), lost, stop_beating), daemon=True
        )
        locator = RunLocator(run_dir, claim.run_id, self.sweep.sweep_id, os.getpid(), Path.cwd())
        started = time.time()
        beat.start()
        worker.start()
        try:
            stopped, lost_lease = self._watch_function(claim, worker, lost, locator)
        finally:
            stop_beating.set()
            beat.join()
            worker.join()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            wandb.teardown()  # a later wandb.init() of the caller's reads its own settings again
        locator.finish()
        rc = int(outcome.get("rc", 1))
        if self.signalled is not None and not stopped and rc != 0:
            rc = EXIT_PREEMPTED
        state = self._record(
            claim, rc, stopped, lost_lease, log_path, log_start, time.time() - started, env
        )
        return state, rc

    def _call(self, outcome: dict[str, Any], log_path: Path) -> None:
        """The function's thread: run it, then end its W&B run as wandb.agent does."""
        import wandb

        try:
            try:
                self.function()
                outcome["rc"] = 0
            except SystemExit as err:  # sys.exit(75) in the function: preempted, as the trainer
                outcome["rc"] = err.code if isinstance(err.code, int) else 1
            except RunStopped:
                outcome["rc"], outcome["stopped"] = 1, True
            except BaseException:  # the function's error: its traceback, as wandb.agent prints it
                text = traceback.format_exc()
                print(text, file=sys.stderr, flush=True)
                with open(log_path, "a") as log:
                    log.write(text)
                outcome["rc"] = 1
            wandb.finish(exit_code=outcome["rc"])
        except RunStopped:  # a stop that landed after the function returned
            outcome.setdefault("rc", 1)

    def _watch_function(
        self,
        claim: store_mod.Claim,
        worker: threading.Thread,
        lost: threading.Event,
        locator: RunLocator,
    ) -> tuple[bool, bool]:
        hyperband = "early_terminate" in self.sweep.definition and self.sweep.metric_name
        seen_epochs = 0
        located = stop_sent = stopped = lost_lease = False
        while worker.is_alive():
            worker.join(POLL_S)
            located = located or locator.poll()
            if stop_sent:
                continue
            if hyperband:
                epochs = len(self.sweep.metrics.history(claim.run_dir))
                if epochs > seen_epochs:
                    seen_epochs = epochs
                    if self._hyperband_says_stop(claim):
                        say(f"hyperband stops run {claim.run_id} after {epochs} epoch(s)")
                        stop_sent = stopped = True
            if lost.is_set():
                say(
                    f"run {claim.run_id}: lease lost (another agent declared it crashed); stopping it"
                )
                stop_sent = lost_lease = True
            if self.signalled is not None:
                stop_sent = True
            if stop_sent:
                _raise_in(worker, RunStopped)
        return stopped, lost_lease
