"""The agent's decisions, each a pure function of what it has read: how a run ended, whether
hyperband stops a running run, and whether the sweep is broken (its runs fail from the start).

No file, process, clock or environment is touched here: the agent (``local.py``) reads the facts
and acts on the answer, and ``tests/jobs/sweeps/agent/test_rules.py`` checks each rule in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sweepkit.jobs.sweeps.agent.hyperband import BandValues, says_stop, valid
from sweepkit.jobs.sweeps.failure import failure_text
from sweepkit.jobs.sweeps.store import Failure, Outcomes
from sweepkit.jobs.sweeps.store.fold import EndedRun as RunLike
from sweepkit.train.errors import EXIT_PREEMPTED, EXIT_USAGE, UserError

# A sweep whose first runs all failed is broken (a bad command, data missing on the nodes): agents
# stop taking runs from it rather than fail every run of a 100-task array. 0 turns this off (for
# a sweep resumed after fixing the cause). wandb agent has the same guard per agent
# (WANDB_AGENT_MAX_INITIAL_FAILURES); ours counts the whole sweep, as its agents start together.
MAX_INITIAL_FAILURES_ENV = "SWEEPKIT_MAX_INITIAL_FAILURES"
DEFAULT_MAX_INITIAL_FAILURES = 3


def outcome(rc: int, stopped: bool, signalled: bool) -> str:
    """How a run ended, from its program's exit code: ``stopped`` (by hyperband) whatever the
    code, 0 ``finished``, 75 (or any failure after the agent was signalled) ``preempted``,
    anything else ``failed``."""
    if stopped:
        return "stopped"
    if rc == 0:
        return "finished"
    if rc == EXIT_PREEMPTED or signalled:
        return "preempted"
    return "failed"


def failure_reason(log_tail: str, rc: int) -> str:
    """What a failed run records as its error: the tail of its output (plain text; status shows
    its error line), else its exit code."""
    return failure_text(log_tail) or f"exit code {rc}"


def max_initial_failures(text: str | None) -> int:
    """The broken-sweep limit from ``SWEEPKIT_MAX_INITIAL_FAILURES`` (unset: the default)."""
    if text is None:
        return DEFAULT_MAX_INITIAL_FAILURES
    if not text.strip().isdigit():
        raise UserError(
            f"{MAX_INITIAL_FAILURES_ENV}={text!r}: must be a whole number of runs (0: no limit)"
        )
    return int(text)


def failing_from_the_start(
    seen: Outcomes, limit: int, trained: Callable[[str], bool]
) -> Failure | None:
    """The last failed run, when ``limit`` or more runs failed before their first epoch and no run
    shows the program works (one finished or stopped by hyperband, one that failed after logging
    an epoch, or a running one that has logged one: ``trained(run_id)``, asked last as it reads
    the run's files): the sign of a broken program or environment, which every new run would hit.

    ``seen``: the sweep's runs as counts (``Fold.outcomes``), which a snapshot's head keeps for the
    runs it leaves unread: the rule reads no more than a claim does."""
    if seen.scored or seen.failed_trained:
        return None
    if not seen.failed or seen.failed < limit:
        return None
    if any(trained(run_id) for run_id in seen.running):
        return None
    return seen.last_failed


def refuses_more_runs(state: str, rc: int, seen: Outcomes, trained: Callable[[str], bool]) -> bool:
    """After a run failed with exit 2 (a bad config or missing input): stop taking runs when no run
    has worked yet, as the next ones would hit it too (in a working sweep, a refusal that depends
    on the run's values is one more failed run)."""
    if state != "failed" or rc != EXIT_USAGE:
        return False
    return failing_from_the_start(seen, 1, trained) is not None


def hyperband_stops(
    run_id: str,
    changed: Iterable[RunLike],
    live: Callable[[str], list[Any]],
    ended: BandValues,
    eta: float,
    strict: bool,
) -> bool:
    """Whether hyperband stops the running run ``run_id`` now (the engine's rule: ``hyperband.py``).

    ``changed``: the runs whose part may have changed since the last call
    (``BandValues.to_look_at``), every running run among them; ``live(run_id)``: a running run's
    history so far. ``ended`` keeps the ended runs' band values between calls and is updated."""
    running: list[list[float]] = []
    mine: list[float] = []
    for run in changed:
        end = run.last_end
        if end is None:  # running, or queued again
            ended.update(run.run_id, None)
            running.append(valid(live(run.run_id), ended.maximize))
            if run.run_id == run_id:
                mine = running[-1]
        else:
            ended.update(run.run_id, end)
    return says_stop(mine, ended.bands, eta, strict, ended, running)
