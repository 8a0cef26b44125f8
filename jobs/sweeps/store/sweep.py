"""The local sweep store: a folder on the shared filesystem that replaces W&B's sweep server.

``LocalSweep`` is the shell around a pure core: it has the journal (and its snapshot) read and
handed to the fold (journal_fold.py, fold.py), asks the search engine for proposals (engine.py),
reads leases (leases.py), takes the lock, appends what the claim policy (claim_policy.py) decides,
and recovers the claims the journal lost from the folder (recovery.py). The layout: folder.py;
lock and journal: journal.py; the runs as readers see them: reader.py.

A claim reads the journal without the lock, asks the engine for proposals (pure: no I/O), then
takes the lock, reads what was appended meanwhile, ends the attempts whose lease expired as their
run's own records say (reconcile.py; crashed when they do not say it ended), and appends the
claim, after an exclusive create of the claim token. Grid proposals are re-checked
against claims appended meanwhile, so no grid point is handed out twice. A random or bayes
proposal is committed as made, from the runs as they were before the lock (possibly missing the
few claims and results appended meanwhile); run_cap, the metric target and the queue are checked
under the lock, so a proposal never exceeds run_cap nor takes a queued run's place.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps import lab_group
from sweepkit.jobs.sweeps.definition import planned_runs, upgrade_legacy_command
from sweepkit.jobs.sweeps.state import Claim, RunView
from sweepkit.jobs.sweeps.store import ahead, claim_policy, folder, json_rows, leases
from sweepkit.jobs.sweeps.store.engine import Engine
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun, Outcomes
from sweepkit.jobs.sweeps.store.journal import SweepLock, take_token
from sweepkit.jobs.sweeps.store.journal_fold import JournalFold
from sweepkit.jobs.sweeps.store.json_rows import EncodedRow
from sweepkit.jobs.sweeps.store.leases import AgentIdentity
from sweepkit.jobs.sweeps.store.reader import RunReader, counts
from sweepkit.jobs.sweeps.store.recovery import DiskEvidence, Recovery
from sweepkit.jobs.sweeps.store.snapshot import Snapshot
from sweepkit.train.errors import UserError
from sweepkit.train.write_errors import unwritable

# Bayes proposals (a Gaussian process: ~50 ms of CPU at 1,000 runs) are made outside the lock. If a
# claim planned to resume a queued run and another agent took it first, it lets the lock go and
# proposes outside it; only its last try proposes under the lock.
OPTIMISTIC_TRIES = 3


class LocalSweep:
    """A sweep folder: reading its runs (status, report) and handing them out (agents)."""

    def __init__(self, path: Path):
        import yaml

        from sweepkit.train.config import DuplicateKeyError, load_kit_yaml

        self.path = path
        folder.check_permissions(path)
        try:
            meta = json.loads((path / "sweep.json").read_text())
            self.definition_text = (path / "sweep.yaml").read_text()
            # written by the kit: libyaml's parser (a large grid's values are thousands of lines)
            self.definition: dict[str, Any] = load_kit_yaml(self.definition_text)
        except DuplicateKeyError as err:
            raise UserError(f"sweep {path}: sweep.yaml: {err}") from None
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise UserError(f"cannot read sweep {path}: {err}; the folder is damaged") from None
        # said once by whoever runs the sweep's program (the agent); sweep.yaml stays as written
        self.legacy_command_warning = upgrade_legacy_command(self.definition)
        self._run_cap: int | None = self.definition.get("run_cap")
        self.meta = meta
        self.sweep_id: str = meta["sweep_id"]
        self.created_at: str = meta["created_at"]
        self.lease_s = float(meta.get("lease_s", folder.DEFAULT_LEASE_S))
        self.max_retries = int(meta.get("max_retries", folder.DEFAULT_MAX_RETRIES))
        metric = self.definition.get("metric") or {}
        self.metric_name: str | None = metric.get("name")
        self.goal: str = metric.get("goal", "minimize")
        blank = Fold(
            self.goal, metric.get("target"), self.max_retries, metric_name=self.metric_name
        )
        self.group_id = lab_group.sweep_group(path)  # shared with a lab group (or None)
        self.file_mode = lab_group.file_mode(self.group_id)  # of what the kit writes in it
        self.leases = leases.LeaseFiles(path / "leases", self.lease_s, self.file_mode)
        self.reader = RunReader(path / "runs", self.metric_name, self.goal, self.max_retries)
        self._engine, self._taker = Engine(self.definition), ahead.Taker()
        rows = json_rows.writer(path, self.reader, self.file_mode)
        self._state = JournalFold(path, blank, self.file_mode, self._engine.grid_index(), rows)
        self._state.bayes = self._engine.bayes_index()
        self._lock: SweepLock | None = None
        disk = DiskEvidence(path, self.sweep_id)  # what the folder shows of lost claims
        self._recovery = Recovery(disk, self._state, self.reader, self.leases.expired, self.lease_s)
        # the lease check of a reader (status, report): no agent of its own
        self._reader_lease_check = lambda run, now: self.leases.expired(run, None, now)
        self.metrics = self.reader.metrics  # what runs logged, read incrementally

    # ----- reading -------------------------------------------------------------------------
    def planned_runs(self) -> int | None:
        return planned_runs(self.definition)

    def _read_on(self) -> None:
        """Read the journal on, and recover in memory the claims it lost (recovery.py): what
        reads every run does (``runs``: status, the report, sync); a claim appends them."""
        self._state.catch_up()
        self._recovery.check(None)

    def refresh(self) -> dict[str, FoldedRun]:
        """Every run by id, in the order of their first claim, the journal read on."""
        self._state.catch_up()
        return self._state.read_all().runs

    def outcomes(self) -> Outcomes:
        """What the broken-sweep rule reads (``Fold.outcomes``), the journal read on: from a
        snapshot's head and the journal after it, none of the runs the head left unread."""
        self._state.catch_up()
        return self.fold.outcomes()

    @property
    def fold(self) -> Fold:
        """The sweep's fold as last read (journal_fold.py)."""
        return self._state.fold

    def write_snapshot(self, force: bool = False) -> bool:
        """Write a snapshot of the fold, if due (``JournalFold.write_snapshot``) or ``force``."""
        return self._state.write_snapshot(force)

    def open_runs(self) -> dict[str, FoldedRun]:
        """The running and queued runs by id, as last read (``refresh`` reads on)."""
        return self.fold.open

    def run_dir(self, run_id: str) -> Path:
        return self.reader.run_dir(run_id)

    def runs(self, read_ended: bool = True) -> list[RunView]:
        """Every run with its state, swept values, metric and what its run.json says.
        ``read_ended=False``: an ended run whose end record says enough is shown from it
        (``RunReader.ended_view``); only the others' folders are read."""
        self._read_on()
        return self.views_of(self.refresh().values(), read_ended)

    def views_of(self, runs: Iterable[FoldedRun], read_ended: bool = False) -> list[RunView]:
        """``runs``' views as ``runs`` makes them."""
        return self.reader.views(runs, self._reader_lease_check, time.time(), read_ended)

    def unread_head(self) -> Snapshot | None:
        """The snapshot whose head the fold stands on, the journal read on, while the runs it
        left unread are (``JournalFold.unread_snapshot``); None once every run is read."""
        self._read_on()
        return self._state.unread_snapshot

    def json_rows(self) -> list[dict[str, Any]]:
        """``runs(read_ended=False)`` as ``status --json`` writes them (``RunReader.json_rows``)."""
        self._read_on()
        return self.reader.json_rows(self.refresh().values(), self._reader_lease_check, time.time())

    def encoded_rows(self) -> list[EncodedRow]:
        """``json_rows`` encoded: the snapshot's done runs copied from its rows file where it
        has one that holds (``json_rows.stored_rows``), the others made now."""
        self._read_on()
        now = time.time()
        stored = json_rows.stored_rows(self._state, self.reader, self._reader_lease_check, now)
        return [json_rows.encode(r) for r in self.json_rows()] if stored is None else stored

    def run_view(self, run_id: str) -> RunView:
        """One run (as in ``runs()``, its records read), from the journal as last read."""
        if run_id not in self.fold.runs:
            self._state.read_all()
        return self.reader.view(self.fold.runs[run_id], self._reader_lease_check, time.time())

    def counts(self, views: list[RunView] | None = None) -> dict[str, int]:
        """Runs by state, every state present (0 where none); ``views``: already read runs()."""
        return counts(self.runs() if views is None else views)

    def remaining(self) -> tuple[int | None, int | None]:
        """(planned, remaining): the runs the sweep makes in all, and those that still need a
        task: not yet made, queued, or running with their agent gone. From the journal and the
        leases, and the claims the journal lost recovered from the folder (recovery.py), as status
        sees them: no run.json read, nor the runs a snapshot's head left unread (none open)."""
        planned = self.planned_runs()
        if planned is None:
            return None, None
        self._read_on()
        now = time.time()
        taken = (self.fold.unread.count if self.fold.unread else 0) + sum(
            1
            for r in self.fold.runs.values()
            if not r.queued(self.max_retries)
            # the next claim ends a run whose agent is gone, and hands it out again unless its
            # own records say it ended (reconcile.py): it may need a task
            and not (r.state == "running" and self.leases.expired(r, None, now))
        )
        return planned, max(0, planned - taken)

    def complete(self) -> bool:
        """True when no run is running or queued and the search has nothing more to propose."""
        self._state.catch_up()
        return claim_policy.complete(self.fold, self.definition.get("run_cap"), self.planned_runs())

    def lost(self, claim: Claim) -> bool:
        """True if another agent has ended this attempt (after its lease expired: as the run's own
        records say it ended, else crashed)."""
        run = self._state.catch_up().runs.get(claim.run_id)  # None: the journal lost its claim
        return run is not None and claim.k in run.ends

    # ----- the search engine ---------------------------------------------------------------
    def engine_runs(self, live: bool = False) -> list[Any]:
        """The runs as the sweeps engine's SweepRun objects, cached per run until a record changes
        it. ``live``: running runs' history of the metric from what they logged so far (hyperband
        needs it; the journal has one only once a run ended)."""
        history = (lambda run_id: self.metrics.history(self.run_dir(run_id))) if live else None
        self._state.read_all()
        return self._engine.engine_runs(self.fold.runs.values(), history)

    def bayes_runs(self) -> list[Any]:
        """The runs as bayes search reads them (engine.py): ended runs' histories cut to what
        bayes reads."""
        self._state.read_all()
        return self._engine.bayes_runs(self.fold.runs.values())

    def _propose(self, n: int) -> list[dict[str, Any]]:
        """``n`` proposals from the engine, on the runs as last read (random search reads none); a
        fresh bayes agent's: a pending proposal made ahead, if any (ahead.py)."""
        if self.definition.get("method") == "bayes":
            if made := self._taker.take(self.fold, self._engine):
                return [made]
            if every := self._state.bayes_runs():  # the snapshot's facts of its unread runs
                return self._engine.propose_bayes(n, every)
        self._read_for_grid()
        if self.definition.get("method") not in ("random", "grid"):
            self._state.read_all()
        return self._engine.propose(n, self.fold.runs.values(), self.fold.unread)

    def _candidates(self) -> list[dict[str, Any]]:
        """Proposals drawn ahead that are still free, in the engine's order."""
        self._read_for_grid()
        return self._engine.candidates(self.fold.runs.values(), self._propose, self.fold.unread)

    def _read_for_grid(self) -> None:
        """A grid sweep's runs read, unless the snapshot's head says which points the runs it
        left unread hold (grid_taken.py): then a claim reads none of them."""
        if self.definition.get("method") == "grid" and not self._engine.reads_grid_head(
            self.fold.unread
        ):
            self._state.read_all()

    # ----- handing out runs ----------------------------------------------------------------
    def claim(self, me: AgentIdentity) -> Claim | claim_policy.NoClaim:
        """Hand the next run to agent ``me``: a queued (preempted/crashed) run first, else a new one."""
        if not os.access(self.path, os.W_OK):
            raise UserError(
                f"sweep folder {self.path} {unwritable(self.path)}; agents record their claims there"
            )
        drawn_ahead = self.definition.get("method") in ("grid", "random")
        for tries in range(1, OPTIMISTIC_TRIES + 1):
            self._state.catch_up()
            proposals: list[dict[str, Any]] = []
            if not claim_policy.queue(self.fold) and claim_policy.can_add(self.fold, self._run_cap):
                proposals = self._candidates() if drawn_ahead else self._propose(1)
            seen_at = self._state.offset
            self.write_snapshot()  # outside the lock, rarely (after ~1 MB of journal)
            # outside the lock: a lease read per running run
            suspects = self.leases.expired_running(list(self.fold.open.values()), me)
            seen_open = set(self.fold.open)
            due = self._recovery.due()  # the journal read on, then one listing of runs/
            with self.lock() as lock:
                self._state.catch_up()
                self._recovery.check(me, due)  # the claims the journal lost, appended
                ended = self._end_expired(suspects, seen_open, me)
                # grid proposals made before claims appended meanwhile may be taken: made again
                stale = self.definition.get("method") == "grid" and self._state.offset != seen_at
                stale = stale or self._taker.gone(self.fold)  # a proposal made ahead, taken since
                last_try = drawn_ahead or tries == OPTIMISTIC_TRIES
                got = self._claim_locked(me, lock, None if stale else proposals or None, last_try)
            for run_id, k in ended:  # their end records are in; lease files go outside the lock
                self.end_lease(run_id, k)
            if got is not None:
                return got
        raise AssertionError("unreachable: the last try proposes under the lock")

    def _claim_locked(
        self,
        me: AgentIdentity,
        lock: SweepLock,
        proposals: list[dict[str, Any]] | None,
        last_try: bool,
    ) -> Claim | claim_policy.NoClaim | None:
        """The claim, under the lock, as the policy decides; None: try again outside the lock."""
        refused: set[str] = set()
        planned = self.planned_runs()
        # ends: a pass returns, refuses one more queued run, or makes the proposals (then New/NoClaim)
        while True:
            decision = claim_policy.decide(
                self.fold,
                proposals,
                refused=frozenset(refused),
                may_wait=not last_try,
                run_cap=self._run_cap,
                planned=planned,
            )
            if isinstance(decision, claim_policy.Resume):
                claim = self._resume(decision, me, lock)
                if claim is not None:
                    return claim
                refused.add(decision.run_id)
            elif isinstance(decision, claim_policy.Propose):
                if decision.outside_lock:
                    return None  # the queued run went elsewhere: propose outside the lock
                drawn_ahead = self.definition.get("method") in ("grid", "random")
                proposals = self._candidates() if drawn_ahead else self._propose(1)
            elif isinstance(decision, claim_policy.New):
                return self._add(decision.params, me, lock)
            else:
                return decision

    def _resume(
        self, decision: claim_policy.Resume, me: AgentIdentity, lock: SweepLock
    ) -> Claim | None:
        """Attempt ``decision.k`` of a queued run, if its token is ours; None if another agent
        took it."""
        run_id, k = decision.run_id, decision.k
        token = self.path / "claims" / folder.attempt_file_name(run_id, k)
        if not (take_token(token, me.agent, self.file_mode) and lock.still_held()):
            return None
        with folder.undone_on_failure(token.unlink):
            self._state.append([claim_policy.claim_record(run_id, k, None, me, time.time())])
        return Claim(run_id, k, decision.params, self.run_dir(run_id), resumed=True)

    def _add(self, params: dict[str, Any], me: AgentIdentity, lock: SweepLock) -> Claim:
        """A new run with ``params``: its folder made exclusively (ids never collide), then its
        claim appended."""
        run_id = folder.make_run_dir(self.path / "runs", self.group_id)
        if not lock.still_held():
            raise UserError(
                f"the sweep lock {self.path / 'lock'} was broken while this agent held it (a stalled filesystem?); rerun the agent"
            )
        with folder.undone_on_failure(self.run_dir(run_id).rmdir):
            record = claim_policy.claim_record(run_id, 0, params, me, time.time())
            self._state.append([self._taker.tag(record, params)])
        self._engine.used(params)
        return Claim(run_id, 0, params, self.run_dir(run_id), resumed=False)

    def put_ahead(self, by: str, load: bool = False) -> bool:
        """Append a bayes proposal made ahead for a fresh agent, if none is pending (ahead.py)."""
        return ahead.put_ahead(self._state, self._engine, self.lock(), self._run_cap, by, load)

    def _end_expired(
        self, suspects: list[str], seen_open: set[str], me: AgentIdentity
    ) -> list[tuple[str, int]]:
        """End the attempts whose lease expired, read again under the lock, of the suspects and of
        the runs opened since ``seen_open`` (claims appended meanwhile, or recovered from the
        folder: their holder may be gone), then the lost later attempts of runs queued under the
        lock (recovery.py): these, or by a torn record read; returns (run, k) of the ended."""
        suspects = suspects + [run_id for run_id in self.fold.open if run_id not in seen_open]
        found = self.leases.expired_running([self.fold.runs[run_id] for run_id in suspects], me)
        expired, now = [self.fold.runs[run_id] for run_id in found], time.time()
        records = [
            claim_policy.expired_end(r, self.reader.reconciled(r), me, now, self.lease_s)
            for r in expired
        ]
        if records:
            self._state.append(records)
        self._recovery.check(me, due=False)  # one stat per queued run
        return [(run.run_id, run.k) for run in expired]

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records under the lock, as they are (tools that build a sweep's history, as
        tests and benchmarks do; agents use ``claim`` and ``finish``)."""
        with self.lock():
            self._state.catch_up()
            self._state.append(records)

    def lock(self) -> SweepLock:
        """The sweep's lock (one flufl.lock object per LocalSweep, reused for every append)."""
        if self._lock is None:
            self._lock = SweepLock(self.path / "lock")
        return self._lock

    def finish(self, claim: Claim, me: AgentIdentity, state: str, **result: Any) -> bool:
        """Record how the claimed attempt ended. False if another agent already ended it (our
        lease was lost)."""
        with self.lock():
            self._state.catch_up()
            if claim.k in self._recovery.own_claim(claim.run_id, claim.k, claim.params, me).ends:
                return False
            end = claim_policy.end_record(claim.run_id, claim.k, state, me, time.time(), **result)
            self._state.append([end])
        self.end_lease(claim.run_id, claim.k)  # killed before this line: leases.remove_ended
        return True

    # ----- leases (leases.LeaseFiles) -------------------------------------------------------
    def end_lease(self, run_id: str, k: int) -> None:  # once the attempt's end record is in
        self.leases.end(run_id, k)

    def remove_ended_leases(self) -> int:
        """Remove ended attempts' lease files that killed agents left (``leases.remove_ended``)."""
        return leases.remove_ended(self.leases.folder, self._state)

    def heartbeat(self, claim: Claim, me: AgentIdentity, child_pid: int | None = None) -> None:
        self.leases.beat(claim.run_id, claim.k, me, child_pid)
