"""What keeps a large sweep's claims cheap: no lease file read per running run under the lock, and
the bayes engine handed only what it uses (the same GP data as from full histories)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sweeps.bayes_search import (
    _construct_gp_data,
    bayes_baseline_validate_and_fill,
    bayes_search_next_runs,
)
from sweeps.run import SweepRun, stop_runs

from sweepkit.jobs.sweeps import store
from sweepkit.jobs.sweeps.agent import hyperband as hyperband_check

RANDOM = {
    "method": "random",
    "metric": {"name": "acc", "goal": "maximize"},
    "command": ["${env}", "${interpreter}", "-m", "sweepkit.train", "${args}"],
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
    lease_path = sweep.leases.path

    def watched_lease_path(run_id: str, k: int) -> Path:
        if held["now"]:
            reads.append(run_id)
        return lease_path(run_id, k)

    sweep.leases.path = watched_lease_path  # type: ignore[method-assign]
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


@pytest.mark.parametrize(
    ("goal", "impute"), [("maximize", "worst"), ("minimize", "best"), ("maximize", "latest")]
)
def test_bayes_gets_the_same_gp_data_and_proposal_from_cut_histories(
    tmp_path: Path, goal: str, impute: str
) -> None:
    definition = {
        **RANDOM,
        "method": "bayes",
        "metric": {"name": "acc", "goal": goal, "impute": impute},
        "parameters": {"lr": {"min": 0.0, "max": 1.0}, "bs": {"values": [16, 32, 64]}},
    }
    sweep = store.create_sweep(definition, tmp_path, source="test", max_retries=0)
    rng = random.Random(7)
    me = store.AgentIdentity()
    for i in range(40):
        claim = sweep.claim(me)
        assert isinstance(claim, store.Claim)
        history = [rng.uniform(-5, 5) for _ in range(rng.randint(0, 25))]
        state = ("finished", "finished", "failed", "crashed", "stopped")[i % 5]
        metric = history[-1] if history and i % 3 else None
        sweep.finish(
            claim, me, state, metric=metric if state != "failed" else None, history=history
        )
    for _ in range(3):  # running runs: only their swept values count
        assert isinstance(sweep.claim(me), store.Claim)
    sweep.refresh()
    config = bayes_baseline_validate_and_fill(sweep.definition)
    full, cut = sweep.engine_runs(), sweep.bayes_runs()
    assert any(len(r.history) > 3 for r in full) and all(len(r.history) <= 3 for r in cut)
    # (the parameter set, then sample X, current X, y: what the GP is fit on)
    theirs_data, ours_data = _construct_gp_data(full, config), _construct_gp_data(cut, config)
    for a, b in zip(theirs_data[1:], ours_data[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    np.random.seed(3)
    theirs = bayes_search_next_runs(full, config, n=2)
    np.random.seed(3)
    ours = bayes_search_next_runs(cut, config, n=2)
    assert [r.config for r in theirs] == [r.config for r in ours]
    # memoised extrema answer as the engine's own method does, errors included
    for a, b in zip(full, cut, strict=True):
        for kind in ("maximum", "minimum", "maximum"):  # twice: the second from the memo
            assert extremum(a, kind) == extremum(b, kind)


def extremum(run: Any, kind: str) -> Any:
    try:
        return run.metric_extremum("acc", kind)
    except ValueError as err:
        return type(err)


@pytest.mark.parametrize(
    "early_terminate",
    [
        {"type": "hyperband", "min_iter": 2},
        {"type": "hyperband", "min_iter": 1, "eta": 2, "strict": True},
        {"type": "hyperband", "max_iter": 27, "s": 3, "eta": 3},
    ],
)
@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_hyperband_check_decides_as_the_engine(early_terminate: dict[str, Any], goal: str) -> None:
    """The kept band values give the engine's decision for every running run, as runs start, end,
    are resumed and log more epochs (random sweeps, compared with sweeps.stop_runs on all runs),
    looking only at the runs that can have changed."""

    definition = {
        **RANDOM,
        "metric": {"name": "acc", "goal": goal},
        "early_terminate": early_terminate,
    }
    bands, eta, strict = hyperband_check.bands_and_eta(definition)
    ended = hyperband_check.BandValues(bands, goal == "maximize")
    rng = random.Random(5)
    runs: dict[str, dict[str, Any]] = {}  # name -> {"end": record or None, "history": [...]}
    decisions = 0
    for step in range(60):
        for _ in range(rng.randint(1, 4)):  # new runs, and runs that log an epoch or end
            name = f"r{len(runs)}"
            runs[name] = {"end": None, "history": []}
        for run in runs.values():
            roll = rng.random()
            if run["end"] is None and roll < 0.6:
                run["history"].append(round(rng.gauss(0, 1), 2))  # ties are common
            elif run["end"] is None and roll < 0.7:
                run["end"] = {"history": list(run["history"])}
            elif run["end"] is not None and roll < 0.02:  # resumed
                run["end"] = None
        engine_runs = [
            SweepRun(
                name=name,
                state="running" if run["end"] is None else "finished",
                history=[{"acc": v} for v in run["history"]],
            )
            for name, run in runs.items()
        ]
        stopped = {r.name for r in stop_runs(definition, engine_runs)}
        # as the agent does: only the runs that are new, open now or open before are looked at
        folded = {
            name: SimpleNamespace(run_id=name, last_end=run["end"]) for name, run in runs.items()
        }
        open_runs = {name: f for name, f in folded.items() if f.last_end is None}
        for looked in ended.to_look_at(folded, open_runs):
            ended.update(looked.run_id, looked.last_end)
        live = {
            name: hyperband_check.valid(run["history"], goal == "maximize")
            for name, run in runs.items()
            if run["end"] is None
        }
        for name, history in live.items():
            ours = hyperband_check.says_stop(
                history, bands, eta, strict, ended, list(live.values())
            )
            assert ours == (name in stopped), (step, name)
            decisions += ours
    assert decisions > 10  # the rule did stop runs, not only let them go on
