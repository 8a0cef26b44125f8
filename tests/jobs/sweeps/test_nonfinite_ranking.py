"""The one ranking rule (jobs/sweeps/vocabulary.py): NaN and the infinities are never best, in
either goal, wherever "best" is asked (status's best run and big-sweep order, the report's best run
and its table), and the report shows them as nan/inf and says how many it leaves out of its plots.
A value logged under the metric that is not a number gets one warning that says what it was."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.report.render import render, run_rows
from sweepkit.jobs.report.source import SweepSource
from sweepkit.jobs.sweeps.agent.messages import not_numbers
from sweepkit.jobs.sweeps.state import RunView
from sweepkit.jobs.sweeps.vocabulary import best_of, is_rankable, rank_key

VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none())


@given(st.lists(VALUES, max_size=12), st.sampled_from(["minimize", "maximize"]))
def test_a_non_finite_value_is_never_best_and_sorts_last(values: list[Any], goal: str) -> None:
    best = best_of(range(len(values)), lambda i: values[i], goal)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        assert best is None
    else:
        assert best is not None and values[best] == (max if goal == "maximize" else min)(finite)
    ranked = sorted(values, key=lambda v: rank_key(v, goal))
    cut = len(finite)
    assert all(is_rankable(v) for v in ranked[:cut])
    assert not any(is_rankable(v) for v in ranked[cut:])
    assert ranked[:cut] == sorted(finite, reverse=goal == "maximize")


def test_booleans_are_not_ranked() -> None:
    assert not is_rankable(True) and not is_rankable(False) and is_rankable(0)


def view(run_id: str, metric: float | None, epochs: list[dict[str, Any]]) -> RunView:
    return RunView(run_id, "finished", {"lr": 0.1}, run_dir=Path("."), metric=metric, epochs=epochs)


def test_the_report_ranks_finite_runs_shows_nan_and_inf_and_counts_what_it_leaves_out() -> None:
    runs = [
        view("diverged", math.nan, [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": math.nan}]),
        view("blewup", -math.inf, [{"epoch": 1, "loss": -math.inf}]),
        view("good", 0.2, [{"epoch": 1, "loss": 0.4}, {"epoch": 2, "loss": 0.2}]),
        view("ok", 0.3, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.3}]),
    ]
    definition = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.1]}},
    }
    source = SweepSource("s", "s", definition, runs)
    page, _, analysis = render(source)
    assert analysis.best is not None and analysis.best.run_id == "good"
    rows = {r["run_id"]: r for r in run_rows(source, analysis, ["lr"])}
    assert (rows["diverged"]["metric"], rows["blewup"]["metric"]) == ("nan", "-inf")
    assert [r["run_id"] for r in run_rows(source, analysis, ["lr"])][:2] == ["good", "ok"]
    assert "2 NaN or infinite values of loss left out of the plot" in page
    assert "2 finished or stopped runs without a finite loss" in page


def test_one_warning_names_what_was_logged_under_the_metric() -> None:
    line = not_numbers("r1", "loss", ["diverged", None, True, "x"])
    assert line.startswith("warning: run r1 logged 4 value(s) under the sweep's metric 'loss'")
    assert "(NoneType" not in line and "None, bool, str" in line and "'diverged'" in line


class CloudRun:
    """A stand-in for a ``wandb.Api`` run (W&B's server is out of reach here): its summary and
    history hold NaN as the server gives it, W&B's string "NaN"."""

    id, state, config = "c1", "finished", {"lr": 0.5}
    summary = {"loss": "NaN"}

    def history(self, keys: list[str], pandas: bool) -> list[dict[str, Any]]:
        return [{"_step": 1, "loss": 0.7}, {"_step": 2, "loss": "NaN"}]


def test_a_w_and_b_cloud_runs_nan_strings_are_read_as_nan() -> None:
    from sweepkit.jobs.report.wandb_source import _run

    run = _run(CloudRun(), ["lr"], "loss")
    assert math.isnan(run.metric)  # type: ignore[arg-type]
    assert math.isnan(run.epochs[1]["loss"]) and run.metric_history[0] == 0.7
