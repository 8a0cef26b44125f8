"""Every grid point run exactly once: bench/agents_at_once.py's check, from the sweep's own files.

Two independent witnesses are read, and each must say the same:

* the journal (``journal.jsonl``, read record by record): one first claim per grid point, no
  attempt claimed or ended twice, every run's last attempt ended ``finished`` and no other one,
  its metric the point's own value;
* the run folders (``runs/<id>/``): exactly one W&B run per folder that exited 0, whose config
  names the folder's grid point and whose history logged the point's value once. A killed
  attempt's W&B run may stay beside it (no exit record): it is counted, never as finished.

Plus the store's own view (every run finished, the sweep complete), the lease files (none left)
and the claim tokens (one per attempt after the first: another agent's resume).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store.journal import Journal
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords

METRIC = "m"  # what the bench's program logs: its grid point's value


def journal_facts(sweep: Path, points: int) -> tuple[dict[str, Any], list[str], dict[str, int]]:
    """(facts, problems, {run id: its grid point}) from the journal's records."""
    records = Journal(sweep / "journal.jsonl").read_new()
    claims: dict[str, list[int]] = defaultdict(list)
    ends: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    point_of: dict[str, int] = {}
    problems = []
    for record in records:
        run, k = record["run"], record["k"]
        if record["t"] == "claim":
            if k in claims[run]:
                problems.append(f"attempt {k} of run {run} claimed twice")
            claims[run].append(k)
            if k == 0:
                point_of[run] = record["params"]["x"]["value"]
        elif record["t"] == "end":
            if k in ends[run]:
                problems.append(f"attempt {k} of run {run} ended twice")
            ends[run][k] = record
    per_point = Counter(point_of.values())
    if sorted(per_point) != list(range(points)) or set(per_point.values()) != {1}:
        twice = sorted(p for p, n in per_point.items() if n > 1)
        missing = sorted(set(range(points)) - set(per_point))
        problems.append(f"first claims per point: twice {twice[:10]}, never {missing[:10]}")
    finished_ends = 0
    for run, ks in claims.items():
        last = max(ks)
        states = {k: e["state"] for k, e in ends[run].items()}
        finished = [k for k, s in states.items() if s == "finished"]
        finished_ends += len(finished)
        if finished != [last]:
            problems.append(f"run {run}: attempts ended {states}, last attempt {last}")
        elif ends[run][last].get("metric") != point_of.get(run):
            problems.append(f"run {run}: metric {ends[run][last].get('metric')} for its point")
    facts = {
        "records": len(records),
        "claims": sum(len(ks) for ks in claims.values()),
        "runs": len(claims),
        "finished_end_records": finished_ends,
        "crashed_end_records": sum(
            1 for by_k in ends.values() for e in by_k.values() if e["state"] == "crashed"
        ),
        "reconciled_end_records": sum(
            1 for by_k in ends.values() for e in by_k.values() if e.get("reconciled_from")
        ),
        "resumed_attempts": sum(len(ks) - 1 for ks in claims.values()),
    }
    return facts, problems, point_of


def folder_facts(sweep: Path, point_of: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    """(facts, problems) from the run folders' W&B runs."""
    problems = []
    folders = sorted(p for p in (sweep / "runs").iterdir() if p.is_dir())
    if {p.name for p in folders} != set(point_of):
        problems.append(f"{len(folders)} run folders for {len(point_of)} runs in the journal")
    segments = unfinished = 0
    finished_points: Counter[int] = Counter()
    for folder in folders:
        records = RunRecords(folder)
        records.refresh(final=True)
        segments += len(records.segments)
        done = [s for s in records.segments if s.exit_code == 0]
        unfinished += len(records.segments) - len(done)
        if len(done) != 1:
            problems.append(f"run folder {folder.name}: {len(done)} W&B runs exited 0")
            continue
        config = json.loads(done[0].config.get(("x",), "null"))
        logged = [json.loads(row[METRIC]) for row in done[0].history.values() if METRIC in row]
        point = point_of.get(folder.name)
        if config != point or logged != [point]:
            problems.append(f"run folder {folder.name}: config x={config}, logged {logged}")
        finished_points[config] += 1
    twice = [p for p, n in finished_points.items() if n > 1]
    if twice:
        problems.append(f"points finished in two run folders: {sorted(twice)[:10]}")
    facts = {
        "run_folders": len(folders),
        "wandb_runs": segments,
        "wandb_runs_without_exit": unfinished,
        "points_finished_in_folders": len(finished_points),
    }
    return facts, problems


def check_exactly_once(sweep: Path, points: int) -> tuple[dict[str, Any], list[str]]:
    """Everything above; no problems means every point ran to the end exactly once."""
    facts, problems, point_of = journal_facts(sweep, points)
    more, folder_problems = folder_facts(sweep, point_of)
    facts.update(more)
    problems += folder_problems
    opened = store.open_sweep(sweep)
    counts = {state: n for state, n in opened.counts(opened.runs(read_ended=False)).items() if n}
    if counts != {"finished": points} or not opened.complete():
        problems.append(f"the store says {counts}, complete: {opened.complete()}")
    facts["lease_files_left"] = len(list((sweep / "leases").iterdir()))
    facts["claim_tokens"] = len(list((sweep / "claims").iterdir()))
    if facts["lease_files_left"]:
        problems.append(f"{facts['lease_files_left']} lease file(s) left in {sweep / 'leases'}")
    if facts["claim_tokens"] != facts["resumed_attempts"]:
        problems.append(
            f"{facts['claim_tokens']} claim tokens for {facts['resumed_attempts']} resumed attempts"
        )
    return facts, problems
