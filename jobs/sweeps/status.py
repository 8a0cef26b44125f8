"""``sweepkit status SWEEP [--json] [--watch [SECONDS]]``: a local sweep's runs at a glance.

One row per run (id, state, swept values, the sweep metric, epochs, host, SLURM job and array ids,
duration, attempts), then counts by state and the best run by the sweep's metric and goal. A sweep
of more than ``TABLE_RUNS`` runs lists its best runs, its running and queued runs and its failed
and crashed runs (``--all``: every run). ``--json`` prints one JSON document for scripts, one run
per line; ``--watch`` redraws every few seconds until the sweep is
complete (or Ctrl-C).

An ended run is shown from what its agent recorded when it ended (its end record: state, metric,
its history, epoch count, the summary's numbers, exit code, error), so the table and ``--json``
cost a read of the journal plus the running runs' own records, whatever the number of ended runs
(``--json`` copies the done runs' rows from ``journal.rows``, kept beside the snapshot as encoded:
store/json_rows.py).
What only a run's own W&B records hold (its per-epoch rows, its config, the summary's values that
are not numbers) is null in ``--json`` for such a run; ``--json --records`` reads every run's
records for them (2 ms or so of CPU per run: 40 s at 20,000 runs).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
from typing import Any, TextIO

from sweepkit.jobs.sweeps import store as store_mod
from sweepkit.jobs.sweeps.definition.parameters import fixed_params, param_names
from sweepkit.jobs.sweeps.display import escaped, param_label, shown
from sweepkit.jobs.sweeps.ref import parse_local
from sweepkit.jobs.sweeps.store.json_rows import encoded
from sweepkit.jobs.sweeps.store.reader import view_json
from sweepkit.jobs.sweeps.store.table_head import (
    BEST_SHOWN,
    TABLE_RUNS,
    Shown,
    from_head_doc,
    merged,
    shown_of,
)
from sweepkit.jobs.sweeps.vocabulary import RUN_STATES, SCORED_STATES, best_of
from sweepkit.train import json_values
from sweepkit.train.errors import UserError

DEFAULT_WATCH_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sweep", metavar="SWEEP", help="local sweep folder (printed by sweepkit sweep create)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument(
        "--records",
        action="store_true",
        help="with --json: read every run's own W&B records, for its per-epoch rows and config "
        "(slow for big sweeps; without it, an ended run is shown from its end record)",
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
    parser.add_argument(
        "--all",
        action="store_true",
        help=f"list every run (a sweep of more than {TABLE_RUNS} runs lists its best, running and failed runs)",
    )


def run(args: argparse.Namespace) -> int:
    sweep = store_mod.open_sweep(parse_local(args.sweep).text)
    if args.watch is not None and args.watch <= 0:
        raise UserError(f"--watch {args.watch:g}: must be a positive number of seconds")
    if args.records and not args.json:
        raise UserError("--records: only with --json (the table never reads ended runs' records)")
    if args.watch is None and not args.records:
        # one read of the journal, then exit: reference counting frees what it made (none of it
        # cyclic), and the collector's full passes over its 10^6 objects cost 0.3 s at 20,000
        # runs (--records reads W&B's files run by run, which may leave cycles: not there)
        gc.disable()
    try:
        while True:
            if args.watch is not None and sys.stdout.isatty():
                sys.stdout.write("\033[H\033[2J")  # redraw in place
            if args.json:
                write_json(sweep, sys.stdout, records=args.records)
            else:
                print(render(sweep, show_all=args.all), flush=True)
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
    scored = [v for v in views if v.state in SCORED_STATES]
    return best_of(scored, lambda v: v.metric, sweep.goal)


def header(sweep: store_mod.LocalSweep, states: list[str], best: str | None) -> dict[str, Any]:
    """The JSON document's fields besides its runs: ``states``, every run's; ``best``, the best
    run's id."""
    counts = dict.fromkeys(RUN_STATES, 0)
    for state in states:
        counts[state] += 1
    return {
        "sweep_id": sweep.sweep_id,
        "path": str(sweep.path),
        "method": sweep.definition.get("method"),
        "metric": sweep.definition.get("metric"),
        "planned_runs": sweep.planned_runs(),
        "complete": sweep.complete(),
        "target_reached": _target_reached(sweep),
        "counts": counts,
        "best": best,
    }


def _target_reached(sweep: store_mod.LocalSweep) -> dict[str, Any] | None:
    reached = sweep.fold.target_reached()
    return None if reached is None else {"run_id": reached[0], "value": reached[1]}


def snapshot(sweep: store_mod.LocalSweep) -> dict[str, Any]:
    """The JSON document with every run's own records read (``--json --records``)."""
    views = sweep.runs()
    best = best_run(sweep, views)
    head = header(sweep, [v.state for v in views], best.run_id if best else None)
    return {**head, "runs": [view_json(v) for v in views]}


def write_json(sweep: store_mod.LocalSweep, out: TextIO, records: bool = False) -> None:
    """The JSON document, one run per line. An ended run is written from its end record where
    that says enough (a plain dict, no view built: ``LocalSweep.json_rows``), a done one copied
    as encoded when the snapshot was written (``LocalSweep.encoded_rows``); the others (and
    every run, with ``records``: ``snapshot``'s document) from their own records."""
    if records:
        _write_records(sweep, out)
        return
    # a done run's row as the snapshot's rows file holds it, encoded once (store/json_rows.py)
    rows = sweep.encoded_rows()
    scored = [r for r in rows if r.state in SCORED_STATES]
    best = best_of(scored, lambda r: r.metric, sweep.goal)
    _write_head(out, header(sweep, [r.state for r in rows], best.run_id if best else None))
    for start in range(0, len(rows), WRITE_ROWS):  # a few large writes, not one per run
        lines = [row.text for row in rows[start : start + WRITE_ROWS]]
        out.write(("," if start else "") + "\n    " + ",\n    ".join(lines))
    out.write("\n  ]\n}\n")
    out.flush()


def _write_records(sweep: store_mod.LocalSweep, out: TextIO) -> None:
    """``write_json`` with ``records``: every run's own records read."""
    rows = sweep.json_rows()
    scored = [r for r in rows if r["state"] in SCORED_STATES]
    best = best_of(scored, lambda r: r["metric"], sweep.goal)
    _write_head(out, header(sweep, [r["state"] for r in rows], best["run_id"] if best else None))
    for start in range(0, len(rows), WRITE_ROWS):
        lines = []
        for row in rows[start : start + WRITE_ROWS]:
            if row["epochs"] is None:  # shown from its end record: read it
                row = view_json(sweep.run_view(row["run_id"]))
                sweep.metrics.forget(sweep.run_dir(row["run_id"]))
            lines.append(encoded(row))
        out.write(("," if start else "") + "\n    " + ",\n    ".join(lines))
    out.write("\n  ]\n}\n")
    out.flush()


def _write_head(out: TextIO, head: dict[str, Any]) -> None:
    text = json_values.dumps(head, indent=2)
    out.write(text[: text.rindex("}")].rstrip() + ',\n  "runs": [')


WRITE_ROWS = 1000


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
    """A value in a cell or on the best line: one line, cut (``display.shown``)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else shown(value)


def _slurm(slurm: dict[str, Any]) -> str:
    if slurm.get("array_job_id") and slurm.get("array_task_id") is not None:
        return shown(f"{slurm['array_job_id']}_{slurm['array_task_id']}")
    return shown(slurm.get("job_id") or "-")


OWN_COLUMNS = ("run", "state", "epochs", "host", "slurm", "duration", "tries")


def param_header(name: str, metric_name: str) -> str:
    """A parameter's column name: its own, or ``param:NAME`` where that is one of status's
    own columns (a swept ``epochs`` is not the epochs logged)."""
    return param_label(name, (*OWN_COLUMNS, metric_name))


def render(sweep: store_mod.LocalSweep, show_all: bool = False) -> str:
    metric_name = sweep.metric_name or "metric"
    listed = None  # every run, by start: a small sweep's table, or --all
    seen = None if show_all else head_shown(sweep)
    if seen is None:
        views = sweep.runs(read_ended=False)
        placed = zip(itertools.count(), sweep.fold.runs.values(), views, strict=False)
        seen = shown_of(placed, sweep.fold)
        if show_all or len(views) <= TABLE_RUNS:
            listed = sorted(views, key=lambda v: v.started_at or "")
    params = _params(sweep, seen)
    header = [
        "run",
        "state",
        *(shown(param_header(p, metric_name)) for p in params),
        shown(metric_name),
        "epochs",
        "host",
        "slurm",
        "duration",
        "tries",
    ]

    def row(v: store_mod.RunView) -> list[str]:
        state = v.state + (" (queued)" if v.queued else "")
        return [
            v.run_id,
            state,
            *(_fmt(v.params.get(p)) for p in params),
            _fmt(v.metric),
            str(v.epoch_count) if v.epoch_count or sweep.metric_name else "-",
            shown(v.host or "-"),
            _slurm(v.slurm),
            _fmt_duration(v.duration_s),
            str(v.attempts),
        ]

    lines = [
        f"sweep {sweep.sweep_id} ({sweep.definition.get('method')}, {escaped(str(sweep.path))})"
    ]
    if listed is not None:
        lines += _table(header, [row(v) for v in listed])
    else:
        for title, chosen in _sections(seen):
            lines.append(title)
            lines += ["  " + line for line in _table(header, [row(v) for v in chosen])]
    lines += _summary(sweep, seen, metric_name)
    if listed is None:
        lines.append(f"(--all lists all {seen.count} runs)")
    complete = sweep.complete()
    reached = None if seen.target is None else sweep.fold.target_words(*seen.target[1:])
    lines.append(
        ("complete" if complete else "in progress") + (f": {escaped(reached)}" if reached else "")
    )
    return "\n".join(lines)


def _params(sweep: store_mod.LocalSweep, seen: Shown) -> list[str]:
    """The definition's swept parameters in its order (columns even before the first run), then
    any others the runs carry, in the order of the first run with each; not the ones pinned with
    value: (the same in every row)."""
    params = param_names(sweep.definition, [])
    fixed = fixed_params(sweep.definition)
    for name, _ in sorted(seen.names.items(), key=lambda item: item[1]):
        if name not in params and name not in fixed:
            params.append(name)
    return params


def _summary(sweep: store_mod.LocalSweep, seen: Shown, metric_name: str) -> list[str]:
    """The counts by state, the best run and the errors."""
    planned = sweep.planned_runs()
    counts = dict.fromkeys(RUN_STATES, 0)
    for state, n in seen.states.items():
        counts[state] += n
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no runs yet"
    lines = [f"runs: {summary}" + (f" (of {planned} planned)" if planned is not None else "")]
    return lines + _best_line(sweep, seen.best_run(), metric_name) + _error_lines(seen)


def head_shown(sweep: store_mod.LocalSweep) -> Shown | None:
    """What the table of a big sweep shows, from its snapshot's head (table_head.py) and the runs
    read after it, none of those the head left unread; None where the head does not keep it (a
    small sweep, no snapshot, or one without: every run is read)."""
    found = sweep.unread_head()
    if found is None or found.table is None or sweep.fold.run_count <= TABLE_RUNS:
        return None
    head = from_head_doc(found.table, sweep.reader.ended_view)
    if head is None or not set(head.states) <= set(RUN_STATES):
        return None
    base = found.unread.count + len(found.open)  # runs after the snapshot come after all of its
    orders = {run.run_id: order for order, run in found.open}
    runs = list(sweep.fold.runs.values())
    views = sweep.views_of(runs)
    placed = [
        (orders.get(r.run_id, base + i), r, v)
        for i, (r, v) in enumerate(zip(runs, views, strict=True))
    ]
    return merged(head, shown_of(placed, sweep.fold), sweep.goal)


def _best_line(
    sweep: store_mod.LocalSweep, best: store_mod.RunView | None, metric_name: str
) -> list[str]:
    """``best: RUN METRIC=V (GOAL) PARAM=V ...``, if a run ranks; a parameter named like the
    metric is told apart as in the table's header: ``param:NAME``."""
    if best is None:
        return []
    values = " ".join(
        f"{shown(param_header(k, metric_name))}={_fmt(val)}" for k, val in best.params.items()
    )
    return [f"best: {best.run_id} {shown(metric_name)}={_fmt(best.metric)} ({sweep.goal}) {values}"]


def _error_lines(seen: Shown) -> list[str]:
    """One line per distinct error: a broken sweep's runs all fail the same way."""
    lines = []
    for (state, last), (n, first) in seen.errors.items():
        ids = [run_id for _, run_id in first]
        who = ids[0] if n == 1 else f"{n} runs ({', '.join(ids[:3])}{', ...' if n > 3 else ''})"
        lines.append(f"{state} {who}: {last}")
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _sections(seen: Shown) -> list[tuple[str, list[store_mod.RunView]]]:
    """The runs worth seeing in a big sweep: its best, those running or queued, those that failed
    (the last ones of each, newest last)."""
    best = [v for _, v in seen.best]
    out = [(f"best {min(BEST_SHOWN, seen.scored)} of {seen.scored} scored runs:", best)]
    for title, count, chosen in (
        ("running or queued", len(seen.open), seen.open[-TABLE_RUNS:]),
        ("failed or crashed", seen.failed, seen.last_failed),
    ):
        if count:
            more = f", the last {len(chosen)} shown" if len(chosen) < count else ""
            out.append((f"{title}: {count}{more}", [v for _, v in chosen]))
    return out
