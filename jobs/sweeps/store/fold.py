"""The journal's records folded into runs: the sweep's state as a pure function of its records.

Two records exist. ``claim`` {run, k, params (only when k = 0), at, agent, host, pid, slurm} hands
attempt k of a run to an agent. ``end`` {run, k, state, metric, history, epochs, metric_source,
summary, exit_code, error, at; ``nonfinite`` where its metric, history or summary holds NaN or inf,
which JSON holds as W&B's strings: store/end_values.py reads them back} closes that attempt with
finished, failed, stopped, preempted or crashed. A run's state is that of its last attempt:
``running`` until an ``end`` closes it. Preempted runs, and crashed runs with retries left, are
*queued*: handed out again under the same run id and folder, before any new run.

No file or OS access here (an import-linter contract holds it to that): the journal and the
snapshot are read by the store's shell, which hands the records to ``apply``, and the function
that reads a snapshot's settled runs when they are first needed (``Settled.load``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sweepkit.jobs.sweeps.vocabulary import FINAL_STATES, is_rankable
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

    def final(self, max_retries: int) -> bool:
        return self.state in FINAL_STATES and not self.queued(max_retries)


@dataclass
class Settled:
    """Runs a snapshot holds as settled (ended for good: neither running nor queued), not read yet.
    ``final``: how many of them are final (all, unless a record named a state of no known kind).
    ``states``: how many are in each state. ``order``: the fold's order (first claim) of the runs
    read with them, so that the whole fold keeps the journal's order once they are read.
    ``maybe_has``: False when a run id is surely not among them (so a new run needs no read).
    ``load``: them, each with its place in the fold's order."""

    count: int
    final: int
    states: dict[str, int]
    order: dict[str, int]
    maybe_has: Callable[[str], bool]
    load: Callable[[], list[tuple[int, FoldedRun]]]


class Runs(MutableMapping[str, FoldedRun]):
    """The fold's runs by id, in the order of their first claim. Runs a snapshot holds as settled
    may be left unread (``defer``): a claim needs only the open runs and the counts, so they are
    read only when something asks for a run among them, or for all runs (status, report, a bayes
    or grid proposal)."""

    def __init__(self, runs: dict[str, FoldedRun] | None = None):
        self._runs: dict[str, FoldedRun] = dict(runs or {})
        self.settled: Settled | None = None

    def defer(self, settled: Settled) -> None:
        self.settled = settled

    def read(self) -> dict[str, FoldedRun]:
        """The runs read so far (all of them once nothing is deferred)."""
        return self._runs

    def _load(self) -> None:
        settled, self.settled = self.settled, None
        if settled is None:
            return
        placed = [(settled.order[i], r) for i, r in self._runs.items() if i in settled.order]
        merged = {r.run_id: r for _, r in sorted(settled.load() + placed, key=lambda p: p[0])}
        merged.update(self._runs)  # runs claimed after the snapshot come last, in their order
        self._runs = merged

    def _needs(self, run_id: str) -> bool:
        return (
            self.settled is not None and run_id not in self._runs and self.settled.maybe_has(run_id)
        )

    def __getitem__(self, run_id: str) -> FoldedRun:
        if self._needs(run_id):
            self._load()
        return self._runs[run_id]

    def get(self, run_id: str, default: Any = None) -> Any:
        if self._needs(run_id):
            self._load()
        return self._runs.get(run_id, default)

    def __contains__(self, run_id: object) -> bool:
        if isinstance(run_id, str) and self._needs(run_id):
            self._load()
        return run_id in self._runs

    def __setitem__(self, run_id: str, run: FoldedRun) -> None:
        if self._needs(run_id):
            self._load()
        self._runs[run_id] = run

    def __delitem__(self, run_id: str) -> None:
        self._load()
        del self._runs[run_id]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs) + (self.settled.count if self.settled else 0)

    def values(self) -> _Values:  # type: ignore[override]
        return _Values(self)

    def items(self) -> _Items:  # type: ignore[override]
        return _Items(self)


class _Values:
    """``Runs.values()``: reads deferred runs only when iterated (a random proposal takes the
    runs and never looks at them)."""

    def __init__(self, runs: Runs):
        self._runs = runs

    def __iter__(self) -> Iterator[FoldedRun]:
        self._runs._load()
        return iter(self._runs.read().values())

    def __len__(self) -> int:
        return len(self._runs)


class _Items(_Values):
    def __iter__(self) -> Iterator[tuple[str, FoldedRun]]:  # type: ignore[override]
        self._runs._load()
        return iter(self._runs.read().items())


@dataclass
class Fold:
    """The state of a sweep: its runs, the few still open, and whether the metric's target was hit.

    ``goal``, ``target`` and ``max_retries`` come from the sweep's definition and settings; they
    decide what a record means (a finished run at the target ends the search; a crash with
    retries left is queued)."""

    goal: str = "minimize"
    target: float | None = None
    max_retries: int = 2
    runs: Runs = field(default_factory=Runs)
    # the running and queued runs: the only ones a claim has to look at one by one
    open: dict[str, FoldedRun] = field(default_factory=dict)
    target_hit: bool = False
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
        its value; None while no run has. Reads the runs a snapshot holds as settled."""
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
        if reached is None:
            return None
        run_id, value = reached
        sign = ">=" if self.goal == "maximize" else "<="
        return (
            f"run {run_id} reached the target: {self.metric_name or 'metric'}={value:g} "
            f"(metric.target {sign} {self.target:g})"
        )

    def tally(self) -> tuple[Counter[str], int, int]:
        """(runs by state, final runs, queued runs), with no read of deferred settled runs."""
        states: Counter[str] = Counter()
        final = queued = 0
        settled = self.runs.settled
        if settled is not None:
            states.update(settled.states)
            final = settled.final
        for run in self.runs.read().values():
            states[run.state] += 1
            final += run.final(self.max_retries)
            queued += run.queued(self.max_retries)
        return states, final, queued

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
    number. A second end of one attempt is ignored (the first one stands)."""
    for record in records:
        _apply_one(fold, record)
    return fold


def _apply_one(fold: Fold, record: dict[str, Any]) -> None:
    run_id = record.get("run")
    if not isinstance(run_id, str):
        return
    run = fold.runs.get(run_id)
    if record["t"] == "claim":
        if run is None:
            if not isinstance(record.get("params"), dict):
                return
            run = fold.runs[run_id] = FoldedRun(run_id, record["params"])
        if record.get("k") == len(run.claims):
            run.claims.append(record)
            run.engine_run = run.bayes_run = run.bayes_facts = None
    elif record["t"] == "end" and run is not None and isinstance(record.get("k"), int):
        run.ends.setdefault(record["k"], record)
        run.engine_run = run.bayes_run = run.bayes_facts = None
        fold.target_hit |= fold.reaches_target(record)
    else:
        return
    if run.state == "running" or run.queued(fold.max_retries):
        fold.open[run.run_id] = run
    else:
        fold.open.pop(run.run_id, None)
