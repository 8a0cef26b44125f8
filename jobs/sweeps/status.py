"""``sweepkit status SWEEP [--json] [--watch [SECONDS]]``: a local sweep's runs at a glance.

One row per run (id, state, swept values, the sweep metric, epochs, host, SLURM job and array ids,
duration, attempts), then counts by state and the best run by the sweep's metric and goal.
``--json`` prints the same as one JSON document for scripts; ``--watch`` redraws it every few
seconds until the sweep is complete (or Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from typing import Any

from jobs.sweeps import store as store_mod
from jobs.sweeps.failure import error_line
from jobs.sweeps.parameters import param_names
from train.errors import UserError

DEFAULT_WATCH_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep", metavar="SWEEP", help="local sweep folder (printed by sweepkit sweep create)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=DEFAULT_WATCH_S,
        default=None,
        metavar="SECONDS",
        help=f"redraw every SECONDS (default {DEFAULT_WATCH_S:g}) until the sweep is complete or Ctrl-C",
    )


def run(args: argparse.Namespace) -> int:
    if not store_mod.is_local_ref(args.sweep) and args.sweep.count("/") == 2:
        entity, project, sweep_id = args.sweep.split("/")
        raise UserError(
            f"{args.sweep} is a W&B sweep; its status is at https://wandb.ai/{entity}/{project}/sweeps/{sweep_id}"
        )
    sweep = store_mod.open_sweep(args.sweep)
    if args.watch is not None and args.watch <= 0:
        raise UserError(f"--watch {args.watch:g}: must be a positive number of seconds")
    try:
        while True:
            text = json.dumps(snapshot(sweep), indent=2) if args.json else render(sweep)
            if args.watch is not None and sys.stdout.isatty():
                sys.stdout.write("\033[H\033[2J")  # redraw in place
            print(text, flush=True)
            if args.watch is None or sweep.complete():
                return 0
            time.sleep(args.watch)
            if not sys.stdout.isatty():
                print()
    except KeyboardInterrupt:
        return 0


def best_run(
    sweep: store_mod.LocalSweep, views: list[store_mod.RunView]
) -> store_mod.RunView | None:
    scored = [v for v in views if v.metric is not None and v.state in ("finished", "stopped")]
    if not scored:
        return None
    pick = max if sweep.goal == "maximize" else min
    return pick(scored, key=lambda v: v.metric if v.metric is not None else 0.0)


def snapshot(sweep: store_mod.LocalSweep) -> dict[str, Any]:
    views = sweep.runs()
    counts = sweep.counts(views)
    best = best_run(sweep, views)
    return {
        "sweep_id": sweep.sweep_id,
        "path": str(sweep.path),
        "method": sweep.definition.get("method"),
        "metric": sweep.definition.get("metric"),
        "planned_runs": sweep.planned_runs(),
        "complete": sweep.complete(),
        "counts": counts,
        "best": best.run_id if best else None,
        # run.json itself stays out: its epochs and summary are fields already
        "runs": [
            {
                **{f.name: getattr(v, f.name) for f in fields(v) if f.name != "record"},
                "run_dir": str(v.run_dir),
            }
            for v in views
        ],
    }


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _slurm(slurm: dict[str, Any]) -> str:
    if slurm.get("array_job_id") and slurm.get("array_task_id") is not None:
        return f"{slurm['array_job_id']}_{slurm['array_task_id']}"
    return str(slurm.get("job_id") or "-")


OWN_COLUMNS = ("run", "state", "epochs", "host", "slurm", "duration", "tries")
PARAM_PREFIX = "param:"


def param_header(name: str, metric_name: str) -> str:
    """A parameter's column name: its own, or ``param:NAME`` where that is one of status's
    own columns (a swept ``epochs`` is not the epochs logged)."""
    taken = (*OWN_COLUMNS, metric_name)
    return PARAM_PREFIX + name if name in taken or name.startswith(PARAM_PREFIX) else name


def epochs_logged(view: store_mod.RunView, metric_name: str | None) -> int:
    """The values logged under the sweep's metric, which hyperband counts as epochs (rows, for
    a sweep without a metric)."""
    return len(view.metric_history) if metric_name else len(view.epochs)


def render(sweep: store_mod.LocalSweep) -> str:
    views = sweep.runs()
    metric_name = sweep.metric_name or "metric"
    # the definition's swept parameters in its order (columns even before the first run), not
    # the ones pinned with value: (the same in every row)
    params = param_names(sweep.definition, views)
    header = [
        "run",
        "state",
        *(param_header(p, metric_name) for p in params),
        metric_name,
        "epochs",
        "host",
        "slurm",
        "duration",
        "tries",
    ]
    rows = []
    for v in sorted(views, key=lambda v: v.started_at or ""):
        state = v.state + (" (queued)" if v.queued else "")
        rows.append(
            [
                v.run_id,
                state,
                *(_fmt(v.params.get(p)) for p in params),
                _fmt(v.metric),
                str(epochs_logged(v, sweep.metric_name)),
                v.host or "-",
                _slurm(v.slurm),
                _fmt_duration(v.duration_s),
                str(v.attempts),
            ]
        )
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [f"sweep {sweep.sweep_id} ({sweep.definition.get('method')}, {sweep.path})"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    planned = sweep.planned_runs()
    summary = ", ".join(f"{n} {s}" for s, n in sweep.counts(views).items() if n) or "no runs yet"
    lines.append(f"runs: {summary}" + (f" (of {planned} planned)" if planned is not None else ""))
    best = best_run(sweep, views)
    if best is not None:
        values = " ".join(f"{k}={_fmt(val)}" for k, val in best.params.items())
        lines.append(
            f"best: {best.run_id} {metric_name}={_fmt(best.metric)} ({sweep.goal}) {values}"
        )
    # one line per distinct error: a broken sweep's runs all fail the same way
    errors: dict[tuple[str, str], list[str]] = {}
    for v in views:
        if v.state in ("failed", "crashed") and v.error:
            last = error_line(v.error)[:200]
            errors.setdefault((v.state, last), []).append(v.run_id)
    for (state, last), ids in errors.items():
        who = (
            ids[0]
            if len(ids) == 1
            else f"{len(ids)} runs ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
        )
        lines.append(f"{state} {who}: {last}")
    lines.append("complete" if sweep.complete() else "in progress")
    return "\n".join(lines)
