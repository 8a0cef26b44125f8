"""What a run logged, as the sweep reads it: the one place that turns a run folder into the
sweep metric, its per-step history, per-epoch rows, summary and config.

The source is the run's own W&B records (``sweepkit.jobs.sweeps.wandb_run.records``), as W&B's sweep controller
reads them, for any program; a run folder without W&B data (``WANDB_MODE=disabled``, a program
that does not use wandb) falls back to ``run.json``, the record our trainer writes. Ranking
follows W&B: the metric is the summary's value (a ``define_metric`` summary such as ``{"max": v}``,
or a value the script set with ``run.summary``), else the last logged value; nested names are
dotted (``val.acc``); hyperband counts the history under that name.

NaN and the infinities logged under the metric are kept (status shows them; the ranking rule in
``vocabulary`` never makes them best; bayes and hyperband hand them to W&B's engine, which leaves
them out). A string, None or boolean logged under it counts as not logged, as in W&B's engine
(``sweeps.run.is_number`` is False for it), and is listed in ``not_numbers`` for one warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.vocabulary import as_float, is_rankable
from sweepkit.jobs.sweeps.wandb_run.records import RunRecords, summary_lookup
from sweepkit.train import runrecord
from sweepkit.train.json_values import number

# the summary key W&B's define_metric writes, by the sweep's goal, then the other aggregates
_AGGREGATES = {
    "maximize": ("max", "best", "last", "mean", "first", "min"),
    "minimize": ("min", "best", "last", "mean", "first", "max"),
}


@dataclass
class RunMetrics:
    """One run's logged values. ``source``: "wandb", "run.json", or "none" (nothing logged)."""

    source: str
    metric: float | None = None
    history: list[float] = field(default_factory=list)  # the metric at each step that logged it
    epochs: list[dict[str, Any]] = field(default_factory=list)  # {"epoch": step, name: value}
    # the steps it logged values at (RunRecords.step_count; run.json: its epochs): status's
    # epochs when the sweep has no metric
    step_count: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None  # from the W&B exit record (None: none written)
    logged: list[str] = field(default_factory=list)  # the names it logged, for warnings
    # values logged under the metric that are not numbers (strings, None, booleans), which count
    # as not logged, as in W&B's engine (``sweeps.run.is_number``); the agent warns once per run
    not_numbers: list[Any] = field(default_factory=list)

    def as_end_record(self) -> dict[str, Any]:
        """The part of the store's ``end`` record that says what the run logged."""
        return {
            "metric": self.metric,
            "history": self.history,
            "epochs": self.step_count,
            "metric_source": self.source,
            # its numbers (not media or tables): status shows an ended run from this record alone
            "summary": {k: v for k, v in self.summary.items() if is_number(v)},
        }


def is_number(value: Any) -> bool:
    """An int or float, not a bool (NaN and infinities included: a logged value, as W&B keeps it)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A number that can be ranked, plotted or compared: not NaN, not infinite (the ranking rule's
    own test, ``vocabulary.is_rankable``)."""
    return is_rankable(value)


def summary_number(value: Any, goal: str) -> float | None:
    """The number a summary value ranks by: itself, or from a define_metric summary dict the
    aggregate that matches the goal (``{"max": v}`` when maximizing), else another one."""
    if is_number(value):
        return as_float(value)
    if isinstance(value, dict):
        for key in _AGGREGATES.get(goal, _AGGREGATES["minimize"]):
            if is_number(value.get(key)):
                return as_float(value[key])
    return None


def _finite_last(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return finite[-1] if finite else (values[-1] if values else None)


def ranked_metric(summary_value: Any, history: list[Any], goal: str) -> float | None:
    """The number a run ranks by, W&B's rule, the one place it lives (status, the agent, the
    local and the W&B-backed report all use it): the summary's value (a number, or from a
    define_metric summary such as ``{"max": v}`` the aggregate that matches the goal), else the
    last finite value logged under the metric's name."""
    value = summary_number(summary_value, goal)
    if value is not None:
        return value
    return _finite_last([as_float(v) for v in history if is_number(v)])


class RunMetricsReader:
    """Reads runs' metrics for one sweep; keeps a reader per run folder, so a second read of a
    run reads only what its program appended since (the agent polls, status --watch redraws)."""

    def __init__(self, metric_name: str | None, goal: str):
        self.metric_name = metric_name
        self.goal = goal
        self._records: dict[Path, RunRecords] = {}
        self._run_json: dict[Path, tuple[float, dict[str, Any]]] = {}

    def records(self, run_dir: Path, final: bool = False) -> RunRecords:
        records = self._records.get(run_dir)
        if records is None:
            records = self._records[run_dir] = RunRecords(run_dir)
        records.refresh(final)
        return records

    def read(self, run_dir: Path, final: bool = False) -> RunMetrics:
        """The run's metrics now; ``final``: its program has exited (read to the very end)."""
        records = self.records(run_dir, final)
        if records.found:
            return self._from_wandb(records)
        return self._from_run_json(self.run_json(run_dir))

    def forget(self, run_dir: Path | None) -> None:
        """Drop what was read of a run (a caller that reads each run once: status --json)."""
        self._records.pop(run_dir, None)  # type: ignore[arg-type]
        self._run_json.pop(run_dir, None)  # type: ignore[arg-type]

    def history(self, run_dir: Path) -> list[float]:
        """The sweep metric's logged values so far: what hyperband counts, and all a poll of a
        running run needs (cheaper than ``read``: nothing else is decoded)."""
        if not self.metric_name:
            return []
        records = self.records(run_dir)
        if records.found:
            return [as_float(v) for _, v in records.history(self.metric_name) if is_number(v)]
        return [as_float(v) for v in metric_history(self.run_json(run_dir), self.metric_name)]

    def run_json(self, run_dir: Path) -> dict[str, Any]:
        """run.json, re-read only when it changed (the trainer replaces it each epoch)."""
        try:
            mtime = (run_dir / "run.json").stat().st_mtime_ns
        except OSError:
            return {}
        cached = self._run_json.get(run_dir)
        if cached is None or cached[0] != mtime:
            cached = self._run_json[run_dir] = (mtime, read_run_json(run_dir))
        return cached[1]

    def _from_wandb(self, records: RunRecords) -> RunMetrics:
        name = self.metric_name
        rows = records.rows
        epochs = []
        for row in rows:
            values = {k: v for k, v in row.items() if not k.startswith("_")}
            if values:
                epochs.append({"epoch": row["_step"], **values})
        logged_values = [v for _, v in records.history(name)] if name else []
        history = [as_float(v) for v in logged_values if is_number(v)]
        metric = ranked_metric(records.summary_value(name), history, self.goal) if name else None
        summary = {k: v for k, v in records.summary.items() if not k.startswith("_")}
        logged = sorted({k for e in epochs for k in e if k != "epoch"} | set(summary))
        return RunMetrics(
            source="wandb",
            metric=metric,
            history=history,
            epochs=epochs,
            step_count=records.step_count(),
            summary=summary,
            config=records.config,
            exit_code=records.exit_code,
            logged=logged,
            not_numbers=[v for v in logged_values if not is_number(v)],
        )

    def _from_run_json(self, info: dict[str, Any]) -> RunMetrics:
        if not info:
            return RunMetrics(source="none")
        name = self.metric_name
        summary = _dict(info.get("summary"))
        history = [as_float(v) for v in metric_history(info, name)]
        summary_value = number(summary_lookup(summary, name)) if name else None
        metric = ranked_metric(summary_value, history, self.goal) if name else None
        epochs = _rows(info)
        logged = sorted(
            {str(k) for e in epochs for k in e if k != "epoch"} | set(map(str, summary))
        )
        # what it wrote under the metric that is not a number: counts as not logged, as from W&B
        written = [number(e[name]) for e in epochs if name in e] if name else []
        if name and summary_value is not None and summary_number(summary_value, self.goal) is None:
            written.append(summary_value)
        not_numbers = [v for v in written if not is_number(v) and not isinstance(v, dict)]
        return RunMetrics(
            source="run.json",
            metric=metric,
            history=history,
            epochs=epochs,
            step_count=len({e.get("epoch", i) for i, e in enumerate(epochs)}),
            summary=summary,
            config=_dict(info.get("config")),
            logged=logged,
            not_numbers=not_numbers,
        )


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The trainer's run.json, or {} if it is missing or mid-write (it is replaced atomically)."""
    return runrecord.read_run_json(run_dir) or {}


def metric_history(info: dict[str, Any], metric_name: str | None) -> list[float]:
    """The metric's value at each epoch in a run.json (what hyperband counts)."""
    if not metric_name:
        return []
    values = [number(e.get(metric_name)) for e in _rows(info)]
    return [v for v in values if is_number(v)]


def _dict(value: Any) -> dict[str, Any]:
    """A mapping field of run.json, or {} where a foreign or damaged file has something else."""
    return value if isinstance(value, dict) else {}


def _rows(info: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json's epoch rows: its ``epochs`` list's mappings (anything else in it is skipped)."""
    epochs = info.get("epochs")
    return [e for e in epochs if isinstance(e, dict)] if isinstance(epochs, list) else []
