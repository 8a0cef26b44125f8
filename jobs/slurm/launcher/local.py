"""The local twin of ``sbatch --array``: a rendered sweep script's array tasks, run here.

``sweepkit submit --launcher local`` (or ``python -m sweepkit.jobs.slurm.launcher SCRIPT``) keeps the
script beside the sweep as sbatch's launcher does, then runs the very script that sbatch would
get, task by task, with the concurrency and the SLURM variables a task would see
(``local_array.py`` says which ``#SBATCH`` lines it honours).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.launcher.base import Job, Launcher
from sweepkit.jobs.slurm.launcher.local_array import run_array
from sweepkit.train.atomic import write_atomic

MODULE = "sweepkit.jobs.slurm.launcher"  # its __main__ runs a kept script again, as the record says


class LocalLauncher(Launcher):
    name = "local"

    def submit(self, script: str, record_dir: Path, context: dict[str, Any]) -> Job:
        """Keep the script as ``record_dir/<job id>.sbatch``; it runs in :meth:`follow`."""
        job_id = local_job_id(record_dir)
        path = record_dir / f"{job_id}.sbatch"
        write_atomic(path, script.encode(), 0o644)
        return Job(job_id, path, [sys.executable, "-m", MODULE, str(path), "--job-id", job_id])

    def unrecorded(self, job: Job) -> str | None:
        job.script.unlink(missing_ok=True)  # nothing ran yet: nothing was submitted
        return None

    def follow(self, job: Job, context: dict[str, Any]) -> int:
        """Run the array here, with the same script, concurrency and SLURM environment."""
        print(
            f"Running array {job.job_id} (tasks {context['array']}) of sweep "
            f"{context['sweep']['ref']} here with profile {context['profile'].name!r}; logs in "
            f"{context['log_dir']}",
            flush=True,
        )
        return run_array(job.script, job_id=job.job_id)


def local_job_id(record_dir: Path) -> str:
    """A numeric id like SLURM's, unique in this sweep's records (the local twin's job id)."""
    job = int(time.time()) % 1_000_000_000
    while (record_dir / f"{job}.sbatch").exists():
        job += 1
    return str(job)
