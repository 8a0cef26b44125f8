"""Launchers of a rendered array script behind one interface (``base.Launcher``): ``sbatch`` on a
SLURM cluster, and ``local``, its twin that runs the same script's tasks on this machine."""

from __future__ import annotations

from sweepkit.jobs.slurm.launcher.base import Job, Launcher
from sweepkit.jobs.slurm.launcher.local import LocalLauncher
from sweepkit.jobs.slurm.launcher.sbatch import SbatchLauncher

# --launcher NAME -> its launcher class; the first is the default.
LAUNCHERS: dict[str, type[Launcher]] = {
    SbatchLauncher.name: SbatchLauncher,
    LocalLauncher.name: LocalLauncher,
}


def launcher_for(name: str) -> Launcher:
    """The launcher ``--launcher NAME`` picks; submit goes through it and never asks again."""
    try:
        return LAUNCHERS[name]()
    except KeyError:
        raise ValueError(f"no launcher {name!r}; known: {', '.join(LAUNCHERS)}") from None


__all__ = ["LAUNCHERS", "Job", "Launcher", "launcher_for"]
