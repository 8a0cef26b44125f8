"""The claim policy: which run an agent gets next, as pure functions of the sweep's fold.

The store's shell does the I/O around them (jobs/sweeps/store/sweep.py): it reads the journal,
asks the search engine for proposals, reads leases, takes the lock and the claim tokens, and
appends the records these functions return. The policy:

* attempts whose lease expired are ended first (``expired_end``): as their run's own records say
  they ended (reconcile.py), else crashed;
* a queued run (preempted, or crashed with retries left) goes before any new run, the one queued
  longest first;
* a new run is added only under ``run_cap`` and until a finished run reaches the metric's target;
* a new run takes the first proposal that is still free.

No file or OS access here (an import-linter contract holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sweepkit.jobs.sweeps.store import end_values
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun
from sweepkit.jobs.sweeps.store.reconcile import Reconciled
from sweepkit.jobs.sweeps.vocabulary import DONE_STATES


class Holder(Protocol):
    """Who claims (the store's AgentIdentity): what a claim record says about its holder."""

    agent: str
    host: str
    pid: int
    pid_ns: str | None
    slurm: dict[str, str | None]


@dataclass(frozen=True)
class NoClaim:
    """Nothing to hand out: the sweep is complete, or the rest is running elsewhere."""

    complete: bool
    message: str


@dataclass(frozen=True)
class Resume:
    """Hand out the queued run ``run_id`` again, as the attempt of index ``k`` (0-based: attempt
    ``k + 1``), if its claim token is still free."""

    run_id: str
    k: int
    params: dict[str, Any]


@dataclass(frozen=True)
class New:
    """Add a new run with these swept values."""

    params: dict[str, Any]


@dataclass(frozen=True)
class Propose:
    """The proposals are missing or stale: ask the engine again. ``outside_lock``: first let the
    lock go (a bayes proposal is slow; only the last try proposes under the lock)."""

    outside_lock: bool


Decision = Resume | New | Propose | NoClaim


def queue(fold: Fold) -> list[FoldedRun]:
    """The queued runs, the one that ended longest ago first."""
    return sorted(
        (r for r in fold.open.values() if r.queued(fold.max_retries)),
        key=lambda r: (r.last_end or {}).get("at", 0),
    )


def can_add(fold: Fold, run_cap: int | None) -> bool:
    """True while the search may add runs: under ``run_cap`` and the metric's target not hit."""
    return not (run_cap and fold.run_count >= int(run_cap)) and not fold.target_hit


def decide(
    fold: Fold,
    proposals: list[dict[str, Any]] | None,
    *,
    refused: frozenset[str] = frozenset(),
    may_wait: bool = False,
    run_cap: int | None = None,
    planned: int | None = None,
) -> Decision:
    """The next step of a claim, under the lock, on the fold as it is now.

    ``proposals``: the engine's proposals, None if they were not made or may be stale (made
    before claims that were appended meanwhile); an empty list: the engine has nothing more.
    ``refused``: queued runs whose token another agent took meanwhile. ``may_wait``: the
    proposals are slow to make and another try outside the lock is left."""
    for run in queue(fold):
        if run.run_id not in refused:
            return Resume(run.run_id, run.k + 1, run.params)
    if not can_add(fold, run_cap):
        return no_claim(fold, planned)
    if proposals is None:
        return Propose(outside_lock=may_wait)
    if not proposals:
        return no_claim(fold, planned)
    return New(proposals[0])


def claim_record(
    run_id: str, k: int, params: dict[str, Any] | None, me: Holder, now: float
) -> dict[str, Any]:
    """The record that hands the attempt of index ``k`` of ``run_id`` to ``me`` (``params`` with
    the first, k = 0, only)."""
    record = {
        "t": "claim",
        "run": run_id,
        "k": k,
        "at": now,
        "agent": me.agent,
        "host": me.host,
        "pid": me.pid,
        "pid_ns": me.pid_ns,
        "slurm": me.slurm,
    }
    if params is not None:
        record["params"] = params
    return record


def expired_end(
    run: FoldedRun,
    found: tuple[Reconciled, dict[str, Any]] | None,
    me: Holder,
    now: float,
    lease_s: float,
) -> dict[str, Any]:
    """The end record of an attempt whose lease expired: what the run's own records say when they
    say it ended (``found``: the outcome and what it logged; a finished run stays finished), else
    crashed."""
    end: dict[str, Any] = {"t": "end", "run": run.run_id, "k": run.k, "at": now, "by": me.agent}
    if found is not None:
        outcome, logged = found
        return {
            **end,
            **logged,
            "state": outcome.state,
            "exit_code": outcome.exit_code,
            "error": outcome.error,
            "reconciled_from": outcome.source,
        }
    holder = run.claims[-1]
    if holder.get("recovered"):  # a claim the journal lost, rebuilt from the folder: no holder
        return {
            **end,
            "state": "crashed",
            "error": "its claim was lost from the journal and its own records do not say it ended",
        }
    error = f"lease expired: no heartbeat from agent {holder.get('agent')} on {holder.get('host')} (pid {holder.get('pid')}) for {lease_s:g} s"
    return {**end, "state": "crashed", "error": error}


def end_record(
    run_id: str, k: int, state: str, me: Holder, now: float, **result: Any
) -> dict[str, Any]:
    """The record that ends the attempt of index ``k`` of ``run_id`` with ``state``."""
    record = {
        "t": "end",
        "run": run_id,
        "k": k,
        "state": state,
        "at": now,
        "by": me.agent,
        **result,
    }
    return {**record, **end_values.marked(result)}


def no_claim(fold: Fold, planned: int | None) -> NoClaim:
    """Why there is nothing to hand out: complete (nothing running or queued) or waiting."""
    states, done, queued = fold.tally()  # the runs a snapshot holds unread counted, not read
    running = states["running"]
    total = max(planned or 0, fold.run_count)
    if running == 0 and queued == 0:
        by_state = ", ".join(f"{n} {s}" for s in DONE_STATES if (n := states[s]))
        reached = fold.target_line()  # the reason the search stopped early, when it did
        return NoClaim(
            True,
            "sweep complete: "
            + (f"{reached}; " if reached else "")
            + f"{done} of {total} runs done"
            + (f" ({by_state})" if by_state else ""),
        )
    return NoClaim(
        False, f"nothing to claim: {done} of {total} runs done, {running} running on other agents"
    )


def complete(fold: Fold, run_cap: int | None, planned: int | None) -> bool:
    """True when no run is running or queued and the search has nothing more to propose."""
    if fold.open:
        return False
    if not can_add(fold, run_cap):
        return True
    return planned is not None and fold.run_count >= planned
