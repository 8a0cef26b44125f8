"""``sweepkit sync SWEEP [--entity E --project P] [--dry-run]``: upload a local sweep's runs to W&B.

Runs of a local sweep are W&B offline runs (``RUN_DIR/wandb/offline-run-*``, one folder per attempt
of a resumed run) tagged ``sweep:<sweep id>`` by the trainer. Once a run is done (finished,
stopped, failed, or crashed for good: jobs/sweeps/vocabulary.py) this uploads it with ``wandb sync``, all its attempts in one
command so W&B joins them in order, and records it in ``SWEEP/synced.json`` so that the next
``sweepkit sync`` skips it. Compute nodes usually cannot reach W&B: run this on a login node.
``--dry-run`` prints the plan (the exact commands) and changes nothing. A run whose W&B data names
the local sweep id as its W&B sweep (a user's script under the agent) is uploaded from a rewritten
copy without it (``sweepkit.jobs.sweeps.sync_copy``); ``synced.json`` records the original folders.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import store as store_mod
from sweepkit.jobs.sweeps import sync_copy
from sweepkit.jobs.sweeps.console import console_script
from sweepkit.jobs.sweeps.ref import parse_local
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE
from sweepkit.jobs.sweeps.vocabulary import SYNCABLE_STATES
from sweepkit.jobs.sweeps.wandb_run import records as wandb_records
from sweepkit.train.atomic import write_atomic
from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import as_user_error, is_write_refusal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep", metavar="SWEEP", help="local sweep folder (printed by sweepkit sweep create)"
    )
    parser.add_argument(
        "--entity",
        help="W&B entity (default: as given to sweep create, else $WANDB_ENTITY, else your default)",
    )
    parser.add_argument(
        "--project", help="W&B project (default: as given to sweep create, else $WANDB_PROJECT)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the wandb sync commands; upload and record nothing",
    )


def _wandb_cli() -> str:
    return console_script("wandb") or "wandb"


def load_synced(sweep: store_mod.LocalSweep) -> dict[str, Any]:
    try:
        data = json.loads((sweep.path / "synced.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read {sweep.path / 'synced.json'}: {err}; move it aside to sync everything again"
        ) from None
    return data if isinstance(data, dict) else {}


def plan(
    sweep: store_mod.LocalSweep, entity: str | None, project: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The uploads to do: one entry per ended run with offline data not yet synced."""
    synced = load_synced(sweep)
    todo: list[dict[str, Any]] = []
    tally = {"to_sync": 0, "already_synced": 0, "not_ended": 0, "no_wandb_data": 0}
    for view in sorted(sweep.runs(), key=lambda v: v.started_at or ""):
        if view.state not in SYNCABLE_STATES or view.queued:
            tally["not_ended"] += 1
            continue
        # a folder without a transaction log (a run killed as wandb started) has nothing to
        # upload: wandb sync would say "No runs to sync", exit 0, and it would count as synced
        paths = [
            str(p)
            for p in wandb_records.segment_folders(sweep.run_dir(view.run_id))
            if p.name.startswith("offline-run-")
        ]
        if not paths:
            tally["no_wandb_data"] += 1
            continue
        done = set((synced.get(view.run_id) or {}).get("paths", []))
        if set(paths) <= done:
            tally["already_synced"] += 1
            continue
        # {original folder: its copy without the local sweep id} for the folders that name it
        copies = {
            p: str(sync_copy.copy_folder(sweep.path, view.run_id, Path(p)))
            for p in paths
            if sync_copy.carries_sweep_id(Path(p), sweep.sweep_id)
        }
        command = [
            _wandb_cli(),
            "sync",
            "--project",
            project,
            *(["--entity", entity] if entity else []),
            *(copies.get(p, p) for p in paths),
        ]
        todo.append(
            {
                "run_id": view.run_id,
                "state": view.state,
                "paths": paths,
                "copies": copies,
                "command": command,
            }
        )
        tally["to_sync"] += 1
    return todo, tally


def require_wandb_login() -> None:
    """Raise a one-line UserError unless wandb has credentials for its server, found exactly as
    ``wandb sync`` finds them (WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE, then the netrc file
    ($NETRC or ~/.netrc), then the wandb settings), with no prompt and no network call: the key's
    format is checked, not whether the server accepts it."""
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    host = wandb_setup.singleton().settings.base_url
    try:
        auth = wbauth.authenticate_session(
            host=host, source="sweepkit sync", prompt=False, update_session=False
        )
    except AuthenticationError as err:
        raise UserError(
            f"W&B credentials for {host} are not valid: {str(err).rstrip('.')}; run "
            "`wandb login --relogin` on a "
            "machine with internet (or set WANDB_API_KEY); nothing synced"
        ) from None
    if auth is None:
        raise UserError(
            f"not logged in to W&B ({host}); run `wandb login` on a machine with internet "
            "(or set WANDB_API_KEY); nothing synced"
        )


def run(args: argparse.Namespace) -> int:
    sweep = store_mod.open_sweep(parse_local(args.sweep).text)
    entity = args.entity or sweep.meta.get("entity") or os.environ.get("WANDB_ENTITY")
    project = args.project or sweep.meta.get("project") or os.environ.get("WANDB_PROJECT")
    if not project:
        raise UserError("no W&B project: pass --project P (and --entity E), or set WANDB_PROJECT")
    todo, tally = plan(sweep, entity, project)
    if todo and not args.dry_run:
        require_wandb_login()  # else every run fails alike with wandb's own error, after the plan
    _print_plan(sweep, todo, tally, f"{entity}/{project}" if entity else project)
    if args.dry_run or not todo:
        if args.dry_run:
            print("dry run: nothing uploaded, no copy made")
        return 0
    failed = sum(not _upload(sweep, item, entity, project) for item in todo)
    print(f"synced {len(todo) - failed} of {len(todo)} run(s)")
    return 1 if failed else 0


def _print_plan(
    sweep: store_mod.LocalSweep, todo: list[dict[str, Any]], tally: dict[str, int], where: str
) -> None:
    print(
        f"sync plan for sweep {sweep.sweep_id} -> W&B {where}: {tally['to_sync']} run(s) to upload, "
        f"{tally['already_synced']} already synced, {tally['not_ended']} not ended, {tally['no_wandb_data']} without W&B data"
    )
    for item in todo:
        copied = "; from a copy without the local sweep id" if item["copies"] else ""
        print(f"  # run {item['run_id']} ({item['state']}, tagged sweep:{sweep.sweep_id}{copied})")
        print("  " + shlex.join(item["command"]))
    copied_runs = sum(1 for item in todo if item["copies"])
    if copied_runs:
        print(
            f"{copied_runs} run(s) name the local sweep id {sweep.sweep_id} as their W&B sweep, which W&B's server "
            f"refuses: they are uploaded from a copy without it (tagged sweep:{sweep.sweep_id}) made under "
            f"{sweep.path / sync_copy.COPIES}; the originals are not changed"
        )


def _upload(
    sweep: store_mod.LocalSweep, item: dict[str, Any], entity: str | None, project: str
) -> bool:
    """Upload one run (from a copy without the local sweep id where needed) and record it as
    synced; False when it failed and will be retried next time."""
    try:
        for original, copy in item["copies"].items():
            sync_copy.write_copy(Path(original), Path(copy), sweep.sweep_id)
    except OSError as err:
        sync_copy.remove_copies(sweep.path, item["run_id"])
        refusal = _write_refusal(err)
        if refusal is not None:  # every later copy would fail alike: stop here, in one line
            raise as_user_error(
                refusal,
                space_fix=f"free space in {sweep.path} and rerun sync",
                then="runs uploaded so far are recorded, the rest are uploaded when sync is rerun",
            ) from None
        print(
            f"sweepkit sync: cannot copy run {item['run_id']} without the local sweep id: {err}; nothing uploaded for it, "
            "it will be retried next time",
            file=sys.stderr,
        )
        return False
    try:
        result = subprocess.run(item["command"])
    finally:
        if item["copies"]:
            sync_copy.remove_copies(sweep.path, item["run_id"])
    if result.returncode != 0:
        print(
            f"sweepkit sync: wandb sync failed for run {item['run_id']} (exit {result.returncode}); it will be retried next time",
            file=sys.stderr,
        )
        return False
    try:
        _remember(sweep, item, entity, project)
    except OSError as err:
        raise as_user_error(
            err,
            sweep.path / "synced.json",
            "free space there and rerun sync",
            then=f"run {item['run_id']} was uploaded but is not recorded as synced (a rerun of "
            "sync uploads it again, to the same W&B run)",
        ) from None
    return True


def _write_refusal(err: OSError) -> OSError | None:
    """The full or read-only disk behind a failed copy: ``shutil.copytree`` goes on past each
    file it cannot copy and raises one ``shutil.Error`` listing (source, copy, reason) texts."""
    if is_write_refusal(err):
        return err
    if isinstance(err, shutil.Error) and err.args and isinstance(err.args[0], list):
        for entry in err.args[0]:
            for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                if len(entry) == 3 and f"[Errno {code}]" in str(entry[2]):
                    return OSError(code, os.strerror(code), str(entry[1]))
    return None


def _remember(
    sweep: store_mod.LocalSweep, item: dict[str, Any], entity: str | None, project: str
) -> None:
    with sweep.lock():
        synced = load_synced(sweep)
        synced[item["run_id"]] = {
            "paths": item["paths"],
            "entity": entity,
            "project": project,
            "synced_at": store_mod.iso(time.time()),
        }
        write_atomic(
            sweep.path / "synced.json",
            (json.dumps(synced, indent=2, sort_keys=True) + "\n").encode(),
            SHARED_FILE_MODE,
        )
