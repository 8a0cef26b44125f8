"""A snapshot of the journal's fold, so that a fresh agent's start does not grow with the sweep.

The journal is append-only: the fold of its first ``offset`` bytes never changes. A snapshot
(``journal.snapshot`` in the sweep folder) holds that fold and the ``offset`` it covers; a reader
loads it and replays only the journal's bytes after ``offset``. Its bytes are in
snapshot_format.py: a small head with the open (running and queued) runs and the counts of the
others, which is all a claim reads, and a body with the others, read only when something asks
for every run (``read_all``: the report, a view of such a run, a bayes proposal where the
snapshot keeps no facts of them: bayes_head.py).
This module does the I/O; the fold (fold.py) gets what it reads.

The header keeps checksums of the journal's first and last ``CHECK_BYTES`` bytes before
``offset``: a journal that was replaced, truncated or rewritten no longer matches, and the
snapshot is ignored. The head and the body have checksums of their own, so a torn or foreign
file is ignored too. A body found wrong when it is read at last (the file was replaced by a newer
snapshot meanwhile, as another agent may do at any time) is not needed: its runs are folded from
the journal's first ``offset`` bytes instead, which is what they were folded from.

Written to a temporary file, fsynced and renamed over the old one (atomic on POSIX and NFS), by
any agent, with or without the lock: two writers each leave a whole, true snapshot; the one renamed
last wins, whichever offset it covers. A killed writer leaves at most its temporary file (the next
writer removes it once it is an hour old). Anything wrong with a snapshot means a full replay,
with one warning; the journal alone stays the truth. A sweep without a snapshot, or with one an
older sweepkit wrote (an older version: nothing is wrong, so no warning), is read from its whole
journal, and the next agent to write a snapshot replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepkit.jobs.sweeps.store import bayes_head
from sweepkit.jobs.sweeps.store.fold import Ahead, Fold, FoldedRun, Unread, apply
from sweepkit.jobs.sweeps.store.grid_taken import GridIndex
from sweepkit.jobs.sweeps.store.journal import SHARED_FILE_MODE, checked_body, parse_bodies
from sweepkit.jobs.sweeps.store.leases import HOST
from sweepkit.jobs.sweeps.store.snapshot_format import (
    READABLE,
    VERSION,
    dump,
    head_ahead,
    head_unread,
    load_body,
    load_head,
    open_runs,
)
from sweepkit.jobs.sweeps.store.table_head import head_doc
from sweepkit.train.errors import UserError

__all__ = ["VERSION", "Snapshot", "read", "read_all", "write"]

SNAPSHOT_NAME = "journal.snapshot"
CHECK_BYTES = 4096  # journal bytes checksummed at its head and before the offset covered
# An agent writes a new snapshot once it has replayed this many journal bytes past the last one
# (about 1,000 ended runs): rarely enough that writing it (a second or so at 20,000 runs, outside
# the lock) stays off the claims' path, often enough that the tail a fresh agent replays is small.
WRITE_AFTER_BYTES = 1_000_000
# A temporary snapshot file this old was left by a writer killed mid-write: the next writer removes it.
STALE_TMP_S = 3600
# The first read of a snapshot: its header and head (200 open runs take about 100 kB), in one read.
FIRST_READ = 256 * 1024


@dataclass
class Snapshot:
    """A snapshot's header and head, as read: what a claim needs (``read_all`` reads the rest)."""

    offset: int  # the journal bytes it covers
    head_crc: int
    tail_crc: int
    target_hit: bool
    open: list[tuple[int, FoldedRun]]  # the running and queued runs, with their place in order
    unread: Unread  # the others, counted
    ahead: Ahead  # the proposals made ahead still pending (fold.py)
    table: dict[str, Any] | None  # what status's table shows of the unread runs (table_head.py)
    header_line: bytes  # to tell, when the body is read, that the file is still this one
    header: dict[str, Any]
    head: bytes


def check_crcs(journal_prefix_head: bytes, journal_prefix_tail: bytes) -> tuple[int, int]:
    return zlib.crc32(journal_prefix_head), zlib.crc32(journal_prefix_tail)


def covers(snapshot: Snapshot, journal_size: int, head: bytes, tail: bytes) -> str | None:
    """None if the snapshot is of a prefix of this journal, else why not (pure). ``head`` and
    ``tail`` are the journal's bytes at ``check_ranges(snapshot.offset)``."""
    if snapshot.offset > journal_size:
        return f"it covers {snapshot.offset} bytes, the journal has {journal_size} (truncated?)"
    if check_crcs(head, tail) != (snapshot.head_crc, snapshot.tail_crc):
        return "the journal is not the one it was made from (replaced or rewritten)"
    return None


def check_ranges(offset: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(start, length) of the journal's bytes whose checksums a snapshot of ``offset`` bytes keeps."""
    head = min(CHECK_BYTES, offset)
    tail_start = max(0, offset - CHECK_BYTES)
    return (0, head), (tail_start, offset - tail_start)


# ----- I/O ---------------------------------------------------------------------------------------
def _journal_checks(fd: int, offset: int) -> tuple[bytes, bytes]:
    (h0, hn), (t0, tn) = check_ranges(offset)
    return os.pread(fd, hn, h0), os.pread(fd, tn, t0)


def _pread(fd: int, length: int, at: int) -> bytes:
    parts = []
    while length > 0:
        part = os.pread(fd, length, at)
        if not part:
            break
        parts.append(part)
        length, at = length - len(part), at + len(part)
    return b"".join(parts)


def read(sweep_dir: Path, journal: Path) -> Snapshot | None:
    """The sweep's snapshot if it covers a prefix of its journal; None if there is none, or (with
    one warning) if it cannot be used: the caller replays the whole journal."""
    path = sweep_dir / SNAPSHOT_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as err:
        return _ignored(path, f"it cannot be read ({err.strerror})")
    try:
        snapshot = _load(fd)
    except OSError as err:
        snapshot = f"it cannot be read ({err.strerror})"
    except (ValueError, KeyError, TypeError, IndexError):
        snapshot = "it is not a snapshot this version can read"
    finally:
        os.close(fd)
    if snapshot is None or isinstance(snapshot, str):
        return None if snapshot is None else _ignored(path, snapshot)
    try:
        fd = os.open(journal, os.O_RDONLY)
    except OSError:
        return None  # the full replay says what is wrong with the journal
    try:
        size = os.fstat(fd).st_size
        head, tail = _journal_checks(fd, min(snapshot.offset, size))
    finally:
        os.close(fd)
    why = covers(snapshot, size, head, tail)
    return snapshot if why is None else _ignored(path, why)


def _load(fd: int) -> Snapshot | str | None:
    """The snapshot open at ``fd``: its header and head read and checked, its body left unread.
    None: one an older sweepkit wrote (nothing is wrong: it is read as no snapshot, and the next
    snapshot written replaces it); a string: why it cannot be used."""
    size = os.fstat(fd).st_size
    first = os.pread(fd, FIRST_READ, 0)
    newline = first.index(b"\n")
    header = json.loads(first[:newline])
    version = header.get("v") if isinstance(header, dict) else None
    if isinstance(version, int) and version < min(READABLE):
        return None
    if version not in READABLE:
        return f"version {version if version is not None else '?'} is not {VERSION}"
    body_at = newline + 1 + int(header["head_len"])
    # a bayes sweep's facts after the body (bayes_head.py; none in version 5)
    end = body_at + int(header["body_len"]) + int(header.get("facts_len", 0))
    if size != end:
        return f"it has {size} bytes, its header says {end} (a torn file)"
    head = first[newline + 1 : body_at]
    if len(first) < body_at:
        head += _pread(fd, body_at - len(first), len(first))
    doc = load_head(header, head)
    if isinstance(doc, str):
        return doc
    unread = head_unread(doc)
    return Snapshot(
        int(header["offset"]),
        int(header["head_crc"]),
        int(header["tail_crc"]),
        bool(header["target_hit"]),
        open_runs(doc),
        unread,
        head_ahead(doc),
        doc.get("table"),
        first[:newline],
        header,
        head,
    )


def read_all(sweep_dir: Path, found: Snapshot, journal: Path, blank: Callable[[], Fold]) -> Fold:
    """The fold of the journal's first ``found.offset`` bytes, every run read: ``found``'s open
    runs (parsed again from its head: the ones handed out were changed by records after it) and
    the runs of its body, if the file is still the one whose head was read; else (one warning)
    folded from the journal's bytes the snapshot covers. ``blank``: an empty fold of this sweep."""
    path = sweep_dir / SNAPSHOT_NAME
    body_len = int(found.header["body_len"])
    try:
        with open(path, "rb") as f:
            same = f.readline().rstrip(b"\n") == found.header_line
            f.seek(len(found.header_line) + 1 + int(found.header["head_len"]))
            body = f.read(body_len) if same else b""
        done = (
            load_body(body, int(found.header["body_crc"])) if same else "it was replaced meanwhile"
        )
    except OSError as err:
        done = f"it cannot be read ({err.strerror})"
    except (ValueError, KeyError, TypeError, IndexError):
        done = "it is not a snapshot this version can read"
    if isinstance(done, str):
        print(
            f"sweepkit: warning: could not read the done runs of the journal snapshot {path}: "
            f"{done}; they are folded from the journal instead",
            file=sys.stderr,
        )
        return _fold_prefix(journal, found.offset, blank)
    fold = blank()
    runs = sorted(done + open_runs(json.loads(found.head)), key=lambda placed: placed[0])
    fold.runs = {run.run_id: run for _, run in runs}
    fold.target_hit = found.target_hit
    fold.ahead = head_ahead(json.loads(found.head))
    fold.reopen()
    return fold


def read_facts(sweep_dir: Path, found: Snapshot) -> bytes | str:
    """The bytes of ``found``'s bayes facts (bayes_head.py), if the file is still the one whose
    head was read; or why not (none kept, replaced, unreadable)."""
    length = int(found.header.get("facts_len", 0))
    if length <= 0:
        return "it keeps no bayes facts"
    at = len(found.header_line) + 1 + int(found.header["head_len"]) + int(found.header["body_len"])
    try:
        with open(sweep_dir / SNAPSHOT_NAME, "rb") as f:
            if f.readline().rstrip(b"\n") != found.header_line:
                return "it was replaced meanwhile"
            f.seek(at)
            data = f.read(length)
    except OSError as err:
        return f"it cannot be read ({err.strerror})"
    return data if len(data) == length else "it was cut short"


def _fold_prefix(journal: Path, offset: int, blank: Callable[[], Fold]) -> Fold:
    """The fold of the journal's first ``offset`` bytes."""
    try:
        with open(journal, "rb") as f:
            data = f.read(offset)
    except OSError as err:
        raise UserError(f"cannot read sweep journal {journal}: {err.strerror}") from None
    lines = data.splitlines(keepends=True)
    return apply(
        blank(), parse_bodies([b for line in lines if (b := checked_body(line)) is not None])
    )


def _ignored(path: Path, why: str) -> Snapshot | None:
    print(
        f"sweepkit: warning: ignored the journal snapshot {path}: {why}; the whole journal is "
        "read instead (an agent writes a new snapshot later)",
        file=sys.stderr,
    )
    return None  # noqa: RET501  (read's answer: no snapshot)


def write(
    sweep_dir: Path,
    journal: Path,
    fold: Fold,
    offset: int,
    mode: int = SHARED_FILE_MODE,
    *,
    grid: GridIndex | None = None,
    extra: dict[str, Any] | None = None,
    bayes: bayes_head.FactsIndex | None = None,
) -> bool:
    """Write the snapshot of ``fold``, the fold of the journal's first ``offset`` bytes (``grid``:
    a grid sweep's order, grid_taken.py; ``extra``: more header fields, json_rows.py's; ``bayes``:
    a bayes sweep's facts of a run, kept after the body for the unread runs, bayes_head.py). Best
    effort: False (and nothing left behind) if it cannot be written, as on a read-only folder."""
    path = sweep_dir / SNAPSHOT_NAME
    tmp = sweep_dir / f".{SNAPSHOT_NAME}.{HOST}.{os.getpid()}.tmp"
    try:
        fd = os.open(journal, os.O_RDONLY)
        try:
            head, tail = _journal_checks(fd, offset)
        finally:
            os.close(fd)
        crcs = check_crcs(head, tail)
        unread = [
            (i, run) for i, (run_id, run) in enumerate(fold.runs.items()) if run_id not in fold.open
        ]
        table = _table_part(fold, unread)
        facts = bayes_head.section(unread, bayes)
        data = dump(
            fold.runs,
            list(fold.open),
            offset,
            crcs,
            fold.target_hit,
            fold.max_retries,
            fold.ahead,
            table=table,
            grid=grid,
            extra={**(extra or {}), **bayes_head.header_fields(facts)},
        )
        data += facts
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        _remove_stale_tmp(sweep_dir)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False


def _table_part(fold: Fold, unread: list[tuple[int, FoldedRun]]) -> dict[str, Any] | None:
    """``table_head.head_doc``, or None (status then reads every run) where an end record of a
    journal edited by hand cannot be shown (a time that is not a number): writing the snapshot,
    which a claim does, must not fail on it."""
    try:
        return head_doc(fold, unread)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _remove_stale_tmp(sweep_dir: Path) -> None:
    now = time.time()
    for leftover in sweep_dir.glob(f".{SNAPSHOT_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_TMP_S:
                leftover.unlink()
