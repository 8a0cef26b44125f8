"""What a job runs: the sweep (a :class:`SweepRef`) and where its submissions are recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweepkit.jobs.slurm.profiles import CONTROL_CHARS
from sweepkit.jobs.sweeps import ref as sweep_ref
from sweepkit.jobs.sweeps.program_check import check_files
from sweepkit.jobs.sweeps.ref import SweepRef
from sweepkit.train.errors import UserError


@dataclass(frozen=True)
class SweepTarget:
    """The sweep a job runs, its id, and the folder of its submission records: SWEEP/slurm for a
    local sweep, sweeps/wandb/ENTITY/PROJECT/ID/slurm under the working directory for W&B's."""

    sweep: SweepRef
    sweep_id: str
    record_dir: Path

    @property
    def name(self) -> str:
        """The sweep as the job's agent takes it: its absolute folder, or entity/project/id."""
        return str(self.sweep.folder) if self.sweep.is_local else self.sweep.wandb_path


def resolve_sweep(text: str) -> SweepTarget:
    """The sweep ``text`` names (:func:`sweepkit.jobs.sweeps.ref.parse`); a local one is opened, and the
    files its command names are checked where the job starts (the working directory)."""
    try:
        sweep = sweep_ref.parse(text)
    except UserError:
        if CONTROL_CHARS.search(text):
            raise  # parse's own line says so
        raise UserError(
            f"sweep {text!r} is neither a sweep folder nor a W&B sweep entity/project/sweep_id; "
            "pass the folder that `sweepkit sweep create` printed"
        ) from None
    if sweep.is_local:
        from sweepkit.jobs.sweeps.store import open_sweep

        opened = open_sweep(Path(text))
        # the job starts in this folder (--chdir): the command's files must be there
        check_files(opened.definition, str(sweep.folder / "sweep.yaml"), Path.cwd())
        return SweepTarget(sweep, opened.sweep_id, sweep.folder / "slurm")
    parts = (sweep.entity, sweep.project, sweep.sweep_id)
    record_dir = Path(sweep_ref.DEFAULT_ROOT, "wandb", *parts, "slurm")
    return SweepTarget(sweep, sweep.sweep_id, record_dir.resolve())
