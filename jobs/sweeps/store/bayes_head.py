"""What a bayes proposal reads of the runs a snapshot's head leaves unread, kept in a section of
the snapshot after its body, so that a fresh bayes claim reads neither the body nor those runs.

A bayes proposal reads of each run only its ``BayesFacts`` (bayes.py): its swept values, its state
as the engine names it, and its metric's best, worst and latest valid value. A done run's facts
never change, and they are all a claim needs of it, while reading the body (every run's records)
and working the facts out again cost most of a fresh bayes claim at 20,000 runs (bench/RESULTS.md).
So the snapshot's writer keeps them, per unread run, in one JSON line::

    {"fp": fingerprint, "ids": [run_id, ...], "order": [place in the fold, ...],
     "facts": [[values, state, best, worst, latest], ...]}\\n

``fp`` names what the facts were worked out for (the definition's parameters and metric): a
reader with another definition reads every run instead. The header's ``facts_len`` and
``facts_crc`` say where the section ends and check it; a section that is absent, torn, of another
definition, or that records after the snapshot contradict (they name one of its runs: a journal
edited by hand) is not used, and the proposal reads every run (journal_fold.py).
Values are kept as floats (how ``BayesProposer._normalised`` reads them: the same arrays).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sweepkit.jobs.sweeps.store.bayes import BayesFacts
from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.jobs.sweeps.store.snapshot_format import paused_gc
from sweepkit.train import json_values

# (fingerprint, what bayes reads of a run): how a bayes sweep's snapshot writer works the facts out
FactsIndex = tuple[str, Callable[[FoldedRun], BayesFacts]]
# the unread runs' facts, as read: (place in the fold's order, run id, facts)
Placed = list[tuple[int, str, BayesFacts]]


def fingerprint(definition: Mapping[str, Any]) -> str:
    """A digest of what the facts depend on: the swept parameters and the metric (name, goal)."""
    kept = {"parameters": definition.get("parameters"), "metric": definition.get("metric")}
    text = json.dumps(kept, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def section(unread: Iterable[tuple[int, FoldedRun]], index: FactsIndex | None) -> bytes:
    """The section's bytes for the ``unread`` runs (with their places in the fold's order); empty
    where there is none to keep (not a bayes sweep, or a run whose values are not numbers: the
    proposal then fails as the engine's does, on every run read)."""
    if index is None:
        return b""
    name, facts_of = index
    ids, order, rows, swept = [], [], [], []
    try:
        for place, run in unread:
            facts = facts_of(run)
            values = [float(v) for v in facts.values]
            swept.append(values)
            ids.append(run.run_id)
            order.append(place)
            rows.append([values, facts.state, facts.best, facts.worst, facts.latest])
    except (TypeError, ValueError, OverflowError):
        return b""
    # whether every value is a finite float, as nearly always: then read back as it is
    finite = all(math.isfinite(v) for row_values in swept for v in row_values)
    doc = {"fp": name, "finite": finite, "ids": ids, "order": order, "facts": rows}
    return json_values.dumps(doc, separators=(",", ":")).encode() + b"\n"


def header_fields(data: bytes) -> dict[str, int]:
    """The snapshot header's fields for a section of these bytes (none for no section)."""
    return {"facts_len": len(data), "facts_crc": zlib.crc32(data)} if data else {}


def load(data: bytes, header: Mapping[str, Any], name: str) -> Placed | str:
    """The facts in a section, or why they cannot be used."""
    if zlib.crc32(data) != header.get("facts_crc"):
        return "its bayes facts' checksum does not match (a torn or replaced file)"
    doc = json.loads(data)
    if doc["fp"] != name:
        return "its bayes facts are of another definition"
    number = json_values.number
    kept = tuple if doc["finite"] is True else lambda values: tuple(number(v) for v in values)
    with paused_gc():  # 20,000 facts, none cyclic: the collector would rescan them
        return [
            (place, run_id, BayesFacts(kept(values), state, best, worst, latest))
            for place, run_id, (values, state, best, worst, latest) in zip(
                doc["order"], doc["ids"], doc["facts"], strict=True
            )
        ]


class KeptFacts:
    """A snapshot's runs as bayes reads them, in the fold's order: the unread ones as their facts,
    the head's open ones (changed in place by later records) by their place; made once per
    snapshot read, so that an agent's later claims do not read the facts again."""

    def __init__(self, unread: Placed, head_open: Iterable[tuple[int, FoldedRun]]):
        placed: list[tuple[int, FoldedRun | BayesFacts]] = [(p, facts) for p, _, facts in unread]
        self.ids = frozenset(run_id for _, run_id, _ in unread)  # the unread runs'
        opened = []
        for place, run in head_open:
            placed.append((place, run))
            opened.append(run.run_id)
        self.opened = frozenset(opened)
        placed.sort(key=lambda item: item[0])
        self.snapshot_runs = [item for _, item in placed]

    def every(self, runs: Iterable[FoldedRun]) -> list[FoldedRun | BayesFacts]:
        """Every run in the order of a full replay's fold: the snapshot's, then ``runs`` (the
        fold's) claimed after it."""
        return self.snapshot_runs + [run for run in runs if run.run_id not in self.opened]
