"""Lease files go when their attempt ends, and a killed agent that its parent has not reaped (a
zombie) counts as gone: its run is taken over at once, not after the lease time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import REPO, SWEEPKIT, wait_for

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import claim_policy, leases

# above Linux's largest pid_max (2^22): no process ever has it, so its holder is gone
NEVER_A_PID = 2**22 + 1
GRID = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "prog.py", "${args}"],
    "parameters": {"a": {"values": [1, 2, 3]}},
}


def make(tmp_path: Path, **kw: Any) -> store.LocalSweep:
    return store.create_sweep(GRID, tmp_path / "sweeps", source="test", **kw)


def lease_files(sweep: store.LocalSweep) -> list[str]:
    return sorted(p.name for p in (sweep.path / "leases").iterdir())


def test_a_finished_attempt_leaves_no_lease_file(tmp_path: Path) -> None:
    sweep, me = make(tmp_path), store.AgentIdentity()
    claim = sweep.claim(me)
    assert isinstance(claim, store.Claim)
    sweep.heartbeat(claim, me)
    assert lease_files(sweep) == [f"{claim.run_id}.0.json"]
    assert sweep.finish(claim, me, "finished")
    assert lease_files(sweep) == []


def test_the_claim_that_ends_an_expired_attempt_removes_its_lease_file(tmp_path: Path) -> None:
    sweep = make(tmp_path, lease_s=3600)
    gone = store.AgentIdentity(pid=NEVER_A_PID)  # on this host: its pid is checked, and absent
    first = sweep.claim(gone)
    assert isinstance(first, store.Claim)
    sweep.heartbeat(first, gone, child_pid=NEVER_A_PID)
    again = sweep.claim(store.AgentIdentity())
    assert isinstance(again, store.Claim) and (again.run_id, again.k) == (first.run_id, 1)
    assert lease_files(sweep) == [], "the crashed attempt's lease went with its end record"
    # the holder, had it lived on, would not record its end, and would remove its file itself
    assert not sweep.finish(first, gone, "finished")
    assert sweep.fold.runs[first.run_id].ends[0]["state"] == "crashed"


@pytest.mark.parametrize("from_snapshot", [False, True])
def test_lease_files_of_ended_attempts_left_behind_are_removed(
    tmp_path: Path, from_snapshot: bool
) -> None:
    """An agent killed between its end record and its lease file's removal leaves the file; what
    removes it keeps the running attempts' files and those of runs the journal does not name."""
    sweep, me = make(tmp_path), store.AgentIdentity()
    ended, running = sweep.claim(me), sweep.claim(me)
    assert isinstance(ended, store.Claim) and isinstance(running, store.Claim)
    for claim in (ended, running):
        sweep.heartbeat(claim, me)
    sweep.append([claim_policy.end_record(ended.run_id, 0, "finished", me, time.time())])
    (sweep.path / "leases" / "unknownrun.0.json").write_text("{}")
    if from_snapshot:  # a fresh reader whose snapshot head leaves the ended run unread
        sweep.write_snapshot(force=True)
        sweep = store.open_sweep(sweep.path)
    assert sweep.remove_ended_leases() == 1
    assert lease_files(sweep) == sorted([f"{running.run_id}.0.json", "unknownrun.0.json"])
    assert sweep.remove_ended_leases() == 0


def test_a_live_process_is_no_zombie() -> None:
    assert not leases.zombie(os.getpid()) and leases.alive(os.getpid())
    assert not leases.alive(NEVER_A_PID) and not leases.zombie(NEVER_A_PID)


SLEEPER = "import time\nprint('program started', flush=True)\ntime.sleep(600)\n"


@pytest.mark.system  # starts an agent and its program
def test_an_unreaped_killed_agent_is_taken_over_at_once(tmp_path: Path) -> None:
    """This test is the agent's parent and never reaps it after its SIGKILL: its pid stays (a
    zombie). With a lease of an hour, the next claim still ends its attempt and hands its run out
    again at once."""
    (tmp_path / "prog.py").write_text(SLEEPER)
    sweep = make(tmp_path, lease_s=3600)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with open(tmp_path / "agent.log", "wb") as log:
        agent = subprocess.Popen(
            [*SWEEPKIT, "agent", str(sweep.path)], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
    leases_dir = sweep.path / "leases"
    wait_for(
        lambda: any(json.loads(p.read_text()).get("child_pid") for p in leases_dir.glob("*.json")),
        120,
        "the agent's program to start",
    )
    lease = json.loads(next(leases_dir.glob("*.json")).read_text())
    assert lease["pid"] == agent.pid
    try:
        os.kill(agent.pid, signal.SIGKILL)
        wait_for(lambda: leases.zombie(agent.pid), 30, "the agent to be a zombie")
        # its program gets SIGTERM as its parent dies (die_with_parent) and ends (or is a zombie)
        wait_for(lambda: not leases.alive(lease["child_pid"]), 30, "the program to end")
        taker = store.open_sweep(sweep.path).claim(store.AgentIdentity())
        assert leases.zombie(agent.pid), "the holder's pid still exists while it is taken over"
    finally:
        agent.wait()  # reaped only now
    assert isinstance(taker, store.Claim), taker
    assert (taker.run_id, taker.k, taker.resumed) == (lease["run"], 1, True)
    assert not (leases_dir / f"{lease['run']}.0.json").exists()


def test_an_attempt_ended_while_its_agent_got_ready_is_not_started(tmp_path: Path) -> None:
    """An agent slow to build its command (a loaded node) may find its lease expired and its run
    handed to another agent: it does not start the program beside the other attempt's."""
    from sweepkit.jobs.sweeps.agent.local import LocalAgent

    sweep = make(tmp_path, lease_s=3600)
    agent = LocalAgent(sweep)  # the real process runner: a start here would fail the unit tier
    claim = sweep.claim(agent.me)
    assert isinstance(claim, store.Claim)
    other = store.AgentIdentity()
    sweep.append([claim_policy.end_record(claim.run_id, 0, "crashed", other, time.time())])
    assert agent.run_one(claim) == ("crashed", 0)
    assert not (claim.run_dir / "output.log").exists() and lease_files(sweep) == []
