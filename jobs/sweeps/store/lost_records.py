"""The claim records a journal lost, rebuilt from what the sweep folder shows.

A journal can lose its last records while the files they describe stay: a node dies after a
write its file server never flushed, or the journal is restored from a backup. The files are
evidence of the claims: a run's folder is made (by an exclusive create) when its first attempt
is handed out, and the agent writes the run's parameter file (``config-<run>.yaml``, which the
program reads as ``wandb agent`` gives it) into that folder before it starts the program; a
claim token ``claims/<run>.<k>`` is made (exclusively) when attempt ``k`` (k >= 1) of a queued
run is handed out, and that attempt started when the parameter file was written again after it.

A claim rebuilt here has no holder (``agent``, ``host`` and ``pid`` are None: nothing says who
held it) and says ``recovered``; its ``at`` is when its file was written. How the attempt ended
is then read as for any attempt without an end record (reconcile.py): at once from the run's own
records when they say it ended, else when its lease expired.

Pure: the store's shell reads the folder (recovery.py) and appends what this returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sweepkit.jobs.sweeps.store.fold import Fold

RECOVERED = "recovered"


@dataclass(frozen=True)
class FoundRun:
    """A run as its folder and claim tokens show it: ``params`` from its parameter file (None:
    not read, the journal has its first claim), ``attempts`` the attempts shown started, by their
    0-based index, each with when it was handed out."""

    run_id: str
    params: dict[str, Any] | None
    attempts: dict[int, float]


def claim_records(fold: Fold, found: Iterable[FoundRun]) -> list[dict[str, Any]]:
    """The claim records of the attempts found on disk that the fold lacks, in attempt order.
    Attempts are taken in order from the first the fold lacks and up to the first gap (a claim
    of attempt k follows the claim of attempt k - 1, fold.py); a run the fold lacks needs its
    parameters."""
    records = []
    for run in found:
        known = fold.runs.get(run.run_id)
        if known is None and run.params is None:
            continue
        k = 0 if known is None else len(known.claims)
        while k in run.attempts:
            record: dict[str, Any] = {
                "t": "claim",
                "run": run.run_id,
                "k": k,
                "at": run.attempts[k],
                "agent": None,
                "host": None,
                "pid": None,
                "pid_ns": None,
                "slurm": None,
                RECOVERED: True,
            }
            if k == 0:
                record["params"] = run.params
            records.append(record)
            k += 1
    return records


def gap_ends(fold: Fold, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """End records for the attempts of these runs (and of the open ones) that were handed out
    again though the fold has no end of them. Such an attempt ended queued, preempted or crashed;
    which one is lost, and it counts as crashed: the retries a sweep allows are never exceeded
    (a preempted run may be given up early, a crashing one is never run once more)."""
    records = []
    for run_id in dict.fromkeys([*run_ids, *fold.open]):
        run = fold.runs[run_id]
        for k in range(run.k):
            if k not in run.ends:
                records.append(
                    {
                        "t": "end",
                        "run": run_id,
                        "k": k,
                        "state": "crashed",
                        "at": run.claims[k + 1].get("at"),
                        "error": f"its end record was lost from the journal; attempt {k + 2} was "
                        "handed out after it, so it ended preempted or crashed: counted as crashed",
                        RECOVERED: True,
                    }
                )
    return records


def warning(sweep_dir: str, runs: int, recorded: bool) -> str:
    """The one line said when attempts were recovered: how many runs, where, and what to do."""
    then = (
        "they are written back to the journal now"
        if recorded
        else "the next agent writes them back to the journal"
    )
    return (
        f"sweepkit: warning: the journal {sweep_dir}/journal.jsonl lacks the claims of {runs} "
        f"run(s) that their folders in {sweep_dir}/runs and their claim tokens show (records lost: "
        f"a node died before its writes reached the disk, or the journal was restored from a "
        f"backup); they count as claimed and end as their own records say, none is run again; "
        f"{then}. If it happens again, check the file server of {sweep_dir}"
    )
