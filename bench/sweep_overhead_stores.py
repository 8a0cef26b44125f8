"""The stores bench/sweep_overhead.py compares, each filled with finished runs before the clock.

Ours is a sweepkit local store whose journal holds a claim and an end record per run; Optuna's is
its JournalStorage + JournalFileBackend holding as many finished trials, with its counterpart
sampler of each method. Both draw from the same space and score runs with the same made-up metric.
"""

from __future__ import annotations

import importlib
import random
import time
from pathlib import Path
from typing import Any

N_FINISHED = 1000  # the default of --finished
GRID = {"a": list(range(16)), "b": list(range(16)), "c": list(range(8))}  # 2,048 points
CONTINUOUS = {"lr": (1e-5, 1e-1), "wd": (1e-6, 1e-2)}
BATCH = [32, 64, 128, 256]


def definition(method: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "method": "bayes" if method == "bayes-gp" else method,
        "metric": {"name": "acc", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "prog.py", "${args}"],
    }
    if method == "grid":
        base["parameters"] = {k: {"values": v} for k, v in GRID.items()}
    else:
        base["parameters"] = {
            **{
                k: {"distribution": "log_uniform_values", "min": lo, "max": hi}
                for k, (lo, hi) in CONTINUOUS.items()
            },
            "batch_size": {"values": BATCH},
        }
    return base


def fake_metric(params: dict[str, Any]) -> float:
    if "a" in params:
        return float(params["a"] + params["b"] / 16 + params["c"] / 128)
    return float(
        -abs(params["lr"] - 3e-3) * 100
        - abs(params["wd"] - 1e-4) * 10
        + params["batch_size"] / 1000
    )


# ----- set-up: 1,000 finished runs in each store -----------------------------------------------
def setup_ours(root: Path, method: str, finished: int) -> Path:
    from sweepkit.jobs.sweeps import store
    from sweepkit.jobs.sweeps.definition import quiet_sweeps_import

    quiet_sweeps_import()
    next_runs = importlib.import_module("sweeps.run").next_runs
    sweep = store.create_sweep(definition(method), root / "ours", source="bench")
    if method == "grid":
        configs = [r.config for r in next_runs(sweep.definition, [], n=finished) if r is not None]
    else:
        rng = random.Random(0)
        configs = [
            {k: {"value": v} for k, v in random_params(rng).items()} for _ in range(finished)
        ]
    me = store.AgentIdentity()
    records = []
    now = time.time()
    for i, config in enumerate(configs):
        run_id = f"r{i:07d}"
        value = fake_metric({k: v["value"] for k, v in config.items()})
        records.append(store.claim_record(run_id, 0, store.plain(config), me, now))
        records.append(
            {
                "t": "end",
                "run": run_id,
                "k": 0,
                "state": "finished",
                "metric": value,
                "history": [value],
                "epochs": 1,
                "at": now,
            }
        )
    sweep.append(records)
    return sweep.path


def random_params(rng: random.Random) -> dict[str, Any]:
    import math

    out: dict[str, Any] = {
        k: math.exp(rng.uniform(math.log(lo), math.log(hi))) for k, (lo, hi) in CONTINUOUS.items()
    }
    out["batch_size"] = rng.choice(BATCH)
    return out


def optuna_sampler(method: str) -> Any:
    import optuna

    if method == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in GRID.items()}, seed=0)
    if method == "random":
        return optuna.samplers.RandomSampler()
    if method == "bayes-gp":
        return optuna.samplers.GPSampler()
    return optuna.samplers.TPESampler()


def optuna_distributions(method: str) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if method == "grid":
        return {k: CategoricalDistribution(v) for k, v in GRID.items()}
    return {
        **{k: FloatDistribution(lo, hi, log=True) for k, (lo, hi) in CONTINUOUS.items()},
        "batch_size": CategoricalDistribution(BATCH),
    }


def setup_optuna(root: Path, method: str, finished: int) -> Path:
    import itertools

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = root / "optuna.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        study_name="bench", storage=storage, direction="maximize", sampler=optuna_sampler(method)
    )
    dists = optuna_distributions(method)
    trials = []
    if method == "grid":
        space = {k: list(v) for k, v in sorted(GRID.items())}
        points = list(itertools.product(*space.values()))[:finished]
        for grid_id, point in enumerate(points):
            params = dict(zip(space, point, strict=True))
            trials.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    value=fake_metric(params),
                    system_attrs={"grid_id": grid_id, "search_space": space},
                )
            )
    else:
        rng = random.Random(0)
        for _ in range(finished):
            params = random_params(rng)
            trials.append(
                optuna.trial.create_trial(
                    params=params, distributions=dists, value=fake_metric(params)
                )
            )
    study.add_trials(trials)
    return path
