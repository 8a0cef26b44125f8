"""A run's own W&B records: history per key and step, summary, config and exit record, read from
the offline (or online) run folders its program wrote under ``RUN_DIR/wandb/``.

wandb 0.31 keeps no ``wandb-summary.json`` or ``config.yaml`` for an offline run: the transaction
log ``<segment>/run-<id>.wandb`` is the only record, and wandb has no Python reader of it any more
(``wandb leet inspect`` in the wandb-core binary reads it, ~0.6-2.5 s a call: too slow to poll, see
bench/RESULTS.md). So this reads the format itself (``sweepkit.jobs.sweeps.wandb_run.log``), incrementally,
and folds the records: key names come from ``nested_key`` (where 0.31 puts every key, flat ones
too), dotted, else from ``key``; values stay JSON text until asked for.

A resumed run (same run id) writes one folder per attempt. Segments are joined oldest first; a
later segment's step replaces the same step of an earlier one, its summary and config keys replace
earlier ones, and the exit record is the last segment's.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.wandb_run.log import TransactionLog, decode

SEGMENT_PREFIXES = ("offline-run-", "run-")  # WANDB_MODE=offline, and online runs' local copy


def _name(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else str(item.key)


def _raw(item: Any) -> str:
    """A history, summary or config item's value as JSON text, decoded only when asked for (most
    of a long run's values are never read): its ``value_json``, or its typed field."""
    if item.value_json:  # what wandb 0.31 writes
        return str(item.value_json)
    which = item.WhichOneof("value") if item.DESCRIPTOR.oneofs_by_name.get("value") else None
    if which is None:
        return str(item.value_json)
    if which == "json":
        return str(item.json)
    return "null" if which == "none" else json.dumps(getattr(item, which))


Path_ = tuple[str, ...]


def _path(item: Any) -> Path_:
    return tuple(item.nested_key) or (str(item.key),)


def _assign(leaves: dict[Path_, str], path: Path_, value: str) -> None:
    """Set ``path`` in a flat {path: value} map, as setting it in the nested tree would: it
    replaces the path itself, any value above it and anything below it. No key of ``leaves`` is a
    prefix of another, so a key already there is replaced as it is (the common case, fast)."""
    if path in leaves:
        leaves[path] = value
        return
    for cut in range(1, len(path)):
        leaves.pop(path[:cut], None)
    _remove(leaves, path)
    leaves[path] = value


def _remove(leaves: dict[Path_, str], path: Path_) -> None:
    for key in [k for k in leaves if k[: len(path)] == path]:
        del leaves[key]


def _tree(leaves: dict[Path_, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, text in leaves.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = decode(text)
    return tree


class Segment:
    """One attempt of a run: one transaction log, folded as it is read."""

    def __init__(self, log_path: Path):
        self.log = TransactionLog(log_path)
        self.history: dict[int, dict[str, str]] = {}  # step -> {dotted key: JSON text}
        # summary and config as {key path: value} assignments (nested_key paths), in order
        self.summary: dict[Path_, str] = {}
        self.config: dict[Path_, str] = {}
        self.run: dict[str, Any] = {}  # run_id, sweep_id, project, entity
        self.summary_options: dict[str, list[str]] = {}  # define_metric(name, summary=...)
        # define_metric(name or glob, step_metric=...): the run's own x-axis (Lightning's
        # trainer/global_step, Hugging Face's train/global_step)
        self.step_metrics: dict[str, str] = {}
        self.exit_code: int | None = None  # None: no exit record (running, or killed)
        self.records_read = 0

    def log_first(self, max_bytes: int) -> None:
        """Fold the records in the log's first ``max_bytes`` (its run record comes first)."""
        self._fold(self.log.read_new(final=True, max_bytes=max_bytes))

    def refresh(self, final: bool = False) -> bool:
        """Fold the records appended since the last call; True if there were any."""
        records = self.log.read_new(final)
        self._fold(records)
        self.records_read += len(records)
        return bool(records)

    def _fold(self, records: list[Any]) -> None:
        for record in records:
            kind = record.WhichOneof("record_type")
            if kind == "history":
                self._history(record.history)
            elif kind == "summary":
                for item in record.summary.update:
                    _assign(self.summary, _path(item), _raw(item))
                for item in record.summary.remove:
                    _remove(self.summary, _path(item))
            elif kind == "config":
                self._config(record.config)
            elif kind == "run":
                run = record.run
                self.run = {
                    "run_id": run.run_id,
                    "sweep_id": run.sweep_id,
                    "project": run.project,
                    "entity": run.entity,
                }
                self._config(run.config)
            elif kind == "metric":
                self._metric(record.metric)
            elif kind == "exit":
                self.exit_code = int(record.exit.exit_code)

    def _metric(self, metric: Any) -> None:
        if metric.step_metric and (metric.name or metric.glob_name):
            self.step_metrics[metric.name or metric.glob_name] = metric.step_metric
        if metric.name:
            flags = [f.name for f, on in metric.summary.ListFields() if on is True]
            if flags:
                self.summary_options[metric.name] = flags

    def _history(self, history: Any) -> None:
        row = {_name(item): _raw(item) for item in history.item}
        if history.HasField("step"):
            step = int(history.step.num)
        else:
            logged = decode(row.get("_step", ""))
            step = logged if isinstance(logged, int) else max(self.history, default=-1) + 1
        self.history[step] = row

    def _config(self, config: Any) -> None:
        for item in config.update:
            path = _path(item)
            if not path[0].startswith("_"):  # _wandb: W&B's own bookkeeping
                _assign(self.config, path, _raw(item))
        for item in config.remove:
            _remove(self.config, _path(item))


def run_record(log_path: Path) -> dict[str, Any]:
    """The run record of one transaction log (run id, W&B sweep id, project, entity): it is
    written first, so only the first MiB is read."""
    segment = Segment(log_path)
    segment.log_first(1 << 20)
    return segment.run


def segment_folders(run_dir: Path) -> list[Path]:
    """The run's W&B run folders that hold a transaction log, oldest first (their names start
    with the time wandb.init ran: offline-run-YYYYMMDD_HHMMSS-<id>)."""
    root = run_dir / "wandb"
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.name.startswith(SEGMENT_PREFIXES) and _segment_entry(entry, run_dir.name):
            found.append(Path(entry.path))
    found.sort(key=_segment_order)
    return [p for p in found if _log_in(p) is not None]


def _segment_entry(entry: os.DirEntry[str], run_id: str) -> bool:
    """A W&B run folder of this run: a folder, or a link the agent made to one the program
    wrote elsewhere (``sweepkit.jobs.sweeps.wandb_run.location``), which must hold this run's own log."""
    if entry.is_dir(follow_symlinks=False):
        return True
    return entry.is_symlink() and (Path(entry.path) / f"run-{run_id}.wandb").is_file()


def _segment_order(folder: Path) -> tuple[str, str]:
    return folder.name.removeprefix("offline-").removeprefix("run-"), folder.name


def _log_in(folder: Path) -> Path | None:
    logs = sorted(folder.glob("run-*.wandb"))
    return logs[0] if logs else None


class RunRecords:
    """All W&B segments of one run folder, joined; ``refresh()`` reads only what is new."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.segments: list[Segment] = []
        self._known: set[Path] = set()
        self._joined: dict[str, Any] | None = None  # caches, dropped when a record arrives
        self._rows: list[dict[str, Any]] | None = None
        self._history: dict[str, list[tuple[int, Any]]] = {}

    def refresh(self, final: bool = False) -> bool:
        """Pick up new segments and records; True if anything changed. A poll that finds nothing
        new costs one directory listing and one stat per segment."""
        changed = False
        try:
            names = [e.name for e in os.scandir(self.run_dir / "wandb")]
        except OSError:
            names = []
        own_log = f"run-{self.run_dir.name}.wandb"
        for name in names:
            folder = self.run_dir / "wandb" / name
            if name.startswith(SEGMENT_PREFIXES) and folder not in self._known:
                log = _log_in(folder)  # None while wandb.init is still creating it
                # a link is one the agent made to where the program wrote the run: only to a
                # folder holding this run's own log (sweepkit.jobs.sweeps.wandb_run.location)
                linked_ok = not folder.is_symlink() or (log is not None and log.name == own_log)
                if log is not None and folder.is_dir() and linked_ok:
                    self._known.add(folder)
                    self.segments.append(Segment(log))
                    self.segments.sort(key=lambda s: _segment_order(s.log.path.parent))
                    changed = True
        for segment in self.segments:
            changed |= segment.refresh(final)
        if changed:
            self._joined, self._rows, self._history = None, None, {}
        return changed

    @property
    def found(self) -> bool:
        """True if the run's W&B data holds any record (a log wandb created but never wrote to,
        or one that is not a transaction log, is no data: run.json, if any, speaks instead)."""
        return any(segment.records_read for segment in self.segments)

    def _join(self) -> dict[str, Any]:
        if self._joined is None:
            summary_leaves: dict[Path_, str] = {}
            config_leaves: dict[Path_, str] = {}
            options: dict[str, list[str]] = {}
            for segment in self.segments:
                for path, text in segment.summary.items():
                    _assign(summary_leaves, path, text)
                for path, text in segment.config.items():
                    _assign(config_leaves, path, text)
                options.update(segment.summary_options)
            summary = _tree(summary_leaves)
            if len(self.segments) > 1:
                # each segment aggregated only its own steps (an offline resume starts with an
                # empty summary): redo define_metric's aggregates over the joined history
                for name, flags in options.items():
                    _reaggregate(summary, name, flags, [v for _, v in self.history(name)])
            self._joined = {"summary": summary, "config": _tree(config_leaves)}
        return self._joined

    def _steps(self) -> dict[int, dict[str, str]]:
        """Step -> raw row, joined over segments (a later segment's step replaces the same step)."""
        if len(self.segments) == 1:
            return self.segments[0].history  # steps only go up within a segment
        joined: dict[int, dict[str, str]] = {}
        for segment in self.segments:
            joined.update(segment.history)
        return {step: joined[step] for step in sorted(joined)}

    @property
    def rows(self) -> list[dict[str, Any]]:
        """History rows in step order, each ``{"_step": step, dotted key: value, ...}``."""
        if self._rows is None:
            self._rows = [
                {"_step": step, **{k: decode(v) for k, v in row.items()}}
                for step, row in self._steps().items()
            ]
        return self._rows

    def history(self, key: str) -> list[tuple[int, Any]]:
        """``(step, value)`` of every row that logged ``key`` (dotted for nested keys)."""
        cached = self._history.get(key)
        if cached is None:
            cached = self._history[key] = [
                (step, decode(row[key])) for step, row in self._steps().items() if key in row
            ]
        return cached

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self._join()["summary"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._join()["config"])

    @property
    def exit_code(self) -> int | None:
        return self.segments[-1].exit_code if self.segments else None

    @property
    def run(self) -> dict[str, Any]:
        return dict(self.segments[0].run) if self.segments else {}

    def step_count(self) -> int:
        """How many steps the run logged values at: the distinct values of its own step metric
        when it declared one (``define_metric(..., step_metric=X)``, W&B's x-axis for its
        values), else the distinct ``_step`` values; a row holding nothing but W&B's own keys
        (``_runtime``) and the step metric is not a step."""
        axes = {axis for segment in self.segments for axis in segment.step_metrics.values()}
        axis = axes.pop() if len(axes) == 1 else None
        steps = set()
        for row in self.rows:
            if any(not k.startswith("_") and k != axis for k in row):
                step = row.get(axis, row["_step"]) if axis else row["_step"]
                steps.add(step if isinstance(step, int | float | str) else row["_step"])
        return len(steps)

    def summary_value(self, key: str) -> Any:
        """The summary's value for a dotted name: the flat key, else the nested path."""
        return summary_lookup(self._join()["summary"], key)


def summary_lookup(summary: dict[str, Any], name: str) -> Any:
    """A summary's value for a metric name: the key itself (``val/acc``, or a flat ``val.acc``),
    else the nested path of a dotted name (``{"val": {"acc": v}}`` for ``val.acc``)."""
    if name in summary:
        return summary[name]
    node: Any = summary
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _reaggregate(summary: dict[str, Any], name: str, flags: list[str], logged: list[Any]) -> None:
    values = [v for v in logged if _finite(v)]
    if not values or not isinstance(summary.get(name), dict):
        return
    value = dict(summary[name])
    for flag in flags:
        if flag == "min":
            value[flag] = min(values)
        elif flag == "max":
            value[flag] = max(values)
        elif flag == "mean":
            value[flag] = sum(values) / len(values)
        elif flag == "last":
            value[flag] = values[-1]
        elif flag == "first":
            value[flag] = values[0]
    summary[name] = value


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
