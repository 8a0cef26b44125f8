"""Opening a sweep folder, and making a new one: the ``LocalSweep`` of a folder (sweep.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.store import folder
from sweepkit.jobs.sweeps.store.sweep import LocalSweep


def open_sweep(ref: str | Path) -> LocalSweep:
    """The local sweep at ``ref`` (its folder), checked to exist and to be safe to run."""
    return LocalSweep(folder.checked_folder(ref))


def create_sweep(
    definition: dict[str, Any],
    root: Path,
    source: str,
    lease_s: float = folder.DEFAULT_LEASE_S,
    max_retries: int = folder.DEFAULT_MAX_RETRIES,
    extra: dict[str, Any] | None = None,
    group: str | None = None,
) -> LocalSweep:
    """Make a new sweep folder under ``root`` (built in a temp folder and renamed into place);
    ``group``: shared with that Unix group (jobs/sweeps/lab_group.py)."""
    path = folder.make_sweep_folder(definition, root, source, lease_s, max_retries, extra, group)
    return LocalSweep(path)
