"""Leases: how an agent says it still holds a run, and how others tell that it is gone.

An agent rewrites ``leases/<run_id>.<k>.json`` (``k``: the attempt's 0-based index, as in the
journal; folder.attempt_file_name) by atomic rename every few seconds while its run runs. A lease
expires when its heartbeat is older than ``lease_s``; also at once when the holder was on this
host (and PID namespace) and its process is gone (or a zombie: killed, not yet reaped), or
when the same SLURM array task has been restarted. Clocks of the nodes are assumed synchronised
(NTP), as flufl.lock also assumes. A lease file goes when its attempt ends, after the attempt's
end record (``LocalSweep.finish``, or the claim that ends an expired attempt); one left by an agent
killed between the two belongs to an ended attempt and is removed later (``ended_lease_files``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sweepkit.jobs.sweeps.state import new_id
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun
from sweepkit.jobs.sweeps.store.folder import attempt_file_name
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE
from sweepkit.jobs.sweeps.store.lost_records import RECOVERED
from sweepkit.train.atomic import write_atomic
from sweepkit.train.runrecord import node_name, pid_namespace, slurm_ids


class FoldReader(Protocol):
    """What ``remove_ended`` reads the journal through (journal_fold.JournalFold)."""

    def catch_up(self) -> Fold: ...
    def read_all(self) -> Fold: ...


HOST = node_name()  # this machine (the node's name, also inside a container)
PID_NS = pid_namespace()  # whose pids os.kill can check: those of this PID namespace


@dataclass
class AgentIdentity:
    """Who holds a lease: enough to tell, from another process, whether the holder is gone."""

    agent: str = field(default_factory=lambda: new_id(12))
    host: str = HOST
    pid: int = field(default_factory=os.getpid)
    pid_ns: str | None = PID_NS
    slurm: dict[str, str | None] = field(default_factory=slurm_ids)


def lease_expired(
    lease: dict[str, Any], lease_s: float, me: AgentIdentity | None, now: float
) -> bool:
    """True if the holder of ``lease`` is gone: no heartbeat for ``lease_s``; or its pids are ours to
    check and neither it nor its program is alive; or ``me`` is the same SLURM array task,
    restarted."""
    if now - float(lease.get("beat_at") or 0) > lease_s:
        return True
    if pids_comparable(lease) and not alive(lease.get("pid")) and not alive(lease.get("child_pid")):
        return True
    theirs, mine = lease.get("slurm") or {}, (me.slurm if me else {})
    return same_slurm_task(theirs, mine) and int(mine.get("restart_count") or 0) > int(
        theirs.get("restart_count") or 0
    )


def run_lease_expired(
    run: FoldedRun, lease_file: Path, lease_s: float, me: AgentIdentity | None, now: float
) -> bool:
    """True if the lease of ``run``'s current attempt (its file ``lease_file``) expired. A claim
    younger than the lease, whose holder is alive, cannot have expired: its file is not read. A
    claim recovered from the folder (lost_records.py) has no holder and a file's time, which
    says nothing of one: only its lease file can hold it, as an agent beats before it writes
    the parameter file the claim was recovered from."""
    claim = run.claims[-1]
    recovered = bool(claim.get(RECOVERED))
    if (
        not recovered
        and now - claim.get("at", 0) < lease_s
        and not same_slurm_task(claim.get("slurm"), me.slurm if me else None)
        and (not pids_comparable(claim) or alive(claim.get("pid")))
    ):
        return False
    try:
        lease = json.loads(lease_file.read_text())
    except (OSError, ValueError):  # no heartbeat yet: the claim record stands for one
        if recovered:  # no heartbeat ever came, or its attempt ended: nobody holds it
            return True
        lease = {
            "beat_at": claim.get("at", 0),
            "host": claim.get("host"),
            "pid": claim.get("pid"),
            "pid_ns": claim.get("pid_ns"),
            "slurm": claim.get("slurm"),
        }
    return lease_expired(lease, lease_s, me, now)


def write_heartbeat(
    lease_file: Path,
    run_id: str,
    k: int,
    lease_s: float,
    me: AgentIdentity,
    child_pid: int | None = None,
    mode: int = SHARED_FILE_MODE,
) -> None:
    lease = {
        "run": run_id,
        "k": k,
        "beat_at": time.time(),
        "lease_s": lease_s,
        "agent": me.agent,
        "host": me.host,
        "pid": me.pid,
        "pid_ns": me.pid_ns,
        "child_pid": child_pid,
        "slurm": me.slurm,
    }
    write_atomic(lease_file, json.dumps(lease).encode(), mode)


def remove_ended(folder: Path, state: FoldReader) -> int:
    """Remove the lease files in ``folder`` (``leases/``) whose attempt has ended, and say how many:
    those an agent left when it was killed after its end record, or a holder's last heartbeat
    after another agent ended its attempt. The folder is listed before the journal is read on, so
    the claim of every file listed is read; a file whose run is not known stays (its claim may be
    a record the journal lost). Rare: only the runs that are not open need every run read."""
    attempts = []
    for path in folder.glob("*.json"):
        run_id, _, index = path.name.removesuffix(".json").rpartition(".")
        if index.isdigit():
            attempts.append((path, run_id, int(index)))
    if not attempts:
        return 0
    fold = state.catch_up()
    if any(run_id not in fold.open for _, run_id, _ in attempts):
        fold = state.read_all()
    removed = 0
    for path, run_id, k in attempts:
        run = fold.runs.get(run_id)
        if run is not None and k in run.ends:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def pids_comparable(record: dict[str, Any]) -> bool:
    """True if the pids in a claim or lease name processes this process can probe: the same host
    and the same PID namespace. Two containers on one node share its name but not their pids.
    A record without ``pid_ns`` (written before it was recorded, or where /proc has none) counts
    as this namespace's, as before."""
    return record.get("host") == HOST and (record.get("pid_ns") or PID_NS) == PID_NS


def same_slurm_task(theirs: dict[str, Any] | None, mine: dict[str, Any] | None) -> bool:
    """True if both are the same SLURM (array) task: the same job id and array task id."""
    theirs, mine = theirs or {}, mine or {}
    return bool(
        mine.get("job_id")
        and theirs.get("job_id") == mine.get("job_id")
        and theirs.get("array_task_id") == mine.get("array_task_id")
    )


def alive(pid: Any) -> bool:
    """True if process ``pid`` (of this PID namespace) runs. A zombie (killed, not yet reaped by
    its parent) does not: its pid exists until the parent waits for it, which a SLURM step or a
    shell that is busy elsewhere may not do for a long time, but it will never beat again."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    return not zombie(pid)


def zombie(pid: int) -> bool:
    """True if ``pid`` is a zombie: state ``Z`` in Linux's ``/proc/<pid>/stat``, the field after the
    command name in parentheses (which may itself hold spaces and parentheses). False where there
    is no such file (another system, or the process is gone): ``os.kill`` answers for those."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] == b"Z"


class LeaseFiles:
    """A sweep's lease files, ``leases/<run_id>.<k>.json``: one per running attempt."""

    def __init__(self, folder: Path, lease_s: float, mode: int = SHARED_FILE_MODE):
        self.folder, self.lease_s, self.mode = folder, lease_s, mode

    def path(self, run_id: str, k: int) -> Path:
        return self.folder / f"{attempt_file_name(run_id, k)}.json"

    def beat(self, run_id: str, k: int, me: AgentIdentity, child_pid: int | None = None) -> None:
        write_heartbeat(self.path(run_id, k), run_id, k, self.lease_s, me, child_pid, self.mode)

    def end(self, run_id: str, k: int) -> None:  # once the attempt's end record is in
        self.path(run_id, k).unlink(missing_ok=True)

    def expired(self, run: FoldedRun, me: AgentIdentity | None, now: float) -> bool:
        return run_lease_expired(run, self.path(run.run_id, run.k), self.lease_s, me, now)

    def expired_running(self, runs: Iterable[FoldedRun], me: AgentIdentity) -> list[str]:
        """The running runs whose lease looks expired now, by their claim and lease file (read
        without the lock)."""
        now = time.time()
        return [r.run_id for r in runs if r.state == "running" and self.expired(r, me, now)]
