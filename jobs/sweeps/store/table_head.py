"""What ``status``'s table shows of a big sweep's runs, folded so that a snapshot's head can keep
it for the runs it leaves unread (issue 29): ``status`` then reads the head and the journal after
it, never the snapshot's body, and prints what a full replay prints.

A table of more than ``TABLE_RUNS`` runs shows, of all of them: how many there are and how many in
each state; the best ``BEST_SHOWN`` scored runs (by ``rank_key``, ties by the fold's order); the
running and queued runs; the last ``TABLE_RUNS`` failed or crashed runs (by start, ties by order);
each distinct error's count and first three runs; the parameter names the runs carry, in the order
of the first run that carries each; and the run that reached the metric's target first. ``Shown``
is that, for any set of runs, each run placed by its order in the fold: two sets' ``Shown`` merge
(``merged``) into the ``Shown`` of their union. So the head keeps ``Shown`` of the unread runs
(``head_doc``: the records of the runs it names, to rebuild their views exactly as a full replay
does), and status merges it with ``Shown`` of the runs it read.

The head's part is bounded whatever the number of runs: at most ``BEST_SHOWN + TABLE_RUNS`` runs'
records, ``MAX_ERRORS`` error lines and ``MAX_NAMES`` parameter names; a sweep with more distinct
errors or names, or with an unread run whose end record does not say what the table shows of it
(its folder would be read), gets no table in its head: status then reads every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.display import LINE_CHARS, shown
from sweepkit.jobs.sweeps.failure import error_line
from sweepkit.jobs.sweeps.state import RunView
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun
from sweepkit.jobs.sweeps.store.reader import RunReader
from sweepkit.jobs.sweeps.vocabulary import SCORED_STATES, is_rankable, rank_key
from sweepkit.train.config import flatten
from sweepkit.train.json_values import number

TABLE_RUNS = 40  # above this, the table lists the runs worth seeing (status --all: every run)
BEST_SHOWN = 10
MAX_ERRORS = 50  # distinct error lines a head keeps; more: no table in the head
MAX_NAMES = 200  # parameter names a head keeps; more: no table in the head
FAILED_STATES = ("failed", "crashed")

Placed = tuple[int, RunView]  # a run's view and its place in the fold's order


@dataclass
class Shown:
    """What the table shows of a set of runs (module docstring); lists ordered as shown."""

    count: int = 0
    states: Counter[str] = field(default_factory=Counter)
    scored: int = 0
    best: list[Placed] = field(default_factory=list)  # best first, at most BEST_SHOWN
    open: list[Placed] = field(default_factory=list)  # running or queued, by start
    failed: int = 0
    last_failed: list[Placed] = field(default_factory=list)  # by start, at most TABLE_RUNS
    # (state, error line) -> [count, the first three runs as (order, run id)], first seen first
    errors: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    names: dict[str, tuple[int, int]] = field(default_factory=dict)  # -> (order, place in run)
    target: tuple[Any, str, float] | None = None  # (end time, run id, value), the earliest

    def best_run(self) -> RunView | None:
        """The best-ranked run (``vocabulary.best_of``: scored, rankable, first of equals)."""
        top = self.best[0][1] if self.best else None
        return top if top is not None and is_rankable(top.metric) else None


def _by_start(placed: Placed) -> tuple[str, int]:
    return placed[1].started_at or "", placed[0]


def shown_of(runs: Iterable[tuple[int, FoldedRun, RunView]], fold: Fold) -> Shown:
    """``Shown`` of ``runs`` (each with its order and its view as status reads it); the target is
    read from every end of the runs' records (``Fold.reaches_target``), as ``Fold.target_reached``
    does."""
    out, scored, failed = Shown(), [], []
    for order, run, view in runs:
        out.count += 1
        out.states[view.state] += 1
        if view.metric is not None and view.state in SCORED_STATES:
            scored.append((rank_key(view.metric, fold.goal), order, view))
        if view.state == "running" or view.queued:
            out.open.append((order, view))
        elif view.state in FAILED_STATES:
            failed.append((order, view))
        if view.state in FAILED_STATES and view.error:
            group = out.errors.setdefault(
                (view.state, shown(error_line(view.error), LINE_CHARS)), [0, []]
            )
            group[0] += 1
            if len(group[1]) < 3:
                group[1].append((order, view.run_id))
        for i, name in enumerate(flatten(view.params)):
            out.names.setdefault(name, (order, i))
        for end in run.ends.values():
            if fold.reaches_target(end):
                mine = (end.get("at") or 0.0, run.run_id, number(end["metric"]))
                out.target = mine if out.target is None else min(out.target, mine)
    scored.sort(key=lambda s: (s[0], s[1]))
    out.scored, out.best = len(scored), [(o, v) for _, o, v in scored[:BEST_SHOWN]]
    out.open.sort(key=_by_start)
    failed.sort(key=_by_start)
    out.failed, out.last_failed = len(failed), failed[-TABLE_RUNS:]
    return out


def merged(a: Shown, b: Shown, goal: str) -> Shown:
    """``Shown`` of the union of two disjoint sets of runs."""
    errors: dict[tuple[str, str], list[Any]] = {}
    for key in [*a.errors, *b.errors]:
        if key not in errors:
            left, right = a.errors.get(key, [0, []]), b.errors.get(key, [0, []])
            errors[key] = [left[0] + right[0], sorted([*left[1], *right[1]])[:3]]
    names = dict(a.names)
    for name, at in b.names.items():
        names[name] = min(at, names.get(name, at))
    targets = [t for t in (a.target, b.target) if t is not None]
    return Shown(
        count=a.count + b.count,
        states=a.states + b.states,
        scored=a.scored + b.scored,
        best=sorted([*a.best, *b.best], key=lambda p: (rank_key(p[1].metric, goal), p[0]))[
            :BEST_SHOWN
        ],
        open=sorted([*a.open, *b.open], key=_by_start),
        failed=a.failed + b.failed,
        last_failed=sorted([*a.last_failed, *b.last_failed], key=_by_start)[-TABLE_RUNS:],
        errors=dict(sorted(errors.items(), key=lambda kv: kv[1][1][0][0])),
        names=names,
        target=min(targets) if targets else None,
    )


# ----- the head's part: Shown of the runs a snapshot leaves unread -------------------------
def head_doc(fold: Fold, unread: list[tuple[int, FoldedRun]]) -> dict[str, Any] | None:
    """``Shown`` of the unread runs (each with its order) as the head keeps it, or None where the
    head cannot (module docstring: the table then reads every run)."""
    reader = RunReader(Path(), fold.metric_name, fold.goal, fold.max_retries)
    runs, placed = {}, []
    for order, run in unread:
        view = reader.ended_view(run)
        if view is None:
            return None
        runs[run.run_id] = run
        placed.append((order, run, view))
    part = shown_of(placed, fold)
    if part.open or len(part.errors) > MAX_ERRORS or len(part.names) > MAX_NAMES:
        return None
    named = {v.run_id: o for o, v in [*part.best, *part.last_failed]}
    return {
        "runs": [
            [o, r.params, r.claims, [r.ends[k] for k in sorted(r.ends)]]
            for r, o in ((runs[run_id], o) for run_id, o in named.items())
        ],
        "ids": list(named),
        "count": part.count,
        "states": dict(part.states),
        "scored": part.scored,
        "best": [v.run_id for _, v in part.best],
        "failed": part.failed,
        "last_failed": [v.run_id for _, v in part.last_failed],
        "errors": [
            [s, line, n, [list(i) for i in ids]] for (s, line), (n, ids) in part.errors.items()
        ],
        "names": [[name, o, i] for name, (o, i) in part.names.items()],
        "target": None if part.target is None else list(part.target),
    }


def from_head_doc(
    doc: dict[str, Any], view_of: Callable[[FoldedRun], RunView | None]
) -> Shown | None:
    """The head's ``Shown``, its runs' views rebuilt from their records by ``view_of`` (the
    reader's ``ended_view``); None if one cannot be."""
    views: dict[str, Placed] = {}
    for run_id, (order, params, claims, ends) in zip(doc["ids"], doc["runs"], strict=True):
        run = FoldedRun(run_id, params)
        run.claims, run.ends = claims, {int(e["k"]): e for e in ends}
        view = view_of(run)
        if view is None:
            return None
        views[run_id] = (int(order), view)
    target = doc["target"]
    return Shown(
        count=int(doc["count"]),
        states=Counter({str(k): int(n) for k, n in doc["states"].items()}),
        scored=int(doc["scored"]),
        best=[views[i] for i in doc["best"]],
        failed=int(doc["failed"]),
        last_failed=[views[i] for i in doc["last_failed"]],
        errors={
            (s, line): [int(n), [(int(o), str(i)) for o, i in ids]]
            for s, line, n, ids in doc["errors"]
        },
        names={str(name): (int(o), int(i)) for name, o, i in doc["names"]},
        target=None if target is None else (target[0], str(target[1]), target[2]),
    )
