"""What a local sweep's journal says about its runs: records folded into runs, and the rules that
decide a run's state (pure: no I/O except reading a run.json or probing a pid).

A run's state is that of its last attempt: ``running`` until an ``end`` record closes that attempt
with finished, failed, stopped, preempted or crashed. Preempted runs, and crashed runs with retries
left, are ``queued``: handed out again (same run id, same folder) before any new run.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from train.runrecord import node_name, pid_namespace, slurm_ids

HOST = node_name()  # this machine (the node's name, also inside a container)
PID_NS = pid_namespace()  # whose pids os.kill can check: those of this PID namespace
RUN_STATES = ("pending", "running", "finished", "failed", "crashed", "preempted", "stopped")
FINAL_STATES = ("finished", "failed", "stopped", "crashed")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
# Our states as the sweeps engine's RunState: a hyperband-stopped run reported real metrics, so
# bayes learns from them as from a finished run.
ENGINE_STATE = {
    "finished": "finished",
    "stopped": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "preempted": "preempted",
    "running": "running",
}


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
class AgentIdentity:
    """Who holds a lease: enough to tell, from another process, whether the holder is gone."""

    agent: str = field(default_factory=lambda: new_id(12))
    host: str = HOST
    pid: int = field(default_factory=os.getpid)
    pid_ns: str | None = PID_NS
    slurm: dict[str, str | None] = field(default_factory=slurm_ids)


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


@dataclass
class Claim:
    """A run handed to this agent: attempt ``k`` of ``run_id``."""

    run_id: str
    k: int
    params: dict[str, Any]  # {name: {value: v}}, as wandb agent holds a run's parameters
    run_dir: Path
    resumed: bool


@dataclass
class NoClaim:
    """Nothing to hand out: the sweep is complete, or the rest is running elsewhere."""

    complete: bool
    message: str


class FoldedRun:
    """A run as folded from the journal records (plus caches for the engine)."""

    def __init__(self, run_id: str, params: dict[str, Any]):
        self.run_id = run_id
        self.params = params
        self.claims: list[dict[str, Any]] = []
        self.ends: dict[int, dict[str, Any]] = {}
        self.grid_key: tuple[str, ...] | None = None  # the engine's hash of its grid point
        self.engine_run: Any = None  # its SweepRun, rebuilt when a record changes it
        self.bayes_run: Any = None  # the same as bayes reads it (jobs/sweeps/engine_view.py)

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


def lease_expired(
    lease: dict[str, Any], lease_s: float, me: AgentIdentity | None, now: float
) -> bool:
    """True if the holder of ``lease`` is gone: no heartbeat for ``lease_s``; or its pids are ours to
    check and neither it nor its program is alive; or ``me`` is the same SLURM array task,
    restarted."""
    if now - float(lease.get("beat_at") or 0) > lease_s:
        return True
    if pids_comparable(lease) and not alive(lease.get("pid")) and not alive(lease.get("child_pid")):
        return True
    theirs, mine = lease.get("slurm") or {}, (me.slurm if me else {})
    return same_slurm_task(theirs, mine) and int(mine.get("restart_count") or 0) > int(
        theirs.get("restart_count") or 0
    )


def pids_comparable(record: dict[str, Any]) -> bool:
    """True if the pids in a claim or lease name processes this process can probe: the same host
    and the same PID namespace. Two containers on one node share its name but not their pids.
    A record without ``pid_ns`` (written before it was recorded, or where /proc has none) counts
    as this namespace's, as before."""
    return record.get("host") == HOST and (record.get("pid_ns") or PID_NS) == PID_NS


def same_slurm_task(theirs: dict[str, Any] | None, mine: dict[str, Any] | None) -> bool:
    """True if both are the same SLURM (array) task: the same job id and array task id."""
    theirs, mine = theirs or {}, mine or {}
    return bool(
        mine.get("job_id")
        and theirs.get("job_id") == mine.get("job_id")
        and theirs.get("array_task_id") == mine.get("array_task_id")
    )


def plain(value: Any) -> Any:
    """Engine values (numpy scalars) as plain Python, for JSON, YAML and command lines."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value


def alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
