"""What a sweep report reads: the ``SweepSource`` model, filled from a local sweep folder here or
from W&B (``sweepkit.jobs.report.wandb_source``), and the provenance and rerun commands derived from it.

Render and the W&B source both stand on this module, so neither imports the ``report`` command.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.definition import build_command
from sweepkit.jobs.sweeps.definition.parameters import flatten
from sweepkit.jobs.sweeps.state import RunView
from sweepkit.jobs.sweeps.store import open_sweep
from sweepkit.jobs.sweeps.vocabulary import SCORED_STATES
from sweepkit.train.staging import file_digest


@dataclass
class Submission:
    job_id: str
    info: dict[str, Any]
    script_name: str
    script: str | None


@dataclass
class SweepSource:
    """Everything the report reads, from the local store or from W&B."""

    ref: str
    sweep_id: str
    definition: dict[str, Any]
    runs: list[RunView]
    path: Path | None = None
    created_at: str | None = None
    planned_runs: int | None = None
    definition_text: str | None = None
    submissions: list[Submission] = field(default_factory=list)


# A sweep of up to this many runs has every run's curve per epoch; a bigger one the best of them
# (and its running runs): each run's epochs are read from its own records, the rest of an ended
# run from its end record (status does the same).
EPOCH_RUNS = 40
EPOCH_BEST = 20


def load_local(path: Path) -> SweepSource:
    sweep = open_sweep(str(path))
    runs = sweep.runs(read_ended=False)
    for run in runs:
        if not run.record and run.run_dir is not None:  # run.json: provenance, timings
            run.record = sweep.metrics.run_json(run.run_dir)
            run.config = run.config or run.record.get("config") or {}
    read = {r.run_id for r in runs} if len(runs) <= EPOCH_RUNS else set(best_ids(sweep, runs))
    runs = [sweep.run_view(r.run_id) if r.run_id in read and not r.epochs else r for r in runs]
    source = SweepSource(
        ref=str(path),
        sweep_id=sweep.sweep_id,
        definition=dict(sweep.definition),
        runs=runs,
        path=Path(sweep.path),
        created_at=sweep.created_at,
        planned_runs=sweep.planned_runs(),
    )
    definition_file = Path(sweep.path) / "sweep.yaml"  # the text the engine reads, as written
    if definition_file.is_file():
        source.definition_text = definition_file.read_text()
    source.submissions = read_submissions(Path(sweep.path) / "slurm")
    return source


def best_ids(sweep: Any, runs: list[RunView]) -> list[str]:
    """The ``EPOCH_BEST`` best finished or stopped runs by the sweep's metric and goal."""
    scored = [r for r in runs if r.metric is not None and r.state in SCORED_STATES]
    scored.sort(key=lambda r: r.metric or 0.0, reverse=sweep.goal == "maximize")
    return [r.run_id for r in scored[:EPOCH_BEST]]


def read_submissions(folder: Path) -> list[Submission]:
    """``slurm/submissions.jsonl`` lines with their scripts, plus any script without a line."""
    submissions: list[Submission] = []
    log = folder / "submissions.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    for line in lines:
        try:
            info = json.loads(line)
        except ValueError:  # a torn last line from an interrupted submit
            continue
        if not isinstance(info, dict):
            continue
        script = str(info.get("script") or f"slurm/{info.get('job_id')}.sbatch")
        file = folder.parent / script
        text = file.read_text() if file.is_file() else None
        submissions.append(Submission(str(info.get("job_id")), info, script, text))
    known = {s.script_name for s in submissions}
    for file in sorted(folder.glob("*.sbatch")) if folder.is_dir() else []:
        name = f"slurm/{file.name}"
        if name not in known:
            submissions.append(Submission(file.stem, {}, name, file.read_text()))
    return submissions


def find_lock_file(source: SweepSource) -> Path | None:
    """``containers/requirements.lock`` of the project holding the sweep, else of the cwd's."""
    starts = [source.path.resolve()] if source.path else []
    starts.append(Path.cwd().resolve())
    for start in starts:
        for folder in (start, *start.parents):
            lock = folder / "containers" / "requirements.lock"
            if lock.is_file():
                return lock
    return None


def provenance(source: SweepSource) -> dict[str, Any]:
    """Recorded provenance, each value with where it came from (runs, submissions, files)."""

    def distinct(key: str) -> list[str]:
        values = [run.record.get(key) for run in source.runs]
        values += [s.info.get(key) for s in source.submissions]
        return sorted({str(v) for v in values if v})

    recorded_locks = sorted(
        {str(s.info[k]) for s in source.submissions for k in ("lock_sha256",) if s.info.get(k)}
    )
    lock = find_lock_file(source)
    runs = source.runs
    started = sorted(str(r.started_at) for r in runs if r.started_at)
    ended = sorted(str(r.ended_at) for r in runs if r.ended_at)
    return {
        "image_digests": distinct("image_digest"),
        "images": sorted({str(s.info["image"]) for s in source.submissions if s.info.get("image")}),
        "git_revisions": distinct("git_revision"),
        "lock_recorded": recorded_locks,
        "lock_path": str(lock) if lock else None,
        "lock_sha256": file_digest(lock, "sha256") if lock else None,
        "created_at": source.created_at,
        "first_started": started[0] if started else None,
        "last_ended": ended[-1] if ended else None,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def rerun_command(definition: dict[str, Any], params: dict[str, Any]) -> str:
    """The command the agent ran for these parameters, expanded as ``wandb agent`` does."""
    holders = {name: {"value": value} for name, value in flatten(params).items()}
    argv = build_command(definition, holders, Path("args.json"))
    if argv[:1] == ["/usr/bin/env"]:  # ${env}: the agent's environment, nothing to type
        argv = argv[1:]
    return shlex.join(argv)
