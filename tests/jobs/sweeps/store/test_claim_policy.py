"""The claim policy (jobs/sweeps/store/claim_policy.py), in memory: which run an agent gets next.

The multi-process tests of the same policy, with real files, locks and agents, stay in
tests/test_store.py; these pin the decisions themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from journal_records import claim, end

from sweepkit.jobs.sweeps.store import claim_policy
from sweepkit.jobs.sweeps.store.fold import Fold, apply
from sweepkit.jobs.sweeps.store.reconcile import Reconciled

X1 = {"x": {"value": 1}}
X2 = {"x": {"value": 2}}


@dataclass
class Me:
    agent: str = "me"
    host: str = "node1"
    pid: int = 42
    pid_ns: str | None = "ns"
    slurm: dict[str, str | None] = field(default_factory=dict)


def test_a_new_run_takes_the_first_proposal() -> None:
    assert claim_policy.decide(Fold(), [X2, X1]) == claim_policy.New(X2)


def test_a_queued_run_goes_before_any_new_one_the_longest_queued_first() -> None:
    fold = apply(
        Fold(),
        [claim("late", 0, X1), claim("early", 0, X2)]
        + [end("late", 0, "preempted", at=20.0), end("early", 0, "crashed", at=10.0)],
    )
    assert claim_policy.decide(fold, [X1]) == claim_policy.Resume("early", 1, X2)
    assert claim_policy.decide(fold, [X1], refused=frozenset({"early"})) == claim_policy.Resume(
        "late", 1, X1
    )
    assert claim_policy.decide(
        fold, [X1], refused=frozenset({"early", "late"})
    ) == claim_policy.New(X1)


def test_run_cap_and_a_hit_target_stop_new_runs_but_not_the_queue() -> None:
    fold = apply(Fold(), [claim("a", 0, X1), end("a", 0, "finished")])
    capped = claim_policy.decide(fold, [X2], run_cap=1)
    assert capped == claim_policy.NoClaim(True, "sweep complete: 1 of 1 runs done (1 finished)")
    assert claim_policy.decide(fold, [X2], run_cap=2) == claim_policy.New(X2)
    hit = apply(Fold("maximize", 0.5), [claim("a", 0, X1), end("a", 0, "finished", metric=0.7)])
    assert isinstance(claim_policy.decide(hit, [X2]), claim_policy.NoClaim)
    apply(fold, [claim("b", 0, X2), end("b", 0, "preempted")])
    assert claim_policy.decide(fold, [X1], run_cap=1) == claim_policy.Resume("b", 1, X2), (
        "within the cap"
    )


def test_missing_proposals_are_made_outside_the_lock_while_a_try_is_left() -> None:
    assert claim_policy.decide(Fold(), None, may_wait=True) == claim_policy.Propose(
        outside_lock=True
    )
    assert claim_policy.decide(Fold(), None, may_wait=False) == claim_policy.Propose(
        outside_lock=False
    )


def test_an_engine_with_nothing_more_to_propose_is_no_claim() -> None:
    fold = apply(Fold(), [claim("a", 0, X1), claim("b", 0, X2), end("b", 0, "failed")])
    assert claim_policy.decide(fold, [], planned=4) == claim_policy.NoClaim(
        False, "nothing to claim: 1 of 4 runs done, 1 running on other agents"
    )
    apply(fold, [end("a", 0, "finished")])
    assert claim_policy.decide(fold, []) == claim_policy.NoClaim(
        True, "sweep complete: 2 of 2 runs done (1 finished, 1 failed)"
    )


def test_claim_records_carry_the_holder_and_params_only_on_the_first_attempt() -> None:
    first = claim_policy.claim_record("r", 0, X1, Me(), 5.0)
    assert first == {
        "t": "claim", "run": "r", "k": 0, "at": 5.0, "agent": "me", "host": "node1",
        "pid": 42, "pid_ns": "ns", "slurm": {}, "params": X1,
    }  # fmt: skip
    assert "params" not in claim_policy.claim_record("r", 1, None, Me(), 6.0)
    fold = apply(
        Fold(), [first, claim_policy.end_record("r", 0, "preempted", Me(), 7.0, exit_code=75)]
    )
    apply(fold, [claim_policy.claim_record("r", 1, None, Me(), 8.0)])
    assert fold.runs["r"].k == 1 and fold.runs["r"].params == X1


def expired(found: tuple[Reconciled, dict[str, Any]] | None) -> dict[str, Any]:
    fold = apply(Fold(), [{**claim("r", 0, X1), "host": "node9", "pid": 7}])
    return claim_policy.expired_end(fold.runs["r"], found, Me(), 100.0, 30.0)


def test_an_expired_lease_is_crashed_unless_the_run_says_how_it_ended() -> None:
    assert expired(None) == {
        "t": "end", "run": "r", "k": 0, "at": 100.0, "by": "me", "state": "crashed",
        "error": "lease expired: no heartbeat from agent a on node9 (pid 7) for 30 s",
    }  # fmt: skip
    said = Reconciled("finished", 0, "run.json")
    record = expired((said, {"metric": 0.4, "epochs": 3}))
    assert (record["state"], record["metric"], record["reconciled_from"]) == (
        "finished", 0.4, "run.json",
    )  # fmt: skip
    fold = apply(Fold(), [claim("r", 0, X1), record])
    assert fold.runs["r"].state == "finished" and claim_policy.queue(fold) == []


def test_an_expired_crash_is_queued_and_resumed_by_the_same_claim() -> None:
    fold = apply(Fold(), [claim("r", 0, X1)])
    apply(fold, [claim_policy.expired_end(fold.runs["r"], None, Me(), 100.0, 30.0)])
    assert claim_policy.decide(fold, [X2]) == claim_policy.Resume("r", 1, X1)


def test_complete_when_nothing_is_open_and_nothing_more_can_be_added() -> None:
    fold = apply(Fold(), [claim("a", 0, X1)])
    assert not claim_policy.complete(fold, None, 1), "a run is still running"
    apply(fold, [end("a", 0, "finished")])
    assert claim_policy.complete(fold, None, 1)
    assert not claim_policy.complete(fold, None, 2), "the grid has one more point"
    assert not claim_policy.complete(fold, None, None), "a random search never runs out"
    assert claim_policy.complete(fold, 1, None), "run_cap reached"


def test_a_sweep_complete_at_its_target_names_the_run_and_its_value() -> None:
    fold = Fold("maximize", 0.5, metric_name="val.acc")
    apply(fold, [claim("a", 0, X1), claim("b", 0, X2), end("a", 0, "finished", metric=0.4)])
    apply(fold, [end("b", 0, "finished", at=2.0, metric=0.75)])
    assert claim_policy.decide(fold, [X1], planned=4) == claim_policy.NoClaim(
        True,
        "sweep complete: run b reached the target: val.acc=0.75 (metric.target >= 0.5); "
        "2 of 4 runs done (2 finished)",
    )
    # a run that got there later (it was already running) is not the one that ended the search
    apply(fold, [claim("c", 0, X1), end("c", 0, "finished", at=3.0, metric=0.9)])
    assert fold.target_reached() == ("b", 0.75)
    low = apply(Fold("minimize", 0.1), [claim("a", 0, X1), end("a", 0, "finished", metric=0.05)])
    assert low.target_line() == "run a reached the target: metric=0.05 (metric.target <= 0.1)"
    assert Fold("minimize", 0.1).target_line() is None
