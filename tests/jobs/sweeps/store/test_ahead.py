"""Bayes proposals made ahead (store/ahead.py): each taken by one claim, even with many agents
claiming at once; a stale one never used; a record of an unknown kind ignored."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.store import ahead
from sweepkit.jobs.sweeps.store.fold import STALE_AFTER_ENDS, Fold, apply

DEFINITION = {
    "program": "train.py",
    "method": "bayes",
    "metric": {"name": "acc", "goal": "maximize"},
    "parameters": {"lr": {"min": 0.0, "max": 1.0}},
}


def _records(path: Path) -> list[dict[str, Any]]:
    sweep = store.open_sweep(path)
    return [r for run in sweep.refresh().values() for r in run.claims]


def _claim(path: str, claims: int, done: Any) -> None:
    """A fresh agent per claim (no engine loaded unless it had to propose), each alive with its
    lease until every agent has claimed (a dead holder's run would be handed out again)."""
    for _ in range(claims):
        sweep, me = store.open_sweep(path), store.AgentIdentity()
        got = sweep.claim(me)
        assert isinstance(got, store.Claim)
        sweep.heartbeat(got, me)
    done.wait(timeout=300)


@pytest.mark.system  # forks agents
def test_many_agents_take_each_proposal_once(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test")
    proposals = [ahead.propose_record({"lr": {"value": i / 10}}, 0, "test") for i in range(6)]
    sweep.append(proposals)
    ctx = multiprocessing.get_context("fork")
    done = ctx.Barrier(4)
    agents = [ctx.Process(target=_claim, args=(str(sweep.path), 2, done)) for _ in range(4)]
    for p in agents:
        p.start()
    for p in agents:
        p.join(timeout=300)
        assert p.exitcode == 0
    claims = _records(sweep.path)
    assert len(claims) == 8 and all(c["k"] == 0 for c in claims)
    taken = [c["proposal"] for c in claims if "proposal" in c]
    assert len(taken) == len(set(taken)) == 6, "every proposal taken, none twice"
    by_id = {p["id"]: p["params"] for p in proposals}
    assert all(c["params"] == by_id[c["proposal"]] for c in claims if "proposal" in c)
    assert not store.open_sweep(sweep.path).fold.ahead.pending


def test_a_stale_proposal_is_not_used(tmp_path: Path) -> None:
    sweep = store.create_sweep(DEFINITION, tmp_path, source="test")
    me = store.AgentIdentity()
    sweep.append([ahead.propose_record({"lr": {"value": 0.5}}, 0, "test")])
    # the first claims take it or propose; end more runs than a proposal may lag behind
    sweep.append([ahead.propose_record({"lr": {"value": 0.25}}, 0, "test")])
    for _ in range(STALE_AFTER_ENDS + 1):
        got = sweep.claim(me)
        assert isinstance(got, store.Claim)
        sweep.finish(got, me, "finished", metric=0.5, history=[0.5], epochs=1)
    fresh = store.open_sweep(sweep.path)
    assert fresh.fold.ahead.pending == {}, "dropped once stale"
    got = fresh.claim(me)
    assert isinstance(got, store.Claim)
    assert "proposal" not in fresh.fold.runs[got.run_id].claims[0]


def test_the_fold_drops_a_proposal_only_once_more_than_the_limit_ended() -> None:
    made = {"t": "propose", "id": "p1", "params": {"x": 1}, "ended": 0}
    runs = [{"t": "claim", "run": f"r{i}", "k": 0, "params": {"x": i}} for i in range(4)]
    ends = [{"t": "end", "run": f"r{i}", "k": 0, "state": "finished"} for i in range(4)]
    fold = apply(Fold(), [made, *runs, *ends[:STALE_AFTER_ENDS]])
    assert list(fold.ahead.pending) == ["p1"]
    apply(fold, [ends[STALE_AFTER_ENDS], ends[STALE_AFTER_ENDS]])  # a second end counts once
    assert fold.ahead.ended == STALE_AFTER_ENDS + 1 and fold.ahead.pending == {}


def test_a_record_of_an_unknown_kind_changes_nothing() -> None:
    claim = {"t": "claim", "run": "r1", "k": 0, "params": {"x": 1}}
    future = {"t": "later-kind", "run": "r1", "k": 0, "state": "finished"}
    seen = apply(Fold(), [claim, future])
    run = seen.runs["r1"]
    assert (run.state, run.claims, run.ends, list(seen.open)) == ("running", [claim], {}, ["r1"])
    assert seen.ahead == Fold().ahead
