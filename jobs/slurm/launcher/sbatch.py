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
from sweepkit.jobs.slurm.launcher.directives import most_at_once
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
        after = context.get("after")  # the array this one waits for (a chain: array.py)
        options = [] if after is None else [dependency_option(after)]
        fd, tmp_name = tempfile.mkstemp(prefix=".submit-", suffix=".sbatch", dir=record_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(script)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.chmod(0o644)
            job_id = _sbatch(script, options, f"profile {profile.name!r}", f"({profile.source})")
            final = record_dir / f"{job_id}.sbatch"
            os.replace(tmp, final)
            return Job(job_id, final, ["sbatch", "--parsable", *options, str(final)])
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

    def follow_chain(self, jobs: list[Job], contexts: list[dict[str, Any]]) -> int:
        """Arrays that wait for each other: one line each, then where the logs go and how to watch
        and cancel them all."""
        first = contexts[0]
        ids = [job.job_id for job in jobs]
        sweep = first["sweep"]["ref"]
        limit = most_at_once([context["array"] for context in contexts])
        lines = [
            f"Submitted {len(jobs)} array jobs for sweep {sweep} with profile "
            f"{first['profile'].name!r}, {first['runs_per_task']} run(s) a task; each waits for "
            f"the one before (--dependency=afterany), so at most {limit} tasks run at once:"
        ]
        for job, context, before in zip(jobs, contexts, [None, *ids], strict=False):
            after = f", after {before}" if before else ""
            lines.append(f"  array job {job.job_id}: tasks {context['array']}{after}")
        log = first["log_path"].replace("%x", first["job_name"]).replace("%A", "*")
        lines += [
            f"  scripts: {jobs[0].script.parent}/<job id>.sbatch",
            f"  logs:    {log.replace('%a', '*').replace('%j', '*')}",
            f"  watch:   squeue -j {','.join(ids)}    sweepkit status {shlex.quote(sweep)}",
            f"  cancel:  scancel {' '.join(ids)}",
        ]
        print("\n".join(lines))
        return 0


def dependency_option(job_id: str) -> str:
    """The sbatch option that holds an array until every task of array ``job_id`` has ended, however
    it ended (afterany on an array's job id waits for all its tasks): a chain of arrays runs one
    array at a time, so their %N limits bound the tasks running at once."""
    return f"--dependency=afterany:{job_id}"


def _sbatch(script: str, options: list[str], profile: str, source: str) -> str:
    """The job id sbatch gives ``script`` (on stdin); sbatch's own error, verbatim, otherwise."""
    try:
        result = subprocess.run(
            ["sbatch", "--parsable", *options],
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
