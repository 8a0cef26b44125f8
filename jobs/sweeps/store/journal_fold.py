"""A sweep's fold kept up to date from its files: the journal, read on from where the last read
stopped, and at first its snapshot.

The shell between the files (journal.py, snapshot.py) and the pure fold (fold.py): it reads, and
hands the fold what it read. A claim needs only the open runs and the counts of the others, so a
fresh reader starts from the snapshot's head (``catch_up``); whatever needs every run (status,
the report, a bayes proposal, a grid proposal from a head without its points, a snapshot to
write) has the rest read first (``read_all``).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.store import bayes_head, snapshot
from sweepkit.jobs.sweeps.store.bayes import BayesFacts
from sweepkit.jobs.sweeps.store.fold import Fold, FoldedRun, apply
from sweepkit.jobs.sweeps.store.grid_taken import GridIndex
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE, Journal

# A body of this many runs or more is frozen out of the cyclic garbage collector's sight once read
# (``gc.freeze``): its runs are long-lived and acyclic (reference counting frees them), and the
# collector would rescan their million objects at every full collection and once more at exit,
# about 1 s of a fresh bayes claim's 3.6 s of CPU at 20,000 runs (most of it while scikit-learn
# is imported). Not below: a frozen object that became cyclic garbage would never be freed, and a
# small body costs the collector little.
FREEZE_AFTER_RUNS = 1000
# (fold, base, named) -> the snapshot header's ``rows`` field, the rows file written
# (json_rows.py): ``base``, the field of the snapshot last read or written; ``named``, the runs
# that records folded in since then name (a done run's row in ``base`` stays only if none does)
RowsWriter = Callable[[Fold, "dict[str, Any] | None", "set[str]"], "dict[str, Any] | None"]


class JournalFold:
    """The fold of the journal of the sweep folder ``path``, as far as it was read."""

    def __init__(
        self,
        path: Path,
        blank: Fold,
        file_mode: int = SHARED_FILE_MODE,
        grid: GridIndex | None = None,
        rows_writer: RowsWriter | None = None,
        bayes: bayes_head.FactsIndex | None = None,
    ):
        self.path = path
        self.file_mode = file_mode  # of the snapshot it writes (lab_group.file_mode)
        self.grid = grid  # a grid sweep's order: its snapshot's head keeps the points taken
        self.bayes = bayes  # a bayes sweep's facts of a run: its snapshot keeps the unread runs'
        self._bayes_kept: tuple[snapshot.Snapshot, bayes_head.KeptFacts | None] | None = None
        self.fold = blank
        self._journal = Journal(path / "journal.jsonl")
        self._snapshot_at = 0  # the journal offset of the last snapshot read or written
        self._snapshot: snapshot.Snapshot | None = None  # read; the runs its head left unread
        self._unrecorded = False  # records folded in that the journal does not hold
        self._rows_writer = rows_writer
        self._rows_base: dict[str, Any] | None = None  # the rows field of the last snapshot
        # the run ids that records folded in after the snapshot read or written last name
        self.named_after_snapshot: set[str] = set()

    @property
    def offset(self) -> int:
        """The journal bytes folded."""
        return self._journal.offset

    def _blank(self) -> Fold:
        fold = self.fold
        return Fold(fold.goal, fold.target, fold.max_retries, metric_name=fold.metric_name)

    def _apply(self, records: list[dict[str, Any]]) -> None:
        apply(self.fold, records)
        self.named_after_snapshot.update(r["run"] for r in records if isinstance(r.get("run"), str))

    def catch_up(self) -> Fold:
        """Read the journal on; the first time, from its snapshot's head if it has a sound one
        (the runs that are not open stay unread: ``Fold.unread``)."""
        if self._journal.offset == 0 and not self.fold.runs and self._snapshot is None:
            found = self._snapshot = snapshot.read(self.path, self._journal.path)
            if found is not None:
                self.fold.runs = {run.run_id: run for _, run in found.open}
                self.fold.open = dict(self.fold.runs)
                self.fold.unread = found.unread
                self.fold.target_hit = found.target_hit
                self.fold.ahead = found.ahead
                self._journal.offset = self._snapshot_at = found.offset
                self._rows_base = found.header.get("rows")
        self._apply(self._journal.read_new())
        if self._journal.shrunk:  # records lost while this reader ran: read afresh, and recover
            print(
                f"sweepkit: warning: the journal {self._journal.path} was cut below what this "
                "process had read of it (records lost); it is read again",
                file=sys.stderr,
            )
            self.fold, self._journal = self._blank(), Journal(self._journal.path)
            self._snapshot, self._snapshot_at, self._unrecorded = None, 0, False
            self._rows_base, self.named_after_snapshot = None, set()
            return self.catch_up()
        return self.fold

    @property
    def unread_snapshot(self) -> snapshot.Snapshot | None:
        """The snapshot whose head the fold stands on while the runs it left unread are unread
        (their counts and what status's table shows of them are in it); None once all are read."""
        return self._snapshot if self.fold.unread is not None else None

    def read_all(self) -> Fold:
        """The fold with every run read: if a snapshot's head left runs unread, the fold of the
        whole snapshot, then the journal after it replayed again (so that records after the
        snapshot that name one of those runs apply as in a full replay, fold.py)."""
        found = self._snapshot
        if self.fold.unread is None or found is None:
            return self.fold
        self._snapshot = None
        fold = snapshot.read_all(self.path, found, self._journal.path, self._blank)
        journal = Journal(self._journal.path)
        journal.offset = found.offset
        apply(fold, journal.read_new())
        self.fold, self._journal = fold, journal
        if found.unread.count >= FREEZE_AFTER_RUNS:
            gc.freeze()
        return fold

    def bayes_runs(self) -> list[FoldedRun | BayesFacts] | None:
        """Every run in the fold's order, those the snapshot's head left unread as the facts it
        keeps of them (bayes_head.py); None (read every run) where it keeps none that hold: none
        kept, of another definition, torn, or named by a record after the snapshot."""
        found = self.unread_snapshot
        if found is None or self.bayes is None:
            return None
        if self._bayes_kept is None or self._bayes_kept[0] is not found:
            self._bayes_kept = found, self._kept_facts(found, self.bayes[0])
        kept = self._bayes_kept[1]
        if kept is None or not kept.ids.isdisjoint(self.named_after_snapshot):
            return None  # (named: a journal edited by hand, whose full replay's answer differs)
        return kept.every(self.fold.runs.values())

    def _kept_facts(self, found: snapshot.Snapshot, name: str) -> bayes_head.KeptFacts | None:
        data = snapshot.read_facts(self.path, found)
        try:
            placed = data if isinstance(data, str) else bayes_head.load(data, found.header, name)
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if isinstance(placed, str) or len(placed) != found.unread.count:
            return None
        return bayes_head.KeptFacts(placed, found.open)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records (the caller holds the lock) and fold them in, with no re-read when this
        reader was at the end of the journal."""
        self._apply(self._journal.append_and_read(records))

    def apply_unrecorded(self, records: list[dict[str, Any]]) -> None:
        """Fold records in that are not in the journal (a reader's recovered claims, which it may
        not append: recovery.py). A snapshot holds only what the journal holds: none is written
        from this fold."""
        self._apply(records)
        self._unrecorded = True

    def write_snapshot(self, force: bool = False) -> bool:
        """Write a snapshot of the fold as last read, when the journal has grown by
        ``snapshot.WRITE_AFTER_BYTES`` since the last one this reader saw (or ``force``)."""
        if self._unrecorded or (
            not force and self._journal.offset - self._snapshot_at < snapshot.WRITE_AFTER_BYTES
        ):
            return False
        self.read_all()  # a snapshot holds every run
        offset = self._snapshot_at = self._journal.offset
        rows = None
        if self._rows_writer is not None:
            rows = self._rows_writer(self.fold, self._rows_base, self.named_after_snapshot)
        extra = None if rows is None else {"rows": rows}
        written = snapshot.write(
            self.path,
            self._journal.path,
            self.fold,
            offset,
            self.file_mode,
            grid=self.grid,
            extra=extra,
            bayes=self.bayes,
        )
        if written:  # the next snapshot's rows start from this one's
            self._rows_base, self.named_after_snapshot = rows, set()
        return written
