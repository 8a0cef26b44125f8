"""A run as every reader sees it (``RunView``: status, the report, submit, sync), a run handed to
an agent (``Claim``), and the small helpers its readers share: ids, timestamps, plain values, a run's run.json.

How the journal's records fold into run states is in jobs/sweeps/store/fold.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id(length: int = 8) -> str:
    """A W&B-style id (lowercase base 36)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def iso(ts: float | None) -> str | None:
    return (
        None
        if ts is None
        else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
    )


@dataclass
class RunView:
    """One run as status, report, submit and sync see it: the store's state joined with the run's
    run.json, or a W&B cloud run mapped onto the same fields for the report."""

    run_id: str
    state: str
    params: dict[str, Any]
    run_dir: Path | None  # None: a W&B cloud run, which has no folder here
    metric: float | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    host: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    attempts: int = 0
    error: str | None = None
    exit_code: int | None = None
    queued: bool = False  # preempted or crashed, waiting to be handed out again
    duration_s: float | None = None  # first claim to last end (or now, while it runs)
    config: dict[str, Any] = field(default_factory=dict)  # run.json's config, else its W&B config
    metric_source: str | None = None  # where metric and epochs came from: wandb or run.json
    # the sweep metric's logged values in order: their count is the run's epochs as hyperband
    # counts them (a script that logs every batch has many more rows than epochs)
    metric_history: list[float] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict, repr=False)  # run.json as read, {} if none
    # how many epochs it logged: len(epochs), or from its end record where epochs were not read
    epoch_count: int = 0
    # shown from its end record alone (reader.py): its ``epochs`` rows, ``config`` and ``record``
    # were not read (empty here), and ``summary`` holds the numbers its agent recorded
    from_end_record: bool = False


@dataclass
class Claim:
    """A run handed to this agent: attempt ``attempt`` of ``run_id``."""

    run_id: str
    k: int  # the attempt's 0-based index, as the journal holds it (jobs/sweeps/vocabulary.py)
    params: dict[str, Any]  # {name: {value: v}}, as wandb agent holds a run's parameters
    run_dir: Path
    resumed: bool

    @property
    def attempt(self) -> int:
        """The attempt, counted from 1: what messages and ``SWEEPKIT_ATTEMPT`` say."""
        return self.k + 1


def plain(value: Any) -> Any:
    """Engine values (numpy scalars) as plain Python, for JSON, YAML and command lines."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value
