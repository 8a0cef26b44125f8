"""Bayes proposals from per-run facts (jobs/sweeps/store/bayes.py) against the engine's own
``bayes_search_next_runs`` on the same runs with full histories: the same GP data, the same
proposals from the same random state. In memory: the runs are a fold of records."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sweeps.bayes_search import (
    _construct_gp_data,
    bayes_baseline_validate_and_fill,
    bayes_search_next_runs,
)

from sweepkit.jobs.sweeps.store.bayes import BayesProposer, is_number
from sweepkit.jobs.sweeps.store.engine import Engine
from sweepkit.jobs.sweeps.store.fold import Fold, apply

PARAMETERS = {
    "lr": {"min": 0.001, "max": 0.1},
    "width": {"values": [16, 32, 64]},
    "depth": {"min": 1, "max": 6},
    "epochs": {"value": 5},
}


def definition(goal: str, impute: str, while_running: str | None) -> dict[str, Any]:
    metric: dict[str, Any] = {"name": "acc", "goal": goal, "impute": impute}
    if while_running is not None:
        metric["impute_while_running"] = while_running
    return {"method": "bayes", "metric": metric, "parameters": PARAMETERS}


def records(seed: int) -> list[dict[str, Any]]:
    """Runs in every state bayes tells apart, some without a metric, histories with gaps."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    states = ["finished", "stopped", "failed", "crashed", "preempted", "running"]
    for i in range(60):
        run = f"r{i:03d}"
        params = {
            "lr": {"value": rng.uniform(0.001, 0.1)},
            "width": {"value": rng.choice([16, 32, 64])},
            "depth": {"value": rng.randint(1, 6)},
            "epochs": {"value": 5},
        }
        out.append({"t": "claim", "run": run, "k": 0, "params": params, "at": float(i)})
        state = states[i % len(states)]
        if state == "running":
            continue
        history = [rng.uniform(0, 1) for _ in range(rng.randint(0, 6))]
        if history and i % 5 == 0:
            history[1:1] = [float("nan")]  # a logged NaN: not a valid value
        metric = history[-1] if history and i % 7 else None
        end = {"t": "end", "run": run, "k": 0, "state": state, "at": 100.0 + i}
        out.append({**end, "metric": metric, "history": history, "epochs": len(history)})
    return out


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
@pytest.mark.parametrize("impute", ["worst", "best", "latest"])
@pytest.mark.parametrize("while_running", [None, "best", "latest"])
def test_same_gp_data_and_proposals_as_the_engine(
    goal: str, impute: str, while_running: str | None
) -> None:
    config = definition(goal, impute, while_running)
    fold = apply(Fold(goal), records(seed=len(goal) + len(impute)))
    full = Engine(config).engine_runs(fold.runs.values())  # whole histories
    ours = BayesProposer(config, "acc")

    _, sample_X, current_X, y, _ = _construct_gp_data(
        full, bayes_baseline_validate_and_fill(config)
    )
    facts = [ours.facts(run) for run in fold.runs.values()]
    got_sample_X, got_current_X, got_y = ours._gp_data(facts)
    assert np.array_equal(got_sample_X, sample_X)
    assert np.array_equal(np.asarray(got_current_X), np.asarray(current_X))
    assert np.array_equal(got_y, y, equal_nan=True)

    np.random.seed(7)
    theirs = [p.config for p in bayes_search_next_runs(full, config, n=2)]
    np.random.seed(7)
    assert ours.propose(fold.runs.values(), 2) == theirs


@pytest.mark.parametrize("count", [0, 1])
def test_the_first_proposals_of_a_sweep_are_the_engines(count: int) -> None:
    config = definition("minimize", "worst", None)
    fold = apply(Fold(), records(seed=3)[:count])
    full = Engine(config).engine_runs(fold.runs.values())
    np.random.seed(11)
    theirs = [p.config for p in bayes_search_next_runs(full, config, n=2)]
    np.random.seed(11)
    assert BayesProposer(config, "acc").propose(fold.runs.values(), 2) == theirs


def test_facts_are_kept_until_a_record_changes_the_run() -> None:
    config = definition("maximize", "worst", None)
    fold = apply(Fold("maximize"), records(seed=1))
    ours = BayesProposer(config, "acc")
    run = fold.runs["r005"]  # running
    before = ours.facts(run)
    assert ours.facts(run) is before
    apply(fold, [{"t": "end", "run": "r005", "k": 0, "state": "finished", "metric": 0.9}])
    after = ours.facts(run)
    assert (before.state, after.state, after.best) == ("running", "finished", 0.9)


metric_values = st.one_of(
    st.floats(),  # NaN, the infinities, -0.0, subnormals, 1e308
    st.integers(-(10**20), 10**20),  # numpy takes ints within [-2**63, 2**64) only
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=2), st.floats(), max_size=2),
)


@given(
    goal=st.sampled_from(["maximize", "minimize"]),
    history=st.lists(metric_values, max_size=6),
    summary=st.one_of(st.none(), metric_values),
)
def test_a_runs_facts_are_what_the_engines_run_says(
    goal: str, history: list[Any], summary: Any
) -> None:
    """``_facts_of`` (no SweepRun made) against ``SweepRun``'s own ``metric_extremum`` and
    ``metric_history``, on any values a program may log."""
    from sweeps.run import SweepRun

    ours = BayesProposer(definition(goal, "worst", None), "acc")
    summary_metrics = {} if summary is None else {"acc": summary}
    run = SweepRun(history=[{"acc": v} for v in history], summary_metrics=summary_metrics)
    best_kind, worst_kind = ("maximum", "minimum") if goal == "maximize" else ("minimum", "maximum")

    def extremum(kind: str) -> Any:
        try:
            return run.metric_extremum("acc", kind)
        except ValueError:
            return None

    valid = run.metric_history("acc", filter_invalid=True)
    facts = ours._facts_of({}, "finished", history, summary_metrics)
    expected = (extremum(best_kind), extremum(worst_kind), valid[-1] if valid else None)
    assert (facts.best, facts.worst, facts.latest) == expected
    assert [type(v) for v in (facts.best, facts.worst, facts.latest)] == [type(v) for v in expected]


@given(value=metric_values | st.sampled_from([2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]))
def test_is_number_is_the_engines(value: Any) -> None:
    from sweeps.run import is_number as engine_is_number

    assert is_number(value) == engine_is_number(value)
