"""What the sweep report says about a sweep, as pure functions of its runs and definition.

Parameter importance follows the W&B app's panel: a random forest with the swept parameters as
inputs and the sweep metric as target, whose feature importances rank the parameters, shown
beside each parameter's linear (Pearson) correlation with the metric. Categorical parameters are
one-hot encoded and their columns' importances are summed back into one number per parameter.
A sweep with more than ``IMPORTANCE_SAMPLE`` runs to analyse has its forest fitted on a random
sample of that many of them (the same sample for the same runs: a fixed seed), as 200 trees over
20,000 runs took 20 s of a report; the page says so. Correlations use every run.

Everything here works on plain records that have the attributes of ``sweepkit.jobs.sweeps.store.RunView``
(``run_id``, ``state``, ``params``, ``metric``, ``epochs``), so it is tested on constructed runs.
No I/O, no plotting.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sweepkit.jobs.sweeps.definition.parameters import (
    fixed_params,
    flatten,
    param_names,
    param_specs,
)
from sweepkit.jobs.sweeps.display import shown
from sweepkit.jobs.sweeps.vocabulary import SCORED_STATES, as_float, rank_key
from sweepkit.jobs.sweeps.wandb_run.metrics import is_finite_number

# Order in which the report lists states; labels say what each means to a sweep user.
STATE_LABELS: dict[str, str] = {
    "finished": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "stopped": "stopped by hyperband",
    "preempted": "preempted",
    "pending": "pending",
    "running": "running",
}
# Runs whose metric is a final (or early-stopped final) value, as the W&B panels use them.
ANALYSED_STATES = SCORED_STATES
MIN_RUNS = 2
# the most runs the importance forest is fitted on (a random sample of them beyond that: 200 trees
# over 1,000 runs take about 0.4 s of CPU, over 20,000 runs 8 to 20 s)
IMPORTANCE_SAMPLE = 1000
LOG_DISTRIBUTIONS = {
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "log_normal",
    "q_log_normal",
}
MISSING = "(unset)"


class RunLike(Protocol):
    run_id: str
    state: str
    params: dict[str, Any]
    metric: float | None
    epochs: list[dict[str, Any]]


def finite_metric(run: RunLike) -> float | None:
    value = run.metric
    return as_float(value) if value is not None and is_finite_number(value) else None


def format_value(value: Any) -> str:
    """A parameter or metric value as a short label."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Axis:
    """How one parameter (or the metric) maps onto a [0, 1] axis."""

    name: str
    categorical: bool
    log: bool = False
    levels: tuple[str, ...] = ()  # categorical labels, bottom to top
    lo: float = 0.0  # numeric range on the axis scale (log10 when log)
    hi: float = 1.0
    values: tuple[float, ...] = ()  # distinct numeric values, ascending

    def scaled(self, value: Any) -> float | None:
        """The value on the axis scale (log10 for log axes); None for categoricals."""
        if self.categorical or not is_finite_number(value):
            return None
        return math.log10(value) if self.log else as_float(value)

    def position(self, value: Any) -> float:
        if self.categorical:
            label = level_label(value)
            if len(self.levels) < 2:
                return 0.5
            return self.levels.index(label) / (len(self.levels) - 1)
        scaled = self.scaled(value)
        if scaled is None or self.hi == self.lo:
            return 0.5
        return (scaled - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[tuple[float, str]]:
        """Tick positions and labels: every value when there are few (grids), else the two
        ends plus round numbers (decades on log axes) between them."""
        if self.categorical:
            return [(self.position(level), shown(level)) for level in self.levels]
        if len(self.values) <= 6:
            return [(self.position(v), format_value(v)) for v in self.values]
        ends = [self.values[0], self.values[-1]]
        inner = _decades(self.lo, self.hi) if self.log else _round_steps(self.lo, self.hi)
        ticks = [(self.position(v), format_value(v)) for v in ends]
        ticks += [
            (self.position(v), format_value(v)) for v in inner if 0.08 < self.position(v) < 0.92
        ]
        return sorted(ticks)


def _round_steps(lo: float, hi: float, target: int = 4) -> list[float]:
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def _decades(lo: float, hi: float) -> list[float]:
    decades = [10.0**k for k in range(math.ceil(lo), math.floor(hi) + 1)]
    if len(decades) < 2:  # under two decades: add 2x and 5x marks
        decades = [m * 10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1) for m in (1, 2, 5)]
        decades = [d for d in decades if lo <= math.log10(d) <= hi]
    return decades


def level_label(value: Any) -> str:
    return MISSING if value is _ABSENT else format_value(value)


_ABSENT = object()


def make_axis(name: str, values: Sequence[Any], spec: Mapping[str, Any] | None = None) -> Axis:
    """Numeric axis when every value is a finite number, else categorical (labels as strings)."""
    spec = spec or {}
    if values and all(is_finite_number(v) for v in values):
        numbers = [as_float(v) for v in values]
        distinct = tuple(sorted(set(numbers)))
        if min(numbers) <= 0:
            log = False
        elif "distribution" in spec or "min" in spec:  # the definition says which scale
            log = spec.get("distribution") in LOG_DISTRIBUTIONS
        else:  # listed values (grids) spanning orders of magnitude, e.g. 1e-1, 1e-2, 1e-3
            log = len(distinct) >= 3 and max(numbers) / min(numbers) >= 20
        scaled = [math.log10(v) for v in numbers] if log else numbers
        return Axis(name, False, log, lo=min(scaled), hi=max(scaled), values=distinct)
    present = {level_label(v) for v in values}
    order = [format_value(v) for v in spec.get("values", [])] if spec else []
    levels = [label for label in order if label in present]
    levels += sorted(present - set(levels))
    return Axis(name, categorical=True, levels=tuple(levels))


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Linear correlation; None when either side is constant or there are under two points."""
    n = len(xs)
    if n < 2:
        return None
    # scaled into [-1, 1] first (a correlation does not change with scale): a metric or value
    # near float's limit (1e154 and more) would overflow the sums of squares below
    xs, ys = _unit_scaled(xs), _unit_scaled(ys)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 1e-300 or syy <= 1e-300:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _unit_scaled(values: Sequence[float]) -> list[float]:
    top = max(abs(v) for v in values)
    return [v / top for v in values] if top > 0 else list(values)


@dataclass
class ParamStat:
    name: str
    axis: Axis
    distinct: int
    importance: float | None = None
    correlation: float | None = None  # numeric parameters, on the axis scale
    level_correlations: list[tuple[str, float | None]] = field(default_factory=list)
    note: str = ""


@dataclass
class Analysis:
    metric_name: str | None
    goal: str  # "maximize" | "minimize"
    counts: dict[str, int]
    analysed: list[Any]  # runs with a final metric, best first
    params: list[ParamStat]  # sorted by importance, most important first
    metric_axis: Axis | None
    best: Any | None
    message: str | None  # why importance/parallel coordinates are missing, if they are
    excluded: int = 0  # runs in analysed states whose metric is missing or not finite
    param_order: list[str] = field(default_factory=list)  # the definition's order
    fixed: dict[str, Any] = field(default_factory=dict)  # value: parameters, not analysed
    # the runs the importance forest was fitted on, when a sample of ``analysed``; None: all
    importance_runs: int | None = None

    @property
    def enough(self) -> bool:
        return self.message is None


def count_states(runs: Iterable[RunLike]) -> dict[str, int]:
    """Runs per state, every known state listed (zeros included), unknown states appended."""
    counts = dict.fromkeys(STATE_LABELS, 0)
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    return counts


def metric_of(definition: Mapping[str, Any]) -> tuple[str | None, str]:
    metric = definition.get("metric") or {}
    goal = str(metric.get("goal", "minimize")).lower()
    return metric.get("name"), ("maximize" if goal == "maximize" else "minimize")


def importance_sample(count: int) -> list[int] | None:
    """The rows the forest is fitted on when there are more than ``IMPORTANCE_SAMPLE`` (in
    order), drawn with a fixed seed; None: every row."""
    if count <= IMPORTANCE_SAMPLE:
        return None
    return sorted(random.Random(0).sample(range(count), IMPORTANCE_SAMPLE))


def random_forest_importance(columns: list[list[float]], target: list[float]) -> list[float]:
    """Feature importances of a random forest fitted to predict ``target`` from ``columns``."""
    from sklearn.ensemble import RandomForestRegressor

    rows = [list(row) for row in zip(*columns, strict=True)]
    forest = RandomForestRegressor(n_estimators=200, random_state=0)
    forest.fit(rows, target)
    return [float(v) for v in forest.feature_importances_]


def analyse(runs: Sequence[RunLike], definition: Mapping[str, Any]) -> Analysis:
    metric_name, goal = metric_of(definition)
    counts = count_states(runs)
    candidates = [r for r in runs if r.state in ANALYSED_STATES]
    analysed = [r for r in candidates if finite_metric(r) is not None]
    analysed.sort(key=lambda r: rank_key(r.metric, goal))
    excluded = len(candidates) - len(analysed)
    best = analysed[0] if analysed else None
    specs = param_specs(definition)
    names = param_names(definition, runs)
    analysis = Analysis(metric_name, goal, counts, analysed, [], None, best, None, excluded, names)
    analysis.fixed = fixed_params(definition)
    if metric_name is None:
        analysis.message = "The sweep definition names no metric, so runs cannot be ranked."
        return analysis
    if len(analysed) < MIN_RUNS:
        analysis.message = (
            f"Fewer than two finished runs with a {metric_name} value ({len(analysed)} of "
            f"{len(runs)} runs): parameter importance and parallel coordinates need at least two."
        )
        return analysis
    target = [finite_metric(r) or 0.0 for r in analysed]
    analysis.metric_axis = make_axis(metric_name, target)
    flat = [flatten(r.params) for r in analysed]
    columns: list[list[float]] = []
    owners: list[int] = []  # which parameter each forest column belongs to
    for index, name in enumerate(names):
        values = [p.get(name, _ABSENT) for p in flat]
        axis = make_axis(name, values, specs.get(name))
        stat = ParamStat(name, axis, distinct=len({level_label(v) for v in values}))
        if axis.categorical:
            for level in axis.levels:
                onehot = [1.0 if level_label(v) == level else 0.0 for v in values]
                columns.append(onehot)
                owners.append(index)
                if len(axis.levels) > 1:
                    stat.level_correlations.append((level, pearson(onehot, target)))
        else:
            scaled = [axis.scaled(v) or 0.0 for v in values]
            columns.append(scaled)
            owners.append(index)
            stat.correlation = pearson(scaled, target)
        if stat.distinct < 2:
            stat.note = f"single value ({axis.ticks()[0][1]}) in these runs: nothing to rank"
        analysis.params.append(stat)
    if columns:
        _fit_importance(analysis, columns, owners, target)
    if len(set(target)) == 1:
        for stat in analysis.params:
            stat.note = stat.note or f"every run has {metric_name} {format_value(target[0])}"
    analysis.params.sort(key=lambda s: -(s.importance or 0.0))
    return analysis


def _fit_importance(
    analysis: Analysis, columns: list[list[float]], owners: list[int], target: list[float]
) -> None:
    """Each parameter's importance: the forest's, on a sample of the rows past
    ``IMPORTANCE_SAMPLE``, its columns' importances summed back per parameter."""
    rows = importance_sample(len(target))
    if rows is not None:
        analysis.importance_runs = len(rows)
        columns = [[column[i] for i in rows] for column in columns]
        target = [target[i] for i in rows]
    importances = random_forest_importance(columns, target)
    for stat in analysis.params:
        stat.importance = 0.0
    for owner, value in zip(owners, importances, strict=True):
        analysis.params[owner].importance = (analysis.params[owner].importance or 0.0) + value
