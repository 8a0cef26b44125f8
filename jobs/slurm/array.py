"""The ``--array`` of a submission: sized from the runs a sweep still has to make, or the user's
own spec checked and given the profile's ``%N`` concurrency limit.

Sizing from the sweep means no task starts an agent for an exhausted sweep.
"""

from __future__ import annotations

import math
import re

from sweepkit.jobs.slurm.launcher.directives import expand_array
from sweepkit.jobs.slurm.profiles import Profile
from sweepkit.jobs.slurm.target import SweepTarget
from sweepkit.train.errors import UserError

_ARRAY = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")


def array_spec(spec: str, profile: Profile, target: SweepTarget, runs_per_task: int) -> str:
    """The --array value: auto-sized from the sweep, or the user's spec with the profile's %N."""
    if spec != "auto":
        if not _ARRAY.match(spec):
            raise UserError(
                f"--array {spec!r} is not an sbatch array spec; write e.g. 1-12%2, 0-7:2 or "
                "1,3,5, or auto"
            )
        _check_array_ranges(spec)
        return spec if "%" in spec else f"{spec}%{profile.concurrency}"
    planned, remaining = remaining_runs(target)
    if planned is None or remaining is None:
        raise UserError(
            f"sweep {target.name} has no fixed size (method {_method(target)} without run_cap), "
            "so --array auto cannot size it; pass --array 1-N%C or set run_cap"
        )
    if remaining == 0:
        raise UserError(
            f"sweep {target.name} has no runs left ({planned} planned, all taken or done); see "
            "`sweepkit status`; nothing submitted"
        )
    return auto_array(remaining, runs_per_task, profile.agents_per_task, profile.concurrency)


def auto_array(remaining: int, runs_per_task: int, agents_per_task: int, concurrency: int) -> str:
    """One task per ``runs_per_task * agents_per_task`` remaining runs, and a ``%N`` limit never
    above the task count."""
    tasks = math.ceil(remaining / (runs_per_task * agents_per_task))
    return f"1-{tasks}%{min(concurrency, tasks)}"


def _check_array_ranges(spec: str) -> None:
    """What sbatch would refuse only after the submission is recorded: an empty range (5-1), a
    zero step, a %0 limit."""
    try:
        ids, limit = expand_array(spec)
    except UserError as err:
        raise UserError(
            f"--array {spec!r}: {err}; write ranges as FIRST-LAST with FIRST <= LAST"
        ) from None
    if limit == 0:
        raise UserError(f"--array {spec!r}: %0 would run no task at once; write e.g. %2")


def remaining_runs(target: SweepTarget) -> tuple[int | None, int | None]:
    """(planned, remaining): runs the sweep makes in all, and those not taken or done yet."""
    if target.sweep.is_local:
        from sweepkit.jobs.sweeps.store import open_sweep

        return open_sweep(target.sweep.folder).remaining()
    return _wandb_remaining(target.sweep.wandb_path)


def _wandb_remaining(path: str) -> tuple[int | None, int | None]:
    """Planned and remaining runs of a W&B sweep, from its config and runs (network)."""
    import wandb

    from sweepkit.jobs.sweeps.definition import planned_runs

    try:
        sweep = wandb.Api().sweep(path)
        config = sweep.config
        states = [run.state for run in sweep.runs]
    except Exception as err:  # the cloud's errors vary by version; report them as one line
        raise UserError(
            f"cannot read W&B sweep {path} ({type(err).__name__}: {err}); check the reference "
            "and `wandb login`, or pass --array 1-N%C"
        ) from None
    planned = planned_runs(config)
    if planned is None:
        return None, None
    # Preempted W&B runs are handed out again by the sweep server, so they still need a task.
    taken = sum(1 for state in states if state not in ("preempted", "preempting"))
    return planned, max(0, planned - taken)


def _method(target: SweepTarget) -> str:
    if not target.sweep.is_local:
        return "?"
    from sweepkit.jobs.sweeps.store import open_sweep

    return str(open_sweep(target.sweep.folder).definition.get("method"))
