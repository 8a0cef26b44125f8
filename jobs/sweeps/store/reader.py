"""The one reader of a local sweep's runs: ``RunView`` s for ``status``, the report and the agent.

A run's view joins the journal's fold (state, swept values, attempts, times) with what the run
itself wrote (run.json, its W&B records: jobs/sweeps/wandb_run/metrics.py). An ended run whose end record
holds what its agent read of it can be shown from that record alone, with no read of its folder.
A running run whose lease is gone is shown as its own records say it ended (reconcile.py), else
crashed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.definition.parameters import flat_params
from sweepkit.jobs.sweeps.state import RunView, iso
from sweepkit.jobs.sweeps.store import end_values
from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.jobs.sweeps.store.reconcile import Reconciled, reconcile
from sweepkit.jobs.sweeps.store.reconcile import warning as reconcile_warning
from sweepkit.jobs.sweeps.store.snapshot_format import paused_gc
from sweepkit.jobs.sweeps.vocabulary import RUN_STATES
from sweepkit.jobs.sweeps.wandb_run.metrics import RunMetricsReader

# (run, now) -> True if the run's lease expired (the store's lease check, read as it is now)
LeaseCheck = Callable[[FoldedRun, float], bool]


def _last_written(run_dir: Path, default: float) -> float:
    """When a run reconciled from its records last wrote them: the end time its records imply."""
    times = []
    for name in ("run.json", "output.log"):
        with contextlib.suppress(OSError):
            times.append((run_dir / name).stat().st_mtime)
    return max(times, default=default)


class RunReader:
    """Reads the runs of one sweep folder, incrementally (W&B records are read on from where the
    last read stopped)."""

    def __init__(
        self, runs_root: Path, metric_name: str | None, goal: str, max_retries: int
    ) -> None:
        self.runs_root = runs_root
        self._runs_prefix = f"{runs_root}{os.sep}"  # str(runs_root / run_id), without a Path
        self.metric_name = metric_name
        self.max_retries = max_retries
        # what runs logged (their W&B records, else run.json), read incrementally
        self.metrics = RunMetricsReader(metric_name, goal)
        self._warned: set[str] = set()  # runs reconciled from their own records, warned about

    def run_dir(self, run_id: str) -> Path:
        return self.runs_root / run_id

    def views(
        self, runs: Iterable[FoldedRun], expired: LeaseCheck, now: float, read_ended: bool
    ) -> list[RunView]:
        """Every run's view. ``read_ended=False``: an ended run whose end record says enough is
        shown from that record (its ``epochs`` rows, ``config`` and ``record`` stay empty)."""
        out = []
        with paused_gc():
            for run in runs:
                view = None if read_ended else self.ended_view(run)
                out.append(view if view is not None else self.view(run, expired, now))
        return out

    def json_rows(
        self, runs: Iterable[FoldedRun], expired: LeaseCheck, now: float
    ) -> list[dict[str, Any]]:
        """``views(read_ended=False)`` as ``status --json`` writes them: plain dicts, an ended
        run's straight from its end record (``ended_json``), the others' views converted."""
        out = []
        with paused_gc():
            for run in runs:
                row = self.ended_json(run)
                if row is None:
                    row = view_json(self.view(run, expired, now))
                    self.metrics.forget(self.run_dir(run.run_id))  # its records, let go
                out.append(row)
        return out

    def reconciled(
        self, run: FoldedRun, warn: bool = True
    ) -> tuple[Reconciled, dict[str, Any]] | None:
        """How a running run whose lease is gone ended, by its own records, with what it logged;
        None if they do not say it ended. Warns once per run (``warn=False``: its caller warns
        of it, as of a run recovered from its folder, recovery.py)."""
        run_dir = self.run_dir(run.run_id)
        logged = self.metrics.read(run_dir, final=True)
        outcome = reconcile(self.metrics.run_json(run_dir), logged.exit_code)
        if outcome is None:
            return None
        if run.run_id not in self._warned:
            self._warned.add(run.run_id)
            if warn:
                print(reconcile_warning(run.run_id, outcome), file=sys.stderr)
        return outcome, logged.as_end_record()

    def ended_view(self, run: FoldedRun) -> RunView | None:
        """An ended run as its journal records say, or None if they do not say enough."""
        out = self.ended_json(run)
        if out is None:
            return None
        out.update(run_dir=self.runs_root / run.run_id, epochs=[], config={})
        return RunView(**out, from_end_record=True)

    def ended_json(self, run: FoldedRun) -> dict[str, Any] | None:
        """``ended_view``'s fields as ``status --json`` writes them (a plain dict in RunView's
        field order; ``run_dir`` a string, ``epochs`` and ``config`` null: not read), or None if
        its records do not say enough. No dataclass or Path per run: ``status --json`` of 20,000
        runs spent half its time building and taking apart views."""
        end = run.last_end
        if end is None or not isinstance(end.get("epochs"), int) or "metric_source" not in end:
            return None
        claims = run.claims
        first, last = claims[0], claims[-1]
        state = str(end["state"])
        metric = end_values.metric(end)
        # the queue rule from the end record read (the run state properties cost a third of a
        # status of 20,000 runs)
        queued = state == "preempted" or (state == "crashed" and run.crashes <= self.max_retries)
        source = end.get("metric_source")
        return {
            "run_id": run.run_id,
            "state": state,
            "params": flat_params(run.params),
            "run_dir": self._runs_prefix + run.run_id,
            "metric": metric if isinstance(metric, (int, float)) else None,
            "epochs": None,
            "summary": end_values.summary(end),
            "host": last.get("host"),
            "slurm": last.get("slurm") or {},
            "started_at": iso(first.get("at")),
            "ended_at": iso(end.get("at")),
            "attempts": len(claims),
            "error": end.get("error") if state in ("failed", "crashed") else None,
            "exit_code": end.get("exit_code"),
            "queued": queued,
            "duration_s": round(end["at"] - first.get("at", end["at"]), 1),
            "config": None,
            "metric_source": source if source != "none" else None,
            "metric_history": end_values.history(end),
            # values logged under the sweep's metric, as hyperband counts epochs (without one:
            # the distinct steps it logged at, RunRecords.step_count)
            "epoch_count": len(end.get("history") or []) if self.metric_name else end["epochs"],
        }

    def view(self, run: FoldedRun, expired: LeaseCheck, now: float) -> RunView:
        """A run as the journal and its own records say now (its folder read)."""
        run_dir = self.run_dir(run.run_id)
        end = run.last_end
        state = run.state
        if state == "running" and expired(run, now):
            reconciled = self.reconciled(run)
            state = "crashed" if reconciled is None else reconciled[0].state
            if reconciled is not None:
                end = {
                    **reconciled[1],
                    "at": _last_written(run_dir, now),
                    "exit_code": reconciled[0].exit_code,
                }
        logged = self.metrics.read(run_dir, final=state != "running")
        info = self.metrics.run_json(run_dir)
        ended = end is not None and state != "running"
        # an ended attempt: what the agent read when it ended (it keeps what a killed program's
        # lost writes no longer show); else what the run's records say now
        metric = end_values.metric(end) if end is not None and ended else None
        if metric is None:
            metric = logged.metric
        first, last = run.claims[0], run.claims[-1]
        error = (end or {}).get("error") or info.get("error")
        history = list(logged.history or end_values.history(end or {}))
        return RunView(
            run_id=run.run_id,
            state=state,
            params=flat_params(run.params),
            run_dir=run_dir,
            metric=metric if isinstance(metric, (int, float)) else None,
            epochs=list(logged.epochs),
            summary=logged.summary,
            host=info.get("host") or last.get("host"),
            slurm=info.get("slurm") or last.get("slurm") or {},
            started_at=iso(first.get("at")),
            ended_at=iso(end.get("at")) if end is not None and ended else None,
            attempts=len(run.claims),
            error=error if state in ("failed", "crashed") else None,
            exit_code=(end or {}).get("exit_code"),
            queued=run.queued(self.max_retries),
            duration_s=round(
                (end["at"] if end is not None and ended else now) - first.get("at", now), 1
            ),
            record=info,
            config=info.get("config") or logged.config,
            metric_source=logged.source if logged.source != "none" else None,
            metric_history=history,
            epoch_count=len(history) if self.metric_name else logged.step_count,
        )


def view_json(view: RunView) -> dict[str, Any]:
    """A run's fields in ``status --json`` (run.json itself stays out: its epochs and summary are
    fields already). A run shown from its end record has null ``epochs`` and ``config``: they
    were not read (``--records`` reads them)."""
    out = {f: getattr(view, f) for f in _JSON_FIELDS}
    out["run_dir"] = str(view.run_dir)
    if view.from_end_record:
        out["epochs"] = out["config"] = None
    return out


_JSON_FIELDS = tuple(f.name for f in fields(RunView) if f.name not in ("record", "from_end_record"))


def counts(views: list[RunView]) -> dict[str, int]:
    """Runs by state, every state present (0 where none)."""
    out = dict.fromkeys(RUN_STATES, 0)
    for view in views:
        out[view.state] += 1
    return out
