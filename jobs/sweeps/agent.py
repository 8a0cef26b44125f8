"""``sweepkit agent [--count N] SWEEP``: run the next runs of a sweep, with or without W&B's server.

For a W&B sweep reference (``entity/project/sweep_id``) this is ``wandb agent``, unchanged (exec).
For a local sweep (a folder made by ``sweepkit sweep create``) the agent claims a run from the
store and launches the program the way ``wandb agent`` does (``wandb/wandb_agent.py``,
``_command_run``): the command's macros expanded by W&B's own helpers, the run's values written as
``{name: {value: v}}`` YAML to ``$WANDB_DIR/wandb/sweep-<sweep>/config-<run>.yaml`` and named by
``WANDB_SWEEP_PARAM_PATH``, ``WANDB_SWEEP_ID`` and ``WANDB_RUN_ID`` set, the program in its own
process group. Every path it hands over is absolute, as ``wandb agent``'s are, so a program that
changes its working folder still finds them. In addition: ``WANDB_DIR`` and ``SWEEPKIT_RUN_DIR``
are the run folder in the sweep,
``WANDB_MODE`` is ``offline`` unless the environment sets it, and the program's output is kept in
``RUN_DIR/output.log`` (and echoed).

While the program runs, a thread renews the run's lease; the agent finds the program's W&B run
by its id wherever the program writes it (``dir=``, a changed working folder:
``jobs.sweeps.run_location`` links it into ``RUN_DIR/wandb/``) and reads what it logged (else
``RUN_DIR/run.json``: ``jobs.sweeps.run_metrics``), and at each new value of the sweep's metric
applies hyperband's rule (``sweeps.stop_runs``'s, from kept band values:
``jobs.sweeps.hyperband_check``) to decide whether to stop it. So that it sees each epoch, the
program's wandb flushes its log every second
(``WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL``, unless the environment sets it). A stop is SIGTERM
(the trainer checkpoints and exits), SIGKILL after a grace period, recorded as ``stopped``. Exit 0 is
``finished``, 75 ``preempted`` (re-queued under the same run id), anything else ``failed`` with the
tail of the output. SIGTERM, SIGINT or SIGUSR1 to the agent are passed to the program; the run is
recorded as preempted and the agent exits 75. If the agent itself dies, the program gets SIGTERM
(Linux parent-death signal) and the lease expires, so another agent resumes the run.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jobs.sweeps import hyperband_check, program_check
from jobs.sweeps import store as store_mod
from jobs.sweeps.definition import args_json, build_command, validate
from jobs.sweeps.end_record import end_patience_s, record_end_durably
from jobs.sweeps.failure import error_line, failure_text
from jobs.sweeps.parameters import flat_params
from jobs.sweeps.run_location import RunLocator
from train.errors import EXIT_FAILED, EXIT_OK, EXIT_PREEMPTED, EXIT_USAGE, UserError
from train.write_errors import refusal_line

POLL_S = 0.25
# wandb-core flushes a run's transaction log every 15 s by default: a reader would see epochs late
FLUSH_INTERVAL_ENV = "WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"
FLUSH_INTERVAL_S = "1"
STOP_GRACE_S = 60.0  # SIGTERM, then SIGKILL after this long (wandb agent's kill delay is similar)
LOG_TAIL_LINES = 30
# A sweep whose first runs all failed is broken (a bad command, data missing on the nodes): agents
# stop taking runs from it rather than fail every run of a 100-task array. 0 turns this off (for
# a sweep resumed after fixing the cause). wandb agent has the same guard per agent
# (WANDB_AGENT_MAX_INITIAL_FAILURES); ours counts the whole sweep, as its agents start together.
MAX_INITIAL_FAILURES_ENV = "SWEEPKIT_MAX_INITIAL_FAILURES"
DEFAULT_MAX_INITIAL_FAILURES = 3
_WANDB_REF = re.compile(r"^[^/.][^/]*/[^/]+/[^/]+$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep",
        metavar="SWEEP",
        help="local sweep folder (from sweepkit sweep create) or W&B entity/project/sweep_id",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="run at most N runs, then exit (default: until the sweep is done)",
    )


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise UserError(f"--count {args.count}: must be a positive number of runs")
    if store_mod.is_local_ref(args.sweep):
        return LocalAgent(store_mod.open_sweep(args.sweep)).run(args.count)
    if _WANDB_REF.match(args.sweep):
        return _exec_wandb_agent(args.sweep, args.count)
    raise store_mod.no_sweep_at(args.sweep, ", nor a W&B reference entity/project/sweep_id")


def _exec_wandb_agent(ref: str, count: int | None) -> int:
    beside = Path(sys.executable).parent / "wandb"
    wandb_cli = str(beside) if beside.exists() else shutil.which("wandb")
    if wandb_cli is None:
        raise UserError(
            "the wandb command is not installed; pip install wandb, or use a local sweep folder"
        )
    argv = [wandb_cli, "agent", *(["--count", str(count)] if count else []), ref]
    sys.stdout.flush()
    os.execv(wandb_cli, argv)
    return 0  # not reached


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the agent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def say(message: str) -> None:
    print(f"sweepkit agent: {message}", flush=True)


def max_initial_failures() -> int:
    text = os.environ.get(MAX_INITIAL_FAILURES_ENV, str(DEFAULT_MAX_INITIAL_FAILURES))
    if not text.strip().isdigit():
        raise UserError(
            f"{MAX_INITIAL_FAILURES_ENV}={text!r}: must be a whole number of runs (0: no limit)"
        )
    return int(text)


class LocalAgent:
    """Claims runs from a local sweep and runs them one after another."""

    runs_program = True  # launches the sweep's program (the function agent calls a function)

    def __init__(self, sweep: store_mod.LocalSweep):
        self.sweep = sweep
        self.me = store_mod.AgentIdentity()
        self.signalled: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._beat_reader: store_mod.LocalSweep | None = None
        self._hyperband: tuple[hyperband_check.BandValues, float, bool] | None = None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signalled = signum
        if self.proc is not None and self.proc.poll() is None:
            forward = signal.SIGUSR1 if signum == signal.SIGUSR1 else signal.SIGTERM
            self.proc.send_signal(forward)

    def run(self, count: int | None) -> int:
        # sweep.yaml launches programs: check it again, in case it was edited since sweep create,
        # and that the files its command names are there from this folder, before taking a run
        source = str(self.sweep.path / "sweep.yaml")
        validate(self.sweep.definition, source, program=self.runs_program)
        self._check_program(source)
        failure_limit = max_initial_failures()
        # signal handlers can only be set from the main thread (an API caller may be elsewhere)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                signal.signal(signum, self._on_signal)
        done = 0
        last_state = None
        while (count is None or done < count) and self.signalled is None:
            broken = self.sweep.failing_from_the_start(failure_limit) if failure_limit else None
            if broken is not None:
                say(self._broken_sweep(broken, failure_limit))
                return EXIT_FAILED
            result = self.sweep.claim(self.me)
            if isinstance(result, store_mod.NoClaim):
                say(result.message)
                break
            last_state, rc = self.run_one(result)
            done += 1
            # exit 2 is a bad config or missing input: a broken sweep when nothing worked yet
            # (a value-dependent refusal in a working sweep is one more failed run)
            if (
                last_state == "failed"
                and rc == EXIT_USAGE
                and self.sweep.failing_from_the_start(1) is not None
            ):
                say(
                    f"run {result.run_id} exited {rc}: a bad config or missing input, which the "
                    f"next runs would hit too; not taking more (its error: {result.run_dir}/output.log)"
                )
                return EXIT_FAILED
        if self.signalled is not None:
            say(f"stopped by signal {signal.Signals(self.signalled).name}")
            return EXIT_PREEMPTED if last_state == "preempted" else EXIT_OK
        return EXIT_OK

    def _check_program(self, source: str) -> None:
        program_check.check_files(self.sweep.definition, source, Path.cwd())

    def _broken_sweep(self, last: Any, limit: int) -> str:
        end = last.last_end or {}
        error = error_line(str(end.get("error") or ""))
        return (
            f"not taking runs: at least {limit} runs of this sweep failed and none finished (last: "
            f"run {last.run_id}, exit {end.get('exit_code')}: {error or 'no output'}); "
            f"fix the cause (sweepkit status {shlex.quote(str(self.sweep.path))} shows each error), "
            "then start a new "
            f"sweep, or run agents with {MAX_INITIAL_FAILURES_ENV}=0 to go on with this one"
        )

    def _launch(self, claim: store_mod.Claim) -> tuple[list[str], dict[str, str]]:
        from wandb.sdk.lib import config_util

        sweep_id = self.sweep.sweep_id
        # absolute, as wandb agent gives them: a program that changes its working folder (Hydra,
        # os.chdir) still finds its parameters and WANDB_DIR whatever --root was relative to
        run_dir = Path(os.path.abspath(claim.run_dir))
        param_dir = run_dir / "wandb" / f"sweep-{sweep_id}"
        param_path = param_dir / f"config-{claim.run_id}.yaml"
        json_path = param_dir / f"config-{claim.run_id}.json"
        config_util.save_config_file_from_dict(str(param_path), claim.params)
        argv = build_command(self.sweep.definition, claim.params, json_path)
        if "${args_json_file}" in [str(c) for c in self.sweep.definition.get("command", [])]:
            json_path.write_text(args_json(claim.params))
        env = dict(os.environ)
        env.pop("WANDB_SERVICE", None)
        env.update(
            WANDB_SWEEP_ID=sweep_id,
            WANDB_RUN_ID=claim.run_id,
            WANDB_SWEEP_PARAM_PATH=str(param_path),
            WANDB_DIR=str(run_dir),
            SWEEPKIT_RUN_DIR=str(run_dir),
            SWEEPKIT_SWEEP_DIR=os.path.abspath(self.sweep.path),
            SWEEPKIT_ATTEMPT=str(claim.k + 1),
        )
        env.setdefault("WANDB_MODE", "offline")
        env.setdefault(FLUSH_INTERVAL_ENV, FLUSH_INTERVAL_S)
        return argv, env

    def run_one(self, claim: store_mod.Claim) -> tuple[str, int]:
        """Launch the claimed run, watch it, record how it ended; returns that state and the
        program's exit code."""
        run_dir = claim.run_dir
        run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.sweep.heartbeat(claim, self.me)
        argv, env = self._launch(claim)
        values = " ".join(f"{k}={v}" for k, v in flat_params(claim.params).items())
        verb = (
            f"resuming run {claim.run_id} (attempt {claim.k + 1})"
            if claim.resumed
            else f"starting run {claim.run_id}"
        )
        say(f"{verb} in {run_dir}: {values}")
        log_path = run_dir / "output.log"
        with open(log_path, "ab") as log:
            log.write(
                f"=== sweepkit agent {self.me.agent} on {self.me.host}: attempt {claim.k + 1}, {time.ctime()}\n".encode()
            )
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            log_start = log.tell()
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        started = time.time()
        # the program's W&B run, wherever it writes it (dir=, a changed working folder)
        locator = RunLocator(
            Path(env["SWEEPKIT_RUN_DIR"]),
            claim.run_id,
            self.sweep.sweep_id,
            self.proc.pid,
            Path.cwd(),
        )
        if self.signalled is not None:  # a signal between claim and launch: pass it on now
            self.proc.send_signal(signal.SIGTERM)
        lost = threading.Event()
        stop_beating = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(claim, self.proc.pid, lost, stop_beating), daemon=True
        )
        beat.start()
        try:
            rc, stopped, lost_lease = self._watch(claim, log_path, log_start, lost, locator)
        finally:
            stop_beating.set()
            beat.join()
            self.proc = None
        locator.finish()
        state = self._record(
            claim, rc, stopped, lost_lease, log_path, log_start, time.time() - started, env
        )
        return state, rc

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
        self,
        claim: store_mod.Claim,
        log_path: Path,
        offset: int,
        lost: threading.Event,
        locator: RunLocator,
    ) -> tuple[int, bool, bool]:
        assert self.proc is not None
        hyperband = "early_terminate" in self.sweep.definition and self.sweep.metric_name
        seen_epochs = 0
        located = False
        stop_sent: float | None = None
        stopped = lost_lease = False
        while True:
            try:
                rc = self.proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            offset = _echo(log_path, offset)
            located = located or locator.poll()
            if hyperband and stop_sent is None:
                epochs = len(self.sweep.metrics.history(claim.run_dir))
                if epochs > seen_epochs:
                    seen_epochs = epochs
                    if self._hyperband_says_stop(claim):
                        say(f"hyperband stops run {claim.run_id} after {epochs} epoch(s)")
                        self.proc.send_signal(signal.SIGTERM)
                        stop_sent, stopped = time.time(), True
            if lost.is_set() and stop_sent is None:
                say(
                    f"run {claim.run_id}: lease lost (another agent declared it crashed); stopping the program"
                )
                self.proc.send_signal(signal.SIGTERM)
                stop_sent, lost_lease = time.time(), True
            if stop_sent is not None and time.time() - stop_sent > STOP_GRACE_S:
                self.proc.kill()
        _echo(log_path, offset)
        return rc, stopped, lost_lease

    def _hyperband_says_stop(self, claim: store_mod.Claim) -> bool:
        """The engine's hyperband rule for this run (jobs/sweeps/hyperband_check.py): the ended
        runs' values at the bands kept between calls, the running runs' histories read live."""
        if self._hyperband is None:
            bands, eta, strict = hyperband_check.bands_and_eta(self.sweep.definition)
            ended = hyperband_check.BandValues(bands, self.sweep.goal == "maximize")
            self._hyperband = (ended, eta, strict)
        ended, eta, strict = self._hyperband
        running: list[list[float]] = []
        mine: list[float] = []
        runs = self.sweep.refresh()
        for run in ended.to_look_at(runs, self.sweep.open_runs()):
            end = run.last_end
            if end is None:  # running
                ended.update(run.run_id, None)
                live = self.sweep.metrics.history(self.sweep.run_dir(run.run_id))
                running.append(hyperband_check.valid(live, ended.maximize))
                if run.run_id == claim.run_id:
                    mine = running[-1]
            else:
                ended.update(run.run_id, end)
        return hyperband_check.says_stop(mine, ended.bands, eta, strict, ended, running)

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
        info = store_mod.read_run_json(claim.run_dir)
        metric = logged.metric
        error = None
        if stopped:
            state = "stopped"
        elif rc == 0:
            state = "finished"
        elif rc == EXIT_PREEMPTED or (self.signalled is not None and rc != 0):
            state = "preempted"
        else:
            state = "failed"
            error = failure_text(_tail(log_path, log_start)) or f"exit code {rc}"
            _note_failure(claim.run_dir, self.sweep.sweep_id, info, rc, error)
        if lost_lease:
            say(
                f"run {claim.run_id} ended ({state}) after its lease was lost; another agent has it now"
            )
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
            say(f"run {claim.run_id}: not recorded, another agent declared it crashed meanwhile")
            return state
        shown = f", {self.sweep.metric_name}={metric:g}" if isinstance(metric, (int, float)) else ""
        say(
            f"run {claim.run_id} {state} (exit {rc}, {took:.1f} s{shown})"
            + (" - queued to resume" if state == "preempted" else "")
        )
        if state == "finished" and self.sweep.metric_name and metric is None:
            say(self._no_metric(claim, logged, env))
        return state

    def _no_metric(self, claim: store_mod.Claim, logged: Any, env: dict[str, str]) -> str:
        """The warning for a finished run without the sweep's metric, naming the likely cause."""
        name = self.sweep.metric_name
        start = (
            f"warning: run {claim.run_id} finished without a value for the sweep's metric "
            f"{name!r}; search, hyperband and the report have nothing to rank it by: "
        )
        wandb_dir = claim.run_dir / "wandb"
        if logged.source == "wandb":
            return start + (
                f"its W&B run logged {', '.join(logged.logged) or 'nothing'}; check metric.name "
                f"in {self.sweep.path / 'sweep.yaml'} (nested keys are dotted: val.acc)"
            )
        if logged.source == "run.json":
            return start + (
                f"its run.json has {', '.join(logged.logged) or 'none'}; check metric.name in "
                f"{self.sweep.path / 'sweep.yaml'}"
            )
        if env.get("WANDB_MODE") == "disabled":
            return start + (
                "it ran with WANDB_MODE=disabled, so wandb wrote no data; unset WANDB_MODE for "
                "the agent (it then runs programs offline), or set WANDB_MODE=offline"
            )
        return start + (
            f"the program wrote no W&B run for run id {claim.run_id} (none in {wandb_dir}, none "
            f"open by its processes); it must call wandb.init() (mode not 'disabled', id left "
            f"to WANDB_RUN_ID) and wandb.log({{{name!r}: value}})"
        )


def _echo(path: Path, offset: int) -> int:
    """Copy what the program wrote since ``offset`` to our stdout; returns the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return offset + len(data)


def _tail(path: Path, offset: int, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _note_failure(run_dir: Path, sweep_id: str, info: dict[str, Any], rc: int, tail: str) -> None:
    """Put the exit code and log tail in run.json when the program died before saying why.

    The trainer owns run.json while it runs; it has exited now, so this cannot race with it.
    Written with the trainer's permissions (the umask's), as every run folder file is."""
    from train.atomic import write_json_atomic

    if info.get("state") == "failed" and info.get("error"):
        return
    if not info:  # died before the trainer wrote anything: a minimal record in the contract's shape
        info = {
            "schema": 1,
            "run_id": run_dir.name,
            "sweep_id": sweep_id,
            "config": {},
            "metric_names": [],
            "epochs": [],
            "summary": {},
        }
    info.update(state="failed", exit_code=rc, error=info.get("error") or tail)
    write_json_atomic(run_dir / "run.json", info)
