"""A bayes proposal from what the engine's bayes search reads of each run, kept per run.

``sweeps.bayes_search.bayes_search_next_run`` walks every run on every call, in Python: it looks up
each swept value (``normalize_runs_as_array``), asks each ended run for its worst value, then for
its best one (``_construct_gp_data``). At 20,000 runs those loops are most of a claim, though a run's
answers change only when a record of it does. Here each run's answers are worked out once (its
swept values before the engine's normalisation, its best, worst and latest metric value) and kept
on the run until a record changes it; a proposal then builds the same arrays with numpy and hands
them to the engine's own ``next_sample`` (the Gaussian process, which samples at most 100 runs),
then maps the chosen point back to values as the engine does. Same arrays, same random draws:
the same proposal (tests/jobs/sweeps/store/test_bayes.py compares them with the engine's). A run's
answers are worked out as the engine's ``SweepRun`` methods work them out, without making a
``SweepRun`` (a pydantic object) per run.

The per-run answers come from the run's history cut short. ``bayes_search_next_runs`` reads a run's metric only through ``SweepRun.metric_extremum`` (the
best value, for the GP's samples, and the worst one, to impute failed runs) and, with
``impute: latest``, the last valid value of ``metric_history``. Called on full histories, that is
N x history-length ``is_number`` calls per claim (215,000 at 5,000 runs of 20 epochs: most of a
claim). So an ended run's history is cut to the values those reads can return (the least, the
greatest and the last valid one, in that order): the engine's reads give the same numbers from
it (``LocalSweep.bayes_runs`` hands such runs to the engine itself, for comparisons).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sweepkit.jobs.sweeps.state import plain
from sweepkit.jobs.sweeps.store import end_values
from sweepkit.jobs.sweeps.store.fold import FoldedRun
from sweepkit.jobs.sweeps.vocabulary import as_float

# Our states as the sweeps engine's RunState: a hyperband-stopped run reported real metrics, so
# bayes learns from them as from a finished run.
ENGINE_STATE = {
    "finished": "finished",
    "stopped": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "preempted": "preempted",
    "running": "running",
}

# the engine's run states, by what bayes does with a run's row
_SAMPLED = ("finished",)
_FAILED = ("failed", "crashed", "killed")
_RUNNING = ("running",)


def is_number(value: Any) -> bool:
    """``sweeps.run.is_number`` (a finite number, not a bool), answered without numpy for the
    floats and ints a run logs: the engine's takes 14 us, 500,000 times a claim at 20,000 runs."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return -(2**63) <= value < 2**64  # numpy refuses wider ints: the engine says no
    from sweeps.run import is_number as engine_is_number

    return bool(engine_is_number(value))


def bayes_history(values: list[Any]) -> list[Any]:
    """The part of a run's metric history that bayes can read: its extrema and last valid value
    (as the engine sees validity: finite numbers), in an order that keeps the last one last."""
    valid = []
    for v in values:  # a float (nearly every value) checked inline: 400,000 values at 20,000 runs
        if type(v) is float:
            if math.isfinite(v):
                valid.append(v)
        elif is_number(v):
            valid.append(in_float_range(v))
    if len(valid) <= 3:
        return valid
    return [min(valid), max(valid), valid[-1]]


def end_summary(name: str, end: dict[str, Any]) -> dict[str, Any]:
    """The summary the engine reads of an ended run: its metric (NaN and the infinities as the
    floats they are: the engine's own ``is_number`` leaves them out), none if it has none."""
    metric = end_values.metric(end)
    return {name: in_float_range(metric)} if metric is not None else {}


def in_float_range(value: Any) -> Any:
    """A value as the engine can take it: an int beyond a float's range as its infinity (the
    engine's numpy arrays overflow on it; an infinity it leaves out, as it does NaN)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return as_float(value)
    return value


@functools.cache
def bayes_run_class() -> type:
    """``SweepRun`` with ``metric_extremum`` memoised per metric and kind (a run's records do not
    change once it is handed over: a changed run gets a new object)."""
    from pydantic import PrivateAttr
    from sweeps.run import SweepRun

    class BayesRun(SweepRun):  # type: ignore[misc, valid-type]
        _extrema: dict[tuple[str, str], tuple[bool, Any]] = PrivateAttr(default_factory=dict)

        def metric_extremum(self, metric_name: str, kind: str) -> Any:
            key = (metric_name, kind)
            # the private dict itself: pydantic's attribute lookup of ``_extrema`` costs 2 us,
            # 40,000 times a claim at 20,000 runs
            memo = self.__pydantic_private__["_extrema"]
            hit = memo.get(key)
            if hit is None:
                try:
                    hit = (True, super().metric_extremum(metric_name, kind))
                except ValueError as err:
                    hit = (False, str(err))
                memo[key] = hit
            if hit[0]:
                return hit[1]
            raise ValueError(hit[1])

    return BayesRun


@dataclass(frozen=True)
class BayesFacts:
    """What bayes reads of one run: its swept values and its metric's best, worst and latest
    valid values (None where it has none)."""

    values: tuple[Any, ...]  # per searchable parameter, as the engine's normalisation reads it
    state: str  # the engine's state
    best: float | None
    worst: float | None
    latest: float | None


class BayesProposer:
    """Proposals of one bayes sweep definition."""

    def __init__(self, definition: dict[str, Any], metric_name: str):
        from sweeps.bayes_search import bayes_baseline_validate_and_fill
        from sweeps.params import HyperParameterSet

        self.config = bayes_baseline_validate_and_fill(definition)
        self.metric_name = metric_name
        metric = self.config["metric"]
        self.goal = metric["goal"]
        self.impute = str(metric["impute"])
        while_running = metric.get("impute_while_running")
        self.impute_while_running = None if while_running in ("false", None) else while_running
        self._params = HyperParameterSet.from_config(self.config["parameters"])
        if len(self._params.searchable_params) == 0:
            raise ValueError("Need at least one searchable parameter for bayes search.")
        by_index = sorted(self._params.param_names_to_index.items(), key=lambda item: item[1])
        self._columns = [(name, self._params.param_names_to_param[name]) for name, _ in by_index]
        # a categorical value's index by (type, value): the engine's ``value_to_idx`` compares it
        # with each allowed value in turn, 20,000 times a claim at 20,000 runs, for a few values
        self._index_memo: dict[tuple[str, type, Any], int] = {}

    def facts(self, run: FoldedRun | BayesFacts) -> BayesFacts:
        """What bayes reads of ``run``, kept on it until a record changes it (facts as they are:
        a snapshot's for a run it left unread, bayes_head.py)."""
        if isinstance(run, BayesFacts):
            return run
        if run.bayes_facts is None:
            end = run.last_end or {}
            history = bayes_history(end_values.history(end))
            summary = end_summary(self.metric_name, end)
            state = ENGINE_STATE[run.state]
            run.bayes_facts = self._facts_of(run.params, state, history, summary)
        return run.bayes_facts

    def _facts_of(
        self, config: dict[str, Any], state: str, history: list[Any], summary: dict[str, Any]
    ) -> BayesFacts:
        """What the engine's ``SweepRun.metric_extremum`` (the best and worst of the history and
        the summary, finite numbers only) and ``metric_history(filter_invalid=True)`` (the latest
        valid value) return for such a run, without making one: a pydantic object per run cost
        1.9 s a claim at 20,000 runs."""
        name = self.metric_name
        finite = [
            v for v in [*history, *([summary[name]] if name in summary else [])] if is_number(v)
        ]
        best_of, worst_of = (max, min) if self.goal == "maximize" else (min, max)
        valid = [v for v in history if is_number(v)]
        return BayesFacts(
            self._values(config),
            state,
            best_of(finite) if finite else None,
            worst_of(finite) if finite else None,
            valid[-1] if valid else None,
        )

    def _values(self, config: dict[str, Any]) -> tuple[Any, ...]:
        """The run's row before normalisation, as ``normalize_runs_as_array`` fills it."""
        from sweeps.params import HyperParameter

        params = self._params
        row = []
        for name, param in self._columns:
            value = params._get_val_from_config(config, name)
            if not value:
                row.append(0)
            elif param.type == HyperParameter.CATEGORICAL:
                row.append(self._category(param, value))
            else:
                row.append(value)
        return tuple(row)

    def _category(self, param: Any, value: Any) -> int:
        """``param.value_to_idx(value)``, memoised for the values whose equality their type and
        value decide (a str, int, bool, or a float other than NaN): equal keys compare equal
        with every allowed value, so they get the same index."""
        if type(value) not in (str, int, bool, float) or value != value:
            return int(param.value_to_idx(value))
        key = (param.name, type(value), value)
        hit = self._index_memo.get(key)
        if hit is None:
            hit = self._index_memo[key] = int(param.value_to_idx(value))
        return hit

    def propose(self, runs: Iterable[FoldedRun | BayesFacts], n: int) -> list[dict[str, Any]]:
        """``n`` proposals, as ``bayes_search_next_runs(runs, definition, n)`` makes them: each
        later one counts the earlier ones as pending runs."""
        facts = [self.facts(run) for run in runs]
        out: list[dict[str, Any]] = []
        for _ in range(n):
            config = self._next(facts)
            out.append(config)
            facts.append(self._facts_of(config, "pending", [], {}))
        return out

    def _next(self, facts: list[BayesFacts]) -> dict[str, Any]:
        from sweeps.bayes_search import next_sample
        from sweeps.params import HyperParameter, HyperParameterSet

        sample_X, current_X, y = self._gp_data(facts)
        params = HyperParameterSet.from_config(self.config["parameters"])
        suggested_X = next_sample(
            sample_X=sample_X,
            sample_y=y,
            X_bounds=[[0.0, 1.0]] * len(params.searchable_params),
            current_X=current_X if len(current_X) > 0 else None,
        )[0]
        for param in params:
            if param.type == HyperParameter.CONSTANT:
                continue
            param.value = param.ppf(suggested_X[params.param_names_to_index[param.name]])
        return plain(params.to_config())

    def _gp_data(self, facts: list[BayesFacts]) -> tuple[Any, Any, Any]:
        """(sample_X, current_X, y) as ``sweeps.bayes_search._construct_gp_data`` makes them."""
        import numpy as np

        x_norms = self._normalised(facts)
        terminal = (*_SAMPLED, *_FAILED)
        worst_values = [f.worst for f in facts if f.state in terminal and f.worst is not None]
        pick = min if self.goal == "maximize" else max
        worst = pick(worst_values, default=None)
        worst_metric = worst if worst is not None and np.isfinite(worst) else 0.0
        sampled: list[int] = []
        current: list[int] = []
        y: list[Any] = []
        for i, fact in enumerate(facts):
            if fact.state in _SAMPLED:
                y.append(fact.best if fact.best is not None else self._imputed(fact, worst_metric))
                sampled.append(i)
            elif fact.state in _FAILED:
                y.append(self._imputed(fact, worst_metric))
                sampled.append(i)
            elif fact.state in _RUNNING and self.impute_while_running is not None:
                imputed = self._imputed(fact, worst_metric, self.impute_while_running)
                y.append(fact.best if fact.best is not None else imputed)
                sampled.append(i)
            else:
                current.append(i)
        sample_X = x_norms[sampled] if sampled else np.empty([0, 0])
        current_X = x_norms[current] if current else []
        y_array = np.asarray(y)
        if len(y_array) > 0:
            y_array[~np.isfinite(y_array)] = worst_metric
        y_array *= -1 if self.goal == "maximize" else 1
        return sample_X, current_X, y_array

    def _imputed(self, fact: BayesFacts, worst_metric: float, strategy: str | None = None) -> Any:
        strategy = strategy or self.impute
        if strategy == "worst":
            return worst_metric
        value = fact.best if strategy == "best" else fact.latest
        return 0.0 if value is None else value

    def _normalised(self, facts: list[BayesFacts]) -> Any:
        """Every run's row, each parameter through its CDF as ``normalize_runs_as_array`` does."""
        import numpy as np

        params = self._params
        width = len(params.searchable_params)
        raw = np.array([f.values for f in facts], dtype=float).reshape(len(facts), width)
        out = np.zeros([len(facts), width])
        for name, idx in params.param_names_to_index.items():
            column = raw[:, idx]
            keep = ~np.isnan(column)
            out[keep, idx] = params.param_names_to_param[name].cdf(column[keep])
        return out
