"""What the agent tells the user when a sweep looks broken or a run left nothing to rank it by."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.agent.rules import MAX_INITIAL_FAILURES_ENV
from sweepkit.jobs.sweeps.display import shown
from sweepkit.jobs.sweeps.failure import error_line


def say(message: str) -> None:
    """One line from the agent to the user (its stdout, which SLURM and the launchers keep)."""
    print(f"sweepkit agent: {message}", flush=True)


def broken_sweep(last: Any, limit: int, sweep_path: Path) -> str:
    """Why the agent takes no more runs: ``last`` is the last of the runs that failed from the
    start (``rules.failing_from_the_start``)."""
    end = last.last_end or {}
    error = error_line(str(end.get("error") or ""))
    return (
        f"not taking runs: at least {limit} runs of this sweep failed and none finished (last: "
        f"run {last.run_id}, exit {end.get('exit_code')}: {error or 'no output'}); "
        f"fix the cause (sweepkit status {shlex.quote(str(sweep_path))} shows each error), "
        "then start a new "
        f"sweep, or run agents with {MAX_INITIAL_FAILURES_ENV}=0 to go on with this one"
    )


def no_metric(
    run_id: str,
    metric_name: str,
    logged: Any,
    wandb_mode: str | None,
    run_dir: Path,
    sweep_path: Path,
) -> str:
    """The warning for a finished run without the sweep's metric, naming the likely cause from
    what the run logged (``logged``: its ``RunMetrics``)."""
    start = (
        f"warning: run {run_id} finished without a value for the sweep's metric "
        f"{shown(repr(metric_name))}; search, hyperband and the report have nothing to rank it by: "
    )
    if logged.not_numbers:  # the name is right: what it logged under it is not a number
        return start + (
            f"it logged only values that are not numbers under it ({_values(logged.not_numbers)}), "
            "which count as not logged, as in W&B's sweep engine; log a number (a float; NaN for "
            "a diverged run)"
        )
    names = ", ".join(shown(name) for name in logged.logged[:20]) + (
        ", ..." if len(logged.logged) > 20 else ""
    )
    if logged.source == "wandb":
        return start + (
            f"its W&B run logged {names or 'nothing'}; check metric.name "
            f"in {sweep_path / 'sweep.yaml'} (nested keys are dotted: val.acc)"
        )
    if logged.source == "run.json":
        return start + (
            f"its run.json has {names or 'none'}; check metric.name in {sweep_path / 'sweep.yaml'}"
        )
    if wandb_mode == "disabled":
        return start + (
            "it ran with WANDB_MODE=disabled, so wandb wrote no data; unset WANDB_MODE for "
            "the agent (it then runs programs offline), or set WANDB_MODE=offline"
        )
    return start + (
        f"the program wrote no W&B run for run id {run_id} (none in {run_dir / 'wandb'}, none "
        f"open by its processes); it must call wandb.init() (mode not 'disabled', id left "
        f"to WANDB_RUN_ID) and wandb.log({{{shown(repr(metric_name))}: value}})"
    )


def _values(values: list[Any]) -> str:
    """``str, None: 'high', None, ...``: the kinds of ``values`` and the first few, each cut."""
    kinds = sorted({"None" if v is None else type(v).__name__ for v in values})
    example = ", ".join(shown(repr(v)) for v in values[:3]) + (", ..." if len(values) > 3 else "")
    return f"{', '.join(kinds)}: {example}"


def not_numbers(run_id: str, metric_name: str, values: list[Any]) -> str:
    """The one warning for a run that logged values under the sweep's metric that are not
    numbers: W&B's engine (``sweeps.run.is_number``) skips them, and so does the kit."""
    return (
        f"warning: run {run_id} logged {len(values)} value(s) under the sweep's metric "
        f"{shown(repr(metric_name))} that are not numbers ({_values(values)}); as in W&B's "
        "sweep engine they count as not logged (ranking, bayes and hyperband skip them); log a "
        "float (NaN for a diverged run) to record a value"
    )


def lease_ran_out(run_id: str, lease_s: float, then: str) -> str:
    """This agent's attempt was ended by another agent: its lease ran out (no heartbeat reached
    the sweep folder for ``lease_s`` seconds, or its holder looked gone), and the other agent
    recorded how it ended, from the run's own records where they say so (``reconcile.py``)."""
    return (
        f"run {run_id}: its lease ran out (no heartbeat for {lease_s:g} s, or this agent looked "
        f"gone) and another agent ended the attempt; {then}"
    )
