"""Claims the journal lost, recovered from the sweep folder: the shell around lost_records.py.

Two kinds of evidence are read (lost_records.py says why they are evidence):

* run folders the journal has no claim of: ``runs/`` is listed, and only when it holds more
  folders than the journal has runs are they matched against the runs' ids. A claim appends its
  record in the same hold of the lock that made the run's folder, so the two counts agree unless
  records were lost (or folders added or removed by hand); comparing them costs one listing of
  ``runs/`` and keeps a claim from reading 20,000 folders, or a snapshot's every run, each time;
* the claim token of a queued run's next attempt (``claims/<run>.<k+1>``): one ``stat`` per
  queued run, of which there are few.

A folder with no parameter file started no program: when it holds no file at all and is older
than the lock's lifetime (its claimer died between the folder and its record, or lost that
record before it launched anything), a claim removes it; one with other files is named once and
left alone. Lease files are no evidence here (they go when an attempt ends).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.store import claim_policy, lost_records
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun
from sweepkit.jobs.sweeps.store.folder import KEPT_PARAM_FILE
from sweepkit.jobs.sweeps.store.journal import LOCK_LIFETIME_S
from sweepkit.jobs.sweeps.store.journal_fold import JournalFold
from sweepkit.jobs.sweeps.store.leases import AgentIdentity
from sweepkit.jobs.sweeps.store.lost_records import FoundRun
from sweepkit.jobs.sweeps.store.reader import RunReader

# (run, the claiming agent or None, now) -> True if the lease of the run's attempt expired
LeaseCheck = Callable[[FoldedRun, AgentIdentity | None, float], bool]


class DiskEvidence:
    """What a sweep folder shows of its claims, read for the records its journal lacks."""

    def __init__(self, sweep_dir: Path, sweep_id: str):
        self.sweep_dir = sweep_dir
        self.sweep_id = sweep_id
        # folders in runs/ less the runs of the fold when they were last matched: folders that
        # are no run's (or runs whose folder is gone) are not matched again at every claim
        self._gap = 0
        self._named: set[str] = set()  # folders without a parameter file, named once

    def param_file(self, run_id: str) -> Path:
        """The run's parameter file: where the agent writes it for the program, or once the run
        is done, where the agent keeps it (agent/launch.py, keep_param_file). A move keeps the
        file's time, which tells the attempts apart (attempt_started)."""
        run_dir = self.sweep_dir / "runs" / run_id
        live = run_dir / "wandb" / f"sweep-{self.sweep_id}" / f"config-{run_id}.yaml"
        return live if live.exists() else run_dir / KEPT_PARAM_FILE

    def _run_folders(self) -> list[str]:
        try:
            with os.scandir(self.sweep_dir / "runs") as entries:
                return [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    def due(self, fold: Fold) -> bool:
        """Whether ``runs/`` may hold folders the fold has no run of (one listing): more folders
        than runs, beyond those found to be no run's before. (Folders removed by hand make the
        count smaller: a lost claim is then found once the folders outnumber the runs again.)"""
        return len(self._run_folders()) - fold.run_count > self._gap

    def unknown_runs(self, fold: Fold, may_remove: bool) -> list[FoundRun]:
        """The runs whose folders the fold (every run read) lacks, with their attempts; with
        ``may_remove`` (under the lock) empty folders left by dead claimers are removed."""
        names = self._run_folders()
        unknown = sorted(set(names) - set(fold.runs))
        tokens = self._tokens() if unknown else {}
        found: list[FoundRun] = []
        for run_id in unknown:
            params = self._params(run_id)
            if params is None:
                if self._left_over(run_id, may_remove):
                    names.remove(run_id)
                continue
            attempts = {0: self._mtime(self.param_file(run_id)) or 0.0}
            for k in sorted(tokens.get(run_id, [])):
                started = self.attempt_started(run_id, k)
                if started is None:
                    break
                attempts[k] = started
            found.append(FoundRun(run_id, params, attempts))
        self._gap = max(0, len(names) - fold.run_count - len(found))
        # in the order of their first claim, as the fold keeps its runs
        return sorted(found, key=lambda run: (run.attempts[0], run.run_id))

    def later_attempts(self, fold: Fold) -> list[FoundRun]:
        """The queued runs whose next attempts were handed out and started (their claim tokens,
        and the parameter file written after them), though the fold has no claim of them: one
        ``stat`` per queued run, of its next attempt's token. (A running run whose end record was
        lost too is queued once its lease is gone: the claim that ends it asks again.)"""
        found = []
        for run in list(fold.open.values()):
            if not run.queued(fold.max_retries):
                continue
            attempts: dict[int, float] = {}
            k = run.k + 1
            while (started := self.attempt_started(run.run_id, k)) is not None:
                attempts[k] = started
                k += 1
            if attempts:
                found.append(FoundRun(run.run_id, None, attempts))
        return found

    def attempt_started(self, run_id: str, k: int) -> float | None:
        """When attempt ``k`` (k >= 1) was handed out, if its claim token exists and the agent
        wrote the run's parameter file after it (so its program started); else None."""
        token = self._mtime(self.sweep_dir / "claims" / f"{run_id}.{k}")
        if token is None:
            return None
        written = self._mtime(self.param_file(run_id))
        return None if written is None or written < token else token

    def ended_after(self, run_id: str, at: float) -> bool:
        """Whether the run's run.json was written since ``at`` (by the attempt handed out then)."""
        written = self._mtime(self.sweep_dir / "runs" / run_id / "run.json")
        return written is not None and written >= at

    def _tokens(self) -> dict[str, list[int]]:
        """Claim tokens by run: ``claims/<run>.<k>``."""
        out: dict[str, list[int]] = {}
        try:
            names = os.listdir(self.sweep_dir / "claims")
        except OSError:
            return out
        for name in names:
            run_id, _, k = name.rpartition(".")
            if run_id and k.isdigit() and int(k) > 0:
                out.setdefault(run_id, []).append(int(k))
        return out

    def _params(self, run_id: str) -> dict[str, Any] | None:
        """The parameter file's values ({name: {value: v}}), read as W&B reads it; None if the
        file is missing or unreadable."""
        import yaml

        try:
            values = yaml.safe_load(self.param_file(run_id).read_text())
        except (OSError, ValueError, yaml.YAMLError):
            return None
        if not isinstance(values, dict):
            return None
        values.pop("wandb_version", None)
        if not all(isinstance(v, dict) and "value" in v for v in values.values()):
            return None
        return values

    def _left_over(self, run_id: str, may_remove: bool) -> bool:
        """A folder with no parameter file: removed if ``may_remove``, it holds no file and it is
        older than the lock's lifetime; named once if it holds files. True if removed."""
        folder = self.sweep_dir / "runs" / run_id
        files = any(files for _, _, files in os.walk(folder))
        if not files:
            old = time.time() - (self._mtime(folder) or time.time()) > LOCK_LIFETIME_S + 10
            if may_remove and old:
                shutil.rmtree(folder, ignore_errors=True)
                return not folder.exists()
            return False
        if run_id not in self._named:
            self._named.add(run_id)
            print(
                f"sweepkit: warning: {folder} is no run of the journal and holds no parameter file "
                f"({self.param_file(run_id).name}): it is left as it is; move it out of "
                f"{self.sweep_dir / 'runs'} if it is not a run of this sweep",
                file=sys.stderr,
            )
        return False

    @staticmethod
    def _mtime(path: Path) -> float | None:
        try:
            return path.stat().st_mtime
        except OSError:
            return None


class Recovery:
    """Lost claims recovered into a sweep's fold: appended to the journal by a claim (under the
    lock), folded in memory by a reader (status, the report), which may not write."""

    def __init__(
        self,
        evidence: DiskEvidence,
        state: JournalFold,
        reader: RunReader,
        expired: LeaseCheck,
        lease_s: float,
    ):
        self.evidence = evidence
        self._state = state
        self._reader = reader
        self._expired = expired
        self._lease_s = lease_s
        # folded in memory by this process and not appended yet: its next claim appends them (a
        # copy another agent appended meanwhile is a claim or end the fold already has: ignored)
        self._pending: list[dict[str, Any]] = []
        self._warned: set[str] = set()

    def due(self) -> bool:
        """Whether runs/ may hold folders the fold, read on, has no run of (``DiskEvidence.due``)."""
        return self.evidence.due(self._state.catch_up())

    def check(self, me: AgentIdentity | None, due: bool | None = None) -> None:
        """Recover the claims the fold (read on) lacks. ``due``: what ``due()`` said before the
        lock, asked again if true (claims appended meanwhile made their folders too); None: ask
        now. ``me``: the claiming agent, which holds the lock and appends them; None: a reader,
        which folds them in memory."""
        due = self.due() if due is None else due and self.due()
        locked = me is not None
        fold = self._state.fold
        found = self.evidence.later_attempts(fold)
        if due:
            fold = self._state.read_all()
            found += self.evidence.unknown_runs(fold, may_remove=locked)
        gaps = lost_records.gap_ends(fold, [])  # the open runs: few
        if not found and not gaps and not (locked and self._pending):
            return
        fold = self._state.read_all()  # records folded in memory must outlive a snapshot's read
        claims = lost_records.claim_records(fold, found)
        self._add(claims, locked)
        ids = list(dict.fromkeys(str(r["run"]) for r in claims + gaps))
        self._add(lost_records.gap_ends(fold, ids) + self._ends(ids, me), locked)
        new = [run_id for run_id in ids if run_id not in self._warned]
        if new:
            self._warned.update(new)
            print(
                lost_records.warning(str(self.evidence.sweep_dir), len(new), locked),
                file=sys.stderr,
            )

    def own_claim(
        self, run_id: str, k: int, params: dict[str, Any], me: AgentIdentity
    ) -> FoldedRun:
        """The run of an agent's attempt as the fold has it (the caller holds the lock). When the
        journal lost the attempt's claim (cut while the attempt ran), the agent writes its claims
        back first, so that its end record is read."""
        run = self._state.fold.runs.get(run_id)
        have = 0 if run is None else len(run.claims)
        now = time.time()
        records = [
            claim_policy.claim_record(run_id, j, params if j == 0 else None, me, now)
            for j in range(have, k + 1)
        ]
        if records:
            self._state.append(records)
        return self._state.fold.runs[run_id]

    def _add(self, records: list[dict[str, Any]], locked: bool) -> None:
        if locked:
            records, self._pending = self._pending + records, []
            if records:
                self._state.append(records)
        elif records:
            self._state.apply_unrecorded(records)
            self._pending += records

    def _ends(self, ids: list[str], me: AgentIdentity | None) -> list[dict[str, Any]]:
        """The end records of the recovered attempts that ended: at once when the run's own
        records say so (for a later attempt, a run.json written since it was handed out), else
        once their lease expired (as crashed unless those records say how they ended)."""
        now, records = time.time(), []
        for run_id in ids:
            run = self._state.fold.runs[run_id]
            claim = run.claims[-1]
            if run.state != "running" or not claim.get(lost_records.RECOVERED):
                continue
            found = self._reader.reconciled(run, warn=False)
            said = found is not None and (
                run.k == 0 or self.evidence.ended_after(run_id, float(claim["at"]))
            )
            if said or self._expired(run, me, now):
                by = me or AgentIdentity(agent="reader")
                records.append(claim_policy.expired_end(run, found, by, now, self._lease_s))
        return records
