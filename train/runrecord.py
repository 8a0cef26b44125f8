"""``run.json``: the run's record that agents, status and report read (never the logs).

Written atomically at start, after every epoch and at the end. Layout (schema 1):
run_id, sweep_id, state (running | finished | failed | preempted), config (effective, nested),
metric_names, epochs [{epoch, Train Loss, Validation Loss, Validation Accuracy, images_per_s, lr,
epoch_s}], summary (last value of each metric, best Validation Accuracy, Test Accuracy/Loss),
timings, host, pid, slurm ids, git_revision, image_digest, versions, resumed_from, attempt, exit_code, error,
world_size (data-parallel processes; 1 outside torchrun), ranks [{rank, host, pid}] (this
attempt's processes, in rank order: the nodes a multi-node run spans).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweepkit.train.atomic import write_json_atomic
from sweepkit.train.metric_names import METRIC_NAMES
from sweepkit.train.versions import git_revision, versions

SCHEMA_VERSION = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def node_name() -> str:
    """The machine this process runs on: SWEEPKIT_NODE when set (a container's own host name is
    its id, so the job script passes the node's name in), else the host name."""
    return os.environ.get("SWEEPKIT_NODE") or socket.gethostname()


def pid_namespace() -> str | None:
    """This process's PID namespace, e.g. ``pid:[4026531836]``: pids name the same processes only
    within one (a Podman container has its own; Apptainer shares the host's)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def slurm_ids() -> dict[str, str | None]:
    env = os.environ
    return {
        "job_id": env.get("SLURM_JOB_ID"),
        "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "restart_count": env.get("SLURM_RESTART_COUNT"),
    }


class RunRecord:
    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        config: dict[str, Any],
        previous: dict[str, Any] | None = None,
        persist: bool = True,
    ):
        """``previous``: the run.json already in ``run_dir`` if the caller has read it.
        ``persist=False``: kept in memory only (the ranks of a data-parallel run but rank 0)."""
        self.path = run_dir / "run.json"
        self.persist = persist
        previous = (previous if previous is not None else read_run_json(run_dir)) or {}
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "run_id": run_id,
            "sweep_id": os.environ.get("WANDB_SWEEP_ID"),
            "state": "running",
            "config": config,
            "metric_names": list(METRIC_NAMES),
            "epochs": [],
            "summary": {},
            "timings": {
                "started_at": previous.get("timings", {}).get("started_at") or now_iso(),
                "attempt_started_at": now_iso(),
                "updated_at": now_iso(),
                "ended_at": None,
                "train_s": previous.get("timings", {}).get("train_s", 0.0),
            },
            "host": node_name(),
            "pid": os.getpid(),
            "slurm": slurm_ids(),
            "git_revision": git_revision(),
            "image_digest": os.environ.get("SWEEPKIT_IMAGE_DIGEST"),
            "versions": versions(),
            "resumed_from": None,
            "attempt": int(previous.get("attempt", 0)) + 1,
            "exit_code": None,
            "error": None,
        }

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def note_resume(self, epoch: int, step: int) -> None:
        """Where this attempt resumed from (written with the next update)."""
        self.data["resumed_from"] = {"epoch": epoch, "step": step}

    def add_epoch(
        self, history: list[dict[str, Any]], summary: dict[str, float], train_s: float
    ) -> None:
        """An epoch ended: the history so far, the summary after it, and its training time."""
        self.data["timings"]["train_s"] += train_s
        self.update(epochs=history, summary=summary)

    def add_to_summary(self, values: dict[str, float]) -> None:
        """Test metrics join the summary (written with the final state)."""
        self.data["summary"].update(values)

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.data["summary"])

    def write(self) -> None:
        self.data["timings"]["updated_at"] = now_iso()
        if self.persist:
            write_json_atomic(self.path, self.data)


def read_run_json(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
