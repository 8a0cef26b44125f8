"""The journal's records folded into runs: the sweep's state as a pure function of its records.

Two records exist. ``claim`` {run, k, params (only when k = 0), at, agent, host, pid, slurm} hands
an attempt of a run to an agent (``k``: the attempt's 0-based index, jobs/sweeps/vocabulary.py).
``end`` {run, k, state, metric, history, epochs, metric_source, summary, exit_code, error, at;
``nonfinite`` where its metric, history or summary holds NaN or inf, which JSON holds as W&B's
strings: store/end_values.py reads them back} ends that attempt with finished, failed, stopped,
preempted or crashed. A run's state is that of its last attempt: ``running`` until an ``end``
ends it. Preempted runs, and crashed runs with retries left, are *queued*: handed out again under
the same run id and folder, before any new run. The others that ended are *done*.

A third record, ``propose`` {id, params, ended, at, by}, is a bayes proposal made ahead by an agent
that had the search engine loaded, from the fold when ``ended`` attempts had ended (ahead.py). It
stays *pending* until a claim of a new run names it (``proposal``: its id) or until more than
``STALE_AFTER_ENDS`` attempts ended after it was made; then it is dropped. Records of any other
kind (a later sweepkit's) are ignored: they change nothing that this version reads.

No file or OS access here (an import-linter contract holds it to that): the store's shell reads
the journal and the snapshot and hands the fold what they hold (``apply``'s records; a snapshot's
runs and the counts of those it left unread, ``Unread``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sweepkit.jobs.sweeps.store.grid_taken import GridHead
from sweepkit.jobs.sweeps.vocabulary import DONE_STATES, SCORED_STATES, is_rankable
from sweepkit.train.json_values import number


class FoldedRun:
    """A run as folded from its records (plus caches for the search engine)."""

    def __init__(self, run_id: str, params: dict[str, Any]):
        self.run_id = run_id
        self.params = params
        self.claims: list[dict[str, Any]] = []
        self.ends: dict[int, dict[str, Any]] = {}
        self.grid_key: tuple[str, ...] | None = None  # the engine's hash of its grid point
        self.engine_run: Any = None  # its SweepRun, rebuilt when a record changes it
        self.bayes_run: Any = None  # the same as bayes reads it (jobs/sweeps/store/engine.py)
        self.bayes_facts: Any = None  # what a bayes proposal reads of it (bayes.py)

    @property
    def k(self) -> int:
        return len(self.claims) - 1

    @property
    def last_end(self) -> dict[str, Any] | None:
        return self.ends.get(self.k)

    @property
    def state(self) -> str:
        end = self.last_end
        return "running" if end is None else str(end["state"])

    @property
    def crashes(self) -> int:
        return sum(1 for e in self.ends.values() if e["state"] == "crashed")

    def queued(self, max_retries: int) -> bool:
        state = self.state
        return state == "preempted" or (state == "crashed" and self.crashes <= max_retries)

    def done(self, max_retries: int) -> bool:
        return self.state in DONE_STATES and not self.queued(max_retries)


# A pending proposal is stale, and dropped, once more than this many attempts ended after it was
# made: the next claim then proposes from the results as they are (docs/sweeps.md).
STALE_AFTER_ENDS = 2


@dataclass
class Ahead:
    """The proposals made ahead that are still pending, by id in the order made, and how many
    attempts have ended (each attempt's first end record counted once)."""

    ended: int = 0
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        made_at = record.get("ended")
        well_formed = isinstance(record.get("id"), str) and isinstance(record.get("params"), dict)
        if well_formed and isinstance(made_at, int) and self.ended - made_at <= STALE_AFTER_ENDS:
            self.pending[record["id"]] = record

    def one_more_ended(self) -> None:
        self.ended += 1
        stale = [i for i, r in self.pending.items() if self.ended - r["ended"] > STALE_AFTER_ENDS]
        for proposal_id in stale:
            del self.pending[proposal_id]


class EndedRun(Protocol):
    """What the broken-sweep counts read of a run (a FoldedRun; the agent's rules take the same)."""

    @property
    def run_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def last_end(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Failure:
    """A failed run as the broken-sweep rule names it: its id and its last end record."""

    run_id: str
    last_end: dict[str, Any]

    def key(self) -> tuple[float, str]:
        """The latest end first, ties by run id: the same run whatever order the runs are read in
        (a snapshot's head and the journal after it, or a full replay)."""
        at = self.last_end.get("at")
        number_at = at if isinstance(at, (int, float)) and not isinstance(at, bool) else 0.0
        return float(number_at), self.run_id


@dataclass(frozen=True)
class Outcomes:
    """What the broken-sweep rule (agent/rules.py) reads of a sweep's runs, as counts that a
    snapshot's head keeps for the runs it leaves unread: runs that worked (finished or stopped),
    failed, failed after logging an epoch, the last failed run, and the running runs' ids."""

    scored: int = 0
    failed: int = 0
    failed_trained: int = 0
    last_failed: Failure | None = None
    running: tuple[str, ...] = ()

    def plus(self, other: Outcomes) -> Outcomes:
        lasts = [f for f in (self.last_failed, other.last_failed) if f is not None]
        return Outcomes(
            self.scored + other.scored,
            self.failed + other.failed,
            self.failed_trained + other.failed_trained,
            max(lasts, key=Failure.key) if lasts else None,
            self.running + other.running,
        )


def outcomes(runs: Iterable[EndedRun]) -> Outcomes:
    """The ``Outcomes`` of ``runs`` (pure: the runs' states and last end records)."""
    scored = failed = trained = 0
    last: Failure | None = None
    running = []
    for run in runs:
        state = run.state
        if state in SCORED_STATES:
            scored += 1
        elif state == "failed":
            end = run.last_end or {}
            failed += 1
            trained += bool(end.get("epochs"))
            mine = Failure(run.run_id, end)
            last = mine if last is None or mine.key() > last.key() else last
        elif state == "running":
            running.append(run.run_id)
    return Outcomes(scored, failed, trained, last, tuple(running))


@dataclass(frozen=True)
class Unread:
    """The runs of a snapshot that ended and are not queued, left unread (snapshot.py reads them
    when something asks for every run): their number, how many are in each state, how many are
    done (all, unless an end record named a state of no known kind), their ``Outcomes``, and in
    a grid sweep the grid points they hold (grid_taken.py). A claim needs no more."""

    count: int
    done: int
    states: dict[str, int]
    outcomes: Outcomes = Outcomes()
    grid: GridHead | None = None


@dataclass
class Fold:
    """The state of a sweep: its runs, the few still open, and whether the metric's target was hit.

    ``goal``, ``target`` and ``max_retries`` come from the sweep's definition and settings; they
    decide what a record means (a finished run at the target ends the search; a crash with
    retries left is queued)."""

    goal: str = "minimize"
    target: float | None = None
    max_retries: int = 2
    # the runs read, by id, in the order of their first claim
    runs: dict[str, FoldedRun] = field(default_factory=dict)
    # the running and queued runs: the only ones a claim has to look at one by one
    open: dict[str, FoldedRun] = field(default_factory=dict)
    target_hit: bool = False
    # done runs of a snapshot that are not in ``runs`` (None: every run is)
    unread: Unread | None = None
    ahead: Ahead = field(default_factory=Ahead)  # bayes proposals made ahead, still pending

    @property
    def run_count(self) -> int:
        """Every run of the sweep, read or not."""
        return len(self.runs) + (self.unread.count if self.unread else 0)

    metric_name: str | None = None  # only for words: which metric the target is of

    def reaches_target(self, end: dict[str, Any]) -> bool:
        """Whether an end record is a finished run whose metric reached the target."""
        metric = number(end.get("metric"))
        # NaN and the infinities never reach a target: they are never a best value
        if end.get("state") != "finished" or self.target is None or not is_rankable(metric):
            return False
        return metric >= self.target if self.goal == "maximize" else metric <= self.target

    def target_reached(self) -> tuple[str, float] | None:
        """The run that reached the metric's target first (the one that ended the search) and
        its value; None while no run has, or while that run is among those a snapshot left unread."""
        if not self.target_hit:
            return None
        reached = [
            (end.get("at") or 0.0, run_id, number(end["metric"]))
            for run_id, run in self.runs.items()
            for end in run.ends.values()
            if self.reaches_target(end)
        ]
        if not reached:  # the snapshot said so but its runs do not: say nothing rather than guess
            return None
        _, run_id, value = min(reached, key=lambda r: r[0])
        return run_id, value

    def target_line(self) -> str | None:
        """``run R reached the target: NAME=V (target >= T)``, or None while no run has."""
        reached = self.target_reached()
        return None if reached is None else self.target_words(*reached)

    def target_words(self, run_id: str, value: float) -> str:
        """``target_line``'s words for run ``run_id`` at ``value``."""
        sign = ">=" if self.goal == "maximize" else "<="
        return (
            f"run {run_id} reached the target: {self.metric_name or 'metric'}={value:g} "
            f"(metric.target {sign} {self.target:g})"
        )

    def tally(self) -> tuple[Counter[str], int, int]:
        """(runs by state, done runs, queued runs), unread runs included by their counts."""
        states: Counter[str] = Counter()
        done = queued = 0
        if self.unread is not None:
            states.update(self.unread.states)
            done = self.unread.done
        for run in self.runs.values():
            states[run.state] += 1
            done += run.done(self.max_retries)
            queued += run.queued(self.max_retries)
        return states, done, queued

    def outcomes(self) -> Outcomes:
        """The ``Outcomes`` of every run, unread runs included by their counts: with a snapshot's
        head, a loop over the open runs and those after it only. Those of a full replay for any
        journal agents wrote; a journal edited by hand whose records after the snapshot name a
        run the head left unread is seen as it is once every run is read (``apply``)."""
        seen = outcomes(self.runs.values())
        return seen if self.unread is None else seen.plus(self.unread.outcomes)

    def reopen(self) -> None:
        """Rebuild ``open`` from ``runs`` (after loading runs folded elsewhere: a snapshot)."""
        self.open = {
            run_id: run
            for run_id, run in self.runs.items()
            if run.state in ("running", "preempted", "crashed")
            and (run.state == "running" or run.queued(self.max_retries))
        }


def apply(fold: Fold, records: list[dict[str, Any]]) -> Fold:
    """``fold`` with ``records`` applied, in order. The fold is updated in place and returned:
    a replay of 20,000 runs cannot afford a copy per record.

    Records that make no sense are ignored, never fatal: a claim of an unknown run without its
    params, a claim of an attempt out of order, an end of an unknown run or without an attempt
    index (``k``). A second end of one attempt is ignored (the first one stands).

    With runs ``unread`` (a snapshot's runs that are not open), a claim of the first attempt
    (k = 0) of a run not in ``runs`` makes a new run: run ids are made by an exclusive create of
    the run's folder, so in a journal agents wrote it is one. A journal edited by hand can reuse
    a done run's id: the shell reads every run and replays the records after the snapshot again
    before anything reads them all (journal_fold.py), which gives a full replay's answer."""
    for record in records:
        _apply_one(fold, record)
    return fold


def _apply_one(fold: Fold, record: dict[str, Any]) -> None:
    kind = record.get("t")
    if kind == "propose":
        fold.ahead.add(record)
        return
    run_id = record.get("run")
    if not isinstance(run_id, str) or kind not in ("claim", "end"):
        return  # a record of no kind this version knows: ignored on purpose (module docstring)
    run = fold.runs.get(run_id)
    if kind == "claim":
        if run is None:
            if not isinstance(record.get("params"), dict):
                return
            run = fold.runs[run_id] = FoldedRun(run_id, record["params"])
            fold.ahead.pending.pop(str(record.get("proposal")), None)
        if record.get("k") == len(run.claims):
            run.claims.append(record)
            run.engine_run = run.bayes_run = run.bayes_facts = None
    elif run is not None and isinstance(record.get("k"), int):
        if record["k"] not in run.ends:
            fold.ahead.one_more_ended()
        run.ends.setdefault(record["k"], record)
        run.engine_run = run.bayes_run = run.bayes_facts = None
        fold.target_hit |= fold.reaches_target(record)
    else:
        return
    if run.state == "running" or run.queued(fold.max_retries):
        fold.open[run.run_id] = run
    else:
        fold.open.pop(run.run_id, None)
