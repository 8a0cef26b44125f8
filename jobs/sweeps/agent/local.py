"""The local agent: claims runs from a sweep folder and runs each one, as ``wandb agent`` would.

One loop for both ways of running a run: it claims, renews the lease, watches what the run logs
(hyperband), stops a run whose lease was lost, and records how the run ended; a runner does the
launch, the wait and the stop: ``process.ProcessRunner`` launches the sweep's program (``sweepkit
agent``), ``function.FunctionRunner`` calls a function in a thread (``sweepkit.agent(function=)``,
as ``wandb.agent``). See the package docstring (``jobs/sweeps/agent/__init__.py``) for more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sweepkit.jobs.sweeps import lab_group, program_check
from sweepkit.jobs.sweeps import store as store_mod
from sweepkit.jobs.sweeps.agent import hyperband, messages, rules
from sweepkit.jobs.sweeps.agent.launch import (
    FLUSH_INTERVAL_ENV,
    keep_param_file,
    program_argv_env,
)
from sweepkit.jobs.sweeps.agent.messages import say
from sweepkit.jobs.sweeps.agent.process import ProcessRunner
from sweepkit.jobs.sweeps.definition import checked, validate
from sweepkit.jobs.sweeps.definition.parameters import flat_params
from sweepkit.jobs.sweeps.display import shown
from sweepkit.jobs.sweeps.end_record_retry import end_patience_s, record_end_durably
from sweepkit.jobs.sweeps.wandb_run.location import RunLocator
from sweepkit.train.atomic import current_umask
from sweepkit.train.errors import EXIT_FAILED, EXIT_OK, EXIT_PREEMPTED, UserError
from sweepkit.train.write_errors import refusal_line

__all__ = ["FLUSH_INTERVAL_ENV", "POLL_S", "LocalAgent", "Runner", "say"]

POLL_S = 0.25
LOG_TAIL_LINES = 30


class Runner(Protocol):
    """How a run is run: ``process.ProcessRunner`` (the sweep's program) or
    ``function.FunctionRunner`` (a function in a thread)."""

    runs_program: bool  # whether it runs the definition's program (checked before any run)
    stop_grace_s: float  # after a stop, how long until ``kill``

    def describe(self, argv: list[str]) -> str: ...
    def start(self, argv: list[str], env: dict[str, str], log_path: Path) -> int: ...
    def wait(self, timeout: float) -> int | None: ...
    def signal(self, signum: int) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def end(self) -> None: ...
    def exit_code(self, rc: int) -> int: ...


class LocalAgent:
    """Claims runs from a local sweep and runs them one after another with ``runner`` (the
    sweep's program unless told otherwise). ``definition_warned``: this process has shown the
    warnings of the sweep's definition already (``sweepkit.sweep``)."""

    def __init__(
        self,
        sweep: store_mod.LocalSweep,
        runner: Runner | None = None,
        definition_warned: bool = False,
    ):
        self.sweep = sweep
        # sweepkit.sweep() in this process showed the definition's warnings: not twice
        self.definition_warned = definition_warned
        self.runner: Runner = ProcessRunner() if runner is None else runner
        if sweep.group_id is not None and isinstance(self.runner, ProcessRunner):
            self.runner.umask = lab_group.program_umask(current_umask())
        self.me = store_mod.AgentIdentity()
        self.signalled: int | None = None
        self._beat_reader: store_mod.LocalSweep | None = None
        self._hyperband: tuple[hyperband.BandValues, float, bool] | None = None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signalled = signum
        self.runner.signal(signum)

    def run(self, count: int | None) -> int:
        # sweep.yaml launches programs: check it again, in case it was edited since sweep create,
        # and that the files its command names are there from this folder, before taking a run
        source = str(self.sweep.path / "sweep.yaml")
        runs_program = self.runner.runs_program
        if runs_program and self.sweep.legacy_command_warning:
            say(self.sweep.legacy_command_warning)
        # unchanged since sweep create checked it: no engine import (definition/checked.py)
        sweep = self.sweep
        if sweep.legacy_command_warning or not checked.holds(
            sweep.meta, sweep.definition_text, runs_program
        ):
            validate(
                sweep.definition, source, program=runs_program, warn=not self.definition_warned
            )
        if runs_program:  # a function is the program: the definition's program (if any) is not run
            program_check.check_files(self.sweep.definition, source, Path.cwd())
            problem = program_check.interpreter_problem(self.sweep.definition, source)
            if problem:  # the python on PATH cannot run it: every run would fail alike
                raise UserError(problem)
        failure_limit = rules.max_initial_failures(os.environ.get(rules.MAX_INITIAL_FAILURES_ENV))
        # signal handlers can only be set from the main thread (an API caller may be elsewhere)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                signal.signal(signum, self._on_signal)
        done = 0
        last_state = None
        while (count is None or done < count) and self.signalled is None:
            broken = (
                rules.failing_from_the_start(self.sweep.outcomes(), failure_limit, self._trained)
                if failure_limit
                else None
            )
            if broken is not None:
                say(messages.broken_sweep(broken, failure_limit, self.sweep.path))
                return EXIT_FAILED
            result = self.sweep.claim(self.me)
            if isinstance(result, store_mod.NoClaim):
                say(result.message)
                self.sweep.remove_ended_leases()  # any an agent killed after its end record left
                break
            last_state, rc = self.run_one(result)
            done += 1
            if rules.refuses_more_runs(last_state, rc, self.sweep.outcomes(), self._trained):
                say(
                    f"run {result.run_id} exited {rc}: a bad config or missing input, which the "
                    f"next runs would hit too; not taking more (its error: {result.run_dir}/output.log)"
                )
                return EXIT_FAILED
        if self.signalled is not None:
            say(f"stopped by signal {signal.Signals(self.signalled).name}")
            return EXIT_PREEMPTED if last_state == "preempted" else EXIT_OK
        return EXIT_OK

    def _trained(self, run_id: str) -> bool:
        """Whether a run has logged an epoch so far (read from its files)."""
        return bool(self.sweep.metrics.read(self.sweep.run_dir(run_id)).epochs)

    def _launch(self, claim: store_mod.Claim) -> tuple[list[str], dict[str, str]]:
        return program_argv_env(
            self.sweep.definition,
            self.sweep.sweep_id,
            self.sweep.path,
            claim.run_id,
            claim.run_dir,
            claim.k + 1,
            claim.params,
            self.sweep.group_id,
        )

    def run_one(self, claim: store_mod.Claim) -> tuple[str, int]:
        """Start the claimed run, watch it, record how it ended; returns that state and the
        run's exit code."""
        claim.run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.sweep.heartbeat(claim, self.me)
        argv, env = self._launch(claim)
        # renewed before the lost check, so the program starts with a whole lease ahead of it
        # (the heartbeat thread starts only with the program); a lease that expired while the
        # agent got ready (a slow start on a loaded node) was taken over: then nothing starts
        self.sweep.heartbeat(claim, self.me)
        if self.sweep.lost(claim):
            say(f"run {claim.run_id}: lease lost before its program started; not starting it")
            self.sweep.end_lease(claim.run_id, claim.k)
            return "crashed", EXIT_OK  # as the agent that took it over recorded
        run_dir = Path(env["SWEEPKIT_RUN_DIR"])
        values = " ".join(f"{shown(k)}={shown(v)}" for k, v in flat_params(claim.params).items())
        verb = (
            f"resuming run {claim.run_id} (attempt {claim.k + 1})"
            if claim.resumed
            else f"starting run {claim.run_id}"
        )
        say(f"{verb} in {claim.run_dir}: {values}")
        log_path = run_dir / "output.log"
        # made with the sweep's file mode: another lab member's agent appends to it on a resume
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        with open(os.open(log_path, flags, self.sweep.file_mode), "ab") as log:
            lab_group.own_file(log_path, self.sweep.group_id)
            log.write(
                f"=== sweepkit agent {self.me.agent} on {self.me.host}: attempt {claim.k + 1}, "
                f"{time.ctime()}\n{self.runner.describe(argv)}\n".encode()
            )
            log_start = log.tell()
        pid = self.runner.start(argv, env, log_path)
        started = time.time()
        # the run's W&B run, wherever it writes it (dir=, a changed working folder)
        locator = RunLocator(run_dir, claim.run_id, self.sweep.sweep_id, pid, Path.cwd())
        if self.signalled is not None:  # a signal between claim and launch: pass it on now
            self.runner.signal(self.signalled)
        lost, stop_beating = threading.Event(), threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(claim, pid, lost, stop_beating), daemon=True
        )
        beat.start()
        self._put_ahead()  # while the program runs
        try:
            rc, stopped, lost_lease = self._watch(claim, lost, locator)
        finally:
            stop_beating.set()
            beat.join()
            self.runner.end()
        locator.finish()
        rc = self.runner.exit_code(rc)
        state = self._record(
            claim, rc, stopped, lost_lease, log_path, log_start, time.time() - started, env
        )
        self._put_ahead()  # its result in: the next fresh agent's proposal, if none is pending
        return state, rc

    def _put_ahead(self) -> None:
        """A bayes proposal made ahead for a fresh agent, when this one has the engine loaded
        (store/ahead.py). Best effort: a sweep it cannot append to now gets none."""
        if self.sweep.definition.get("method") == "bayes":
            with contextlib.suppress(UserError):
                self.sweep.put_ahead(self.me.agent)

    def _beat(
        self, claim: store_mod.Claim, child_pid: int, lost: threading.Event, stop: threading.Event
    ) -> None:
        # the heartbeat thread's own reader of the journal (kept across runs: threads never overlap)
        if self._beat_reader is None:
            self._beat_reader = store_mod.LocalSweep(self.sweep.path)
        own = self._beat_reader
        interval = max(0.2, self.sweep.lease_s / 4)
        failing = False
        while True:
            try:
                own.heartbeat(claim, self.me, child_pid)
                if own.lost(claim):
                    lost.set()
                failing = False
            except (OSError, UserError) as err:
                if not failing:  # once per spell (a full disk fails every beat)
                    line = refusal_line(err) if isinstance(err, OSError) else str(err)
                    say(f"warning: heartbeat failed: {line}")
                failing = True
            if stop.wait(interval):
                return

    def _watch(
        self, claim: store_mod.Claim, lost: threading.Event, locator: RunLocator
    ) -> tuple[int, bool, bool]:
        """Wait for the run to end, stopping it when hyperband says so or its lease is lost;
        returns its exit code, whether hyperband stopped it, whether the lease was lost."""
        hyperband = "early_terminate" in self.sweep.definition and self.sweep.metric_name
        seen_epochs = 0
        located = stopped = lost_lease = False
        stop_sent: float | None = None
        while (rc := self.runner.wait(POLL_S)) is None:
            located = located or locator.poll()
            if stop_sent is None and self.signalled is not None:
                # the signal handler passed the signal on; SIGUSR1 asks for a checkpoint before
                # SLURM's time limit, which SLURM enforces: only a stop the agent made is killed
                stop_sent = time.time() if self.signalled != signal.SIGUSR1 else float("inf")
            if hyperband and stop_sent is None:
                epochs = len(self.sweep.metrics.history(claim.run_dir))
                if epochs > seen_epochs:
                    seen_epochs = epochs
                    if self._hyperband_says_stop(claim):
                        say(f"hyperband stops run {claim.run_id} after {epochs} epoch(s)")
                        self.runner.stop()
                        stop_sent, stopped = time.time(), True
            if lost.is_set() and stop_sent is None:
                say(messages.lease_ran_out(claim.run_id, self.sweep.lease_s, "stopping it"))
                self.runner.stop()
                stop_sent, lost_lease = time.time(), True
            if stop_sent is not None and time.time() - stop_sent > self.runner.stop_grace_s:
                self.runner.kill()
        return rc, stopped, lost_lease

    def _hyperband_says_stop(self, claim: store_mod.Claim) -> bool:
        """The engine's hyperband rule for this run (``rules.hyperband_stops``): the ended runs'
        values at the bands kept between calls, the running runs' histories read live."""
        if self._hyperband is None:
            bands, eta, strict = hyperband.bands_and_eta(self.sweep.definition)
            ended = hyperband.BandValues(bands, self.sweep.goal == "maximize")
            self._hyperband = (ended, eta, strict)
        ended, eta, strict = self._hyperband
        changed = ended.to_look_at(self.sweep.refresh(), self.sweep.open_runs())
        return rules.hyperband_stops(
            claim.run_id,
            changed,
            lambda run_id: self.sweep.metrics.history(self.sweep.run_dir(run_id)),
            ended,
            eta,
            strict,
        )

    def _record(
        self,
        claim: store_mod.Claim,
        rc: int,
        stopped: bool,
        lost_lease: bool,
        log_path: Path,
        log_start: int,
        took: float,
        env: dict[str, str],
    ) -> str:
        # the reader has kept what it read while the program ran: a killed program's lost writes
        # do not take it back
        logged = self.sweep.metrics.read(claim.run_dir, final=True)
        metric = logged.metric
        # the failure's facts go in the end record, where status and the report read them: the
        # program's run.json is the program's alone (the agent never writes it)
        state = rules.outcome(rc, stopped, self.signalled is not None)
        error = rules.failure_reason(_tail(log_path, log_start), rc) if state == "failed" else None
        if lost_lease:
            say(
                f"run {claim.run_id} ended ({state}) after its lease was lost; another agent has it now"
            )
            self.sweep.end_lease(claim.run_id, claim.k)  # the agent that ended it wrote its end
            return state
        result = {**logged.as_end_record(), "exit_code": rc, "error": error}
        finished = record_end_durably(
            lambda: self.sweep.finish(claim, self.me, state, **result),
            str(self.sweep.path / "journal.jsonl"),
            claim.run_id,
            state,
            end_patience_s(self.sweep.lease_s),
            say,
        )
        if not finished:
            say(messages.lease_ran_out(claim.run_id, self.sweep.lease_s, "its end is not recorded"))
            self.sweep.end_lease(claim.run_id, claim.k)  # that agent wrote its end record
            return state
        if state != "preempted":  # done: out of W&B's folder, kept as evidence (keep_param_file)
            keep_param_file(env)
        value = (
            f", {shown(self.sweep.metric_name)}={metric:g}"
            if isinstance(metric, int | float)
            else ""
        )
        say(
            f"run {claim.run_id} {state} (exit {rc}, {took:.1f} s{value})"
            + (" - queued to resume" if state == "preempted" else "")
        )
        self._warn_about_metric(claim, state, logged, env)
        return state

    def _warn_about_metric(
        self, claim: store_mod.Claim, state: str, logged: Any, env: dict[str, str]
    ) -> None:
        """One warning where the run left the sweep's metric unusable: a finished run with no
        value names the likely cause; another run that logged values that are not numbers says
        so."""
        name = self.sweep.metric_name
        no_value = state == "finished" and logged.metric is None
        if name and logged.not_numbers and not no_value:
            say(messages.not_numbers(claim.run_id, name, logged.not_numbers))
        if name and no_value:  # one warning, which names the cause (not-numbers among them)
            say(
                messages.no_metric(
                    claim.run_id,
                    name,
                    logged,
                    env.get("WANDB_MODE"),
                    claim.run_dir,
                    self.sweep.path,
                )
            )


def _tail(path: Path, offset: int, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
