"""Whether a sweep's command fits the shape of its profile's tasks, checked before submitting.

- ``nodes`` > 1: only ``python -m sweepkit.train.launch`` starts a run's ranks on every node of a task
  (srun + torchrun's rendezvous); any other command would train on the first node alone while
  the others sit idle, so it is refused.
- more than one GPU per agent (``gpus`` / ``agents_per_task`` > 1): a command that starts one
  process (``python -m sweepkit.train``) trains on one of them; that is allowed (a user's own program
  may start its own workers) but warned about.
Only local sweeps are checked: a W&B sweep's command is on W&B's server.
"""

from __future__ import annotations

from typing import Any

from sweepkit.jobs.slurm.profiles import Profile
from sweepkit.jobs.sweeps.program_check import command_items
from sweepkit.train.errors import UserError

LAUNCHER = ("-m", "sweepkit.train.launch")
DISTRIBUTED = ("sweepkit.train.launch", "torch.distributed.run", "torchrun")


def _runs(items: list[str], module_or_exe: tuple[str, ...]) -> bool:
    return any(item in module_or_exe or item.rsplit("/", 1)[-1] in module_or_exe for item in items)


def check_command_fits(profile: Profile, definition: dict[str, Any], where: str) -> str | None:
    """A warning for a command that uses one GPU of several, or None; UserError when it cannot
    run on the profile's nodes at all."""
    items = command_items(definition)
    launched = any(items[i : i + 2] == list(LAUNCHER) for i in range(len(items)))
    if profile.nodes > 1 and not launched:
        raise UserError(
            f"{profile.source}: profile {profile.name!r}, key 'nodes': {profile.nodes} nodes per "
            f"task, but the command of {where} does not start its ranks on them; use "
            "`${interpreter} -m sweepkit.train.launch -m sweepkit.train ...` in its command, or nodes: 1"
        )
    gpus_per_agent = profile.gpus // profile.agents_per_task
    if gpus_per_agent > 1 and not _runs(items, DISTRIBUTED):
        return (
            f"sweepkit submit: warning: profile {profile.name!r} gives each run {gpus_per_agent} "
            f"GPUs, but the command of {where} starts one process, which trains on one of them; "
            "start it with `${interpreter} -m sweepkit.train.launch -m sweepkit.train ...` (or torchrun), or set "
            f"agents_per_task: {profile.gpus} to run one run per GPU"
        )
    return None
