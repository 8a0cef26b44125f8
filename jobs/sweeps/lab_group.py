"""Lab-shared sweeps: ``sweep create --group NAME`` lets the members of a Unix group run agents
for one sweep folder together, as a lab's group-owned project space (setgid folders, umask 002)
expects.

A sweep launches programs, so by default every command refuses a store that others can write to.
An opted-in sweep (``sweep.json`` names the group) is group-owned and setgid, its folders and
journal group-writable (what every command writes there: journal appends, the lock, claim
tokens, leases, run folders, slurm/ records), and every command accepts group write there,
only for that group. World-writable stays refused, as do group-writable sweeps that did not opt
in. The files the kit writes there get their mode whatever the umask (``file_mode``), and the
programs an agent launches run with the group bits of the umask cleared (``program_umask``): a
member whose umask is the common 022 still leaves a run that another member resumes.
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from pathlib import Path

from sweepkit.train.errors import UserError

GROUP_DIR_MODE = 0o2775  # setgid: what is made inside stays the group's
GROUP_FILE_MODE = 0o664
PRIVATE_DIR_MODE = 0o755
# a sweep not shared: its files are their owner's to write (as store.journal.SHARED_FILE_MODE)
PRIVATE_FILE_MODE = 0o644


def file_mode(gid: int | None) -> int:
    """The mode of a file the kit writes in a sweep folder (a lease, a snapshot, a claim token, a
    run's parameter file, output.log), whatever the umask: group-writable where the sweep is
    shared, so that another member's agent can rewrite it when it resumes the run."""
    return PRIVATE_FILE_MODE if gid is None else GROUP_FILE_MODE


def program_umask(current: int) -> int:
    """The umask for a program an agent launches for a shared sweep: the member's own, less its
    group bits. What the program writes in its run folder (checkpoints, run.json, its W&B run, the
    folders wandb makes and the links it replaces) must stay writable by the group: another
    member's agent resumes the run after a preemption, and its program then rewrites those files.
    The common umask 022 would leave them the first member's alone (permission denied on resume).
    The bits for other users stay as the member chose (022 gives 002, 077 gives 007)."""
    return current & ~0o070


def make_dirs(path: Path, gid: int | None) -> None:
    """``path`` and its missing parents (below a run folder), the group's, where the sweep is
    shared (else nothing: whoever writes there makes them as usual)."""
    if gid is None or path.is_dir():
        return
    make_dirs(path.parent, gid)
    with contextlib.suppress(FileExistsError):  # another member's agent made it meanwhile
        make_dir(path, gid)


def own_file(path: Path, gid: int | None) -> None:
    """Give a file the kit just wrote its sweep's mode (``file_mode``), where it is ours to chmod
    (a file another member made is already group-writable: it was made so)."""
    if gid is None:
        return
    try:
        if path.stat().st_uid == os.geteuid():
            os.chmod(path, GROUP_FILE_MODE)
    except FileNotFoundError:
        pass


def group_id(name: str) -> int:
    """The gid of ``--group NAME``, checked to be a group this user is in (else chown fails)."""
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        raise UserError(
            f"--group {name}: no such group on this machine; pass your lab's group (see `id -Gn`)"
        ) from None
    if gid != os.getegid() and gid not in os.getgroups():
        raise UserError(
            f"--group {name}: you are not a member of it (your groups: `id -Gn`); pass one of yours"
        )
    return gid


def share_folder(path: Path, gid: int) -> None:
    """Give ``path`` to the group, group-writable and setgid, whatever the umask."""
    os.chown(path, -1, gid)
    os.chmod(path, GROUP_DIR_MODE)


def share_file(path: Path, gid: int) -> None:
    os.chown(path, -1, gid)
    os.chmod(path, GROUP_FILE_MODE)


def make_dir(path: Path, gid: int | None) -> None:
    """A folder in the store (a run folder): the group's when the sweep is shared."""
    path.mkdir(mode=PRIVATE_DIR_MODE if gid is None else GROUP_DIR_MODE)
    if gid is not None:
        share_folder(path, gid)


def sweep_group(path: Path) -> int | None:
    """The gid a sweep folder opted in to share with, from its sweep.json (None: not shared)."""
    import json

    try:
        name = json.loads((path / "sweep.json").read_text()).get("group")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None  # the group is gone here: treat the sweep as not shared


def refusal(item: Path, mode: int, gid_owner: int, shared_gid: int | None) -> str | None:
    """Why ``item`` (of ``mode``, group ``gid_owner``) may not be trusted, or None."""
    if mode & stat.S_IWOTH:
        return (
            f"{item} is writable by every user (mode {stat.filemode(mode)}); a sweep definition "
            f"launches programs, so sweepkit refuses it: run chmod o-w {item}"
        )
    if mode & stat.S_IWGRP and (shared_gid is None or gid_owner != shared_gid):
        return (
            f"{item} is writable by other users (mode {stat.filemode(mode)}); a sweep definition "
            f"launches programs, so sweepkit refuses it: run chmod go-w {item}, or create the "
            "sweep with --group NAME to share it with a lab group"
        )
    return None
