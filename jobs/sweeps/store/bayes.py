"""What the sweeps engine's bayes search reads of a run, handed to it without the rest.

``bayes_search_next_runs`` reads a run's metric only through ``SweepRun.metric_extremum`` (the
best value, for the GP's samples, and the worst one, to impute failed runs) and, with
``impute: latest``, the last valid value of ``metric_history``. Called on full histories, that is
N x history-length ``is_number`` calls per claim (215,000 at 5,000 runs of 20 epochs: most of a
claim). So an ended run goes to the engine with its history cut to the values those reads can
return (the least, the greatest and the last valid one, in that order) and its extrema memoised:
the engine computes the same numbers from them, and a warm agent's claim asks each run once.
"""

from __future__ import annotations

import functools
from typing import Any

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


def bayes_history(values: list[Any]) -> list[Any]:
    """The part of a run's metric history that bayes can read: its extrema and last valid value
    (as the engine sees validity: finite numbers), in an order that keeps the last one last."""
    from sweeps.run import is_number

    valid = [v for v in values if is_number(v)]
    if len(valid) <= 3:
        return valid
    return [min(valid), max(valid), valid[-1]]


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
