"""Hyperband's stop rule for one running run, at a cost that does not grow with the ended runs.

W&B's rule (``sweeps.hyperband_stopping.hyperband_stop_runs``, which W&B's controller runs for
every run at once): at each band b (an epoch count), the threshold is the r-th quantile (r = 1/eta)
of every run's metric value at epoch b (negated when maximising); a running run whose history
reached band b and no later band is stopped when its best value so far (``strict``: its value at
b) is worse than that threshold. Asked at each new epoch of a run, the engine's function reads
every run's history: N x history-length values in Python per check (0.25 s at 5,000 runs).

Here an ended run's values at the bands are kept sorted, added once when it ends (and taken out if
it is resumed); a check reads only the running runs' live histories and picks the quantile from the
kept values plus theirs. The decision is the engine's (tests/jobs/sweeps/test_store_scale.py compares the two
on random sweeps).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from typing import Any

from sweepkit.jobs.sweeps.store import end_values
from sweepkit.jobs.sweeps.vocabulary import as_float
from sweepkit.jobs.sweeps.wandb_run.metrics import is_finite_number


def bands_and_eta(definition: dict[str, Any]) -> tuple[list[int], float, bool]:
    """The engine's bands (ascending epoch counts), eta and strictness for this definition."""
    from sweeps.hyperband_stopping import hyperband_baseline_validate_and_fill

    config = hyperband_baseline_validate_and_fill(dict(definition))
    et = config["early_terminate"]
    bands: list[int] = []
    if "max_iter" in et:
        band = float(et["max_iter"])
        for _ in range(int(et["s"])):
            band /= et["eta"]
            if band < 1:
                break
            bands.append(int(band))
        bands.sort()
    else:
        band = et["min_iter"]
        for _ in range(100):
            bands.append(int(band))
            band *= et["eta"]
    return bands, float(et["eta"]), et.get("strict") is True


def valid(values: list[Any], maximize: bool) -> list[float]:
    """A history as the engine compares it: finite numbers only, negated when maximising."""
    out = [as_float(v) for v in values if is_finite_number(v)]
    return [-v for v in out] if maximize else out


class BandValues:
    """The ended runs' values at each band, sorted; one entry per run, replaced when it changes."""

    def __init__(self, bands: list[int], maximize: bool):
        self.bands = bands
        self.maximize = maximize
        self.sorted: dict[int, list[float]] = {b: [] for b in bands}
        self._by_run: dict[str, tuple[Any, list[float]]] = {}  # run -> (its end record, history)
        self._seen = 0  # runs looked at, in the order they appeared
        self._open_before: set[str] = set()

    def to_look_at(self, runs: Mapping[str, Any], open_runs: Mapping[str, Any]) -> list[Any]:
        """The runs whose part may have changed since the last call: runs new to ``runs`` (a dict
        in the order runs appeared), the running and queued ones now (``open_runs``), and those
        that were then. A run that ended and is not queued never changes again: not looked at."""
        new = list(itertools.islice(runs.values(), self._seen, None))
        self._seen = len(runs)
        out = {run.run_id: run for run in new}
        for run_id in self._open_before:
            out.setdefault(run_id, runs[run_id])
        out.update(open_runs)
        self._open_before = set(open_runs)
        return list(out.values())

    def update(self, run_id: str, end: dict[str, Any] | None) -> None:
        """Count the run as ended with ``end`` (None: it is running or queued again, not ended)."""
        kept = self._by_run.get(run_id)
        if kept is not None and kept[0] is end:
            return
        if kept is not None:
            for b in self.bands:
                if len(kept[1]) >= b:
                    values = self.sorted[b]
                    del values[bisect.bisect_left(values, kept[1][b - 1])]
            del self._by_run[run_id]
        if end is None:
            return
        history = valid(end_values.history(end), self.maximize)
        self._by_run[run_id] = (end, history)
        for b in self.bands:
            if len(history) >= b:
                bisect.insort(self.sorted[b], history[b - 1])


def says_stop(
    history: list[float],
    bands: list[int],
    eta: float,
    strict: bool,
    ended: BandValues,
    running: list[list[float]],
) -> bool:
    """The engine's decision for a running run with (valid) ``history``, given the ended runs'
    band values and every running run's valid history (this one's included)."""
    closest = max((b for b in bands if b <= len(history)), default=-1)
    if closest == -1 or not history:
        return False
    values = ended.sorted[closest] + [h[closest - 1] for h in running if len(h) >= closest]
    values.sort()
    threshold = values[int((1.0 / eta) * len(values))]
    condition = history[closest - 1] if strict else min(history)
    return condition > threshold
