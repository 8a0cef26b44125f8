"""Runs that logged NaN, inf or values that are not numbers, as W&B's sweep engine (the ``sweeps``
package in the venv) treats them: its own code is the oracle. Bayes: the engine's
``_construct_gp_data`` (``filter_nans``, ``y[~np.isfinite(y)] = worst_metric``) and
``bayes_search_next_runs`` on SweepRuns built from the values as logged, against the store's bayes
path on the same runs after their records went through the journal (encoded, parsed, folded).
Hyperband: ``sweeps.run.stop_runs`` against the agent's check. Validity: ``sweeps.run.is_number``
against the kit's test of a usable value."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweepkit.jobs.sweeps.agent import hyperband
from sweepkit.jobs.sweeps.store import claim_policy, journal
from sweepkit.jobs.sweeps.store.bayes import BayesProposer
from sweepkit.jobs.sweeps.store.fold import Fold, apply
from sweepkit.jobs.sweeps.wandb_run.metrics import is_finite_number

ODD = [math.nan, math.inf, -math.inf]
PARAMETERS = {"lr": {"min": 0.0001, "max": 1.0}, "width": {"values": [16, 32, 64]}}


def result(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("t", "run", "k", "state", "at")}


def through_the_journal(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as a later reader gets them: an end record made as the store makes it
    (``claim_policy.end_record``), each written as a journal line and read back."""
    agent = SimpleNamespace(agent="a")
    made = [
        claim_policy.end_record(
            r["run"], r["k"], r.get("state", "finished"), agent, 1.0, **result(r)
        )
        if r["t"] == "end"
        else r
        for r in records
    ]
    bodies = [journal.checked_body(journal.encode(r)) for r in made]
    assert all(bodies)
    return journal.parse_bodies([b for b in bodies if b is not None])


def diverging_sweep(seed: int) -> list[dict[str, Any]]:
    """Runs of a learning-rate sweep: some diverge to NaN or inf (whole histories, or after a
    few finite epochs), some finish finite, some fail, one is still running."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(24):
        run = f"r{i:02d}"
        params = {
            "lr": {"value": rng.uniform(0.0001, 1.0)},
            "width": {"value": rng.choice([16, 32, 64])},
        }
        out.append({"t": "claim", "run": run, "k": 0, "params": params, "at": float(i)})
        if i == 23:
            continue  # running
        kind = i % 4
        if kind == 0:  # diverged from the start
            history = [rng.choice(ODD) for _ in range(3)]
        elif kind == 1:  # diverged after some epochs
            history = [rng.uniform(0, 1), rng.uniform(0, 1), rng.choice(ODD)]
        else:
            history = [rng.uniform(0, 1) for _ in range(3)]
        state = "failed" if i % 7 == 3 else "finished"
        end = {"t": "end", "run": run, "k": 0, "state": state, "at": 100.0 + i}
        out.append({**end, "metric": history[-1], "history": history, "epochs": 3})
    return out


def engine_runs(records: list[dict[str, Any]]) -> list[Any]:
    """The runs as W&B's engine would get them from W&B: the values as logged (floats)."""
    from sweeps.run import SweepRun

    ends = {r["run"]: r for r in records if r["t"] == "end"}
    out = []
    for r in records:
        if r["t"] != "claim":
            continue
        end = ends.get(r["run"])
        out.append(
            SweepRun(
                name=r["run"],
                state=end["state"] if end else "running",
                config=r["params"],
                history=[{"loss": v} for v in (end or {}).get("history", [])],
                summary_metrics={"loss": end["metric"]} if end else {},
            )
        )
    return out


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
@pytest.mark.parametrize("impute", ["worst", "best", "latest"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bayes_gp_data_and_proposals_with_nan_and_inf_are_the_engines(
    goal: str, impute: str, seed: int
) -> None:
    from sweeps.bayes_search import (
        _construct_gp_data,
        bayes_baseline_validate_and_fill,
        bayes_search_next_runs,
    )

    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": goal, "impute": impute},
        "parameters": PARAMETERS,
    }
    records = diverging_sweep(seed)
    theirs_runs = engine_runs(records)
    fold = apply(Fold(goal), through_the_journal(records))
    ours = BayesProposer(config, "loss")

    _, sample_X, current_X, y, _ = _construct_gp_data(
        theirs_runs, bayes_baseline_validate_and_fill(config)
    )
    got_sample_X, got_current_X, got_y = ours._gp_data([ours.facts(r) for r in fold.runs.values()])
    assert np.array_equal(got_sample_X, sample_X)
    assert np.array_equal(np.asarray(got_current_X), np.asarray(current_X))
    assert np.array_equal(got_y, y) and np.isfinite(got_y).all()

    np.random.seed(seed)
    theirs = [p.config for p in bayes_search_next_runs(theirs_runs, config, n=2)]
    np.random.seed(seed)
    proposed = ours.propose(fold.runs.values(), 2)
    assert proposed == theirs
    assert all(0.0001 <= p["lr"]["value"] <= 1.0 for p in proposed)  # it still proposes


def test_bayes_keeps_proposing_when_every_ended_run_diverged() -> None:
    from sweeps.bayes_search import bayes_search_next_runs

    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": PARAMETERS,
    }
    records = [
        r
        for r in diverging_sweep(3)
        if r["t"] == "claim" or math.isnan(r["history"][0]) or not math.isfinite(r["history"][0])
    ]
    fold = apply(Fold(), through_the_journal(records))
    np.random.seed(4)
    theirs = [p.config for p in bayes_search_next_runs(engine_runs(records), config, n=1)]
    np.random.seed(4)
    assert BayesProposer(config, "loss").propose(fold.runs.values(), 1) == theirs


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
@pytest.mark.parametrize("strict", [False, True])
def test_hyperband_decides_as_the_engine_on_nan_histories(goal: str, strict: bool) -> None:
    from sweeps.run import SweepRun, stop_runs

    definition = {
        "method": "random",
        "metric": {"name": "loss", "goal": goal},
        "parameters": PARAMETERS,
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2, "strict": strict},
    }
    bands, eta, is_strict = hyperband.bands_and_eta(definition)
    rng = random.Random(len(goal) + strict)
    histories = {
        f"r{i}": [
            rng.choice([*ODD, rng.uniform(0, 1), rng.uniform(0, 1)])
            for _ in range(rng.randint(1, 6))
        ]
        for i in range(30)
    }
    running = {name for i, name in enumerate(histories) if i % 3 == 0}
    theirs = {
        r.name
        for r in stop_runs(
            definition,
            [
                SweepRun(
                    name=name,
                    state="running" if name in running else "finished",
                    history=[{"loss": v} for v in h],
                )
                for name, h in histories.items()
            ],
        )
    }
    ended = hyperband.BandValues(bands, goal == "maximize")
    records = through_the_journal(
        [
            {"t": "end", "run": n, "k": 0, "history": h}
            for n, h in histories.items()
            if n not in running
        ]
    )
    for record in records:  # an ended run's history as the journal holds it
        ended.update(record["run"], record)
    live = {n: hyperband.valid(histories[n], goal == "maximize") for n in running}
    ours = {
        n
        for n, h in live.items()
        if hyperband.says_stop(h, bands, eta, is_strict, ended, list(live.values()))
    }
    assert ours == theirs


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        # (an int beyond int64 is one numpy cannot test: the engine calls it no number, W&B
        # logs none such as a metric)
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.booleans(),
        st.none(),
        st.text(max_size=8),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1.0"]),
    )
)
def test_a_usable_metric_value_is_what_the_engines_is_number_says(value: Any) -> None:
    from sweeps.run import is_number

    assert is_finite_number(value) == is_number(value)
    assert hyperband.valid([value], maximize=False) == ([float(value)] if is_number(value) else [])
