"""The words every part of a sweep shares: the states a run can be in, which of them count, and
one word for each idea, used by the store's code, its messages and docs/sweeps.md.

* *attempt*: one hand-out of a run to an agent, counted from 1 (attempt 1 is the run's first;
  ``SWEEPKIT_ATTEMPT`` and every message say this number). The journal's records and the claim
  and lease file names hold ``k``, the attempt's 0-based *index* (attempt ``k + 1``).
* *running*: a run whose last attempt has no end record yet.
* *ended*: an attempt with an end record; a run whose last attempt ended.
* *queued*: an ended run that is handed out again: preempted, or crashed with retries left.
* *done*: an ended run that is not queued: no agent runs it again.
* *complete*: a sweep with no run running or queued whose search has nothing more to propose
  (or whose run cap or metric target was reached): an agent exits with ``sweep complete``.

One place, so that the store, ``status``, the report and sync cannot drift apart on what
"done" or "scored" means, or on which run is best (``is_rankable``, ``rank_key``, ``best_of``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

# The trainer's metric names, defined by the program that logs them.
from sweepkit.train.metric_names import EPOCH_METRICS, FINAL_METRICS, METRIC_NAMES  # noqa: F401

# Every state a run can be in, in the order ``status`` counts them. ``pending`` is a run the engine
# planned but no agent has claimed; the others come from the journal's records.
RUN_STATES = ("pending", "running", "finished", "failed", "crashed", "preempted", "stopped")
# The states of a done run (a crashed run is done only once its retries are spent: the store's
# queue rule, FoldedRun.queued, decides that).
DONE_STATES = ("finished", "failed", "stopped", "crashed")
# States whose metric is a real result: a finished run, and one hyperband stopped after it
# reported real epochs. Best runs, plots and the search engine's learning use only these.
SCORED_STATES = ("finished", "stopped")
# States whose run has a W&B record to upload: those of a done run (sync skips queued retries).
SYNCABLE_STATES = DONE_STATES

T = TypeVar("T")


# ----- ranking: the one rule for "best" (status, the report, the metric's target) -----------------
def as_float(value: int | float) -> float:
    """A logged number as the float it is ranked, stored and plotted as: an int beyond a float's
    range (Python's ints have no bound; JSON's have none either) is the infinity of its sign."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def is_rankable(value: Any) -> bool:
    """A metric value a run can be ranked by: an int or float (not a bool) that is finite as a
    float. NaN and the infinities are logged values (shown as ``nan``/``inf``), never the best
    one: a run that diverged is not the sweep's answer, whichever way the goal points."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(as_float(value))
    )


def rank_key(value: Any, goal: str) -> tuple[int, float]:
    """Sort key, best first: rankable values by the goal, then every other value (NaN, the
    infinities, None) after them, in the order they came."""
    if not is_rankable(value):
        return (1, 0.0)
    return (0, -as_float(value) if goal == "maximize" else as_float(value))


def best_of(items: Iterable[T], value_of: Callable[[T], Any], goal: str) -> T | None:
    """The item whose value ranks best (the first of equals); None if no value is rankable."""
    rankable = [item for item in items if is_rankable(value_of(item))]
    return min(rankable, key=lambda item: rank_key(value_of(item), goal), default=None)
