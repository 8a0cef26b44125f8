"""The store's side of W&B's ``sweeps`` search engine: the runs as the engine reads them, and its
proposals, drawn ahead where they do not depend on results.

A grid's next points come from their index in the engine's order (``definition/grid.py``), with no
import of the engine (about 1.3 s with scipy) and no listing of the whole grid; random and bayes
import only the engine's modules they call. Random proposals of the distributions whose inverse CDF
is arithmetic are drawn as the engine draws them, without it (``definition/random_draw.py``).

Bayes proposals are made from what bayes reads of each run, kept per run (bayes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sweepkit.jobs.sweeps.definition import quiet_sweeps_import, random_draw
from sweepkit.jobs.sweeps.definition.grid import GridOrder
from sweepkit.jobs.sweeps.state import plain
from sweepkit.jobs.sweeps.store import bayes_head, end_values, grid_taken
from sweepkit.jobs.sweeps.store.bayes import (
    ENGINE_STATE,
    BayesFacts,
    BayesProposer,
    bayes_history,
    bayes_run_class,
    end_summary,
)
from sweepkit.jobs.sweeps.store.fold import FoldedRun, Unread
from sweepkit.jobs.sweeps.store.grid_taken import GridIndex, GridTaken

# Proposals drawn ahead, outside the lock, for the methods whose proposals do not depend on results
# (grid: the next points in order; random: i.i.d. draws). An agent uses them one claim after
# another; grid points are re-checked under the lock against claims appended meanwhile.
# Grid: every agent draws the same next points, so a batch lasts about GRID_DRAWN_AHEAD / agents of
# its own claims; a point costs microseconds, so 16 agents redraw 8x less often than with 32.
# Random: draws cost ~0.3 ms each, so an agent's first claim draws 4, later ones 32 at a time.
GRID_DRAWN_AHEAD = 256
RANDOM_FIRST_DRAW = 4
DRAWN_AHEAD = 32


def limited_threads() -> Any:
    """A context in which numerical libraries use one thread: the GP is fit on at most 100
    samples, where BLAS threads only contend with each other and with the node's training runs
    (measured on a loaded 2-core machine: a bayes claim at 5,000 runs spent 2.2 s in the GP fit
    with default threads, about 0.1 s with one)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class Engine:
    """The search engine of one sweep definition, asked for proposals by an agent's claims."""

    def __init__(self, definition: dict[str, Any]):
        self.definition = definition
        self.method = definition.get("method")
        self.metric_name: str | None = (definition.get("metric") or {}).get("name")
        self.ahead: list[tuple[int | None, dict[str, Any]]] = []  # (grid index, params)
        self._draw = GRID_DRAWN_AHEAD if self.method == "grid" else RANDOM_FIRST_DRAW
        self._grid: GridOrder | None = None
        self._grid_index: dict[str, int | None] = {}  # by run id: a run's values never change
        self._fingerprint: str | None = None  # the grid's, as its snapshot heads name it
        self._bayes_proposer: Any = None
        # random's samplers, made at the first proposal (None: the engine draws; False: not yet)
        self._random: list[tuple[str, random_draw.Sampler]] | None | bool = False

    @property
    def bayes_loaded(self) -> bool:
        """Whether this agent has made a bayes proposal (the engine and scikit-learn imported)."""
        return self._bayes_proposer is not None

    def engine_runs(
        self,
        runs: Iterable[FoldedRun],
        live_history: Callable[[str], list[float]] | None = None,
    ) -> list[Any]:
        """The runs as the engine's SweepRun objects (state, config, metric history), cached per
        run until a record changes it. ``live_history``: a running run's history of the metric
        as logged so far (hyperband needs it; the journal has one only once a run ended)."""
        from sweeps.run import SweepRun

        out = []
        for run in runs:
            cached = run.engine_run
            live = live_history is not None and run.state == "running"
            if cached is None or live:
                end = run.last_end or {}
                values = end_values.history(end)
                if live_history is not None and live:
                    values = live_history(run.run_id)
                cached = SweepRun(
                    name=run.run_id,
                    state=ENGINE_STATE[run.state],
                    config=run.params,
                    history=self._history(values),
                    summary_metrics=self._summary(end),
                )
                if not live:
                    run.engine_run = cached
            out.append(cached)
        return out

    def bayes_runs(self, runs: Iterable[FoldedRun]) -> list[Any]:
        """The runs as bayes search reads them: an ended run's history cut to what bayes reads,
        its extrema memoised; cached per run until a record changes it. Running runs go as they
        are: bayes reads only their swept values."""
        cls = bayes_run_class()
        out = []
        for run in runs:
            if run.bayes_run is None:
                end = run.last_end or {}
                run.bayes_run = cls(
                    name=run.run_id,
                    state=ENGINE_STATE[run.state],
                    config=run.params,
                    history=self._history(bayes_history(end_values.history(end))),
                    summary_metrics=self._summary(end),
                )
            out.append(run.bayes_run)
        return out

    def _history(self, values: list[Any]) -> list[dict[str, Any]]:
        name = self.metric_name
        return [{name: v} for v in values] if name else []

    def _summary(self, end: dict[str, Any]) -> dict[str, Any]:
        name = self.metric_name
        return end_summary(name, end) if name else {}

    def propose(
        self, n: int, runs: Iterable[FoldedRun], unread: Unread | None = None
    ) -> list[dict[str, Any]]:
        """``n`` proposals: what ``sweeps.run.next_runs`` dispatches to, called directly, so that a
        grid or random agent does not import scikit-learn (bayes only, ~0.15 s). ``unread``: the
        runs a snapshot's head left unread (a grid's only: ``reads_grid_head``)."""
        if self.method == "grid":
            grid = self._grid_order()
            taken = self._grid_taken(runs, unread)
            return [grid.point(i) for i in taken.first_free(n, grid.size)]
        if self.method == "random" and self._random is False:
            self._random = random_draw.samplers(self.definition)
        if isinstance(self._random, list):
            return random_draw.draw(self._random, n)
        quiet_sweeps_import()
        if self.method == "random":
            from sweeps.random_search import random_search_next_runs

            # random search takes no runs: spare building 1,000 SweepRun objects for nothing
            proposals = random_search_next_runs(self.definition, n=n)
            return [plain(p.config) for p in proposals if p is not None]
        return self.propose_bayes(n, runs)

    def propose_bayes(self, n: int, runs: Iterable[FoldedRun | BayesFacts]) -> list[dict[str, Any]]:
        """``n`` bayes proposals from every run, or its facts where a snapshot kept them for a run
        it left unread (bayes_head.py), in the fold's order."""
        quiet_sweeps_import()
        with limited_threads():
            return self._bayes().propose(runs, n)  # type: ignore[no-any-return]

    def _bayes(self) -> Any:
        """The bayes proposer (bayes.py: the engine's bayes search, its per-run loops kept)."""
        if self._bayes_proposer is None:
            self._bayes_proposer = BayesProposer(self.definition, str(self.metric_name))
        return self._bayes_proposer

    def candidates(
        self,
        runs: Iterable[FoldedRun],
        propose: Callable[[int], list[dict[str, Any]]],
        unread: Unread | None = None,
    ) -> list[dict[str, Any]]:
        """Proposals drawn ahead (``propose``, DRAWN_AHEAD at a time) that are still free, in the
        engine's order."""
        grid = self.method == "grid"
        if grid:
            taken = self._grid_taken(runs, unread)
            self.ahead = [(key, p) for key, p in self.ahead if key not in taken]
        if not self.ahead:
            order = self._grid_order() if grid else None
            self.ahead = [(order.index_of(p) if order else None, p) for p in propose(self._draw)]
            self._draw = GRID_DRAWN_AHEAD if grid else DRAWN_AHEAD
        return [p for _, p in self.ahead]

    def used(self, params: dict[str, Any]) -> None:
        """``params`` (one of ``candidates``) went to a new run: drop it from those drawn ahead."""
        self.ahead = [(key, p) for key, p in self.ahead if p is not params]

    def _grid_order(self) -> GridOrder:
        if self._grid is None:
            self._grid = GridOrder(self.definition)
        return self._grid

    def bayes_index(self) -> bayes_head.FactsIndex | None:
        """A bayes sweep's fingerprint and what bayes reads of a run, which a snapshot keeps for
        the runs its head leaves unread (bayes_head.py); None for the other methods."""
        if self.method != "bayes":
            return None
        return bayes_head.fingerprint(self.definition), self._bayes_facts

    def _bayes_facts(self, run: FoldedRun) -> BayesFacts:
        quiet_sweeps_import()
        return self._bayes().facts(run)  # type: ignore[no-any-return]

    def grid_index(self) -> GridIndex | None:
        """A grid sweep's order, in which a snapshot's head keeps the points its unread runs hold
        (grid_taken.py); None for the other methods."""
        if self.method != "grid":
            return None
        return self._grid_fingerprint(), self._index_of

    def _grid_fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = grid_taken.fingerprint(self.definition)
        return self._fingerprint

    def reads_grid_head(self, unread: Unread | None) -> bool:
        """Whether the grid points taken are known from the runs read and ``unread``, the head's
        account of the others: False when the head keeps none, or those of another grid."""
        if unread is None:
            return True
        head = unread.grid
        return head is not None and head.fingerprint == self._grid_fingerprint()

    def _index_of(self, run: FoldedRun) -> int | None:
        """The grid point ``run`` holds, looked up once per run: a run's values never change."""
        if run.run_id not in self._grid_index:
            self._grid_index[run.run_id] = self._grid_order().index_of(run.params)
        return self._grid_index[run.run_id]

    def _grid_taken(self, runs: Iterable[FoldedRun], unread: Unread | None) -> GridTaken:
        """The grid points the runs hold (every run holds its point, whatever its state, as in
        the engine's grid search), with those the head says its ``unread`` runs hold (the caller
        read every run unless ``reads_grid_head``)."""
        base = unread.grid.taken if unread is not None and unread.grid is not None else None
        return GridTaken.of((i for run in runs if (i := self._index_of(run)) is not None), base)
