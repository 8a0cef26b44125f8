"""The report's analysis on constructed runs: parameter importance, the best run by the goal, axes,
and the counts of every state.
"""

from __future__ import annotations

import pytest
from report_runs import METRIC, Run, definition, driven_sweep

from sweepkit.jobs.report.analysis import analyse, make_axis

# --- analysis ---------------------------------------------------------------------------------


def test_importance_ranks_parameters_that_drive_the_metric_above_those_that_do_not() -> None:
    runs, spec = driven_sweep()
    analysis = analyse(runs, spec)
    stats = {s.name: s for s in analysis.params}
    importance = {name: s.importance or 0.0 for name, s in stats.items()}
    assert importance["learning_rate"] > importance["seed"]
    assert importance["learning_rate"] > importance["batch_size"]
    assert importance["optimizer"] > importance["batch_size"]
    assert analysis.params[0].name == "learning_rate"
    assert sum(importance.values()) == pytest.approx(1.0)
    # Linear correlation on the log axis: the metric rises with log10(learning_rate).
    assert stats["learning_rate"].axis.log
    assert (stats["learning_rate"].correlation or 0.0) > 0.6
    levels = dict(stats["optimizer"].level_correlations)
    assert (levels["adam"] or 0.0) > 0 > (levels["sgd"] or 0.0)
    assert analysis.best is max(runs, key=lambda r: r.metric or 0.0)


def test_minimize_goal_picks_the_lowest_metric_as_best() -> None:
    runs, spec = driven_sweep(6)
    spec["metric"]["goal"] = "minimize"
    assert analyse(runs, spec).best is min(runs, key=lambda r: r.metric or 0.0)


def test_axes_categorical_for_non_numbers_log_for_wide_grids() -> None:
    assert make_axis("lr", [0.1, 0.01, 0.001]).log
    assert not make_axis("bs", [32, 64, 128]).log
    assert not make_axis("noise", [0.01, 0.5, 0.99], {"min": 0.0, "max": 1.0}).log
    mixed = make_axis("width", [1, "wide", None, True])
    assert mixed.categorical and set(mixed.levels) == {"1", "wide", "None", "true"}
    ordered = make_axis("opt", ["sgd", "adam"], {"values": ["sgd", "adam", "lamb"]})
    assert ordered.levels == ("sgd", "adam")
    assert [label for _, label in make_axis("bs", [32, 64, 128]).ticks()] == ["32", "64", "128"]


def test_a_metric_equal_in_every_run_ranks_nothing() -> None:
    runs = [Run(f"r{i}", "finished", {"lr": lr}, 50.0) for i, lr in enumerate([0.1, 0.01, 0.001])]
    (stat,) = analyse(runs, definition({"lr": {"values": [0.1, 0.01, 0.001]}})).params
    assert stat.importance == 0.0 and stat.correlation is None
    assert stat.note == f"every run has {METRIC} 50"


def test_counts_list_every_state_including_hyperband_stops() -> None:
    states = ["finished", "finished", "failed", "crashed", "stopped", "preempted", "pending"]
    runs = [
        Run(f"r{i}", s, {"x": i}, 1.0 if s == "finished" else None) for i, s in enumerate(states)
    ]
    counts = analyse(runs, definition({"x": {"values": list(range(7))}})).counts
    assert counts == {
        "finished": 2,
        "failed": 1,
        "crashed": 1,
        "stopped": 1,
        "preempted": 1,
        "pending": 1,
        "running": 0,
    }
