"""``SWEEP/slurm/submissions.jsonl``: one line per submission (job id, profile, array, the exact
submitting command, image digest, git revision), what a reviewer needs to see or rerun a job.

In a lab-shared sweep (``jobs/sweeps/lab_group.py``) the ``slurm/`` folders and the record file
are the group's, so that every member's submit records there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.launcher import Job
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.train.staging import file_digest


def record(target: SweepTarget, job: Job, context: dict[str, Any], launcher: str) -> None:
    """Append one line to SWEEP/slurm/submissions.jsonl in a single write."""
    entry = {
        "job_id": job.job_id,
        "profile": context["profile"].name,
        "array": context["array"],
        "script": f"slurm/{job.job_id}.sbatch",
        "sbatch_command": job.command,
        "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "image": context["image"] or None,
        "image_digest": context["image_digest"] or None,
        "git_revision": context["git_revision"],
        # The hash-locked requirements the image was built from (its sweepkit.requirements.sha256
        # label); the report shows it as recorded at submission.
        "lock_sha256": requirements_lock_sha256(),
        "launcher": launcher,
        "runs_per_task": context["runs_per_task"],
        "log": context["log_path"],
        "host": socket.gethostname(),
    }
    line = (json.dumps(entry) + "\n").encode()
    fd_path = str(target.record_dir / "submissions.jsonl")
    fd = os.open(fd_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0 and os.fstat(fd).st_uid == os.geteuid() and lab_gid(target) is not None:
            os.fchmod(fd, 0o664)  # made now, by us: every lab member appends to it
        try:
            if os.write(fd, line) < len(line):  # a full disk: what fits, and no error yet
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), fd_path)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # no torn line left in the record
            raise
    finally:
        os.close(fd)


def requirements_lock_sha256() -> str | None:
    lock = Path(__file__).resolve().parents[2] / "containers" / "requirements.lock"
    return file_digest(lock, "sha256") if lock.is_file() else None


def lab_gid(target: SweepTarget) -> int | None:
    from sweepkit.jobs.sweeps.lab_group import sweep_group

    return sweep_group(target.sweep.folder) if target.sweep.is_local else None


def share_with_lab(target: SweepTarget, made: list[Path]) -> None:
    """In a lab-shared sweep, the slurm/ folders this submit made are the group's too."""
    from sweepkit.jobs.sweeps.lab_group import share_folder

    gid = lab_gid(target)
    if gid is not None:
        for folder in made:
            share_folder(folder, gid)
