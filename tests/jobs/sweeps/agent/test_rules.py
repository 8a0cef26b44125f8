"""The agent's rules, in memory: how a run ended, hyperband's stop, a sweep broken from the start."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sweepkit.jobs.sweeps.agent import messages, rules
from sweepkit.jobs.sweeps.agent.hyperband import BandValues, valid
from sweepkit.jobs.sweeps.failure import error_line
from sweepkit.jobs.sweeps.store import Outcomes, outcomes
from sweepkit.train.errors import UserError


def run(run_id: str, state: str, end: dict[str, Any] | None = None) -> SimpleNamespace:
    """A run as the journal folds it: its state and its last end record (None while running)."""
    return SimpleNamespace(run_id=run_id, state=state, last_end=end)


def failed(run_id: str, at: float, epochs: int = 0, error: str = "boom") -> SimpleNamespace:
    return run(run_id, "failed", {"at": at, "epochs": epochs, "exit_code": 1, "error": error})


def seen(runs: list[SimpleNamespace]) -> Outcomes:
    """What the rule reads of these runs: their counts (``fold.outcomes``)."""
    return outcomes(runs)


def never_trained(run_id: str) -> bool:
    return False


def must_not_read(run_id: str) -> bool:
    raise AssertionError(f"read run {run_id}'s files although the journal decided")


# --- how a run ended --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rc", "stopped", "signalled", "state"),
    [
        (0, False, False, "finished"),
        (1, False, False, "failed"),
        (2, False, False, "failed"),
        (75, False, False, "preempted"),
        (-15, False, True, "preempted"),  # the agent was signalled: the run resumes elsewhere
        (0, False, True, "finished"),  # it finished before the signal landed
        (-15, True, False, "stopped"),  # hyperband stopped it, whatever its exit code
        (0, True, False, "stopped"),
    ],
)
def test_the_exit_code_says_how_a_run_ended(
    rc: int, stopped: bool, signalled: bool, state: str
) -> None:
    assert rules.outcome(rc, stopped, signalled) == state


def test_a_failed_run_s_reason_is_its_output_s_tail_else_its_exit_code() -> None:
    tail = "Traceback (most recent call last):\n  File x\nValueError: bad lr\n\x1b[33mwandb: done\x1b[0m\n"
    reason = rules.failure_reason(tail, 1)
    assert reason == "Traceback (most recent call last):\n  File x\nValueError: bad lr\nwandb: done"
    assert error_line(reason) == "ValueError: bad lr", "the line status shows"
    assert rules.failure_reason("", 3) == "exit code 3"


# --- a sweep broken from the start -----------------------------------------------------------


def test_max_initial_failures_reads_the_variable() -> None:
    assert rules.max_initial_failures(None) == rules.DEFAULT_MAX_INITIAL_FAILURES == 3
    assert rules.max_initial_failures("0") == 0 and rules.max_initial_failures(" 5 ") == 5
    with pytest.raises(UserError, match=r"SWEEPKIT_MAX_INITIAL_FAILURES='three': must be a whole"):
        rules.max_initial_failures("three")


def test_runs_that_all_fail_before_an_epoch_make_a_broken_sweep() -> None:
    runs = [failed("a", 1.0), failed("c", 3.0), failed("b", 2.0)]
    last = rules.failing_from_the_start(seen(runs), 3, never_trained)
    assert last is not None and last.run_id == "c", "the last failed run is named"
    tied = [failed("b", 3.0), failed("a", 3.0), failed("c", 3.0)]
    assert (
        rules.failing_from_the_start(seen(tied), 3, never_trained)
        == outcomes(tied[::-1]).last_failed
    ), "ties go by run id, whatever order the runs are read in"
    tied_last = rules.failing_from_the_start(seen(tied), 3, never_trained)
    assert tied_last is not None and tied_last.run_id == "c"
    assert rules.failing_from_the_start(seen(runs), 4, must_not_read) is None, (
        "fewer than the limit"
    )


@pytest.mark.parametrize(
    "working",
    [
        run("ok", "finished", {"at": 0.5}),
        run("cut", "stopped", {"at": 0.5}),  # hyperband stops only runs that logged values
        failed("late", 0.5, epochs=2),  # it failed after training: the program works
    ],
)
def test_one_run_that_worked_means_the_sweep_is_not_broken(working: SimpleNamespace) -> None:
    runs = [failed("a", 1.0), failed("b", 2.0), failed("c", 3.0), working]
    assert rules.failing_from_the_start(seen(runs), 3, must_not_read) is None


def test_a_running_run_that_logged_an_epoch_means_the_sweep_is_not_broken() -> None:
    runs = [failed("a", 1.0), failed("b", 2.0), run("r1", "running"), run("r2", "running")]
    asked: list[str] = []

    def trained(run_id: str) -> bool:
        asked.append(run_id)
        return run_id == "r2"

    assert rules.failing_from_the_start(seen(runs), 2, trained) is None
    assert asked == ["r1", "r2"], "only the running runs' files are read"
    last = rules.failing_from_the_start(seen(runs), 2, never_trained)
    assert last is not None and last.run_id == "b"


def test_an_exit_2_stops_the_agent_only_while_nothing_has_worked() -> None:
    first = seen([failed("a", 1.0)])
    assert rules.refuses_more_runs("failed", 2, first, never_trained)
    assert not rules.refuses_more_runs("failed", 1, first, never_trained), "not a bad config"
    worked = seen([failed("a", 1.0), run("ok", "finished", {"at": 0.5})])
    assert not rules.refuses_more_runs("failed", 2, worked, must_not_read)
    assert not rules.refuses_more_runs("finished", 0, first, must_not_read)


def test_the_broken_sweep_message_names_the_last_failure_and_the_way_out(tmp_path: Any) -> None:
    text = messages.broken_sweep(
        failed("c", 3.0, error="Traceback (most recent call last):\nKeyError: 'x'"), 3, tmp_path
    )
    assert "at least 3 runs of this sweep failed" in text and "run c, exit 1: KeyError: 'x'" in text
    assert f"sweepkit status {tmp_path}" in text and "SWEEPKIT_MAX_INITIAL_FAILURES=0" in text


# --- hyperband's stop ------------------------------------------------------------------------

# min_iter 2, eta 3: one band at epoch 2 is all these tests need; at a band the threshold is the
# value at index int(n / eta) of the n sorted values there (ended and running runs alike)
ENDED = {"a": [0.5, 0.1], "b": [0.5, 0.2], "c": [0.5, 0.3]}


def ended_runs() -> list[SimpleNamespace]:
    return [run(k, "finished", {"at": 1.0, "history": h}) for k, h in ENDED.items()]


def test_hyperband_stops_a_run_worse_than_the_band_threshold() -> None:
    live = {"me": [0.9, 0.9], "good": [0.9, 0.05]}
    changed = [*ended_runs(), run("me", "running"), run("good", "running")]
    bands = BandValues([2], maximize=False)
    # values at epoch 2: 0.05 0.1 0.2 0.3 0.9; threshold at index int(5 / 3) = 1: 0.1
    assert rules.hyperband_stops("me", changed, live.__getitem__, bands, 3.0, strict=False)
    # a later call looks only at the runs still open: the ended ones' values were kept
    still_open = [run("me", "running"), run("good", "running")]
    assert not rules.hyperband_stops("good", still_open, live.__getitem__, bands, 3.0, False)
    live["good"] = [0.9, 0.25]  # 0.1 0.2 0.25 0.3 0.9: worse than the threshold, 0.2, now
    assert rules.hyperband_stops("good", still_open, live.__getitem__, bands, 3.0, False)
    assert bands.sorted[2] == [0.1, 0.2, 0.3]


def test_hyperband_waits_for_the_first_band() -> None:
    live = {"me": [9.0]}
    changed = [*ended_runs(), run("me", "running")]
    assert not rules.hyperband_stops(
        "me", changed, live.__getitem__, BandValues([2], False), 3.0, strict=False
    )


def test_hyperband_compares_the_best_value_unless_strict() -> None:
    # maximising: an early high value counts unless strict, which takes the value at the band
    live = {"me": [0.95, 0.4]}
    ended = [run(k, "finished", {"at": 1.0, "history": [0.5, 0.9]}) for k in "abc"]
    changed = [*ended, run("me", "running")]
    assert not rules.hyperband_stops(
        "me", changed, live.__getitem__, BandValues([2], True), 3.0, strict=False
    )
    assert rules.hyperband_stops(
        "me", changed, live.__getitem__, BandValues([2], True), 3.0, strict=True
    )


def test_hyperband_compares_only_finite_numbers() -> None:
    assert valid([1, float("nan"), float("inf"), True, "x", None, 2.5], maximize=False) == [
        1.0,
        2.5,
    ]
    assert valid([1, 2.5], maximize=True) == [-1.0, -2.5], "negated when maximising"
