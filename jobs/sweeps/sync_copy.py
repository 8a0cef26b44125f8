"""Copies of offline runs that name the local sweep id as their W&B sweep, for ``sweepkit sync``.

A script run by the agent gets WANDB_SWEEP_ID (as ``wandb agent`` sets it), so ``wandb.init``
records the local sweep's id as the run's W&B sweep id, and W&B's server refuses a run naming a
sweep it did not issue ("sweep ... not found"). Such a run is uploaded from a copy of its offline
run folder (``SWEEP/.sync/<run id>/<folder name>``, the name wandb sync reads the run's start time
and id from) whose transaction log is the original's, record by record, except that each run
record naming the local id has no sweep id and the tag ``sweep:<id>``, as the trainer's own runs
have. The originals are never written; the copy is removed once its upload is done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.wandb_run import records as wandb_records
from sweepkit.jobs.sweeps.wandb_run.log import TransactionLog, write_log

COPIES = ".sync"  # under the sweep folder


def carries_sweep_id(offline_run: Path, sweep_id: str) -> bool:
    """True if the offline run's run record has ``sweep_id`` as its W&B sweep id."""
    return any(_carrying_logs(offline_run, sweep_id))


def _carrying_logs(offline_run: Path, sweep_id: str) -> list[Path]:
    return [
        log
        for log in sorted(offline_run.glob("run-*.wandb"))
        if wandb_records.run_record(log).get("sweep_id") == sweep_id
    ]


def copy_folder(sweep_path: Path, run_id: str, offline_run: Path) -> Path:
    """Where the rewritten copy of ``offline_run`` goes (same folder name)."""
    return sweep_path / COPIES / run_id / offline_run.name


def without_sweep_id(payloads: list[bytes], sweep_id: str) -> list[bytes]:
    """The records of a log, each run record that names ``sweep_id`` as its W&B sweep re-encoded
    without it and tagged ``sweep:<id>``; every other record is its original bytes."""
    from google.protobuf.message import DecodeError
    from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]

    tag = f"sweep:{sweep_id}"
    out = []
    for payload in payloads:
        record: Any = Record()
        try:
            record.ParseFromString(payload)
        except DecodeError:  # not a record this wandb reads: passed on as it is
            out.append(payload)
            continue
        if record.WhichOneof("record_type") != "run" or record.run.sweep_id != sweep_id:
            out.append(payload)
            continue
        record.run.sweep_id = ""
        if tag not in record.run.tags:
            record.run.tags.append(tag)
        out.append(record.SerializeToString())
    return out


def write_copy(offline_run: Path, copy: Path, sweep_id: str) -> None:
    """Make ``copy``: every file of ``offline_run`` as it is, but its transaction logs that name
    ``sweep_id`` rewritten by ``without_sweep_id``. Built beside ``copy`` and renamed into place,
    so a copy is whole or absent; a copy left by an earlier sync is replaced."""
    carrying = {log.name for log in _carrying_logs(offline_run, sweep_id)}
    building = copy.with_name(f".{copy.name}.partial")
    for stale in (building, copy):
        shutil.rmtree(stale, ignore_errors=True)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        offline_run,
        building,
        symlinks=True,
        ignore=lambda folder, names: carrying if Path(folder) == offline_run else set(),
    )
    for name in carrying:
        log = TransactionLog(offline_run / name)
        payloads = log.read_payloads(final=True)
        write_log(
            building / name,
            without_sweep_id(payloads, sweep_id),
            os.stat(offline_run / name).st_mode & 0o7777,
        )
    os.replace(building, copy)


def remove_copies(sweep_path: Path, run_id: str) -> None:
    """Remove the run's copies, and the copies' folder once it is empty."""
    shutil.rmtree(sweep_path / COPIES / run_id, ignore_errors=True)
    # not empty: another run's copies are still there (a sync running beside this one)
    with contextlib.suppress(OSError):
        (sweep_path / COPIES).rmdir()
