"""A sweep folder on disk: made whole or not at all, and checked before anyone runs from it.

Layout (the sweep reference is its path)::

    sweep.yaml        the validated W&B sweep definition, written once at creation
    sweep.json        {schema, sweep_id, created_at, lease_s, max_retries, checked, ...}, written
                      once (checked: sweep.yaml's check, remembered: definition/checked.py)
    journal.jsonl     append-only records, one per line: "<crc32> <json>" (journal.py)
    journal.snapshot  the journal's fold up to a byte offset, rewritten by agents (snapshot.py)
    lock              the flufl.lock taken for every append (claims, results)
    claims/           one token per attempt of a run: <run_id>.<k>, made O_EXCL
    leases/           <run_id>.<k>.json heartbeats, rewritten by atomic rename; gone once ended
    runs/<run_id>/    run folders: run.json, checkpoints, logs, wandb/ (the trainer's)
    synced.json       what `sweepkit sync` uploaded;  slurm/  what `sweepkit submit` submitted
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import lab_group
from sweepkit.jobs.sweeps.ref import no_sweep_at
from sweepkit.jobs.sweeps.state import iso, new_id
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE
from sweepkit.train.atomic import write_atomic
from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import as_user_error, unwritable

# New run ids tried before a claim gives up: one of 36^8 ids is taken by chance only by a folder
# crowded far beyond any sweep (a run folder is made by an exclusive create, so none is reused).
RUN_ID_TRIES = 10

SCHEMA = 1
DEFAULT_LEASE_S = 120.0
DEFAULT_MAX_RETRIES = 2
# A done run's parameter file, moved out of W&B's ``wandb/sweep-<sweep>/`` (agent/launch.py): the
# evidence of its claim if the journal loses that record (recovery.py), one inode in the run folder
KEPT_PARAM_FILE = "sweep-params.yaml"


def attempt_file_name(run_id: str, k: int) -> str:
    """``<run_id>.<k>``, the name of an attempt's claim token and lease file. ``k`` is the
    attempt's 0-based index, as in the journal's records (it is attempt ``k + 1`` in messages and
    ``SWEEPKIT_ATTEMPT``): every sweep folder written so far names them so (tests/golden/)."""
    return f"{run_id}.{k}"


def check_permissions(path: Path) -> None:
    """A sweep definition launches programs: refuse a store that other users can write to."""
    shared = lab_group.sweep_group(path)
    for item in (path, path / "sweep.yaml", path / "sweep.json", path / "journal.jsonl"):
        try:
            info = item.stat()
        except FileNotFoundError:
            continue
        why = lab_group.refusal(item, info.st_mode, info.st_gid, shared)
        if why is not None:
            raise UserError(why)


def make_sweep_folder(
    definition: dict[str, Any],
    root: Path,
    source: str,
    lease_s: float = DEFAULT_LEASE_S,
    max_retries: int = DEFAULT_MAX_RETRIES,
    extra: dict[str, Any] | None = None,
    group: str | None = None,
) -> Path:
    """Make a new sweep folder under ``root`` (built in a temp folder and renamed into place);
    ``group``: shared with that Unix group (jobs/sweeps/lab_group.py)."""
    gid = lab_group.group_id(group) if group is not None else None
    if group is not None:
        extra = {**(extra or {}), "group": group}

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the sweep root {root}: {err.strerror}; pass --root to a writable folder"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"sweep root {root} {unwritable(root)}; pass --root to a writable folder")
    for _ in range(10):
        sweep_id = new_id()
        dest = root / sweep_id
        if not dest.exists():
            break
    else:
        raise UserError(
            f"could not name a new sweep folder in {root}: 10 new sweep ids in a row were taken; "
            "pass --root to another folder"
        )
    tmp = root / f".{sweep_id}.creating"
    try:
        _build_sweep_folder(
            tmp, dest, sweep_id, definition, source, lease_s, max_retries, extra, gid
        )
    except OSError as err:
        # a full or read-only disk: no half-made folder is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise as_user_error(
            err, err.filename or root, f"free space in {root} or pass --root to another folder"
        ) from None
    return dest


def _build_sweep_folder(
    tmp: Path,
    dest: Path,
    sweep_id: str,
    definition: dict[str, Any],
    source: str,
    lease_s: float,
    max_retries: int,
    extra: dict[str, Any] | None,
    gid: int | None,
) -> None:
    from sweepkit.jobs.sweeps.definition.checked import KEY as CHECKED_KEY
    from sweepkit.jobs.sweeps.definition.checked import stamp
    from sweepkit.train.config import dump_yaml

    tmp.mkdir(mode=0o755)
    os.chmod(tmp, 0o755)  # whatever the umask: group-writable stores are refused later
    if gid is not None:
        lab_group.share_folder(tmp, gid)
    meta = {
        "schema": SCHEMA,
        "sweep_id": sweep_id,
        "created_at": iso(time.time()),
        "source": source,
        "lease_s": float(lease_s),
        "max_retries": int(max_retries),
        **(extra or {}),
    }
    header = f"# sweep {sweep_id}, created {meta['created_at']} from {source}; the engine reads this file, do not edit\n"
    definition_text = header + dump_yaml(definition, sort_keys=False)
    checked = stamp(definition_text, source)  # lets agents skip the engine's check of this text
    if checked is not None:
        meta[CHECKED_KEY] = checked
    write_atomic(tmp / "sweep.yaml", definition_text.encode(), SHARED_FILE_MODE)
    write_atomic(tmp / "sweep.json", (json.dumps(meta, indent=2) + "\n").encode(), SHARED_FILE_MODE)
    write_atomic(tmp / "journal.jsonl", b"", SHARED_FILE_MODE)
    if gid is not None:
        lab_group.share_file(tmp / "journal.jsonl", gid)  # every member's agent appends
    for sub in ("claims", "leases", "runs"):
        (tmp / sub).mkdir(mode=0o755)
        os.chmod(tmp / sub, 0o755)
        if gid is not None:
            lab_group.share_folder(tmp / sub, gid)
    os.rename(tmp, dest)


def checked_folder(ref: str | Path) -> Path:
    """The sweep folder at ``ref``, checked to exist and to hold a sweep."""
    path = Path(ref)
    if not path.is_dir():
        raise no_sweep_at(ref)
    missing = [name for name in ("sweep.json", "sweep.yaml") if not (path / name).is_file()]
    if missing:
        raise UserError(
            f"{path} is not a sweep folder: it has no {' and no '.join(missing)}; pass the "
            "folder printed by sweepkit sweep create"
        )
    return path


@contextlib.contextmanager
def undone_on_failure(undo: Callable[[], None]) -> Iterator[None]:
    """A claim whose journal append failed (a full or read-only disk) takes back what it made
    (its token, its run folder), so that nothing half-made stays behind."""
    try:
        yield
    except OSError:
        with contextlib.suppress(OSError):
            undo()
        raise


def make_run_dir(runs: Path, group_id: int | None) -> str:
    """A new run's id, its folder under ``runs`` made by an exclusive create (ids never collide)."""
    for _ in range(RUN_ID_TRIES):
        run_id = new_id()
        try:
            lab_group.make_dir(runs / run_id, group_id)
            return run_id
        except FileExistsError:
            continue
    raise UserError(
        f"could not make a new run folder in {runs}: {RUN_ID_TRIES} new run ids in a row were "
        "taken; the folder holds folders that are not this sweep's runs, move them away and rerun "
        "the agent"
    )
