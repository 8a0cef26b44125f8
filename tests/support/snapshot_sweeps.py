"""Sweeps with a history for the journal snapshot's tests (tests/jobs/sweeps/test_journal_snapshot.py,
tests/jobs/sweeps/store/test_snapshot_head.py): claims and ends by agents on other hosts in every
state, and the facts a reader knows, to compare a reader from the snapshot with a full replay."""

from __future__ import annotations

import json
from typing import Any

from sweepkit.jobs.sweeps import status, store
from sweepkit.jobs.sweeps.store import snapshot_format
from sweepkit.jobs.sweeps.store.fold import Fold
from sweepkit.jobs.sweeps.store.grid_taken import GridIndex

DEFINITION = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
    "parameters": {"lr": {"min": 0.0, "max": 1.0}, "width": {"values": [8, 16, 32]}},
}
# finished, failed and stopped runs are done; crashed (one retry) and preempted ones are queued
STATES = ["finished", "failed", "crashed", "preempted", "stopped", "finished"]


def work(sweep: store.LocalSweep, n: int, seed: int, leave_running: int = 2) -> None:
    """``n`` claims by agents on other hosts (no pid of theirs to probe here), each ended in turn
    with finished, failed, crashed or preempted (those two come back as attempt 1), except the
    last ``leave_running``."""
    for i in range(n):
        me = store.AgentIdentity(host=f"node{seed}-{i}", pid=10_000 + i)
        claim = sweep.claim(me)
        assert isinstance(claim, store.Claim)
        if i >= n - leave_running:
            continue
        metric = (seed * 31 + i * 7) % 13 / 13
        sweep.finish(
            claim,
            me,
            STATES[(seed + i) % len(STATES)],
            metric=metric,
            history=[metric / 2, metric],
            epochs=2,
            metric_source="wandb",
            summary={"acc": metric},
        )


def facts(sweep: store.LocalSweep) -> dict[str, Any]:
    """What a reader knows: every folded run, the views status shows, counts, best run."""
    runs = dict(sweep.refresh())  # a copy: the views below read on, and other agents append
    # first what the snapshot's index says (state, attempt, crashes), then the records parsed
    folded = {rid: (r.state, r.k, r.crashes) for rid, r in runs.items()}
    folded_open = sorted(sweep.open_runs())
    records = {rid: (r.params, r.claims, r.ends) for rid, r in runs.items()}
    views = sweep.runs(read_ended=False)
    best = status.best_run(sweep, views)
    return {
        "order": list(runs),
        "folded": folded,
        "folded_open": folded_open,
        "runs": {rid: (r.state, r.k, r.crashes, *records[rid]) for rid, r in runs.items()},
        "views": [
            (v.run_id, v.state, v.metric, v.epoch_count, v.attempts, v.queued, v.summary)
            for v in views
        ],
        "counts": sweep.counts(views),
        "open": list(sweep.open_runs()),
        "remaining": sweep.remaining(),
        "complete": sweep.complete(),
        "best": best.run_id if best else None,
    }


def from_head(prefix: Fold, grid: GridIndex | None = None) -> Fold:
    """A fresh reader's fold: the head of a snapshot of ``prefix`` (made and read in memory), its
    other runs unread; ``grid``: a grid sweep's order, whose points taken the head keeps."""
    data = snapshot_format.dump(
        prefix.runs,
        list(prefix.open),
        0,
        (0, 0),
        prefix.target_hit,
        prefix.max_retries,
        prefix.ahead,
        grid=grid,
    )
    line, rest = data.split(b"\n", 1)
    header = json.loads(line)
    doc = snapshot_format.load_head(header, rest[: header["head_len"]])
    assert isinstance(doc, dict)
    fold = Fold(max_retries=prefix.max_retries)
    fold.runs = {run.run_id: run for _, run in snapshot_format.open_runs(doc)}
    fold.open = dict(fold.runs)
    fold.unread = snapshot_format.head_unread(doc)
    fold.ahead = snapshot_format.head_ahead(json.loads(json.dumps(doc)))
    return fold
