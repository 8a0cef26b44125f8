"""Bayes proposals made ahead: an agent that has the search engine loaded proposes the next run and
keeps the proposal in the journal (a ``propose`` record, fold.py), so that a fresh agent claims it
without importing the engine and scikit-learn (about 1.5 s of CPU before its program starts).

An agent with the engine loaded makes its own proposals as before and, while its run's program
runs, puts one ahead when none is pending (``put_ahead``). A fresh agent (the engine not loaded)
takes a pending proposal (``Taker``): under the lock, it is still pending or the claim proposes
anew; its claim record names the proposal's id, which the fold then drops, so each proposal goes
to one run only. A proposal made before more than ``STALE_AFTER_ENDS`` attempts ended is dropped
unused: bayes then proposes from the results as they are.
"""

from __future__ import annotations

import time
from typing import Any

from sweepkit.jobs.sweeps.state import new_id
from sweepkit.jobs.sweeps.store.claim_policy import can_add, queue
from sweepkit.jobs.sweeps.store.engine import Engine
from sweepkit.jobs.sweeps.store.fold import STALE_AFTER_ENDS, Fold
from sweepkit.jobs.sweeps.store.journal import SweepLock
from sweepkit.jobs.sweeps.store.journal_fold import JournalFold

__all__ = ["STALE_AFTER_ENDS", "Taker", "pending", "propose_record", "put_ahead"]


def pending(fold: Fold) -> dict[str, Any] | None:
    """The oldest pending proposal (the fold drops stale and taken ones), or None."""
    return next(iter(fold.ahead.pending.values()), None)


def propose_record(params: dict[str, Any], ended: int, by: str) -> dict[str, Any]:
    """A proposal made from the fold when ``ended`` attempts had ended."""
    return {
        "t": "propose",
        "id": new_id(),
        "params": params,
        "ended": ended,
        "at": time.time(),
        "by": by,
    }


class Taker:
    """A fresh agent's side: the pending proposal it took, until its claim record names it."""

    def __init__(self) -> None:
        self.taken: str | None = None
        self._params: dict[str, Any] | None = None

    def take(self, fold: Fold, engine: Engine) -> dict[str, Any] | None:
        """The params of a pending proposal, when this agent has no engine loaded; else None."""
        found = None if engine.bayes_loaded else pending(fold)
        self.taken, self._params = (found["id"], found["params"]) if found else (None, None)
        return self._params

    def gone(self, fold: Fold) -> bool:
        """True if the proposal taken is no longer pending (another agent's claim took it, or it
        went stale): it must not be used."""
        return self.taken is not None and self.taken not in fold.ahead.pending

    def tag(self, record: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """The claim record of a new run with ``params``, naming the proposal if it is the one
        taken (called under the lock, after ``gone`` said it is still pending)."""
        if self.taken is not None and params is self._params:
            record["proposal"] = self.taken
        self.taken = self._params = None
        return record


def put_ahead(
    state: JournalFold,
    engine: Engine,
    lock: SweepLock,
    run_cap: int | None,
    by: str,
    load: bool = False,
) -> bool:
    """Propose the next bayes run and append it as pending, if this agent has the engine loaded,
    none is pending and the sweep may add runs (``load``: load it if not: ``sweep create``).
    Proposed outside the lock (from the journal as read: the runs running now are in it, so the
    proposal avoids their points as the engine does); appended under it if still none is pending."""
    if not (
        load or engine.bayes_loaded
    ):  # a fresh agent: loading the engine for this is what it spares
        return False
    fold = state.catch_up()
    if pending(fold) or queue(fold) or not can_add(fold, run_cap):
        return False
    fold = state.read_all()
    ended, made = fold.ahead.ended, engine.propose(1, fold.runs.values())
    if not made:
        return False
    with lock:
        fold = state.catch_up()
        if pending(fold) or not can_add(fold, run_cap):
            return False
        state.append([propose_record(made[0], ended, by)])
    return True
