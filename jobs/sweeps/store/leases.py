"""Leases: how an agent says it still holds a run, and how others tell that it is gone.

An agent rewrites ``leases/<run_id>.<k>.json`` (``k``: the attempt's 0-based index, as in the
journal; folder.attempt_file_name) by atomic rename every few seconds while its run runs. A lease
expires when its heartbeat is older than ``lease_s``; also at once when the holder was on this
host (and PID namespace) and its process is gone, or when the same SLURM array task has been
restarted. Clocks of the nodes are assumed synchronised (NTP), as flufl.lock also
assumes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.state import new_id
from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE
from sweepkit.train.atomic import write_atomic
from sweepkit.train.runrecord import node_name, pid_namespace, slurm_ids

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
    younger than the lease, whose holder is alive, cannot have expired: its file is not read."""
    claim = run.claims[-1]
    if (
        now - claim.get("at", 0) < lease_s
        and not same_slurm_task(claim.get("slurm"), me.slurm if me else None)
        and (not pids_comparable(claim) or alive(claim.get("pid")))
    ):
        return False
    try:
        lease = json.loads(lease_file.read_text())
    except (OSError, ValueError):  # no heartbeat yet: the claim record stands for one
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
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
