"""The pure rule for a run without an end record: its own records say how it ended, or nothing."""

from __future__ import annotations

from sweepkit.jobs.sweeps.store.reconcile import Reconciled, reconcile


def test_run_json_says_how_the_run_ended_first() -> None:
    assert reconcile({"state": "finished", "exit_code": 0}, None) == Reconciled(
        "finished", 0, "run.json"
    )
    failed = reconcile({"state": "failed", "exit_code": 1, "error": "boom"}, 1)
    assert failed == Reconciled("failed", 1, "run.json", "boom")
    assert reconcile({"state": "preempted", "exit_code": 75}, None) == Reconciled(
        "preempted", 75, "run.json"
    )


def test_else_the_wandb_exit_record() -> None:
    source = "its W&B exit record"
    assert reconcile({}, 0) == Reconciled("finished", 0, source)
    assert reconcile({"state": "running"}, 0) == Reconciled("finished", 0, source)
    assert reconcile({}, 75) == Reconciled("preempted", 75, source)
    assert reconcile({}, 3) == Reconciled("failed", 3, source, "exit code 3")


def test_records_that_do_not_say_it_ended_give_nothing_so_it_is_crashed() -> None:
    assert reconcile({}, None) is None
    assert reconcile({"state": "running"}, None) is None
    assert reconcile({"state": "crashed"}, None) is None
