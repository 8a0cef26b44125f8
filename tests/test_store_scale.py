"""What keeps a large sweep's claims cheap: no lease file read per running run under the lock, and
the bayes engine handed only what it uses (the same GP data as from full histories)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobs.sweeps import store

RANDOM = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "train", "${args}"],
    "parameters": {"lr": {"min": 0.0, "max": 1.0}},
}


def reads_under_the_lock(sweep: store.LocalSweep) -> list[str]:
    """Record which runs' lease files are opened while this sweep holds its lock."""
    lock = sweep.lock()
    held = {"now": False}
    reads: list[str] = []
    enter, leave = type(lock).__enter__, type(lock).__exit__

    class Watched(type(lock)):  # type: ignore[misc]
        def __enter__(self) -> Any:
            out = enter(self)
            held["now"] = True
            return out

        def __exit__(self, *exc: object) -> None:
            held["now"] = False
            leave(self, *exc)

    lock.__class__ = Watched
    lease_path = sweep._lease_path

    def watched_lease_path(run_id: str, k: int) -> Path:
        if held["now"]:
            reads.append(run_id)
        return lease_path(run_id, k)

    sweep._lease_path = watched_lease_path  # type: ignore[method-assign]
    return reads


def test_a_claim_reads_no_lease_per_running_run_under_the_lock(tmp_path: Path) -> None:
    sweep = store.create_sweep(RANDOM, tmp_path, source="test", lease_s=0.5)
    others = [store.AgentIdentity(host=f"node{i}", pid=100 + i) for i in range(20)]
    claims = [sweep.claim(a) for a in others]
    time.sleep(0.6)  # every claim is now older than the lease: only heartbeats keep them alive
    for claim, agent in zip(claims, others, strict=True):
        assert isinstance(claim, store.Claim)
        sweep.heartbeat(claim, agent)
    reads = reads_under_the_lock(sweep)
    me = store.AgentIdentity()
    mine = sweep.claim(me)
    assert isinstance(mine, store.Claim)
    assert reads == []  # 20 running runs, all alive: not one lease read under the lock
    # one agent goes silent: its run is read again under the lock, and only it, and is crashed
    time.sleep(0.6)
    for claim, agent in zip(claims[1:], others[1:], strict=True):
        assert isinstance(claim, store.Claim)
        sweep.heartbeat(claim, agent)
    sweep.heartbeat(mine, me)
    again = sweep.claim(me)
    first = claims[0]
    assert isinstance(first, store.Claim) and isinstance(again, store.Claim)
    assert reads == [first.run_id]
    # crashed, and handed out again (retries left) to this claim
    assert again.run_id == first.run_id and again.resumed
    ends = [e for r in sweep.refresh().values() for e in r.ends.values()]
    assert [(e["run"], e["state"]) for e in ends] == [(first.run_id, "crashed")]
