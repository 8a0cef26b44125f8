"""One interface for whatever runs a rendered array script: sbatch, or its local twin.

``sweepkit submit`` renders the script, then picks one :class:`Launcher` and goes through the same
three steps with it, whichever it is: :meth:`Launcher.submit` (keep the script beside the sweep
and hand it over), the submission record (written by submit), and :meth:`Launcher.follow` (what
the user sees, and the exit status). Like submitit's one executor per scheduler, the local twin
runs the very script sbatch would get, so that tests of it test what a cluster runs.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Job:
    """A submitted array job: its id, the kept copy of its script (``<job id>.sbatch``), and the
    command that submitted it, as the submission record keeps it."""

    job_id: str
    script: Path
    command: list[str]


class Launcher(ABC):
    """Hands a rendered array script to a scheduler. ``context`` is the one the script was
    rendered from (``jobs/slurm/script.py``: profile, array, log paths, sweep)."""

    name: ClassVar[str]  # what --launcher takes and the submission record says

    @abstractmethod
    def submit(self, script: str, record_dir: Path, context: dict[str, Any]) -> Job:
        """Keep ``script`` as ``record_dir/<job id>.sbatch`` and hand it over; raise UserError or
        OSError with nothing handed over when it cannot be."""

    @abstractmethod
    def unrecorded(self, job: Job) -> str | None:
        """The submission record of ``job`` could not be written: take the job back and return
        None, or, when it is out of reach already, say where it runs (for the error)."""

    @abstractmethod
    def follow(self, job: Job, context: dict[str, Any]) -> int:
        """After the record is written: tell the user where the job runs, or run it; the exit
        status of ``sweepkit submit``."""

    def follow_chain(self, jobs: list[Job], contexts: list[dict[str, Any]]) -> int:
        """Several arrays of one submission (a sweep split under the cluster's MaxArraySize),
        each waiting for the one before: each followed in turn; the first failure's status."""
        codes = [self.follow(job, context) for job, context in zip(jobs, contexts, strict=True)]
        return next((code for code in codes if code), 0)


def job_environment() -> dict[str, str]:
    """What sbatch passes on to the job (--export=ALL): this environment without the W&B key,
    which the job reads from its 0600 file, so that SLURM never stores it with the job. The local
    twin gives its tasks the same."""
    return {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
