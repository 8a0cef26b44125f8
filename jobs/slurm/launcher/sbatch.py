"""The real launcher: ``sbatch --parsable`` on a SLURM login node."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sweepkit.jobs.slurm.launcher.base import Job, Launcher, job_environment
from sweepkit.train.errors import UserError

SBATCH_TIMEOUT_S = 120


class SbatchLauncher(Launcher):
    name = "slurm"

    def submit(self, script: str, record_dir: Path, context: dict[str, Any]) -> Job:
        """sbatch --parsable the script; keep it as ``record_dir/<job id>.sbatch``.

        The copy is written first (so a full disk fails before anything is queued) and the script
        goes to sbatch on stdin: SLURM keeps its own copy for requeues, and no job records a path
        that is renamed once the job id is known.
        """
        profile = context["profile"]
        if shutil.which("sbatch") is None:
            raise UserError(
                "sbatch not found: run sweepkit submit on a SLURM login node, or use --launcher local"
            )
        fd, tmp_name = tempfile.mkstemp(prefix=".submit-", suffix=".sbatch", dir=record_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(script)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.chmod(0o644)
            job_id = _sbatch(script, f"profile {profile.name!r}", f"({profile.source})")
            final = record_dir / f"{job_id}.sbatch"
            os.replace(tmp, final)
            return Job(job_id, final, ["sbatch", "--parsable", str(final)])
        finally:
            tmp.unlink(missing_ok=True)

    def unrecorded(self, job: Job) -> str | None:
        return f"job {job.job_id} is queued (squeue -j {job.job_id}) but not recorded"

    def follow(self, job: Job, context: dict[str, Any]) -> int:
        """Print where the job's logs go and how to watch and cancel it; the job runs there."""
        job_id = job.job_id
        log = context["log_path"].replace("%x", context["job_name"]).replace("%A", job_id)
        log = log.replace("%a", "*").replace("%j", "*")
        sweep = context["sweep"]["ref"]
        print(
            f"Submitted array job {job_id} (tasks {context['array']}, {context['runs_per_task']} "
            f"run(s) each) for sweep {sweep} with profile {context['profile'].name!r}.\n"
            f"  script: {job.script}\n"
            f"  logs:   {log}\n"
            f"  watch:  squeue -j {job_id}    sweepkit status {shlex.quote(sweep)}\n"
            f"  cancel: scancel {job_id}"
        )
        return 0


def _sbatch(script: str, profile: str, source: str) -> str:
    """The job id sbatch gives ``script`` (on stdin); sbatch's own error, verbatim, otherwise."""
    try:
        result = subprocess.run(
            ["sbatch", "--parsable"],
            input=script,
            env=job_environment(),
            capture_output=True,
            text=True,
            timeout=SBATCH_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"sbatch gave no answer in {SBATCH_TIMEOUT_S} s ({profile}); "
            "the job may still have been queued: check `squeue --me` before submitting again"
        ) from None
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
        raise UserError(f"sbatch rejected the job of {profile} {source}: {message}")
    # --parsable prints "jobid" or "jobid;cluster".
    job_id = result.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise UserError(f"sbatch printed {result.stdout.strip()!r}, not a job id; check sbatch")
    return job_id
