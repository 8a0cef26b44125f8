"""Read a W&B cloud sweep (``entity/project/sweep_id``) for the report, via the W&B public API.

Thin on purpose: it maps W&B runs onto the same records the local store gives, and turns any
failure to reach W&B (no network, no API key, unknown sweep) into one ``UserError`` line.
"""

from __future__ import annotations

from typing import Any

from sweepkit.jobs.sweeps.definition.parameters import flatten, param_specs
from sweepkit.jobs.sweeps.state import RunView
from sweepkit.jobs.sweeps.wandb_run.metrics import is_number, ranked_metric, summary_lookup
from sweepkit.train.errors import UserError
from sweepkit.train.json_values import number

# W&B run states -> the kit's states ("killed" is how a stopped run shows up there).
STATES = {
    "finished": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "running": "running",
    "killed": "stopped",
    "preempted": "preempted",
    "preempting": "preempted",
    "pending": "pending",
}


def load_wandb(ref: str) -> Any:
    from sweepkit.jobs.report.source import SweepSource

    try:
        import wandb

        api = wandb.Api(timeout=15)
        sweep = api.sweep(ref)
        definition = dict(sweep.config)
        metric = (definition.get("metric") or {}).get("name")
        goal = (definition.get("metric") or {}).get("goal", "minimize")
        names = list(param_specs(definition))
        runs = [_run(run, names, metric, goal) for run in sweep.runs]
    except Exception as err:  # any failure to reach or read W&B is one line for the user
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(
            f"W&B sweep {ref}: cannot read it from the W&B API ({first}); check the network and "
            f"`wandb login`, or pass a local sweep folder (there is none at {ref})"
        ) from None
    return SweepSource(ref=ref, sweep_id=ref.split("/")[-1], definition=definition, runs=runs)


def _run(run: Any, names: list[str], metric: str | None, goal: str = "minimize") -> RunView:
    config = flatten(dict(run.config))
    epochs = []
    if metric:
        for row in run.history(keys=[metric], pandas=False):
            # W&B's server gives NaN and the infinities as its strings "NaN", "Infinity"
            value = number(row.get(metric))
            epochs.append({"epoch": row.get("epoch", row.get("_step")), metric: value})
    summary = dict(run.summary)
    history = [e[metric] for e in epochs if is_number(e[metric])] if metric else []
    # the same rule as a local sweep's runs (define_metric's {"max": v}, dotted names, last value)
    value = (
        ranked_metric(number(summary_lookup(summary, metric)), history, goal) if metric else None
    )
    return RunView(
        run_id=run.id,
        state=STATES.get(run.state, run.state),
        params={name: config[name] for name in names if name in config},
        run_dir=None,
        metric=value,
        epochs=epochs,
        metric_history=[float(v) for v in history],
        epoch_count=len(history),
        summary=summary,
        config=dict(run.config),
        started_at=getattr(run, "created_at", None),
        attempts=1,
    )
